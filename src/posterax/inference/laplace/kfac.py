"""Kronecker-factored curvature (KFAC) for dense layers, and convolutions of networks of your own.

For a dense layer ``s = x W + b`` write ``W~ = [W; b]`` (``(d_in + 1, d_out)``, the bias folded
in as an extra input column ``x~ = [x, 1]``). Its GGN block, in row-major ``vec(W~)`` order, is
``sum_n sum_c (x~_n x~_n^T) ⊗ (g_nc g_nc^T)`` with ``g_nc = ds_n/d f^T L_n[:, c]`` the output
gradient of column ``c`` of the output-space factor. KFAC approximates it by ``A ⊗ G`` with
``A = sum_n x~ x~^T`` and ``G = (1/N) sum_n sum_c g g^T``. It is exact when ``g_n g_n^T`` does not
depend on ``n``: e.g. a single dense layer (linear model) under a homoscedastic Gaussian, for any
number of outputs and data points.

Layer inputs and output gradients come from one "tapped" forward pass: zero perturbations are
added to every pre-activation and a vjp with respect to them gives ``g`` per example. No
per-example parameter Jacobian is formed. The same quantities give the *exact* GGN diagonal as
``(x~^2)^T (g^2)``.

posterax's :class:`~posterax.models.MLP` heads are tapped by their own forward pass
(:func:`mlp_factors`); any other network by its dense and convolution layers found in its
jaxpr (:mod:`.dense_layers`, :func:`network_factors`; a convolution is a dense layer on its
input patches, one row per output position: KFC, Grosse & Martens 2016). Parameters in no
such layer (layer-norm scales, grouped convolutions) get diagonal blocks (the exact GGN
diagonal).
"""

from __future__ import annotations

import dataclasses
import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from posterax.inference.devices import constrain_rows
from posterax.inference.laplace.dense_layers import find_dense_layers, tapped_apply
from posterax.inference.laplace.output_hessian import output_factor, unit_noise
from posterax.models.mlp import ACTIVATIONS, MLP, ClassificationHead, RegressionHead


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class KronBlock:
    """``A ⊗ G`` over one layer's ``W~``, stored as eigendecompositions; ``pos`` gives the
    selected-order position of each entry of ``W~`` in row-major order."""

    eig_a: jax.Array
    vec_a: jax.Array
    eig_g: jax.Array
    vec_g: jax.Array
    pos: jax.Array

    def dense(self) -> jax.Array:
        A = (self.vec_a * self.eig_a) @ self.vec_a.T
        G = (self.vec_g * self.eig_g) @ self.vec_g.T
        return jnp.kron(A, G)

    def eig_outer(self) -> jax.Array:
        """Eigenvalues of ``A ⊗ G`` as a ``(d_in + 1, d_out)`` matrix."""
        return self.eig_a[:, None] * self.eig_g[None, :]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class KronCurvature:
    """KFAC blocks plus a diagonal ``rest_h`` at selected positions ``rest_pos``."""

    blocks: tuple[KronBlock, ...]
    rest_h: jax.Array
    rest_pos: jax.Array

    def to_dense(self) -> jax.Array:
        size = sum(int(b.pos.shape[0]) for b in self.blocks) + int(self.rest_pos.shape[0])
        H = jnp.zeros((size, size), self.rest_h.dtype)
        for block in self.blocks:
            H = H.at[block.pos[:, None], block.pos[None, :]].set(block.dense())
        return H.at[self.rest_pos, self.rest_pos].set(self.rest_h)

    def diagonal(self) -> jax.Array:
        return jnp.diag(self.to_dense())


def tapped_network(apply_fn) -> MLP | None:
    """The MLP inside a posterax regression/classification head, else ``None``."""
    if isinstance(apply_fn, RegressionHead | ClassificationHead) and isinstance(
        apply_fn.network, MLP
    ):
        return apply_fn.network
    return None


def _tapped_forward(network: MLP, net, X, taps):
    act = ACTIVATIONS[network.activation]
    h, inputs = X, []
    for i, layer in enumerate(net):
        inputs.append(h)
        s = h @ layer["w"] + layer["b"] + taps[i]
        h = s if i == len(net) - 1 else act(s)
    return h, inputs


