"""Plots: matplotlib; inputs are arrays or results; each function returns a Figure."""

from posterax.plots.calibration import (
    plot_coverage,
    plot_coverage_by_uncertainty,
    plot_interval_widths,
    plot_regression_calibration,
    plot_reliability_diagram,
)
from posterax.plots.images import plot_image_predictions
from posterax.plots.methods import plot_method_bands
from posterax.plots.posterior import plot_posterior
from posterax.plots.regression import plot_regression_band
from posterax.plots.uncertainty import (
    plot_continual_accuracy,
    plot_decomposition,
    plot_learning_curves,
    plot_ood_scores,
    plot_risk_coverage,
)

__all__ = [
    "plot_continual_accuracy",
    "plot_coverage",
    "plot_coverage_by_uncertainty",
    "plot_decomposition",
    "plot_image_predictions",
    "plot_interval_widths",
    "plot_learning_curves",
    "plot_method_bands",
    "plot_ood_scores",
    "plot_posterior",
    "plot_regression_band",
    "plot_regression_calibration",
    "plot_reliability_diagram",
    "plot_risk_coverage",
]
