"""Adapter for an Equinox module (``eqx.partition`` / ``eqx.combine`` over inexact arrays)."""

from __future__ import annotations

from typing import Any

import jax

from posterax.networks.adapter import NetworkAdapter, _hashable, params_digest


def equinox_adapter(module: Any, *, where: str) -> NetworkAdapter:
    """Inexact arrays are the params; Equinox layers act on one example, so the batch is
    vmapped, as Equinox users do. A ``eqx.nn.Dropout`` layer gets its key through the module's
    ``__call__(x, key=...)`` when the module accepts one."""
    import equinox as eqx

    params, static = eqx.partition(module, eqx.is_inexact_array)

    def contains(*types: type) -> bool:
        leaves = jax.tree_util.tree_leaves(module, is_leaf=lambda m: isinstance(m, types))
        return any(isinstance(leaf, types) for leaf in leaves)

    has_dropout = contains(eqx.nn.Dropout)
    stateful = contains(eqx.nn.BatchNorm, eqx.nn.StateIndex)
    if stateful:
        raise ValueError(
            f"The 'network' parameter of {where} holds Equinox state (eqx.nn.BatchNorm or "
            "eqx.nn.StateIndex): networks with non-trainable state are not supported yet. Got a "
            f"{type(module).__qualname__}. Use eqx.nn.LayerNorm or remove those layers."
        )

    def forward(params: Any, x: jax.Array, key: Any, train: bool) -> jax.Array:
        model = eqx.combine(params, static)
        if train and key is not None and has_dropout:
            model = eqx.nn.inference_mode(model, value=False)  # even if built with inference=True
            keys = jax.random.split(key, x.shape[0])
            return jax.vmap(lambda xi, ki: model(xi, key=ki))(x, keys)
        if has_dropout:
            model = eqx.nn.inference_mode(model)
            return jax.vmap(lambda xi: model(xi, key=None))(x)
        return jax.vmap(model)(x)

    return NetworkAdapter(
        kind="equinox",
        static_key=_hashable(static),
        digest=params_digest(params),
        initial=params,
        forward=forward,
        to_user=lambda p: eqx.combine(p, static),
        source=module,
        has_dropout=has_dropout,
    )


__all__ = ["equinox_adapter"]
