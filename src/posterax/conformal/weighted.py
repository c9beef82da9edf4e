"""Weighted split conformal prediction under covariate shift (Tibshirani et al., 2019).

When the test inputs come from another distribution than the calibration inputs, but
``y | x`` is the same (covariate shift), plain split conformal loses its guarantee. Weighting
each calibration score by the likelihood ratio ``w(x) = dP_test / dP_cal (x)`` restores it: for a
test point ``x`` the threshold is the ``1 - alpha`` quantile of

    sum_i p_i(x) delta(V_i) + p_test(x) delta(+inf),
    p_i(x) = w(X_i) / (sum_j w(X_j) + w(x)),   p_test(x) = w(x) / (sum_j w(X_j) + w(x)),

so each test point gets its own threshold. The mass ``p_test(x)`` sits at ``+inf``: where the
test point's own weight is large against the calibration weights (``w(x) / sum_j w(X_j) >
alpha / (1 - alpha)``, a point far out where few calibration inputs lie) the quantile is
``+inf`` and the interval is the whole real line. That is the honest answer, not a failure:
the calibration data say nothing about such a point. With equal weights it is the split-conformal
threshold, infinite for every point when ``n < 1/alpha - 1``: such small calibration sets are
refused, as in split conformal.

The ratio is given (a callable, or arrays of weights) or estimated by a probabilistic classifier
trained to tell calibration inputs from unlabeled test inputs (:class:`ClassifierLikelihoodRatio`).
The scores are sorted once, ``O(n log n)``; each test point's threshold is then one binary search
in the cumulative weights, ``O(m log n)`` for ``m`` test points.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.utils.validation import check_is_fitted

from posterax.conformal.cross import fold_splitter
from posterax.conformal.quantile import absorb_rounding, conformal_rank
from posterax.conformal.wrappers import _REGRESSION_SCORES, SplitConformalRegressor
from posterax.predictive.inputs import (
    as_float,
    check_choice,
    check_ndim,
    check_probability,
    check_same_length,
)


def _weights(values: Any, name: str, where: str, n: int | None = None) -> np.ndarray:
    """Finite, non-negative float64 weights of shape ``(n,)``."""
    try:
        w = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"The '{name}' parameter of {where} must be an array of numbers. Got "
            f"{type(values).__name__}."
        ) from err
    if w.ndim != 1 or (n is not None and w.shape[0] != n):
        want = "1-D" if n is None else f"of shape ({n},), one weight per example"
        raise ValueError(
            f"The '{name}' parameter of {where} must be {want}. Got shape {w.shape}."
            + (" Use .ravel() for a column vector." if w.ndim == 2 and 1 in w.shape else "")
        )
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"The '{name}' parameter of {where} must hold finite likelihood ratios >= 0. Got "
            f"{int(bad.sum())} bad value(s), e.g. {float(w[i])} at index {i}. A density ratio is "
            "never negative; check the ratio's formula, or clip it (e.g. numpy.clip(w, 0, 1e6))."
        )
    return w


def sort_scores(scores: Any, weights: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Scores in increasing order and their cumulative weights, both ``(n,)`` float64."""
    s = np.asarray(scores)
    if s.dtype.kind not in "fiub":
        raise TypeError(
            f"The 'scores' parameter of {where} must hold numbers. Got dtype {s.dtype}. "
            "Convert it to a float array."
        )
    check_ndim(s, "scores", where, 1)
    s = s.astype(np.float64)  # exact for float32 and float64 scores
    w = _weights(weights, "weights", where, s.shape[0])
    if np.isnan(s).any():
        raise ValueError(
            f"The 'scores' parameter of {where} holds NaN. Check the model's predictions (and "
            "that predictive standard deviations are > 0)."
        )
    if not w.sum() > 0:
        raise ValueError(
            f"The 'weights' parameter of {where} must not be all zero: the calibration points "
            "then carry no mass. Got sum 0. Check the likelihood ratio."
        )
    order = np.argsort(s, kind="stable")
    return s[order], np.cumsum(w[order])


