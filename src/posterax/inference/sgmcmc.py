"""Stochastic-gradient MCMC: SGLD (Welling & Teh, 2011) and SGHMC (Chen et al., 2014) with
BlackJAX's kernels, minibatch gradients scaled to the full data, a constant or polynomially
decaying step size, burn-in and thinning, chains vmapped in one compiled program.

SG-MCMC is not exact: without Metropolis correction its bias shrinks with the step size (tested
on Bayesian linear regression), so treat its draws as an approximation.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import blackjax
import jax
import jax.numpy as jnp
from blackjax.sgmcmc.gradients import grad_estimator

from posterax.types import ArrayTree, PRNGKey

SAMPLERS = ("sgld", "sghmc")
SCHEDULES = ("constant", "polynomial")


class SGMCMCSettings(NamedTuple):
    """``step_size`` at step t is ``step_size * (1 + t / decay_steps) ** -0.55`` for the
    polynomial schedule (Welling & Teh's exponent), constant otherwise."""

    sampler: str = "sgld"
    step_size: float = 1e-4
    num_burnin: int = 1000
    num_samples: int = 1000
    thinning: int = 1
    num_chains: int = 1
    batch_size: int = 32
    schedule: str = "constant"
    decay_steps: int = 1000
    friction: float = 0.01  # SGHMC's alpha
    num_integration_steps: int = 10  # SGHMC steps per momentum refresh


def step_size_at(settings: SGMCMCSettings, t: jax.Array) -> jax.Array:
    if settings.schedule == "constant":
        return jnp.asarray(settings.step_size)
    return settings.step_size * (1.0 + t / settings.decay_steps) ** -0.55


@functools.lru_cache(maxsize=32)
def _compiled(logprior_fn: Callable, loglik_fn: Callable, n_data: int, settings: SGMCMCSettings):
    estimator = grad_estimator(logprior_fn, loglik_fn, n_data)
    if settings.sampler == "sgld":
        sgld = blackjax.sgld.build_kernel()

        def kernel(key, position, batch, step):
            return sgld(key, position, estimator, batch, step)
    else:
        sghmc = blackjax.sghmc.build_kernel(alpha=settings.friction)

        def kernel(key, position, batch, step):
            return sghmc(key, position, estimator, batch, step, settings.num_integration_steps)

    def one_chain(key, position, X, y):
        def step(position, inputs):
            t, k = inputs
            batch_key, move_key = jax.random.split(k)
            idx = jax.random.randint(batch_key, (settings.batch_size,), 0, n_data)
            return kernel(move_key, position, (X[idx], y[idx]), step_size_at(settings, t)), None

        def steps(position, first, key, count):
            ts = first + jnp.arange(count)
            return jax.lax.scan(step, position, (ts, jax.random.split(key, count)))[0]

        burn_key, sample_key = jax.random.split(key)
        position = steps(position, 0, burn_key, settings.num_burnin)

        def draw(position, inputs):
            i, k = inputs
            first = settings.num_burnin + i * settings.thinning
            position = steps(position, first, k, settings.thinning)
            return position, position

        keys = jax.random.split(sample_key, settings.num_samples)
        _, draws = jax.lax.scan(draw, position, (jnp.arange(settings.num_samples), keys))
        return draws

    return jax.jit(jax.vmap(one_chain, in_axes=(0, 0, None, None)))


def sample_sgmcmc(
    rng_key: PRNGKey,
    logprior_fn: Callable[[ArrayTree], jax.Array],
    loglikelihood_fn: Callable[[ArrayTree, tuple[jax.Array, jax.Array]], jax.Array],
    initial_positions: ArrayTree,
    data: tuple[jax.Array, jax.Array],
    settings: SGMCMCSettings,
) -> tuple[ArrayTree, dict[str, Any]]:
    """Run ``settings.num_chains`` SGLD / SGHMC chains.

    Parameters
    ----------
    logprior_fn : callable
        ``log p(position)``.
    loglikelihood_fn : callable
        Log-likelihood of ONE example, ``loglikelihood_fn(position, (x, y))`` (BlackJAX's
        convention: minibatch gradients are averaged and scaled by the data size).
    initial_positions : pytree
        One start per chain (leading axis ``num_chains``).
    data : (X, y)

    Returns
    -------
    positions, info
        Leaves ``(chains, num_samples, ...)``; ``info["sampling_seconds"]``.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> X = jnp.zeros((100, 1)); y = jnp.ones(100)
    >>> lp = lambda m: -0.5 * m ** 2
    >>> ll = lambda m, xy: -0.5 * (xy[1] - m) ** 2  # posterior N(100/101, 1/101)
    >>> s = SGMCMCSettings(step_size=1e-3, num_burnin=500, num_samples=4000)
    >>> draws, _ = sample_sgmcmc(jax.random.key(0), lp, ll, jnp.zeros(1), (X, y), s)
    >>> round(float(draws.mean()), 1)
    1.0
    """
    run = _compiled(logprior_fn, loglikelihood_fn, int(data[0].shape[0]), settings)
    keys = jax.random.split(rng_key, settings.num_chains)
    start = time.perf_counter()
    positions = run(keys, initial_positions, *data)
    jax.block_until_ready(positions)
    return positions, {"sampling_seconds": time.perf_counter() - start}


__all__ = ["SAMPLERS", "SCHEDULES", "SGMCMCSettings", "sample_sgmcmc", "step_size_at"]
