"""KFAC for convolutions (KFC, Grosse & Martens 2016): a convolution is a dense layer applied to
the input patch at each output position. Checked in three steps, each against something
computed another way: the patches times the kernel matrix are the convolution itself; where
the factorisation is exact the Kronecker curvature equals the GGN from dense per-example
Jacobians; on a small CNN it is close to that GGN, and so is its marginal likelihood."""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.flatten_util import ravel_pytree

from posterax.inference.laplace import laplace_state, log_marginal_likelihood
from posterax.inference.laplace.dense_layers import find_dense_layers, tapped_apply
from posterax.models import (
    CategoricalLikelihood,
    ClassificationHead,
    GaussianLikelihood,
    RegressionHead,
)
from posterax.networks import as_network


def _adapter(module, X):
    return as_network(module, np.asarray(X[:2]), jax.random.key(0), where="test")


def _leaves_apply(adapter):
    leaves, treedef = jax.tree_util.tree_flatten(adapter.initial)

    def apply(ls, X):
        return adapter.apply(jax.tree_util.tree_unflatten(treedef, ls), X)

    return leaves, apply


class _NNXConv(nnx.Module):
    def __init__(self, c_in, c_out, kernel, strides, padding, rngs, dilation=1):
        self.conv = nnx.Conv(
            c_in, c_out, kernel, strides=strides, padding=padding,
            kernel_dilation=dilation, rngs=rngs,
        )  # fmt: skip

    def __call__(self, x):
        return self.conv(x)


@pytest.mark.parametrize(
    "layout",
    ["nnx-2d-same-stride2", "nnx-1d-stride2-pad1", "nnx-2d-dilated", "equinox-2d-pad1"],
)
def test_patches_times_the_kernel_matrix_is_the_convolution(layout):
    rng = np.random.default_rng(0)
    if layout.startswith("equinox"):
        X = rng.normal(size=(4, 3, 7, 6)).astype(np.float32)  # (B, C, H, W)
        module = eqx.nn.Conv2d(3, 5, (3, 2), stride=(2, 1), padding=1, key=jax.random.key(1))
    elif layout == "nnx-1d-stride2-pad1":  # MNIST-1D's CNN layer
        X = rng.normal(size=(4, 40, 2)).astype(np.float32)
        module = _NNXConv(2, 5, (5,), 2, ((1, 1),), nnx.Rngs(1))
    elif layout == "nnx-2d-dilated":
        X = rng.normal(size=(4, 8, 8, 3)).astype(np.float32)
        module = _NNXConv(3, 5, (3, 3), 1, "VALID", nnx.Rngs(1), dilation=2)
    else:
        X = rng.normal(size=(4, 7, 6, 3)).astype(np.float32)
        module = _NNXConv(3, 5, (3, 2), 2, "SAME", nnx.Rngs(1))
    adapter = _adapter(module, X)
    leaves, apply = _leaves_apply(adapter)
    scan = find_dense_layers(apply, leaves, jnp.asarray(X))
    (layer,) = scan.layers
    assert scan.fallback == () and layer.conv is not None and layer.bias is not None
    taps = [jnp.zeros(layer.tap_shape(X.shape[0]))]
    _, (patches,) = tapped_apply(apply, scan.layers, leaves, jnp.asarray(X), taps)
    kernel = layer.kernel_matrix(leaves[layer.kernel])
    rebuilt = patches.reshape(-1, layer.d_in) @ kernel + leaves[layer.bias].reshape(-1)
    conv = jax.vmap(module)(X) if layout.startswith("equinox") else module(X)
    np.testing.assert_allclose(rebuilt, layer.output_rows(conv), rtol=1e-5, atol=1e-5)
    assert patches.shape == (X.shape[0], layer.conv.positions, layer.d_in)


def _brute_ggn(model, params, X, y):
    """sum_n J_n^T Lambda_n J_n with dense per-example Jacobians (unit noise if Gaussian)."""
    flat, unravel = ravel_pytree(params["net"])
    unit = {**params, "sigma": jnp.float32(1.0)} if "sigma" in params else params

    def f(theta, x):
        return jnp.atleast_1d(model.apply_fn({**params, "net": unravel(theta)}, x[None])[0])

    def nll(out, y_n):
        out = out[0] if "sigma" in params else out
        return -model.likelihood.log_prob(unit, out[None], y_n[None])[0]

    @jax.jit
    def one(x, y_n):
        J = jax.jacobian(f)(flat, x)
        return J.T @ jax.hessian(nll)(f(flat, x), y_n) @ J

    return np.asarray(jnp.sum(jax.vmap(one)(jnp.asarray(X), jnp.asarray(y)), axis=0))


