"""Conformal prediction for time series: adaptive conformal inference (ACI; Gibbs & Candès 2021,
"Adaptive conformal inference under distribution shift").

Exchangeability fails for a series whose noise or dynamics change; ACI keeps the long-run
miscoverage at ``alpha`` anyway by steering the level it asks of the conformal quantile:

    alpha_{t+1} = alpha_t + gamma (alpha - err_t),   err_t = 1{y_t not in C_t(alpha_t)},

so that, for any sequence, ``|mean_t err_t - alpha| <= (max(alpha_1, 1 - alpha_1) + gamma) /
(gamma T)`` (their Proposition 4.1). ``C_t(alpha_t)`` is the conformal interval at level
``1 - alpha_t`` from the ``window`` most recent scores; each new observation's score enters the
window as it arrives (the oldest leaves).

Scores are signed residuals ``y - prediction``. By default (``symmetric=False``, as MAPIE 1.6's
``TimeSeriesRegressor``) the interval is ``[pred + lower, pred + upper]`` with ``lower`` the
``ceil((1 - beta)(n + 1))``-th largest residual and ``upper`` the ``ceil((1 - alpha + beta)
(n + 1))``-th smallest, ``beta = alpha / 2`` or, with ``optimize_beta=True``, the ``beta`` in
``[1/(n + 1), alpha]`` (a 100-point grid) that makes the empirical residual quantiles narrowest.
``symmetric=True`` is Gibbs & Candès' score ``|y - pred|``: ``pred -+ q``, ``q`` the
``ceil((1 - alpha)(n + 1))``-th smallest ``|residual|``.

Where ``alpha_t`` leaves ``[0, 1]``: ``clip=True`` (MAPIE) clips it back; ``clip=False`` is the
paper's update, for which the bound above holds exactly. ``alpha_t <= 0`` gives the whole line
``(-inf, inf)``, ``alpha_t >= 1`` the empty set (``nan`` bounds); too few scores for the level
``alpha_t`` asks also give an infinite bound (with ``optimize_beta``, ``alpha_t < 1/(n + 1)``
the whole line). An observation counts as covered when
``lower <= y <= upper`` (MAPIE counts the bounds themselves as misses; the two differ only on
ties).

:func:`adaptive_conformal_intervals` runs ACI on precomputed predictions (any forecaster, any
batch of series at once). Around a model, :mod:`posterax.conformal.time_series_wrappers`:
:class:`~posterax.conformal.time_series_wrappers.AdaptiveConformalRegressor` (split-conformal
residuals) and :class:`~posterax.conformal.time_series_wrappers.EnbPIRegressor` (the bootstrap
ensemble of EnbPI, Xu & Xie 2021), both with ``predict_interval(X)`` and ``update(X, y)``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from posterax.conformal.quantile import ceil_level
from posterax.predictive.inputs import check_probability


def check_gamma(gamma: Any, where: str) -> float:
    """The ACI step size: a float in [0, 1] (0: no adaptation)."""
    ok = isinstance(gamma, (int, float, np.integer, np.floating)) and not isinstance(gamma, bool)
    if not ok or not 0.0 <= float(gamma) <= 1.0:
        raise ValueError(
            f"The 'gamma' parameter of {where} must be a float in [0, 1] (the step of the ACI "
            f"update alpha_t+1 = alpha_t + gamma (alpha - err_t); 0 turns adaptation off). Got "
            f"{gamma!r}. Pass e.g. gamma=0.005 (Gibbs & Candès) or 0.01-0.05 to adapt faster."
        )
    return float(gamma)


def smallest_window(alpha: float, symmetric: bool = False) -> int:
    """The fewest scores that give finite intervals at miscoverage ``alpha``: ``2/alpha - 1``
    (each side of a signed-residual interval uses level ``alpha/2``), ``1/alpha - 1`` for
    ``symmetric``."""
    side = alpha if symmetric else alpha / 2.0
    return max(1, ceil_level((1.0 - side) / side))


def check_window(n: int, alpha: float, symmetric: bool, where: str, name: str = "window") -> int:
    """Raise unless ``n`` scores (the ``window`` parameter, or ``name`` for data) are enough
    for finite intervals at miscoverage ``alpha``."""
    need = smallest_window(alpha, symmetric)
    if n >= need:
        return n
    rule = (
        f"the conformal rank ceil((n + 1)(1 - {'alpha' if symmetric else 'alpha/2'})) must be "
        f"<= n, which needs n >= {need}"
    )
    if name == "window":
        raise ValueError(
            f"The 'window' parameter of {where} is too small for confidence level "
            f"{1 - alpha:g}: {n} scores give an infinite interval; {rule}. Pass window >= "
            f"{need}, or lower the confidence level."
        )
    raise ValueError(
        f"{where}: {n} {name} are too few for confidence level {1 - alpha:g}; {rule}. Pass "
        f"at least {need} {name} (a longer stretch of the series), or lower the confidence "
        "level."
    )


def check_time_order(time: Any, where: str, name: str = "time", after: Any = None) -> Any:
    """Raise unless ``time`` is sorted (non-decreasing) and not before ``after``; return its last
    value (``None`` for no time)."""
    if time is None:
        return after
    t = np.asarray(time)
    if t.ndim != 1:
        raise ValueError(
            f"The '{name}' parameter of {where} must be 1-D: one time stamp per row. Got shape "
            f"{t.shape}. Pass a flat array (e.g. np.ravel(time) for a column)."
        )
    if t.size == 0:
        return after
    bad = np.flatnonzero(t[1:] < t[:-1])
    fix = (
        "Time series conformal methods read the rows in order as time: sort them by time "
        "first (e.g. df = df.sort_index(), or order = np.argsort(time); X, y, time = "
        "X[order], y[order], time[order])."
    )
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"The '{name}' parameter of {where} must be sorted in increasing time (oldest "
            f"first). Got {name}[{i + 1}] = {t[i + 1]} before {name}[{i}] = {t[i]} "
            f"({bad.size} such pair{'s' if bad.size > 1 else ''}). {fix}"
        )
    if after is not None and t[0] < after:
        raise ValueError(
            f"The '{name}' parameter of {where} must start at or after the last time already "
            f"seen ({after}). Got {t[0]}. Pass new observations in time order; {fix}"
        )
    return t[-1]


def time_of(X: Any, y: Any, time: Any) -> tuple[Any, str]:
    """The time stamps of the rows: ``time``, else a datetime-like index of ``X`` or ``y``."""
    if time is not None:
        return time, "time"
    for name, data in (("X", X), ("y", y)):
        index = getattr(data, "index", None)
        kind = getattr(getattr(index, "dtype", None), "kind", "")
        if (kind and kind in "mM") or type(index).__name__ == "PeriodIndex":
            return np.asarray(index), f"{name}.index"
    return None, "time"


def _rank(level: np.ndarray, n: np.ndarray) -> np.ndarray:
    return np.asarray(ceil_level(level * (n + 1)))


def _pick(sorted_scores: np.ndarray, index: np.ndarray, ok: np.ndarray, fill: float):
    safe = np.clip(index, 0, sorted_scores.shape[-1] - 1)[..., None]
    return np.where(ok, np.take_along_axis(sorted_scores, safe, axis=-1)[..., 0], fill)


def _best_beta(scores: np.ndarray, alpha: float) -> float:
    """MAPIE's width search: of 100 ``beta`` in ``[1/(n + 1), alpha]``, the one with the
    narrowest ``[beta, 1 - alpha + beta]`` empirical quantiles ("lower" / "higher" rules).

    Outside ``1/(n + 1) <= alpha < 1`` there is no such range (it would ask for quantiles
    beyond ``[0, 1]``) and no width to win: ``alpha / 2``, which gives the whole line for
    ``alpha < 1/(n + 1)`` (every ``beta`` in ``[0, alpha]`` does); ``alpha >= 1`` is empty."""
    s = scores[~np.isnan(scores)]
    n = s.size
    lowest = 1.0 - n / (n + 1.0)
    if not lowest <= alpha < 1.0:
        return alpha / 2.0
    betas = np.linspace(lowest, alpha, num=100)
    width = np.quantile(s, 1.0 - alpha + betas, method="higher") - np.quantile(
        s, betas, method="lower"
    )
    return float(betas[np.argmin(width)])


def residual_offsets(
    scores: Any, alpha: Any, *, symmetric: bool = False, optimize_beta: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Offsets ``(lower, upper)`` of the conformal interval ``[pred + lower, pred + upper]``.

    Parameters
    ----------
    scores : array (..., n)
        Signed residuals ``y - pred`` (``nan`` = none; ignored).
    alpha : float or array (...)
        Miscoverage level(s); ``<= 0`` gives ``(-inf, inf)``, ``>= 1`` ``(nan, nan)`` (empty).
    symmetric, optimize_beta : bool
        See :mod:`posterax.conformal.time_series`.

    Returns
    -------
    lower, upper : arrays (...)

    Examples
    --------
    >>> lower, upper = residual_offsets(np.arange(-9.0, 10.0), 0.1)  # 19 residuals
    >>> float(lower), float(upper)  # the 19th largest and 19th smallest: the extremes
    (-9.0, 9.0)
    """
    s = np.asarray(scores, dtype=np.float64)
    a = np.asarray(alpha, dtype=np.float64)
    batch = np.broadcast_shapes(s.shape[:-1], a.shape)
    s, a = np.broadcast_to(s, batch + s.shape[-1:]), np.broadcast_to(a, batch)
    n = np.sum(~np.isnan(s), axis=-1)
    if symmetric:
        ordered = np.sort(np.abs(s), axis=-1)
        k = _rank(1.0 - a, n)
        q = _pick(ordered, k - 1, k <= n, np.inf)
        lower, upper = -q, q
    else:
        if optimize_beta:
            flat_s, flat_a = s.reshape(-1, s.shape[-1]), a.reshape(-1)
            beta = np.array(
                [_best_beta(row, x) for row, x in zip(flat_s, flat_a, strict=True)]
            ).reshape(a.shape)
        else:
            beta = a / 2.0
        ordered = np.sort(s, axis=-1)  # nan last
        k_up, k_low = _rank(1.0 - a + beta, n), _rank(1.0 - beta, n)
        upper = _pick(ordered, k_up - 1, k_up <= n, np.inf)
        lower = _pick(ordered, n - k_low, k_low <= n, -np.inf)
    empty = a >= 1.0  # level 1 - alpha <= 0: the conformal rank is 0
    return np.where(empty, np.nan, lower), np.where(empty, np.nan, upper)


