"""Out-of-distribution scores from a :class:`PredictiveSamples`, and their evaluation.

Every score is "higher = more likely out of distribution", so it can go straight into
:func:`ood_report` (AUROC, AUPR with OOD as the positive class, FPR at 95% TPR from
:mod:`posterax.metrics`).

========================  ==============  ==========================================================
name                      task            score
========================  ==============  ==========================================================
``"max_probability"``     classification  ``1 - max_k p(k | x)`` (Hendrycks & Gimpel, 2017)
``"entropy"``             both            predictive entropy (regression: of the Gaussian with the
                                          mixture's variance, ``0.5 log(2 pi e var)``)
``"mutual_information"``  both            epistemic part (classification: MI; regression:
                                          ``0.5 log(total var / aleatoric var)``)
``"energy"``              classification  ``-mean_s logsumexp_k logits_s`` (Liu et al., 2020)
``"variance"``            both            classification: ``sum_k var_s p_s(k)``; regression:
                                          the predictive (mixture) variance
========================  ==============  ==========================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from posterax.base import PredictiveSamples
from posterax.data.validation import check_fraction, check_positive_float
from posterax.metrics import ood_detection_metrics
from posterax.uncertainty._checks import check_predictive, check_scores
from posterax.uncertainty.decomposition import decompose


def max_probability_score(pred: PredictiveSamples) -> jax.Array:
    """``1 - max_k p(k | x)`` of the posterior-averaged probabilities, shape ``(N,)``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> pred = PredictiveSamples.classification(jnp.log(jnp.array([[[0.7, 0.3]]])))
    >>> round(float(max_probability_score(pred)[0]), 4)
    0.3
    """
    check_predictive(pred, "max_probability_score", task="classification")
    return 1.0 - jnp.max(jnp.mean(pred.probs(), axis=0), axis=-1)


def entropy_score(pred: PredictiveSamples) -> jax.Array:
    """Predictive entropy, shape ``(N,)`` (regression: of the moment-matched Gaussian)."""
    check_predictive(pred, "entropy_score")
    d = decompose(pred)
    if pred.task == "classification":
        return d.total
    return 0.5 * jnp.log(2 * math.pi * math.e * d.total)


def mutual_information_score(pred: PredictiveSamples) -> jax.Array:
    """Epistemic uncertainty, shape ``(N,)``: the mutual information between ``y`` and the
    weights (regression: ``0.5 log(total / aleatoric variance)``, exact for Gaussians)."""
    check_predictive(pred, "mutual_information_score")
    d = decompose(pred)
    if pred.task == "classification":
        return d.epistemic
    return 0.5 * jnp.log(d.total / d.aleatoric)


def energy_score(pred: PredictiveSamples, temperature: float = 1.0) -> jax.Array:
    """Free energy ``-T logsumexp(logits / T)`` averaged over draws, shape ``(N,)``.

    Low energy (large logits) means familiar inputs; OOD inputs get higher energy.
    """
    check_predictive(pred, "energy_score", task="classification")
    check_positive_float(temperature, name="temperature", where="energy_score")
    logits = pred.logits
    if not isinstance(logits, jax.core.Tracer) and bool(
        jnp.all(jnp.abs(logsumexp(logits, axis=-1)) < 1e-4)
    ):
        # Log-probabilities (e.g. a closed-form GLM predictive) have logsumexp 0 everywhere:
        # the energy would be the same for every input.
        raise ValueError(
            "The 'pred' parameter of energy_score must hold raw logits; these are normalised "
            "log-probabilities (logsumexp 0 for every input), whose energy is constant. Use "
            "the network's logits (estimator.predict_samples), or another score such as "
            "'entropy'."
        )
    t = float(temperature)
    return jnp.mean(-t * logsumexp(logits / t, axis=-1), axis=0)


def variance_score(pred: PredictiveSamples) -> jax.Array:
    """Predictive variance, shape ``(N,)``: ``sum_k var_s p_s(k)`` for classification, the
    mixture variance for regression."""
    check_predictive(pred, "variance_score")
    if pred.task == "classification":
        return jnp.sum(jnp.var(pred.probs(), axis=0), axis=-1)
    return decompose(pred).total


SCORES: dict[str, Callable[[PredictiveSamples], jax.Array]] = {
    "max_probability": max_probability_score,
    "entropy": entropy_score,
    "mutual_information": mutual_information_score,
    "energy": energy_score,
    "variance": variance_score,
}
_CLASSIFICATION_ONLY = ("max_probability", "energy")


def ood_scores(
    pred: PredictiveSamples, scores: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Several OOD scores of the same predictions, ``{name: (N,) array}``.

    Parameters
    ----------
    pred : PredictiveSamples
    scores : sequence of str, optional
        Names from :data:`SCORES`; default every score defined for ``pred``'s task.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> pred = PredictiveSamples.regression(jnp.zeros((3, 2)), 1.0)
    >>> sorted(ood_scores(pred))
    ['entropy', 'mutual_information', 'variance']
    """
    check_predictive(pred, "ood_scores")
    if scores is None:
        scores = [
            s for s in SCORES if pred.task == "classification" or s not in _CLASSIFICATION_ONLY
        ]
    elif isinstance(scores, str):
        scores = [scores]
    out = {}
    for name in scores:
        if name not in SCORES:
            raise ValueError(
                f"The 'scores' parameter of ood_scores must name scores from "
                f"{', '.join(map(repr, SCORES))}. Got {name!r}."
            )
        if pred.task == "regression" and name in _CLASSIFICATION_ONLY:
            raise ValueError(
                f"The 'scores' parameter of ood_scores asks for {name!r}, which needs "
                "classification logits; 'pred' holds regression predictions. Use 'entropy', "
                "'mutual_information' or 'variance'."
            )
        out[name] = np.asarray(SCORES[name](pred), dtype=np.float64)
    return out


