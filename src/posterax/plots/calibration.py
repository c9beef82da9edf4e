"""Calibration plots: reliability diagram, regression calibration curve, coverage vs nominal level
and interval-width histogram. Each function returns a matplotlib Figure.

Inputs are arrays (NumPy or JAX) or :class:`~posterax.base.PredictiveSamples`; the numbers come from
:mod:`posterax.metrics`, so a plot always shows what the metrics report.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from posterax.metrics import (
    CoverageByBins,
    expected_calibration_error,
    regression_calibration_curve,
    regression_calibration_error,
    reliability_bins,
)

_BLUE, _RED, _GREY = "#4C72B0", "#C44E52", "#8C8C8C"


def _axes(ax: plt.Axes | None, figsize: tuple[float, float]) -> tuple[Figure, plt.Axes]:
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def _named(values: Any, default: str) -> dict[str, np.ndarray]:
    if isinstance(values, Mapping):
        return {str(k): np.asarray(v, dtype=float).ravel() for k, v in values.items()}
    return {default: np.asarray(values, dtype=float).ravel()}


def plot_reliability_diagram(
    y_true: Any,
    y_prob: Any,
    *,
    n_bins: int = 15,
    strategy: str = "uniform",
    title: str | None = None,
) -> Figure:
    """Reliability diagram (accuracy against confidence per bin) above a confidence histogram.

    Bars show each bin's accuracy; the red part is the gap to its mean confidence (over-confidence
    when the bar falls short of the diagonal). The lower panel shows how many predictions fall in
    each bin, so small bins are not over-read. The legend gives the ECE.

    Parameters
    ----------
    y_true : array of int, shape (N,)
    y_prob : array, shape (N, K) or (N,), or PredictiveSamples
    n_bins : int, default 15
    strategy : {"uniform", "quantile"}, default "uniform"
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    bins = reliability_bins(y_true, y_prob, n_bins=n_bins, strategy=strategy)
    ece = float(expected_calibration_error(y_true, y_prob, n_bins=n_bins, strategy=strategy))
    conf, acc, count = (
        np.asarray(a, dtype=float) for a in (bins.confidence, bins.accuracy, bins.count)
    )
    lower, upper = np.asarray(bins.lower, dtype=float), np.asarray(bins.upper, dtype=float)
    filled = count > 0
    left, width = lower[filled], (upper - lower)[filled]
    width = np.where(width > 0, width, 1.0 / n_bins / 4)  # a visible bar for one-value bins

    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(5.5, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    top.plot([0, 1], [0, 1], ls="--", color=_GREY, lw=1, label="perfect calibration")
    top.bar(
        left,
        acc[filled],
        width=width,
        align="edge",
        color=_BLUE,
        edgecolor="white",
        alpha=0.85,
        label="accuracy",
    )
    top.bar(
        left,
        conf[filled] - acc[filled],
        bottom=acc[filled],
        width=width,
        align="edge",
        color=_RED,
        alpha=0.35,
        edgecolor=_RED,
        label=f"gap (ECE = {ece:.3f})",
    )
    top.set_ylabel("accuracy")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.legend(loc="upper left", fontsize=8)
    top.set_title(title or f"Reliability diagram ({n_bins} {strategy} bins)")
    bottom.bar(
        left, count[filled] / count.sum(), width=width, align="edge", color=_BLUE, edgecolor="white"
    )
    bottom.set_xlabel("confidence (top-label probability)")
    bottom.set_ylabel("fraction")
    fig.tight_layout()
    return fig


def plot_regression_calibration(
    y_true: Any,
    y_pred: Any,
    y_std: Any = None,
    *,
    n_levels: int = 99,
    label: str = "model",
    title: str | None = None,
    ax: plt.Axes | None = None,
) -> Figure:
    """Quantile calibration curve of a regression predictive: observed vs expected level.

    A point ``(p, f)`` says a fraction ``f`` of targets fell below the predictive ``p``-quantile;
    calibrated predictives follow the diagonal. The legend gives the area between the curve and
    the diagonal (:func:`posterax.metrics.regression_calibration_error`).

    Parameters
    ----------
    y_true : array, shape (N,)
    y_pred : array, shape (N,), or PredictiveSamples
    y_std : array, shape (N,), optional
    n_levels : int, default 99
    label : str, default "model"
    title : str, optional
    ax : matplotlib Axes, optional
        Draw into this Axes (e.g. to overlay models); a new Figure otherwise.

    Returns
    -------
    matplotlib.figure.Figure
    """
    expected, observed = regression_calibration_curve(y_true, y_pred, y_std, n_levels=n_levels)
    area = float(regression_calibration_error(y_true, y_pred, y_std))
    fig, ax = _axes(ax, (5, 5))
    if not ax.lines:
        ax.plot([0, 1], [0, 1], ls="--", color=_GREY, lw=1, label="perfect calibration")
    ax.plot(np.asarray(expected), np.asarray(observed), lw=2, label=f"{label} (area = {area:.3f})")
    ax.set_xlabel("expected quantile level")
    ax.set_ylabel("observed fraction below")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title or "Regression calibration")
    fig.tight_layout()
    return fig


