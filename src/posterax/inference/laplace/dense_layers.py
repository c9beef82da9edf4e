"""The dense and convolution layers of any network, found in its computation, for KFAC on
networks of your own.

A dense layer is a ``dot_general`` of one row per example ``x (B, d_in)`` with a matrix leaf
of the network's params (``(d_in, d_out)`` as Flax stores it, or ``(d_out, d_in)`` as
Equinox does), optionally followed by adding a vector leaf (its bias). A convolution layer is
a ``conv_general_dilated`` of the examples' feature maps with a kernel leaf (any layout: Flax's
``HWIO``, Equinox's ``OIHW``; one feature group), optionally followed by its bias; KFAC treats
it as a dense layer applied at each of its ``T`` output positions to the input patch there
(``d_in = kernel area x input channels``), the KFC factorisation of Grosse & Martens (2016)
("KFAC-expand" in Eschenhagen et al. 2023). Such layers are recognised in the jaxpr of
``apply_fn`` whatever the framework wrote them with (Flax NNX, Linen, Equinox, plain JAX), which
is what kfac-jax's graph matching does, kept to the patterns KFAC needs here. Every other leaf
(norm scales, a matrix used twice, a grouped convolution) is reported with the reason it has no
Kronecker factor; the caller gives those the exact GGN diagonal.

:func:`tapped_apply` evaluates the same jaxpr with a zero "tap" added to each layer's output
and returns the layers' inputs (patches for a convolution), so one vjp gives every layer's
output gradients (the built-in MLP's KFAC in :mod:`.kfac` does the same with its own forward
pass).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jcore

Site = tuple[int, ...]  # equation indices from the outer jaxpr into nested ones

_SAME = {"convert_element_type", "copy", "copy_p"}  # a leaf passes through unchanged
_CALLS = {"pjit", "jit", "closed_call", "core_call", "remat", "checkpoint", "custom_jvp_call"}


@dataclasses.dataclass(frozen=True)
class ConvSpec:
    """What a ``conv_general_dilated`` does, to cut its input into patches: the layouts
    (``lhs_spec`` = (batch, feature, spatial...) axes of the input, ``rhs_spec`` = (out, in,
    spatial...) of the kernel, ``out_spec`` of the output) and the window."""

    lhs_spec: tuple[int, ...]
    rhs_spec: tuple[int, ...]
    out_spec: tuple[int, ...]
    filter_shape: tuple[int, ...]
    strides: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    lhs_dilation: tuple[int, ...]
    rhs_dilation: tuple[int, ...]
    out_shape: tuple[int, ...]  # the output's shape at the scanned batch size

    @property
    def positions(self) -> int:
        """``T``: output positions per example (the kernel is shared over them)."""
        return int(np.prod([self.out_shape[a] for a in self.out_spec[2:]], dtype=int))


@dataclasses.dataclass(frozen=True)
class DenseLayer:
    """One dense layer (the ``dot_general`` at ``site``) or convolution (``conv`` set), its
    kernel leaf (index among the network's leaves) and bias leaf (or ``None``)."""

    site: Site
    kernel: int
    bias: int | None
    kernel_out_first: bool  # kernel stored (d_out, d_in) (Equinox) rather than (d_in, d_out)
    input_first: bool  # x is the dot's first operand: output (B, d_out), else (d_out, B)
    d_in: int
    d_out: int
    conv: ConvSpec | None = None

    def tap_shape(self, batch: int) -> tuple[int, ...]:
        """Shape of the zero tap added to the layer's output."""
        return (batch, self.d_out) if self.conv is None else self.conv.out_shape

    def kernel_matrix(self, kernel: Any) -> Any:
        """The kernel leaf (or anything shaped like it) as ``(d_in, d_out)``, rows in the order
        of the layer's inputs (a convolution's patch order: spatial offsets, then channels)."""
        if self.conv is not None:
            spec = self.conv.rhs_spec
            return kernel.transpose((*spec[2:], spec[1], spec[0])).reshape(self.d_in, self.d_out)
        shape = (self.d_out, self.d_in) if self.kernel_out_first else (self.d_in, self.d_out)
        kernel = kernel.reshape(shape)
        return kernel.T if self.kernel_out_first else kernel

    def output_rows(self, values: jax.Array) -> jax.Array:
        """An array shaped like the layer's output as rows ``(B * T, d_out)``, one per example
        and output position (the inputs from :func:`tapped_apply` are already rows per
        example: ``(B, d_in)``, or ``(B, T, d_in)`` patches)."""
        if self.conv is None:
            return values
        spec = self.conv.out_spec
        return values.transpose((spec[0], *spec[2:], spec[1])).reshape(-1, self.d_out)


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


def _vector_like(leaf: Any) -> bool:
    """A bias: one axis, or one axis that is not 1 (Equinox stores a conv bias (out, 1, 1))."""
    return sum(size != 1 for size in leaf.shape) <= 1


def _moved_axis(old: tuple, new: tuple, axis: int) -> int | None:
    """Where ``axis`` of ``old`` is in ``new`` when the reshape only adds or drops axes of
    size 1 (else ``None``)."""
    keep_old = [a for a, size in enumerate(old) if size != 1]
    keep_new = [a for a, size in enumerate(new) if size != 1]
    if old[axis] == 1 or [old[a] for a in keep_old] != [new[a] for a in keep_new]:
        return None
    return keep_new[keep_old.index(axis)]


def _along(shape: tuple, axis: int, size: int) -> bool:
    """A bias operand that varies only along ``axis`` (the convolution's channels)."""
    return shape[axis] == size and all(n == 1 for a, n in enumerate(shape) if a != axis)


def _conv_spec(eqn: Any, tags: dict, batch: int) -> ConvSpec | None:
    """The layer's :class:`ConvSpec` when ``eqn`` convolves the examples with one kernel leaf."""
    lhs, rhs = eqn.invars
    kernel = tags.get(rhs) if _is_var(rhs) else None
    dn = eqn.params["dimension_numbers"]
    if (
        kernel is None
        or kernel[0] != "leaf"
        or kernel[2]  # a transposed kernel: its layout is not the one the equation names
        or (_is_var(lhs) and tags.get(lhs) is not None)
        or eqn.params["feature_group_count"] != 1
        or eqn.params["batch_group_count"] != 1
        or lhs.aval.shape[dn.lhs_spec[0]] != batch
    ):
        return None
    return ConvSpec(
        lhs_spec=tuple(dn.lhs_spec),
        rhs_spec=tuple(dn.rhs_spec),
        out_spec=tuple(dn.out_spec),
        filter_shape=tuple(rhs.aval.shape[a] for a in dn.rhs_spec[2:]),
        strides=tuple(eqn.params["window_strides"]),
        padding=tuple(tuple(p) for p in eqn.params["padding"]),
        lhs_dilation=tuple(eqn.params["lhs_dilation"]),
        rhs_dilation=tuple(eqn.params["rhs_dilation"]),
        out_shape=tuple(eqn.outvars[0].aval.shape),
    )


def conv_patches(x: jax.Array, spec: ConvSpec) -> jax.Array:
    """The input patch at every output position, ``(B, T, d_in)``, in the order of
    :meth:`DenseLayer.kernel_matrix`'s rows (spatial offsets, then input channels)."""
    canonical = jnp.transpose(x, spec.lhs_spec)  # (B, C, spatial...)
    patches = jax.lax.conv_general_dilated_patches(
        canonical,
        spec.filter_shape,
        spec.strides,
        spec.padding,
        lhs_dilation=spec.lhs_dilation,
        rhs_dilation=spec.rhs_dilation,
    )  # (B, C * K, out spatial...), features ordered (channel, offset)
    B, channels, K = x.shape[spec.lhs_spec[0]], x.shape[spec.lhs_spec[1]], patches.shape[1]
    patches = jnp.moveaxis(patches, 1, -1).reshape(B, -1, channels, K // channels)
    return jnp.swapaxes(patches, 2, 3).reshape(B, patches.shape[1], K)


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
                name in ("reshape", "squeeze")
                and first is not None
                and first[0] == "conv"
                and (
                    axis := _moved_axis(
                        eqn.invars[0].aval.shape, eqn.outvars[0].aval.shape, first[2]
                    )
                )
                is not None
            ):  # Equinox's vmapped convolution: (B, 1, O, ...) -> (B, O, ...)
                tags[eqn.outvars[0]] = ("conv", first[1], axis)
            elif (
                name in ("reshape", "broadcast_in_dim")
                and first is not None
                and first[0] == "leaf"
                and _vector_like(leaves[first[1]])
            ):
                tags[eqn.outvars[0]] = ("bias", first[1])
            elif name == "conv_general_dilated" and (spec := _conv_spec(eqn, tags, batch)):
                kernel = tagged[1]
                uses[kernel[1]].append(f"dense:{site}")
                d_out = eqn.invars[1].aval.shape[spec.rhs_spec[0]]
                dots[site] = {
                    "kernel": kernel[1],
                    "kernel_out_first": False,
                    "input_first": True,
                    "d_in": leaves[kernel[1]].size // d_out,
                    "d_out": d_out,
                    "bias": [],
                    "conv": spec,
                }
                tags[eqn.outvars[0]] = ("conv", site, spec.out_spec[1])  # its channel axis
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
                dot = next((t for t in tagged if t is not None and t[0] in ("dot", "conv")), None)
                bias = next(
                    (
                        t
                        for t in tagged
                        if t is not None
                        and (t[0] == "bias" or (t[0] == "leaf" and _vector_like(leaves[t[1]])))
                    ),
                    None,
                )
                if dot is not None and bias is not None:
                    info = dots[dot[1]]
                    fits = (
                        leaves[bias[1]].shape == (info["d_out"],)
                        if dot[0] == "dot"
                        else _along(
                            eqn.invars[tagged.index(bias)].aval.shape, dot[2], info["d_out"]
                        )
                    )
                    if fits:
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
                conv=info.get("conv"),
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
        return (
            "a convolution kernel that is grouped (depthwise) or shared: KFAC factorises a "
            "convolution with one feature group, used once"
        )
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
    """``apply(leaves, X)`` with ``taps[i]`` (shaped ``layers[i].tap_shape(B)``) added to layer
    ``i``'s output; also returns each layer's input ``(B, d_in)`` (patches ``(B, T, d_in)`` for a
    convolution)."""
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
                    if layer.conv is not None:
                        inputs[i] = conv_patches(x, layer.conv)
                    else:
                        contract = eqn.params["dimension_numbers"][0][0 if layer.input_first else 1]
                        inputs[i] = x if contract[0] == 1 else x.T
                    tap = taps[i] if layer.input_first else taps[i].T
                    outs = [outs[0] + tap.astype(outs[0].dtype)]
            for v, value in zip(eqn.outvars, outs, strict=True):
                env[v] = value
        return [read(v) for v in jaxpr.outvars]

    flat = jax.tree_util.tree_leaves((leaves, X))
    (out,) = run(closed.jaxpr, list(closed.consts), flat, ())
    return out, inputs


__all__ = [
    "ConvSpec",
    "DenseLayer",
    "DenseScan",
    "conv_patches",
    "find_dense_layers",
    "tapped_apply",
]