def adapt(
    scores: np.ndarray,
    center: np.ndarray,
    y: np.ndarray,
    alpha_t: np.ndarray,
    alpha: float,
    gamma: float,
    *,
    clip: bool = True,
    symmetric: bool = False,
    optimize_beta: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """ACI over ``m`` observations with the scores held fixed: ``(lower, upper, covered,
    alphas used, alpha after)``; ``center`` and ``y`` are ``(..., m)``, ``scores`` ``(..., n)``,
    ``alpha_t`` ``(...)``."""
    lower, upper, covered, used = [], [], [], []
    a = np.asarray(alpha_t, dtype=np.float64)
    for j in range(center.shape[-1]):
        low, up = residual_offsets(scores, a, symmetric=symmetric, optimize_beta=optimize_beta)
        low, up = center[..., j] + low, center[..., j] + up
        hit = (low <= y[..., j]) & (y[..., j] <= up)
        lower.append(low), upper.append(up), covered.append(hit), used.append(a)
        a = a + gamma * (alpha - (~hit))
        if clip:
            a = np.clip(a, 0.0, 1.0)
    stack = [np.stack(v, axis=-1) for v in (lower, upper, covered, used)]
    return (*stack, a)


def roll(scores: np.ndarray, new: np.ndarray, window: int) -> np.ndarray:
    """Append ``new`` residuals (oldest first) and keep the ``window`` most recent."""
    out = np.concatenate([scores, new], axis=-1)
    return out[..., max(0, out.shape[-1] - window) :]


class ACIResult(NamedTuple):
    """Intervals issued before each observation and how ACI moved."""

    lower: np.ndarray  # (..., T)
    upper: np.ndarray  # (..., T)
    covered: np.ndarray  # (..., T) bool
    alpha: np.ndarray  # (..., T) the alpha_t each interval used
    scores: np.ndarray  # (..., window) the scores after the last update


def adaptive_conformal_intervals(
    predictions: Any,
    y: Any,
    scores: Any,
    confidence_level: float = 0.9,
    gamma: float = 0.005,
    *,
    window: int | None = None,
    update_scores: bool = True,
    symmetric: bool = False,
    optimize_beta: bool = False,
    clip: bool = True,
) -> ACIResult:
    """ACI on precomputed point forecasts, one observation at a time.

    Parameters
    ----------
    predictions, y : arrays (..., T)
        Each step's point forecast (made before ``y_t`` was seen) and observation; leading axes
        are independent series, run at once.
    scores : array (..., n)
        Signed residuals ``y - prediction`` of calibration points, oldest first.
    confidence_level : float in (0, 1)
        The target long-run coverage ``1 - alpha``.
    gamma : float in [0, 1]
        The ACI step (0: split conformal with a rolling window).
    window : int, optional
        How many recent scores to keep (default ``n``).
    update_scores : bool
        Whether each step's residual joins the window (``False``: fixed calibration scores).
    symmetric, optimize_beta, clip : bool
        See :mod:`posterax.conformal.time_series`.

    Returns
    -------
    ACIResult
        ``lower``, ``upper``, ``covered`` and ``alpha`` per step, and the final ``scores``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> noise = rng.normal(size=1200) * np.where(np.arange(1200) < 700, 1.0, 3.0)  # jump
    >>> out = adaptive_conformal_intervals(np.zeros(1000), noise[200:], noise[:200], 0.9, 0.01)
    >>> 0.88 < float(out.covered[500:].mean()) < 0.92  # after the jump
    True
    """
    where = "adaptive_conformal_intervals"
    alpha = 1.0 - check_probability(confidence_level, "confidence_level", where, kind="level")
    gamma = check_gamma(gamma, where)
    pred = np.asarray(predictions, dtype=np.float64)
    target = np.asarray(y, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    if pred.shape != target.shape or pred.ndim < 1 or s.shape[:-1] != pred.shape[:-1]:
        raise ValueError(
            f"{where}: 'predictions' and 'y' must have the same shape (..., T) and 'scores' "
            f"(..., n) the same leading axes. Got {pred.shape}, {target.shape} and {s.shape}."
        )
    window = s.shape[-1] if window is None else int(window)
    if window < s.shape[-1]:
        check_window(window, alpha, symmetric, where)
    check_window(min(window, s.shape[-1]), alpha, symmetric, where, name="scores")
    s = s[..., max(0, s.shape[-1] - window) :]
    a = np.full(pred.shape[:-1], alpha)
    parts = []
    options = dict(clip=clip, symmetric=symmetric, optimize_beta=optimize_beta)
    steps = pred.shape[-1] if update_scores else 1
    for t in range(steps):
        at = slice(t, t + 1) if update_scores else slice(None)
        out = adapt(s, pred[..., at], target[..., at], a, alpha, gamma, **options)
        parts.append(out[:4])
        a = out[4]
        if update_scores:
            s = roll(s, target[..., at] - pred[..., at], window)
    lower, upper, covered, used = (np.concatenate(v, axis=-1) for v in zip(*parts, strict=True))
    return ACIResult(lower, upper, covered, used, s)


__all__ = [
    "ACIResult",
    "adapt",
    "adaptive_conformal_intervals",
    "check_gamma",
    "check_time_order",
    "check_window",
    "residual_offsets",
    "roll",
    "smallest_window",
    "time_of",
]
