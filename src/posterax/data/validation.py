"""Input checks at the Python boundary.

Every error names the parameter, the rule, what was received and the fix, so users never see a
JAX traceback from deep inside a compiled function or a silent NaN.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import jax
import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.multiclass import type_of_target


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def as_float_array(value: Any, *, name: str, where: str) -> np.ndarray:
    """Convert ``value`` to a float64 NumPy array or raise a ``TypeError`` naming ``name``."""
    if sp.issparse(value):
        raise TypeError(
            f"The '{name}' parameter of {where} must be dense. Sparse data was passed for "
            f"{name}, but dense data is required. Use '.toarray()' to convert to a dense numpy "
            "array."
        )
    array = np.asarray(value)
    if array.dtype.kind in "fiub":
        return array.astype(np.float64, copy=False)
    if array.dtype.kind == "c":
        raise ValueError(
            f"The '{name}' parameter of {where} must be real numbers: Complex data not "
            f"supported. Got dtype {array.dtype}. Pass the real part (np.real) or split it into "
            "two columns."
        )
    try:
        return array.astype(np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"The '{name}' parameter of {where} must be numeric. Got dtype {array.dtype} "
            f"({err}). Encode text or categorical columns as numbers first, e.g. with "
            "sklearn.preprocessing.OneHotEncoder."
        ) from None


def check_finite(array: np.ndarray, *, name: str, where: str) -> None:
    """Raise a ``ValueError`` naming ``name`` and the first NaN/inf position, if any."""
    finite = np.isfinite(array)
    if finite.all():
        return
    bad = np.argwhere(~finite)
    first = tuple(int(i) for i in bad[0])
    n_nan = int(np.isnan(array).sum())
    n_inf = int(bad.shape[0] - n_nan)
    raise ValueError(
        f"The '{name}' parameter of {where} must not contain NaN or inf. Got {n_nan} NaN and "
        f"{n_inf} inf value(s), the first at index {first}. Drop or impute those rows first "
        "(e.g. sklearn.impute.SimpleImputer)."
    )


def check_features(X: Any, *, where: str, name: str = "X") -> np.ndarray:
    """Validate a feature matrix: numeric, 2-D, non-empty, finite. Returns float64 ``(N, D)``."""
    if X is None:
        raise ValueError(
            f"The '{name}' parameter of {where} must be a 2-D array of shape (n_samples, "
            "n_features). Got None."
        )
    array = as_float_array(X, name=name, where=where)
    if array.ndim != 2:
        fix = (
            "Reshape your data with X.reshape(-1, 1) if it is a single feature, or "
            "X.reshape(1, -1) if it is a single sample."
            if array.ndim == 1
            else "Pass a 2-D array of shape (n_samples, n_features)."
        )
        raise ValueError(
            f"The '{name}' parameter of {where} must be a 2-D array of shape (n_samples, "
            f"n_features). Got a {array.ndim}-D array of shape {array.shape}. {fix}"
        )
    for axis, what in ((0, "sample"), (1, "feature")):
        if array.shape[axis] == 0:
            raise ValueError(
                f"The '{name}' parameter of {where} must hold at least 1 sample and 1 feature. "
                f"Found array with 0 {what}(s) (shape={array.shape}) while a minimum of 1 is "
                "required. Pass non-empty data."
            )
    check_finite(array, name=name, where=where)
    return array


def check_batch(X: Any, *, where: str, name: str = "X") -> np.ndarray:
    """Validate a batch of inputs of any shape ``(N, ...)`` (tables, images, sequences) for a
    network of the user's: numeric, at least 2-D, non-empty, finite. Returns float64."""
    if X is None:
        raise ValueError(
            f"The '{name}' parameter of {where} must be an array of shape (n_samples, ...). "
            "Got None."
        )
    array = as_float_array(X, name=name, where=where)
    if array.ndim < 2:
        raise ValueError(
            f"The '{name}' parameter of {where} must have a sample axis and at least one input "
            f"axis, shape (n_samples, ...). Got a {array.ndim}-D array of shape {array.shape}. "
            "Reshape it with X.reshape(-1, 1) if each sample is one number."
        )
    if array.size == 0:
        raise ValueError(
            f"The '{name}' parameter of {where} must hold at least 1 sample with at least 1 "
            f"value. Got shape {array.shape}. Pass non-empty data."
        )
    check_finite(array, name=name, where=where)
    return array


