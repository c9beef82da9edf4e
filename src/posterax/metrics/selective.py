"""Selective prediction: the risk–coverage curve and the area under it (AURC).

A classifier that may abstain answers only its most confident points. Sorting points by
confidence, answering the top fraction ``c`` gives a selective risk (error rate among the answered);
the risk–coverage curve traces it over ``c`` and AURC (Geifman et al., 2018) averages it over all
``N`` coverages ``1/N, ..., 1``. Points with tied confidence are answered together: every point of a
tie group gets the risk at the end of its group, so the result does not depend on the order of ties.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from posterax.predictive.inputs import as_float, as_labels, check_same_length, class_probs


def _risk_by_position(
    y_true: Any, y_prob: Any, confidence: Any, where: str
) -> tuple[jax.Array, jax.Array]:
    p = class_probs(y_prob, "y_prob", where)
    y = as_labels(y_true, "y_true", where, p.shape[1])
    check_same_length(where, y_true=y, y_prob=p)
    if confidence is None:
        conf = jnp.max(p, axis=1)
    else:
        conf = as_float(confidence, "confidence", where, ndim=1)
        check_same_length(where, y_true=y, confidence=conf)
    return _curve(y, p, conf)


@jax.jit
def _curve(y: jax.Array, p: jax.Array, conf: jax.Array) -> tuple[jax.Array, jax.Array]:
    errors = (jnp.argmax(p, axis=1) != y).astype(p.dtype)
    order = jnp.argsort(-conf, stable=True)
    neg_sorted = -conf[order]
    group_end = jnp.searchsorted(neg_sorted, neg_sorted, side="right")  # answered count, >= 1
    cum_errors = jnp.cumsum(errors[order])
    answered = group_end.astype(p.dtype)
    risk = cum_errors[group_end - 1] / answered
    return answered / conf.shape[0], risk


def risk_coverage_curve(
    y_true: Any, y_prob: Any, *, confidence: Any = None
) -> tuple[jax.Array, jax.Array]:
    """Selective risk (error rate of answered points) against coverage.

    Parameters
    ----------
    y_true : array of int, shape (N,)
    y_prob : array, shape (N, K) or (N,), or PredictiveSamples
        Predictions; the answer is the argmax.
    confidence : array, shape (N,), optional
        Score used to decide what to answer (higher answers first). Default: the top-label
        probability ``max_k p_nk``; pass e.g. ``-entropy`` to use another.

    Returns
    -------
    coverage : jax.Array, shape (N,)
        Non-decreasing; tied confidences share a point.
    risk : jax.Array, shape (N,)

    Examples
    --------
    >>> cov, risk = risk_coverage_curve([0, 1], [[0.9, 0.1], [0.6, 0.4]])
    >>> [float(c) for c in cov], [float(r) for r in risk]
    ([0.5, 1.0], [0.0, 0.5])
    """
    return _risk_by_position(y_true, y_prob, confidence, "risk_coverage_curve")


def aurc(y_true: Any, y_prob: Any, *, confidence: Any = None) -> jax.Array:
    """Area under the risk–coverage curve: the selective risk averaged over coverages ``k/N``.

    Lower is better; a confidence that ranks every error last reaches the minimum for the
    model's error rate.

    Parameters
    ----------
    y_true : array of int, shape (N,)
    y_prob : array, shape (N, K) or (N,), or PredictiveSamples
    confidence : array, shape (N,), optional
        Default: the top-label probability.

    Returns
    -------
    jax.Array, shape ()

    Examples
    --------
    >>> float(aurc([0, 1], [[0.9, 0.1], [0.6, 0.4]]))  # (0 + 1/2) / 2
    0.25
    """
    _, risk = _risk_by_position(y_true, y_prob, confidence, "aurc")
    return jnp.mean(risk)


__all__ = ["aurc", "risk_coverage_curve"]
