"""Prediction-interval metrics: coverage (PICP), mean width and the interval (Winkler) score.

Intervals come as ``lower``/``upper`` arrays ``(N,)`` (from a conformal method, a quantile
regressor, ...) or as a regression :class:`~posterax.base.PredictiveSamples`, from which the central
interval of the mixture at the requested level is taken.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp

from posterax.predictive.inputs import (
    as_float,
    check_probability,
    check_same_length,
    is_predictive,
    mixture_quantile,
    regression_draws,
)


@jax.jit
def _coverage(y: jax.Array, lo: jax.Array, hi: jax.Array) -> jax.Array:
    return jnp.mean(((lo <= y) & (y <= hi)).astype(lo.dtype))


@jax.jit
def _mean_width(lo: jax.Array, hi: jax.Array) -> jax.Array:
    return jnp.mean(hi - lo)


@partial(jax.jit, static_argnums=3)
def _interval_score(y: jax.Array, lo: jax.Array, hi: jax.Array, alpha: float) -> jax.Array:
    below = jnp.maximum(lo - y, 0.0)
    above = jnp.maximum(y - hi, 0.0)
    return jnp.mean((hi - lo) + (2.0 / alpha) * (below + above))


def _interval(
    lower: Any, upper: Any, level: float | None, where: str, level_name: str = "level"
) -> tuple[jax.Array, jax.Array]:
    if is_predictive(lower):
        if upper is not None:
            raise ValueError(
                f"{where}: with a PredictiveSamples as 'lower', leave 'upper' as None and pass "
                f"'{level_name}'. Got an 'upper' array too."
            )
        if level is None:
            raise ValueError(
                f"{where} needs '{level_name}' to take the central interval of a "
                f"PredictiveSamples, e.g. {level_name}=0.9."
            )
        level = check_probability(level, level_name, where, kind="level")
        mean, scale = regression_draws(lower, None, "lower", where)
        q = mixture_quantile(mean, scale, jnp.array([(1 - level) / 2, (1 + level) / 2]))
        return q[:, 0], q[:, 1]
    if upper is None:
        raise ValueError(
            f"{where} needs both 'lower' and 'upper' arrays of shape (N,), or a "
            "PredictiveSamples as 'lower' with a level."
        )
    lo = as_float(lower, "lower", where, ndim=1)
    hi = as_float(upper, "upper", where, ndim=1)
    check_same_length(where, lower=lo, upper=hi)
    return lo, hi


def coverage(
    y_true: Any, lower: Any, upper: Any = None, *, level: float | None = None
) -> jax.Array:
    """Fraction of targets inside their interval, ``mean(lower <= y <= upper)`` (PICP).

    Parameters
    ----------
    y_true : array, shape (N,)
    lower : array, shape (N,), or PredictiveSamples
        Lower bounds, or the predictive samples (then ``upper`` stays None).
    upper : array, shape (N,), optional
    level : float in (0, 1), optional
        Nominal level of the central interval taken from a PredictiveSamples.

    Returns
    -------
    jax.Array, shape ()

    Examples
    --------
    >>> float(coverage([0.0, 2.0], [-1.0, -1.0], [1.0, 1.0]))
    0.5
    """
    y = as_float(y_true, "y_true", "coverage", ndim=1)
    lo, hi = _interval(lower, upper, level, "coverage")
    check_same_length("coverage", y_true=y, lower=lo)
    return _coverage(y, lo, hi)


def mean_interval_width(lower: Any, upper: Any = None, *, level: float | None = None) -> jax.Array:
    """Mean of ``upper - lower``.

    Parameters
    ----------
    lower : array, shape (N,), or PredictiveSamples
    upper : array, shape (N,), optional
    level : float in (0, 1), optional
        Nominal level of the central interval taken from a PredictiveSamples.

    Returns
    -------
    jax.Array, shape ()

    Examples
    --------
    >>> float(mean_interval_width([0.0, 1.0], [1.0, 4.0]))
    2.0
    """
    lo, hi = _interval(lower, upper, level, "mean_interval_width")
    return _mean_width(lo, hi)


def interval_score(y_true: Any, lower: Any, upper: Any = None, *, alpha: float) -> jax.Array:
    """Mean interval score of central ``(1 - alpha)`` intervals (Winkler, 1972; Gneiting, 2007).

    ``(u - l) + (2 / alpha) (l - y) 1[y < l] + (2 / alpha) (y - u) 1[y > u]``: width plus a
    penalty for misses. Lower is better; it is a proper score for the ``alpha/2`` and
    ``1 - alpha/2`` quantiles.

    Parameters
    ----------
    y_true : array, shape (N,)
    lower : array, shape (N,), or PredictiveSamples
    upper : array, shape (N,), optional
    alpha : float in (0, 1)
        Miscoverage level the interval was built for (0.1 for 90% intervals).

    Returns
    -------
    jax.Array, shape ()

    Examples
    --------
    >>> float(interval_score([0.0, 3.0], [-1.0, -1.0], [1.0, 1.0], alpha=0.5))  # (2 + 2 + 8) / 2
    6.0
    """
    where = "interval_score"
    alpha = check_probability(alpha, "alpha", where)
    y = as_float(y_true, "y_true", where, ndim=1)
    lo, hi = _interval(lower, upper, 1.0 - alpha, where, "alpha")
    check_same_length(where, y_true=y, lower=lo)
    return _interval_score(y, lo, hi, alpha)


__all__ = ["coverage", "interval_score", "mean_interval_width"]
