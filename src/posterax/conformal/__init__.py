"""Conformal prediction: distribution-free coverage guarantees around any model's predictions.

Workflow (as in MAPIE): wrap a model in :class:`SplitConformalRegressor` or
:class:`SplitConformalClassifier`, optionally ``fit``, then ``conformalize(X_cal, y_cal)`` and
``predict_interval(X)`` / ``predict_set(X)``. On precomputed predictions (arrays or
:class:`~posterax.base.PredictiveSamples`): :func:`split_conformal_interval` (absolute or normalised
by the predictive std), :func:`cqr_interval`, :func:`conformal_prediction_sets` (LAC, APS, RAPS).
The threshold is :func:`conformal_quantile`, the ``ceil((n + 1)(1 - alpha))``-th smallest score.
Without a calibration split: :class:`CrossConformalRegressor` (CV+, jackknife+, CV-minmax) and
:class:`JackknifeAfterBootstrapRegressor`; sets: :class:`CrossConformalClassifier`. Per group
(Mondrian): ``conformalize(..., partition=)``. Covariate shift:
:class:`WeightedSplitConformalRegressor`.
Risk control (multilabel FNR, precision): :class:`MultiLabelRiskController`,
:func:`conformal_risk_control`, :func:`learn_then_test`. The Bayesian predictive as the score
(full conformal from posterior draws): :class:`ConformalBayesRegressor`. Time series:
:class:`AdaptiveConformalRegressor` (ACI) and :class:`EnbPIRegressor`, with ``update(X, y)`` as
observations arrive; :func:`adaptive_conformal_intervals` on precomputed forecasts.
"""

from posterax.conformal.bayes import ConformalBayesRegressor, conformal_bayes_pvalues
from posterax.conformal.classification import conformal_prediction_sets, set_size
from posterax.conformal.cross import (
    CrossConformalRegressor,
    JackknifeAfterBootstrapRegressor,
    cross_conformal_interval,
)
from posterax.conformal.cross_classification import CrossConformalClassifier
from posterax.conformal.ltt import (
    LearnThenTest,
    control_fwer,
    hoeffding_bentkus_p_values,
    learn_then_test,
)
from posterax.conformal.quantile import conformal_quantile, conformal_rank
from posterax.conformal.regression import cqr_interval, split_conformal_interval
from posterax.conformal.risk import (
    MultiLabelRiskController,
    RiskControl,
    conformal_risk_control,
    false_discovery_rate,
    false_negative_rate,
)
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
from posterax.conformal.time_series import ACIResult, adaptive_conformal_intervals
from posterax.conformal.time_series_wrappers import AdaptiveConformalRegressor, EnbPIRegressor
from posterax.conformal.weighted import (
    ClassifierLikelihoodRatio,
    WeightedSplitConformalRegressor,
    weighted_conformal_quantile,
)
from posterax.conformal.wrappers import SplitConformalClassifier, SplitConformalRegressor

__all__ = [
    "ACIResult",
    "AdaptiveConformalRegressor",
    "ClassifierLikelihoodRatio",
    "ConformalBayesRegressor",
    "CrossConformalClassifier",
    "CrossConformalRegressor",
    "EnbPIRegressor",
    "JackknifeAfterBootstrapRegressor",
    "LearnThenTest",
    "MultiLabelRiskController",
    "RiskControl",
    "SplitConformalClassifier",
    "SplitConformalRegressor",
    "WeightedSplitConformalRegressor",
    "absolute_residual_score",
    "adaptive_conformal_intervals",
    "aps_score",
    "aps_set",
    "conformal_bayes_pvalues",
    "conformal_prediction_sets",
    "conformal_quantile",
    "conformal_rank",
    "conformal_risk_control",
    "control_fwer",
    "cqr_interval",
    "cqr_score",
    "cross_conformal_interval",
    "false_discovery_rate",
    "false_negative_rate",
    "hoeffding_bentkus_p_values",
    "lac_score",
    "lac_set",
    "learn_then_test",
    "normalized_residual_score",
    "raps_score",
    "raps_set",
    "set_size",
    "split_conformal_interval",
    "weighted_conformal_quantile",
]
