"""Argument checks shared by the uncertainty modules (raised at the Python boundary)."""

from __future__ import annotations

from typing import Any

import numpy as np

from posterax.base import PredictiveSamples


def check_predictive(pred: Any, where: str, task: str | None = None) -> PredictiveSamples:
    """``pred`` is a :class:`PredictiveSamples` (of ``task`` when given)."""
    if not isinstance(pred, PredictiveSamples):
        raise TypeError(
            f"The 'pred' parameter of {where} must be a PredictiveSamples (per-draw predictions "
            f"with a leading draw axis). Got {type(pred).__name__}. Get one from "
            "estimator.predict_samples(X) or build it with PredictiveSamples.classification("
            "logits) / PredictiveSamples.regression(mean, scale)."
        )
    if task is not None and pred.task != task:
        other = "regression (mean/scale)" if pred.task == "regression" else "classification"
        raise ValueError(
            f"The 'pred' parameter of {where} must hold {task} predictions. Got {other} "
            "predictions. Use a score defined for that task (see posterax.uncertainty.SCORES)."
        )
    return pred


def check_scores(values: Any, name: str, where: str) -> np.ndarray:
    """A non-empty, finite 1-D float array."""
    if values is None:
        raise ValueError(
            f"The '{name}' parameter of {where} is required. Got None. Pass a 1-D array of "
            "scores, one per point."
        )
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"The '{name}' parameter of {where} must be a 1-D numeric array. Got "
            f"{type(values).__name__} ({err})."
        ) from None
    if arr.ndim != 1:
        raise ValueError(
            f"The '{name}' parameter of {where} must be 1-D (one score per point). Got shape "
            f"{arr.shape}. Use .ravel() for a column vector."
        )
    if arr.size == 0:
        raise ValueError(
            f"The '{name}' parameter of {where} must hold at least one score. Got an empty "
            "array. Pass scores for a non-empty set of points."
        )
    if not np.all(np.isfinite(arr)):
        n_bad = int(np.sum(~np.isfinite(arr)))
        raise ValueError(
            f"The '{name}' parameter of {where} must be finite. Got {n_bad} NaN/inf value(s). "
            "Check the predictions the scores came from."
        )
    return arr


def check_int(value: Any, name: str, where: str, minimum: int = 1) -> int:
    """An int ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(
            f"The '{name}' parameter of {where} must be an int >= {minimum}. Got {value!r}. "
            f"Pass e.g. {name}={max(minimum, 10)}."
        )
    return int(value)
