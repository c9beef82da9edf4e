"""NUTS for any ``apply_fn(params, x)`` + params pytree: bring your own network.

Works with hand-written JAX functions and with Equinox/Flax models once split into a pure
``apply_fn`` and a params pytree (e.g. ``params, static = eqx.partition(model, eqx.is_array)``
and ``apply_fn = lambda p, x: jax.vmap(eqx.combine(p, static))(x)``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from posterax.base import Posterior
from posterax.inference.chains import merge_chains
from posterax.inference.network_model import NetworkModel
from posterax.inference.nuts import sample_nuts
from posterax.models.likelihoods import CategoricalLikelihood, GaussianLikelihood
from posterax.models.mlp import constrain
from posterax.models.weight_prior import WeightPrior
from posterax.types import ArrayTree, PRNGKey

LIKELIHOODS = ("gaussian", "categorical")


@dataclasses.dataclass(frozen=True)
class _NetApply:
    """``apply_fn`` over the model's ``{"net": params, ...}``. Hashable when ``apply_fn`` is
    (a function defined once): equal models share the compiled sampler."""

    apply_fn: Callable[[ArrayTree, jax.Array], jax.Array]

    def __call__(self, params: ArrayTree, X: jax.Array) -> jax.Array:
        return self.apply_fn(params["net"], X)


@dataclasses.dataclass(frozen=True)
class _ParamsApply:
    """apply_fn over the posterior's ``{"params": ..., "sigma": ...}`` draws."""

    apply_fn: Callable[[ArrayTree, jax.Array], jax.Array]

    def __call__(self, draw: ArrayTree, X: jax.Array) -> jax.Array:
        return self.apply_fn(draw["params"], X)


def nuts_posterior(
    rng_key: PRNGKey,
    apply_fn: Callable[[ArrayTree, jax.Array], jax.Array],
    params_template: ArrayTree,
    X: Any,
    y: Any,
    *,
    likelihood: str = "gaussian",
    prior_scale: float = 1.0,
    noise_prior_scale: float = 1.0,
    **nuts_kwargs: Any,
) -> Posterior:
    """Sample the weights of any ``apply_fn(params, X)`` with NUTS.

    Parameters
    ----------
    rng_key : PRNGKey
    apply_fn : callable
        ``apply_fn(params, X) -> (N,)`` outputs (``"gaussian"``) or ``(N, K)`` logits
        (``"categorical"``).
    params_template : pytree
        Any params with the right structure and shapes (values are ignored).
    X : array (N, D); y : array (N,) — floats, or class indices for ``"categorical"``.
    likelihood : {"gaussian", "categorical"}
    prior_scale, noise_prior_scale : float
        Normal(0, prior_scale) on every weight; HalfCauchy(noise_prior_scale) on sigma.
    **nuts_kwargs
        ``num_warmup``, ``num_samples``, ``num_chains``, ``target_accept_prob``, ...

    Returns
    -------
    Posterior
        Draws ``{"params": ..., "sigma": ...}``; use ``px.predictive.predictive_samples``.
    """
    if likelihood not in LIKELIHOODS:
        raise ValueError(
            f"The 'likelihood' parameter of nuts_posterior must be one of {LIKELIHOODS}. Got "
            f"{likelihood!r}."
        )
    gaussian = likelihood == "gaussian"
    lik = GaussianLikelihood() if gaussian else CategoricalLikelihood()
    model = NetworkModel(
        _NetApply(apply_fn),
        lik,
        WeightPrior("normal", (float(prior_scale),)),
        noise_prior_scale=float(noise_prior_scale) if gaussian else None,
    )
    y = jnp.asarray(y, dtype=jnp.result_type(float) if gaussian else jnp.int32)
    template = model.init_params(params_template)  # + log_sigma for a Gaussian
    run = sample_nuts(rng_key, model, template, (jnp.asarray(X), y), **nuts_kwargs)
    constrained = constrain(run.samples)
    constrained["params"] = constrained.pop("net")
    draws_flat, (chains, draws) = merge_chains(constrained)
    return Posterior(
        _ParamsApply(apply_fn),
        lik,
        draws=draws_flat,
        info={"sample_stats": run.sample_stats, "sampling_seconds": run.seconds},
        chain_shape=(chains, draws),
    )


__all__ = ["nuts_posterior"]
