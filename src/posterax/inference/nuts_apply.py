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
import jax.scipy.stats as jstats

from posterax.base import Posterior
from posterax.inference.chains import merge_chains
from posterax.inference.nuts import sample_nuts
from posterax.models.likelihoods import CategoricalLikelihood, GaussianLikelihood
from posterax.models.mlp import categorical_log_density, gaussian_log_density
from posterax.types import ArrayTree, PRNGKey

LIKELIHOODS = ("gaussian", "categorical")


@dataclasses.dataclass(frozen=True)
class ApplyFnLogDensity:
    """Log posterior: Normal(0, prior_scale) on every params leaf, plus a Gaussian likelihood
    with ``sigma ~ HalfCauchy(noise_prior_scale)`` (sampled as ``log_sigma``) or a softmax one.

    Hashable when ``apply_fn`` is (a function defined once): equal instances share the
    compiled sampler.
    """

    apply_fn: Callable[[ArrayTree, jax.Array], jax.Array]
    likelihood: str
    prior_scale: float = 1.0
    noise_prior_scale: float = 1.0

    def __call__(self, position: ArrayTree, X: jax.Array, y: jax.Array) -> jax.Array:
        params = position["params"]
        log_density = sum(
            jnp.sum(jstats.norm.logpdf(leaf, 0.0, self.prior_scale))
            for leaf in jax.tree_util.tree_leaves(params)
        )
        out = self.apply_fn(params, X)
        if self.likelihood == "gaussian":
            return log_density + gaussian_log_density(
                out, y, position["log_sigma"], self.noise_prior_scale
            )
        return log_density + categorical_log_density(out, y)


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
    logdensity = ApplyFnLogDensity(
        apply_fn, likelihood, float(prior_scale), float(noise_prior_scale)
    )
    template: dict[str, Any] = {"params": params_template}
    if likelihood == "gaussian":
        template["log_sigma"] = jnp.zeros(())
        y = jnp.asarray(y, dtype=jnp.result_type(float))
    else:
        y = jnp.asarray(y, dtype=jnp.int32)
    run = sample_nuts(rng_key, logdensity, template, (jnp.asarray(X), y), **nuts_kwargs)
    positions = run.samples
    constrained = {"params": positions["params"]}
    if likelihood == "gaussian":
        constrained["sigma"] = jnp.exp(positions["log_sigma"])
    draws_flat, (chains, draws) = merge_chains(constrained)
    lik = GaussianLikelihood() if likelihood == "gaussian" else CategoricalLikelihood()
    return Posterior(
        _ParamsApply(apply_fn),
        lik,
        draws=draws_flat,
        info={"sample_stats": run.sample_stats, "sampling_seconds": run.seconds},
        chain_shape=(chains, draws),
    )


__all__ = ["ApplyFnLogDensity", "nuts_posterior"]
