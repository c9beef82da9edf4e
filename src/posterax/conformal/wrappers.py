"""Split conformal prediction around any fitted model: the MAPIE-style workflow.

``fit`` (optional), ``conformalize(X_cal, y_cal)``, then ``predict_interval(X)`` or
``predict_set(X)``.
The wrapped model is any object with ``predict`` (absolute score), ``predict(X, return_std=True)``
(normalised score, e.g. a posterax Bayesian regressor), ``predict_interval(X, level=...)`` or a
pair of quantile regressors (CQR), or ``predict_proba`` (classification); scikit-learn and posterax
estimators all qualify.

Differences from MAPIE 1.x: one confidence level per wrapper; ``predict_interval`` returns
``(lower, upper)`` (as posterax estimators do) and ``predict_set`` a boolean ``(N, K)`` array.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from posterax.conformal.classification import (
    calibration_scores,
    check_set_options,
    sets_from_threshold,
)
from posterax.conformal.mondrian import group_quantiles, thresholds_for
from posterax.conformal.quantile import conformal_quantile
from posterax.conformal.scores import (
    absolute_residual_score,
    cqr_score,
    normalized_residual_score,
)
from posterax.predictive.inputs import (
    as_float,
    as_labels,
    check_choice,
    check_probability,
    check_same_length,
    class_probs,
)

_REGRESSION_SCORES = ("absolute", "normalized", "cqr")


def _is_pair(estimator: Any) -> bool:
    return isinstance(estimator, (tuple, list)) and len(estimator) == 2


class _Wrapper(BaseEstimator):
    """Shared fit / fitted-model plumbing."""

    def _alpha(self) -> float:
        level = check_probability(
            self.confidence_level, "confidence_level", type(self).__name__, kind="level"
        )
        return 1.0 - level

    def fit(self, X: Any, y: Any, **fit_params: Any):
        """Fit a clone of the wrapped model on training data (only with ``prefit=False``).

        Parameters
        ----------
        X : array-like, shape (N, ...)
        y : array-like, shape (N,)
        **fit_params
            Passed to the model's ``fit``.

        Returns
        -------
        self
        """
        name = type(self).__name__
        if self.prefit:
            raise ValueError(
                f"{name}.fit: prefit=True means the estimator is already fitted. Call "
                "conformalize(X_cal, y_cal) directly, or set prefit=False to fit here."
            )
        if self.estimator is None:
            raise ValueError(f"{name}.fit needs an 'estimator'. Got None.")
        if _is_pair(self.estimator):
            self.estimator_ = tuple(clone(e).fit(X, y, **fit_params) for e in self.estimator)
        else:
            self.estimator_ = clone(self.estimator).fit(X, y, **fit_params)
        return self

    def _model(self) -> Any:
        if hasattr(self, "estimator_"):
            return self.estimator_
        name = type(self).__name__
        if not self.prefit:
            raise NotFittedError(
                f"This {name} has prefit=False and is not fitted yet. Call fit(X_train, y_train) "
                "before conformalize."
            )
        if self.estimator is None:
            raise ValueError(f"{name} needs an 'estimator' (a fitted model). Got None.")
        return self.estimator


class SplitConformalRegressor(_Wrapper):
    """Prediction intervals with a split-conformal coverage guarantee.

    Parameters
    ----------
    estimator : object
        A fitted model (``prefit=True``) or one to fit. What it must offer depends on
        ``conformity_score``:

        - ``"absolute"``: ``predict(X)``; intervals ``pred +- q``.
        - ``"normalized"``: ``predict(X, return_std=True) -> (mean, std)``; intervals
          ``mean +- q * std`` (conformalised Bayes with a Bayesian model).
        - ``"cqr"``: ``predict_interval(X, level=confidence_level) -> (lower, upper)``, or a pair
          ``(lower_model, upper_model)`` of quantile regressors at ``alpha/2`` and
          ``1 - alpha/2`` with ``predict``.
    confidence_level : float in (0, 1), default 0.9
        Target coverage ``1 - alpha``.
    conformity_score : {"absolute", "normalized", "cqr"}, default "absolute"
    prefit : bool, default True
        Whether ``estimator`` is already fitted.

    Attributes
    ----------
    estimator_ : object
        The model fitted by :meth:`fit` (absent with ``prefit=True``).
    quantile_ : float
        The calibrated score threshold ``q``.
    n_conformalize_ : int
        Number of calibration points.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(600, 1)); y = 2 * X[:, 0] + rng.normal(size=600)
    >>> model = LinearRegression().fit(X[:200], y[:200])
    >>> scr = SplitConformalRegressor(model, confidence_level=0.9)
    >>> scr = scr.conformalize(X[200:400], y[200:400])
    >>> lo, hi = scr.predict_interval(X[400:])
    >>> 0.8 < float(np.mean((lo <= y[400:]) & (y[400:] <= hi))) < 1.0
    True
    """

    def __init__(
        self,
        estimator: Any = None,
        confidence_level: float = 0.9,
        conformity_score: str = "absolute",
        prefit: bool = True,
    ):
        self.estimator = estimator
        self.confidence_level = confidence_level
        self.conformity_score = conformity_score
        self.prefit = prefit

    def _predictions(self, X: Any, where: str) -> tuple[jax.Array, jax.Array | None]:
        """``(center, spread)`` for absolute/normalised, ``(lower, upper)`` for CQR."""
        model = self._model()
        score = self.conformity_score
        if score == "absolute":
            if _is_pair(model):
                raise TypeError(
                    f"{where}: a (lower, upper) pair of models is for conformity_score='cqr'. "
                    "Pass one point-prediction model for 'absolute'."
                )
            return as_float(np.asarray(model.predict(X)).ravel(), "predict(X)", where, 1), None
        if score == "normalized":
            try:
                out = model.predict(X, return_std=True)
            except TypeError as err:
                raise TypeError(
                    f"{where}: conformity_score='normalized' needs an estimator with "
                    f"predict(X, return_std=True). {type(model).__name__} has none; use a "
                    "Bayesian model (e.g. posterax.BayesianRegressor, sklearn GaussianProcess"
                    "Regressor) or conformity_score='absolute'."
                ) from err
            mean = as_float(np.asarray(out[0]).ravel(), "predict(X)[0]", where, 1)
            std = as_float(np.asarray(out[1]).ravel(), "predict(X)[1]", where, 1)
            return mean, std
        if _is_pair(model):
            lo, hi = model[0].predict(X), model[1].predict(X)
        elif hasattr(model, "predict_interval"):
            lo, hi = model.predict_interval(X, level=1.0 - self._alpha())
        else:
            raise TypeError(
                f"{where}: conformity_score='cqr' needs a (lower_model, upper_model) pair of "
                "quantile regressors or an estimator with predict_interval(X, level=...). "
                f"Got {type(model).__name__}."
            )
        lo = as_float(np.asarray(lo).ravel(), "lower", where, 1)
        hi = as_float(np.asarray(hi).ravel(), "upper", where, 1)
        return lo, hi

    def conformalize(self, X: Any, y: Any, partition: Any = None) -> SplitConformalRegressor:
        """Compute the score threshold on calibration data (not used for training).

        Parameters
        ----------
        X : array-like, shape (n, ...)
        y : array-like, shape (n,)
        partition : array-like, shape (n,), optional
            Mondrian conformal: one threshold per group, so that coverage holds within each
            group; ``predict_interval`` then needs the test examples' groups.

        Returns
        -------
        self
        """
        where = "SplitConformalRegressor.conformalize"
        check_choice(self.conformity_score, "conformity_score", where, _REGRESSION_SCORES)
        alpha = self._alpha()
        target = as_float(np.asarray(y).ravel(), "y", where, 1)
        a, b = self._predictions(X, where)
        check_same_length(where, X=a, y=target)
        scores = self._scores(target, a, b)
        q = conformal_quantile(scores, alpha)
        self.quantile_ = float(q)
        self.n_conformalize_ = int(target.shape[0])
        self.group_quantiles_ = (
            None if partition is None else group_quantiles(scores, partition, alpha, where)
        )
        return self

    def predict(self, X: Any) -> jax.Array:
        """Point predictions ``(N,)`` (the interval midpoint for CQR)."""
        where = "SplitConformalRegressor.predict"
        a, b = self._predictions(X, where)
        return 0.5 * (a + b) if self.conformity_score == "cqr" else a

    def predict_interval(self, X: Any, partition: Any = None) -> tuple[jax.Array, jax.Array]:
        """Conformal intervals at ``confidence_level``.

        Parameters
        ----------
        X : array-like, shape (N, ...)
        partition : array-like, shape (N,), optional
            The examples' groups, when conformalized per group (Mondrian).

        Returns
        -------
        lower, upper : jax.Array, shape (N,)
        """
        check_is_fitted(self, "quantile_")
        where = "SplitConformalRegressor.predict_interval"
        a, b = self._predictions(X, where)
        q = jnp.asarray(self.quantile_, a.dtype)
        if getattr(self, "group_quantiles_", None) is not None:
            q = jnp.asarray(
                thresholds_for(self.group_quantiles_, partition, a.shape[0], where), a.dtype
            )
        return self._interval(a, b, q)

    def _scores(self, target: Any, a: jax.Array, b: jax.Array | None) -> jax.Array:
        """Conformity scores of ``target`` against :meth:`_predictions`' pair ``(a, b)``."""
        if self.conformity_score == "absolute":
            return absolute_residual_score(target, a)
        if self.conformity_score == "normalized":
            return normalized_residual_score(target, a, b)
        return cqr_score(target, a, b)

    def _interval(
        self, a: jax.Array, b: jax.Array | None, q: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """``(lower, upper)`` from :meth:`_predictions`' pair and the threshold ``q`` (one, or
        one per point; ``+inf`` gives the whole line, also where the std is 0)."""
        if self.conformity_score == "absolute":
            return a - q, a + q
        if self.conformity_score == "normalized":
            half = jnp.where(jnp.isinf(q), jnp.inf, q * b)  # inf * 0 would be NaN
            return a - half, a + half
        return a - q, b + q


class SplitConformalClassifier(_Wrapper):
    """Prediction sets with a split-conformal coverage guarantee.

    Parameters
    ----------
    estimator : object
        A model with ``predict_proba(X) -> (N, K)``; its ``classes_`` (if any) give the label of
        each column.
    confidence_level : float in (0, 1), default 0.9
    conformity_score : {"lac", "aps", "raps"}, default "lac"
    randomized : bool, default False
        APS/RAPS: randomised scores and sets (coverage close to exactly ``confidence_level``,
        sets may be empty) instead of deterministic sets that always hold the top class.
    k_reg : int, default 1
        RAPS: ranks up to ``k_reg`` are not penalised.
    lambda_reg : float, default 0.01
        RAPS: penalty per rank beyond ``k_reg``.
    random_state : int or None, default None
        Seed of the uniforms when ``randomized``.
    class_conditional : bool, default False
        One threshold per class (Mondrian by label): coverage ``confidence_level`` within every
        class, not only on average over classes.
    prefit : bool, default True

    Attributes
    ----------
    estimator_ : object
        The model fitted by :meth:`fit` (absent with ``prefit=True``).
    classes_ : numpy.ndarray, shape (K,)
    quantile_ : float
    n_conformalize_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> X, y = load_iris(return_X_y=True)
    >>> idx = np.random.default_rng(0).permutation(150)
    >>> model = LogisticRegression(max_iter=500).fit(X[idx[:50]], y[idx[:50]])
    >>> scc = SplitConformalClassifier(model, confidence_level=0.9, conformity_score="aps")
    >>> sets = scc.conformalize(X[idx[50:100]], y[idx[50:100]]).predict_set(X[idx[100:]])
    >>> sets.shape
    (50, 3)
    """

    def __init__(
        self,
        estimator: Any = None,
        confidence_level: float = 0.9,
        conformity_score: str = "lac",
        randomized: bool = False,
        k_reg: int = 1,
        lambda_reg: float = 0.01,
        random_state: int | None = None,
        class_conditional: bool = False,
        prefit: bool = True,
    ):
        self.estimator = estimator
        self.confidence_level = confidence_level
        self.conformity_score = conformity_score
        self.class_conditional = class_conditional
        self.randomized = randomized
        self.k_reg = k_reg
        self.lambda_reg = lambda_reg
        self.random_state = random_state
        self.prefit = prefit

    def _probs(self, X: Any, where: str) -> jax.Array:
        model = self._model()
        if not hasattr(model, "predict_proba"):
            raise TypeError(
                f"{where}: the estimator must have predict_proba(X). Got {type(model).__name__}."
            )
        return class_probs(np.asarray(model.predict_proba(X)), "predict_proba(X)", where)

    def _uniforms(self, n: int, stream: int, dtype: Any) -> jax.Array:
        key = jax.random.fold_in(jax.random.key(self.seed_), stream)
        return jax.random.uniform(key, (n,), dtype)

    def conformalize(self, X: Any, y: Any, partition: Any = None) -> SplitConformalClassifier:
        """Compute the score threshold on calibration data.

        Parameters
        ----------
        X : array-like, shape (n, ...)
        y : array-like, shape (n,)
            Labels (values of the model's ``classes_``, or ``0..K-1`` without one).
        partition : array-like, shape (n,), optional
            Mondrian conformal: one threshold per group; ``predict_set`` then needs the test
            examples' groups.

        Returns
        -------
        self
        """
        where = "SplitConformalClassifier.conformalize"
        alpha = self._alpha()
        k_reg, lambda_reg = check_set_options(
            self.conformity_score, self.randomized, self.k_reg, self.lambda_reg, where
        )
        probs = self._probs(X, where)
        model = self._model()
        classes = getattr(model, "classes_", None)
        self.classes_ = np.arange(probs.shape[1]) if classes is None else np.asarray(classes)
        y = np.asarray(y).ravel()
        if classes is not None:
            index = np.searchsorted(self.classes_, y)
            index = np.clip(index, 0, len(self.classes_) - 1)
            unknown = self.classes_[index] != y
            if np.any(unknown):
                raise ValueError(
                    f"{where}: 'y' holds labels the estimator does not predict: "
                    f"{np.unique(y[unknown])[:5].tolist()}. Its classes_ are "
                    f"{self.classes_.tolist()[:10]}."
                )
            y = index
        labels = as_labels(y, "y", where, probs.shape[1])
        check_same_length(where, X=probs, y=labels)
        self.seed_ = int(np.random.default_rng(self.random_state).integers(2**31 - 1))
        u = self._uniforms(probs.shape[0], 0, probs.dtype) if self.randomized else None
        scores = calibration_scores(probs, labels, self.conformity_score, k_reg, lambda_reg, u)
        q = conformal_quantile(scores, alpha)
        self.quantile_ = float(q)
        self.n_conformalize_ = int(labels.shape[0])
        if self.class_conditional and partition is not None:
            raise ValueError(
                f"{where}: class_conditional=True and partition= are two ways of grouping; pass "
                "one of them."
            )
        self.group_quantiles_ = None
        if partition is not None:
            self.group_quantiles_ = group_quantiles(scores, partition, alpha, where)
        self.class_quantiles_ = None
        if self.class_conditional:
            by_class = group_quantiles(scores, np.asarray(labels), alpha, where)
            missing = sorted(set(range(probs.shape[1])) - set(by_class))
            if missing:
                raise ValueError(
                    f"{where}: class_conditional=True needs calibration examples of every "
                    f"class. Got none of {self.classes_[missing][:5].tolist()}. Add some, or "
                    "use class_conditional=False."
                )
            self.class_quantiles_ = np.array([by_class[k] for k in range(probs.shape[1])])
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class ``(N,)`` (a value of ``classes_``)."""
        check_is_fitted(self, "quantile_")
        probs = self._probs(X, "SplitConformalClassifier.predict")
        return self.classes_[np.asarray(jnp.argmax(probs, axis=1))]

    def predict_set(self, X: Any, partition: Any = None) -> jax.Array:
        """Conformal prediction sets at ``confidence_level``.

        Parameters
        ----------
        X : array-like, shape (N, ...)
        partition : array-like, shape (N,), optional
            The examples' groups, when conformalized per group (Mondrian).

        Returns
        -------
        jax.Array of bool, shape (N, K)
            ``sets[i, k]``: class ``classes_[k]`` is in the set of point ``i``.
        """
        check_is_fitted(self, "quantile_")
        where = "SplitConformalClassifier.predict_set"
        k_reg, lambda_reg = check_set_options(
            self.conformity_score, self.randomized, self.k_reg, self.lambda_reg, where
        )
        probs = self._probs(X, where)
        u = self._uniforms(probs.shape[0], 1, probs.dtype) if self.randomized else None
        q = jnp.asarray(self.quantile_, probs.dtype)
        if getattr(self, "class_quantiles_", None) is not None:
            q = jnp.asarray(self.class_quantiles_, probs.dtype)[None, :]  # per class (column)
        elif getattr(self, "group_quantiles_", None) is not None:
            per_row = thresholds_for(self.group_quantiles_, partition, probs.shape[0], where)
            q = jnp.asarray(per_row, probs.dtype)[:, None]  # per example (row)
        return sets_from_threshold(probs, q, self.conformity_score, k_reg, lambda_reg, u)


__all__ = ["SplitConformalClassifier", "SplitConformalRegressor"]
