"""MC dropout (Gal & Ghahramani, 2016): train an MLP with dropout on its hidden units and keep
dropout on at prediction; each dropout mask is one draw from an approximate posterior.

A posterior draw here is one mask per hidden unit, shared by every input, so the draws are whole
functions (smooth bands, coherent across inputs), and they are stored as weights: masking hidden
unit j of layer l zeroes row j of layer l+1's weight matrix (scaled by ``1 / (1 - p)``). The
:class:`DropoutDistribution` therefore plugs into the same predictive code as every other
posterior. Training uses per-example masks, the usual (lower-variance) estimator.

Gal's objective ties weight decay to the prior: with a Normal(0, s) prior the KL term is
approximately ``(1 - p) ||W||^2 / (2 s^2)`` for weights fed by dropped units, so the weight decay
per example is ``(1 - p) / (2 N s^2)`` (his ``lambda = p_keep l^2 / (2 N tau)`` with length-scale
``l = 1 / s``). The noise precision ``tau = 1 / sigma^2`` is learned rather than grid-searched.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

from posterax.base import Posterior
from posterax.inference.mc_dropout_network import (
    NetworkDropoutDistribution,
    NetworkDropoutLoss,
    check_dropout_network,
    dropout_head,
)
from posterax.inference.network_model import (
    NetworkModel,
    TrainingSettings,
    constrained_extras,
    draws_with_extras,
    train_model,
)
from posterax.models.mlp import ACTIVATIONS, MLP, constrain
from posterax.networks.adapter import NetworkAdapter
from posterax.types import ArrayTree, PRNGKey


@functools.partial(
    jax.tree_util.register_dataclass, data_fields=["net", "extras"], meta_fields=["rate"]
)
@dataclasses.dataclass(frozen=True)
class DropoutDistribution:
    """Dropout masks on the hidden units of an MLP, as a distribution over its weights."""

    net: list[dict[str, jax.Array]]
    rate: float
    extras: dict[str, jax.Array] = dataclasses.field(default_factory=dict)

    def sample(self, rng_key: PRNGKey, n: int) -> ArrayTree:
        keep = 1.0 - self.rate
        keys = jax.random.split(rng_key, len(self.net))
        layers = []
        for i, (layer, k) in enumerate(zip(self.net, keys, strict=True)):
            w = jnp.broadcast_to(layer["w"], (n, *layer["w"].shape))
            if i > 0:  # inputs of this layer are dropped hidden units
                mask = jax.random.bernoulli(k, keep, (n, layer["w"].shape[0]))
                w = w * mask[:, :, None] / keep
            layers.append({"w": w, "b": jnp.broadcast_to(layer["b"], (n, *layer["b"].shape))})
        return draws_with_extras(layers, self.extras, n)

    def mean(self) -> ArrayTree:
        """The weight-scaled network (standard dropout's deterministic approximation)."""
        return {"net": self.net, **self.extras}


def _dropout_outputs(network: MLP, net, X, rng_key, rate: float) -> jax.Array:
    act = ACTIVATIONS[network.activation]
    keys = jax.random.split(rng_key, len(net))
    h = X
    for i, layer in enumerate(net):
        if i > 0:
            h = h * jax.random.bernoulli(keys[i], 1.0 - rate, h.shape) / (1.0 - rate)
        h = h @ layer["w"] + layer["b"]
        if i < len(net) - 1:
            h = act(h)
    return h


@dataclasses.dataclass(frozen=True)
class DropoutLoss:
    """Gal's objective per example: NLL under per-example dropout masks, minus the log prior
    with weights fed by dropped units weighted by the keep probability."""

    model: NetworkModel
    n_data: int
    rate: float

    def __call__(self, params, rng_key, X, y):
        head = self.model.apply_fn
        raw = _dropout_outputs(head.network, params["net"], X, rng_key, self.rate)
        log_lik = self.model.likelihood.log_prob(constrain(params), head.from_outputs(raw), y)
        terms = self.model.prior.leaf_log_probs(params["net"])
        log_prior = sum(
            (1.0 - self.rate if i > 0 else 1.0) * t["w"] + t["b"] for i, t in enumerate(terms)
        )
        return -jnp.mean(log_lik) - log_prior / self.n_data


def fit_mc_dropout(
    rng_key: PRNGKey,
    model: NetworkModel,
    init_fn: Callable[[PRNGKey], ArrayTree],
    X: jax.Array,
    y: jax.Array,
    settings: TrainingSettings,
    dropout_rate: float = 0.1,
) -> Posterior:
    """Train an MLP with dropout; the posterior is :class:`DropoutDistribution`.

    ``model.apply_fn`` must be a head over an :class:`~posterax.models.MLP`
    (:class:`~posterax.models.RegressionHead` or :class:`~posterax.models.ClassificationHead`);
    other arguments are as in :func:`~posterax.inference.fit_map`.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, optax
    >>> from posterax.models import MLP, RegressionHead, GaussianLikelihood
    >>> X = jnp.linspace(-2, 2, 100)[:, None]; y = jnp.sin(X[:, 0])
    >>> net = MLP((32,), "relu", 1)
    >>> model = NetworkModel(RegressionHead(net), GaussianLikelihood())
    >>> settings = TrainingSettings(optax.adam(1e-2), num_epochs=50, progress_bar=False)
    >>> post = fit_mc_dropout(jax.random.key(0), model, lambda k: net.init(k, 1), X, y, settings)
    >>> post.sample(jax.random.key(1), 10)["net"][1]["w"].shape
    (10, 32, 1)
    """
    if isinstance(getattr(model.apply_fn, "network", None), NetworkAdapter):
        return _fit_network_dropout(rng_key, model, init_fn, X, y, settings)
    if not (isinstance(getattr(model.apply_fn, "network", None), MLP)):
        raise TypeError(
            "fit_mc_dropout needs model.apply_fn to be a RegressionHead or ClassificationHead "
            f"over a posterax MLP (dropout masks its hidden units). Got {model.apply_fn!r}."
        )
    result = train_model(
        rng_key,
        X,
        y,
        settings,
        lambda n: DropoutLoss(model, n, dropout_rate),
        lambda k: model.init_params(init_fn(k)),
        "MC dropout",
    )
    params = result.params
    extras = constrained_extras({k: v for k, v in params.items() if k != "net"})
    dist = DropoutDistribution(params["net"], dropout_rate, extras)
    info = {**result.info, "dropout_rate": dropout_rate}
    return Posterior(model.apply_fn, model.likelihood, distribution=dist, info=info)


def _fit_network_dropout(rng_key, model, init_fn, X, y, settings) -> Posterior:
    """MC dropout through the dropout layers of the user's network (``dropout_rate`` is theirs)."""
    check_dropout_network(model.apply_fn)
    result = train_model(
        rng_key,
        X,
        y,
        settings,
        lambda n: NetworkDropoutLoss(model, n),
        lambda k: model.init_params(init_fn(k)),
        "MC dropout",
    )
    params = result.params
    extras = constrained_extras({k: v for k, v in params.items() if k != "net"})
    dist = NetworkDropoutDistribution(params["net"], extras)
    apply_fn = dropout_head(model.apply_fn)
    return Posterior(apply_fn, model.likelihood, distribution=dist, info=result.info)


__all__ = ["DropoutDistribution", "DropoutLoss", "fit_mc_dropout"]