def check_class_labels(y: Any, *, where: str, name: str = "y") -> np.ndarray:
    """Labels that can be sorted and counted: no missing values (NaN, inf, None) and one kind of
    value (numbers or strings, not both). Returns them as an array; the shape is not checked."""
    labels = np.asarray(y)
    if labels.dtype.kind == "f":
        check_finite(labels, name=name, where=where)
    elif labels.dtype.kind == "O":
        flat = labels.reshape(-1)
        missing = [
            i
            for i, v in enumerate(flat)
            if v is None or (isinstance(v, numbers.Real) and not np.isfinite(v))
        ]
        if missing:
            raise ValueError(
                f"The '{name}' parameter of {where} must not contain missing labels (None, NaN "
                f"or inf). Got {len(missing)} missing label(s), the first at index "
                f"{missing[0]}. Drop those rows first."
            )
        kinds = sorted({"string" if isinstance(v, str) else type(v).__name__ for v in flat})
        if "string" in kinds and len(kinds) > 1:
            raise ValueError(
                f"The '{name}' parameter of {where} must hold labels of one kind (all numbers or "
                f"all strings). Got a mix of {', '.join(kinds)}. Convert them, e.g. "
                f"{name}.astype(str)."
            )
    return labels


def _flatten_column(values: np.ndarray, name: str, where: str) -> np.ndarray:
    """A column vector ``(N, 1)`` as ``(N,)``, with scikit-learn's warning; else unchanged."""
    if values.ndim == 2 and values.shape[1] == 1:
        warnings.warn(
            f"A column-vector {name} was passed when a 1d array was expected ({where} "
            f"flattened it). Pass {name}.ravel() to silence this.",
            DataConversionWarning,
            stacklevel=4,  # past this helper, the check and fit: the line calling fit
        )
        return values[:, 0]
    return values


def check_classification_target(
    y: Any, *, n_samples: int, where: str, name: str = "y"
) -> np.ndarray:
    """Validate class labels: 1-D (or ``(N, 1)``), ``n_samples`` long, no missing values, whole
    numbers if floats, and at least two classes."""
    if y is None:
        raise ValueError(
            f"The '{name}' parameter of {where} is required: {where} requires y to be passed, "
            "but the target y is None. Pass the class labels."
        )
    labels = check_class_labels(y, where=where, name=name)  # no missing labels, one kind
    labels = _flatten_column(labels, name, where)
    if labels.ndim != 1 or labels.shape[0] != n_samples:
        raise ValueError(
            f"The '{name}' parameter of {where} must be 1-D with one label per row of X. Got "
            f"shape {labels.shape} for {n_samples} sample(s)."
        )
    if labels.dtype.kind == "f" and not np.all(labels == np.round(labels)):
        raise ValueError(
            f"The '{name}' parameter of {where} must hold class labels; got float values that "
            f"are not whole numbers (e.g. {labels[labels != np.round(labels)][:3]}). Unknown "
            "label type: continuous. For regression use px.BayesianRegressor."
        )
    try:
        kind = type_of_target(labels)
    except (TypeError, ValueError) as err:  # e.g. values that cannot be compared
        kind = f"unknown ({err})"
    if kind not in ("binary", "multiclass"):
        raise ValueError(
            f"The '{name}' parameter of {where} must hold class labels. Unknown label type: "
            f"{kind}. Pass a 1-D array of labels."
        )
    n_classes = len(np.unique(labels))
    if n_classes < 2:
        raise ValueError(
            f"The '{name}' parameter of {where} must hold at least 2 classes. Got 1 class "
            f"({labels[0]!r}). Classification needs examples of at least two classes."
        )
    return labels


