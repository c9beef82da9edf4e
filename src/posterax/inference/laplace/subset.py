"""Which weights the Laplace approximation covers, and the prior precision over them.

A :class:`WeightSubset` picks positions in the flattened network weights (``ravel_pytree`` order)
and keeps every other weight fixed at the MAP: ``"all"``, ``"last_layer"`` (the last top-level
entry of a params list, e.g. the last MLP layer's ``w`` and ``b``) or ``"subnetwork"`` (a boolean
mask pytree, or the top-k weights by a diagonal score). All index bookkeeping is NumPy, outside
of compiled code; the selected weights are always in ascending flat order.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from posterax.inference.vi import Unraveler
from posterax.types import ArrayTree

SUBSETS = ("all", "last_layer", "subnetwork")
WHERE = "fit_laplace"


def _top_level_sizes(net: ArrayTree) -> list[int]:
    """Number of weights in each top-level entry (a layer of an MLP params list), in flat order."""
    # One level of any pytree: a list's layers, a dict's entries, an Equinox module's fields.
    children = jax.tree_util.tree_leaves(net, is_leaf=lambda node: node is not net)
    return [sum(int(np.size(leaf)) for leaf in jax.tree_util.tree_leaves(c)) for c in children]


@dataclasses.dataclass(frozen=True, eq=False)
class WeightSubset:
    """Selected positions of the flattened weights, with the MAP for everything else.

    Attributes
    ----------
    map_flat : array (P_all,)
        MAP weights in ``ravel_pytree`` order.
    index : ndarray (P,) of int
        Selected flat positions (ascending).
    group : ndarray (P,) of int
        Top-level entry (layer) of each selected weight: the groups of a per-layer prior.
    n_groups : int
    unravel : Unraveler
        Flat vector -> weights pytree (hashable).
    kind : str
        ``"all"``, ``"last_layer"`` or ``"subnetwork"``.
    """

    map_flat: jax.Array
    index: np.ndarray
    group: np.ndarray
    n_groups: int
    unravel: Unraveler
    kind: str

    @property
    def size(self) -> int:
        return int(self.index.shape[0])

    @property
    def n_all(self) -> int:
        return int(self.map_flat.shape[0])

    @property
    def map_selected(self) -> jax.Array:
        return self.map_flat[self.index]

    def embed(self, theta: jax.Array) -> ArrayTree:
        """Weights pytree with the selected entries set to ``theta`` (the rest at the MAP)."""
        return self.unravel(self.map_flat.at[self.index].set(theta))

    def positions(self) -> ArrayTree:
        """A pytree like the weights whose leaves hold their flat positions (NumPy ints)."""
        pos, start = [], 0
        for shape in self.unravel.shapes:
            size = int(np.prod(shape, dtype=int))
            pos.append(np.arange(start, start + size).reshape(shape))
            start += size
        return jax.tree_util.tree_unflatten(self.unravel.treedef, pos)

    def selected_position_of(self) -> np.ndarray:
        """``(P_all,)`` map flat position -> position among the selected weights (-1: fixed)."""
        out = np.full(self.n_all, -1, dtype=int)
        out[self.index] = np.arange(self.size)
        return out


def _groups(net: ArrayTree) -> np.ndarray:
    sizes = _top_level_sizes(net)
    return np.repeat(np.arange(len(sizes)), sizes)


def make_subset(
    net: ArrayTree,
    subset_of_weights: str,
    mask: ArrayTree | None = None,
) -> WeightSubset:
    """Build the subset for ``"all"``, ``"last_layer"`` or a ``"subnetwork"`` mask.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> layer = lambda a, b: {"w": jnp.ones((a, b)), "b": jnp.zeros(b)}
    >>> net = [layer(2, 3), layer(3, 1)]
    >>> make_subset(net, "last_layer").index.tolist()  # flat order: b (1) then w (3)
    [9, 10, 11, 12]
    """
    map_flat, _ = ravel_pytree(net)
    unravel = Unraveler.of(net)
    group = _groups(net)
    n_groups = int(group.max()) + 1 if group.size else 0
    if subset_of_weights == "all":
        index = np.arange(map_flat.shape[0])
    elif subset_of_weights == "last_layer":
        if not isinstance(net, list | tuple) or len(net) < 1:
            raise ValueError(
                f"The 'subset_of_weights' parameter of {WHERE}: 'last_layer' needs network "
                f"weights that are a list of layers (like posterax's MLP). Got a "
                f"{type(net).__name__}. Pass subset_of_weights='subnetwork' with a boolean mask."
            )
        index = np.flatnonzero(group == len(net) - 1)
    elif subset_of_weights == "subnetwork":
        index = mask_index(net, mask)
    else:
        raise ValueError(
            f"The 'subset_of_weights' parameter of {WHERE} must be one of "
            f"{', '.join(map(repr, SUBSETS))}. Got {subset_of_weights!r}."
        )
    return WeightSubset(map_flat, index, group[index], n_groups, unravel, subset_of_weights)


def mask_index(net: ArrayTree, mask: Any) -> np.ndarray:
    """Flat positions where a boolean mask pytree (same structure and shapes as ``net``) is
    true."""
    if mask is None:
        raise ValueError(
            f"The 'subnetwork_mask' parameter of {WHERE} is required when "
            "subset_of_weights='subnetwork'. Got None. Pass a boolean pytree shaped like the "
            "weights, or an int n_subnetwork to pick the top-k weights."
        )
    leaves, treedef = jax.tree_util.tree_flatten(net)
    try:
        mask_leaves = treedef.flatten_up_to(mask)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"The 'subnetwork_mask' parameter of {WHERE} must have the structure of the network "
            f"weights ({treedef}). Got a mismatch: {err}"
        ) from None
    flat = []
    for leaf, m in zip(leaves, mask_leaves, strict=True):
        m = np.asarray(m)
        if m.dtype != bool or m.shape not in (leaf.shape, ()):
            raise ValueError(
                f"The 'subnetwork_mask' parameter of {WHERE} must hold booleans shaped like each "
                f"weight (or a scalar bool). Got dtype {m.dtype}, shape {m.shape} for a weight "
                f"of shape {leaf.shape}."
            )
        flat.append(np.broadcast_to(m, leaf.shape).ravel())
    index = np.flatnonzero(np.concatenate(flat)) if flat else np.zeros(0, int)
    if index.size == 0:
        raise ValueError(
            f"The 'subnetwork_mask' parameter of {WHERE} selects no weight. Set at least one "
            "entry to True."
        )
    return index


def top_k_subset(full: WeightSubset, scores: jax.Array, k: int) -> WeightSubset:
    """The ``k`` selected weights of ``full`` with the largest ``scores`` (same order)."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= full.size:
        raise ValueError(
            f"The 'n_subnetwork' parameter of {WHERE} must be an int in [1, {full.size}] (the "
            f"number of weights). Got {k!r}."
        )
    top = np.sort(np.argsort(-np.asarray(scores))[:k])
    return dataclasses.replace(
        full, index=full.index[top], group=full.group[top], kind="subnetwork"
    )