@functools.partial(
    jax.jit, static_argnames=("network", "likelihood", "curvature", "squeeze", "mesh")
)
def mlp_factors(net, extras, Xb, yb, wb, *, network, likelihood, curvature, squeeze, mesh=None):
    """Per layer: ``A = sum x~ x~^T``, ``G = sum g g^T`` (not yet divided by N) and the exact
    GGN diagonal of ``W~``, accumulated over batches."""
    params0 = unit_noise(likelihood, {"net": net, **extras})
    dtype = Xb.dtype

    def body(acc, batch):
        X, y, w = constrain_rows(mesh, batch)  # data parallel: rows over the devices
        taps = [jnp.zeros((X.shape[0], layer["b"].shape[0]), dtype) for layer in net]
        f, vjp, inputs = jax.vjp(lambda t: _tapped_forward(network, net, X, t), taps, has_aux=True)
        L = output_factor(likelihood, params0, f, y, curvature, squeeze) * w[:, None, None]
        grads = jax.vmap(lambda col: vjp(col)[0], in_axes=2)(L)  # per layer (C, B, d_out)
        out = []
        for (A, G, D), x, g in zip(acc, inputs, grads, strict=True):
            xt = jnp.concatenate([x, jnp.ones((x.shape[0], 1), dtype)], axis=1) * w[:, None]
            out.append(
                (
                    A + xt.T @ xt,
                    G + jnp.einsum("cbi,cbj->ij", g, g),
                    D + jnp.einsum("bi,cbj->ij", xt**2, g**2),
                )
            )
        return out, None

    init = [
        (
            jnp.zeros((layer["w"].shape[0] + 1,) * 2, dtype),
            jnp.zeros((layer["w"].shape[1],) * 2, dtype),
            jnp.zeros((layer["w"].shape[0] + 1, layer["w"].shape[1]), dtype),
        )
        for layer in net
    ]
    return jax.lax.scan(body, init, (Xb, yb, wb))[0]


@functools.partial(
    jax.jit,
    static_argnames=("apply_fn", "treedef", "layers", "likelihood", "curvature", "squeeze", "mesh"),
)
def network_factors(
    leaves, extras, Xb, yb, wb, *, apply_fn, treedef, layers, likelihood, curvature, squeeze, mesh
):
    """:func:`mlp_factors` for any network: ``A = sum x~ x~^T`` (``x~ = [x, 1]`` when the layer
    has a bias) and ``G = sum g g^T`` for each layer in ``layers``
    (:func:`~posterax.inference.laplace.dense_layers.find_dense_layers`). A convolution counts
    each of its ``T`` output positions as a row (its input patch ``x``, its output gradient
    ``g``) and divides ``G`` by ``T``: KFC's ``A ⊗ G`` then sums over positions like a dense
    layer's over examples (Grosse & Martens 2016)."""
    params0 = unit_noise(
        likelihood, {"net": jax.tree_util.tree_unflatten(treedef, leaves), **extras}
    )
    dtype = Xb.dtype

    def apply(ls, X):
        return apply_fn({**params0, "net": jax.tree_util.tree_unflatten(treedef, ls)}, X)

    def outputs(taps, X):
        out, inputs = tapped_apply(apply, layers, leaves, X, taps)
        return (out[:, None] if out.ndim == 1 else out), inputs

    def body(acc, batch):
        X, y, w = constrain_rows(mesh, batch)
        taps = [jnp.zeros(layer.tap_shape(X.shape[0]), dtype) for layer in layers]
        f, vjp, inputs = jax.vjp(lambda t: outputs(t, X), taps, has_aux=True)
        L = output_factor(likelihood, params0, f, y, curvature, squeeze) * w[:, None, None]
        grads = jax.vmap(lambda col: vjp(col)[0], in_axes=2)(L)  # per layer (C, *tap shape)
        out = []
        for (A, G), layer, x, g in zip(acc, layers, inputs, grads, strict=True):
            positions = 1 if layer.conv is None else layer.conv.positions
            x = x.reshape(-1, x.shape[-1]).astype(dtype)  # (B * T, d_in)
            if layer.bias is not None:
                x = jnp.concatenate([x, jnp.ones((x.shape[0], 1), dtype)], axis=1)
            x = x * jnp.repeat(w, positions)[:, None]
            g = jax.vmap(layer.output_rows)(g)  # (C, B * T, d_out)
            out.append((A + x.T @ x, G + jnp.einsum("cbi,cbj->ij", g, g) / positions))
        return out, None

    init = [
        (
            jnp.zeros((layer.d_in + (layer.bias is not None),) * 2, dtype),
            jnp.zeros((layer.d_out, layer.d_out), dtype),
        )
        for layer in layers
    ]
    return jax.lax.scan(body, init, (Xb, yb, wb))[0]


def dense_layer_positions(positions, layers) -> list[np.ndarray]:
    """Flat positions of each layer's ``W~ = [W; b]`` ``(d_in (+1), d_out)``, row-major, from
    the leaves' positions (a kernel stored ``(d_out, d_in)`` is transposed; a convolution
    kernel's rows follow its patches: :meth:`DenseLayer.kernel_matrix`)."""
    leaves = jax.tree_util.tree_leaves(positions)
    out = []
    for layer in layers:
        kernel = layer.kernel_matrix(
            np.asarray(leaves[layer.kernel]).reshape(leaves[layer.kernel].shape)
        )
        if layer.bias is not None:
            bias = np.asarray(leaves[layer.bias]).reshape(1, -1)
            kernel = np.concatenate([kernel, bias], axis=0)
        out.append(kernel)
    return out