def quantiles_from_sorted(
    sorted_scores: np.ndarray, cumulative: np.ndarray, test_weights: np.ndarray, alpha: float
) -> np.ndarray:
    """Each test point's weighted quantile (``+inf`` when it falls on the test point's mass)."""
    # The smallest score whose calibration mass reaches (1 - alpha) of the total with the test
    # point; the slack absorbs rounding as in conformal_rank (equal weights: the same rank).
    need = absorb_rounding((1.0 - alpha) * (cumulative[-1] + test_weights))
    k = np.searchsorted(cumulative, need, side="left")
    return np.append(sorted_scores, np.inf)[k]


def weighted_conformal_quantile(
    scores: Any, alpha: float, *, weights: Any, test_weights: Any
) -> np.ndarray:
    """The weighted split-conformal threshold of each test point.

    For a test point of weight ``w_t``, the smallest calibration score ``v`` with
    ``sum_{i: V_i <= v} w_i >= (1 - alpha) (sum_i w_i + w_t)``, or ``+inf`` if there is none
    (the quantile falls on the test point's own mass at ``+inf``). Weights are likelihood ratios
    ``dP_test / dP_cal`` and matter only up to a common factor.

    Parameters
    ----------
    scores : array, shape (n,)
        Conformity scores of the calibration points (larger = worse fit); ties allowed.
    alpha : float in (0, 1)
        Miscoverage level.
    weights : array, shape (n,)
        Likelihood ratio at each calibration input: finite, ``>= 0``, not all zero.
    test_weights : array, shape (m,)
        Likelihood ratio at each test input: finite, ``>= 0``.

    Returns
    -------
    numpy.ndarray, shape (m,)
        Thresholds, float64, ``+inf`` where the calibration mass cannot reach ``1 - alpha``.

    Raises
    ------
    ValueError
        If ``n < 1/alpha - 1`` (every threshold would be infinite even without shift), or for
        negative, non-finite or misshaped weights.

    Examples
    --------
    With equal weights this is the split-conformal quantile, the ``ceil(20 * 0.9) = 18``-th
    smallest of 19 scores; a test point of weight 2 needs more calibration mass, and one of
    weight 3 gets an infinite threshold (``0.1 * 19 < 0.9 * 3``):

    >>> import numpy as np
    >>> q = weighted_conformal_quantile(
    ...     np.arange(1.0, 20.0), 0.1, weights=np.ones(19), test_weights=[1.0, 2.0, 3.0])
    >>> q.tolist()
    [18.0, 19.0, inf]

    LAC prediction sets under shift: the classes with ``1 - p_k`` at most the point's threshold.

    >>> from posterax.conformal.scores import lac_score, lac_set
    >>> rng = np.random.default_rng(0)
    >>> p_cal, p_test = rng.dirichlet(np.ones(3), 50), rng.dirichlet(np.ones(3), 4)
    >>> y_cal = rng.integers(0, 3, 50)
    >>> q = weighted_conformal_quantile(
    ...     lac_score(p_cal, y_cal), 0.2, weights=rng.uniform(0.5, 2, 50),
    ...     test_weights=rng.uniform(0.5, 2, 4))
    >>> lac_set(p_test, q[:, None]).shape
    (4, 3)
    """
    where = "weighted_conformal_quantile"
    alpha = check_probability(alpha, "alpha", where)
    sorted_scores, cumulative = sort_scores(scores, weights, where)
    conformal_rank(sorted_scores.shape[0], alpha, where)
    return quantiles_from_sorted(
        sorted_scores, cumulative, _weights(test_weights, "test_weights", where), alpha
    )


