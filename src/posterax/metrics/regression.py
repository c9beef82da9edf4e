"""Regression metrics: point errors, negative log-likelihoods, CRPS and the pinball loss.

Every function takes the targets ``y_true`` ``(N,)`` first and then either a regression
:class:`~posterax.base.PredictiveSamples` (per-draw ``mean``/``scale`` ``(S, N)``, an equal-weight
mixture of Gaussians) or plain NumPy/JAX arrays. Results are 0-d JAX arrays (``float(...)`` them
for a Python number), so the functions also work under ``jax.jit``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy.special import ndtr

from posterax.predictive.inputs import (
    as_float,
    check_choice,
    check_same_length,
    is_concrete,
    is_predictive,
    min_max,
    mixture_logpdf,
    mixture_moments,
    mixture_quantile,
    point_prediction,
    regression_draws,
)

_LOG_2PI = 1.8378770664093453  # log(2 pi)


@jax.jit
def _rmse(y: jax.Array, mu: jax.Array) -> jax.Array:
    return jnp.sqrt(jnp.mean(jnp.square(y - mu)))


@jax.jit
def _mae(y: jax.Array, mu: jax.Array) -> jax.Array:
    return jnp.mean(jnp.abs(y - mu))


@jax.jit
def _gaussian_nll(y: jax.Array, mean: jax.Array, scale: jax.Array) -> jax.Array:
    mu, sigma = mixture_moments(mean, scale)
    z = (y - mu) / sigma
    return jnp.mean(0.5 * _LOG_2PI + jnp.log(sigma) + 0.5 * jnp.square(z))


@jax.jit
def _crps_gaussian(y: jax.Array, mean: jax.Array, scale: jax.Array) -> jax.Array:
    mu, sigma = mixture_moments(mean, scale)
    z = (y - mu) / sigma
    pdf = jnp.exp(-0.5 * jnp.square(z)) / jnp.sqrt(2.0 * jnp.pi)
    crps = sigma * (z * (2.0 * ndtr(z) - 1.0) + 2.0 * pdf - 1.0 / jnp.sqrt(jnp.pi))
    return jnp.mean(crps)


@jax.jit
def _crps_samples(y: jax.Array, x: jax.Array) -> jax.Array:
    s = x.shape[0]
    x = x.astype(jnp.result_type(x.dtype, y.dtype))
    term1 = jnp.mean(jnp.abs(x - y[None]), axis=0)
    xs = jnp.sort(x, axis=0)
    weights = (2.0 * jnp.arange(1, s + 1, dtype=x.dtype) - s - 1.0)[:, None]
    term2 = jnp.sum(weights * xs, axis=0) / (s * s)
    return jnp.mean(term1 - term2)


@jax.jit
def _pinball(y: jax.Array, q: jax.Array, taus: jax.Array) -> jax.Array:
    diff = y[:, None] - q
    return jnp.mean(jnp.maximum(taus * diff, (taus - 1.0) * diff))


def _targets(y_true: Any, where: str) -> jax.Array:
    return as_float(y_true, "y_true", where, ndim=1)


def rmse(y_true: Any, y_pred: Any) -> jax.Array:
    """Root mean squared error of the point prediction.

    Parameters
    ----------
    y_true : array, shape (N,)
        Targets.
    y_pred : array, shape (N,), or PredictiveSamples
        Point predictions; for a PredictiveSamples, its predictive mean (mean over draws).

    Returns
    -------
    jax.Array, shape ()

    Examples
    --------
    >>> float(rmse([0.0, 0.0], [3.0, 4.0]))  # doctest: +ELLIPSIS
    3.535...
    """
    y = _targets(y_true, "rmse")
    mu = point_prediction(y_pred, "y_pred", "rmse")
    check_same_length("rmse", y_true=y, y_pred=mu)
    return _rmse(y, mu)


def mae(y_true: Any, y_pred: Any) -> jax.Array:
    """Mean absolute error of the point prediction (the predictive mean for PredictiveSamples).

    Parameters
    ----------
    y_true : array, shape (N,)
    y_pred : array, shape (N,), or PredictiveSamples

    Returns
    -------
    jax.Array, shape ()

    Examples
    --------
    >>> float(mae([0.0, 0.0], [3.0, -4.0]))
    3.5
    """
    y = _targets(y_true, "mae")
    mu = point_prediction(y_pred, "y_pred", "mae")
    check_same_length("mae", y_true=y, y_pred=mu)
    return _mae(y, mu)


def gaussian_nll(y_true: Any, y_pred: Any, y_std: Any = None) -> jax.Array:
    """Mean negative log-likelihood under a Gaussian predictive.

    For a PredictiveSamples the Gaussian is moment-matched to the mixture (mean of means; variance
    = mean aleatoric variance + variance of the means). Use :func:`mixture_nll` for the exact
    mixture likelihood.

    Parameters
    ----------
    y_true : array, shape (N,)
    y_pred : array, shape (N,), or PredictiveSamples
        Predictive mean, or the predictive samples.
    y_std : array, shape (N,), optional
        Predictive standard deviation (> 0); required with an array ``y_pred``.

    Returns
    -------
    jax.Array, shape ()
        ``mean(0.5 log(2 pi sigma^2) + (y - mu)^2 / (2 sigma^2))``.

    Examples
    --------
    >>> round(float(gaussian_nll([0.0], [0.0], [1.0])), 6)  # 0.5 * log(2 pi)
    0.918939
    """
    where = "gaussian_nll"
    y = _targets(y_true, where)
    mean, scale = regression_draws(y_pred, y_std, "y_pred", where)
    check_same_length(where, y_true=y, y_pred=mean.T)
    return _gaussian_nll(y, mean, scale)


def mixture_nll(
    y_true: Any, y_pred: Any, y_std: Any = None, *, reduction: str = "mean"
) -> jax.Array:
    """Mean negative log-likelihood of the equal-weight Gaussian mixture over draws.

    ``-mean_n log( (1/S) sum_s Normal(y_n | mean[s, n], scale[s, n]) )``, computed with
    log-sum-exp so it stays finite when every component density underflows.

    Parameters
    ----------
    y_true : array, shape (N,)
    y_pred : PredictiveSamples, or array of shape (S, N) or (N,)
        The predictive samples, or per-draw means.
    y_std : array broadcastable to ``y_pred``, optional
        Per-draw scales (> 0); required with an array ``y_pred``.
    reduction : {"mean", "none"}
        ``"none"`` returns each row's NLL, shape ``(N,)``, to compare two predictives row by
        row (a paired standard error).

    Returns
    -------
    jax.Array, shape () (or ``(N,)`` with ``reduction="none"``)

    Examples
    --------
    >>> import numpy as np
    >>> # two identical draws give the single-Gaussian NLL
    >>> round(float(mixture_nll([0.0], np.zeros((2, 1)), 1.0)), 6)
    0.918939
    >>> mixture_nll([0.0, 1.0], np.zeros((2, 2)), 1.0, reduction="none").shape
    (2,)
    """
    where = "mixture_nll"
    reduction = check_choice(reduction, "reduction", where, ("mean", "none"))
    y = _targets(y_true, where)
    mean, scale = regression_draws(y_pred, y_std, "y_pred", where)
    check_same_length(where, y_true=y, y_pred=mean.T)
    rows = -mixture_logpdf(mean, scale, y.astype(mean.dtype))
    return rows if reduction == "none" else jnp.mean(rows)


def crps_gaussian(y_true: Any, y_pred: Any, y_std: Any = None) -> jax.Array:
    """Mean continuous ranked probability score of a Gaussian predictive, in closed form.

    ``CRPS(N(mu, sigma^2), y) = sigma [z (2 Phi(z) - 1) + 2 phi(z) - 1/sqrt(pi)]`` with
    ``z = (y - mu) / sigma`` (Gneiting & Raftery, 2007). A PredictiveSamples is moment-matched
    to one Gaussian; for the mixture itself use :func:`crps_samples`. Lower is better.

    Parameters
    ----------
    y_true : array, shape (N,)
    y_pred : array, shape (N,), or PredictiveSamples
    y_std : array, shape (N,), optional
        Required with an array ``y_pred``.

    Returns
    -------
    jax.Array, shape ()

    Examples
    --------
    >>> round(float(crps_gaussian([0.0], [0.0], [1.0])), 6)  # (sqrt(2) - 1) / sqrt(pi)
    0.233695
    """
    where = "crps_gaussian"
    y = _targets(y_true, where)
    mean, scale = regression_draws(y_pred, y_std, "y_pred", where)
    check_same_length(where, y_true=y, y_pred=mean.T)
    return _crps_gaussian(y, mean, scale)


def crps_samples(y_true: Any, samples: Any, *, rng_key: jax.Array | None = None) -> jax.Array:
    """Mean CRPS of the empirical distribution of predictive samples.

    ``CRPS = mean_s |x_s - y| - 1/(2 S^2) sum_{s,t} |x_s - x_t|``; the double sum is computed in
    ``O(S log S)`` from the sorted samples, never as an ``S x S`` matrix.

    Parameters
    ----------
    y_true : array, shape (N,)
    samples : array, shape (S, N), or PredictiveSamples
        Samples of ``y`` (draw axis first). For a PredictiveSamples one ``y`` is drawn from each
        per-draw Gaussian using ``rng_key``.
    rng_key : jax.Array, optional
        Required with a PredictiveSamples.

    Returns
    -------
    jax.Array, shape ()

    Examples
    --------
    >>> float(crps_samples([0.0], [[-1.0], [1.0]]))  # 1 - (1/8) * 4
    0.5
    """
    where = "crps_samples"
    y = _targets(y_true, where)
    if is_predictive(samples):
        if rng_key is None:
            raise ValueError(
                "crps_samples needs 'rng_key' to draw y from a PredictiveSamples. "
                "Pass rng_key=jax.random.key(0), or pass an (S, N) array of samples."
            )
        mean, scale = regression_draws(samples, None, "samples", where)
        x = mean + scale * jax.random.normal(rng_key, mean.shape, mean.dtype)
    else:
        x = as_float(samples, "samples", where, ndim=2)
    check_same_length(where, y_true=y, samples=x.T)
    return _crps_samples(y, x)


def pinball_loss(y_true: Any, y_quantiles: Any, quantiles: Any) -> jax.Array:
    """Mean pinball (quantile) loss, averaged over points and quantile levels.

    ``rho_tau(y - q) = max(tau (y - q), (tau - 1)(y - q))``.

    Parameters
    ----------
    y_true : array, shape (N,)
    y_quantiles : array, shape (N,) or (N, Q), or PredictiveSamples
        Predicted quantiles; for a PredictiveSamples, the mixture's quantiles at ``quantiles``.
    quantiles : float or array, shape (Q,)
        Quantile levels in (0, 1).

    Returns
    -------
    jax.Array, shape ()

    Examples
    --------
    >>> round(float(pinball_loss([1.0, 0.0], [0.0, 0.0], 0.9)), 6)  # (0.9 * 1 + 0) / 2
    0.45
    """
    where = "pinball_loss"
    y = _targets(y_true, where)
    taus = as_float(quantiles, "quantiles", where, ndim=(0, 1))
    if is_concrete(taus) and taus.size and not 0.0 < min_max(taus)[0] <= min_max(taus)[1] < 1.0:
        raise ValueError(
            f"The 'quantiles' parameter of {where} must be in (0, 1). Got {taus.tolist()}. "
            "Did you mean percentages divided by 100?"
        )
    taus = jnp.atleast_1d(taus)
    if is_predictive(y_quantiles):
        mean, scale = regression_draws(y_quantiles, None, "y_quantiles", where)
        q = mixture_quantile(mean, scale, taus)
    else:
        q = as_float(y_quantiles, "y_quantiles", where, ndim=(1, 2))
        if q.ndim == 1:
            q = q[:, None]
        if q.shape[1] != taus.shape[0]:
            raise ValueError(
                f"{where}: 'y_quantiles' has {q.shape[1]} columns but 'quantiles' has "
                f"{taus.shape[0]} levels. Pass one column per quantile level."
            )
    check_same_length(where, y_true=y, y_quantiles=q)
    return _pinball(y, q, taus)


__all__ = [
    "crps_gaussian",
    "crps_samples",
    "gaussian_nll",
    "mae",
    "mixture_nll",
    "pinball_loss",
    "rmse",
]
