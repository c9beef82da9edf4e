"""Time-series conformal regressors around any model (posterax or scikit-learn), updated
online as observations arrive; the intervals and the ACI update are those of
:mod:`posterax.conformal.time_series`.

- :class:`AdaptiveConformalRegressor`: ACI (Gibbs & Candès 2021) on split-conformal residuals:
  ``fit`` (optional), ``conformalize(X_cal, y_cal)``, then ``predict_interval(X)`` and
  ``update(X, y)``.
- :class:`EnbPIRegressor`: EnbPI (Xu & Xie 2021): ``fit_conformalize(X, y)``, then the same
  ``predict_interval`` / ``update`` (and ACI on top with ``gamma > 0``).

EnbPI fits ``B`` models on bootstrap samples of the training series (blocks of
``block_length`` consecutive rows; 1: the paper's i.i.d. bootstrap). Each training point's
prediction is the aggregate (mean or median) of the models whose sample left it out, its score
the signed residual ``y_i - f_{-i}(x_i)``; the prediction at a new point is the aggregate over
the training points of their ``f_{-i}(x)`` (the paper's ``phi``). The fits, the out-of-bag
mask and the models' predictions at the training rows are those of
:class:`~posterax.conformal.cross.JackknifeAfterBootstrapRegressor` (kept as ``ensemble_``).
No model is refitted as the series goes on: new residuals replace old ones.

Beside MAPIE 1.6's ``TimeSeriesRegressor`` (tested to 1e-6): ``EnbPIRegressor(center=
"ensemble")`` is ``method="enbpi"`` with ``predict(..., ensemble=True)`` and ``update(...,
ensemble=True)``; ``center="full"`` (one more model fitted on the whole series gives the centre
and the new residuals) with ``gamma > 0`` is ``method="aci"`` with ``ensemble=False`` and
``adapt_conformal_inference`` before each ``update``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError

from posterax.conformal.cross import _MAX_ENTRIES, JackknifeAfterBootstrapRegressor
from posterax.conformal.time_series import (
    adapt,
    check_gamma,
    check_time_order,
    check_window,
    residual_offsets,
    roll,
    time_of,
)
from posterax.conformal.wrappers import _Wrapper
from posterax.predictive.inputs import check_choice, check_positive_int, check_probability

AGGREGATIONS = ("mean", "median")
CENTERS = ("ensemble", "full")


class OnlineConformal:
    """The online part the time-series regressors share: the score window ``scores_``, the
    current level ``alpha_t_``, ``predict_interval`` and ``update``. A subclass sets the
    settings (``confidence_level``, ``gamma``, ``window``, ``symmetric``, ``optimize_beta``,
    ``clip``) and ``_center(X)``, and calls ``_start`` once it has calibration residuals."""

    def _center(self, X: Any) -> np.ndarray:  # pragma: no cover - subclasses define it
        raise NotImplementedError

    def _check_started(self) -> None:
        if not hasattr(self, "scores_"):
            first = "conformalize" if hasattr(self, "conformalize") else "fit_conformalize"
            raise NotFittedError(
                f"This {type(self).__name__} has no calibration residuals yet. Call "
                f"{first}(X, y) first."
            )

    def _observed(self, X: Any, y: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
        """``(y, centre)`` of observed rows as float arrays ``(m,)``, checked to match."""
        target = np.asarray(y, dtype=np.float64).reshape(-1)
        center = self._center(X)
        if center.shape != target.shape:
            raise ValueError(
                f"The 'y' parameter of {where} must hold one value per row of X (y_t observed "
                f"at x_t). Got {target.size} values of y for {center.size} rows of X. Pass the "
                "same observations in both, y as shape (m,)."
            )
        return target, center

    def _alpha0(self, where: str) -> float:
        level = check_probability(self.confidence_level, "confidence_level", where, kind="level")
        return 1.0 - level

    def _start(self, residuals: np.ndarray, where: str, last_time: Any) -> None:
        alpha = self._alpha0(where)
        check_gamma(self.gamma, where)
        n = int(np.sum(~np.isnan(residuals)))
        if self.window is not None:
            check_window(int(self.window), alpha, self.symmetric, where)
        check_window(n, alpha, self.symmetric, where, name="calibration residuals")
        self.window_ = residuals.size if self.window is None else int(self.window)
        self.scores_ = residuals[max(0, residuals.size - self.window_) :]
        self.alpha_t_ = alpha
        self.n_updates_, self.n_errors_ = 0, 0
        self.last_time_ = last_time

    def predict(self, X: Any) -> np.ndarray:
        """Point predictions ``(N,)``: the centre of the intervals."""
        self._check_started()
        return self._center(X)

    def predict_interval(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(lower, upper)``, each ``(N,)``, at the current level ``1 - alpha_t_`` (for every
        row: several rows are several steps ahead, all with today's level and scores)."""
        self._check_started()
        center = self._center(X)
        low, up = residual_offsets(
            self.scores_, self.alpha_t_, symmetric=self.symmetric, optimize_beta=self.optimize_beta
        )
        return center + low, center + up

    def update(self, X: Any, y: Any, time: Any = None) -> OnlineConformal:
        """Take in newly observed ``(X, y)`` (oldest first): ACI moves ``alpha_t_`` row by row
        (each row judged by the interval from the scores held before this call, at the level
        the rows before it left: MAPIE's ``adapt_conformal_inference``), then the rows'
        residuals enter the score window and the oldest leave. One row per call is the
        paper's fully sequential ACI.

        Parameters
        ----------
        X : array-like (m, ...)
        y : array-like (m,)
        time : array-like (m,), optional
            The rows' time stamps (or a datetime index on ``X``): checked to be sorted and
            after the data already seen.

        Returns
        -------
        self
        """
        self._check_started()
        where = f"{type(self).__name__}.update"
        stamps, name = time_of(X, y, time)
        self.last_time_ = check_time_order(stamps, where, name, after=self.last_time_)
        target, center = self._observed(X, y, where)
        _, _, covered, _, a = adapt(
            self.scores_,
            center,
            target,
            np.asarray(self.alpha_t_),
            self._alpha0(where),
            check_gamma(self.gamma, where),
            clip=self.clip,
            symmetric=self.symmetric,
            optimize_beta=self.optimize_beta,
        )
        self.alpha_t_ = float(a)
        self.n_updates_ += int(target.size)
        self.n_errors_ += int(np.sum(~covered))
        self.scores_ = roll(self.scores_, target - center, self.window_)
        return self


