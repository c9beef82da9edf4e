"""Classification metrics: accuracy, negative log-likelihood (log loss) and the Brier score.

``y_true`` holds integer labels ``0..K-1`` ``(N,)``. Predictions are probabilities ``(N, K)`` (or
``(N,)``, the positive-class probability of a binary problem) or a classification
:class:`~posterax.base.PredictiveSamples`, whose predictive is the mean of the per-draw softmaxes
(its log is computed with log-sum-exp from the logits, so the NLL never takes ``log(0)``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from posterax.predictive.inputs import (
    as_labels,
    check_same_length,
    class_log_probs,
    class_probs,
)


def accuracy(y_true: Any, y_prob: Any) -> jax.Array:
    """Fraction of points whose most probable class is the label.

    Parameters
    ----------
    y_true : array of int, shape (N,)
    y_prob : array, shape (N, K) or (N,), or PredictiveSamples

    Returns
    -------
    jax.Array, shape ()

    Examples
    --------
    >>> float(accuracy([0, 1], [[0.9, 0.1], [0.8, 0.2]]))
    0.5
    """
    p = class_probs(y_prob, "y_prob", "accuracy")
    y = as_labels(y_true, "y_true", "accuracy", p.shape[1])
    check_same_length("accuracy", y_true=y, y_prob=p)
    return _accuracy(y, p)


def log_loss(y_true: Any, y_prob: Any) -> jax.Array:
    """Mean negative log predictive probability of the label (NLL, cross-entropy).

    Probabilities given as arrays are clipped at the dtype's smallest normal number before the
    log (so a zero on the label gives a large finite loss, not ``inf``).

    Parameters
    ----------
    y_true : array of int, shape (N,)
    y_prob : array, shape (N, K) or (N,), or PredictiveSamples

    Returns
    -------
    jax.Array, shape ()

    Examples
    --------
    >>> round(float(log_loss([0, 1], [[0.5, 0.5], [0.5, 0.5]])), 6)  # log 2
    0.693147
    """
    logp = class_log_probs(y_prob, "y_prob", "log_loss")
    y = as_labels(y_true, "y_true", "log_loss", logp.shape[1])
    check_same_length("log_loss", y_true=y, y_prob=logp)
    return _log_loss(y, logp)


def brier_score(y_true: Any, y_prob: Any) -> jax.Array:
    """Multiclass Brier score ``mean_n sum_k (p_nk - 1[y_n = k])^2`` (in [0, 2]).

    For a binary problem this is twice sklearn's ``brier_score_loss`` with its default
    ``scale_by_half``; it equals ``brier_score_loss(..., scale_by_half=False)``.

    Parameters
    ----------
    y_true : array of int, shape (N,)
    y_prob : array, shape (N, K) or (N,), or PredictiveSamples

    Returns
    -------
    jax.Array, shape ()

    Examples
    --------
    >>> round(float(brier_score([0], [[0.75, 0.25]])), 6)
    0.125
    """
    p = class_probs(y_prob, "y_prob", "brier_score")
    y = as_labels(y_true, "y_true", "brier_score", p.shape[1])
    check_same_length("brier_score", y_true=y, y_prob=p)
    return _brier(y, p)


@jax.jit
def _accuracy(y: jax.Array, p: jax.Array) -> jax.Array:
    return jnp.mean((jnp.argmax(p, axis=1) == y).astype(p.dtype))


@jax.jit
def _log_loss(y: jax.Array, logp: jax.Array) -> jax.Array:
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


@jax.jit
def _brier(y: jax.Array, p: jax.Array) -> jax.Array:
    onehot = jax.nn.one_hot(y, p.shape[1], dtype=p.dtype)
    return jnp.mean(jnp.sum(jnp.square(p - onehot), axis=1))


__all__ = ["accuracy", "brier_score", "log_loss"]
