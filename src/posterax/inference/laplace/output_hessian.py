"""Per-example curvature of the negative log-likelihood in *output* space, as a square root.

Every curvature the Laplace approximation uses is ``sum_n J_n^T L_n L_n^T J_n`` with ``J_n`` the
Jacobian of the network's ``K`` outputs at example ``n`` and ``L_n`` a ``(K, C)`` factor:

- generalised Gauss–Newton: ``L_n L_n^T`` is the Hessian of ``-log p(y_n | f)`` in ``f``:
  Gaussian ``1 / sigma^2``; categorical ``diag(p) - p p^T`` with the exact factor
  ``L = diag(sqrt p) - p sqrt(p)^T``; heteroscedastic Gaussian its Fisher in the two raw outputs
  (mean, raw scale), ``diag(1 / s^2, 2 sigmoid(r)^2 / s^2)`` (PSD, unlike the Hessian); any other
  likelihood the PSD part of the autodiff Hessian;
- empirical Fisher: ``L_n = grad_f log p(y_n | f)`` (one column).

For a homoscedastic Gaussian the factors are computed at unit noise: the GGN scales as
``sigma^-2`` and the empirical Fisher as ``sigma^-4``, so tuning ``sigma`` rescales instead of
recomputing (:data:`NOISE_POWER`).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from posterax.base import Likelihood
from posterax.models.likelihoods import (
    CategoricalLikelihood,
    GaussianLikelihood,
    HeteroscedasticGaussianLikelihood,
)
from posterax.types import ArrayTree

CURVATURES = ("ggn", "ef", "hessian")
NOISE_POWER = {"ggn": 2, "hessian": 2, "ef": 4}  # curvature ∝ sigma^-power (Gaussian)


def is_gaussian(likelihood: Likelihood) -> bool:
    """Homoscedastic Gaussian: the one likelihood with a tunable observation noise."""
    return isinstance(likelihood, GaussianLikelihood)


def unit_noise(likelihood: Likelihood, params: ArrayTree) -> ArrayTree:
    """``params`` with the Gaussian noise set to 1 (curvature is then rescaled by sigma)."""
    if is_gaussian(likelihood):
        return {**params, likelihood.noise_param: jnp.ones((), dtype=jnp.result_type(float))}
    return params


def outputs_2d(apply_fn: Callable, params: ArrayTree, X: jax.Array) -> jax.Array:
    """``apply_fn`` outputs as ``(B, K)`` (a regression head's ``(B,)`` becomes ``(B, 1)``)."""
    out = apply_fn(params, X)
    return out[:, None] if out.ndim == 1 else out


def log_lik_2d(likelihood, params, f2d, y, squeeze: bool) -> jax.Array:
    return likelihood.log_prob(params, f2d[:, 0] if squeeze else f2d, y)


def output_factor(
    likelihood: Likelihood,
    params: ArrayTree,
    f2d: jax.Array,
    y: jax.Array,
    curvature: str,
    squeeze: bool,
) -> jax.Array:
    """``(B, K, C)`` factors ``L_n`` with ``L_n L_n^T`` the output-space curvature.

    Parameters
    ----------
    likelihood : Likelihood
    params : pytree
        Constrained params (Gaussian noise already set to 1 by :func:`unit_noise`).
    f2d : array (B, K)
        Network outputs at the MAP.
    y : array (B,)
    curvature : {"ggn", "ef", "hessian"}
        ``"hessian"`` uses the GGN factor (the exact Hessian is formed elsewhere).
    squeeze : bool
        Whether ``apply_fn`` returned ``(B,)`` (the likelihood then reads ``f2d[:, 0]``).
    """
    if curvature == "ef":
        grad = jax.grad(lambda f: jnp.sum(log_lik_2d(likelihood, params, f, y, squeeze)))(f2d)
        return grad[:, :, None]
    if isinstance(likelihood, GaussianLikelihood):
        return jnp.ones((*f2d.shape, 1), f2d.dtype)
    if isinstance(likelihood, CategoricalLikelihood):
        p = jax.nn.softmax(f2d, axis=-1)
        sqrt_p = jnp.sqrt(p)
        # diag(p) - p p^T = L L^T with L = diag(sqrt p) - p sqrt(p)^T (uses sum p = 1).
        return jax.vmap(jnp.diag)(sqrt_p) - p[:, :, None] * sqrt_p[:, None, :]
    if isinstance(likelihood, HeteroscedasticGaussianLikelihood):
        _, scale = likelihood.mean_scale(f2d)
        # Fisher of Normal(mu, s) is diag(1/s^2, 2/s^2) in (mu, s); ds/dr = sigmoid(r).
        diag = jnp.stack([1 / scale, jnp.sqrt(2.0) * jax.nn.sigmoid(f2d[:, 1]) / scale], -1)
        return jax.vmap(jnp.diag)(diag)

    def neg_log_lik_one(f, y_n):
        return -log_lik_2d(likelihood, params, f[None], y_n[None], squeeze)[0]

    hess = jax.vmap(jax.hessian(neg_log_lik_one))(f2d, y)
    eigval, eigvec = jnp.linalg.eigh(hess)
    return eigvec * jnp.sqrt(jnp.clip(eigval, 0.0))[:, None, :]


__all__ = [
    "CURVATURES",
    "NOISE_POWER",
    "is_gaussian",
    "log_lik_2d",
    "output_factor",
    "outputs_2d",
    "unit_noise",
]