class AdaptiveConformalRegressor(OnlineConformal, _Wrapper):
    """ACI around any point forecaster (posterax or scikit-learn): split-conformal residuals
    from a calibration stretch, a rolling window of recent residuals and the ACI level.

    Parameters
    ----------
    estimator : regressor
        A fitted model (``prefit=True``) or one to fit, with ``predict(X)``.
    confidence_level : float in (0, 1), default 0.9
        The target long-run coverage ``1 - alpha``.
    gamma : float in [0, 1], default 0.005
        The ACI step (0: split conformal with a rolling window).
    window : int, optional
        How many recent residuals to keep (default: the calibration size).
    symmetric, optimize_beta, clip : bool, default False, False, True
        See :mod:`posterax.conformal.time_series`.
    prefit : bool, default True
        Whether ``estimator`` is already fitted.

    Attributes
    ----------
    scores_ : array (n,)
        The residual window, oldest first.
    alpha_t_ : float
        The current ACI level.
    n_updates_, n_errors_ : int
        Observations taken in by :meth:`update`, and how many fell outside their interval.

    Examples
    --------
    >>> from sklearn.linear_model import LinearRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(1400, 1))
    >>> y = 2 * X[:, 0] + rng.normal(size=1400) * np.where(np.arange(1400) < 800, 1.0, 3.0)
    >>> aci = AdaptiveConformalRegressor(LinearRegression(), 0.9, gamma=0.02, prefit=False)
    >>> aci = aci.fit(X[:200], y[:200]).conformalize(X[200:400], y[200:400])
    >>> hits = []
    >>> for t in range(400, 1400):  # predict one step ahead, then observe
    ...     lower, upper = aci.predict_interval(X[t : t + 1])
    ...     hits.append(bool(lower[0] <= y[t] <= upper[0]))
    ...     aci = aci.update(X[t : t + 1], y[t : t + 1])
    >>> bool(0.87 < np.mean(hits[400:]) < 0.93)  # after the noise tripled
    True
    """

    def __init__(
        self,
        estimator: Any = None,
        confidence_level: float = 0.9,
        gamma: float = 0.005,
        window: int | None = None,
        symmetric: bool = False,
        optimize_beta: bool = False,
        clip: bool = True,
        prefit: bool = True,
    ):
        self.estimator = estimator
        self.confidence_level = confidence_level
        self.gamma = gamma
        self.window = window
        self.symmetric = symmetric
        self.optimize_beta = optimize_beta
        self.clip = clip
        self.prefit = prefit

    def fit(self, X: Any, y: Any, time: Any = None, **fit_params: Any):
        """Fit a clone of the model on training data (``prefit=False``); ``time`` (or a
        datetime index on ``X``) is checked to be sorted."""
        stamps, name = time_of(X, y, time)
        check_time_order(stamps, f"{type(self).__name__}.fit", name)
        return super().fit(X, y, **fit_params)

    def _center(self, X: Any) -> np.ndarray:
        return np.asarray(self._model().predict(X), dtype=np.float64).reshape(-1)

    def conformalize(self, X: Any, y: Any, time: Any = None) -> AdaptiveConformalRegressor:
        """Residuals ``y - predict(X)`` of a calibration stretch (after the training data,
        before the data to predict) start the window; ``alpha_t_`` starts at ``alpha``."""
        where = f"{type(self).__name__}.conformalize"
        stamps, name = time_of(X, y, time)
        last = check_time_order(stamps, where, name)
        target, center = self._observed(X, y, where)
        self._start(target - center, where, last)
        return self


