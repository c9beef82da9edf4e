"""Split conformal regression on precomputed predictions.

Calibrate on ``(y_cal, predictions on the calibration set)``, then widen the predictions on the test
set so that each interval covers its target with probability at least ``1 - alpha`` (marginally,
for exchangeable data), whatever the model. Everything is ``O(n)`` memory: one score per point.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from posterax.conformal._numpy import all_numpy, float_dtype, interval, kth_smallest
from posterax.conformal.quantile import conformal_quantile, conformal_rank
from posterax.conformal.scores import (
    absolute_residual_score,
    cqr_score,
    normalized_residual_score,
)
from posterax.predictive.inputs import (
    as_float,
    check_ndim,
    check_probability,
    check_same_length,
    is_predictive,
    mixture_moments,
    mixture_quantile,
    point_prediction,
    regression_draws,
)


def _mean_std(pred: Any, y_std: Any, name: str, where: str) -> tuple[jax.Array, jax.Array]:
    if not is_predictive(pred) and y_std is None:
        raise ValueError(
            f"{where}(normalized=True) needs the predictive std: pass 'y_std_cal' and "
            f"'y_std_test' (shape (N,)), or PredictiveSamples as '{name}'."
        )
    mean, scale = regression_draws(pred, y_std, name, where)
    return mixture_moments(mean, scale)


def split_conformal_interval(
    y_cal: Any,
    y_pred_cal: Any,
    y_pred_test: Any,
    *,
    alpha: float = 0.1,
    normalized: bool = False,
    y_std_cal: Any = None,
    y_std_test: Any = None,
) -> tuple[jax.Array, jax.Array]:
    """Split conformal intervals around point predictions.

    Absolute score: ``y_pred +- q`` with ``q`` the conformal quantile of ``|y - y_pred|``.
    Normalised (``normalized=True``): ``y_pred +- q * y_std`` with ``q`` that of
    ``|y - y_pred| / y_std``; with a Bayesian predictive std this is conformalised Bayes: the
    intervals keep the model's shape (wider where it is unsure) and gain a coverage guarantee.

    Parameters
    ----------
    y_cal : array, shape (n,)
        Calibration targets.
    y_pred_cal, y_pred_test : array, shape (n,) / (m,), or PredictiveSamples
        Point predictions (for PredictiveSamples: the predictive mean and, when normalised, the
        mixture's standard deviation).
    alpha : float in (0, 1), default 0.1
        Miscoverage level: intervals target ``1 - alpha`` coverage.
    normalized : bool, default False
    y_std_cal, y_std_test : array, shape (n,) / (m,), optional
        Predictive standard deviations (> 0) for the normalised score with array predictions.

    Returns
    -------
    lower, upper : jax.Array, shape (m,)
        NumPy arrays when every input is a NumPy array (then computed with NumPy in the
        inputs' dtype, with an O(n) selection for the quantile).

    Raises
    ------
    ValueError
        If ``n < 1/alpha - 1`` (too few calibration points for the level).

    Examples
    --------
    >>> import numpy as np
    >>> y_cal = np.array([0.0, 1.0, -2.0, 0.5, 3.0, -1.0, 0.2, 0.1, -0.4])
    >>> lo, hi = split_conformal_interval(y_cal, np.zeros(9), np.zeros(1), alpha=0.2)
    >>> float(lo[0]), float(hi[0])  # 8th smallest |residual| of 9 (k = ceil(10 * 0.8))
    (-2.0, 2.0)
    """
    where = "split_conformal_interval"
    alpha = check_probability(alpha, "alpha", where)
    if all_numpy(y_cal, y_pred_cal, y_pred_test, y_std_cal, y_std_test):
        return _split_numpy(
            y_cal, y_pred_cal, y_pred_test, alpha, normalized, y_std_cal, y_std_test, where
        )
    y = as_float(y_cal, "y_cal", where, ndim=1)
    if normalized:
        mu_cal, sd_cal = _mean_std(y_pred_cal, y_std_cal, "y_pred_cal", where)
        mu_test, sd_test = _mean_std(y_pred_test, y_std_test, "y_pred_test", where)
        check_same_length(where, y_cal=y, y_pred_cal=mu_cal)
        q = conformal_quantile(normalized_residual_score(y, mu_cal, sd_cal), alpha)
        half = q * sd_test
    else:
        if y_std_cal is not None or y_std_test is not None:
            raise ValueError(
                f"{where}: 'y_std_cal'/'y_std_test' are used only with normalized=True. "
                "Pass normalized=True to scale intervals by the predictive std, or drop them."
            )
        mu_cal = point_prediction(y_pred_cal, "y_pred_cal", where)
        mu_test = point_prediction(y_pred_test, "y_pred_test", where)
        check_same_length(where, y_cal=y, y_pred_cal=mu_cal)
        half = conformal_quantile(absolute_residual_score(y, mu_cal), alpha)
    return mu_test - half, mu_test + half


def _split_numpy(y, mu_cal, mu_test, alpha, normalized, sd_cal, sd_test, where):
    """NumPy path of :func:`split_conformal_interval`: O(n) selection, in-place arithmetic."""
    for name, arr in (("y_cal", y), ("y_pred_cal", mu_cal), ("y_pred_test", mu_test)):
        check_ndim(arr, name, where, 1)
    check_same_length(where, y_cal=y, y_pred_cal=mu_cal)
    k = conformal_rank(int(y.shape[0]), alpha, where)
    dtype = float_dtype(y, mu_cal, mu_test)
    scores = np.subtract(y, mu_cal, dtype=dtype)
    np.abs(scores, out=scores)
    if not normalized:
        if sd_cal is not None or sd_test is not None:
            raise ValueError(
                f"{where}: 'y_std_cal'/'y_std_test' are used only with normalized=True. "
                "Pass normalized=True to scale intervals by the predictive std, or drop them."
            )
        return interval(mu_test.astype(dtype, copy=False), kth_smallest(scores, k))
    if sd_cal is None or sd_test is None:
        raise ValueError(
            f"{where}(normalized=True) needs the predictive std: pass 'y_std_cal' and "
            "'y_std_test' (shape (N,)), or PredictiveSamples predictions."
        )
    check_same_length(where, y_cal=y, y_std_cal=sd_cal)
    check_same_length(where, y_pred_test=mu_test, y_std_test=sd_test)
    for name, sd in (("y_std_cal", sd_cal), ("y_std_test", sd_test)):
        if sd.size and sd.min() <= 0:
            raise ValueError(
                f"The '{name}' parameter of {where} must be > 0 everywhere. Got minimum "
                f"{sd.min()}. Clip it, e.g. numpy.maximum({name}, 1e-12)."
            )
    scores /= sd_cal
    half = np.multiply(sd_test, kth_smallest(scores, k), dtype=dtype)
    return interval(mu_test.astype(dtype, copy=False), half)


def _bounds(bounds: Any, alpha: float, name: str, where: str) -> tuple[jax.Array, jax.Array]:
    if is_predictive(bounds):
        mean, scale = regression_draws(bounds, None, name, where)
        q = mixture_quantile(mean, scale, jnp.array([alpha / 2, 1 - alpha / 2]))
        return q[:, 0], q[:, 1]
    if not (isinstance(bounds, (tuple, list)) and len(bounds) == 2):
        raise TypeError(
            f"The '{name}' parameter of {where} must be a (lower, upper) pair of arrays or a "
            f"PredictiveSamples. Got {type(bounds).__name__}."
        )
    lo = as_float(bounds[0], f"{name}[0]", where, ndim=1)
    hi = as_float(bounds[1], f"{name}[1]", where, ndim=1)
    check_same_length(where, **{f"{name}[0]": lo, f"{name}[1]": hi})
    return lo, hi


def cqr_interval(
    y_cal: Any, bounds_cal: Any, bounds_test: Any, *, alpha: float = 0.1
) -> tuple[jax.Array, jax.Array]:
    """Conformalised quantile regression (Romano et al., 2019).

    Calibrates predicted ``alpha/2`` and ``1 - alpha/2`` quantiles: with ``q`` the conformal
    quantile of ``max(lower - y, y - upper)``, the interval is ``[lower - q, upper + q]`` (``q`` may
    be negative, shrinking intervals that were too wide). Intervals keep the model's
    heteroscedastic, possibly asymmetric shape.

    Parameters
    ----------
    y_cal : array, shape (n,)
    bounds_cal, bounds_test : (lower, upper) pair of arrays, or PredictiveSamples
        Predicted quantiles at ``alpha/2`` and ``1 - alpha/2``; a PredictiveSamples gives the
        central ``1 - alpha`` interval of its mixture.
    alpha : float in (0, 1), default 0.1

    Returns
    -------
    lower, upper : jax.Array, shape (m,)

    Examples
    --------
    >>> import numpy as np
    >>> y_cal = np.linspace(-1.0, 1.0, 9)
    >>> bounds = (np.full(9, -0.5), np.full(9, 0.5))
    >>> lo, hi = cqr_interval(y_cal, bounds, ([0.0], [1.0]), alpha=0.2)
    >>> float(lo[0]), float(hi[0])  # q = 8th smallest of max(-0.5 - y, y - 0.5) = 0.5
    (-0.5, 1.5)
    """
    where = "cqr_interval"
    alpha = check_probability(alpha, "alpha", where)
    y = as_float(y_cal, "y_cal", where, ndim=1)
    lo_cal, hi_cal = _bounds(bounds_cal, alpha, "bounds_cal", where)
    lo_test, hi_test = _bounds(bounds_test, alpha, "bounds_test", where)
    check_same_length(where, y_cal=y, bounds_cal=lo_cal)
    q = conformal_quantile(cqr_score(y, lo_cal, hi_cal), alpha)
    return lo_test - q, hi_test + q


__all__ = ["cqr_interval", "split_conformal_interval"]
