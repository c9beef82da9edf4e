"""Binned calibration errors of classifiers: ECE, MCE, classwise ECE and adaptive (ACE).

Top-label metrics bin the confidence ``c_n = max_k p_nk`` and compare, per bin, the accuracy of the
argmax with the mean confidence (Guo et al., 2017). Bins are either equal-width on [0, 1]
(``strategy="uniform"``; bin ``b`` holds ``b/B <= c < (b+1)/B``, the last one closed) or equal-mass
(``strategy="quantile"``; points ranked by confidence and cut into ``B`` groups of ``N/B``, ties
broken by position). Empty bins contribute nothing.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from posterax.predictive.inputs import (
    as_labels,
    check_choice,
    check_positive_int,
    check_same_length,
    class_probs,
)

_STRATEGIES = ("uniform", "quantile")


class ReliabilityBins(NamedTuple):
    """Per-bin statistics of a reliability diagram (``B`` bins; empty bins hold NaN).

    Attributes
    ----------
    confidence : jax.Array, shape (B,)
        Mean confidence in the bin.
    accuracy : jax.Array, shape (B,)
        Accuracy of the top-label prediction in the bin.
    count : jax.Array, shape (B,)
        Number of points in the bin.
    lower, upper : jax.Array, shape (B,)
        Bin range: the edges for ``"uniform"``; the smallest and largest confidence in the bin
        for ``"quantile"``.
    """

    confidence: jax.Array
    accuracy: jax.Array
    count: jax.Array
    lower: jax.Array
    upper: jax.Array


def _bin_index(values: jax.Array, n_bins: int, strategy: str) -> jax.Array:
    """Bin of each value along axis 0 (works column-wise for 2-D ``values``)."""
    if strategy == "uniform":
        return jnp.clip(jnp.floor(values * n_bins), 0, n_bins - 1).astype(jnp.int32)
    n = values.shape[0]
    ranks = jnp.argsort(jnp.argsort(values, axis=0, stable=True), axis=0, stable=True)
    return ((ranks * n_bins) // n).astype(jnp.int32)


def _top_label(y_true: Any, y_prob: Any, where: str) -> tuple[jax.Array, jax.Array]:
    p = class_probs(y_prob, "y_prob", where)
    y = as_labels(y_true, "y_true", where, p.shape[1])
    check_same_length(where, y_true=y, y_prob=p)
    return _conf_correct(y, p)


@jax.jit
def _conf_correct(y: jax.Array, p: jax.Array) -> tuple[jax.Array, jax.Array]:
    return jnp.max(p, axis=1), (jnp.argmax(p, axis=1) == y).astype(p.dtype)


def _check(n_bins: int, strategy: str, where: str) -> int:
    check_choice(strategy, "strategy", where, _STRATEGIES)
    return check_positive_int(n_bins, "n_bins", where)


def _sums(idx: jax.Array, conf: jax.Array, hit: jax.Array, n_bins: int):
    seg = jax.ops.segment_sum
    count = seg(jnp.ones_like(conf), idx, num_segments=n_bins)
    return count, seg(conf, idx, num_segments=n_bins), seg(hit, idx, num_segments=n_bins)


def reliability_bins(
    y_true: Any, y_prob: Any, *, n_bins: int = 15, strategy: str = "uniform"
) -> ReliabilityBins:
    """Per-bin confidence, accuracy and counts of top-label predictions (a reliability diagram).

    Parameters
    ----------
    y_true : array of int, shape (N,)
    y_prob : array, shape (N, K) or (N,), or PredictiveSamples
    n_bins : int, default 15
    strategy : {"uniform", "quantile"}, default "uniform"
        Equal-width or equal-mass bins.

    Returns
    -------
    ReliabilityBins

    Examples
    --------
    >>> bins = reliability_bins([0, 1], [[0.9, 0.1], [0.7, 0.3]], n_bins=2)
    >>> [float(c) for c in bins.count]
    [0.0, 2.0]
    """
    where = "reliability_bins"
    n_bins = _check(n_bins, strategy, where)
    conf, correct = _top_label(y_true, y_prob, where)
    return _reliability(conf, correct, n_bins, strategy)


@partial(jax.jit, static_argnums=(2, 3))
def _reliability(
    conf: jax.Array, correct: jax.Array, n_bins: int, strategy: str
) -> ReliabilityBins:
    idx = _bin_index(conf, n_bins, strategy)
    count, s_conf, s_acc = _sums(idx, conf, correct, n_bins)
    safe = jnp.where(count > 0, count, 1.0)
    nan = jnp.asarray(jnp.nan, conf.dtype)
    if strategy == "uniform":
        edges = jnp.linspace(0.0, 1.0, n_bins + 1, dtype=conf.dtype)
        lower, upper = edges[:-1], edges[1:]
    else:
        lower = jax.ops.segment_min(conf, idx, num_segments=n_bins)
        upper = jax.ops.segment_max(conf, idx, num_segments=n_bins)
        lower = jnp.where(count > 0, lower, nan)
        upper = jnp.where(count > 0, upper, nan)
    return ReliabilityBins(
        confidence=jnp.where(count > 0, s_conf / safe, nan),
        accuracy=jnp.where(count > 0, s_acc / safe, nan),
        count=count,
        lower=lower,
        upper=upper,
    )


def expected_calibration_error(
    y_true: Any, y_prob: Any, *, n_bins: int = 15, strategy: str = "uniform"
) -> jax.Array:
    """Top-label expected calibration error ``sum_b (|B_b| / N) |acc(B_b) - conf(B_b)|``.

    Parameters
    ----------
    y_true : array of int, shape (N,)
    y_prob : array, shape (N, K) or (N,), or PredictiveSamples
    n_bins : int, default 15
    strategy : {"uniform", "quantile"}, default "uniform"
        Equal-width (Guo et al., 2017) or equal-mass bins.

    Returns
    -------
    jax.Array, shape ()

    Examples
    --------
    >>> # one bin: mean confidence 0.8, accuracy 0.5
    >>> round(float(expected_calibration_error([0, 1], [[0.9, 0.1], [0.7, 0.3]], n_bins=1)), 6)
    0.3
    """
    where = "expected_calibration_error"
    n_bins = _check(n_bins, strategy, where)
    conf, correct = _top_label(y_true, y_prob, where)
    return _ece(conf, correct, n_bins, strategy)


@partial(jax.jit, static_argnums=(2, 3))
def _ece(conf: jax.Array, correct: jax.Array, n_bins: int, strategy: str) -> jax.Array:
    _, s_conf, s_acc = _sums(_bin_index(conf, n_bins, strategy), conf, correct, n_bins)
    return jnp.sum(jnp.abs(s_acc - s_conf)) / conf.shape[0]


def maximum_calibration_error(
    y_true: Any, y_prob: Any, *, n_bins: int = 15, strategy: str = "uniform"
) -> jax.Array:
    """Top-label maximum calibration error ``max_b |acc(B_b) - conf(B_b)|`` over non-empty bins.

    Parameters
    ----------
    y_true : array of int, shape (N,)
    y_prob : array, shape (N, K) or (N,), or PredictiveSamples
    n_bins : int, default 15
    strategy : {"uniform", "quantile"}, default "uniform"

    Returns
    -------
    jax.Array, shape ()

    Examples
    --------
    >>> y, p = [0, 0, 1], [[0.9, 0.1], [0.9, 0.1], [0.6, 0.4]]
    >>> round(float(maximum_calibration_error(y, p, n_bins=10)), 6)  # gaps |1-.9|, |0-.6|
    0.6
    """
    where = "maximum_calibration_error"
    n_bins = _check(n_bins, strategy, where)
    conf, correct = _top_label(y_true, y_prob, where)
    return _mce(conf, correct, n_bins, strategy)


@partial(jax.jit, static_argnums=(2, 3))
def _mce(conf: jax.Array, correct: jax.Array, n_bins: int, strategy: str) -> jax.Array:
    count, s_conf, s_acc = _sums(_bin_index(conf, n_bins, strategy), conf, correct, n_bins)
    gap = jnp.abs(s_acc - s_conf) / jnp.where(count > 0, count, 1.0)
    return jnp.max(jnp.where(count > 0, gap, 0.0))


def _per_class(y_true: Any, y_prob: Any, where: str) -> tuple[jax.Array, jax.Array]:
    p = class_probs(y_prob, "y_prob", where)
    y = as_labels(y_true, "y_true", where, p.shape[1])
    check_same_length(where, y_true=y, y_prob=p)
    return p, jax.nn.one_hot(y, p.shape[1], dtype=p.dtype)


def _classwise_sums(p: jax.Array, onehot: jax.Array, idx: jax.Array, n_bins: int):
    """Counts, confidence sums and hit sums per (class, bin): shapes (K, B)."""
    k = p.shape[1]
    flat = (idx + n_bins * jnp.arange(k, dtype=idx.dtype)[None, :]).ravel()
    count, s_conf, s_hit = _sums(flat, p.ravel(), onehot.ravel(), n_bins * k)
    shape = (k, n_bins)
    return count.reshape(shape), s_conf.reshape(shape), s_hit.reshape(shape)


def classwise_calibration_error(y_true: Any, y_prob: Any, *, n_bins: int = 15) -> jax.Array:
    """Classwise ECE (Kull et al., 2019): the ECE of every class's probability, averaged.

    ``(1/K) sum_k sum_b (|B_kb| / N) |freq_k(B_kb) - mean p_k(B_kb)|`` with equal-width bins on
    each ``p_k``.

    Parameters
    ----------
    y_true : array of int, shape (N,)
    y_prob : array, shape (N, K) or (N,), or PredictiveSamples
    n_bins : int, default 15

    Returns
    -------
    jax.Array, shape ()

    Examples
    --------
    >>> round(float(classwise_calibration_error([0, 1], [[0.9, 0.1], [0.7, 0.3]], n_bins=1)), 6)
    0.3
    """
    where = "classwise_calibration_error"
    n_bins = check_positive_int(n_bins, "n_bins", where)
    p, onehot = _per_class(y_true, y_prob, where)
    return _classwise(p, onehot, n_bins)


@partial(jax.jit, static_argnums=2)
def _classwise(p: jax.Array, onehot: jax.Array, n_bins: int) -> jax.Array:
    _, s_conf, s_hit = _classwise_sums(p, onehot, _bin_index(p, n_bins, "uniform"), n_bins)
    return jnp.sum(jnp.abs(s_hit - s_conf)) / (p.shape[0] * p.shape[1])


def adaptive_calibration_error(y_true: Any, y_prob: Any, *, n_bins: int = 15) -> jax.Array:
    """Adaptive calibration error, ACE (Nixon et al., 2019).

    Classwise and equal-mass: for every class ``k`` the ``N`` values ``p_nk`` are ranked and cut
    into ``B`` ranges of equal count; ACE is the unweighted mean over classes and non-empty
    ranges of ``|freq_k - mean p_k|``. (The top-label ECE with equal-mass bins is
    ``expected_calibration_error(..., strategy="quantile")``.)

    Parameters
    ----------
    y_true : array of int, shape (N,)
    y_prob : array, shape (N, K) or (N,), or PredictiveSamples
    n_bins : int, default 15
        Ranges per class.

    Returns
    -------
    jax.Array, shape ()

    Examples
    --------
    >>> round(float(adaptive_calibration_error([0, 1], [[0.9, 0.1], [0.7, 0.3]], n_bins=1)), 6)
    0.3
    """
    where = "adaptive_calibration_error"
    n_bins = check_positive_int(n_bins, "n_bins", where)
    p, onehot = _per_class(y_true, y_prob, where)
    return _ace(p, onehot, n_bins)


@partial(jax.jit, static_argnums=2)
def _ace(p: jax.Array, onehot: jax.Array, n_bins: int) -> jax.Array:
    count, s_conf, s_hit = _classwise_sums(p, onehot, _bin_index(p, n_bins, "quantile"), n_bins)
    gap = jnp.abs(s_hit - s_conf) / jnp.where(count > 0, count, 1.0)
    filled = count > 0
    return jnp.sum(jnp.where(filled, gap, 0.0)) / jnp.sum(filled)


__all__ = [
    "ReliabilityBins",
    "adaptive_calibration_error",
    "classwise_calibration_error",
    "expected_calibration_error",
    "maximum_calibration_error",
    "reliability_bins",
]
