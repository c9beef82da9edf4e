"""Checks and keys every posterax estimator needs in the same way."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypeVar

import jax
import numpy as np
from sklearn.utils.validation import check_is_fitted, validate_data

from posterax.data.validation import check_features, check_level, check_positive_int, rng_key_from

M = TypeVar("M", bound=StrEnum)

NUTS_TARGET_ACCEPT = 0.8  # Stan's default; used when an estimator's target_accept_prob is None

# Independent random streams derived from ``random_state`` (fit uses the key itself).
PREDICT_STREAM = 1
INFERENCE_DATA_STREAM = 2


def check_method(method: Any, methods: type[M], where: str) -> M:
    """Look ``method`` up in a method Enum, or raise listing the allowed values."""
    try:
        return methods(method)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in methods)
        raise ValueError(
            f"The 'method' parameter of {where} must be one of {allowed}. Got {method!r}."
        ) from None


def nuts_settings(estimator: Any, where: str) -> dict[str, Any]:
    """The validated NUTS settings of an estimator, as keyword arguments for the driver."""
    settings = {
        name: check_positive_int(getattr(estimator, name), name=name, where=where)
        for name in ("num_warmup", "num_samples", "num_chains")
    }
    target = estimator.target_accept_prob
    settings["target_accept_prob"] = (
        NUTS_TARGET_ACCEPT
        if target is None
        else check_level(target, name="target_accept_prob", where=where)
    )
    if hasattr(estimator, "max_tree_depth"):
        settings["max_tree_depth"] = check_positive_int(
            estimator.max_tree_depth, name="max_tree_depth", where=where
        )
    settings["progress_bar"] = estimator.progress_bar
    return settings


def check_predict_input(estimator: Any, X: Any, where: str) -> np.ndarray:
    """Fitted? Valid features? As many as at fit time? Returns float64 ``(n, n_features)``."""
    check_is_fitted(estimator)
    X_arr = check_features(X, where=where)
    validate_data(estimator, X, reset=False, skip_check_array=True)
    return X_arr


def stream_key(estimator: Any, stream: int, where: str) -> jax.Array:
    """A key for one use (prediction, InferenceData...) derived from ``random_state``."""
    return jax.random.fold_in(rng_key_from(estimator.random_state, where=where), stream)


__all__ = [
    "INFERENCE_DATA_STREAM",
    "NUTS_TARGET_ACCEPT",
    "PREDICT_STREAM",
    "check_method",
    "check_predict_input",
    "nuts_settings",
    "stream_key",
]