class ClassifierLikelihoodRatio(BaseEstimator):
    """The likelihood ratio ``dP_test / dP_cal (x)`` estimated by a probabilistic classifier.

    A classifier learns to tell calibration inputs (label 0) from unlabeled test inputs
    (label 1); by Bayes' rule ``w(x) = p(1 | x) / p(0 | x) * n_cal / n_test``.

    The ratio is wanted at the very inputs the classifier learns from (the calibration points,
    and usually the test points). A classifier that can fit its training labels (boosted trees,
    random forests, nearest neighbours) then gives ``p(test | x)`` near 0 at calibration points
    and near 1 at test points: tiny calibration weights, huge test weights, and intervals that
    are the whole line. Pass ``cv`` with such a classifier: each of those inputs then gets the
    out-of-fold ratio of a classifier fitted without it (cross-fitting).

    Parameters
    ----------
    classifier : object, optional
        Any scikit-learn-style classifier with ``fit`` and ``predict_proba`` (it is cloned).
        Default ``LogisticRegression(max_iter=1000)``: exact in form when ``log w(x)`` is linear
        in ``x`` (e.g. a mean shift of a Gaussian, or exponential tilting), and too rigid to
        overfit, so it needs no ``cv``.
    cv : int or splitter, optional
        Cross-fitting: at every input given to :meth:`fit` (recognised by value, row by row)
        the ratio comes from ``cross_val_predict`` over these folds of the pooled inputs (an int
        ``K``: stratified ``K`` folds, shuffled with ``random_state``). Other inputs get the
        classifier fitted on all of them. None (default): that classifier everywhere.
    random_state : int, optional
        Shuffling of the folds for an int ``cv``.

    Attributes
    ----------
    classifier_ : object
        The classifier fitted on all inputs.
    prior_odds_ : float
        ``n_cal / n_test``.
    out_of_fold_ : dict or None
        With ``cv``: the out-of-fold ratio of each fitted input, keyed by the row's bytes.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X_cal, X_test = rng.normal(0, 1, (2000, 1)), rng.normal(1, 1, (2000, 1))
    >>> ratio = ClassifierLikelihoodRatio().fit(X_cal, X_test)
    >>> w = ratio(np.array([[0.0], [1.0]]))  # true ratio exp(x - 1/2): 0.61, 1.65
    >>> bool(0.5 < w[0] < 0.75 and 1.4 < w[1] < 1.9)
    True

    A random forest learns its training labels: in-sample, the calibration weights come out too
    small (median 0.36; the true ratio's is ``exp(-1/2) = 0.61``) and 12% of the test points
    outweigh a ninth of them (a 90% interval that is the whole line). Cross-fitted, 2%:

    >>> from sklearn.ensemble import RandomForestClassifier
    >>> forest = RandomForestClassifier(50, min_samples_leaf=3, random_state=0)
    >>> X_cal, X_test = X_cal[:300], X_test[:300]
    >>> in_sample = ClassifierLikelihoodRatio(forest).fit(X_cal, X_test)
    >>> crossed = ClassifierLikelihoodRatio(forest, cv=5, random_state=0).fit(X_cal, X_test)
    >>> def whole_line(ratio):
    ...     return round(float(np.mean(ratio(X_test) > ratio(X_cal).sum() / 9)), 2)
    >>> whole_line(in_sample), whole_line(crossed)
    (0.12, 0.02)
    """

    def __init__(self, classifier: Any = None, cv: Any = None, random_state: int | None = None):
        self.classifier = classifier
        self.cv = cv
        self.random_state = random_state

    def fit(self, X_cal: Any, X_test: Any) -> ClassifierLikelihoodRatio:
        """Fit the classifier on calibration (0) versus test (1) inputs.

        Parameters
        ----------
        X_cal : array-like, shape (n, ...)
        X_test : array-like, shape (m, ...)
            Unlabeled inputs of the test distribution.

        Returns
        -------
        self
        """
        where = "ClassifierLikelihoodRatio.fit"
        model = self.classifier
        if model is None:
            model = LogisticRegression(max_iter=1000)
        elif not hasattr(model, "predict_proba") or not hasattr(model, "fit"):
            raise TypeError(
                f"The 'classifier' parameter of {where} must have fit and predict_proba, to give "
                f"p(test | x). Got {type(model).__name__}. Use e.g. sklearn LogisticRegression "
                "(the default), or a flexible one such as HistGradientBoostingClassifier with "
                "cv=5 (cross-fitting)."
            )
        X_cal, X_test = np.asarray(X_cal), np.asarray(X_test)
        if X_cal.shape[1:] != X_test.shape[1:] or X_cal.ndim < 1 or not len(X_test):
            raise ValueError(
                f"The 'X_test' parameter of {where} must be a non-empty set of inputs shaped "
                f"like the calibration inputs. Got shape {X_test.shape} for calibration inputs "
                f"of shape {X_cal.shape}."
            )
        label = np.r_[np.zeros(len(X_cal), int), np.ones(len(X_test), int)]
        pooled = np.concatenate([X_cal, X_test])
        self.classifier_ = clone(model).fit(pooled, label)
        self.prior_odds_ = len(X_cal) / len(X_test)
        self.out_of_fold_ = None
        if self.cv is not None:
            folds = fold_splitter(self.cv, len(pooled), self.random_state, where, stratify=True)
            proba = cross_val_predict(clone(model), pooled, label, cv=folds, method="predict_proba")
            ratios = self._odds(proba[:, 1])  # columns in sorted label order: 0, 1
            self.out_of_fold_ = dict(zip(_row_keys(pooled), ratios.tolist(), strict=True))
        return self

    def _odds(self, p_test: np.ndarray) -> np.ndarray:
        # p(cal | x) floored: a point the classifier is sure is a test point gets a huge,
        # finite weight (and so, typically, an infinite interval).
        p_test = np.clip(p_test, 0.0, 1.0)
        return p_test / np.maximum(1.0 - p_test, 1e-12) * self.prior_odds_

    def __call__(self, X: Any) -> np.ndarray:
        """The estimated ratio at inputs ``X``, shape ``(N,)``, finite and ``>= 0``."""
        check_is_fitted(self, "classifier_")
        proba = np.asarray(self.classifier_.predict_proba(X), dtype=np.float64)
        column = int(np.flatnonzero(np.asarray(self.classifier_.classes_) == 1)[0])
        ratio = self._odds(proba[:, column])
        if self.out_of_fold_:
            seen = [self.out_of_fold_.get(key, np.nan) for key in _row_keys(np.asarray(X))]
            ratio = np.where(np.isnan(seen), ratio, seen)
        return ratio


