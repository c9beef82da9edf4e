"""Small user networks written as their users would (shared by tests/networks): the same 1-8-1 tanh MLP in Flax NNX,
Flax Linen, Equinox and plain JAX, plus variants with dropout and with BatchNorm."""

import functools

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import posterax as px


class NNXMLP(nnx.Module):
    def __init__(self, n_in, n_out, rngs, width=8, dropout=0.0):
        self.l1 = nnx.Linear(n_in, width, rngs=rngs)
        self.drop = nnx.Dropout(dropout, rngs=rngs) if dropout else None
        self.l2 = nnx.Linear(width, n_out, rngs=rngs)

    def __call__(self, x):
        h = jnp.tanh(self.l1(x))
        if self.drop is not None:
            h = self.drop(h)
        return self.l2(h)


class Shifted(nnx.Module):
    """A linear layer plus a constant the user keeps in an nnx.Variable (not trained)."""

    def __init__(self, shift, rngs):
        self.lin = nnx.Linear(1, 1, rngs=rngs)
        self.shift = nnx.Variable(jnp.asarray(shift, jnp.float32))

    def __call__(self, x):
        return self.lin(x) + self.shift[...]


class LinenMLP(nn.Module):
    n_out: int
    width: int = 8

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.n_out)(jnp.tanh(nn.Dense(self.width)(x)))


class EqxMLP(eqx.Module):
    l1: eqx.nn.Linear
    l2: eqx.nn.Linear
    drop: eqx.nn.Dropout | None

    def __init__(self, n_in, n_out, key, width=8, dropout=0.0):
        k1, k2 = jax.random.split(key)
        self.l1 = eqx.nn.Linear(n_in, width, key=k1)
        self.l2 = eqx.nn.Linear(width, n_out, key=k2)
        self.drop = eqx.nn.Dropout(dropout) if dropout else None

    def __call__(self, x, key=None):
        h = jnp.tanh(self.l1(x))
        if self.drop is not None:
            h = self.drop(h, key=key)
        return self.l2(h)


def functional_mlp(n_in, n_out, seed=0, width=8):
    rng = np.random.default_rng(seed)
    params = {
        "w1": jnp.asarray(rng.normal(size=(n_in, width)) / np.sqrt(n_in), jnp.float32),
        "b1": jnp.zeros(width),
        "w2": jnp.asarray(rng.normal(size=(width, n_out)) / np.sqrt(width), jnp.float32),
        "b2": jnp.zeros(n_out),
    }
    return px.networks.Functional(
        lambda p, x: jnp.tanh(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"], params
    )


def make_network(kind, n_in, n_out, dropout=0.0):
    """A fresh network of ``kind`` (NNX modules are mutable: never share one between tests)."""
    if kind == "mlp":
        return px.networks.MLP(hidden=(8,), activation="tanh")
    if kind == "nnx":
        return NNXMLP(n_in, n_out, nnx.Rngs(0), dropout=dropout)
    if kind == "linen":
        return LinenMLP(n_out)
    if kind == "equinox":
        return EqxMLP(n_in, n_out, jax.random.key(0), dropout=dropout)
    return functional_mlp(n_in, n_out)


KINDS = ("mlp", "nnx", "linen", "equinox", "functional")


@functools.cache
def wave_data():
    """80 points of sin(x) + Normal(0, 0.2) noise on [-3, 3]."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, (80, 1))
    return X, np.sin(X[:, 0]) + 0.2 * rng.normal(size=80)


@functools.cache
def blob_data():
    """Three well-separated 2-D blobs with string labels."""
    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    X = np.concatenate([rng.normal(c, 0.6, (30, 2)) for c in centres])
    return X, np.repeat(np.array(["ant", "bee", "cat"]), 30)
