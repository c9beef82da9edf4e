"""NumPy implementations of split conformal for NumPy inputs (private).

When every array argument is a NumPy array, the public functions compute here, in the inputs'
dtype, with ``O(n)`` selection (``numpy.partition``) instead of a sort, in-place arithmetic, and
row chunks for ``(n, K)`` work, so the working memory stays a small multiple of the output. JAX
inputs (and tracers) take the ``jax.numpy`` path, which composes with ``jit``/``vmap``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

CHUNK = 1 << 16  # rows per block for (n, K) work


def all_numpy(*arrays: Any) -> bool:
    """Whether every non-None argument is a NumPy array of floats or ints."""
    present = [a for a in arrays if a is not None]
    return bool(present) and all(
        isinstance(a, np.ndarray) and (a.dtype.kind in "fiu") for a in present
    )


def float_dtype(*arrays: np.ndarray) -> np.dtype:
    dtype = np.result_type(*arrays)
    return dtype if dtype.kind == "f" else np.dtype(np.float64)


def kth_smallest(scores: np.ndarray, k: int) -> Any:
    """The k-th smallest (1-based) value; partitions ``scores`` in place (pass a scratch array)."""
    scores.partition(k - 1)
    return scores[k - 1]


def interval(center: np.ndarray, half: Any) -> tuple[np.ndarray, np.ndarray]:
    lower = np.subtract(center, half)
    upper = np.add(center, half)
    return lower, upper


def _rank_order(p: np.ndarray) -> np.ndarray:
    """Classes in decreasing probability (stable: ties by class index), shape (c, K)."""
    return np.argsort(-p, axis=1, kind="stable")


def raps_scores(
    p: np.ndarray, y: np.ndarray, k_reg: int, lambda_reg: float, u: np.ndarray | None
) -> np.ndarray:
    """(R)APS scores of the labels, as in ``posterax.conformal.scores.raps_score``."""
    n, k = p.shape
    out = np.empty(n, dtype=p.dtype)
    classes = np.arange(k)
    for start in range(0, n, CHUNK):
        rows = slice(start, min(start + CHUNK, n))
        pc, yc = p[rows], y[rows]
        py = np.take_along_axis(pc, yc[:, None], axis=1)
        above = (pc > py) | ((pc == py) & (classes < yc[:, None]))
        score = np.einsum("ij,ij->i", pc, above)
        if u is not None:
            score += u[rows] * py[:, 0]
        if lambda_reg:
            rank = above.sum(axis=1) + 1
            score += lambda_reg * np.maximum(rank - k_reg, 0)
        out[rows] = score
    return out


def raps_sets(
    p: np.ndarray, q: Any, k_reg: int, lambda_reg: float, u: np.ndarray | None
) -> np.ndarray:
    """(R)APS sets, as in ``posterax.conformal.scores.raps_set``: boolean (n, K)."""
    n, k = p.shape
    sets = np.empty((n, k), dtype=bool)
    penalty = lambda_reg * np.maximum(np.arange(1, k + 1) - k_reg, 0).astype(p.dtype)
    for start in range(0, n, CHUNK):
        rows = slice(start, min(start + CHUNK, n))
        pc = p[rows]
        order = _rank_order(pc)
        ps = np.take_along_axis(pc, order, axis=1)
        score = np.cumsum(ps, axis=1)
        score -= ps if u is None else ps * (1.0 - u[rows, None])
        if lambda_reg:
            score += penalty
        np.put_along_axis(sets[rows], order, score <= q, axis=1)
    return sets


def label_scores(p: np.ndarray, score: str, k_reg: int, lambda_reg: float) -> np.ndarray:
    """Every label's deterministic score, float64 (n, K): ``1 - p_k`` for LAC, the (R)APS score
    with ``u = 0`` otherwise; a label is in the set at threshold ``q`` when its score is ``<= q``
    (the same sets as :func:`raps_sets`)."""
    p = np.asarray(p, dtype=np.float64)
    if score == "lac":
        return 1.0 - p
    k = p.shape[1]
    penalty = lambda_reg * np.maximum(np.arange(1, k + 1) - k_reg, 0)
    order = _rank_order(p)
    ps = np.take_along_axis(p, order, axis=1)
    ranked = np.cumsum(ps, axis=1) - ps + penalty
    out = np.empty_like(p)
    np.put_along_axis(out, order, ranked, axis=1)
    return out
