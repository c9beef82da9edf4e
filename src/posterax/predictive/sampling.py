"""Posterior + inputs -> :class:`PredictiveSamples` (vmapped over draws)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from posterax.base import Posterior, PredictiveSamples
from posterax.types import PRNGKey


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
    params = posterior.sample(rng_key, n_samples)
    X = jnp.asarray(X)
    likelihood = posterior.likelihood

    def one_draw(p):
        return likelihood.predictive(p, posterior.apply_fn(p, X))

    entries = jax.vmap(one_draw)(params)
    if likelihood.task == "classification":
        return PredictiveSamples.classification(entries["logits"])
    return PredictiveSamples.regression(entries["mean"], entries["scale"])


__all__ = ["predictive_samples"]
