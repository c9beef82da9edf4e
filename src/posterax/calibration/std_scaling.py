"""Std-scaling: one factor on the predictive standard deviation of a regression model.

Levi et al. (2019) and Laves et al. (2020): with held-out targets, the factor ``s`` that minimises
the Gaussian NLL of ``N(mu, (s sigma)^2)`` has the closed form ``s^2 = mean(((y - mu) / sigma)^2)``;
no optimiser is needed. ``s > 1`` widens an over-confident model.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from posterax.base import PredictiveSamples
from posterax.predictive.inputs import (
    as_float,
    check_same_length,
    is_predictive,
    mixture_moments,
    regression_draws,
)


class StdScaling(BaseEstimator):
    """Scale the predictive standard deviation by one factor fitted by Gaussian NLL.

    For a :class:`~posterax.base.PredictiveSamples` (a mixture over draws) the mixture is stretched
    about its mean: ``mean_s -> m + s (mean_s - m)`` and ``scale_s -> s scale_s``. Its mean stays
    and its standard deviation is multiplied by exactly ``s`` (both epistemic and aleatoric parts).

    Attributes
    ----------
    scale_factor_ : float

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.normal(scale=2.0, size=2000)
    >>> ss = StdScaling().fit(np.zeros(2000), y, y_std=np.ones(2000))
    >>> round(ss.scale_factor_, 1)
    2.0
    """

    def fit(self, y_pred: Any, y: Any, y_std: Any = None) -> StdScaling:
        """Fit the factor on held-out targets.

        Parameters
        ----------
        y_pred : array, shape (N,), or PredictiveSamples
        y : array, shape (N,)
        y_std : array, shape (N,), optional
            Required with an array ``y_pred``.

        Returns
        -------
        self
        """
        where = "StdScaling.fit"
        target = as_float(y, "y", where, ndim=1)
        mean, scale = regression_draws(y_pred, y_std, "y_pred", where)
        check_same_length(where, y_pred=mean.T, y=target)
        mu, sigma = mixture_moments(mean, scale)
        self.scale_factor_ = float(jnp.sqrt(jnp.mean(jnp.square((target - mu) / sigma))))
        return self

    def transform(self, y_pred: Any, y_std: Any = None) -> Any:
        """Rescaled predictive.

        Parameters
        ----------
        y_pred : array, shape (N,), or PredictiveSamples
        y_std : array, shape (N,), optional

        Returns
        -------
        PredictiveSamples, or tuple (mean, std) of arrays (N,)
            Same kind as given.
        """
        check_is_fitted(self)
        where = "StdScaling.transform"
        mean, scale = regression_draws(y_pred, y_std, "y_pred", where)
        s = jnp.asarray(self.scale_factor_, mean.dtype)
        if is_predictive(y_pred):
            center = jnp.mean(mean, axis=0, keepdims=True)
            return PredictiveSamples.regression(center + s * (mean - center), s * scale)
        return mean[0], s * scale[0]

    def predict_std(self, y_pred: Any, y_std: Any = None) -> jax.Array:
        """Rescaled predictive standard deviation ``(N,)``."""
        check_is_fitted(self)
        mean, scale = regression_draws(y_pred, y_std, "y_pred", "StdScaling.predict_std")
        return self.scale_factor_ * mixture_moments(mean, scale)[1]


__all__ = ["StdScaling"]