def _one_report(s_in: Any, s_out: Any, tpr: float, suffix: str = "") -> dict[str, float]:
    where = "ood_report"
    a = check_scores(s_in, "in_scores" + suffix, where)
    b = check_scores(s_out, "out_scores" + suffix, where)
    m = ood_detection_metrics(a, b, tpr=tpr)
    return {
        "auroc": float(m["auroc"]),
        "aupr": float(m["aupr"]),
        "fpr_at_tpr": float(m["fpr_at_tpr"]),
        "tpr": tpr,
        "n_in": int(a.size),
        "n_out": int(b.size),
    }


def ood_report(in_scores: Any, out_scores: Any, *, tpr: float = 0.95) -> dict[str, Any]:
    """How well OOD scores separate out-of-distribution points from in-distribution ones.

    Both sets are required: an OOD evaluation without in-distribution points (or without OOD
    points) has no false-positive rate and is an error, not a number.

    Parameters
    ----------
    in_scores, out_scores : array (N_in,) / (N_out,), or mappings ``{score name: array}``
        Scores (higher = more OOD) of in-distribution and of OOD points, e.g. from
        :func:`ood_scores`. With mappings, both need the same names and one report per name
        is returned.
    tpr : float in (0, 1), default 0.95
        True-positive rate (share of OOD points flagged) at which the FPR is read.

    Returns
    -------
    dict
        ``{"auroc", "aupr", "fpr_at_tpr", "tpr", "n_in", "n_out"}`` (floats; AUPR with OOD as
        the positive class), or ``{name: that dict}`` for mappings.

    Examples
    --------
    >>> r = ood_report([0.1, 0.4], [0.35, 0.8])
    >>> r["auroc"], r["n_in"], r["n_out"]
    (0.75, 2, 2)
    """
    tpr = check_fraction(tpr, name="tpr", where="ood_report", example=0.95)
    in_map, out_map = isinstance(in_scores, Mapping), isinstance(out_scores, Mapping)
    if in_map != out_map:
        raise TypeError(
            "ood_report: 'in_scores' and 'out_scores' must both be arrays or both be mappings "
            f"{{score name: array}}. Got {type(in_scores).__name__} and "
            f"{type(out_scores).__name__}. Pass ood_scores(pred_in) and ood_scores(pred_out)."
        )
    if not in_map:
        return _one_report(in_scores, out_scores, tpr)
    if set(in_scores) != set(out_scores) or not in_scores:
        raise ValueError(
            "ood_report: 'in_scores' and 'out_scores' must hold the same, non-empty set of score "
            f"names. Got {sorted(in_scores)} and {sorted(out_scores)}. Compute both with the "
            "same ood_scores(..., scores=[...])."
        )
    return {
        name: _one_report(in_scores[name], out_scores[name], tpr, f"['{name}']")
        for name in in_scores
    }


__all__ = [
    "SCORES",
    "energy_score",
    "entropy_score",
    "max_probability_score",
    "mutual_information_score",
    "ood_report",
    "ood_scores",
    "variance_score",
]
