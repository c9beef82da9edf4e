"""Adapter for a Flax NNX module instance (``nnx.split`` / ``nnx.merge``)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from posterax.networks.adapter import NetworkAdapter, params_digest


def _import_nnx(where: str):
    try:
        from flax import nnx
    except ImportError as error:  # pragma: no cover - flax is in the dev extras
        raise ImportError(
            f"{where} got a Flax NNX module but flax is not installed. Install it with "
            "`pip install 'posterax[flax]'`."
        ) from error
    return nnx


def nnx_adapter(module: Any, *, where: str) -> NetworkAdapter:
    """Trainable ``nnx.Param`` leaves become the params (a plain nested dict); everything else
    (RNG streams of dropout layers, constants) is carried as it is."""
    nnx = _import_nnx(where)
    if not isinstance(module, nnx.Module):
        raise ValueError(
            f"The 'network' parameter of {where} must be an NNX module instance (built with "
            f"nnx.Rngs). Got {type(module).__qualname__}, a Flax object that is not an "
            "nnx.Module: pass a Linen module class instance or an nnx.Module."
        )
    stats = jax.tree_util.tree_leaves(nnx.state(module, nnx.BatchStat))
    if stats:
        raise ValueError(
            f"The 'network' parameter of {where} holds BatchNorm statistics (nnx.BatchStat): "
            "networks with non-trainable state are not supported yet. Got a "
            f"{type(module).__qualname__} with {len(stats)} BatchStat array(s). Use "
            "nnx.LayerNorm (no running statistics) or remove the BatchNorm layers."
        )
    graphdef, param_state, rest = nnx.split(module, nnx.Param, ...)
    params_def = jax.tree_util.tree_structure(param_state)
    initial = jax.tree_util.tree_map(jnp.asarray, nnx.to_pure_dict(param_state))
    if len(jax.tree_util.tree_leaves(initial)) != params_def.num_leaves:  # pragma: no cover
        raise AssertionError("nnx.to_pure_dict changed the number of leaves")
    rest_leaves, rest_def = jax.tree_util.tree_flatten(rest)
    # Non-trainable variables (constants the user set) are baked into the programs: they belong
    # to the network's identity (compile caches) and to what a saved model must match.
    constants = [
        leaf
        for leaf in rest_leaves
        if not jnp.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key)
    ]
    has_dropout = any(isinstance(m, nnx.Dropout) for _, m in nnx.iter_modules(module))

    def merged(params: Any, key: Any = None):
        state = jax.tree_util.tree_unflatten(params_def, jax.tree_util.tree_leaves(params))
        leaves = rest_leaves
        if key is not None:  # fresh dropout masks: every RNG stream gets a key from ``key``
            leaves = [
                jax.random.fold_in(key, i)
                if jnp.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key)
                else leaf
                for i, leaf in enumerate(rest_leaves)
            ]
        return nnx.merge(graphdef, state, jax.tree_util.tree_unflatten(rest_def, leaves))

    def forward(params: Any, x: jax.Array, key: Any, train: bool) -> jax.Array:
        model = merged(params, key if train else None)
        if train and key is not None:
            model.train()
        else:
            model.eval()
        return model(x)

    return NetworkAdapter(
        kind="nnx",
        static_key=graphdef,
        digest=params_digest((initial, constants)),
        initial=initial,
        forward=forward,
        to_user=lambda params: merged(params),
        constants_digest=params_digest(constants),
        source=module,
        has_dropout=has_dropout,
    )


__all__ = ["nnx_adapter"]
