"""The dense layers of any network, found in its computation, for KFAC on networks of your own.

A dense layer is a ``dot_general`` of one row per example ``x (B, d_in)`` with a matrix leaf
of the network's params (``(d_in, d_out)`` as Flax stores it, or ``(d_out, d_in)`` as
Equinox does), optionally followed by adding a vector leaf (its bias). Such layers are
recognised in the jaxpr of ``apply_fn`` whatever the framework wrote them with (Flax NNX,
Linen, Equinox, plain JAX), which is what kfac-jax's graph matching does, kept to the one
pattern KFAC needs here. Every other leaf (convolution kernels, norm scales, a matrix used
twice) is reported with the reason it has no Kronecker factor; the caller gives those the
exact GGN diagonal.

:func:`tapped_apply` evaluates the same jaxpr with a zero "tap" added to each dense layer's
output and returns the layers' inputs, so one vjp gives every layer's output gradients (the
built-in MLP's KFAC in :mod:`.kfac` does the same with its own forward pass).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
from jax.extend import core as jcore

Site = tuple[int, ...]  # equation indices from the outer jaxpr into nested ones

_SAME = {"convert_element_type", "copy", "copy_p"}  # a leaf passes through unchanged
_CALLS = {"pjit", "jit", "closed_call", "core_call", "remat", "checkpoint", "custom_jvp_call"}


@dataclasses.dataclass(frozen=True)
class DenseLayer:
    """One dense layer: the ``dot_general`` at ``site``, its kernel leaf (index among the
    network's leaves) and bias leaf (or ``None``)."""

    site: Site
    kernel: int
    bias: int | None
    kernel_out_first: bool  # kernel stored (d_out, d_in) (Equinox) rather than (d_in, d_out)
    input_first: bool  # x is the dot's first operand: output (B, d_out), else (d_out, B)
    d_in: int
    d_out: int


@dataclasses.dataclass(frozen=True)
class DenseScan:
    """The dense layers found and, for every other leaf, why it has no Kronecker factor."""

    layers: tuple[DenseLayer, ...]
    fallback: tuple[tuple[int, str], ...]  # (leaf index, reason)


def _sub_jaxpr(eqn: Any) -> Any:
    """The (closed) jaxpr a call-like equation runs, if its inputs map one to one."""
    if eqn.primitive.name not in _CALLS:
        return None
    for value in eqn.params.values():
        inner = getattr(value, "jaxpr", value)
        if hasattr(inner, "eqns") and len(inner.invars) == len(eqn.invars):
            return value
    return None


def _open(jaxpr: Any) -> tuple[Any, list[Any]]:
    """``(jaxpr, consts)`` of a closed or open jaxpr."""
    if hasattr(jaxpr, "consts"):
        return jaxpr.jaxpr, list(jaxpr.consts)
    return jaxpr, []


def _is_var(v: Any) -> bool:
    return not isinstance(v, jcore.Literal)


def _dense_operands(eqn: Any, tags: dict, batch: int):
    """``(kernel tag, x position)`` when ``eqn`` is a dense layer on one row per example."""
    (contract_l, contract_r), (batch_l, batch_r) = eqn.params["dimension_numbers"]
    if batch_l or batch_r or len(contract_l) != 1 or len(contract_r) != 1:
        return None
    ops = list(eqn.invars)
    kinds = [tags.get(v) if _is_var(v) else None for v in ops]
    leaf_at = [i for i, t in enumerate(kinds) if t is not None and t[0] == "leaf"]
    if len(leaf_at) != 1 or kinds[1 - leaf_at[0]] is not None:
        return None
    k, x_at = leaf_at[0], 1 - leaf_at[0]
    x_aval, k_aval = ops[x_at].aval, ops[k].aval
    if len(x_aval.shape) != 2 or len(k_aval.shape) != 2:
        return None
    x_contract = (contract_l, contract_r)[x_at][0]
    if x_aval.shape[1 - x_contract] != batch:  # not one row per example
        return None
    return kinds[k], x_at, x_contract, (contract_l, contract_r)[k][0]


def find_dense_layers(
    apply: Callable[[list[jax.Array], jax.Array], jax.Array],
    leaves: list[jax.Array],
    X: jax.Array,
) -> DenseScan:
    """Scan ``apply(leaves, X)`` for dense layers over ``leaves``."""
    closed = jax.make_jaxpr(apply)(leaves, X)
    jaxpr = closed.jaxpr
    batch = X.shape[0]
    tags: dict[Any, tuple] = {v: ("leaf", i, False) for i, v in enumerate(jaxpr.invars[:-1])}
    uses: dict[int, list[str]] = {i: [] for i in range(len(leaves))}
    dots: dict[Site, dict[str, Any]] = {}

    def use(v: Any, how: str) -> None:
        tag = tags.get(v) if _is_var(v) else None
        if tag is not None and tag[0] in ("leaf", "bias"):
            uses[tag[1]].append(how)

    def scan(inner: Any, prefix: Site) -> None:
        for index, eqn in enumerate(inner.eqns):
            site, name = (*prefix, index), eqn.primitive.name
            tagged = [tags.get(v) if _is_var(v) else None for v in eqn.invars]
            if not any(t is not None for t in tagged):
                continue
            sub = _sub_jaxpr(eqn)
            if sub is not None:
                body, _ = _open(sub)
                for outer, v in zip(eqn.invars, body.invars, strict=True):
                    if _is_var(outer) and outer in tags:
                        tags[v] = tags[outer]
                scan(body, site)
                for v, outer in zip(body.outvars, eqn.outvars, strict=True):
                    if _is_var(v) and v in tags:
                        tags[outer] = tags[v]
                continue
            first = tagged[0]
            if name in _SAME and first is not None:
                tags[eqn.outvars[0]] = first
            elif name == "transpose" and first is not None and first[0] in ("leaf", "dot"):
                tags[eqn.outvars[0]] = (first[0], first[1], not first[2])
            elif (
                name in ("reshape", "broadcast_in_dim")
                and first is not None
                and first[0] == "leaf"
                and len(leaves[first[1]].shape) == 1
            ):
                tags[eqn.outvars[0]] = ("bias", first[1])
            elif name == "dot_general" and (found := _dense_operands(eqn, tags, batch)):
                kernel, x_at, x_contract, k_contract = found
                if kernel[2]:  # the dot reads the transposed kernel
                    k_contract = 1 - k_contract
                uses[kernel[1]].append(f"dense:{site}")
                d_in = eqn.invars[x_at].aval.shape[x_contract]
                dots[site] = {
                    "kernel": kernel[1],
                    "kernel_out_first": k_contract == 1,
                    "input_first": x_at == 0,
                    "d_in": d_in,
                    "d_out": leaves[kernel[1]].size // d_in,
                    "bias": [],
                }
                tags[eqn.outvars[0]] = ("dot", site, False)
            elif name in ("add", "add_any") and len(tagged) == 2:
                dot = next((t for t in tagged if t is not None and t[0] == "dot"), None)
                bias = next(
                    (
                        t
                        for t in tagged
                        if t is not None
                        and (t[0] == "bias" or (t[0] == "leaf" and leaves[t[1]].ndim == 1))
                    ),
                    None,
                )
                if dot is not None and bias is not None:
                    info = dots[dot[1]]
                    if leaves[bias[1]].shape == (info["d_out"],):
                        info["bias"].append(bias[1])
                        uses[bias[1]].append(f"bias:{dot[1]}")
                        continue
                for v in eqn.invars:
                    use(v, name)
            else:
                for v in eqn.invars:
                    use(v, name)

    scan(jaxpr, ())
    layers, fallback, covered = [], [], set()
    for site, info in dots.items():
        kernel = info["kernel"]
        if uses[kernel] != [f"dense:{site}"]:
            continue
        bias = info["bias"][0] if len(info["bias"]) == 1 else None
        if bias is not None and uses[bias] != [f"bias:{site}"]:
            bias = None
        layers.append(
            DenseLayer(
                site=site,
                kernel=kernel,
                bias=bias,
                kernel_out_first=info["kernel_out_first"],
                input_first=info["input_first"],
                d_in=info["d_in"],
                d_out=info["d_out"],
            )
        )
        covered.update({kernel} if bias is None else {kernel, bias})
    for leaf, how in uses.items():
        if leaf not in covered:
            fallback.append((leaf, _reason(how, leaves[leaf].ndim)))
    return DenseScan(tuple(layers), tuple(fallback))


def _reason(uses: list[str], ndim: int) -> str:
    kinds = sorted({u.split(":")[0] for u in uses})
    if not uses:
        return "not used by the network's outputs"
    if "conv_general_dilated" in kinds:
        return "a convolution kernel: no Kronecker factorisation for convolutions yet"
    if kinds == ["dense"] and len(uses) > 1:
        return f"shared by {len(uses)} dense layers"
    if kinds == ["bias"]:
        return "the bias of a layer that has no Kronecker factor"
    if ndim >= 2 and "dense" in kinds:
        return "a matrix used by more than its dense layer (" + ", ".join(kinds) + ")"
    return "not a dense layer's weight (used by " + ", ".join(kinds) + ")"


def tapped_apply(
    apply: Callable[[list[jax.Array], jax.Array], jax.Array],
    layers: tuple[DenseLayer, ...],
    leaves: list[jax.Array],
    X: jax.Array,
    taps: list[jax.Array],
) -> tuple[jax.Array, list[jax.Array]]:
    """``apply(leaves, X)`` with ``taps[i]`` ``(B, d_out)`` added to dense layer ``i``'s output;
    also returns each layer's input ``(B, d_in)``."""
    closed = jax.make_jaxpr(apply)(leaves, X)
    by_site = {layer.site: i for i, layer in enumerate(layers)}
    prefixes = {layer.site[:k] for layer in layers for k in range(1, len(layer.site))}
    inputs: list[Any] = [None] * len(layers)

    def run(jaxpr: Any, consts: list[Any], args: list[Any], prefix: Site) -> list[Any]:
        env: dict[Any, Any] = {}

        def read(v: Any) -> Any:
            return v.val if isinstance(v, jcore.Literal) else env[v]

        for v, value in zip(jaxpr.constvars, consts, strict=True):
            env[v] = value
        for v, value in zip(jaxpr.invars, args, strict=True):
            env[v] = value
        for index, eqn in enumerate(jaxpr.eqns):
            site = (*prefix, index)
            values = [read(v) for v in eqn.invars]
            if site in prefixes:  # a dense layer inside: run the call's body here
                body, body_consts = _open(_sub_jaxpr(eqn))
                outs = run(body, body_consts, values, site)
            else:
                params = eqn.primitive.get_bind_params(eqn.params)
                outs = eqn.primitive.bind(*values, **params)
                if not eqn.primitive.multiple_results:
                    outs = [outs]
                if site in by_site:
                    i = by_site[site]
                    layer = layers[i]
                    x = values[0] if layer.input_first else values[1]
                    x_contract = eqn.params["dimension_numbers"][0][0 if layer.input_first else 1]
                    inputs[i] = x if x_contract[0] == 1 else x.T
                    tap = taps[i] if layer.input_first else taps[i].T
                    outs = [outs[0] + tap.astype(outs[0].dtype)]
            for v, value in zip(eqn.outvars, outs, strict=True):
                env[v] = value
        return [read(v) for v in jaxpr.outvars]

    flat = jax.tree_util.tree_leaves((leaves, X))
    (out,) = run(closed.jaxpr, list(closed.consts), flat, ())
    return out, inputs


__all__ = ["DenseLayer", "DenseScan", "find_dense_layers", "tapped_apply"]
