"""Running on several devices with JAX's own sharding: a one-axis ``Mesh``, ``shard_map`` for
independent items (MCMC chains, ensemble members) and a sharding constraint on the minibatch
for data-parallel gradients.

Independent items go through ``shard_map`` rather than a sharded ``vmap``: each device then
runs its own chains' while loops (NUTS trees end when that device's chains are done, not when
the slowest chain anywhere is), and nothing is communicated until the draws are gathered.

Several processes (JAX's multi-controller runtime): every process runs the same script with
the same data after ``jax.distributed.initialize(...)``. ``devices=None`` then means every
process's devices; data and keys become global arrays made from each process's copy
(``jax.make_array_from_process_local_data``), and results are gathered back so that every
process holds all of them (:func:`gathered`).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = "shard"
"""The one mesh axis: chains, members or minibatch rows."""


def resolve_devices(devices: Any, *, where: str) -> tuple[jax.Device, ...]:
    """``None`` -> every device (every process's, under the multi-process runtime; this
    process's otherwise); an int ``n`` -> the first ``n`` (of each process, under the
    multi-process runtime); a sequence of ``jax.Device`` -> those. Anything else is refused by
    name."""
    pool = tuple(jax.devices())
    if devices is None:
        return pool
    if isinstance(devices, numbers.Integral) and not isinstance(devices, bool):
        groups = _by_process(pool)
        fewest = min(len(g) for g in groups)
        if not 1 <= devices <= fewest:
            raise ValueError(
                f"The 'devices' parameter of {where} must be between 1 and the number of local "
                f"devices ({fewest}: {_names(groups[0][:fewest])}). Got {devices}. Pass "
                "devices=None to use all of them."
            )
        return tuple(d for g in groups for d in g[: int(devices)])
    if (
        isinstance(devices, Sequence)
        and not isinstance(devices, str)
        and len(devices) > 0
        and all(isinstance(d, jax.Device) for d in devices)
    ):
        if len(set(devices)) != len(devices):
            raise ValueError(
                f"The 'devices' parameter of {where} lists a device twice: {_names(devices)}. "
                "List each device once."
            )
        return tuple(devices)
    raise TypeError(
        f"The 'devices' parameter of {where} must be None (all local devices), an int (the "
        f"first n local devices) or a non-empty list of jax.Device objects. Got {devices!r}. "
        "Pass e.g. devices=jax.local_devices()[:2]."
    )


def _by_process(devices: Sequence[jax.Device]) -> list[list[jax.Device]]:
    """``devices`` grouped by process, in process order (the same in every process)."""
    groups: dict[int, list[jax.Device]] = {}
    for d in devices:
        groups.setdefault(d.process_index, []).append(d)
    return [groups[p] for p in sorted(groups)]


def _names(devices: Sequence[jax.Device]) -> str:
    return ", ".join(str(d) for d in devices)


def mesh_for(n_items: int, devices: tuple[jax.Device, ...] | None) -> Mesh | None:
    """A one-axis mesh over the largest number of ``devices`` that divides ``n_items``; ``None``
    when that is a single device (the program then runs unsharded, as before).

    Devices of several processes: the same number from each process, so that every process
    takes part in the one program. Where ``n_items`` does not split evenly over the
    processes (one chain on two processes), every process runs all items on its own devices:
    the same results everywhere, the work not shared."""
    if not devices:
        return None
    groups = _by_process(devices)
    if len(groups) > 1:
        fewest = min(len(g) for g in groups)
        per = [k for k in range(1, fewest + 1) if n_items % (k * len(groups)) == 0]
        if per:
            return Mesh(np.asarray([d for g in groups for d in g[: max(per)]]), (AXIS,))
        own = [g for g in groups if g[0].process_index == jax.process_index()]
        if not own:
            return None
        devices = tuple(own[0])
    count = max(k for k in range(1, len(devices) + 1) if n_items % k == 0)
    if count == 1 and devices[0] == jax.local_devices()[0]:
        return None
    return Mesh(np.asarray(devices[:count]), (AXIS,))


def split_items(fn: Callable[..., Any], mesh: Mesh | None, n_split: int, n_args: int):
    """``fn`` (already vmapped over a leading item axis) run with its first ``n_split``
    arguments split over ``mesh`` along that axis and the rest replicated; outputs keep the
    leading axis, split. Without a mesh, ``fn`` itself."""
    if mesh is None:
        return fn
    specs = (P(AXIS),) * n_split + (P(),) * (n_args - n_split)
    return jax.shard_map(fn, mesh=mesh, in_specs=specs, out_specs=P(AXIS), check_vma=False)


def vectorize_items() -> bool:
    """Whether items (chains, members) on one device run as one batched program (``vmap``):
    on accelerators, yes. On CPU they run one at a time (``lax.map``): a batched matrix
    product rounds differently from a single one, so only then does an item's arithmetic not
    depend on how many items share its device, and results equal the one-device run's."""
    return jax.default_backend() != "cpu"