def kron_with_rest(factors, layer_pos, selected_of, n_data, rest_diag, dtype) -> KronCurvature:
    """KFAC blocks for the layers selected whole; every other selected weight gets its entry of
    ``rest_diag()`` (the exact GGN diagonal over the selected weights, computed only if needed)."""
    blocks, covered = [], []
    for (A, G, *_), flat_pos in zip(factors, layer_pos, strict=True):
        pos = selected_of[np.asarray(flat_pos).ravel()]
        if not np.all(pos >= 0):
            continue  # not (wholly) selected: its selected entries join the diagonal rest
        eig_a, vec_a = jnp.linalg.eigh(A)
        eig_g, vec_g = jnp.linalg.eigh(G / n_data)
        blocks.append(
            KronBlock(jnp.clip(eig_a, 0.0), vec_a, jnp.clip(eig_g, 0.0), vec_g, jnp.asarray(pos))
        )
        covered.append(pos)
    n_selected = int(np.sum(selected_of >= 0))
    rest = np.setdiff1d(np.arange(n_selected), np.concatenate(covered) if covered else [])
    rest_h = rest_diag()[rest] if rest.size else jnp.zeros(0, dtype)
    return KronCurvature(tuple(blocks), rest_h, jnp.asarray(rest, dtype=int))


def network_kron(
    net, extras, Xb, yb, wb, subset, X, apply_fn, likelihood, curvature, squeeze, mesh, rest_diag,
    where,
):  # fmt: skip
    """KFAC over the dense layers found in a network of the user's (``find_dense_layers``),
    the exact GGN diagonal for its other weights; also returns ``{leaf path: why}`` for the
    selected weights outside any Kronecker block (warned about, and in the posterior's info)."""
    leaves, treedef = jax.tree_util.tree_flatten(net)
    params0 = {"net": net, **extras}

    def apply(ls, Xs):
        return apply_fn({**params0, "net": jax.tree_util.tree_unflatten(treedef, ls)}, Xs)

    scan = find_dense_layers(apply, leaves, Xb[0])
    selected_of = subset.selected_position_of()
    positions = jax.tree_util.tree_leaves(subset.positions())
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(net)[0]]
    fallback = {
        paths[leaf]: why
        for leaf, why in scan.fallback
        if np.any(selected_of[np.asarray(positions[leaf]).ravel()] >= 0)
    }
    factors = network_factors(
        leaves, extras, Xb, yb, wb, apply_fn=apply_fn, treedef=treedef, layers=scan.layers,
        likelihood=likelihood, curvature=curvature, squeeze=squeeze, mesh=mesh,
    )  # fmt: skip
    layer_pos = dense_layer_positions(subset.positions(), scan.layers)
    curv = kron_with_rest(factors, layer_pos, selected_of, X.shape[0], rest_diag, X.dtype)
    if fallback:
        listed = "; ".join(f"{path}: {why}" for path, why in fallback.items())
        warnings.warn(
            f"{where}: hessian_structure='kron' factorises {len(curv.blocks)} dense or "
            f"convolution layer(s) of this network; these weights have no Kronecker factor and "
            f"get the exact GGN diagonal instead: {listed}. (Also in "
            "posterior.info['kron_fallback'].)",
            UserWarning,
            stacklevel=4,
        )
    return curv, fallback


def layer_positions(positions) -> list[np.ndarray]:
    """Flat positions of each layer's ``W~ = [W; b]`` (row-major)."""
    return [np.concatenate([p["w"], p["b"][None]], axis=0) for p in positions]


def kron_from_factors(factors, layer_pos, selected_of, n_data, n_selected, dtype):
    """Assemble a :class:`KronCurvature` from :func:`mlp_factors` output (layers not selected
    are dropped)."""
    from posterax.inference.laplace.curvature import positions_in

    blocks = []
    for (A, G, _), flat_pos in zip(factors, layer_pos, strict=True):
        pos = positions_in(selected_of, flat_pos)
        if pos is None:
            continue
        eig_a, vec_a = jnp.linalg.eigh(A)
        eig_g, vec_g = jnp.linalg.eigh(G / n_data)
        blocks.append(
            KronBlock(jnp.clip(eig_a, 0.0), vec_a, jnp.clip(eig_g, 0.0), vec_g, jnp.asarray(pos))
        )
    covered = np.concatenate([np.asarray(b.pos) for b in blocks]) if blocks else np.zeros(0, int)
    if covered.size != n_selected:
        raise AssertionError("KFAC blocks do not cover the selected weights")  # pragma: no cover
    return KronCurvature(tuple(blocks), jnp.zeros(0, dtype), jnp.zeros(0, int))


def diag_from_factors(factors, layer_pos, index, n_all, dtype) -> jax.Array:
    """The exact GGN diagonal over the selected weights from :func:`mlp_factors` output."""
    diag = jnp.zeros(n_all, dtype)
    for (_, _, D), flat_pos in zip(factors, layer_pos, strict=True):
        diag = diag.at[flat_pos.ravel()].set(D.ravel())
    return diag[index]


__all__ = [
    "KronBlock",
    "KronCurvature",
    "dense_layer_positions",
    "diag_from_factors",
    "kron_from_factors",
    "kron_with_rest",
    "layer_positions",
    "mlp_factors",
    "network_factors",
    "network_kron",
    "tapped_network",
]
