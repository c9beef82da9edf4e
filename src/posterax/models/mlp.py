"""Multi-layer perceptrons as hashable ``apply_fn``s, and the log-density of a Bayesian MLP.

Both are frozen dataclasses: equal configurations hash equal, which is what lets the NUTS driver
reuse one compiled program across fits.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import jax
import jax.numpy as jnp

from posterax.types import ArrayTree

ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu, "gelu": jax.nn.gelu}


@dataclasses.dataclass(frozen=True)
class MLP:
    """Dense network ``n_features -> hidden... -> n_outputs``.

    Params pytree: ``[{"w": (d_in, d_out), "b": (d_out,)}, ...]``, one dict per layer.
    """

    hidden: tuple[int, ...]
    activation: str
    n_outputs: int

    def layer_sizes(self, n_features: int) -> list[tuple[int, int]]:
        sizes = [n_features, *self.hidden, self.n_outputs]
        return list(itertools.pairwise(sizes))

    def template(self, n_features: int) -> list[dict[str, jax.Array]]:
        """Zero params with the right shapes (the structure NUTS samples over)."""
        return [
            {"w": jnp.zeros((a, b)), "b": jnp.zeros(b)} for a, b in self.layer_sizes(n_features)
        ]

    def init(self, rng_key: jax.Array, n_features: int) -> list[dict[str, jax.Array]]:
        """Random starting weights for training: ``N(0, gain / fan_in)`` weights (gain 2 for
        ReLU-like activations, 1 for tanh), zero biases."""
        gain = 1.0 if self.activation == "tanh" else 2.0
        keys = jax.random.split(rng_key, len(self.layer_sizes(n_features)))
        return [
            {"w": jax.random.normal(k, (a, b)) * jnp.sqrt(gain / a), "b": jnp.zeros(b)}
            for k, (a, b) in zip(keys, self.layer_sizes(n_features), strict=True)
        ]

    def __call__(self, params: list[dict[str, jax.Array]], X: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        h = X
        for layer in params[:-1]:
            h = act(h @ layer["w"] + layer["b"])
        return h @ params[-1]["w"] + params[-1]["b"]


def network_outputs(network: Any, params: ArrayTree, X: jax.Array) -> jax.Array:
    """The network's raw outputs at ``params["net"]``; a network with BatchNorm normalises by
    the statistics ``params["state"]`` (evaluation mode)."""
    if "state" in params:
        return network.apply(params["net"], X, state=params["state"])
    return network(params["net"], X)


class _Head:
    network: Any

    def __call__(self, params: ArrayTree, X: jax.Array) -> jax.Array:
        return self.from_outputs(network_outputs(self.network, params, X))

    def batch_outputs(self, params: ArrayTree, X: jax.Array) -> jax.Array:
        """As a call, with BatchNorm on the batch's own statistics (training)."""
        return self.from_outputs(self.network.batch_apply(params["net"], X)[0])


@dataclasses.dataclass(frozen=True)
class RegressionHead(_Head):
    """``apply_fn`` of a Bayesian regressor: the network's single output, shape ``(N,)``."""

    network: MLP

    @staticmethod
    def from_outputs(outputs: jax.Array) -> jax.Array:
        """The head's value from the network's raw ``(N, 1)`` outputs."""
        return outputs[:, 0]


@dataclasses.dataclass(frozen=True)
class ClassificationHead(_Head):
    """``apply_fn`` returning all of the network's outputs, shape ``(N, K)``: a classifier's
    logits, or the (mean, raw scale) pair of a heteroscedastic regressor."""

    network: MLP

    @staticmethod
    def from_outputs(outputs: jax.Array) -> jax.Array:
        """The head's value from the network's raw ``(N, K)`` outputs."""
        return outputs


def constrain(position: ArrayTree) -> ArrayTree:
    """``{"net", "log_sigma"?}`` -> ``{"net", "sigma"?}`` (any leading axes): unconstrained
    coordinates, used by samplers and optimisers, to the params likelihoods read."""
    params = {"net": position["net"]}
    if "log_sigma" in position:
        params["sigma"] = jnp.exp(position["log_sigma"])
    if "state" in position:  # BatchNorm statistics: as they are
        params["state"] = position["state"]
    return params


__all__ = [
    "ACTIVATIONS",
    "MLP",
    "ClassificationHead",
    "RegressionHead",
    "constrain",
]
