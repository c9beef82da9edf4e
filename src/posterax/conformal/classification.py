"""Conformal prediction sets on precomputed class probabilities: LAC, APS and RAPS."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from posterax.conformal._numpy import (
    CHUNK,
    all_numpy,
    float_dtype,
    kth_smallest,
    raps_scores,
    raps_sets,
)
from posterax.conformal.quantile import conformal_quantile, conformal_rank
from posterax.conformal.scores import lac_score, lac_set, raps_score, raps_set
from posterax.predictive.inputs import (
    as_labels,
    check_choice,
    check_ndim,
    check_positive_int,
    check_probability,
    check_same_length,
    class_probs,
)

SCORES = ("lac", "aps", "raps")


def check_set_options(
    score: str, randomized: bool, k_reg: int, lambda_reg: float, where: str
) -> tuple[int, float]:
    """Validate set options; return the RAPS ``(k_reg, lambda_reg)`` in effect (0, 0 for APS)."""
    check_choice(score, "conformity_score" if "." in where else "score", where, SCORES)
    if not isinstance(randomized, bool):
        raise TypeError(
            f"The 'randomized' parameter of {where} must be a bool. Got {randomized!r}."
        )
    if score == "lac":
        if randomized:
            raise ValueError(
                f"{where}: 'randomized' applies to 'aps' and 'raps' only; LAC sets are "
                "deterministic. Drop randomized=True or use score='aps'."
            )
        return 0, 0.0
    if score == "aps":
        return 0, 0.0
    k_reg = check_positive_int(k_reg, "k_reg", where, minimum=0)
    if not float(lambda_reg) >= 0.0:
        raise ValueError(
            f"The 'lambda_reg' parameter of {where} must be >= 0. Got {lambda_reg}. "
            "Typical values are 0.001 to 0.1."
        )
    return k_reg, float(lambda_reg)


def calibration_scores(
    probs: jax.Array, y: jax.Array, score: str, k_reg: int, lambda_reg: float, u: Any
) -> jax.Array:
    """Scores ``(n,)`` of the calibration labels."""
    if score == "lac":
        return lac_score(probs, y)
    return raps_score(probs, y, k_reg=k_reg, lambda_reg=lambda_reg, u=u)


def sets_from_threshold(
    probs: jax.Array, q: jax.Array, score: str, k_reg: int, lambda_reg: float, u: Any
) -> jax.Array:
    """Boolean sets ``(m, K)`` of test points for threshold ``q``."""
    if score == "lac":
        return lac_set(probs, q)
    return raps_set(probs, q, k_reg=k_reg, lambda_reg=lambda_reg, u=u)


def conformal_prediction_sets(
    y_cal: Any,
    y_prob_cal: Any,
    y_prob_test: Any,
    *,
    alpha: float = 0.1,
    score: str = "lac",
    randomized: bool = False,
    k_reg: int = 1,
    lambda_reg: float = 0.01,
    rng_key: jax.Array | None = None,
) -> jax.Array:
    """Split conformal prediction sets from precomputed probabilities.

    Parameters
    ----------
    y_cal : array of int, shape (n,)
        Calibration labels ``0..K-1``.
    y_prob_cal, y_prob_test : array, shape (n, K) / (m, K), or PredictiveSamples
        Predicted probabilities (mean softmax over draws for PredictiveSamples).
    alpha : float in (0, 1), default 0.1
        Sets contain the label with probability at least ``1 - alpha``.
    score : {"lac", "aps", "raps"}, default "lac"
        LAC (``1 - p_y``): smallest average sets. APS: cumulative mass, adapts set size to the
        difficulty of the point. RAPS: APS plus ``lambda_reg * max(0, rank - k_reg)``, which
        trims long tails of unlikely classes.
    randomized : bool, default False
        APS/RAPS only. True: randomised scores and sets (Romano et al., 2020), coverage close to
        exactly ``1 - alpha`` (sets may be empty); needs ``rng_key``. False: deterministic sets
        that always hold the most probable class; coverage at least ``1 - alpha``, slightly more
        (the score has an atom at 0 where the top class is the label).
    k_reg : int, default 1
        RAPS: ranks up to ``k_reg`` are not penalised.
    lambda_reg : float, default 0.01
        RAPS penalty per rank beyond ``k_reg``.
    rng_key : jax.Array, optional
        Required when ``randomized``.

    Returns
    -------
    jax.Array of bool, shape (m, K)
        ``sets[i, k]``: class ``k`` is in the set of test point ``i``. A NumPy array when every
        input is a NumPy array (then computed with NumPy in row chunks).

    Examples
    --------
    >>> import numpy as np
    >>> probs = np.array([[0.7, 0.2, 0.1]] * 9)
    >>> y_cal = np.array([0, 0, 0, 0, 0, 0, 1, 1, 2])
    >>> sets = conformal_prediction_sets(y_cal, probs, probs[:1], alpha=0.2)
    >>> sets.tolist()  # q = 8th smallest of {0.3 x6, 0.8 x2, 0.9} = 0.8
    [[True, True, False]]
    """
    where = "conformal_prediction_sets"
    alpha = check_probability(alpha, "alpha", where)
    k_reg, lambda_reg = check_set_options(score, randomized, k_reg, lambda_reg, where)
    if randomized and rng_key is None:
        raise ValueError(
            f"{where}(randomized=True) needs 'rng_key' for its uniforms. Pass "
            "rng_key=jax.random.key(0), or randomized=False."
        )
    if all_numpy(y_cal, y_prob_cal, y_prob_test):
        return _sets_numpy(
            y_cal,
            y_prob_cal,
            y_prob_test,
            alpha,
            score,
            randomized,
            k_reg,
            lambda_reg,
            rng_key,
            where,
        )
    p_cal = class_probs(y_prob_cal, "y_prob_cal", where)
    p_test = class_probs(y_prob_test, "y_prob_test", where)
    if p_cal.shape[1] != p_test.shape[1]:
        raise ValueError(
            f"{where}: 'y_prob_cal' has {p_cal.shape[1]} classes and 'y_prob_test' has "
            f"{p_test.shape[1]}. Predict the same classes on both sets."
        )
    y = as_labels(y_cal, "y_cal", where, p_cal.shape[1])
    check_same_length(where, y_cal=y, y_prob_cal=p_cal)
    u_cal = u_test = None
    if randomized:
        k_cal, k_test = jax.random.split(rng_key)
        u_cal = jax.random.uniform(k_cal, (p_cal.shape[0],), p_cal.dtype)
        u_test = jax.random.uniform(k_test, (p_test.shape[0],), p_test.dtype)
    scores = calibration_scores(p_cal, y, score, k_reg, lambda_reg, u_cal)
    q = conformal_quantile(scores, alpha)
    return sets_from_threshold(p_test, q, score, k_reg, lambda_reg, u_test)


def _sets_numpy(y, p_cal, p_test, alpha, score, randomized, k_reg, lambda_reg, rng_key, where):
    """NumPy path of :func:`conformal_prediction_sets` (row chunks, O(n) selection)."""
    for name, p in (("y_prob_cal", p_cal), ("y_prob_test", p_test)):
        check_ndim(p, name, where, 2)
        if p.size and (p.min() < 0 or p.max() > 1):
            raise ValueError(
                f"The '{name}' parameter of {where} must hold probabilities in [0, 1]. Got "
                f"values in [{p.min():g}, {p.max():g}]. If these are logits, apply a softmax."
            )
    if p_cal.shape[1] != p_test.shape[1]:
        raise ValueError(
            f"{where}: 'y_prob_cal' has {p_cal.shape[1]} classes and 'y_prob_test' has "
            f"{p_test.shape[1]}. Predict the same classes on both sets."
        )
    check_ndim(y, "y_cal", where, 1)
    check_same_length(where, y_cal=y, y_prob_cal=p_cal)
    if y.dtype.kind == "f" and not np.all(y == np.round(y)):
        raise ValueError(
            f"The 'y_cal' parameter of {where} must hold integer class labels 0..K-1. "
            "Got non-integer floats. Encode labels with sklearn.preprocessing.LabelEncoder."
        )
    y = y.astype(np.intp, copy=False)
    n_classes = p_cal.shape[1]
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(
            f"The 'y_cal' parameter of {where} must hold labels in [0, {n_classes}) to match "
            f"the {n_classes} predicted classes. Got labels in [{y.min()}, {y.max()}]."
        )
    k = conformal_rank(int(y.shape[0]), alpha, where)
    dtype = float_dtype(p_cal, p_test)
    p_cal, p_test = p_cal.astype(dtype, copy=False), p_test.astype(dtype, copy=False)
    if score == "lac":
        scores = 1.0 - np.take_along_axis(p_cal, y[:, None], axis=1)[:, 0]
        q = kth_smallest(scores, k)
        sets = np.empty(p_test.shape, dtype=bool)
        for start in range(0, p_test.shape[0], CHUNK):
            rows = slice(start, start + CHUNK)
            np.less_equal(1.0 - p_test[rows], q, out=sets[rows])
        return sets
    u_cal = u_test = None
    if randomized:
        k_cal, k_test = jax.random.split(rng_key)
        u_cal = np.asarray(jax.random.uniform(k_cal, (p_cal.shape[0],))).astype(dtype)
        u_test = np.asarray(jax.random.uniform(k_test, (p_test.shape[0],))).astype(dtype)
    q = kth_smallest(raps_scores(p_cal, y, k_reg, lambda_reg, u_cal), k)
    return raps_sets(p_test, q, k_reg, lambda_reg, u_test)


def set_size(sets: Any) -> jax.Array:
    """Number of classes in each set, ``(m,)``, from boolean sets ``(m, K)``."""
    return jnp.sum(jnp.asarray(sets), axis=-1)


__all__ = ["conformal_prediction_sets", "set_size"]
