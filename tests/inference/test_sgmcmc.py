"""SG-MCMC on Bayesian linear regression with known noise: not exact, but its error shrinks
with the step size (we test that, and claim no more)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from posterax.inference import SGMCMCSettings, sample_sgmcmc

SIGMA = 0.5


def log_prior(theta):
    return -0.5 * jnp.sum(theta**2)


def log_lik_one(theta, xy):
    x, y = xy
    return -0.5 * (y - x @ theta[:-1] - theta[-1]) ** 2 / SIGMA**2


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2)).astype(np.float32)
    y = (X @ np.array([1.0, -2.0]) + 0.5 + SIGMA * rng.normal(size=200)).astype(np.float32)
    phi = np.hstack([X, np.ones((200, 1))]).astype(np.float64)
    cov = np.linalg.inv(phi.T @ phi / SIGMA**2 + np.eye(3))
    return (jnp.asarray(X), jnp.asarray(y)), cov @ phi.T @ y / SIGMA**2, np.sqrt(np.diag(cov))


def _errors(problem, sampler, step_size, thinning):
    data, exact_mean, exact_sd = problem
    settings = SGMCMCSettings(
        sampler=sampler,
        step_size=step_size,
        num_burnin=2000,
        num_samples=2000,
        thinning=thinning,
        num_chains=2,
        batch_size=50,
    )
    start = jnp.tile(
        jnp.asarray(exact_mean, dtype=jnp.float32), (2, 1)
    )  # burn-in is tested elsewhere
    draws, _ = sample_sgmcmc(jax.random.key(0), log_prior, log_lik_one, start, data, settings)
    flat = np.asarray(draws).reshape(-1, 3)
    mean_error = np.max(np.abs(flat.mean(axis=0) - exact_mean) / exact_sd)
    sd_error = np.max(np.abs(flat.std(axis=0) / exact_sd - 1))
    return mean_error, sd_error


@pytest.mark.parametrize(
    ("sampler", "large", "small"), [("sgld", 1e-3, 5e-5), ("sghmc", 5e-3, 5e-4)]
)
def test_error_shrinks_with_the_step_size(problem, sampler, large, small):
    _, sd_large = _errors(problem, sampler, large, thinning=2)
    mean_small, sd_small = _errors(problem, sampler, small, thinning=10)
    assert sd_small < 0.5 * sd_large, (sd_small, sd_large)
    assert mean_small < 0.5, mean_small  # in posterior sds