def map_items(fn: Callable[..., Any], vectorized: bool) -> Callable[..., Any]:
    """``fn(*item_args)`` over the leading axis of every argument, with ``vmap`` or
    ``lax.map`` (see :func:`vectorize_items`). One item is not vmapped: a vmapped while loop
    (NUTS trees) costs compile and run time."""

    def mapped(*args):
        if jax.tree_util.tree_leaves(args)[0].shape[0] == 1:
            one = fn(*jax.tree_util.tree_map(lambda a: a[0], args))
            return jax.tree_util.tree_map(lambda a: jnp.asarray(a)[None], one)
        if vectorized:
            return jax.vmap(fn)(*args)
        return jax.lax.map(lambda a: fn(*a), args)

    return mapped


def run_items(
    one: Callable[..., Any], mesh: Mesh | None, vectorized: bool, n_split: int
) -> Callable[..., Any]:
    """``one(*item_args, *shared_args, index)`` for every item: the first ``n_split``
        arguments have a leading item axis (keys, starts) and are split over ``mesh``; the rest
        (data) are shared. ``index`` counts the items its device ran before it (0 when vectorized),
    for progress bars.
        Outputs have the leading item axis."""

    def per_device(*args):
        items, shared = args[:n_split], args[n_split:]
        count = jax.tree_util.tree_leaves(items)[0].shape[0]

        def item(index, *values):
            return one(*values, *shared, index)

        order = jnp.zeros(count, jnp.int32) if vectorized else jnp.arange(count)
        return map_items(item, vectorized)(order, *items)

    def program(*args):
        return split_items(per_device, mesh, n_split, len(args))(*args)

    return program


def items_per_device(n_items: int, mesh: Mesh | None, vectorized: bool) -> int:
    """How many items one device runs one after another (progress bars count them all)."""
    return 1 if vectorized else n_items // (1 if mesh is None else mesh.size)


def spans_processes(mesh: Mesh | None) -> bool:
    """Whether ``mesh`` has devices of other processes (JAX's multi-controller runtime)."""
    return mesh is not None and any(
        d.process_index != jax.process_index() for d in mesh.devices.flat
    )


def _global(mesh: Mesh, spec: P, tree: Any) -> Any:
    """Every process holds the whole of ``tree`` (the same script on the same data): global
    arrays of the same shape, each process filling its own devices' parts from its copy."""
    sharding = NamedSharding(mesh, spec)

    def one(leaf):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            return jax.device_put(leaf, sharding)  # already global
        if jax.dtypes.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key):
            data = np.asarray(jax.random.key_data(leaf))
            impl = jax.random.key_impl(leaf)
            raw = jax.make_array_from_callback(data.shape, sharding, lambda i: data[i])
            return jax.random.wrap_key_data(raw, impl=impl)
        host = np.asarray(leaf)
        return jax.make_array_from_callback(host.shape, sharding, lambda i: host[i])

    return jax.tree_util.tree_map(one, tree)


def replicated(mesh: Mesh | None, tree: Any) -> Any:
    """``tree`` placed whole on every device of ``mesh`` (unchanged without a mesh)."""
    if mesh is None:
        return tree
    if spans_processes(mesh):
        return _global(mesh, P(), tree)
    return jax.device_put(tree, NamedSharding(mesh, P()))


def split_leading(mesh: Mesh | None, tree: Any) -> Any:
    """``tree``'s leaves split along their leading axis over ``mesh``."""
    if mesh is None:
        return tree
    if spans_processes(mesh):
        return _global(mesh, P(AXIS), tree)
    return jax.device_put(tree, NamedSharding(mesh, P(AXIS)))


def gathered(tree: Any) -> Any:
    """Results of a program that spans processes, whole in every process (as arrays on this
    process's first device); everything else unchanged."""
    from jax.experimental import multihost_utils

    def one(leaf):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
                data = multihost_utils.process_allgather(jax.random.key_data(leaf), tiled=True)
                return jax.random.wrap_key_data(data, impl=jax.random.key_impl(leaf))
            return jnp.asarray(multihost_utils.process_allgather(leaf, tiled=True))
        return leaf

    return jax.tree_util.tree_map(one, tree)


def constrain_rows(mesh: Mesh | None, tree: Any) -> Any:
    """Inside a jitted program: lay a minibatch's rows out over ``mesh`` (data parallelism;
    XLA then reduces the gradient across devices)."""
    if mesh is None:
        return tree
    return jax.lax.with_sharding_constraint(tree, NamedSharding(mesh, P(AXIS)))


__all__ = [
    "AXIS",
    "constrain_rows",
    "gathered",
    "items_per_device",
    "map_items",
    "mesh_for",
    "replicated",
    "resolve_devices",
    "run_items",
    "spans_processes",
    "split_items",
    "split_leading",
    "vectorize_items",
]
