"""Detection metrics from scores: AUROC, AUPR (average precision) and FPR at a TPR.

Binary labels ``y_true`` (1 = positive) and real-valued ``y_score`` (higher = more positive). For
out-of-distribution detection the positive class is "out of distribution" and the score is an OOD
score (predictive entropy, mutual information, ``-max p``, ...); :func:`ood_detection_metrics` takes
the in- and out-of-distribution scores directly. Ties are handled exactly (AUROC by mid-ranks,
AUPR and FPR by evaluating only at distinct thresholds), matching scikit-learn.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from posterax.predictive.inputs import (
    as_float,
    check_probability,
    check_same_length,
    is_concrete,
)


def _binary(y_true: Any, y_score: Any, where: str) -> tuple[jax.Array, jax.Array]:
    score = as_float(y_score, "y_score", where, ndim=1)
    y = jnp.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(
            f"The 'y_true' parameter of {where} must be 1-D binary labels. Got shape {y.shape}."
        )
    check_same_length(where, y_true=y, y_score=score)
    if is_concrete(y) and y.size:
        values = set(np.unique(np.asarray(y)).tolist())
        if not values <= {0, 1} or len(values) < 2:
            raise ValueError(
                f"The 'y_true' parameter of {where} must hold both classes 0 (negative) and "
                f"1 (positive). Got values {sorted(values)}. Encode positives as 1, e.g. "
                "(labels == positive_label).astype(int)."
            )
    return y.astype(score.dtype), score


def _sorted_counts(y: jax.Array, score: jax.Array):
    """True/false positives when thresholding at each point's score (descending, tie-aware)."""
    order = jnp.argsort(-score, stable=True)
    neg_sorted = -score[order]
    y_sorted = y[order]
    group_end = jnp.searchsorted(neg_sorted, neg_sorted, side="right") - 1
    tps = jnp.cumsum(y_sorted)[group_end]
    fps = (group_end + 1).astype(y.dtype) - tps
    return y_sorted, tps, fps


def auroc(y_true: Any, y_score: Any) -> jax.Array:
    """Area under the ROC curve (probability a random positive outscores a random negative).

    Parameters
    ----------
    y_true : array of {0, 1}, shape (N,)
    y_score : array, shape (N,)

    Returns
    -------
    jax.Array, shape ()

    Examples
    --------
    >>> float(auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]))
    0.75
    """
    y, score = _binary(y_true, y_score, "auroc")
    return _auroc(y, score)


@jax.jit
def _auroc(y: jax.Array, score: jax.Array) -> jax.Array:
    srt = jnp.sort(score)
    left = jnp.searchsorted(srt, score, side="left")
    right = jnp.searchsorted(srt, score, side="right")
    ranks = 0.5 * (left + right + 1).astype(score.dtype)  # 1-based mid-ranks
    n_pos = jnp.sum(y)
    n_neg = y.shape[0] - n_pos
    return (jnp.sum(ranks * y) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def aupr(y_true: Any, y_score: Any) -> jax.Array:
    """Area under the precision–recall curve as average precision ``sum_t (R_t - R_{t-1}) P_t``.

    The step-wise sum over distinct thresholds of scikit-learn's ``average_precision_score``
    (no interpolation).

    Parameters
    ----------
    y_true : array of {0, 1}, shape (N,)
    y_score : array, shape (N,)

    Returns
    -------
    jax.Array, shape ()

    Examples
    --------
    >>> round(float(aupr([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])), 6)  # (1 + 2/3) / 2
    0.833333
    """
    y, score = _binary(y_true, y_score, "aupr")
    return _aupr(y, score)


@jax.jit
def _aupr(y: jax.Array, score: jax.Array) -> jax.Array:
    y_sorted, tps, fps = _sorted_counts(y, score)
    precision = tps / (tps + fps)
    return jnp.sum(y_sorted * precision) / jnp.sum(y)


def fpr_at_tpr(y_true: Any, y_score: Any, *, tpr: float = 0.95) -> jax.Array:
    """False-positive rate at the first threshold whose true-positive rate reaches ``tpr``.

    Parameters
    ----------
    y_true : array of {0, 1}, shape (N,)
    y_score : array, shape (N,)
    tpr : float in (0, 1), default 0.95

    Returns
    -------
    jax.Array, shape ()

    Examples
    --------
    >>> float(fpr_at_tpr([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], tpr=0.95))
    0.5
    """
    target = check_probability(tpr, "tpr", "fpr_at_tpr", kind="level")
    y, score = _binary(y_true, y_score, "fpr_at_tpr")
    return _fpr_at_tpr(y, score, target)


@partial(jax.jit, static_argnums=2)
def _fpr_at_tpr(y: jax.Array, score: jax.Array, target: float) -> jax.Array:
    _, tps, fps = _sorted_counts(y, score)
    n_pos = jnp.sum(y)
    n_neg = y.shape[0] - n_pos
    reached = tps / n_pos >= target
    return jnp.min(jnp.where(reached, fps / n_neg, jnp.inf))


def ood_detection_metrics(
    scores_in: Any, scores_out: Any, *, tpr: float = 0.95
) -> dict[str, jax.Array]:
    """AUROC, AUPR and FPR at ``tpr`` for telling out-of-distribution from in-distribution points.

    Parameters
    ----------
    scores_in : array, shape (N_in,)
        OOD scores (higher = more likely out of distribution) of in-distribution points.
    scores_out : array, shape (N_out,)
        OOD scores of out-of-distribution points (the positives).
    tpr : float in (0, 1), default 0.95

    Returns
    -------
    dict
        ``{"auroc", "aupr", "fpr_at_tpr"}``, each a 0-d array.

    Examples
    --------
    >>> m = ood_detection_metrics([0.1, 0.4], [0.35, 0.8])
    >>> float(m["auroc"])
    0.75
    """
    s_in = as_float(scores_in, "scores_in", "ood_detection_metrics", ndim=1)
    s_out = as_float(scores_out, "scores_out", "ood_detection_metrics", ndim=1)
    dtype = jnp.result_type(s_in.dtype, s_out.dtype)
    score = jnp.concatenate([s_in.astype(dtype), s_out.astype(dtype)])
    y = jnp.concatenate([jnp.zeros(s_in.shape[0], dtype), jnp.ones(s_out.shape[0], dtype)])
    return {
        "auroc": auroc(y, score),
        "aupr": aupr(y, score),
        "fpr_at_tpr": fpr_at_tpr(y, score, tpr=tpr),
    }


__all__ = ["aupr", "auroc", "fpr_at_tpr", "ood_detection_metrics"]
