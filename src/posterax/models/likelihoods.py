"""Likelihoods: map a model's outputs to log-densities and to per-draw predictive entries."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import jax.scipy.stats as jstats

from posterax.types import ArrayTree

# The key of a draw's factor on a heteroscedastic model's scales (set on held-out rows).
NOISE_FACTOR = "noise_factor"


@dataclasses.dataclass(frozen=True)
class GaussianLikelihood:
    """Homoscedastic Gaussian: ``y ~ Normal(outputs, params[noise_param])``."""

    noise_param: str = "sigma"
    task: str = "regression"

    def noise_scale(self, params: ArrayTree, outputs: jax.Array) -> jax.Array:
        return jnp.broadcast_to(params[self.noise_param], outputs.shape)

    def log_prob(self, params: ArrayTree, outputs: jax.Array, y: jax.Array) -> jax.Array:
        return jstats.norm.logpdf(y, outputs, self.noise_scale(params, outputs))

    def predictive(self, params: ArrayTree, outputs: jax.Array) -> dict[str, jax.Array]:
        return {"mean": outputs, "scale": self.noise_scale(params, outputs)}


@dataclasses.dataclass(frozen=True)
class HeteroscedasticGaussianLikelihood:
    """Heteroscedastic Gaussian: the model's ``(N, 2)`` outputs are the mean and a raw scale,
    ``y ~ Normal(outputs[:, 0], softplus(outputs[:, 1]) + min_scale)`` (Lakshminarayanan et al.,
    2017). ``min_scale`` keeps the density finite when the network is very sure. A draw's
    ``params[NOISE_FACTOR]``, where present, multiplies every scale: the held-out calibration
    of :mod:`posterax.inference.noise_calibration` sets it."""

    min_scale: float = 1e-4
    task: str = "regression"

    def mean_scale(self, outputs: jax.Array) -> tuple[jax.Array, jax.Array]:
        return outputs[..., 0], jax.nn.softplus(outputs[..., 1]) + self.min_scale

    def calibrated_mean_scale(
        self, params: ArrayTree, outputs: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        mean, scale = self.mean_scale(outputs)
        if isinstance(params, dict) and NOISE_FACTOR in params:
            scale = scale * params[NOISE_FACTOR]
        return mean, scale

    def log_prob(self, params: ArrayTree, outputs: jax.Array, y: jax.Array) -> jax.Array:
        mean, scale = self.calibrated_mean_scale(params, outputs)
        return jstats.norm.logpdf(y, mean, scale)

    def predictive(self, params: ArrayTree, outputs: jax.Array) -> dict[str, jax.Array]:
        mean, scale = self.calibrated_mean_scale(params, outputs)
        return {"mean": mean, "scale": scale}


@dataclasses.dataclass(frozen=True)
class ProfiledGaussianLikelihood:
    """A Gaussian whose overall noise level is its maximum-likelihood value on the rows at
    hand, whatever ``params`` hold: for a homoscedastic model (``heteroscedastic=None``) the
    sd is the root mean squared residual; for a heteroscedastic one every predicted scale
    ``s`` is multiplied by ``sqrt(mean((r / s)**2))`` over the residuals ``r``.

    Early stopping judges held-out rows by it: the noise learned on the training rows shrinks
    as the network fits them, so the held-out NLL at that noise rises (and stops training)
    while the mean still improves. At the profiled noise a homoscedastic model's NLL is
    ``log(rmse) + const``: the fit of the mean alone; a heteroscedastic one's judges the
    mean and the shape of its scales across rows, not their overall level."""

    heteroscedastic: HeteroscedasticGaussianLikelihood | None = None
    task: str = "regression"

    def log_prob(self, params: ArrayTree, outputs: jax.Array, y: jax.Array) -> jax.Array:
        del params  # the noise level is profiled out
        if self.heteroscedastic is None:
            mean, scale = outputs, jnp.ones_like(outputs)
        else:
            mean, scale = self.heteroscedastic.mean_scale(outputs)
        level = jnp.sqrt(jnp.mean(jnp.square((y - mean) / scale)) + jnp.finfo(mean.dtype).tiny)
        return jstats.norm.logpdf(y, mean, level * scale)


@dataclasses.dataclass(frozen=True)
class CategoricalLikelihood:
    """Softmax over the model's ``(N, K)`` outputs (logits); ``y`` holds class indices."""

    task: str = "classification"

    def log_prob(self, params: ArrayTree, outputs: jax.Array, y: jax.Array) -> jax.Array:
        log_probs = jax.nn.log_softmax(outputs, axis=-1)
        return jnp.take_along_axis(log_probs, jnp.asarray(y)[:, None].astype(int), axis=-1)[:, 0]

    def predictive(self, params: ArrayTree, outputs: jax.Array) -> dict[str, jax.Array]:
        return {"logits": outputs}


__all__ = [
    "NOISE_FACTOR",
    "CategoricalLikelihood",
    "GaussianLikelihood",
    "HeteroscedasticGaussianLikelihood",
    "ProfiledGaussianLikelihood",
]
