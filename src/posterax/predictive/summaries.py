"""Summaries of a regression :class:`PredictiveSamples`: mean, median, std, quantiles,
central intervals, HDI and a skew flag.

``kind="predictive"`` summarises a new observation ``y`` (the equal-weight mixture of the per-draw
Gaussians, noise included); ``kind="mean"`` summarises the regression function (the per-draw
means: a credible band). Mixture quantiles are found by bisection on the exact mixture CDF, so
they carry no extra Monte Carlo noise from sampling ``y``.
"""

from __future__ import annotations

from collections.abc import Sequence

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np

from posterax.base import PredictiveSamples
from posterax.data.validation import check_choice, check_level
from posterax.predictive.inputs import mixture_quantile
from posterax.types import PRNGKey

KINDS = ("predictive", "mean")


def _regression_only(pred: PredictiveSamples, where: str) -> None:
    if not isinstance(pred, PredictiveSamples):
        raise TypeError(
            f"The 'pred' parameter of {where} must be a PredictiveSamples. Got "
            f"{type(pred).__name__}. Build one with PredictiveSamples.regression(mean, scale)."
        )
    if pred.task != "regression":
        raise ValueError(
            f"{where} summarises regression predictions; got classification logits. Use "
            "pred.probs().mean(axis=0) for class probabilities."
        )


def predictive_mean(pred: PredictiveSamples) -> jax.Array:
    """Posterior predictive mean, shape ``(N,)`` (same for both kinds)."""
    _regression_only(pred, "predictive_mean")
    return jnp.mean(pred.mean, axis=0)


def predictive_std(pred: PredictiveSamples, kind: str = "predictive") -> jax.Array:
    """Predictive sd ``(N,)``: law of total variance, ``sqrt(E[scale^2] + Var[mean])``."""
    _regression_only(pred, "predictive_std")
    check_choice(kind, name="kind", where="predictive_std", allowed=KINDS)
    var_of_means = jnp.var(pred.mean, axis=0)
    if kind == "mean":
        return jnp.sqrt(var_of_means)
    return jnp.sqrt(jnp.mean(pred.scale**2, axis=0) + var_of_means)


def predictive_quantiles(
    pred: PredictiveSamples, q: Sequence[float] | float, kind: str = "predictive"
) -> jax.Array:
    """Quantiles of the predictive (or of the regression function), shape ``(Q, N)``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> pred = PredictiveSamples.regression(jnp.zeros((3, 2)), jnp.ones((3, 2)))
    >>> [round(float(v), 3) for v in predictive_quantiles(pred, [0.975])[0]]
    [1.96, 1.96]
    """
    _regression_only(pred, "predictive_quantiles")
    check_choice(kind, name="kind", where="predictive_quantiles", allowed=KINDS)
    qs = np.atleast_1d(np.asarray(q, dtype=np.float64))
    for value in qs:
        check_level(float(value), name="q", where="predictive_quantiles")
    q_arr = jnp.asarray(qs, dtype=pred.mean.dtype)
    if kind == "mean":
        return jnp.quantile(pred.mean, q_arr, axis=0)
    return mixture_quantile(pred.mean, pred.scale, q_arr).T


def predictive_median(pred: PredictiveSamples, kind: str = "predictive") -> jax.Array:
    """Predictive median, shape ``(N,)``."""
    return predictive_quantiles(pred, [0.5], kind=kind)[0]


def predictive_interval(
    pred: PredictiveSamples, level: float = 0.95, kind: str = "predictive"
) -> tuple[jax.Array, jax.Array]:
    """Central (equal-tailed) interval ``(lower, upper)``, each of shape ``(N,)``."""
    level = check_level(level, where="predictive_interval")
    bounds = predictive_quantiles(pred, [(1 - level) / 2, (1 + level) / 2], kind=kind)
    return bounds[0], bounds[1]


def predictive_hdi(
    pred: PredictiveSamples,
    level: float = 0.95,
    kind: str = "predictive",
    *,
    rng_key: PRNGKey | None = None,
    n_per_draw: int = 4,
) -> tuple[jax.Array, jax.Array]:
    """Highest-density interval ``(lower, upper)``, each ``(N,)``, computed by ArviZ.

    For ``kind="predictive"`` new observations are drawn (``n_per_draw`` per posterior draw,
    with ``rng_key``) and the HDI is taken over them; for ``kind="mean"`` over the per-draw means.
    """
    _regression_only(pred, "predictive_hdi")
    level = check_level(level, where="predictive_hdi")
    check_choice(kind, name="kind", where="predictive_hdi", allowed=KINDS)
    if kind == "mean":
        values = pred.mean
    else:
        key = jax.random.key(0) if rng_key is None else rng_key
        eps = jax.random.normal(key, (n_per_draw, *pred.mean.shape), dtype=pred.mean.dtype)
        values = (pred.mean + pred.scale * eps).reshape(-1, pred.num_inputs)
    bounds = az.hdi(np.asarray(values)[None], hdi_prob=level)  # (N, 2)
    bounds = np.asarray(bounds)
    return jnp.asarray(bounds[:, 0]), jnp.asarray(bounds[:, 1])


def skew_flag(
    pred: PredictiveSamples, threshold: float = 0.1, kind: str = "predictive"
) -> jax.Array:
    """``True`` where ``|mean - median| > threshold * std``: mean ± k·std would mislead there.

    For a symmetric predictive the gap is 0 up to Monte Carlo error (about ``1.25 / sqrt(S)`` sd
    for Gaussian draws), so the default 0.1 flags real skew once ``S`` is in the hundreds.
    """
    mean = predictive_mean(pred) if kind == "predictive" else jnp.mean(pred.mean, axis=0)
    median = predictive_median(pred, kind=kind)
    std = predictive_std(pred, kind=kind)
    return jnp.abs(mean - median) > threshold * std


def summarize(pred: PredictiveSamples, level: float = 0.95, kind: str = "predictive") -> dict:
    """All summaries at once as a dict of ``(N,)`` arrays."""
    lower, upper = predictive_interval(pred, level, kind)
    return {
        "mean": predictive_mean(pred),
        "median": predictive_median(pred, kind),
        "std": predictive_std(pred, kind),
        "lower": lower,
        "upper": upper,
        "skewed": skew_flag(pred, kind=kind),
    }


__all__ = [
    "predictive_hdi",
    "predictive_interval",
    "predictive_mean",
    "predictive_median",
    "predictive_quantiles",
    "predictive_std",
    "skew_flag",
    "summarize",
]
