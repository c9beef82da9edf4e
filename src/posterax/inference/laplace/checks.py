"""The checks of :func:`~posterax.inference.laplace.fit.fit_laplace`'s arguments: each error
names the parameter, the rule, what was received and the fix."""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp

from posterax.data.validation import check_positive_float

WHERE = "fit_laplace"


def allowed_value(value: Any, name: str, allowed: tuple) -> Any:
    if value not in allowed:
        raise ValueError(
            f"The '{name}' parameter of {WHERE} must be one of {', '.join(map(repr, allowed))}. "
            f"Got {value!r}."
        )
    return value


def positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(
            f"The '{name}' parameter of {WHERE} must be an int >= 1. Got {value!r}. "
            f"Pass e.g. {name}=256."
        )
    return int(value)


def positive_float(value: Any, name: str) -> float:
    return check_positive_float(value, name=name, where=WHERE)


def check_data(X: Any, y: Any, name: str = "X") -> tuple[jax.Array, jax.Array]:
    X = jnp.asarray(X)
    y = jnp.asarray(y)
    if X.ndim < 2 or y.ndim != 1 or X.shape[0] != y.shape[0] or X.shape[0] == 0:
        raise ValueError(
            f"The '{name}' and 'y' parameters of {WHERE} must be (N, ...) and (N,) arrays with "
            f"N >= 1 (X: a table (N, D), or images / sequences of any shape). Got shapes "
            f"{X.shape} and {y.shape}. Reshape X with X.reshape(-1, 1) for one feature."
        )
    if not bool(jnp.all(jnp.isfinite(X))):
        raise ValueError(f"The '{name}' parameter of {WHERE} must not contain NaN or inf.")
    if jnp.issubdtype(X.dtype, jnp.integer):
        X = X.astype(jnp.result_type(float))
    return X, y


def check_targets(y: jax.Array, likelihood: Any, n_outputs: int) -> None:
    """Class indices in ``[0, n_outputs)`` for a categorical likelihood, finite values
    otherwise: anything else would make the evidence NaN without an error."""
    if getattr(likelihood, "task", None) == "classification":
        ok = jnp.issubdtype(y.dtype, jnp.integer) and bool(jnp.all((y >= 0) & (y < n_outputs)))
        if not ok:
            raise ValueError(
                f"The 'y' parameter of {WHERE} must hold class indices 0..{n_outputs - 1} "
                f"(ints) for a categorical likelihood with {n_outputs} outputs. Got dtype "
                f"{y.dtype}, values {float(jnp.min(y)):g} to {float(jnp.max(y)):g}. Encode the "
                "labels, e.g. with numpy.unique(labels, return_inverse=True)."
            )
    elif not bool(jnp.all(jnp.isfinite(y))):
        raise ValueError(f"The 'y' parameter of {WHERE} must not contain NaN or inf.")


__all__ = [
    "WHERE",
    "allowed_value",
    "check_data",
    "check_targets",
    "positive_float",
    "positive_int",
]
