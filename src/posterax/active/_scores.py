"""Per-point uncertainty scores of a :class:`PredictiveSamples` for acquisition.

``posterax.active`` sits beside ``posterax.uncertainty`` (sibling layers may not import each
other), so the few formulas acquisition needs are here; they agree with
:func:`posterax.uncertainty.decompose` (tested).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from posterax.base import PredictiveSamples


def check_predictive(pred: Any, where: str, task: str | None = None) -> PredictiveSamples:
    if not isinstance(pred, PredictiveSamples):
        raise TypeError(
            f"The 'pred' parameter of {where} must be a PredictiveSamples (per-draw predictions "
            f"over the pool). Got {type(pred).__name__}. Get one from "
            "estimator.predict_samples(X_pool)."
        )
    if task is not None and pred.task != task:
        raise ValueError(
            f"The 'pred' parameter of {where} must hold {task} predictions. Got {pred.task} "
            "predictions. Use 'bald', 'entropy' or 'variance' for regression."
        )
    return pred


@jax.jit
def _classification(logits: jax.Array) -> dict[str, jax.Array]:
    log_p = jax.nn.log_softmax(logits, axis=-1)
    p = jnp.exp(log_p)
    expected = jnp.mean(-jnp.sum(p * log_p, axis=-1), axis=0)
    log_mean = logsumexp(log_p, axis=0) - math.log(logits.shape[0])
    total = -jnp.sum(jnp.exp(log_mean) * log_mean, axis=-1)
    return {
        "entropy": total,
        "bald": jnp.maximum(total - expected, 0.0),
        "variance": jnp.sum(jnp.var(p, axis=0), axis=-1),
    }


@jax.jit
def _regression(mean: jax.Array, scale: jax.Array) -> dict[str, jax.Array]:
    aleatoric = jnp.mean(jnp.square(scale), axis=0)
    total = aleatoric + jnp.var(mean, axis=0)
    return {
        "entropy": 0.5 * jnp.log(2 * math.pi * math.e * total),
        "bald": 0.5 * jnp.log(total / aleatoric),
        "variance": total,
    }


def scores(pred: PredictiveSamples) -> dict[str, jax.Array]:
    """``{"entropy", "bald", "variance"}``, each ``(N,)``: predictive entropy, mutual
    information and predictive variance (regression: of the Gaussian mixture)."""
    if pred.task == "classification":
        return _classification(pred.logits)
    return _regression(pred.mean, pred.scale)
