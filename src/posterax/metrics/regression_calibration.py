"""Calibration of regression predictives: PIT values, the quantile calibration curve and its area.

A predictive CDF ``F_n`` is calibrated when the probability integral transform ``u_n = F_n(y_n)`` is
uniform: for every level ``p`` a fraction ``p`` of targets falls below the predictive ``p``-quantile
(Kuleshov et al., 2018). The curve plots that observed fraction against ``p``; the calibration error
is the area between the curve and the diagonal, ``integral_0^1 |F_hat(p) - p| dp``, computed exactly
from the sorted PIT values (it is the 1-Wasserstein distance between their empirical distribution
and Uniform(0, 1)).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp

from posterax.predictive.inputs import (
    as_float,
    check_positive_int,
    check_same_length,
    mixture_cdf,
    regression_draws,
)


def pit(y_true: Any, y_pred: Any, y_std: Any = None) -> jax.Array:
    """Probability integral transform ``F_n(y_n)`` of each target under its predictive.

    Parameters
    ----------
    y_true : array, shape (N,)
    y_pred : array, shape (N,), or PredictiveSamples
        Gaussian predictive mean (with ``y_std``), or the predictive samples, whose CDF is the
        equal-weight mixture of the per-draw Gaussians.
    y_std : array, shape (N,), optional

    Returns
    -------
    jax.Array, shape (N,)
        Values in [0, 1]; uniform when the predictive is calibrated.

    Examples
    --------
    >>> [round(float(u), 4) for u in pit([0.0, 1.0], [0.0, 0.0], [1.0, 1.0])]
    [0.5, 0.8413]
    """
    where = "pit"
    y = as_float(y_true, "y_true", where, ndim=1)
    mean, scale = regression_draws(y_pred, y_std, "y_pred", where)
    check_same_length(where, y_true=y, y_pred=mean.T)
    return mixture_cdf(mean, scale, y.astype(mean.dtype))


def regression_calibration_curve(
    y_true: Any, y_pred: Any, y_std: Any = None, *, n_levels: int = 99
) -> tuple[jax.Array, jax.Array]:
    """Quantile calibration curve: expected level ``p`` against the observed ``mean(u <= p)``.

    Parameters
    ----------
    y_true : array, shape (N,)
    y_pred : array, shape (N,), or PredictiveSamples
    y_std : array, shape (N,), optional
    n_levels : int, default 99
        Levels ``p = 1/(L+1), ..., L/(L+1)``.

    Returns
    -------
    expected : jax.Array, shape (L,)
    observed : jax.Array, shape (L,)
        Fraction of targets at or below the predictive ``p``-quantile.

    Examples
    --------
    >>> p, obs = regression_calibration_curve([0.0, 1.0], [0.0, 0.0], [1.0, 1.0], n_levels=3)
    >>> [float(v) for v in obs]
    [0.0, 0.5, 0.5]
    """
    n_levels = check_positive_int(n_levels, "n_levels", "regression_calibration_curve")
    return _curve(pit(y_true, y_pred, y_std), n_levels)


def regression_calibration_error(y_true: Any, y_pred: Any, y_std: Any = None) -> jax.Array:
    """Area between the quantile calibration curve and the diagonal, exactly.

    ``integral_0^1 |F_hat(p) - p| dp`` where ``F_hat`` is the empirical CDF of the PIT values: 0 for
    perfectly uniform PITs, at most 0.5 (all targets beyond one extreme of their predictive).

    Parameters
    ----------
    y_true : array, shape (N,)
    y_pred : array, shape (N,), or PredictiveSamples
    y_std : array, shape (N,), optional

    Returns
    -------
    jax.Array, shape ()

    Examples
    --------
    >>> # every target far above its predictive: PIT = 1, area = integral of p = 0.5
    >>> round(float(regression_calibration_error([10.0, 10.0], [0.0, 0.0], [1.0, 1.0])), 6)
    0.5
    """
    return _area(pit(y_true, y_pred, y_std))


@partial(jax.jit, static_argnums=1)
def _curve(u: jax.Array, n_levels: int) -> tuple[jax.Array, jax.Array]:
    expected = jnp.arange(1, n_levels + 1, dtype=u.dtype) / (n_levels + 1)
    observed = jnp.searchsorted(jnp.sort(u), expected, side="right") / u.shape[0]
    return expected, observed.astype(u.dtype)


@jax.jit
def _area(u: jax.Array) -> jax.Array:
    u = jnp.sort(u)
    n = u.shape[0]
    dtype = u.dtype
    edges = jnp.concatenate([jnp.zeros(1, dtype), u, jnp.ones(1, dtype)])  # (N + 2,)
    level = jnp.arange(n + 1, dtype=dtype) / n  # F_hat on [edges[i], edges[i + 1])

    def antiderivative(x: jax.Array) -> jax.Array:  # d/dx (x |x| / 2) = |x|
        return 0.5 * x * jnp.abs(x)

    pieces = antiderivative(edges[1:] - level) - antiderivative(edges[:-1] - level)
    return jnp.sum(pieces)


__all__ = ["pit", "regression_calibration_curve", "regression_calibration_error"]
