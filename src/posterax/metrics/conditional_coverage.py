"""Coverage conditional on uncertainty: where the Bayesian intervals already cover, and where
a conformal correction had to widen them (coverage and width by bins of epistemic spread)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from posterax.predictive.inputs import check_positive_int


@dataclass(frozen=True)
class CoverageByBins:
    """Coverage and mean width of several intervals in equal-count bins of an uncertainty.

    ``edges`` (B + 1,) of the uncertainty; ``count`` (B,); ``coverage`` and ``width``: name ->
    (B,) arrays, in the order the intervals were given.
    """

    edges: np.ndarray
    count: np.ndarray
    coverage: dict[str, np.ndarray]
    width: dict[str, np.ndarray]


def coverage_by_uncertainty(
    y: Any, intervals: dict[str, tuple[Any, Any]], uncertainty: Any, n_bins: int = 5
) -> CoverageByBins:
    """Coverage of each interval within bins of ``uncertainty`` (equal-count bins).

    Parameters
    ----------
    y : array (N,)
        Held-out outcomes.
    intervals : dict of name -> (lower, upper), arrays (N,)
        E.g. ``{"Bayes": model.predict_interval(X), "conformal": wrapper.predict_interval(X)}``.
    uncertainty : array (N,)
        What to bin by, e.g. the epistemic standard deviation from
        :func:`posterax.uncertainty.decompose`.
    n_bins : int, default 5

    Returns
    -------
    CoverageByBins

    Examples
    --------
    >>> import numpy as np
    >>> y = np.zeros(4); spread = np.array([0.1, 0.2, 1.0, 2.0])
    >>> lower, upper = -np.array([1.0, 1.0, 0.5, 0.5]), np.array([1.0, 1.0, 0.5, 0.5])
    >>> table = coverage_by_uncertainty(y + [0, 0, 0.7, 0], {"Bayes": (lower, upper)}, spread, 2)
    >>> table.coverage["Bayes"].tolist(), table.width["Bayes"].tolist()
    ([1.0, 0.5], [2.0, 1.0])
    """
    where = "coverage_by_uncertainty"
    n_bins = check_positive_int(n_bins, "n_bins", where)
    y = np.asarray(y, dtype=np.float64).ravel()
    spread = np.asarray(uncertainty, dtype=np.float64).ravel()
    if spread.shape != y.shape:
        raise ValueError(
            f"The 'uncertainty' parameter of {where} must give one value per outcome. Got "
            f"{spread.size} values for {y.size} outcomes."
        )
    if y.size < n_bins:
        raise ValueError(
            f"The 'n_bins' parameter of {where} must be at most the number of outcomes "
            f"({y.size}). Got {n_bins}. Pass fewer bins."
        )
    if not intervals:
        raise ValueError(
            f"The 'intervals' parameter of {where} must hold at least one (lower, upper) pair. "
            "Got an empty dict. Pass e.g. {'Bayes': model.predict_interval(X)}."
        )
    # Equal-count bins: rank, then cut the ranks (ties in the uncertainty cannot empty a bin).
    rank = np.empty(y.size, dtype=np.int64)
    rank[np.argsort(spread, kind="stable")] = np.arange(y.size)
    bin_of = rank * n_bins // y.size
    order = np.sort(spread)
    # Bin b holds ranks ceil(b N / B) .. ceil((b + 1) N / B) - 1: its edges are those values.
    cuts = [order[-(-b * y.size // n_bins)] for b in range(n_bins)] + [order[-1]]
    count = np.bincount(bin_of, minlength=n_bins)
    coverage, width = {}, {}
    for name, (lower, upper) in intervals.items():
        lower = np.asarray(lower, dtype=np.float64).ravel()
        upper = np.asarray(upper, dtype=np.float64).ravel()
        if lower.shape != y.shape or upper.shape != y.shape:
            raise ValueError(
                f"The 'intervals' parameter of {where}: {name!r} must be (lower, upper) with "
                f"one bound per outcome ({y.size}). Got shapes {lower.shape}, {upper.shape}."
            )
        hit = (lower <= y) & (y <= upper)
        coverage[name] = np.bincount(bin_of, weights=hit, minlength=n_bins) / count
        width[name] = np.bincount(bin_of, weights=upper - lower, minlength=n_bins) / count
    return CoverageByBins(np.asarray(cuts), count, coverage, width)


__all__ = ["CoverageByBins", "coverage_by_uncertainty"]
