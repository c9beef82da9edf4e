"""Posterior histograms per parameter with the central 95% interval marked."""

from __future__ import annotations

import math
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def _flatten(draws: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for name, value in draws.items():
        value = np.asarray(value)
        if value.ndim == 1:
            out[name] = value
        else:
            flat = value.reshape(value.shape[0], -1)
            for i in range(flat.shape[1]):
                out[f"{name}[{i}]"] = flat[:, i]
    return out


def plot_posterior(
    draws: Mapping[str, np.ndarray],
    *,
    level: float = 0.95,
    true_values: Mapping[str, float] | None = None,
    title: str | None = None,
    bins: int = 50,
) -> Figure:
    """One histogram per scalar parameter with the mean and the central ``level`` interval.

    Parameters
    ----------
    draws : mapping of name -> array of shape (S,) or (S, ...)
        Posterior draws (e.g. ``est.posterior_.sample(key, 2000)``).
    level : float
        Mass of the central interval that is shaded.
    true_values : mapping, optional
        Known values to mark (e.g. the generating coefficient of synthetic data).
    """
    flat = _flatten(draws)
    n = len(flat)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    tail = (1 - level) / 2
    for ax, (name, values) in zip(axes.ravel(), flat.items(), strict=False):
        lo, hi = np.quantile(values, [tail, 1 - tail])
        ax.hist(values, bins=bins, density=True, color="#4C72B0", alpha=0.75, edgecolor="white")
        ax.axvspan(lo, hi, color="#4C72B0", alpha=0.12, label=f"{level:.0%} interval")
        ax.axvline(np.mean(values), color="#C44E52", lw=2, label=f"mean {np.mean(values):.3g}")
        for edge in (lo, hi):
            ax.axvline(edge, color="#4C72B0", lw=1, ls="--")
        if true_values and name in true_values:
            ax.axvline(
                true_values[name],
                color="black",
                lw=1.5,
                ls=":",
                label=f"true {true_values[name]:.3g}",
            )
        ax.set_title(f"{name}: [{lo:.4g}, {hi:.4g}]", fontsize=10)
        ax.set_yticks([])
        ax.legend(fontsize=7, frameon=False)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


__all__ = ["plot_posterior"]
