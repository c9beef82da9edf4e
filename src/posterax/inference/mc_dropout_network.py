"""MC dropout through the dropout layers of the user's own network (Flax NNX, Equinox).

The network is trained with its dropout layers on (a fresh key per minibatch) under the weight
prior, and a posterior draw is the trained weights with one dropout key: the prediction of a
draw runs the network in training mode with that key. Unlike the built-in MLP's masks (one per
hidden unit, shared by all inputs), the masks here are the framework's own, drawn per example.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp

from posterax.models.mlp import ClassificationHead, RegressionHead, constrain
from posterax.types import ArrayTree, PRNGKey


@dataclasses.dataclass(frozen=True)
class DropoutOn:
    """A network whose params are ``{"weights": ..., "key": ...}``: with a key, the user's
    network runs with dropout on under that key; with ``key=None``, in evaluation mode."""

    network: Any  # posterax.networks.NetworkAdapter

    def __call__(self, params: ArrayTree, X: jax.Array) -> jax.Array:
        key = params.get("key")
        return self.network.apply(params["weights"], X, key=key, train=key is not None)


@functools.partial(jax.tree_util.register_dataclass, data_fields=["net", "extras"], meta_fields=[])
@dataclasses.dataclass(frozen=True)
class NetworkDropoutDistribution:
    """Trained weights and a dropout key per draw."""

    net: ArrayTree
    extras: dict[str, jax.Array] = dataclasses.field(default_factory=dict)

    def sample(self, rng_key: PRNGKey, n: int) -> ArrayTree:
        weights = jax.tree_util.tree_map(lambda w: jnp.broadcast_to(w, (n, *w.shape)), self.net)
        draws = {"net": {"weights": weights, "key": jax.random.split(rng_key, n)}}
        return {**draws, **{k: jnp.broadcast_to(v, (n,)) for k, v in self.extras.items()}}

    def mean(self) -> ArrayTree:
        """The network in evaluation mode (dropout off)."""
        return {"net": {"weights": self.net, "key": None}, **self.extras}


@dataclasses.dataclass(frozen=True)
class NetworkDropoutLoss:
    """Mean negative log-likelihood under the network's own dropout, minus the log prior over
    the training-set size (the prior is the weight decay)."""

    model: Any  # NetworkModel
    n_data: int

    def __call__(self, params, rng_key, X, y):
        head = self.model.apply_fn
        raw = head.network.apply(params["net"], X, key=rng_key, train=True)
        log_lik = self.model.likelihood.log_prob(constrain(params), head.from_outputs(raw), y)
        return -jnp.mean(log_lik) - self.model.prior.log_prob(params["net"]) / self.n_data


def dropout_head(apply_fn: Any) -> Any:
    """The same head over :class:`DropoutOn` of its network."""
    head = RegressionHead if isinstance(apply_fn, RegressionHead) else ClassificationHead
    return head(DropoutOn(apply_fn.network))


def check_dropout_network(apply_fn: Any) -> None:
    network = getattr(apply_fn, "network", None)
    if not getattr(network, "has_dropout", False):
        kind = getattr(network, "kind", type(network).__name__)
        unsupported = (
            " (MC dropout through a Linen or Functional network's own dropout is not supported "
            "yet: write it in NNX or Equinox)"
            if kind in ("linen", "functional")
            else ""
        )
        raise ValueError(
            "The 'network' parameter of the estimator must contain dropout layers for "
            "method='mc_dropout' (nnx.Dropout in a Flax NNX module, eqx.nn.Dropout in an "
            f"Equinox module, which MC dropout keeps on at prediction). Got a {kind} network "
            f"without any{unsupported}. Add a dropout layer, or use another method (e.g. "
            "'ensemble' or 'laplace')."
        )


__all__ = [
    "DropoutOn",
    "NetworkDropoutDistribution",
    "NetworkDropoutLoss",
    "check_dropout_network",
    "dropout_head",
]
