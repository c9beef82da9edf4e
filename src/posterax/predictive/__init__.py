"""Predictive: Posterior + X -> PredictiveSamples, and summaries of it."""

from posterax.predictive.sampling import predictive_samples
from posterax.predictive.summaries import (
    predictive_hdi,
    predictive_interval,
    predictive_mean,
    predictive_median,
    predictive_quantiles,
    predictive_std,
    skew_flag,
    summarize,
)

__all__ = [
    "predictive_hdi",
    "predictive_interval",
    "predictive_mean",
    "predictive_median",
    "predictive_quantiles",
    "predictive_samples",
    "predictive_std",
    "skew_flag",
    "summarize",
]