def _kron_dense(model, params, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every weight has a Kronecker factor: no fallback
        state, info = laplace_state(
            model.apply_fn, model.likelihood, params, X, y, hessian_structure="kron",
            batch_size=7, **kw,
        )  # fmt: skip
    assert info["kron_fallback"] == {}
    return state, np.asarray(state.curvature.to_dense())


class _WholeImageConv(nnx.Module):
    """One output position: the kernel covers the whole (3, 3, 2) image."""

    def __init__(self, rngs):
        self.conv = nnx.Conv(2, 1, (3, 3), padding="VALID", rngs=rngs)

    def __call__(self, x):
        return self.conv(x).reshape(x.shape[0], 1)


class _SumPooledConv(nnx.Module):
    """Four non-overlapping positions (kernel 3, stride 3 over length 12), summed."""

    def __init__(self, rngs):
        self.conv = nnx.Conv(2, 1, (3,), strides=3, padding="VALID", use_bias=False, rngs=rngs)

    def __call__(self, x):
        return self.conv(x).sum(axis=(1, 2))[:, None]


@pytest.mark.parametrize("case", ["one-position-with-bias", "one-nonzero-patch-of-four"])
def test_kfc_equals_the_exact_ggn_where_the_factorisation_is_exact(case):
    """A convolution under a Gaussian likelihood is exact (1) at one output position, where it
    is a dense layer (the patch order over 2 channels must match the kernel's), and (2) when
    each example's input is zero outside one of four positions: then the GGN is
    ``sum_n a a^T`` over the nonzero patches, which KFC's ``A`` is and ``G = 1`` only if the
    output gradients are averaged over the four positions."""
    rng = np.random.default_rng(1)
    if case == "one-position-with-bias":
        X = rng.normal(size=(30, 3, 3, 2)).astype(np.float32)
        module = _WholeImageConv(nnx.Rngs(0))
    else:
        X = np.zeros((30, 12, 2), np.float32)
        for n, block in enumerate(rng.integers(0, 4, size=30)):
            X[n, 3 * block : 3 * block + 3] = rng.normal(size=(3, 2))
        module = _SumPooledConv(nnx.Rngs(0))
    y = rng.normal(size=30).astype(np.float32)
    adapter = _adapter(module, X)
    model_head = RegressionHead(adapter)
    params = {"net": adapter.initial, "sigma": jnp.float32(0.5)}

    class Model:  # the pieces laplace_state and the brute force read
        apply_fn, likelihood = model_head, GaussianLikelihood()

    _, kron = _kron_dense(Model, params, jnp.asarray(X), jnp.asarray(y))
    exact = _brute_ggn(Model, params, X, y)
    np.testing.assert_allclose(kron, exact, rtol=1e-4, atol=1e-4 * np.abs(exact).max())


class _TinyCNN(nnx.Module):
    def __init__(self, rngs):
        self.conv1 = nnx.Conv(1, 4, (3, 3), padding="SAME", rngs=rngs)
        self.conv2 = nnx.Conv(4, 4, (3, 3), strides=2, padding="SAME", rngs=rngs)
        self.dense = nnx.Linear(4 * 3 * 3, 3, rngs=rngs)

    def __call__(self, x):
        h = jax.nn.relu(self.conv1(x))
        h = jax.nn.relu(self.conv2(h))
        return self.dense(h.reshape(x.shape[0], -1))


class _EqxTinyCNN(eqx.Module):
    conv1: eqx.nn.Conv2d
    conv2: eqx.nn.Conv2d
    dense: eqx.nn.Linear

    def __init__(self, key):
        k1, k2, k3 = jax.random.split(key, 3)
        self.conv1 = eqx.nn.Conv2d(1, 4, 3, padding=1, key=k1)
        self.conv2 = eqx.nn.Conv2d(4, 4, 3, stride=2, padding=1, key=k2)
        self.dense = eqx.nn.Linear(4 * 3 * 3, 3, key=k3)

    def __call__(self, x):  # one (1, 6, 6) image
        h = jax.nn.relu(self.conv2(jax.nn.relu(self.conv1(x))))
        return self.dense(h.reshape(-1))


@pytest.mark.slow  # 8-14 s each: the exact cases above run by default
@pytest.mark.parametrize("framework", ["nnx", "equinox"])
def test_kfc_on_a_small_cnn_is_close_to_the_exact_ggn(framework):
    """Softmax output Hessians vary over examples and positions, and KFC drops the products
    of different positions: it approximates. Measured on this untrained CNN: the convolution
    blocks keep the exact GGN's trace within 15-40% (dividing ``G`` by the positions ``T``
    matters: without it a trace is 36x too large), the dense layer after them is within 10%,
    and the log marginal likelihood lies between the diagonal Laplace's and the full GGN's."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 6, 6, 1)).astype(np.float32)
    y = rng.integers(0, 3, size=40)
    if framework == "equinox":
        X = X.transpose(0, 3, 1, 2)
        adapter = _adapter(_EqxTinyCNN(jax.random.key(0)), X)
    else:
        adapter = _adapter(_TinyCNN(nnx.Rngs(0)), X)

    class Model:
        apply_fn, likelihood = ClassificationHead(adapter), CategoricalLikelihood()

    params = {"net": adapter.initial}
    state, kron = _kron_dense(Model, params, jnp.asarray(X), jnp.asarray(y))
    *convs, dense = state.curvature.blocks
    assert len(convs) == 2 and int(dense.pos.shape[0]) == 4 * 3 * 3 * 3 + 3
    exact = _brute_ggn(Model, params, X, y)

    def block(matrix, b):
        return matrix[np.ix_(np.asarray(b.pos), np.asarray(b.pos))]

    for conv in convs:
        np.testing.assert_allclose(
            np.trace(block(kron, conv)), np.trace(block(exact, conv)), rtol=0.5
        )
    error = np.linalg.norm(block(kron, dense) - block(exact, dense))
    assert error < 0.1 * np.linalg.norm(block(exact, dense))
    X, y = jnp.asarray(X), jnp.asarray(y)
    full, _ = laplace_state(
        Model.apply_fn, Model.likelihood, params, X, y, hessian_structure="full"
    )
    diag, _ = laplace_state(
        Model.apply_fn, Model.likelihood, params, X, y, hessian_structure="diag"
    )
    np.testing.assert_allclose(np.asarray(full.curvature.H), exact, rtol=1e-3, atol=1e-4)
    for prior in (0.1, 1.0, 10.0):
        lml = {s: float(log_marginal_likelihood(st, prior)) for s, st in
               (("kron", state), ("full", full), ("diag", diag))}  # fmt: skip
        assert lml["diag"] < lml["kron"] < lml["full"], (prior, lml)
