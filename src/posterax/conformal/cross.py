"""Cross-conformal regression: CV+, jackknife+ and CV-minmax (Barber, Candès, Ramdas &
Tibshirani 2021, "Predictive inference with the jackknife+").

The model is fitted K times, each time without one fold; every training point gets the
out-of-fold residual ``R_i = |y_i - mu_{-k(i)}(x_i)|`` of the model that did not see it. At a
test point ``x``:

- ``"plus"`` (CV+; jackknife+ with one point per fold): the interval from the
  ``ceil((1 - alpha)(n + 1))``-th smallest of ``mu_{-k(i)}(x) + R_i`` and the same rank from
  the top of ``mu_{-k(i)}(x) - R_i``: coverage at least ``1 - 2 alpha`` for any model with
  the jackknife+ (Barber et al. 2021, Thm 1), and for K-fold CV+ at least
  ``1 - 2 alpha - sqrt(2 / n_fold)`` (Thm 4, ``n_fold = n / K``; a correction that
  vanishes as folds grow); about ``1 - alpha`` in practice;
- ``"minmax"``: ``[min_k mu_{-k}(x) - q, max_k mu_{-k}(x) + q]`` with ``q`` that rank of the
  ``R_i``: at least ``1 - alpha``, wider.

The same definitions as MAPIE 1.6's ``CrossConformalRegressor`` (tested to 1e-6 beside it).
The point prediction is the mean of ``mu_{-k(i)}(x)`` over the training points (each fold
model weighted by its fold's size), as MAPIE's ``aggregate_point_predictions="mean"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import KFold, LeaveOneOut, StratifiedKFold

from posterax.conformal.quantile import conformal_rank
from posterax.predictive.inputs import check_choice, check_probability

METHODS = ("plus", "minmax")
_MAX_ENTRIES = 2**20  # test points per chunk x training points: two (chunk, n) scratch buffers


def cross_conformal_interval(
    fold_predictions: Any,
    fold_of: Any,
    residuals: Any,
    alpha: float,
    method: str = "plus",
) -> tuple[np.ndarray, np.ndarray]:
    """CV+ / jackknife+ / CV-minmax (and jackknife+-after-bootstrap) bounds from the fold
    models' test predictions.

    Parameters
    ----------
    fold_predictions : array (K, m)
        Each model's predictions at the ``m`` test points.
    fold_of : int array (n,) or float array (n, K)
        Which model did not see training point ``i`` (one fold per point), or weights over
        the models for each point summing to 1 (the mean of the bootstrap models that left it
        out, for jackknife+-after-bootstrap): ``mu_{-i}(x) = fold_of[i] @ fold_predictions``.
    residuals : array (n,)
        Out-of-fold absolute residuals ``|y_i - mu_{-i}(x_i)|``.
    alpha : float in (0, 1)
        Miscoverage level.
    method : {"plus", "minmax"}

    Returns
    -------
    (lower, upper) : arrays (m,)

    Raises
    ------
    ValueError
        If ``n`` points are too few for ``alpha`` (the rank would exceed ``n``).
    """
    where = "cross_conformal_interval"
    method = check_choice(method, "method", where, METHODS)
    preds = np.asarray(fold_predictions, dtype=np.float64)
    fold_of = np.asarray(fold_of)
    R = np.asarray(residuals, dtype=np.float64)
    n, m = R.shape[0], preds.shape[1]
    k = conformal_rank(n, alpha, where)
    q = np.partition(R, k - 1)[k - 1] if method == "minmax" else None
    lower, upper = np.empty(m), np.empty(m)
    # One row per test point, so that every partition runs along contiguous memory, in two
    # (chunk, n) buffers reused across chunks (no temporaries of the size of the chunk).
    per_test = preds.T  # (m, K)
    step = max(1, min(m, _MAX_ENTRIES // max(n, 1)))
    mu_buf, work_buf = np.empty((step, n)), np.empty((step, n))
    for start in range(0, m, step):
        chunk = per_test[start : start + step]
        b = chunk.shape[0]
        mu, work = mu_buf[:b], work_buf[:b]
        # mu_{-i}(x) for every test point x (rows) and training point i (columns)
        if fold_of.ndim == 1:
            np.take(chunk, fold_of, axis=1, out=mu)
        else:
            np.matmul(chunk, fold_of.T, out=mu)
        if method == "minmax":
            lower[start : start + b] = mu.min(axis=1) - q
            upper[start : start + b] = mu.max(axis=1) + q
            continue
        np.add(mu, R, out=work)
        work.partition(k - 1, axis=1)
        upper[start : start + b] = work[:, k - 1]
        np.subtract(R, mu, out=work)
        work.partition(k - 1, axis=1)
        lower[start : start + b] = -work[:, k - 1]
    return lower, upper


def fold_splitter(cv: Any, n: int, random_state: Any, where: str, stratify: bool = False) -> Any:
    """The splitter an int / ``"loo"`` / splitter ``cv`` stands for (stratified folds for a
    classifier's int ``cv``, as scikit-learn's ``cross_val_score`` does)."""
    if isinstance(cv, str) and cv == "loo":
        return LeaveOneOut()
    if isinstance(cv, int) and not isinstance(cv, bool):
        if not 2 <= cv <= n:
            raise ValueError(
                f"The 'cv' parameter of {where} must be an int in [2, n_samples={n}], "
                f"'loo' or a scikit-learn splitter. Got {cv}. Pass e.g. cv=5."
            )
        folds = StratifiedKFold if stratify else KFold
        return folds(cv, shuffle=True, random_state=random_state)
    if hasattr(cv, "split"):
        return cv
    raise ValueError(
        f"The 'cv' parameter of {where} must be an int, 'loo' or a scikit-learn splitter "
        f"(KFold, LeaveOneOut, ...). Got {cv!r}."
    )


class _OutOfFold:
    """What the cross-conformal regressors share: input checks, and prediction from the fitted
    fold models (``estimators_``), the out-of-fold map ``fold_of_`` and residuals
    ``residuals_``."""

    def _fold_predictions(self, X: Any) -> np.ndarray:
        if not hasattr(self, "estimators_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet. Call fit_conformalize(X, y) first."
            )
        # one (K, m) array written row by row: no list of K arrays beside the stacked copy
        first = _predict(self.estimators_[0], X)
        preds = np.empty((len(self.estimators_), first.shape[0]))
        preds[0] = first
        for row, model in zip(preds[1:], self.estimators_[1:], strict=True):
            row[:] = _predict(model, X)
        return preds

    def _inputs(self, X: Any, y: Any, where: str) -> tuple[Any, np.ndarray]:
        """Checked settings; ``X`` as rows (a DataFrame stays one), ``y`` as floats."""
        check_probability(self.confidence_level, "confidence_level", where, kind="level")
        check_choice(self.method, "method", where, METHODS)
        X_arr = X if hasattr(X, "iloc") else np.asarray(X)
        return X_arr, np.asarray(y, dtype=np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """Mean over the training points of ``mu_{-i}(x)`` (for CV+: the fold models weighted
        by their folds' sizes)."""
        preds = self._fold_predictions(X)
        fold_of = self.fold_of_
        if fold_of.ndim == 1:
            return np.bincount(fold_of, minlength=preds.shape[0]) / fold_of.size @ preds
        return fold_of.mean(axis=0) @ preds

    def predict_interval(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(lower, upper)`` at level ``confidence_level``."""
        return cross_conformal_interval(
            self._fold_predictions(X),
            self.fold_of_,
            self.residuals_,
            1.0 - self.confidence_level,
            self.method,
        )


class CrossConformalRegressor(_OutOfFold, BaseEstimator):
    """CV+, jackknife+ or CV-minmax intervals around any regressor: posterax's or
    scikit-learn's.

    Parameters
    ----------
    estimator : regressor
        Anything with ``fit`` and ``predict`` (cloned for each fold).
    confidence_level : float in (0, 1)
        Target coverage ``1 - alpha``.
    method : {"plus", "minmax"}
        See :mod:`posterax.conformal.cross`.
    cv : int, "loo" or a scikit-learn splitter
        ``K`` folds (``KFold(K, shuffle=True, random_state=random_state)``), ``"loo"`` for
        the jackknife+ (one fit per training point), or any splitter whose test folds
        partition the data (``KFold``, ``GroupKFold``, ...).
    random_state : int, optional
        Shuffling of the folds for an int ``cv``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from posterax.conformal import CrossConformalRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3)); y = X @ [1.0, -2.0, 0.5] + rng.normal(size=200)
    >>> cv_plus = CrossConformalRegressor(Ridge(), confidence_level=0.9, cv=5, random_state=0)
    >>> lower, upper = cv_plus.fit_conformalize(X, y).predict_interval(X[:3])
    >>> bool(np.all(upper - lower > 2.5))  # about 2 x 1.645 for unit noise
    True
    """

    def __init__(
        self,
        estimator: Any,
        confidence_level: float = 0.9,
        method: str = "plus",
        cv: Any = 5,
        random_state: int | None = None,
    ):
        self.estimator = estimator
        self.confidence_level = confidence_level
        self.method = method
        self.cv = cv
        self.random_state = random_state

    def fit_conformalize(
        self, X: Any, y: Any, groups: Any = None, **fit_params: Any
    ) -> CrossConformalRegressor:
        """Fit one clone per fold and record the out-of-fold residuals."""
        where = "CrossConformalRegressor.fit_conformalize"
        X_arr, y_arr = self._inputs(X, y, where)
        n = y_arr.shape[0]
        conformal_rank(n, 1.0 - self.confidence_level, where)  # enough points for the level?
        splitter = fold_splitter(self.cv, n, self.random_state, where)
        fold_of, tests = np.full(n, -1), []
        splits = splitter.split(X_arr, y_arr, groups)
        trains = training_sets(splits, fold_of, tests, self.cv, where)
        self.estimators_ = fit_each(self.estimator, X_arr, y_arr, trains, fit_params)
        check_every_point_in_a_fold(fold_of, self.cv, where)
        residuals = np.zeros(n)
        for model, test in zip(self.estimators_, tests, strict=True):
            residuals[test] = np.abs(y_arr[test] - _predict(model, _rows(X_arr, test)))
        self.fold_of_, self.residuals_ = fold_of, residuals
        return self


class JackknifeAfterBootstrapRegressor(_OutOfFold, BaseEstimator):
    """Jackknife+-after-bootstrap (Kim, Xu & Barber 2020): ``resampling`` bootstrap fits; each
    training point's leave-one-out model is the mean of the fits whose sample left it out, and
    the intervals are the jackknife+ (``"plus"``) or minmax ones around those.

    Parameters
    ----------
    estimator : regressor
        Anything with ``fit`` and ``predict`` (cloned for each bootstrap sample).
    confidence_level : float in (0, 1)
    method : {"plus", "minmax"}
    resampling : int or splitter
        The number of bootstrap samples (``n`` rows drawn with replacement each), or any
        object whose ``split(X)`` yields ``(train, test)`` index pairs (e.g. MAPIE's
        ``Subsample``).
    random_state : int, optional
        The bootstrap draws for an int ``resampling``.

    Training points in every bootstrap sample have no out-of-bag model and are left out
    (rare: probability about ``0.632 ** resampling`` per point).
    """

    def __init__(
        self,
        estimator: Any,
        confidence_level: float = 0.9,
        method: str = "plus",
        resampling: Any = 30,
        random_state: int | None = None,
    ):
        self.estimator = estimator
        self.confidence_level = confidence_level
        self.method = method
        self.resampling = resampling
        self.random_state = random_state

    def _samples(self, X: Any, n: int):
        where = "JackknifeAfterBootstrapRegressor"
        if hasattr(self.resampling, "split"):
            return [train for train, _ in self.resampling.split(X)]
        if not (isinstance(self.resampling, int) and not isinstance(self.resampling, bool)):
            raise ValueError(
                f"The 'resampling' parameter of {where} must be an int >= 2 (bootstrap "
                f"samples) or a splitter. Got {self.resampling!r}."
            )
        if self.resampling < 2:
            raise ValueError(
                f"The 'resampling' parameter of {where} must be an int >= 2. Got "
                f"{self.resampling}. Pass e.g. resampling=30."
            )
        rng = np.random.default_rng(self.random_state)
        return [rng.integers(0, n, n) for _ in range(self.resampling)]

    def fit_conformalize(self, X: Any, y: Any, **fit_params: Any):
        """Fit one clone per bootstrap sample and record the out-of-bag residuals."""
        where = "JackknifeAfterBootstrapRegressor.fit_conformalize"
        X_arr, y_arr = self._inputs(X, y, where)
        n = y_arr.shape[0]
        samples = self._samples(X_arr, n)
        self.estimators_ = fit_each(self.estimator, X_arr, y_arr, samples, fit_params)
        out_of_bag = [~np.isin(np.arange(n), train) for train in samples]
        at_train = [_predict(model, X_arr) for model in self.estimators_]
        oob = np.array(out_of_bag, dtype=np.float64).T  # (n, B)
        counts = oob.sum(axis=1)
        keep = counts > 0
        weights = oob[keep] / counts[keep, None]
        mu = np.sum(weights * np.array(at_train).T[keep], axis=1)
        conformal_rank(int(keep.sum()), 1.0 - self.confidence_level, where)
        self.fold_of_, self.residuals_ = weights, np.abs(y_arr[keep] - mu)
        self.out_of_bag_ = oob.astype(bool)  # (n, B): which models left each point out
        self.train_predictions_ = np.array(at_train)  # (B, n): every model at every point
        return self


def training_sets(
    splits: Iterable, fold_of: np.ndarray, tests: list, cv: Any, where: str
) -> Iterator[np.ndarray]:
    """Each split's training rows, one at a time (jackknife+: ``n`` sets of ``n - 1`` rows,
    ``n^2`` integers if held together). Keeps only the test folds: appends each to ``tests``
    and marks its points in ``fold_of`` after checking it shares none with an earlier fold."""
    for k, (train, test) in enumerate(splits):
        check_new_fold(fold_of, test, cv, where)
        fold_of[test] = k
        tests.append(test)
        yield train


def check_new_fold(fold_of: np.ndarray, test: np.ndarray, cv: Any, where: str) -> None:
    """Refuse a test fold that shares points with an earlier one (``fold_of`` >= 0 there)."""
    if np.any(fold_of[test] >= 0):
        raise ValueError(
            f"The 'cv' parameter of {where} must give test folds that do not overlap. Got "
            f"{cv!r}, whose folds share points. Pass KFold, LeaveOneOut, GroupKFold or "
            "another splitter whose test folds partition the data."
        )


def check_every_point_in_a_fold(fold_of: np.ndarray, cv: Any, where: str) -> None:
    """Refuse folds that leave points out of every test fold (``fold_of`` still -1)."""
    if np.any(fold_of < 0):
        raise ValueError(
            f"The 'cv' parameter of {where} must put every point in one test fold. Got "
            f"{cv!r}, which leaves {int(np.sum(fold_of < 0))} out. Pass KFold, LeaveOneOut, "
            "GroupKFold or another splitter whose test folds partition the data."
        )


def fit_each(
    estimator: Any, X: Any, y: np.ndarray, train_sets: Iterable[np.ndarray], fit_params: dict
) -> list:
    """A clone of ``estimator`` fitted on each training set: in one compiled program where the
    estimator offers it (posterax's network regressors with MAP or an ensemble train every
    set's networks side by side under ``jax.vmap``), else one fit after another."""
    together = getattr(estimator, "_fit_folds", None)
    if together is not None and not fit_params and not hasattr(X, "iloc"):
        train_sets = [np.asarray(rows) for rows in train_sets]  # a generator is read once
        fitted = together(X, y, train_sets)
        if fitted is not None:
            return fitted
    return [clone(estimator).fit(_rows(X, rows), y[rows], **fit_params) for rows in train_sets]


def _rows(X: Any, index: np.ndarray) -> Any:
    return X.iloc[index] if hasattr(X, "iloc") else X[index]


def _predict(model: Any, X: Any) -> np.ndarray:
    return np.asarray(model.predict(X), dtype=np.float64).reshape(-1)


__all__ = [
    "METHODS",
    "CrossConformalRegressor",
    "JackknifeAfterBootstrapRegressor",
    "cross_conformal_interval",
    "fit_each",
    "check_every_point_in_a_fold",
    "fold_splitter",
    "training_sets",
]
