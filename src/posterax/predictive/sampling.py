"""Posterior + inputs -> :class:`PredictiveSamples` (vmapped over draws)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from posterax.base import Posterior, PredictiveSamples
from posterax.types import PRNGKey


@functools.partial(jax.jit, static_argnames=("apply_fn", "likelihood"))
def _push_forward(params, X, apply_fn, likelihood):
    """Predictive entries for every draw; compiled once per model, likelihood and shapes."""
    return jax.vmap(lambda p: likelihood.predictive(p, apply_fn(p, X)))(params)


@functools.partial(jax.jit, static_argnames=("n",))
def _sample_distribution(distribution, rng_key, n):
    """Draws from a distribution that is a pytree (VI, dropout...), compiled once per type and
    shape rather than op by op."""
    return distribution.sample(rng_key, n)


def _draw(posterior: Posterior, rng_key: PRNGKey, n: int | None):
    dist = posterior.distribution
    if dist is not None and n is not None and _is_pytree(dist):
        return _sample_distribution(dist, rng_key, n)
    return posterior.sample(rng_key, n)


def _is_pytree(value) -> bool:
    """Registered as a pytree node (rather than being one opaque leaf)?"""
    leaves = jax.tree_util.tree_leaves(value)
    return not (len(leaves) == 1 and leaves[0] is value)


def predictive_samples(
    posterior: Posterior, X: jax.Array, rng_key: PRNGKey, n_samples: int | None = None
) -> PredictiveSamples:
    """Push posterior draws through the model at ``X``.

    Parameters
    ----------
    posterior : Posterior
    X : array of shape (N, D)
    rng_key : PRNGKey
        Used to pick or draw parameter samples.
    n_samples : int, optional
        Number of draws ``S``; default all stored draws (required for distributions).

    Returns
    -------
    PredictiveSamples
        ``mean``/``scale`` of shape ``(S, N)`` or ``logits`` of shape ``(S, N, K)``.
    """
    params = _draw(posterior, rng_key, n_samples)
    likelihood = posterior.likelihood
    entries = _push_forward(params, jnp.asarray(X), posterior.apply_fn, likelihood)
    if likelihood.task == "classification":
        return PredictiveSamples.classification(entries["logits"])
    return PredictiveSamples.regression(entries["mean"], entries["scale"])


__all__ = ["predictive_samples"]