def prior_vector(prior_precision: Any, subset: WeightSubset) -> jax.Array:
    """Expand a prior precision to one value per selected weight.

    Accepts a scalar, one value per layer (``n_groups`` values), one per selected weight, or a
    pytree shaped like the weights (diagonal prior).
    """
    value = prior_precision
    if isinstance(value, list | tuple | dict) and jax.tree_util.tree_structure(value) == (
        subset.unravel.treedef
    ):
        value = ravel_pytree(value)[0][subset.index]
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        vec = np.full(subset.size, float(arr))
    elif arr.ndim == 1 and arr.shape[0] == subset.n_groups and subset.n_groups != subset.size:
        vec = arr[subset.group]
    elif arr.ndim == 1 and arr.shape[0] == subset.size:
        vec = arr
    else:
        raise ValueError(
            f"The 'prior_precision' parameter of {WHERE} must be a float, one value per layer "
            f"({subset.n_groups}), one per selected weight ({subset.size}) or a pytree shaped "
            f"like the weights. Got shape {arr.shape}."
        )
    if not (np.all(np.isfinite(vec)) and np.all(vec > 0)):
        raise ValueError(
            f"The 'prior_precision' parameter of {WHERE} must be finite and > 0. Got "
            f"{prior_precision!r}. Pass e.g. prior_precision=1.0."
        )
    return jnp.asarray(vec, dtype=subset.map_flat.dtype)


__all__ = ["SUBSETS", "WeightSubset", "make_subset", "mask_index", "prior_vector", "top_k_subset"]
