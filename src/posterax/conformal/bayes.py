"""Conformal Bayes (Fong & Holmes 2021, "Conformal Bayesian computation"): full conformal
prediction with the posterior predictive density as the conformity score, from the posterior
draws already in hand.

Full conformal refits the model on the training data plus each candidate ``(x, y)``; the
score of every point ``z_i`` is its posterior predictive density given that augmented data,
``sigma_i(y) = p(y_i | x_i, Z_{1:n} + (x, y))``. Adding one point reweights the posterior by
``p(y | x, theta)``, so with draws ``theta_t`` of the posterior given ``Z_{1:n}``,

    sigma_i(y) ~= sum_t w_t p(y_i | x_i, theta_t),   w_t proportional to p(y | x, theta_t)

(add-one-in importance sampling). Candidate ``y`` is in the set when its p-value
``(1 + #{i : sigma_i(y) <= sigma_{n+1}(y)}) / (n + 1)`` exceeds ``alpha``. The sets keep
``1 - alpha`` coverage whether or not the model is right (exchangeable data); when it is
right they are close to the Bayesian highest-density intervals. Exact up to Monte Carlo error
of the draws: use it with posteriors that are draws (``"exact"``, NUTS, MALA, SG-MCMC). For
approximate posteriors (Laplace, VI, ensembles) use split conformal instead.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
from scipy.special import logsumexp
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError

from posterax.conformal.quantile import conformal_rank
from posterax.predictive.inputs import check_positive_int, check_probability, mixture_moments

_CHUNK = 1 << 22  # (candidates x training points) entries per matrix product


def conformal_bayes_pvalues(train_log_lik: Any, candidate_log_lik: Any) -> np.ndarray:
    """Full-conformal p-values of candidate outcomes from per-draw log-likelihoods.

    Parameters
    ----------
    train_log_lik : array (T, n)
        ``log p(y_i | x_i, theta_t)`` of the training points under each posterior draw.
    candidate_log_lik : array (T, c)
        ``log p(y | x, theta_t)`` of each candidate pair ``(x, y)`` (any number of test
        points times candidate outcomes, flattened).

    Returns
    -------
    numpy.ndarray (c,)
        The conformal p-value of each candidate; the ``1 - alpha`` set keeps p > alpha.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import norm
    >>> theta = np.random.default_rng(0).normal(0.0, 0.1, size=(500, 1))  # posterior draws
    >>> y = np.random.default_rng(1).normal(size=99)
    >>> p = conformal_bayes_pvalues(norm.logpdf(y, theta), norm.logpdf([0.0, 4.0], theta))
    >>> p.round(2).tolist()  # y = 0 is typical, y = 4 is not
    [0.99, 0.01]
    """
    train = np.asarray(train_log_lik, dtype=np.float64)
    cand = np.asarray(candidate_log_lik, dtype=np.float64)
    if train.ndim != 2 or cand.ndim != 2 or train.shape[0] != cand.shape[0]:
        raise ValueError(
            "conformal_bayes_pvalues: 'train_log_lik' must be (T draws, n) and "
            "'candidate_log_lik' (T draws, c) with the same draws. Got shapes "
            f"{train.shape} and {cand.shape}."
        )
    if not np.all(np.isfinite(train)):
        raise ValueError(
            "The 'train_log_lik' parameter of conformal_bayes_pvalues must be finite. Got "
            f"{int(np.sum(~np.isfinite(train)))} NaN or infinite entries: check the model's "
            "predictive means and scales at the training points (a scale of 0 gives -inf)."
        )
    if np.any(np.isnan(cand) | (cand == np.inf)):
        raise ValueError(
            "The 'candidate_log_lik' parameter of conformal_bayes_pvalues must be finite or "
            "-inf (an impossible candidate). Got NaN or +inf: check the model's predictions."
        )
    n = train.shape[1]
    shift = train.max(axis=0)  # per training point, so exp() <= 1
    scaled = np.exp(train - shift)  # (T, n)
    log_norm = logsumexp(cand, axis=0)  # (c,)
    # The candidate's own score: sum_t w_t p(y | x, theta_t).
    own = logsumexp(2.0 * cand, axis=0) - log_norm
    pvalues = np.empty(cand.shape[1])
    step = max(1, _CHUNK // max(n, 1))
    for start in range(0, cand.shape[1], step):
        part = slice(start, start + step)
        weights = np.exp(cand[:, part] - log_norm[part]).T  # (chunk, T), rows sum to 1
        with np.errstate(divide="ignore"):
            scores = np.log(weights @ scaled) + shift  # (chunk, n)
        pvalues[part] = (1.0 + np.sum(scores <= own[part, None], axis=1)) / (n + 1.0)
    return pvalues


class ConformalBayesRegressor(BaseEstimator):
    """Full-conformal intervals with the posterior predictive density as the score.

    Parameters
    ----------
    estimator : posterax regressor
        Anything with ``fit`` and ``predict_samples(X) -> PredictiveSamples`` whose draws are
        posterior draws: ``BayesianLinearRegression`` ("exact", "nuts") or a
        ``BayesianRegressor`` with a sampler (NUTS, MALA, SG-MCMC).
    confidence_level : float in (0, 1), default 0.9
    grid_size : int, default 200
        Candidate outcomes per test point, evenly spaced over the predictive mean
        ``+- grid_width`` predictive standard deviations.
    grid_width : float, default 6.0
    n_samples : int, optional
        Posterior draws to use (default: all the estimator has).

    Attributes
    ----------
    estimator_ : the estimator fitted on all the training data.

    Examples
    --------
    >>> import numpy as np
    >>> import posterax as px
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 2)); y = X @ [1.0, -1.0] + rng.normal(size=100)
    >>> cb = ConformalBayesRegressor(px.BayesianLinearRegression(method="exact"), 0.9)
    >>> lower, upper = cb.fit_conformalize(X, y).predict_interval(X[:2])
    >>> bool(np.all((upper - lower > 2.6) & (upper - lower < 4.6)))  # about 2 x 1.645
    True
    """

    def __init__(
        self,
        estimator: Any,
        confidence_level: float = 0.9,
        grid_size: int = 200,
        grid_width: float = 6.0,
        n_samples: int | None = None,
    ):
        self.estimator = estimator
        self.confidence_level = confidence_level
        self.grid_size = grid_size
        self.grid_width = grid_width
        self.n_samples = n_samples

    def fit_conformalize(self, X: Any, y: Any, **fit_params: Any) -> ConformalBayesRegressor:
        """Fit the estimator on all of ``(X, y)``: every training point also calibrates."""
        where = "ConformalBayesRegressor.fit_conformalize"
        alpha = 1.0 - check_probability(
            self.confidence_level, "confidence_level", where, kind="level"
        )
        self._check_grid(where)
        if self.n_samples is not None:
            check_positive_int(self.n_samples, "n_samples", where)
        if not hasattr(self.estimator, "predict_samples"):
            raise TypeError(
                f"The 'estimator' parameter of {where} must offer predict_samples(X) with "
                f"posterior draws (a posterax Bayesian regressor). Got "
                f"{type(self.estimator).__name__}; use CrossConformalRegressor for others."
            )
        self.X_ = np.asarray(X)
        if self.X_.dtype.kind != "f":  # test inputs may be fractional
            self.X_ = self.X_.astype(np.float64)
        self.y_ = np.asarray(y, dtype=np.float64).ravel()
        conformal_rank(self.y_.shape[0], alpha, where)
        self.estimator_ = clone(self.estimator).fit(self.X_, self.y_, **fit_params)
        return self

    def _draws(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Per-draw predictive mean and scale at the training points then ``X``, from one
        call so both use the same posterior draws."""
        if not hasattr(self, "estimator_"):
            raise NotFittedError(
                "This ConformalBayesRegressor is not fitted yet. Call fit_conformalize(X, y)."
            )
        both = np.concatenate([self.X_, np.asarray(X)])  # the wider dtype of the two
        pred = self.estimator_.predict_samples(both, n_samples=self.n_samples)
        return np.asarray(pred.mean, np.float64), np.asarray(pred.scale, np.float64)

    def _check_grid(self, where: str) -> None:
        check_positive_int(self.grid_size, "grid_size", where, minimum=2)
        if not (isinstance(self.grid_width, numbers.Real) and self.grid_width > 0):
            raise ValueError(
                f"The 'grid_width' parameter of {where} must be a number > 0 (predictive sds "
                f"either side of the mean). Got {self.grid_width!r}. Pass e.g. grid_width=6.0."
            )

    def predict_candidates(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Candidate outcomes and which are in each test point's conformal set (the set may
        have gaps: a multimodal predictive).

        Returns
        -------
        grid : numpy.ndarray (m, grid_size)
        in_set : numpy.ndarray of bool (m, grid_size)
        """
        where = "ConformalBayesRegressor.predict_candidates"
        alpha = 1.0 - check_probability(
            self.confidence_level, "confidence_level", where, kind="level"
        )
        self._check_grid(where)
        mean, scale = self._draws(X)
        n = self.y_.shape[0]
        train_ll = _normal_logpdf(self.y_, mean[:, :n], scale[:, :n])  # (T, n)
        mu, sd = mean[:, n:], scale[:, n:]  # (T, m)
        center, spread = (np.asarray(v, np.float64) for v in mixture_moments(mu, sd))
        steps = np.linspace(-self.grid_width, self.grid_width, self.grid_size)
        grid = center[:, None] + spread[:, None] * steps  # (m, G)
        in_set = np.empty(grid.shape, dtype=bool)
        # Test points per chunk: bounds the (T, chunk, G) candidate log-likelihoods.
        step = max(1, _CHUNK // (mu.shape[0] * self.grid_size))
        for start in range(0, grid.shape[0], step):
            part = slice(start, start + step)
            cand_ll = _normal_logpdf(grid[None, part], mu[:, part, None], sd[:, part, None])
            pvalues = conformal_bayes_pvalues(train_ll, cand_ll.reshape(cand_ll.shape[0], -1))
            in_set[part] = pvalues.reshape(grid[part].shape) > alpha
        if np.any(in_set[:, [0, -1]]):
            warnings.warn(
                "ConformalBayesRegressor: some sets reach the edge of the candidate grid, so "
                "their intervals are cut short. Pass a larger grid_width.",
                stacklevel=2,
            )
        return grid, in_set

    def predict_interval(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(lower, upper)``: the hull of each set, its ends halfway between the outermost
        candidates inside and the next ones outside (within half a grid step of the exact
        ends; NaN for an empty set)."""
        grid, in_set = self.predict_candidates(X)
        half = 0.5 * (grid[:, 1] - grid[:, 0])
        lower = np.where(in_set, grid, np.inf).min(axis=1) - half
        upper = np.where(in_set, grid, -np.inf).max(axis=1) + half
        empty = ~in_set.any(axis=1)
        lower[empty], upper[empty] = np.nan, np.nan
        return lower, upper

    def predict(self, X: Any) -> np.ndarray:
        """The posterior predictive mean."""
        mean, _ = self._draws(X)
        return mean[:, self.y_.shape[0] :].mean(axis=0)


def _normal_logpdf(y: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    z = (y - mean) / scale
    return -0.5 * z * z - np.log(scale) - 0.5 * np.log(2.0 * np.pi)


__all__ = ["ConformalBayesRegressor", "conformal_bayes_pvalues"]