def block_bootstrap_samples(n: int, n_samples: int, block_length: int, random_state: Any = None):
    """``n_samples`` moving-block bootstrap samples of ``range(n)``: blocks of ``block_length``
    consecutive indices from uniform starts, joined and cut to length ``n``.

    Examples
    --------
    >>> [s.tolist() for s in block_bootstrap_samples(6, 2, 3, random_state=0)]
    [[3, 4, 5, 2, 3, 4], [2, 3, 4, 1, 2, 3]]
    """
    rng = np.random.default_rng(random_state)
    blocks = -(-n // block_length)
    starts = rng.integers(0, n - block_length + 1, size=(n_samples, blocks))
    rows = (starts[..., None] + np.arange(block_length)).reshape(n_samples, -1)[:, :n]
    return list(rows)


class _Samples:
    """Fixed bootstrap samples as a splitter, for JackknifeAfterBootstrapRegressor."""

    def __init__(self, samples: list[np.ndarray]):
        self.samples = samples

    def split(self, X: Any, *args: Any):
        for train in self.samples:
            yield train, None


class EnbPIRegressor(OnlineConformal, BaseEstimator):
    """EnbPI intervals around any regressor (posterax or scikit-learn), updated online.

    Parameters
    ----------
    estimator : regressor
        Anything with ``fit`` and ``predict`` (cloned for each bootstrap sample).
    confidence_level : float in (0, 1), default 0.9
    resampling : int or splitter, default 30
        The number of bootstrap samples, or an object whose ``split(X)`` yields ``(train,
        test)`` index pairs (e.g. MAPIE's ``BlockBootstrap``: its train indices are used).
    block_length : int, default 1
        Rows per bootstrap block for an int ``resampling`` (1: the paper's i.i.d. bootstrap,
        the samples :class:`~posterax.conformal.cross.JackknifeAfterBootstrapRegressor` draws).
    aggregation : {"mean", "median"}, default "mean"
        How the out-of-bag predictions (and then the training points') are combined.
    center : {"ensemble", "full"}, default "ensemble"
        The interval centre and the reference of new residuals: the aggregate (EnbPI), or one
        model fitted on the whole training series (MAPIE's ``method="aci"``).
    window : int, optional
        How many recent residuals to keep (default: the training size, as MAPIE).
    gamma : float in [0, 1], default 0.0
        ACI step for :meth:`update` (0: EnbPI's fixed level).
    symmetric, optimize_beta, clip : bool, default False, False, True
        See :mod:`posterax.conformal.time_series`; ``optimize_beta`` is MAPIE's.
    random_state : int, optional
        The bootstrap draws for an int ``resampling``.

    Attributes
    ----------
    ensemble_ : JackknifeAfterBootstrapRegressor
        The bootstrap fits (``ensemble_.estimators_``) and out-of-bag weights.
    scores_, alpha_t_, n_updates_, n_errors_
        As :class:`~posterax.conformal.time_series.AdaptiveConformalRegressor`.

    Examples
    --------
    >>> from sklearn.linear_model import LinearRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(700, 2)); y = X @ [1.0, -1.0] + rng.normal(size=700)
    >>> enbpi = EnbPIRegressor(LinearRegression(), 0.9, resampling=20, random_state=0)
    >>> lower, upper = enbpi.fit_conformalize(X[:200], y[:200]).predict_interval(X[200:])
    >>> 0.86 < float(np.mean((lower <= y[200:]) & (y[200:] <= upper))) < 0.94
    True
    >>> enbpi = enbpi.update(X[200:300], y[200:300])  # 100 new residuals, 100 old ones leave
    """

    def __init__(
        self,
        estimator: Any = None,
        confidence_level: float = 0.9,
        resampling: Any = 30,
        block_length: int = 1,
        aggregation: str = "mean",
        center: str = "ensemble",
        window: int | None = None,
        gamma: float = 0.0,
        symmetric: bool = False,
        optimize_beta: bool = False,
        clip: bool = True,
        random_state: int | None = None,
    ):
        self.estimator = estimator
        self.confidence_level = confidence_level
        self.resampling = resampling
        self.block_length = block_length
        self.aggregation = aggregation
        self.center = center
        self.window = window
        self.gamma = gamma
        self.symmetric = symmetric
        self.optimize_beta = optimize_beta
        self.clip = clip
        self.random_state = random_state

    def _resampling(self, n: int, where: str) -> Any:
        """The ensemble's ``resampling``: a splitter as given, the number of i.i.d. bootstrap
        samples it draws itself, or fixed samples of blocks of ``block_length`` rows."""
        if hasattr(self.resampling, "split"):
            return self.resampling
        size = check_positive_int(self.resampling, "resampling", where, minimum=2)
        length = check_positive_int(self.block_length, "block_length", where)
        if length > n:
            raise ValueError(
                f"The 'block_length' parameter of {where} must be at most the training size "
                f"{n}. Got {length}. Pass e.g. block_length={max(1, n // 10)}."
            )
        if length == 1:
            return size
        return _Samples(block_bootstrap_samples(n, size, length, self.random_state))

    def fit_conformalize(self, X: Any, y: Any, time: Any = None, **fit_params: Any):
        """Fit the bootstrap ensemble on the training series (oldest row first) and take its
        out-of-bag residuals as the first score window.

        Parameters
        ----------
        X : array-like (n, ...)
        y : array-like (n,)
        time : array-like (n,), optional
            Time stamps (or a datetime index on ``X``), checked to be sorted.
        **fit_params
            Passed to the estimator's ``fit``.

        Returns
        -------
        self
        """
        where = f"{type(self).__name__}.fit_conformalize"
        stamps, name = time_of(X, y, time)
        last = check_time_order(stamps, where, name)
        check_choice(self.aggregation, "aggregation", where, AGGREGATIONS)
        check_choice(self.center, "center", where, CENTERS)
        X_rows = X if hasattr(X, "iloc") else np.asarray(X)
        target = np.asarray(y, dtype=np.float64).reshape(-1)
        n = target.size
        # The level before the fits, so that too short a series is named here, not in the ensemble
        check_window(n, self._alpha0(where), self.symmetric, where, name="training rows")
        self.ensemble_ = JackknifeAfterBootstrapRegressor(
            self.estimator,
            self.confidence_level,
            resampling=self._resampling(n, where),
            random_state=self.random_state,
        ).fit_conformalize(X_rows, target, **fit_params)
        keep = self.ensemble_.out_of_bag_.any(axis=1)
        self.out_of_bag_ = self.ensemble_.out_of_bag_[keep]  # (n kept, B)
        at_train = self.ensemble_.train_predictions_[:, keep].T  # (n kept, B)
        residuals = np.full(n, np.nan)  # nan: in every sample, no out-of-bag model
        if self.aggregation == "mean":
            loo = np.sum(self.ensemble_.fold_of_ * at_train, axis=1)
        else:
            loo = np.nanmedian(np.where(self.out_of_bag_, at_train, np.nan), axis=1)
        residuals[keep] = target[keep] - loo
        if self.center == "full":
            self.full_estimator_ = clone(self.estimator).fit(X_rows, target, **fit_params)
        self._start(residuals, where, last)
        return self

    def _loo(self, preds: np.ndarray) -> np.ndarray:
        """The median ``f_{-i}(x)`` for every kept training point ``i`` and column of
        ``preds`` (B, m)."""
        n_kept, B = self.out_of_bag_.shape
        step = max(1, _MAX_ENTRIES // max(n_kept * B, 1))
        out = []
        for start in range(0, preds.shape[1], step):
            chunk = preds[:, start : start + step]
            masked = np.where(self.out_of_bag_[:, :, None], chunk[None], np.nan)
            out.append(np.nanmedian(masked, axis=1))
        return np.concatenate(out, axis=1)

    def _center(self, X: Any) -> np.ndarray:
        if self.center == "full":
            return np.asarray(self.full_estimator_.predict(X), np.float64).reshape(-1)
        if self.aggregation == "mean":  # the mean over i of f_{-i}(x): J+aB's prediction
            return np.asarray(self.ensemble_.predict(X), np.float64)
        return np.median(self._loo(self.ensemble_._fold_predictions(X)), axis=0)


__all__ = [
    "AGGREGATIONS",
    "CENTERS",
    "AdaptiveConformalRegressor",
    "EnbPIRegressor",
    "OnlineConformal",
    "block_bootstrap_samples",
]
