"""Adapter for ``px.networks.Functional(apply_fn, params)``."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from posterax.networks.adapter import NetworkAdapter, _hashable, params_digest
from posterax.networks.functional import Functional


def functional_adapter(network: Functional, *, where: str) -> NetworkAdapter:
    if not callable(network.apply_fn):
        raise ValueError(
            f"The 'network' parameter of {where}: px.networks.Functional needs a callable "
            f"apply_fn(params, x). Got {network.apply_fn!r}."
        )
    initial = jax.tree_util.tree_map(jnp.asarray, network.params)

    def forward(params: Any, x: jax.Array, key: Any, train: bool) -> jax.Array:
        return network.apply_fn(params, x)

    return NetworkAdapter(
        kind="functional",
        static_key=_hashable(network.apply_fn),
        digest=params_digest(initial),
        initial=initial,
        forward=forward,
        to_user=lambda params: params,
        reinit=network.init,
        source=network,
    )


__all__ = ["functional_adapter"]
