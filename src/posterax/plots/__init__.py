"""Plots: matplotlib; inputs are arrays or results; each function returns a Figure."""

from posterax.plots.posterior import plot_posterior
from posterax.plots.regression import plot_regression_band

__all__ = ["plot_posterior", "plot_regression_band"]
