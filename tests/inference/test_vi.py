"""VI against the exact Gaussian posterior of Bayesian linear regression (a network with no
hidden layer): mean-field gets the means right and underestimates variances; a low-rank +
diagonal q with enough rank recovers the correlated variances."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from posterax.inference import NetworkModel, TrainingSettings, fit_vi
from posterax.models import MLP, GaussianLikelihood, RegressionHead, WeightPrior

PRIOR_SCALE = 1.0


@pytest.fixture(scope="module")
def correlated_data():
    rng = np.random.default_rng(3)
    n = 60
    z = rng.normal(size=(n, 1))
    # Two strongly correlated features -> a strongly correlated posterior.
    X = np.hstack([z + 0.15 * rng.normal(size=(n, 1)), z + 0.15 * rng.normal(size=(n, 1))])
    y = X @ np.array([1.0, -0.5]) + 0.3 + 0.5 * rng.normal(size=n)
    return X.astype(np.float32), y.astype(np.float32)


def _exact(X, y, sigma):
    """Gaussian posterior of (w, b) for known noise sd ``sigma`` and a N(0, 1) prior."""
    phi = np.hstack([X, np.ones((X.shape[0], 1))]).astype(np.float64)
    precision = phi.T @ phi / sigma**2 + np.eye(phi.shape[1]) / PRIOR_SCALE**2
    cov = np.linalg.inv(precision)
    return cov @ phi.T @ y / sigma**2, cov, precision


def _fit(X, y, family):
    net = MLP((), "tanh", 1)
    model = NetworkModel(
        RegressionHead(net), GaussianLikelihood(), WeightPrior("normal", (PRIOR_SCALE,))
    )
    settings = TrainingSettings(
        optax.adam(optax.cosine_decay_schedule(2e-2, 4000, alpha=0.01)),
        num_epochs=4000,
        batch_size=X.shape[0],
        progress_bar=False,
    )
    return fit_vi(
        jax.random.key(0),
        model,
        lambda k: net.init(k, 2),
        jnp.asarray(X),
        jnp.asarray(y),
        settings,
        family=family,
        rank=3,
    )


@pytest.fixture(scope="module")
def fits(correlated_data):
    X, y = correlated_data
    return {family: _fit(X, y, family) for family in ("meanfield", "lowrank")}


def _moments(posterior):
    draws = posterior.sample(jax.random.key(1), 20000)
    layer = draws["net"][0]
    flat = np.hstack([np.asarray(layer["w"])[:, :, 0], np.asarray(layer["b"])])
    return flat.mean(axis=0), flat.var(axis=0), float(posterior.mean()["sigma"])


def test_meanfield_means_match_exact_and_variances_are_the_inverse_precision_diagonal(
    fits, correlated_data
):
    X, y = correlated_data
    mean, var, sigma = _moments(fits["meanfield"])
    exact_mean, exact_cov, precision = _exact(X, y, sigma)
    np.testing.assert_allclose(mean, exact_mean, atol=0.05)
    # The mean-field optimum for a Gaussian target: variance 1 / diag(precision)...
    np.testing.assert_allclose(var, 1 / np.diag(precision), rtol=0.15)
    # ...which underestimates the true marginal variances of the correlated weights.
    assert np.all(var[:2] < 0.5 * np.diag(exact_cov)[:2])


def test_lowrank_variances_are_closer_to_exact_than_meanfield(fits, correlated_data):
    X, y = correlated_data
    _, mf_var, _ = _moments(fits["meanfield"])
    lr_mean, lr_var, sigma = _moments(fits["lowrank"])
    exact_mean, exact_cov, _ = _exact(X, y, sigma)
    exact_var = np.diag(exact_cov)
    np.testing.assert_allclose(lr_mean, exact_mean, atol=0.08)
    np.testing.assert_allclose(lr_var, exact_var, rtol=0.25)
    assert np.sum(np.abs(lr_var - exact_var)) < 0.5 * np.sum(np.abs(mf_var - exact_var))
