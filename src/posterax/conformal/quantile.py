"""The split-conformal quantile of calibration scores, with its finite-sample correction."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from posterax.conformal._numpy import all_numpy, float_dtype, kth_smallest
from posterax.predictive.inputs import as_float, check_ndim, check_probability

_SLACK = 1.0 - 1e-12  # relative: (n + 1) * 0.55 = 55.00000000000001 for n = 99 is rank 55


def absorb_rounding(x: Any) -> Any:
    """``x`` lowered by a relative ``1e-12``, so that a level that is an integer up to rounding
    (``(n + 1)(1 - alpha)``, a share of a total weight) counts as that integer.

    Examples
    --------
    >>> 100 * 0.55 > 55, bool(absorb_rounding(100 * 0.55) <= 55)
    (True, True)
    """
    return x * _SLACK


def ceil_level(x: Any) -> Any:
    """``ceil(x)`` of a level that may carry rounding error: the conformal rank
    ``ceil((n + 1)(1 - alpha))`` and its kin. An ``int`` for a scalar, an int64 array for an
    array.

    Examples
    --------
    >>> 100 * 0.55, ceil_level(100 * 0.55), ceil_level(55.5)
    (55.00000000000001, 55, 56)
    >>> ceil_level(np.array([0.1, 2.0])).tolist()
    [1, 2]
    """
    out = np.ceil(absorb_rounding(np.asarray(x, dtype=np.float64))).astype(np.int64)
    return int(out) if out.ndim == 0 else out


def conformal_rank(n: int, alpha: float, where: str = "conformal_quantile") -> int:
    """``k = ceil((n + 1)(1 - alpha))``: the rank of the calibration score to use.

    Raises a ValueError when ``k > n``, i.e. when ``n < 1/alpha - 1`` calibration points cannot
    certify level ``1 - alpha``.
    """
    alpha = check_probability(alpha, "alpha", where)
    k = ceil_level((n + 1) * (1.0 - alpha))
    if k > n:
        need = ceil_level((1.0 - alpha) / alpha)
        raise ValueError(
            f"{where}: {n} calibration point{'s' if n != 1 else ''} are too few for "
            f"alpha={alpha:g} (confidence level {1 - alpha:g}); split conformal needs "
            f"ceil((n + 1)(1 - alpha)) <= n, i.e. at least {need}. Use more calibration data, "
            f"or a larger alpha (a lower confidence level): alpha >= {1 / (n + 1):.3g} for n={n}."
        )
    return max(k, 1)


def conformal_quantile(scores: Any, alpha: float) -> jax.Array:
    """The ``ceil((n + 1)(1 - alpha))``-th smallest of ``n`` calibration scores.

    With exchangeable data a test score falls at or below it with probability at least
    ``1 - alpha`` (and below ``1 - alpha + 1/(n + 1)`` for continuous scores): the empirical
    quantile at level ``ceil((n + 1)(1 - alpha)) / n`` with the "higher" rule, as in MAPIE.

    Parameters
    ----------
    scores : array, shape (n,)
        Conformity scores of the calibration points (larger = worse fit).
    alpha : float in (0, 1)
        Miscoverage level.

    Returns
    -------
    jax.Array, shape () (a NumPy scalar for a NumPy ``scores``)

    Raises
    ------
    ValueError
        If ``n < 1/alpha - 1`` (the quantile would be infinite).

    Examples
    --------
    >>> import numpy as np
    >>> float(conformal_quantile(np.arange(1.0, 20.0), alpha=0.1))  # k = ceil(20 * 0.9) = 18
    18.0
    """
    if all_numpy(scores):  # O(n) selection on a scratch copy
        check_ndim(scores, "scores", "conformal_quantile", 1)
        k = conformal_rank(int(scores.shape[0]), alpha)
        return kth_smallest(scores.astype(float_dtype(scores), copy=True), k)
    s = as_float(scores, "scores", "conformal_quantile", ndim=1)
    k = conformal_rank(int(s.shape[0]), alpha)
    return jnp.sort(s)[k - 1]


__all__ = ["absorb_rounding", "ceil_level", "conformal_quantile", "conformal_rank"]
