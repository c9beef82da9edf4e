"""Isotonic recalibration with scikit-learn's ``IsotonicRegression``.

- :class:`IsotonicCalibration` (classification, top-label): maps the confidence of the predicted
  class to the observed accuracy at that confidence (Zadrozny & Elkan, 2002; Gupta & Ramdas, 2021).
- :class:`QuantileRecalibration` (regression): maps the predictive CDF ``F(y)`` to the observed
  frequency of targets below it, so that recalibrated quantiles cover as advertised
  (Kuleshov et al., 2018).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.utils.validation import check_is_fitted

from posterax.predictive.inputs import (
    as_float,
    as_labels,
    check_probability,
    check_same_length,
    class_probs,
    mixture_cdf,
    mixture_quantile,
    regression_draws,
)


def _isotonic() -> IsotonicRegression:
    return IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")


class IsotonicCalibration(BaseEstimator):
    """Top-label isotonic calibration of classifier probabilities.

    ``fit`` regresses "the argmax was right" on the top-label confidence with a non-decreasing
    step function. ``predict_proba`` replaces each point's top confidence ``c`` by the fitted
    ``g(c)`` and rescales the other classes by ``(1 - g(c)) / (1 - c)`` so rows still sum to one
    (spread evenly when ``c = 1``). Top-label confidences become calibrated; the other classes keep
    their relative sizes. When ``g(c) < 1/2`` another class can end up larger than the calibrated
    confidence; read the prediction from the input's argmax and its confidence from
    :meth:`predict_confidence`.

    Attributes
    ----------
    isotonic_ : sklearn.isotonic.IsotonicRegression
        The fitted map from confidence to accuracy.
    n_classes_ : int

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> p1 = rng.uniform(0.5, 1.0, 400)
    >>> y = (rng.uniform(size=400) < 0.5 + (p1 - 0.5) / 2).astype(int)  # over-confident
    >>> probs = np.stack([1 - p1, p1], axis=1)
    >>> cal = IsotonicCalibration().fit(probs, y)
    >>> cal.predict_proba(probs).shape
    (400, 2)
    """

    def fit(self, y_prob: Any, y: Any) -> IsotonicCalibration:
        """Fit the confidence-to-accuracy map.

        Parameters
        ----------
        y_prob : array, shape (N, K) or (N,), or PredictiveSamples
            Held-out probabilities (mean softmax over draws for PredictiveSamples).
        y : array of int, shape (N,)

        Returns
        -------
        self
        """
        where = "IsotonicCalibration.fit"
        p = class_probs(y_prob, "y_prob", where)
        labels = as_labels(y, "y", where, p.shape[1])
        check_same_length(where, y_prob=p, y=labels)
        p = np.asarray(p, dtype=np.float64)
        correct = (p.argmax(axis=1) == np.asarray(labels)).astype(np.float64)
        self.isotonic_ = _isotonic().fit(p.max(axis=1), correct)
        self.n_classes_ = int(p.shape[1])
        return self

    def predict_confidence(self, y_prob: Any) -> np.ndarray:
        """Calibrated top-label confidence ``(N,)``."""
        check_is_fitted(self)
        p = class_probs(y_prob, "y_prob", "IsotonicCalibration.predict_confidence")
        return self.isotonic_.predict(np.asarray(p, dtype=np.float64).max(axis=1))

    def predict_proba(self, y_prob: Any) -> np.ndarray:
        """Calibrated probabilities ``(N, K)`` (float64 NumPy).

        Parameters
        ----------
        y_prob : array, shape (N, K) or (N,), or PredictiveSamples

        Returns
        -------
        numpy.ndarray, shape (N, K)
        """
        check_is_fitted(self)
        where = "IsotonicCalibration.predict_proba"
        p = np.asarray(class_probs(y_prob, "y_prob", where), dtype=np.float64)
        if p.shape[1] != self.n_classes_:
            raise ValueError(
                f"{where}: 'y_prob' has {p.shape[1]} classes but the calibration was fitted on "
                f"{self.n_classes_}. Pass probabilities for the same classes."
            )
        rows = np.arange(p.shape[0])
        top = p.argmax(axis=1)
        conf = p[rows, top]
        new = self.isotonic_.predict(conf)
        rest = p.sum(axis=1) - conf  # mass of the other classes, as given
        factor = np.divide(1.0 - new, rest, out=np.zeros_like(rest), where=rest > 0)
        out = p * factor[:, None]
        even = (1.0 - new) / max(self.n_classes_ - 1, 1)
        out[rest <= 0] = even[rest <= 0, None]
        out[rows, top] = new
        return out

    def transform(self, y_prob: Any) -> np.ndarray:
        """Alias of :meth:`predict_proba` (scikit-learn transformer interface)."""
        return self.predict_proba(y_prob)


class QuantileRecalibration(BaseEstimator):
    """Isotonic recalibration of a regression predictive's CDF (Kuleshov et al., 2018).

    With PIT values ``u_n = F_n(y_n)`` on held-out data, ``fit`` learns the non-decreasing map
    ``R(p) = P(u <= p)``. The recalibrated CDF is ``R(F(y))`` and its ``q``-quantile
    ``F^{-1}(R^{-1}(q))``, both per point.

    Attributes
    ----------
    isotonic_ : sklearn.isotonic.IsotonicRegression
        ``R``: predicted CDF level -> observed frequency.
    inverse_ : sklearn.isotonic.IsotonicRegression
        ``R^{-1}``: observed frequency -> predicted CDF level.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.normal(scale=2.0, size=1000)  # the model says std 1: too narrow
    >>> rec = QuantileRecalibration().fit(np.zeros(1000), y, y_std=np.ones(1000))
    >>> lo, hi = rec.predict_interval(np.zeros(2), level=0.9, y_std=np.ones(2))
    >>> bool(3.0 < float(hi[0]) < 3.6)  # about 1.645 * 2
    True
    """

    def fit(self, y_pred: Any, y: Any, y_std: Any = None) -> QuantileRecalibration:
        """Fit ``R`` on held-out targets.

        Parameters
        ----------
        y_pred : array, shape (N,), or PredictiveSamples
            Predictive mean (Gaussian with ``y_std``) or predictive samples (mixture CDF).
        y : array, shape (N,)
        y_std : array, shape (N,), optional

        Returns
        -------
        self
        """
        where = "QuantileRecalibration.fit"
        target = as_float(y, "y", where, ndim=1)
        mean, scale = regression_draws(y_pred, y_std, "y_pred", where)
        check_same_length(where, y_pred=mean.T, y=target)
        u = np.sort(np.asarray(mixture_cdf(mean, scale, target.astype(mean.dtype)), np.float64))
        observed = np.arange(1, u.size + 1) / u.size
        # Anchor the ends so the map covers [0, 1].
        u = np.concatenate([[0.0], u, [1.0]])
        observed = np.concatenate([[0.0], observed, [1.0]])
        self.isotonic_ = _isotonic().fit(u, observed)
        self.inverse_ = _isotonic().fit(observed, u)
        return self

    def transform(self, cdf_values: Any) -> np.ndarray:
        """Recalibrated CDF levels ``R(cdf_values)`` (any shape)."""
        check_is_fitted(self)
        u = np.asarray(cdf_values, dtype=np.float64)
        return self.isotonic_.predict(u.ravel()).reshape(u.shape)

    def cdf(self, y_pred: Any, y: Any, y_std: Any = None) -> np.ndarray:
        """Recalibrated CDF ``R(F_n(y_n))`` at targets ``y`` ``(N,)``."""
        check_is_fitted(self)
        where = "QuantileRecalibration.cdf"
        target = as_float(y, "y", where, ndim=1)
        mean, scale = regression_draws(y_pred, y_std, "y_pred", where)
        check_same_length(where, y_pred=mean.T, y=target)
        return self.transform(mixture_cdf(mean, scale, target.astype(mean.dtype)))

    def quantile(self, y_pred: Any, q: Any, y_std: Any = None) -> jax.Array:
        """Recalibrated quantiles.

        Parameters
        ----------
        y_pred : array, shape (N,), or PredictiveSamples
        q : float or array, shape (Q,)
            Levels in (0, 1).
        y_std : array, shape (N,), optional

        Returns
        -------
        jax.Array, shape (N,) for a float ``q``, else (N, Q)
        """
        check_is_fitted(self)
        where = "QuantileRecalibration.quantile"
        levels = np.atleast_1d(np.asarray(q, dtype=np.float64))
        if levels.ndim != 1 or np.any((levels <= 0) | (levels >= 1)):
            raise ValueError(
                f"The 'q' parameter of {where} must be levels in (0, 1). Got {np.asarray(q)}."
            )
        mean, scale = regression_draws(y_pred, y_std, "y_pred", where)
        raw = np.clip(self.inverse_.predict(levels), 1e-12, 1.0 - 1e-12)
        out = mixture_quantile(mean, scale, jnp.asarray(raw, mean.dtype))
        return out[:, 0] if np.ndim(q) == 0 else out

    def predict_interval(
        self, y_pred: Any, level: float = 0.9, y_std: Any = None
    ) -> tuple[jax.Array, jax.Array]:
        """Central recalibrated interval ``(lower, upper)``, each ``(N,)``."""
        where = "QuantileRecalibration.predict_interval"
        level = check_probability(level, "level", where, kind="level")
        q = self.quantile(y_pred, [(1 - level) / 2, (1 + level) / 2], y_std=y_std)
        return q[:, 0], q[:, 1]


__all__ = ["IsotonicCalibration", "QuantileRecalibration"]