def _row_keys(X: np.ndarray) -> list[bytes]:
    """Each row's float64 bytes (``-0.0`` as ``0.0``): equal rows, equal keys."""
    rows = np.ascontiguousarray(X.reshape(len(X), -1), dtype=np.float64) + 0.0
    return rows.view(np.dtype((np.void, rows.shape[1] * 8))).ravel().tolist()


class WeightedSplitConformalRegressor(SplitConformalRegressor):
    """Split-conformal intervals that keep their coverage under covariate shift.

    Weighted split conformal (Tibshirani, Barber, Candès and Ramdas, 2019): each calibration
    score is weighted by the likelihood ratio ``w(x) = dP_test / dP_cal (x)`` and each test point
    gets its own threshold (see :func:`weighted_conformal_quantile`). Coverage
    ``>= confidence_level`` holds when ``y | x`` is the same for calibration and test data and
    ``w`` is the true ratio; with an estimated ratio it holds approximately.

    Intervals are ``(-inf, inf)`` for test points whose weight is too large against the
    calibration weights (``w(x) / sum_i w(X_i) > alpha / (1 - alpha)``): regions the calibration
    data hardly reach. ``np.isinf(lower)`` finds them.

    Parameters
    ----------
    estimator : object
        As for :class:`SplitConformalRegressor`: ``predict(X)`` (``"absolute"``),
        ``predict(X, return_std=True)`` (``"normalized"``, e.g. a posterax Bayesian regressor), or
        ``predict_interval(X, level=...)`` / a pair of quantile regressors (``"cqr"``).
    confidence_level : float in (0, 1), default 0.9
    conformity_score : {"absolute", "normalized", "cqr"}, default "absolute"
    likelihood_ratio : callable, optional
        ``w(X) -> (N,)`` finite ratios ``>= 0`` (any common scale). Without it (and without
        ``weights=`` arrays), the ratio is estimated with ``classifier`` from ``X_test``.
    classifier : object, optional
        The classifier of :class:`ClassifierLikelihoodRatio` (default logistic regression).
    cv : int or splitter, optional
        Cross-fit that classifier (:class:`ClassifierLikelihoodRatio`'s ``cv``): pass e.g.
        ``cv=5`` with a flexible classifier (trees, forests, boosting), which otherwise
        overfits the very inputs it weights. An int shuffles stratified folds afresh each time;
        pass a splitter such as ``StratifiedKFold(5, shuffle=True, random_state=0)`` for
        reproducible weights.
    prefit : bool, default True

    Attributes
    ----------
    likelihood_ratio_ : callable or None
        The ratio used at prediction (``likelihood_ratio``, the fitted
        :class:`ClassifierLikelihoodRatio`, or None when weights were given as arrays).
    n_conformalize_ : int
    effective_sample_size_ : float
        Kish's ``(sum w)^2 / sum w^2`` of the calibration weights: how many equally weighted
        points they are worth (``n`` without shift).

    Examples
    --------
    Calibration inputs from N(0, 1), test inputs from N(1, 1), noise growing with ``|x|``:

    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> rng = np.random.default_rng(0)
    >>> def draw(n, shift):
    ...     X = rng.normal(shift, 1, (n, 1))
    ...     return X, X[:, 0] + rng.normal(size=n) * (0.2 + np.abs(X[:, 0]))
    >>> (X_fit, y_fit), (X_cal, y_cal), (X_test, y_test) = draw(500, 0), draw(500, 0), draw(2000, 1)
    >>> model = LinearRegression().fit(X_fit, y_fit)
    >>> ratio = lambda X: np.exp(X[:, 0])  # dN(1, 1)/dN(0, 1), up to a constant factor
    >>> wcp = WeightedSplitConformalRegressor(model, 0.9, likelihood_ratio=ratio)
    >>> lo, hi = wcp.conformalize(X_cal, y_cal).predict_interval(X_test)
    >>> 0.87 < float(np.mean((lo <= y_test) & (y_test <= hi))) < 0.95
    True
    """

    def __init__(
        self,
        estimator: Any = None,
        confidence_level: float = 0.9,
        conformity_score: str = "absolute",
        likelihood_ratio: Any = None,
        classifier: Any = None,
        cv: Any = None,
        prefit: bool = True,
    ):
        super().__init__(estimator, confidence_level, conformity_score, prefit)
        self.likelihood_ratio = likelihood_ratio
        self.classifier = classifier
        self.cv = cv

    def _ratio_at(self, ratio: Any, X: Any, name: str, where: str, n: int) -> np.ndarray:
        try:
            values = np.asarray(ratio(X), dtype=np.float64).ravel()
        except (TypeError, ValueError) as err:
            raise TypeError(
                f"The '{name}' parameter of {where} must map inputs X (N, ...) to N likelihood "
                f"ratios. Calling it on X of type {type(X).__name__} failed: {err}. Make it "
                "take the array X as given (e.g. lambda X: np.exp(X[:, 0])) and return an "
                "array of shape (N,)."
            ) from err
        return _weights(values, name, where, n)

    def conformalize(
        self, X: Any, y: Any, *, X_test: Any = None, weights: Any = None
    ) -> WeightedSplitConformalRegressor:
        """Weight and sort the calibration scores.

        Parameters
        ----------
        X : array-like, shape (n, ...)
        y : array-like, shape (n,)
        X_test : array-like, shape (m, ...), optional
            Unlabeled test inputs, to estimate the ratio with ``classifier`` (needed when
            neither ``likelihood_ratio`` nor ``weights`` is given).
        weights : array-like, shape (n,), optional
            The ratio at the calibration inputs, given directly; ``predict_interval`` then needs
            the test points' ``weights`` too (unless ``likelihood_ratio`` is set).

        Returns
        -------
        self
        """
        where = "WeightedSplitConformalRegressor.conformalize"
        check_choice(self.conformity_score, "conformity_score", where, _REGRESSION_SCORES)
        alpha = self._alpha()
        target = as_float(np.asarray(y).ravel(), "y", where, 1)
        a, b = self._predictions(X, where)
        n = check_same_length(where, X=a, y=target)
        conformal_rank(n, alpha, where)  # fewer points: infinite intervals even without shift
        ratio = self._resolve_ratio(X, X_test, weights, where)
        if weights is not None:
            w = _weights(weights, "weights", where, n)
        else:
            w = self._ratio_at(ratio, X, "likelihood_ratio", where, n)
        scores = self._scores(target, a, b)
        self.sorted_scores_, self.cumulative_weights_ = sort_scores(scores, w, where)
        self.likelihood_ratio_ = ratio
        self.n_conformalize_ = n
        self.effective_sample_size_ = float(w.sum() ** 2 / np.sum(w**2))
        return self

    def _resolve_ratio(self, X: Any, X_test: Any, weights: Any, where: str) -> Any:
        given = self.likelihood_ratio
        if given is not None and not callable(given):
            raise TypeError(
                f"The 'likelihood_ratio' parameter of {where} must be a callable w(X) -> (N,). "
                f"Got {type(given).__name__}. Pass arrays of ratios as conformalize(..., "
                "weights=w_cal) and predict_interval(..., weights=w_test) instead."
            )
        sources = {
            "likelihood_ratio": given is not None,
            "weights": weights is not None,
            "X_test": X_test is not None,
        }
        if sum(sources.values()) > 1:
            raise ValueError(
                f"{where}: the likelihood ratio comes from one of 'likelihood_ratio' (a "
                "callable), 'weights' (arrays) or 'X_test' (estimated by a classifier). Got "
                f"{' and '.join(k for k, v in sources.items() if v)}; pass one."
            )
        if given is not None or weights is not None:
            unused = [k for k in ("classifier", "cv") if getattr(self, k) is not None]
            if unused:
                raise ValueError(
                    f"{where}: '{unused[0]}' is for estimating the ratio from X_test, but the "
                    f"ratio is given. Drop '{unused[0]}', or pass X_test instead of the ratio."
                )
            return given
        if X_test is None:
            raise ValueError(
                f"{where} needs the likelihood ratio dP_test/dP_cal: pass unlabeled test inputs "
                "X_test (a classifier then estimates it), a callable likelihood_ratio=w, or "
                "weights=w_cal."
            )
        return ClassifierLikelihoodRatio(self.classifier, self.cv).fit(X, X_test)

    def predict_threshold(self, X: Any, weights: Any = None) -> np.ndarray:
        """Each test point's score threshold, shape ``(N,)`` (``+inf``: unbounded interval).

        Parameters
        ----------
        X : array-like, shape (N, ...)
        weights : array-like, shape (N,), optional
            The ratio at the test inputs; required when conformalized with ``weights`` arrays
            and no ``likelihood_ratio``.
        """
        return self._thresholds(X, weights, f"{type(self).__name__}.predict_threshold")

    def _thresholds(self, X: Any, weights: Any, where: str) -> np.ndarray:
        check_is_fitted(self, "sorted_scores_")
        n = len(X)
        if weights is not None:
            w = _weights(weights, "weights", where, n)
        elif self.likelihood_ratio_ is None:
            raise ValueError(
                f"The 'weights' parameter of {where} is required: the calibration weights were "
                "given as an array, so the test points' ratios must be too. Pass weights=w_test "
                "(shape (N,)), or use likelihood_ratio=callable."
            )
        else:
            w = self._ratio_at(self.likelihood_ratio_, X, "likelihood_ratio", where, n)
        return quantiles_from_sorted(
            self.sorted_scores_, self.cumulative_weights_, w, self._alpha()
        )

    def predict_interval(self, X: Any, *, weights: Any = None) -> tuple[jax.Array, jax.Array]:
        """Weighted conformal intervals at ``confidence_level``, possibly infinite.

        Parameters
        ----------
        X : array-like, shape (N, ...)
        weights : array-like, shape (N,), optional
            The ratio at the test inputs (see :meth:`predict_threshold`).

        Returns
        -------
        lower, upper : jax.Array, shape (N,)
            ``-inf`` / ``+inf`` where the weighted quantile falls on the test point's own mass.
        """
        where = f"{type(self).__name__}.predict_interval"
        q_all = self._thresholds(X, weights, where)
        a, b = self._predictions(X, where)
        check_same_length(where, X=a, weights=q_all)
        return self._interval(a, b, jnp.asarray(q_all, a.dtype))


__all__ = [
    "ClassifierLikelihoodRatio",
    "WeightedSplitConformalRegressor",
    "weighted_conformal_quantile",
]