def plot_coverage(
    nominal: Any,
    observed: Any,
    *,
    title: str | None = None,
    ax: plt.Axes | None = None,
) -> Figure:
    """Observed coverage of prediction intervals against their nominal level.

    Parameters
    ----------
    nominal : array, shape (L,)
        Nominal levels, e.g. ``[0.5, 0.8, 0.9, 0.95]``.
    observed : array, shape (L,), or dict of name -> array (L,)
        Empirical coverage at each level (:func:`posterax.metrics.coverage`); a dict overlays
        methods (e.g. Bayesian intervals and their conformalised version).
    title : str, optional
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    levels = np.asarray(nominal, dtype=float).ravel()
    series = _named(observed, "observed")
    for name, values in series.items():
        if values.shape != levels.shape:
            raise ValueError(
                f"plot_coverage: 'observed' ({name}) has {values.size} values but 'nominal' has "
                f"{levels.size}. Pass one coverage per nominal level."
            )
    fig, ax = _axes(ax, (5, 5))
    lo = float(min(levels.min(), *(v.min() for v in series.values()))) - 0.05
    ax.plot([lo, 1], [lo, 1], ls="--", color=_GREY, lw=1, label="nominal")
    for name, values in series.items():
        ax.plot(levels, values, marker="o", lw=1.5, label=name)
    ax.set_xlabel("nominal coverage")
    ax.set_ylabel("observed coverage")
    ax.set_xlim(lo, 1)
    ax.set_ylim(lo, 1)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title or "Coverage vs nominal level")
    fig.tight_layout()
    return fig


def plot_interval_widths(
    widths: Any,
    *,
    bins: int = 30,
    title: str | None = None,
    ax: plt.Axes | None = None,
) -> Figure:
    """Histogram of prediction-interval widths (``upper - lower``).

    Adaptive methods (normalised conformal, CQR, Bayesian intervals) spread their widths;
    absolute-residual conformal gives one width for all points.

    Parameters
    ----------
    widths : array, shape (N,), or dict of name -> array
    bins : int, default 30
    title : str, optional
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    series = _named(widths, "interval width")
    fig, ax = _axes(ax, (6, 4))
    finite = np.concatenate([v[np.isfinite(v)] for v in series.values()])
    if finite.size == 0:
        raise ValueError("plot_interval_widths: 'widths' holds no finite value to plot.")
    edges = np.histogram_bin_edges(finite, bins=bins)
    for name, values in series.items():
        ax.hist(
            values[np.isfinite(values)],
            bins=edges,
            alpha=0.55,
            label=f"{name} (mean {np.mean(values):.3g})",
        )
    ax.set_xlabel("interval width")
    ax.set_ylabel("count")
    ax.legend(fontsize=8)
    ax.set_title(title or "Prediction-interval widths")
    fig.tight_layout()
    return fig


def plot_coverage_by_uncertainty(
    table: CoverageByBins,
    level: float,
    *,
    uncertainty_name: str = "epistemic sd",
    title: str | None = None,
) -> Figure:
    """Where the intervals cover: coverage (left) and mean width (right) of each interval in
    bins of uncertainty, from :func:`posterax.metrics.coverage_by_uncertainty`.

    With the Bayesian intervals and their conformalised version, the left panel shows the bins
    where the Bayesian ones already cover ``level`` and where they fall short; the right one
    how much conformal widened them there.

    Parameters
    ----------
    table : CoverageByBins
    level : float
        Nominal coverage (a dashed line).
    uncertainty_name : str, default "epistemic sd"
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, (cover_ax, width_ax) = plt.subplots(1, 2, figsize=(10, 3.8))
    n_bins, names = table.count.size, list(table.coverage)
    step = 0.8 / len(names)
    x = np.arange(n_bins)
    for i, name in enumerate(names):
        offset = (i - (len(names) - 1) / 2) * step
        cover_ax.bar(x + offset, table.coverage[name], step, label=name)
        width_ax.bar(x + offset, table.width[name], step, label=name)
    cover_ax.axhline(level, ls="--", color=_GREY, lw=1)
    low = min(float(np.nanmin(v)) for v in table.coverage.values())
    cover_ax.set_ylim(max(0.0, min(low, level) - 0.1), 1.0)
    labels = [f"{a:.2g}–{b:.2g}" for a, b in zip(table.edges[:-1], table.edges[1:], strict=True)]
    for ax, what in (
        (cover_ax, f"coverage (dashed: nominal {level:g})"),
        (width_ax, "mean interval width"),
    ):
        ax.set_xticks(x, labels, fontsize=8)
        ax.set_xlabel(f"{uncertainty_name} (equal-count bins of {int(table.count.min())}+)")
        ax.set_ylabel(what)
    width_ax.legend(fontsize=8, loc="upper left")  # the bars hide no legend there
    fig.suptitle(title or f"Coverage by {uncertainty_name}")
    fig.tight_layout()
    return fig


__all__ = [
    "plot_coverage",
    "plot_coverage_by_uncertainty",
    "plot_interval_widths",
    "plot_regression_calibration",
    "plot_reliability_diagram",
]
