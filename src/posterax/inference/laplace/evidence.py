"""The Laplace evidence (log marginal likelihood) and post-hoc tuning of the prior precision and
observation noise by maximising it.

At the MAP ``theta*`` over the ``P`` selected weights with prior ``N(0, diag(delta)^-1)``:

    log p(D) ≈ log p(D | theta*) - 1/2 [log det(s H + diag delta) - sum log delta
               + theta*^T diag(delta) theta*]

(MacKay, 1992; Immer et al., 2021). For a homoscedastic Gaussian ``log p(D | theta*)`` depends on
``sigma`` only through the residual sum of squares and ``s = sigma^-2`` (GGN) rescales the
curvature computed once at unit noise, so tuning never recomputes the curvature. The
hyperparameters are optimised on the log scale with optax (Adam) inside one compiled
``lax.scan``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from posterax.base import Likelihood
from posterax.inference.laplace.posterior import log_det_precision
from posterax.inference.laplace.subset import WeightSubset
from posterax.types import ArrayTree

PRIOR_STRUCTURES = ("scalar", "layer")


@dataclasses.dataclass(frozen=True, eq=False)
class LaplaceState:
    """Everything the evidence and the posterior need, computed once at the MAP.

    Attributes
    ----------
    curvature : DiagCurvature | FullCurvature | KronCurvature | LowRankCurvature
        Over the selected weights, at unit noise for a homoscedastic Gaussian.
    subset : WeightSubset
    structure, curvature_kind : str
    noise_power : int
        Curvature ∝ ``sigma^-noise_power`` (0 unless homoscedastic Gaussian).
    n_data : int
    sse : array ()
        Residual sum of squares at the MAP (Gaussian; 0 otherwise).
    log_lik_map : array ()
        ``log p(D | theta*)`` at the MAP params (non-Gaussian likelihoods).
    apply_fn, likelihood, extras
        The model and its constrained point params beside the weights (``sigma``).
    """

    curvature: Any
    subset: WeightSubset
    structure: str
    curvature_kind: str
    noise_power: int
    n_data: int
    sse: jax.Array
    log_lik_map: jax.Array
    apply_fn: Callable[[ArrayTree, jax.Array], jax.Array]
    likelihood: Likelihood
    extras: dict[str, jax.Array]

    @property
    def has_noise(self) -> bool:
        return self.noise_power > 0


def _evidence(curv, theta, prior, log_sigma, sse, n_data, log_lik_map, noise_power):
    """Pure evidence; ``prior`` is a scalar or one value per selected weight."""
    if noise_power:
        sigma2 = jnp.exp(2 * log_sigma)
        log_lik = -n_data * (log_sigma + 0.5 * math.log(2 * math.pi)) - 0.5 * sse / sigma2
        scale = jnp.exp(-noise_power * log_sigma)
    else:
        log_lik, scale = log_lik_map, jnp.ones((), theta.dtype)
    vec = jnp.broadcast_to(prior, theta.shape)
    log_det_prior = jnp.sum(jnp.log(vec))
    scatter = jnp.sum(vec * theta**2)
    log_det_post = log_det_precision(curv, prior, scale)
    return log_lik - 0.5 * (log_det_post - log_det_prior + scatter)


def log_marginal_likelihood(
    state: LaplaceState, prior_precision: Any, sigma_noise: Any = None
) -> jax.Array:
    """Laplace log evidence at the MAP for a prior precision and (Gaussian) noise scale.

    Parameters
    ----------
    state : LaplaceState
    prior_precision : float or array
        Scalar, or one value per selected weight (see :func:`prior_vector`).
    sigma_noise : float, optional
        Observation noise sd (homoscedastic Gaussian; default the MAP's).
    """
    prior = jnp.asarray(prior_precision, dtype=state.subset.map_flat.dtype)
    sigma = state.extras.get("sigma", 1.0) if sigma_noise is None else sigma_noise
    return _evidence(
        state.curvature,
        state.subset.map_selected,
        prior,
        jnp.log(jnp.asarray(sigma, prior.dtype)),
        state.sse,
        state.n_data,
        state.log_lik_map,
        state.noise_power,
    )


@functools.partial(jax.jit, static_argnames=("noise_power", "steps", "learning_rate", "tune_noise"))
def _optimise(
    curv,
    theta,
    group,
    init,
    sse,
    n_data,
    log_lik_map,
    *,
    noise_power,
    steps,
    learning_rate,
    tune_noise,
):
    optimizer = optax.adam(learning_rate)

    def loss(hyper):
        lp = hyper["log_prior"]
        prior = jnp.exp(lp) if lp.ndim == 0 else jnp.exp(lp)[group]
        log_sigma = hyper["log_sigma"] if tune_noise else jax.lax.stop_gradient(hyper["log_sigma"])
        ev = _evidence(curv, theta, prior, log_sigma, sse, n_data, log_lik_map, noise_power)
        return -ev / n_data

    def step(carry, _):
        hyper, opt_state = carry
        value, grad = jax.value_and_grad(loss)(hyper)
        updates, opt_state = optimizer.update(grad, opt_state, hyper)
        return (optax.apply_updates(hyper, updates), opt_state), value

    (hyper, _), history = jax.lax.scan(step, (init, optimizer.init(init)), None, length=steps)
    return hyper, -history * n_data, -loss(hyper) * n_data


def tune_marglik(
    state: LaplaceState,
    init_prior: jax.Array,
    init_sigma: float | None = None,
    *,
    prior_structure: str = "scalar",
    tune_noise: bool = True,
    steps: int = 300,
    learning_rate: float = 0.1,
) -> dict[str, Any]:
    """Maximise :func:`log_marginal_likelihood` over the log prior precision (one value, or one
    per layer) and, for a homoscedastic Gaussian, the log noise scale.

    Returns
    -------
    dict
        ``prior_precision`` (scalar array or (n_groups,)), ``prior_vector`` (P,) or scalar,
        ``sigma`` (or ``None``), ``log_marginal_likelihood`` and its per-step ``history``.
    """
    subset = state.subset
    vec = np.broadcast_to(np.asarray(init_prior, dtype=float), (subset.size,))
    if prior_structure == "scalar":
        log_prior = np.log(np.exp(np.mean(np.log(vec))))
    else:
        sums = np.bincount(subset.group, np.log(vec), minlength=subset.n_groups)
        counts = np.bincount(subset.group, minlength=subset.n_groups)
        log_prior = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
    dtype = subset.map_flat.dtype
    sigma0 = state.extras.get("sigma", 1.0) if init_sigma is None else init_sigma
    init = {
        "log_prior": jnp.asarray(log_prior, dtype),
        "log_sigma": jnp.log(jnp.asarray(sigma0, dtype)),
    }
    hyper, history, final = _optimise(
        state.curvature,
        subset.map_selected,
        jnp.asarray(subset.group),
        init,
        state.sse,
        state.n_data,
        state.log_lik_map,
        noise_power=state.noise_power,
        steps=steps,
        learning_rate=learning_rate,
        tune_noise=bool(tune_noise and state.has_noise),
    )
    prior = jnp.exp(hyper["log_prior"])
    return {
        "prior_precision": prior,
        "prior_vector": prior if prior.ndim == 0 else prior[jnp.asarray(subset.group)],
        "sigma": jnp.exp(hyper["log_sigma"]) if state.has_noise else None,
        "log_marginal_likelihood": final,
        "history": history,
    }


__all__ = ["PRIOR_STRUCTURES", "LaplaceState", "log_marginal_likelihood", "tune_marglik"]
