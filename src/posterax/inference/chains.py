"""What every MCMC sampler returns: draws of several chains, their per-draw statistics and the
facts of the run (one type for NUTS, MALA and SG-MCMC)."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np

from posterax.types import ArrayTree


@dataclasses.dataclass(frozen=True)
class Chains:
    """``samples``: every leaf ``(chains, draws, ...)`` (``run_nuts``: one entry per model
    site, constrained; the ``sample_*`` functions: the position pytree, unconstrained).
    ``sample_stats``: per-draw statistics, each ``(chains, draws)`` (NUTS: ``diverging``,
    ``acceptance_rate``, ``step_size``, ``n_steps``, ``tree_depth``, ``energy``; MALA:
    ``acceptance_rate``; SG-MCMC: none). ``seconds``: sampling wall time. ``info``: facts of
    the run (MALA: the adapted ``step_size`` per chain; SG-MCMC: ``num_steps``)."""

    samples: ArrayTree
    sample_stats: dict[str, np.ndarray]
    seconds: float
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    def flat(self, names: tuple[str, ...] | None = None) -> ArrayTree:
        """Draws with chains concatenated (chain-major): ``(chains * draws, ...)``; ``names``
        picks entries of a dict of sites."""
        tree = self.samples if names is None else {k: self.samples[k] for k in names}
        return merge_chains(tree)[0]

    @property
    def chain_shape(self) -> tuple[int, int]:
        """``(chains, draws)``."""
        first = jax.tree_util.tree_leaves(self.samples)[0]
        return int(first.shape[0]), int(first.shape[1])


def merge_chains(tree: ArrayTree) -> tuple[ArrayTree, tuple[int, int]]:
    """``(chains, draws, ...)`` leaves -> ``(chains * draws, ...)`` (chain-major), and the shape."""
    chains, draws = jax.tree_util.tree_leaves(tree)[0].shape[:2]
    flat = jax.tree_util.tree_map(lambda a: a.reshape((chains * draws, *a.shape[2:])), tree)
    return flat, (int(chains), int(draws))


__all__ = ["Chains", "merge_chains"]
