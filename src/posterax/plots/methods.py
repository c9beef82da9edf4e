"""Several posterior methods side by side: one regression band panel per method, shared axes."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from posterax.plots.regression import plot_regression_band


def plot_method_bands(
    x: np.ndarray,
    y: np.ndarray,
    x_grid: np.ndarray,
    bands: Mapping[str, Mapping[str, np.ndarray]],
    *,
    titles: Mapping[str, str] | None = None,
    level: float = 0.95,
    ncols: int = 3,
    xlim: tuple[float, float] | None = None,
    ylim: tuple[float, float] | None = None,
    shade: tuple[float, float] | None = None,
    truth: np.ndarray | None = None,
    panel_size: tuple[float, float] = (4.6, 3.4),
) -> Figure:
    """One :func:`plot_regression_band` panel per method in a grid, all on the same axes.

    Parameters
    ----------
    x, y : arrays of shape (N,)
        Observed data, drawn in every panel.
    x_grid : array of shape (G,)
        Sorted inputs where every method's predictive was evaluated.
    bands : mapping of method name to arrays of shape (G,)
        Keys ``"mean"``, ``"lower"`` and ``"upper"`` (the ``level`` prediction interval), and
        optionally ``"mean_lower"`` / ``"mean_upper"`` (credible band of the function). Panels
        follow the mapping's order.
    titles : mapping of method name to str, optional
        Panel titles; default the method name.
    xlim, ylim : (float, float), optional
        Shared limits; default the grid's range and the range of the data and of every band.
    shade : (float, float), optional
        An x range drawn in grey in every panel (e.g. the training range).
    truth : array of shape (G,), optional
        The generating function on ``x_grid``, a dotted line.
    """
    if not bands:
        raise ValueError("plot_method_bands needs at least one method in 'bands'.")
    names = list(bands)
    ncols = max(1, min(ncols, len(names)))
    nrows = math.ceil(len(names) / ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(panel_size[0] * ncols, panel_size[1] * nrows),
        sharex=True,
        sharey=True,
        squeeze=False,
    )
    x_grid = np.asarray(x_grid).ravel()
    if xlim is None:
        xlim = (float(x_grid.min()), float(x_grid.max()))
    if ylim is None:
        ylim = _shared_ylim(y, bands.values())
    flat = axes.ravel()
    for i, (ax, name) in enumerate(zip(flat, names, strict=False)):
        band = bands[name]
        if shade is not None:
            ax.axvspan(*shade, color="#dddddd", alpha=0.35, lw=0, label="training range")
        plot_regression_band(
            x,
            y,
            x_grid,
            band["mean"],
            band["lower"],
            band["upper"],
            mean_lower=band.get("mean_lower"),
            mean_upper=band.get("mean_upper"),
            level=level,
            title=(titles or {}).get(name, name),
            ax=ax,
        )
        if truth is not None:
            ax.plot(x_grid, truth, color="black", lw=1, ls=":", label="truth")
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.title.set_fontsize(10)
        if i % ncols:
            ax.set_ylabel("")
        if i < len(names) - ncols:
            ax.set_xlabel("")
        ax.get_legend().remove()
    for ax in flat[len(names) :]:
        ax.set_visible(False)
    # One legend for the figure, below the panels: the union of the panels' entries.
    entries: dict[str, object] = {}
    for ax in flat[: len(names)]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    fig.legend(
        list(entries.values()),
        list(entries),
        loc="lower center",
        ncol=len(entries),
        fontsize=8,
        frameon=False,
    )
    fig.tight_layout(rect=(0, 0.35 / (panel_size[1] * nrows), 1, 1))
    return fig


def _shared_ylim(y: np.ndarray, bands: Iterable[Mapping[str, np.ndarray]]) -> tuple[float, float]:
    values = [np.asarray(y, dtype=float).ravel()]
    for band in bands:
        values += [np.asarray(band["lower"], dtype=float), np.asarray(band["upper"], dtype=float)]
    low, high = (float(f(np.concatenate(values))) for f in (np.nanmin, np.nanmax))
    pad = 0.05 * (high - low or 1.0)
    return low - pad, high + pad


__all__ = ["plot_method_bands"]
