"""Adapter for a Flax Linen module, initialised on the first batch."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from posterax.networks.adapter import NetworkAdapter, _hashable, params_digest


def linen_adapter(module: Any, example: Any, rng_key: Any, *, where: str) -> NetworkAdapter:
    """``module.init(key, x)`` gives the params; ``module.apply({"params": p}, x)`` the outputs.
    Ensemble members and chains start from ``module.init`` with their own keys."""
    example = jnp.asarray(example[:1])
    try:
        variables = module.init(rng_key, example)
    except Exception as error:
        raise ValueError(
            f"The 'network' parameter of {where}: initialising the Linen module "
            f"{type(module).__qualname__} on a batch of shape {tuple(example.shape)} failed with "
            f"{type(error).__name__}: {error}. Check the input shape it expects."
        ) from error
    others = sorted(set(variables) - {"params"})
    if others:
        raise ValueError(
            f"The 'network' parameter of {where} holds variable collections {others} besides "
            "'params' (e.g. BatchNorm's 'batch_stats'): networks with non-trainable state are "
            f"not supported yet. Got a {type(module).__qualname__}. Use nn.LayerNorm or remove "
            "those layers."
        )
    initial = variables["params"]

    def forward(params: Any, x: jax.Array, key: Any, train: bool) -> jax.Array:
        return module.apply({"params": params}, x)

    return NetworkAdapter(
        kind="linen",
        static_key=_hashable(module),
        digest=params_digest(initial),
        initial=initial,
        forward=forward,
        to_user=lambda params: {"params": params},
        reinit=lambda key: module.init(key, example)["params"],
        source=module,
    )


__all__ = ["linen_adapter"]
