"""Conformal prediction: distribution-free coverage guarantees around any model's predictions.

Workflow (as in MAPIE): wrap a model in :class:`SplitConformalRegressor` or
:class:`SplitConformalClassifier`, optionally ``fit``, then ``conformalize(X_cal, y_cal)`` and
``predict_interval(X)`` / ``predict_set(X)``. On precomputed predictions (arrays or
:class:`~posterax.base.PredictiveSamples`): :func:`split_conformal_interval` (absolute or normalised
by the predictive std), :func:`cqr_interval`, :func:`conformal_prediction_sets` (LAC, APS, RAPS).
The threshold is :func:`conformal_quantile`, the ``ceil((n + 1)(1 - alpha))``-th smallest score.
Without a calibration split: :class:`CrossConformalRegressor` (CV+, jackknife+, CV-minmax) and
:class:`JackknifeAfterBootstrapRegressor`; sets: :class:`CrossConformalClassifier`.
"""

from posterax.conformal.classification import conformal_prediction_sets, set_size
from posterax.conformal.cross import (
    CrossConformalRegressor,
    JackknifeAfterBootstrapRegressor,
    cross_conformal_interval,
)
from posterax.conformal.cross_classification import CrossConformalClassifier
from posterax.conformal.quantile import conformal_quantile, conformal_rank
from posterax.conformal.regression import cqr_interval, split_conformal_interval
from posterax.conformal.scores import (
    absolute_residual_score,
    aps_score,
    aps_set,
    cqr_score,
    lac_score,
    lac_set,
    normalized_residual_score,
    raps_score,
    raps_set,
)
from posterax.conformal.wrappers import SplitConformalClassifier, SplitConformalRegressor

__all__ = [
    "CrossConformalClassifier",
    "CrossConformalRegressor",
    "JackknifeAfterBootstrapRegressor",
    "SplitConformalClassifier",
    "SplitConformalRegressor",
    "absolute_residual_score",
    "aps_score",
    "aps_set",
    "conformal_prediction_sets",
    "conformal_quantile",
    "conformal_rank",
    "cqr_interval",
    "cqr_score",
    "cross_conformal_interval",
    "lac_score",
    "lac_set",
    "normalized_residual_score",
    "raps_score",
    "raps_set",
    "set_size",
    "split_conformal_interval",
]
