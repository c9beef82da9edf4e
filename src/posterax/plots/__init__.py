"""Plots: matplotlib; inputs are arrays or results; each function returns a Figure."""

from posterax.plots.calibration import (
    plot_coverage,
    plot_interval_widths,
    plot_regression_calibration,
    plot_reliability_diagram,
)
from posterax.plots.methods import plot_method_bands
from posterax.plots.posterior import plot_posterior
from posterax.plots.regression import plot_regression_band

__all__ = [
    "plot_coverage",
    "plot_interval_widths",
    "plot_method_bands",
    "plot_posterior",
    "plot_regression_band",
    "plot_regression_calibration",
    "plot_reliability_diagram",
]
