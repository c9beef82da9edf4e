"""One internal network type for every framework: a pure function of a params pytree.

A :class:`NetworkAdapter` is what the heads, samplers and trainers call. It is a frozen dataclass
whose equality (and hash) is the framework's static structure plus a digest of the initial
params, so the compile caches of the samplers reuse a program for the same network and never
for another one.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from posterax.networks.functional import Functional
from posterax.types import ArrayTree, PRNGKey

Forward = Callable[[ArrayTree, jax.Array, PRNGKey | None, bool], jax.Array]


def params_digest(params: ArrayTree) -> str:
    """SHA-256 of a params pytree's structure, shapes, dtypes and values."""
    digest = hashlib.sha256(str(jax.tree_util.tree_structure(params)).encode())
    for leaf in jax.tree_util.tree_leaves(params):
        array = np.asarray(leaf)
        digest.update(f"{array.shape}{array.dtype}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _hashable(obj: Any) -> Any:
    try:
        hash(obj)
    except TypeError:
        return ("id", id(obj))  # the adapter keeps ``obj`` alive, so the id is not reused
    return obj


@dataclasses.dataclass(frozen=True)
class NetworkAdapter:
    """A user's network as ``apply(params, x, *, key=None, train=False)``.

    Attributes
    ----------
    kind : str
        ``"nnx"``, ``"linen"``, ``"equinox"`` or ``"functional"``.
    initial : pytree
        The params the user's network came with (the structure every method works over).
    """

    kind: str
    static_key: Any = dataclasses.field(repr=False)
    digest: str = dataclasses.field(repr=False)
    initial: ArrayTree = dataclasses.field(compare=False, repr=False)
    forward: Forward = dataclasses.field(compare=False, repr=False)
    to_user: Callable[[ArrayTree], Any] = dataclasses.field(compare=False, repr=False)
    reinit: Callable[[PRNGKey], ArrayTree] | None = dataclasses.field(
        default=None, compare=False, repr=False
    )
    source: Any = dataclasses.field(default=None, compare=False, repr=False)
    has_dropout: bool = False
    # Digest of non-trainable constants baked into ``forward`` (NNX variables), "" if none.
    constants_digest: str = dataclasses.field(default="", compare=False, repr=False)
    # BatchNorm statistics (NNX ``BatchStat``) the network came with, None without BatchNorm;
    # the fitted statistics travel in the params as ``params["state"]`` (see heads).
    state: ArrayTree | None = dataclasses.field(default=None, compare=False, repr=False)
    batch_forward: Callable[[ArrayTree, jax.Array], tuple[jax.Array, ArrayTree]] | None = (
        dataclasses.field(default=None, compare=False, repr=False)
    )

    def apply(
        self,
        params: ArrayTree,
        x: jax.Array,
        *,
        key: PRNGKey | None = None,
        train: bool = False,
        state: ArrayTree | None = None,
    ) -> jax.Array:
        """Outputs ``(N, K)`` for a batch ``x`` (dropout on when ``train`` and a ``key``;
        BatchNorm with the statistics ``state``, default the network's own)."""
        if state is None:
            out = self.forward(params, x, key, train)
        else:
            out = self.forward(params, x, key, train, state)
        return out.reshape(out.shape[0], -1)

    def batch_apply(self, params: ArrayTree, x: jax.Array) -> tuple[jax.Array, ArrayTree]:
        """Training-mode outputs ``(N, K)``: BatchNorm normalises by the batch's own
        statistics, which are returned too (dropout stays off)."""
        out, stats = self.batch_forward(params, x)
        return out.reshape(out.shape[0], -1), stats

    def __call__(self, params: ArrayTree, X: jax.Array) -> jax.Array:
        """Evaluation-mode outputs ``(N, K)``: the call the heads and samplers make."""
        return self.apply(params, X)

    def init(self, rng_key: PRNGKey, n_features: int | None = None) -> ArrayTree:
        """Fresh starting params (ensemble members, chains): the framework's own initialiser
        where there is one (Linen, ``Functional(init=...)``); otherwise every matrix-shaped leaf
        is redrawn from a Normal with the sd of the user's initial leaf, keeping its scale, and
        vectors (biases, norm scales) keep their initial values."""
        if self.reinit is not None:
            return self.reinit(rng_key)
        return _redraw(self.initial, rng_key)

    def template(self, n_features: int | None = None) -> ArrayTree:
        """Zero params of the network's structure."""
        return jax.tree_util.tree_map(jnp.zeros_like, self.initial)

    @property
    def n_params(self) -> int:
        return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(self.initial)))


@jax.jit  # one program per network structure, not one small one per leaf operation
def _redraw(initial: ArrayTree, rng_key: PRNGKey) -> ArrayTree:
    leaves, treedef = jax.tree_util.tree_flatten(initial)
    keys = jax.random.split(rng_key, max(len(leaves), 1))
    fresh = [
        jax.random.normal(k, leaf.shape, leaf.dtype) * jnp.std(leaf) if leaf.ndim >= 2 else leaf
        for k, leaf in zip(keys, leaves, strict=False)
    ]
    return jax.tree_util.tree_unflatten(treedef, fresh)


