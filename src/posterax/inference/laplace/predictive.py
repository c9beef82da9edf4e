"""Predictions under a Laplace posterior.

- ``pred_type="glm"``: the network linearised at the MAP,
  ``f_lin(theta, x) = f(theta*, x) + J(x) (theta - theta*)``, evaluated with one ``jax.jvp``
  (no Jacobian). :class:`LinearizedApply` is an ``apply_fn``, so Monte Carlo GLM predictions go
  through :func:`posterax.predictive.predictive_samples` unchanged. In closed form
  (:func:`glm_predictive`): the function-space covariance ``J Σ J^T`` (Jacobians per chunk of
  inputs, ``Σ J^T`` from the posterior factor), Gaussian for regression (variance
  ``J Σ J^T + sigma^2``) and the probit approximation for classification,
  ``softmax(f / sqrt(1 + π/8 var))`` (MacKay, 1992), or the Laplace bridge (Hobbhahn et al.,
  2022).
- ``pred_type="nn"``: sample weights and use the plain ``apply_fn``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from posterax.base import Posterior, PredictiveSamples
from posterax.inference.laplace.output_hessian import outputs_2d
from posterax.inference.laplace.posterior import LaplaceGaussian
from posterax.types import ArrayTree

LINK_APPROX = ("probit", "bridge")


@dataclasses.dataclass(frozen=True, eq=False)
class LinearizedApply:
    """``apply_fn`` linearised in the network weights at ``map_net`` (hashed by identity, as a
    compiled predictive's static argument).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> f = lambda p, X: jnp.tanh(X @ p["net"])
    >>> lin = LinearizedApply(f, jnp.zeros(1))
    >>> float(lin({"net": jnp.ones(1)}, jnp.ones((1, 1)))[0])  # tanh'(0) = 1
    1.0
    """

    apply_fn: Callable[[ArrayTree, jax.Array], jax.Array]
    map_net: ArrayTree

    def __call__(self, params: ArrayTree, X: jax.Array) -> jax.Array:
        delta = jax.tree_util.tree_map(jnp.subtract, params["net"], self.map_net)
        f0, df = jax.jvp(
            lambda net: self.apply_fn({**params, "net": net}, X), (self.map_net,), (delta,)
        )
        return f0 + df

    @property
    def network(self):
        """The wrapped head's network (what persistence and the estimators read)."""
        return self.apply_fn.network


def linearized_apply(apply_fn: Callable, map_params: ArrayTree) -> LinearizedApply:
    """The GLM ``apply_fn`` around the MAP (``map_params["net"]``)."""
    return LinearizedApply(apply_fn, map_params["net"])


@functools.partial(jax.jit, static_argnames=("apply_fn",))
def _function_space(dist: LaplaceGaussian, X: jax.Array, apply_fn):
    """MAP outputs ``(B, K)`` and their covariance ``J Σ J^T`` ``(B, K, K)``."""
    params = dist.mean()

    def f_one(theta, x):
        return outputs_2d(apply_fn, {**params, "net": dist.embed(theta)}, x[None])[0]

    theta = dist.map_selected
    J = jax.vmap(lambda x: jax.jacrev(f_one)(theta, x))(X)  # (B, K, P)
    B, K, P = J.shape
    SJ = dist.factor.cov_matmat(J.reshape(B * K, P).T).T.reshape(B, K, P)
    return outputs_2d(apply_fn, params, X), jnp.einsum("bkp,blp->bkl", J, SJ)


def function_space(posterior: Posterior, X: jax.Array, batch_size: int = 256):
    """MAP outputs ``(N, K)`` and the linearised covariance ``J Σ J^T`` ``(N, K, K)``, computed
    in chunks of ``batch_size`` inputs (memory ``batch_size * K * P``)."""
    dist, base = _parts(posterior)
    X = jnp.asarray(X)
    outs, covs = [], []
    for start in range(0, X.shape[0], batch_size):
        f, cov = _function_space(dist, X[start : start + batch_size], base)
        outs.append(f)
        covs.append(cov)
    return jnp.concatenate(outs), jnp.concatenate(covs)


def _parts(posterior: Posterior):
    dist = posterior.distribution
    if not isinstance(dist, LaplaceGaussian):
        raise ValueError(
            "glm_predictive: 'posterior' must come from fit_laplace (a LaplaceGaussian "
            f"distribution). Got {type(dist).__name__}."
        )
    apply_fn = posterior.apply_fn
    base = apply_fn.apply_fn if isinstance(apply_fn, LinearizedApply) else apply_fn
    return dist, base


def probit_probs(logits: jax.Array, var: jax.Array) -> jax.Array:
    """``softmax(f_k / sqrt(1 + π/8 var_k))``: the probit approximation (``var`` (N, K))."""
    return jax.nn.softmax(logits / jnp.sqrt(1 + math.pi / 8 * var), axis=-1)


def bridge_probs(logits: jax.Array, cov: jax.Array) -> jax.Array:
    """Mean of the Laplace bridge's Dirichlet (Hobbhahn et al., 2022) from logits ``(N, K)``
    and their covariance ``(N, K, K)``."""
    K = logits.shape[-1]
    var = jnp.diagonal(cov, axis1=-2, axis2=-1)
    sum_exp = jnp.sum(jnp.exp(-logits), -1, keepdims=True)
    alpha = (1 - 2 / K + jnp.exp(logits) / K**2 * sum_exp) / var
    return alpha / jnp.sum(alpha, -1, keepdims=True)


def glm_predictive(
    posterior: Posterior, X: jax.Array, *, link_approx: str = "probit", batch_size: int = 256
) -> PredictiveSamples:
    """Closed-form GLM predictive, as the one-draw :class:`PredictiveSamples` every method's
    prediction is (so every downstream tool takes it).

    Returns
    -------
    PredictiveSamples
        Regression (homoscedastic Gaussian): ``mean`` (1, N) and ``scale`` (1, N) =
        ``sqrt(f_var + sigma^2)``. Classification: logits (1, N, K), the log of the probit (or
        Laplace bridge) probabilities, so ``.probs()[0]`` are those probabilities. The
        linearised function mean and covariance alone: :func:`function_space`.
    """
    if link_approx not in LINK_APPROX:
        raise ValueError(
            f"The 'link_approx' parameter of glm_predictive must be one of "
            f"{', '.join(map(repr, LINK_APPROX))}. Got {link_approx!r}."
        )
    f, cov = function_space(posterior, X, batch_size)
    var = jnp.diagonal(cov, axis1=-2, axis2=-1)
    likelihood = posterior.likelihood
    if likelihood.task == "classification":
        probs = probit_probs(f, var) if link_approx == "probit" else bridge_probs(f, cov)
        return PredictiveSamples.classification(jnp.log(probs)[None])
    if f.shape[1] != 1:
        raise ValueError(
            "glm_predictive: the closed form covers a homoscedastic Gaussian (one output). Got "
            f"{f.shape[1]} outputs (heteroscedastic?). Use predictive_samples(posterior, X, key, "
            "n_samples) for Monte Carlo GLM predictions."
        )
    params = posterior.distribution.mean()
    noise = likelihood.noise_scale(params, f[:, 0])
    scale = jnp.sqrt(var[:, 0] + noise**2)
    return PredictiveSamples.regression(f[:, 0][None], scale[None])


__all__ = [
    "LINK_APPROX",
    "LinearizedApply",
    "bridge_probs",
    "function_space",
    "glm_predictive",
    "linearized_apply",
    "probit_probs",
]
