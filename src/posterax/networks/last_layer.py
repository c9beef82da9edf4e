"""The last layer of a user's network, found from the computation itself.

laplace-torch finds the last ``nn.Linear`` with forward hooks; here the network is traced once
(``jax.make_jaxpr``) and the last layer is every parameter array first used at or after the last
matrix product (``dot_general``) or convolution that reads a parameter: its weights, and the
bias added after it. This needs no layer types and no naming convention, so it is the same for
Flax NNX, Linen, Equinox and hand-written JAX.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.extend as jex
import jax.numpy as jnp

_LINEAR_MAPS = ("dot_general", "conv_general_dilated")
# Operations that only move or cast a parameter (it is still "the parameter" after them).
_VIEWS = ("reshape", "convert_element_type", "broadcast_in_dim", "transpose", "squeeze", "copy")


def _sub_jaxprs(eqn: Any) -> list[Any]:
    subs = []
    for param in eqn.params.values():
        inner = getattr(param, "jaxpr", param)
        if hasattr(inner, "eqns"):
            subs.append(inner)
    return subs


def _has_linear_map(jaxpr: Any) -> bool:
    return any(
        eqn.primitive.name in _LINEAR_MAPS or any(_has_linear_map(s) for s in _sub_jaxprs(eqn))
        for eqn in jaxpr.eqns
    )


@functools.lru_cache(maxsize=64)
def last_layer_mask(adapter: Any, input_shape: tuple[int, ...], where: str) -> Any:
    """A boolean pytree like the network's params: ``True`` on the last layer's arrays."""
    example = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
    closed = jax.make_jaxpr(lambda p, x: adapter.apply(p, x))(adapter.initial, example)
    jaxpr = closed.jaxpr
    leaves, treedef = jax.tree_util.tree_flatten(adapter.initial)
    origin = {var: {i} for i, var in enumerate(jaxpr.invars[: len(leaves)])}
    first_use: dict[int, int] = {}
    last_map = None
    for k, eqn in enumerate(jaxpr.eqns):
        used = set()
        for var in eqn.invars:
            if isinstance(var, jex.core.Var):
                used |= origin.get(var, set())
        for i in used:
            first_use.setdefault(i, k)
        if not used:
            continue
        if eqn.primitive.name in _VIEWS:
            for out in eqn.outvars:
                origin[out] = used
        if eqn.primitive.name in _LINEAR_MAPS or any(_has_linear_map(s) for s in _sub_jaxprs(eqn)):
            last_map = k
    if last_map is None:
        raise ValueError(
            f"The 'subset_of_weights' parameter of {where}: 'last_layer' needs a network whose "
            "outputs come from a matrix product or convolution with its parameters. Got a "
            f"{adapter.kind} network with none. Use subset_of_weights='all'."
        )
    selected = {i for i, k in first_use.items() if k >= last_map}
    return jax.tree_util.tree_unflatten(treedef, [i in selected for i in range(len(leaves))])


__all__ = ["last_layer_mask"]
