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
    """Trainable ``nnx.Param`` leaves become the params (a plain nested dict); BatchNorm
    statistics (``nnx.BatchStat``) the network's state; everything else (RNG streams of dropout
    layers, constants) is carried as it is."""
    nnx = _import_nnx(where)
    if not isinstance(module, nnx.Module):
        raise ValueError(
            f"The 'network' parameter of {where} must be an NNX module instance (built with "
            f"nnx.Rngs). Got {type(module).__qualname__}, a Flax object that is not an "
            "nnx.Module: pass a Linen module class instance or an nnx.Module."
        )
    graphdef, param_state, stats_state, rest = nnx.split(module, nnx.Param, nnx.BatchStat, ...)
    params_def = jax.tree_util.tree_structure(param_state)
    initial = jax.tree_util.tree_map(jnp.asarray, nnx.to_pure_dict(param_state))
    if len(jax.tree_util.tree_leaves(initial)) != params_def.num_leaves:  # pragma: no cover
        raise AssertionError("nnx.to_pure_dict changed the number of leaves")
    stats_def = jax.tree_util.tree_structure(stats_state)
    state = jax.tree_util.tree_map(jnp.asarray, nnx.to_pure_dict(stats_state))
    rest_leaves, rest_def = jax.tree_util.tree_flatten(rest)
    # Non-trainable variables (constants the user set) are baked into the programs: they belong
    # to the network's identity (compile caches) and to what a saved model must match.
    constants = [
        leaf
        for leaf in rest_leaves
        if not jnp.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key)
    ]
    has_dropout = any(isinstance(m, nnx.Dropout) for _, m in nnx.iter_modules(module))

    def merged(params: Any, key: Any = None, stats: Any = None):
        weights = jax.tree_util.tree_unflatten(params_def, jax.tree_util.tree_leaves(params))
        stats = state if stats is None else stats
        batch_stats = jax.tree_util.tree_unflatten(stats_def, jax.tree_util.tree_leaves(stats))
        leaves = rest_leaves
        if key is not None:  # fresh dropout masks: every RNG stream gets a key from ``key``
            leaves = [
                jax.random.fold_in(key, i)
                if jnp.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key)
                else leaf
                for i, leaf in enumerate(rest_leaves)
            ]
        rest_state = jax.tree_util.tree_unflatten(rest_def, leaves)
        return nnx.merge(graphdef, weights, batch_stats, rest_state)

    def forward(params: Any, x: jax.Array, key: Any, train: bool, stats: Any = None) -> jax.Array:
        model = merged(params, key if train else None, stats)
        if train and key is not None:
            model.train()
        else:
            model.eval()
        return model(x)

    def batch_forward(params: Any, x: jax.Array) -> tuple[jax.Array, Any]:
        """BatchNorm on the batch's own statistics (dropout off); also returns them."""
        model = merged(params)
        model.eval()
        model.set_attributes(use_running_average=False, momentum=0.0, raise_if_not_found=False)
        out = model(x)
        return out, nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))

    return NetworkAdapter(
        kind="nnx",
        static_key=graphdef,
        digest=params_digest((initial, constants)),
        initial=initial,
        forward=forward,
        to_user=lambda params, stats=None: merged(params, None, stats),
        constants_digest=params_digest(constants),
        source=module,
        has_dropout=has_dropout,
        state=state if jax.tree_util.tree_leaves(state) else None,
        batch_forward=batch_forward if jax.tree_util.tree_leaves(state) else None,
    )


__all__ = ["nnx_adapter"]