@functools.lru_cache(maxsize=64)
def widest_activation(adapter: NetworkAdapter, input_shape: tuple[int, ...]) -> int:
    """Values per input row of the largest array the network computes in evaluation mode (its
    input and output included): what the memory budget of chunked prediction plans for."""
    example = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
    jaxpr = jax.make_jaxpr(lambda p, x: adapter.apply(p, x))(adapter.initial, example)
    sizes = [int(np.prod(input_shape))]

    def visit(closed_or_open: Any) -> None:
        inner = getattr(closed_or_open, "jaxpr", closed_or_open)
        for eqn in inner.eqns:
            sizes.extend(int(np.prod(v.aval.shape)) for v in eqn.outvars if hasattr(v, "aval"))
            for param in eqn.params.values():
                if hasattr(param, "eqns") or hasattr(getattr(param, "jaxpr", None), "eqns"):
                    visit(param)

    visit(jaxpr)
    return max(sizes)


def as_network(network: Any, example: np.ndarray, rng_key: PRNGKey, *, where: str) -> Any:
    """The :class:`NetworkAdapter` of a user's network (``example``: a few input rows, used to
    initialise a Linen module and to check that the network runs on the data)."""
    module = type(network).__module__ or ""
    if isinstance(network, Functional):
        from posterax.networks.functional_adapter import functional_adapter

        adapter = functional_adapter(network, where=where)
    elif module.startswith("flax.") or _is_subclass_of(network, "flax"):
        if _is_subclass_of(network, "flax.linen"):
            from posterax.networks.linen_adapter import linen_adapter

            adapter = linen_adapter(network, example, rng_key, where=where)
        else:
            from posterax.networks.nnx_adapter import nnx_adapter

            adapter = nnx_adapter(network, where=where)
    elif _is_subclass_of(network, "equinox"):
        from posterax.networks.equinox_adapter import equinox_adapter

        adapter = equinox_adapter(network, where=where)
    else:
        raise ValueError(
            f"The 'network' parameter of {where} must be hidden sizes (e.g. (50,)), "
            "px.networks.MLP(...), a Flax NNX module instance, a Flax Linen module, an Equinox "
            "module or px.networks.Functional(apply_fn, params). Got an object of type "
            f"{type(network).__module__}.{type(network).__qualname__}. Wrap a plain JAX function "
            "as px.networks.Functional(apply_fn, params)."
        )
    if adapter.n_params == 0:
        raise ValueError(
            f"The 'network' parameter of {where} must have trainable parameters (floating-point "
            f"arrays). Got a {adapter.kind} network with none. Check that its layers were "
            "created (NNX: built with nnx.Rngs; Equinox: built with a key)."
        )
    return adapter


def _is_subclass_of(obj: Any, package: str) -> bool:
    """Whether any class in ``obj``'s MRO comes from ``package`` (no import of it needed)."""
    return any(
        (cls.__module__ or "").split(".")[: package.count(".") + 1] == package.split(".")
        for cls in type(obj).__mro__
    )


def check_outputs(
    adapter: NetworkAdapter, example: np.ndarray, n_outputs: int, what: str, *, where: str
) -> None:
    """Run the network on ``example`` rows and check it gives ``n_outputs`` values per row."""
    try:
        out = jax.eval_shape(lambda p, x: adapter.apply(p, x), adapter.initial, example)
    except Exception as error:  # the user's code failed on the data: say where
        raise ValueError(
            f"The 'network' parameter of {where} must accept the inputs X: calling the "
            f"{adapter.kind} network on a batch of shape {tuple(example.shape)} failed with "
            f"{type(error).__name__}: {str(error).rstrip('.')}. Check the input shape the "
            "network expects (Equinox networks see one example at a time; posterax vmaps over "
            "the batch)."
        ) from error
    if adapter.has_dropout:  # MC dropout runs it in training mode with a key: check that too
        try:
            jax.eval_shape(
                lambda p, x, k: adapter.apply(p, x, key=k, train=True),
                adapter.initial,
                example,
                jax.random.key(0),
            )
        except Exception as error:
            raise ValueError(
                f"The 'network' parameter of {where} must run its dropout layers with a key from "
                f"posterax: calling the {adapter.kind} network in training mode failed with "
                f"{type(error).__name__}: {error}. Build nnx.Dropout with rngs=nnx.Rngs(...); "
                "give an Equinox module's __call__ a key=None argument passed to its dropout."
            ) from error
    if out.shape[0] != example.shape[0]:
        raise ValueError(
            f"The 'network' parameter of {where} must return one row of outputs per example. "
            f"Got outputs of shape {tuple(out.shape)} for a batch of {example.shape[0]}. Keep "
            "the batch axis first and do not reduce over it."
        )
    if out.shape[1] != n_outputs:
        raise ValueError(
            f"The 'network' parameter of {where} must output {n_outputs} value(s) per example "
            f"({what}). Got outputs of shape {tuple(out.shape)} for a batch of "
            f"{example.shape[0]}. Change the network's last layer to {n_outputs} output(s)."
        )


__all__ = ["NetworkAdapter", "as_network", "check_outputs", "params_digest", "widest_activation"]
