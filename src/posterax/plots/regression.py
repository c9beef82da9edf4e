"""The regression band plot: data, posterior mean and median, a 95% band, a few draws."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def plot_regression_band(
    x: np.ndarray,
    y: np.ndarray,
    x_grid: np.ndarray,
    mean: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    *,
    median: np.ndarray | None = None,
    mean_lower: np.ndarray | None = None,
    mean_upper: np.ndarray | None = None,
    draws: np.ndarray | None = None,
    level: float = 0.95,
    title: str | None = None,
    ax: plt.Axes | None = None,
) -> Figure:
    """Plot data and the posterior predictive of a 1-D regression.

    Parameters
    ----------
    x, y : arrays of shape (N,)
        Observed data.
    x_grid : array of shape (G,)
        Sorted inputs where the predictive was evaluated.
    mean, lower, upper : arrays of shape (G,)
        Predictive mean and the ``level`` prediction interval (noise included).
    median : array of shape (G,), optional
    mean_lower, mean_upper : arrays of shape (G,), optional
        Credible band of the regression function (no noise).
    draws : array of shape (K, G), optional
        A few posterior draws of the regression function, drawn as thin lines.
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4.5))
    else:
        fig = ax.figure
    x_grid = np.asarray(x_grid).ravel()
    ax.fill_between(
        x_grid, lower, upper, color="#4C72B0", alpha=0.18, label=f"{level:.0%} prediction interval"
    )
    if mean_lower is not None and mean_upper is not None:
        ax.fill_between(
            x_grid,
            mean_lower,
            mean_upper,
            color="#4C72B0",
            alpha=0.35,
            label=f"{level:.0%} credible band (mean)",
        )
    if draws is not None:
        for i, line in enumerate(np.atleast_2d(draws)):
            ax.plot(
                x_grid,
                line,
                color="#55A868",
                lw=0.6,
                alpha=0.5,
                label="posterior draws" if i == 0 else None,
            )
    ax.plot(x_grid, mean, color="#C44E52", lw=2, label="posterior mean")
    if median is not None:
        ax.plot(x_grid, median, color="#8172B2", lw=1.5, ls="--", label="posterior median")
    ax.scatter(np.asarray(x).ravel(), y, s=14, color="black", alpha=0.7, label="data", zorder=3)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, frameon=False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    return fig


__all__ = ["plot_regression_band"]
