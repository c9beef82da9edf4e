"""Metrics that judge predictions and their uncertainty: pure ``(y_true, predictions) -> value``.

Predictions are a :class:`~posterax.base.PredictiveSamples` or plain NumPy/JAX arrays; results are
JAX arrays (0-d for scalar metrics), so every function also runs under ``jax.jit`` with its static
arguments (``n_bins``, ``strategy``, ``alpha``...) fixed.

- Regression: :func:`rmse`, :func:`mae`, :func:`gaussian_nll`, :func:`mixture_nll`,
  :func:`crps_gaussian`, :func:`crps_samples`, :func:`pinball_loss`.
- Intervals: :func:`coverage` (PICP), :func:`mean_interval_width`, :func:`interval_score` (Winkler),
  :func:`coverage_by_uncertainty` (coverage and width in bins of uncertainty).
- Regression calibration: :func:`pit`, :func:`regression_calibration_curve`,
  :func:`regression_calibration_error`.
- Classification: :func:`accuracy`, :func:`log_loss`, :func:`brier_score`.
- Classifier calibration: :func:`expected_calibration_error`, :func:`maximum_calibration_error`,
  :func:`classwise_calibration_error`, :func:`adaptive_calibration_error`, :func:`reliability_bins`.
- Selective prediction: :func:`risk_coverage_curve`, :func:`aurc`.
- Detection / OOD: :func:`auroc`, :func:`aupr`, :func:`fpr_at_tpr`, :func:`ood_detection_metrics`.
"""

from posterax.metrics.calibration_error import (
    ReliabilityBins,
    adaptive_calibration_error,
    classwise_calibration_error,
    expected_calibration_error,
    maximum_calibration_error,
    reliability_bins,
)
from posterax.metrics.classification import accuracy, brier_score, log_loss
from posterax.metrics.conditional_coverage import CoverageByBins, coverage_by_uncertainty
from posterax.metrics.intervals import coverage, interval_score, mean_interval_width
from posterax.metrics.ood import aupr, auroc, fpr_at_tpr, ood_detection_metrics
from posterax.metrics.regression import (
    crps_gaussian,
    crps_samples,
    gaussian_nll,
    mae,
    mixture_nll,
    pinball_loss,
    rmse,
)
from posterax.metrics.regression_calibration import (
    pit,
    regression_calibration_curve,
    regression_calibration_error,
)
from posterax.metrics.selective import aurc, risk_coverage_curve

__all__ = [
    "CoverageByBins",
    "ReliabilityBins",
    "accuracy",
    "adaptive_calibration_error",
    "aupr",
    "aurc",
    "auroc",
    "brier_score",
    "classwise_calibration_error",
    "coverage",
    "coverage_by_uncertainty",
    "crps_gaussian",
    "crps_samples",
    "expected_calibration_error",
    "fpr_at_tpr",
    "gaussian_nll",
    "interval_score",
    "log_loss",
    "mae",
    "maximum_calibration_error",
    "mean_interval_width",
    "mixture_nll",
    "ood_detection_metrics",
    "pinball_loss",
    "pit",
    "regression_calibration_curve",
    "regression_calibration_error",
    "reliability_bins",
    "risk_coverage_curve",
    "rmse",
]
