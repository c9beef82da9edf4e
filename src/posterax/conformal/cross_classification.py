"""Cross-conformal prediction sets: every training point calibrates, through the fold model
that did not see it (Vovk 2015; Romano, Sesia & Candès 2020, Algorithm 2).

The classifier is fitted K times, each time without one fold; training point ``i`` gets the
out-of-fold score ``R_i = s(x_i, y_i)`` of the model ``k(i)`` that left it out. Two ways to
turn these into sets at a test point ``x``:

- ``aggregation="mean"`` (MAPIE's default): average the fold models' probabilities and keep
  the labels whose score is within the split-conformal quantile of the ``R_i``;
- ``aggregation="crossval"`` (the paper's CV+ sets): keep label ``y`` when more than
  ``alpha (n + 1) - 1`` training points score at least as badly as ``y`` does under their own
  fold model, ``#{i : R_i >= s_{k(i)}(x, y)} > alpha (n + 1) - 1``: coverage at least
  ``1 - 2 alpha`` for any classifier, about ``1 - alpha`` in practice.

Scores are LAC (``1 - p_y``) or the deterministic APS / RAPS ones
(:mod:`posterax.conformal.scores`). ``class_conditional=True`` calibrates each label on the
training points of that label only (Mondrian by class).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from posterax.conformal._numpy import label_scores
from posterax.conformal.classification import check_set_options
from posterax.conformal.cross import (
    _rows,
    check_every_point_in_a_fold,
    fit_each,
    fold_splitter,
    training_sets,
)
from posterax.conformal.mondrian import _plain, group_quantiles, thresholds_for
from posterax.conformal.quantile import conformal_rank
from posterax.predictive.inputs import check_choice, check_probability

AGGREGATIONS = ("mean", "crossval")


class CrossConformalClassifier(BaseEstimator):
    """Prediction sets calibrated by cross-validation instead of a held-out split.

    Parameters
    ----------
    estimator : classifier
        Anything with ``fit`` and ``predict_proba`` (cloned for each fold): scikit-learn's or
        a posterax ``BayesianClassifier``.
    confidence_level : float in (0, 1), default 0.9
        Target coverage ``1 - alpha``.
    conformity_score : {"lac", "aps", "raps"}, default "lac"
        APS and RAPS use the deterministic scores (sets always hold the top label).
    cv : int, "loo" or a scikit-learn splitter, default 5
        ``K`` stratified folds (shuffled with ``random_state``), ``"loo"`` (one fit per
        training point), or any splitter whose test folds partition the data.
    aggregation : {"mean", "crossval"}, default "mean"
        See :mod:`posterax.conformal.cross_classification`.
    class_conditional : bool, default False
        Coverage ``confidence_level`` within every class (each label calibrated on the
        training points of that label).
    k_reg, lambda_reg : RAPS regularisation (see :class:`SplitConformalClassifier`).
    random_state : int, optional
        Shuffling of the folds for an int ``cv``.

    Attributes
    ----------
    estimators_ : list
        The fold models.
    classes_ : numpy.ndarray (K,)
    fold_of_ : numpy.ndarray (n,)
        The fold model that did not see each training point.
    scores_ : numpy.ndarray (n,)
        Out-of-fold scores of the training labels.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> X, y = load_iris(return_X_y=True)
    >>> ccc = CrossConformalClassifier(LogisticRegression(max_iter=500), 0.9, random_state=0)
    >>> sets = ccc.fit_conformalize(X, y).predict_set(X[::50])
    >>> sets.shape, bool(sets[np.arange(3), y[::50]].all())
    ((3, 3), True)
    """

    def __init__(
        self,
        estimator: Any,
        confidence_level: float = 0.9,
        conformity_score: str = "lac",
        cv: Any = 5,
        aggregation: str = "mean",
        class_conditional: bool = False,
        k_reg: int = 1,
        lambda_reg: float = 0.01,
        random_state: int | None = None,
    ):
        self.estimator = estimator
        self.confidence_level = confidence_level
        self.conformity_score = conformity_score
        self.cv = cv
        self.aggregation = aggregation
        self.class_conditional = class_conditional
        self.k_reg = k_reg
        self.lambda_reg = lambda_reg
        self.random_state = random_state

    def _settings(self, where: str) -> tuple[float, int, float]:
        alpha = 1.0 - check_probability(
            self.confidence_level, "confidence_level", where, kind="level"
        )
        check_choice(self.aggregation, "aggregation", where, AGGREGATIONS)
        k_reg, lambda_reg = check_set_options(
            self.conformity_score, False, self.k_reg, self.lambda_reg, where
        )
        return alpha, k_reg, lambda_reg

    def _scores(self, probs: np.ndarray, k_reg: int, lambda_reg: float) -> np.ndarray:
        return label_scores(probs, self.conformity_score, k_reg, lambda_reg)

    def _proba(self, model: Any, X: Any) -> np.ndarray:
        """The model's probabilities in the columns of ``classes_`` (zero for a class its
        training folds lacked)."""
        probs = np.asarray(model.predict_proba(X), dtype=np.float64)
        own = getattr(model, "classes_", None)
        if own is None or len(own) == len(self.classes_):
            return probs
        full = np.zeros((probs.shape[0], len(self.classes_)))
        full[:, np.searchsorted(self.classes_, np.asarray(own))] = probs
        return full

    def fit_conformalize(
        self, X: Any, y: Any, groups: Any = None, partition: Any = None, **fit_params: Any
    ) -> CrossConformalClassifier:
        """Fit one clone per fold and record the out-of-fold scores.

        ``groups`` goes to the splitter (e.g. ``GroupKFold``), as in scikit-learn;
        ``partition`` (n,), Mondrian conformal: each example's group (a site, a category of the
        inputs), calibrated separately so coverage holds within every group (``predict_set``
        then needs the test examples' groups); ``fit_params`` go to each fit.
        """
        where = "CrossConformalClassifier.fit_conformalize"
        alpha, k_reg, lambda_reg = self._settings(where)
        X_arr = X if hasattr(X, "iloc") else np.asarray(X)
        y_arr = np.asarray(y).ravel()
        n = y_arr.shape[0]
        self.classes_, labels = np.unique(y_arr, return_inverse=True)
        if partition is not None and self.class_conditional:
            raise ValueError(
                f"{where}: class_conditional=True and partition= are two ways of grouping; "
                "pass one of them."
            )
        self.partition_ = None if partition is None else np.asarray(partition).ravel()
        if self.class_conditional:  # enough points of every class for the level?
            group_quantiles(np.zeros(n), labels, alpha, where)
        elif self.partition_ is not None:  # one group per example, each enough for the level
            group_quantiles(np.zeros(n), self.partition_, alpha, where)
        else:
            conformal_rank(n, alpha, where)
        splitter = fold_splitter(self.cv, n, self.random_state, where, stratify=True)
        fold_of, tests = np.full(n, -1), []
        splits = splitter.split(X_arr, y_arr, groups)
        trains = training_sets(splits, fold_of, tests, self.cv, where)
        self.estimators_ = fit_each(self.estimator, X_arr, y_arr, trains, fit_params)
        check_every_point_in_a_fold(fold_of, self.cv, where)
        scores = np.zeros(n)
        for model, test in zip(self.estimators_, tests, strict=True):
            own = self._scores(self._proba(model, _rows(X_arr, test)), k_reg, lambda_reg)
            scores[test] = own[np.arange(len(test)), labels[test]]
        self.fold_of_, self.scores_, self.labels_ = fold_of, scores, labels
        return self

    def _fold_probs(self, X: Any) -> np.ndarray:
        if not hasattr(self, "estimators_"):
            raise NotFittedError(
                "This CrossConformalClassifier is not fitted yet. Call fit_conformalize(X, y) "
                "first."
            )
        return np.stack([self._proba(model, X) for model in self.estimators_])

    def predict_proba(self, X: Any) -> np.ndarray:
        """The fold models' mean probabilities ``(N, K)``."""
        return self._fold_probs(X).mean(axis=0)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable label under the fold models' mean probabilities ``(N,)``."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def predict_set(self, X: Any, partition: Any = None) -> np.ndarray:
        """Boolean sets ``(N, K)``: ``sets[i, k]`` when ``classes_[k]`` is in point ``i``'s set.

        ``partition`` (N,): the test examples' groups, when fitted with ``partition=``.
        """
        where = "CrossConformalClassifier.predict_set"
        alpha, k_reg, lambda_reg = self._settings(where)
        fold_probs = self._fold_probs(X)
        if self.aggregation == "mean":  # MAPIE's default: one score, of the mean probabilities
            fold_probs = fold_probs.mean(axis=0, keepdims=True)
        fold_scores = [self._scores(p, k_reg, lambda_reg) for p in fold_probs]
        m = fold_scores[0].shape[0]
        if self.partition_ is not None:  # one calibration per group: a row's group
            groups = self._test_groups(partition, m, where)
            sets = np.zeros(fold_scores[0].shape, dtype=bool)
            for group in np.unique(groups):
                rows = groups == group
                among = self.partition_ == group
                sets[rows] = self._sets([s[rows] for s in fold_scores], among, alpha, where)
            return sets
        if self.class_conditional:  # one calibration per label: a column's label
            columns = [
                self._sets([s[:, [k]] for s in fold_scores], self.labels_ == k, alpha, where)
                for k in range(len(self.classes_))
            ]
            return np.concatenate(columns, axis=1)
        return self._sets(fold_scores, np.ones(self.scores_.size, bool), alpha, where)

    def _test_groups(self, partition: Any, m: int, where: str) -> np.ndarray:
        sizes = {_plain(g): 0 for g in np.unique(self.partition_)}
        thresholds_for(sizes, partition, m, where)  # one per example, calibrated
        return np.asarray(partition).ravel()

    def _sets(
        self, fold_scores: list[np.ndarray], among: np.ndarray, alpha: float, where: str
    ) -> np.ndarray:
        """Sets calibrated on the training points in ``among``: from the one score of the mean
        probabilities (``"mean"``) or each fold model's scores (``"crossval"``)."""
        n = int(among.sum())
        k = conformal_rank(n, alpha, where)
        if self.aggregation == "mean":  # the mean probabilities' scores, split quantile
            return fold_scores[0] <= np.partition(self.scores_[among], k - 1)[k - 1]
        # Keep a label that more than alpha (n + 1) - 1 training points score at least as
        # badly under their own fold model: at least n - k + 1 of them (exact integers).
        at_least = np.zeros(fold_scores[0].shape)
        for fold, scores in enumerate(fold_scores):
            ref = np.sort(self.scores_[(self.fold_of_ == fold) & among])
            at_least += ref.size - np.searchsorted(ref, scores, side="left")
        return at_least >= n - k + 1


__all__ = ["AGGREGATIONS", "CrossConformalClassifier"]
