"""Checks and keys every posterax estimator needs in the same way."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypeVar

import jax
import numpy as np
from sklearn.utils.validation import check_is_fitted, validate_data

from posterax.data.validation import check_features, check_level, check_positive_int, rng_key_from
from posterax.inference.devices import resolve_devices

M = TypeVar("M", bound=StrEnum)

NUTS_TARGET_ACCEPT = 0.8  # Stan's default; used when an estimator's target_accept_prob is None

# Standardised inputs beyond this (in training sds) would overflow a float32 network's outputs
# or their squares; such inputs are refused at prediction.
MAX_STANDARDISED_INPUT = 1e12

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
    target = getattr(estimator, "target_accept_prob", None)
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
    if hasattr(estimator, "devices"):
        settings["devices"] = resolve_devices(estimator.devices, where=where)
    return settings


def check_predict_input(estimator: Any, X: Any, where: str) -> np.ndarray:
    """Fitted? Valid features? As many as at fit time? Returns float64 ``(n, n_features)``."""
    check_is_fitted(estimator)
    X_arr = check_features(X, where=where)
    expected = getattr(estimator, "n_features_in_", None)
    if expected is not None and X_arr.shape[1] != expected:
        # Keeps scikit-learn's wording (its estimator checks match it) after ours.
        raise ValueError(
            f"The 'X' parameter of {where} must have the {expected} feature column(s) seen at "
            f"fit time: X has {X_arr.shape[1]} features, but {type(estimator).__name__} is "
            f"expecting {expected} features as input. Pass the same columns, in the same order, "
            "as to fit."
        )
    validate_data(estimator, X, reset=False, skip_check_array=True)
    _check_standardised_range(estimator, X_arr, where)
    return X_arr


def _check_standardised_range(estimator: Any, X_arr: np.ndarray, where: str) -> None:
    """An estimator that standardises its inputs (``x_mean_``, ``x_scale_``) computes in float32:
    inputs many orders of magnitude outside the training data overflow it (NaN predictions)."""
    mean, scale = getattr(estimator, "x_mean_", None), getattr(estimator, "x_scale_", None)
    if mean is None or scale is None:
        return
    with np.errstate(over="ignore", invalid="ignore"):
        z = np.abs((X_arr - mean) / scale)
    if np.all(z <= MAX_STANDARDISED_INPUT):
        return
    row, col = (
        int(i) for i in np.unravel_index(np.argmax(np.where(np.isnan(z), np.inf, z)), z.shape)
    )
    raise ValueError(
        f"The 'X' parameter of {where} must lie within {MAX_STANDARDISED_INPUT:.0e} training "
        f"standard deviations of the training mean in every column (the network computes in "
        f"float32). Got X[{row}, {col}] = {X_arr[row, col]:.3g}, {z[row, col]:.3g} standard "
        f"deviations ({scale[col]:.3g}) from the training mean ({mean[col]:.3g}). Predict at "
        "inputs within the range of the training data, in the units used at fit time."
    )


def stream_key(estimator: Any, stream: int, where: str) -> jax.Array:
    """A key for one use (prediction, InferenceData...) derived from ``random_state``."""
    return jax.random.fold_in(rng_key_from(estimator.random_state, where=where), stream)


__all__ = [
    "INFERENCE_DATA_STREAM",
    "MAX_STANDARDISED_INPUT",
    "NUTS_TARGET_ACCEPT",
    "PREDICT_STREAM",
    "check_method",
    "check_predict_input",
    "nuts_settings",
    "stream_key",
]