def check_regression_target(y: Any, *, n_samples: int, where: str, name: str = "y") -> np.ndarray:
    """Validate a regression target: numeric, 1-D (or ``(N, 1)``), finite, ``n_samples`` long."""
    if y is None:
        raise ValueError(
            f"The '{name}' parameter of {where} is required for regression: {where} requires y "
            "to be passed, but the target y is None. Pass the targets as a 1-D array of length "
            "n_samples."
        )
    array = as_float_array(y, name=name, where=where)
    array = _flatten_column(array, name, where)
    if array.ndim != 1:
        raise ValueError(
            f"The '{name}' parameter of {where} must be 1-D of shape (n_samples,). Got shape "
            f"{array.shape}. Fit one target at a time."
        )
    if array.shape[0] != n_samples:
        raise ValueError(
            f"The '{name}' parameter of {where} must have one target per row of X. Got "
            f"{array.shape[0]} target(s) for {n_samples} sample(s). Pass X and y of the same "
            "length."
        )
    check_finite(array, name=name, where=where)
    return array


def check_fraction(
    value: Any,
    *,
    name: str,
    where: str,
    zero_allowed: bool = False,
    meaning: str = "",
    example: float = 0.1,
) -> float:
    """Validate a share or probability: a float in (0, 1), or [0, 1) with ``zero_allowed``;
    ``meaning`` says in the message what the share is of."""
    interval = "[0, 1)" if zero_allowed else "(0, 1)"
    what = f" ({meaning})" if meaning else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"The '{name}' parameter of {where} must be a float in {interval}{what}. Got "
            f"{_describe(value)} of type {type(value).__name__}. Pass e.g. {name}={example}."
        )
    share = float(value)
    if not (0.0 <= share < 1.0 if zero_allowed else 0.0 < share < 1.0):  # NaN fails too
        hint = (
            f"Did you mean {share / 100:g}?"
            if 1.0 < share < 100.0
            else f"Pass e.g. {name}={example}."
        )
        raise ValueError(
            f"The '{name}' parameter of {where} must be in {interval}{what}. Got {value}. {hint}"
        )
    return share


def check_level(level: Any, *, where: str, name: str = "level") -> float:
    """Validate a probability level in the open interval (0, 1)."""
    return check_fraction(level, name=name, where=where, example=0.95)


def check_positive_float(
    value: Any,
    *,
    name: str,
    where: str,
    zero_allowed: bool = False,
    example: Any = 1.0,
    also: str = "",
) -> float:
    """Validate a finite real number > 0 (>= 0 with ``zero_allowed``); ``also`` names other
    values the parameter takes (``"'auto' or "``), for the message."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or not (value >= 0 if zero_allowed else value > 0)
    ):
        rule = ">= 0" if zero_allowed else "> 0"
        raise ValueError(
            f"The '{name}' parameter of {where} must be {also}a finite float {rule}. Got "
            f"{_describe(value)}. Pass e.g. {name}={example}."
        )
    return float(value)


def check_positive_int(value: Any, *, name: str, where: str, minimum: int = 1) -> int:
    """Validate an integer count ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(
            f"The '{name}' parameter of {where} must be an int >= {minimum}. Got "
            f"{_describe(value)}. Pass e.g. {name}={max(minimum, 1000)}."
        )
    return int(value)


def check_choice(value: Any, *, name: str, where: str, allowed: tuple[str, ...]) -> str:
    """Validate a string option against the allowed values."""
    if value not in allowed:
        raise ValueError(
            f"The '{name}' parameter of {where} must be one of {', '.join(map(repr, allowed))}. "
            f"Got {_describe(value)}."
        )
    return str(value)


def rng_key_from(random_state: Any, *, where: str) -> jax.Array:
    """Make a JAX key from an int seed (``None`` means 0, so fits are reproducible by default)."""
    if random_state is None:
        return jax.random.key(0)
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(
                f"The 'random_state' parameter of {where} must be a non-negative int. Got "
                f"{random_state}. Pass e.g. random_state=0."
            )
        return jax.random.key(int(random_state))
    if isinstance(random_state, np.random.RandomState):
        return jax.random.key(int(random_state.randint(0, 2**31 - 1)))
    raise TypeError(
        f"The 'random_state' parameter of {where} must be an int or None. Got "
        f"{_describe(random_state)} of type {type(random_state).__name__}. Pass e.g. "
        "random_state=42."
    )
