"""Mondrian (group-conditional) split conformal: one threshold per group, so coverage holds
within every group, not only on average (Vovk et al. 2005; class-conditional sets for
classification). Groups are any labels the user gives per example (a category of the inputs,
a site, a device), or the class itself for classification."""

from __future__ import annotations

from typing import Any

import numpy as np

from posterax.conformal.quantile import conformal_quantile


def group_quantiles(
    scores: Any, groups: Any, alpha: float, where: str, name: str = "partition"
) -> dict[Any, float]:
    """The split-conformal threshold of each group's calibration scores (``name``: the
    parameter that gave the groups, for messages)."""
    scores = np.asarray(scores)
    groups = np.asarray(groups).ravel()
    if groups.shape[0] != scores.shape[0]:
        raise ValueError(
            f"The '{name}' parameter of {where} must give one group per calibration example. "
            f"Got {groups.shape[0]} groups for {scores.shape[0]} examples."
        )
    out = {}
    for group in np.unique(groups):
        try:
            out[_plain(group)] = float(conformal_quantile(scores[groups == group], alpha))
        except ValueError as error:
            raise ValueError(
                f"{where}: group {_plain(group)!r} has too few calibration examples for its own "
                f"threshold. {error}"
            ) from None
    return out


def thresholds_for(
    quantiles: dict[Any, float], groups: Any, n: int, where: str, name: str = "partition"
) -> np.ndarray:
    """Each test example's group threshold, shape (n,)."""
    if groups is None:
        raise ValueError(
            f"The '{name}' parameter of {where} is required: the wrapper was conformalized "
            f"per group ({len(quantiles)} groups). Pass the test examples' groups."
        )
    groups = np.asarray(groups).ravel()
    if groups.shape[0] != n:
        raise ValueError(
            f"The '{name}' parameter of {where} must give one group per example. Got "
            f"{groups.shape[0]} groups for {n} examples."
        )
    missing = [_plain(g) for g in np.unique(groups) if _plain(g) not in quantiles]
    if missing:
        raise ValueError(
            f"The '{name}' parameter of {where} holds groups that had no calibration examples: "
            f"{missing[:5]}. Calibrated groups: {list(quantiles)[:10]}. Conformalize with "
            "examples of every group you predict for."
        )
    return np.array([quantiles[_plain(g)] for g in groups])


def _plain(group: Any) -> Any:
    """A NumPy scalar as the Python value (dictionary keys, messages)."""
    return group.item() if hasattr(group, "item") else group


__all__ = ["group_quantiles", "thresholds_for"]
