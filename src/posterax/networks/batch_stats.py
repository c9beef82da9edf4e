"""BatchNorm statistics of a whole dataset at given weights (the statistics evaluation uses).

Training normalises each minibatch by its own statistics; the statistics a fitted network
evaluates with are then recomputed over all training inputs at the trained weights, as SWA and
SWAG do (Izmailov et al. 2018, "bn_update"), rather than a running average of statistics
from weights that kept changing. The inputs go through in chunks; each chunk's mean and
(biased) variance are combined exactly: means weighted by rows, variances through E[x^2].
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from posterax.types import ArrayTree

CHUNK_ROWS = 2048


@functools.partial(jax.jit, static_argnums=0)
def _chunk_stats(network: Any, net: ArrayTree, X: jax.Array) -> ArrayTree:
    return network.batch_apply(net, X)[1]


def _name(path: tuple) -> str:
    return str(getattr(path[-1], "key", getattr(path[-1], "name", path[-1])))


def population_state(network: Any, net: ArrayTree, X: jax.Array) -> ArrayTree:
    """BatchNorm statistics (``mean`` and ``var`` leaves) of ``X`` at weights ``net``."""
    n = X.shape[0]
    sums: list[jax.Array] | None = None
    treedef, paths = None, []
    for start in range(0, n, CHUNK_ROWS):
        chunk = X[start : start + CHUNK_ROWS]
        flat, treedef = jax.tree_util.tree_flatten_with_path(_chunk_stats(network, net, chunk))
        paths = [path for path, _ in flat]
        means = {path[:-1]: leaf for path, leaf in flat if _name(path) == "mean"}
        weight = chunk.shape[0] / n
        terms = [
            weight * (leaf + means[path[:-1]] ** 2 if _name(path) == "var" else leaf)
            for path, leaf in flat
        ]
        sums = terms if sums is None else [a + b for a, b in zip(sums, terms, strict=True)]
    means = {
        path[:-1]: leaf for path, leaf in zip(paths, sums, strict=True) if _name(path) == "mean"
    }
    leaves = [
        jnp.maximum(leaf - means[path[:-1]] ** 2, 0.0) if _name(path) == "var" else leaf
        for path, leaf in zip(paths, sums, strict=True)
    ]
    return jax.tree_util.tree_unflatten(treedef, leaves)


__all__ = ["CHUNK_ROWS", "population_state"]
