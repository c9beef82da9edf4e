"""MALA is exact in the limit: on Bayesian linear regression with known noise its draws match
the exact Gaussian posterior within Monte Carlo error (ESS-based tolerances)."""

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from posterax.inference import MALASettings, sample_mala

SIGMA, PRIOR_SCALE = 0.5, 1.0


def linear_log_posterior(theta, X, y):
    """Normal(0, 1) prior on (w, b); y ~ Normal(X w + b, 0.5)."""
    mean = X @ theta[:-1] + theta[-1]
    return -0.5 * jnp.sum(theta**2) / PRIOR_SCALE**2 - 0.5 * jnp.sum((y - mean) ** 2) / SIGMA**2


@pytest.fixture(scope="module")
def run():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 2)).astype(np.float32)
    y = (X @ np.array([1.0, -2.0]) + 0.5 + SIGMA * rng.normal(size=50)).astype(np.float32)
    settings = MALASettings(num_warmup=1000, num_samples=3000, num_chains=4)
    chains = sample_mala(
        jax.random.key(0), linear_log_posterior, jnp.zeros((4, 3)), (X, y), settings
    )
    positions, stats, info = chains.samples, chains.sample_stats, chains.info
    phi = np.hstack([X, np.ones((50, 1))]).astype(np.float64)
    cov = np.linalg.inv(phi.T @ phi / SIGMA**2 + np.eye(3) / PRIOR_SCALE**2)
    return np.asarray(positions), stats, info, cov @ phi.T @ y / SIGMA**2, cov


def test_mala_matches_the_exact_posterior_within_monte_carlo_error(run):
    draws, _, _, exact_mean, exact_cov = run
    exact_sd = np.sqrt(np.diag(exact_cov))
    ess = np.array([az.ess(draws[:, :, j]) for j in range(3)], dtype=float)
    assert np.all(ess > 200)
    flat = draws.reshape(-1, 3)
    z_mean = (flat.mean(axis=0) - exact_mean) / (exact_sd / np.sqrt(ess))
    z_sd = (flat.std(axis=0) - exact_sd) / (exact_sd / np.sqrt(2 * ess))
    assert np.all(np.abs(z_mean) < 4), z_mean
    assert np.all(np.abs(z_sd) < 4), z_sd


def test_step_size_is_adapted_to_the_target_acceptance(run):
    _, stats, info, _, _ = run
    assert stats["acceptance_rate"].shape == (4, 3000)
    assert abs(info["acceptance_rate"] - 0.574) < 0.1
    assert info["step_size"].shape == (4,) and np.all(info["step_size"] > 0)
