"""The linear model: params pytree ``{"intercept": (), "coef": (D,), "sigma": ()}``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from posterax.models.priors import LinearPrior, NormalInverseGamma
from posterax.types import ArrayTree


def linear_apply(params: ArrayTree, X: jax.Array) -> jax.Array:
    """Regression function ``intercept + X @ coef`` for one params pytree; shape ``(N,)``."""
    return params["intercept"] + jnp.asarray(X) @ params["coef"]


def linear_regression_model(
    X: jax.Array, y: jax.Array | None = None, *, prior: LinearPrior | NormalInverseGamma
) -> None:
    """NumPyro model of Bayesian linear regression under either prior family."""
    num_features = X.shape[1]
    if isinstance(prior, NormalInverseGamma):
        sigma_sq = numpyro.sample("sigma_sq", dist.InverseGamma(prior.concentration, prior.rate))
        sigma = numpyro.deterministic("sigma", jnp.sqrt(sigma_sq))
        weight_scale = prior.scale * sigma
        intercept = numpyro.sample("intercept", dist.Normal(prior.loc, weight_scale))
        coef = numpyro.sample(
            "coef", dist.Normal(prior.loc, weight_scale).expand([num_features]).to_event(1)
        )
    else:
        intercept = numpyro.sample("intercept", prior.intercept.to_numpyro())
        coef = numpyro.sample("coef", prior.coef.to_numpyro().expand([num_features]).to_event(1))
        sigma = numpyro.sample("sigma", prior.noise.to_numpyro())
    mean = linear_apply({"intercept": intercept, "coef": coef}, X)
    numpyro.sample("obs", dist.Normal(mean, sigma), obs=y)


__all__ = ["linear_apply", "linear_regression_model"]
