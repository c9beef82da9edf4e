"""Multi-layer perceptrons as hashable ``apply_fn``s, and the log-density of a Bayesian MLP.

Both are frozen dataclasses: equal configurations hash equal, which is what lets the NUTS driver
reuse one compiled program across fits.
"""

from __future__ import annotations

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import jax.scipy.stats as jstats

from posterax.models.weight_prior import WeightPrior
from posterax.types import ArrayTree

ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu, "gelu": jax.nn.gelu}


@dataclasses.dataclass(frozen=True)
class MLP:
    """Dense network ``n_features -> hidden... -> n_outputs``.

    Params pytree: ``[{"w": (d_in, d_out), "b": (d_out,)}, ...]``, one dict per layer.
    """

    hidden: tuple[int, ...]
    activation: str
    n_outputs: int

    def layer_sizes(self, n_features: int) -> list[tuple[int, int]]:
        sizes = [n_features, *self.hidden, self.n_outputs]
        return list(itertools.pairwise(sizes))

    def template(self, n_features: int) -> list[dict[str, jax.Array]]:
        """Zero params with the right shapes (the structure NUTS samples over)."""
        return [
            {"w": jnp.zeros((a, b)), "b": jnp.zeros(b)} for a, b in self.layer_sizes(n_features)
        ]

    def init(self, rng_key: jax.Array, n_features: int) -> list[dict[str, jax.Array]]:
        """Random starting weights for training: ``N(0, gain / fan_in)`` weights (gain 2 for
        ReLU-like activations, 1 for tanh), zero biases."""
        gain = 1.0 if self.activation == "tanh" else 2.0
        keys = jax.random.split(rng_key, len(self.layer_sizes(n_features)))
        return [
            {"w": jax.random.normal(k, (a, b)) * jnp.sqrt(gain / a), "b": jnp.zeros(b)}
            for k, (a, b) in zip(keys, self.layer_sizes(n_features), strict=True)
        ]

    def __call__(self, params: list[dict[str, jax.Array]], X: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        h = X
        for layer in params[:-1]:
            h = act(h @ layer["w"] + layer["b"])
        return h @ params[-1]["w"] + params[-1]["b"]


@dataclasses.dataclass(frozen=True)
class RegressionHead:
    """``apply_fn`` of a Bayesian regressor: the network's single output, shape ``(N,)``."""

    network: MLP

    def __call__(self, params: ArrayTree, X: jax.Array) -> jax.Array:
        return self.from_outputs(self.network(params["net"], X))

    @staticmethod
    def from_outputs(outputs: jax.Array) -> jax.Array:
        """The head's value from the network's raw ``(N, 1)`` outputs."""
        return outputs[:, 0]


@dataclasses.dataclass(frozen=True)
class ClassificationHead:
    """``apply_fn`` returning all of the network's outputs, shape ``(N, K)``: a classifier's
    logits, or the (mean, raw scale) pair of a heteroscedastic regressor."""

    network: MLP

    def __call__(self, params: ArrayTree, X: jax.Array) -> jax.Array:
        return self.network(params["net"], X)

    @staticmethod
    def from_outputs(outputs: jax.Array) -> jax.Array:
        """The head's value from the network's raw ``(N, K)`` outputs."""
        return outputs


def weight_log_prior(
    net: list[dict[str, jax.Array]], scales: tuple[float, ...], family: str = "normal"
) -> jax.Array:
    """Independent ``family(0, scale_l)`` on every weight and bias of layer l."""
    return WeightPrior(family, scales).log_prob(net)


def gaussian_log_density(
    mean: jax.Array, y: jax.Array, log_sigma: jax.Array, noise_prior_scale: float
) -> jax.Array:
    """Gaussian log-likelihood plus the HalfCauchy prior on ``sigma = exp(log_sigma)``,
    with the log-Jacobian of that change of variables."""
    sigma = jnp.exp(log_sigma)
    log_noise_prior = jnp.log(2.0) + jstats.cauchy.logpdf(sigma, 0.0, noise_prior_scale)
    return log_noise_prior + log_sigma + jnp.sum(jstats.norm.logpdf(y, mean, sigma))


def categorical_log_density(logits: jax.Array, y: jax.Array) -> jax.Array:
    """Softmax log-likelihood of class indices ``y`` under ``(N, K)`` logits."""
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    return jnp.sum(jnp.take_along_axis(log_probs, y[:, None], axis=-1))


@dataclasses.dataclass(frozen=True)
class BNNLogDensity:
    """Unnormalised log posterior of a Bayesian MLP over an unconstrained position.

    Position: ``{"net": params}`` (+ ``"log_sigma"`` for regression, with a HalfCauchy prior on
    ``sigma`` and the log-Jacobian of ``sigma = exp(log_sigma)``). Called as
    ``logdensity(position, X, y)``.
    """

    network: MLP
    prior_scales: tuple[float, ...]
    task: str
    noise_prior_scale: float = 1.0
    prior_family: str = "normal"

    def template(self, n_features: int) -> ArrayTree:
        position: dict = {"net": self.network.template(n_features)}
        if self.task == "regression":
            position["log_sigma"] = jnp.zeros(())
        return position

    def __call__(self, position: ArrayTree, X: jax.Array, y: jax.Array) -> jax.Array:
        return self.log_prior(position) + self.log_likelihood(position, X, y)

    def log_prior(self, position: ArrayTree) -> jax.Array:
        """Weights' prior, plus (regression) the HalfCauchy prior on ``sigma`` and the
        log-Jacobian of ``sigma = exp(log_sigma)``."""
        log_prior = weight_log_prior(position["net"], self.prior_scales, self.prior_family)
        if self.task == "regression":
            log_sigma = position["log_sigma"]
            scale = self.noise_prior_scale
            noise = jnp.log(2.0) + jstats.cauchy.logpdf(jnp.exp(log_sigma), 0.0, scale)
            log_prior = log_prior + noise + log_sigma
        return log_prior

    def log_likelihood(self, position: ArrayTree, X: jax.Array, y: jax.Array) -> jax.Array:
        """Summed log-likelihood of the rows of ``X`` (SG-MCMC evaluates it per minibatch)."""
        out = self.network(position["net"], X)
        if self.task == "regression":
            sigma = jnp.exp(position["log_sigma"])
            return jnp.sum(jstats.norm.logpdf(y, out[:, 0], sigma))
        return categorical_log_density(out, y)

    @staticmethod
    def to_params(position: ArrayTree) -> ArrayTree:
        """Constrained params (``sigma`` instead of ``log_sigma``), any leading axes."""
        return constrain(position)


def constrain(position: ArrayTree) -> ArrayTree:
    """``{"net", "log_sigma"?}`` -> ``{"net", "sigma"?}`` (any leading axes): unconstrained
    coordinates, used by samplers and optimisers, to the params likelihoods read."""
    params = {"net": position["net"]}
    if "log_sigma" in position:
        params["sigma"] = jnp.exp(position["log_sigma"])
    return params


__all__ = [
    "ACTIVATIONS",
    "MLP",
    "BNNLogDensity",
    "ClassificationHead",
    "RegressionHead",
    "constrain",
]
