"""Per-point uncertainty scores of a :class:`PredictiveSamples` for acquisition.

Acquisition reads them from :func:`posterax.uncertainty.decompose` (``posterax.active`` sits
one layer above ``posterax.uncertainty``).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from posterax.base import PredictiveSamples
from posterax.uncertainty import decompose


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


def scores(pred: PredictiveSamples) -> dict[str, jax.Array]:
    """``{"entropy", "bald", "variance"}``, each ``(N,)``: predictive entropy, mutual
    information and predictive variance (regression: of the Gaussian mixture), from
    :func:`posterax.uncertainty.decompose`."""
    d = decompose(pred)
    if pred.task == "classification":
        variance = jnp.sum(jnp.var(pred.probs(), axis=0), axis=-1)
        return {"entropy": d.total, "bald": jnp.maximum(d.epistemic, 0.0), "variance": variance}
    return {  # Gaussian entropy and information at the mixture's total variance
        "entropy": 0.5 * jnp.log(2 * math.pi * math.e * d.total),
        "bald": 0.5 * jnp.log(d.total / d.aleatoric),
        "variance": d.total,
    }
