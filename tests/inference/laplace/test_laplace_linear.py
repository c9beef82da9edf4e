"""On a linear-Gaussian model (no hidden layer, known noise) the Laplace approximation is exact:
posterior and evidence against the conjugate closed forms."""

import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from posterax.inference.exact import fit_exact
from posterax.inference.laplace import (
    fit_laplace,
    laplace_state,
    log_marginal_likelihood,
    tune_marglik,
)
from posterax.inference.network_model import NetworkModel
from posterax.models import MLP, GaussianLikelihood, RegressionHead
from posterax.models.priors import NormalInverseGamma

SIGMA, SCALE = 0.3, 2.0  # noise sd; prior sd of every weight in noise units (NIG convention)
MODEL = NetworkModel(RegressionHead(MLP((), "tanh", 1)), GaussianLikelihood())


@pytest.fixture(scope="module")
def exact(linear_data):
    X, y = linear_data
    return fit_exact(X, y, NormalInverseGamma(scale=SCALE))


def _map_params(exact):
    # Flat order of a layer {"b", "w"} is (b, w...) = (intercept, coef...), as in fit_exact.
    net = [
        {
            "w": jnp.asarray(exact.loc[1:, None], jnp.float32),
            "b": jnp.asarray(exact.loc[:1], jnp.float32),
        }
    ]
    return {"net": net, "sigma": jnp.float32(SIGMA)}


PRIOR_PRECISION = 1 / (SIGMA * SCALE) ** 2  # w | sigma ~ N(0, (sigma * scale)^2)


@pytest.mark.parametrize("structure", ["full", "kron"])
def test_posterior_equals_conjugate(linear_data, exact, structure):
    X, y = linear_data
    post = fit_laplace(
        MODEL,
        _map_params(exact),
        X,
        y,
        hessian_structure=structure,
        prior_precision=PRIOR_PRECISION,
        tune=None,
        batch_size=16,  # three batches, the last one padded
    )
    dist = post.distribution
    # Given sigma, the NIG posterior of w is N(m_n, sigma^2 V_n).
    np.testing.assert_allclose(dist.map_selected, exact.loc, rtol=1e-6)
    np.testing.assert_allclose(dist.covariance(), SIGMA**2 * exact.cov_factor, rtol=1e-4)
    np.testing.assert_allclose(dist.variance(), SIGMA**2 * np.diag(exact.cov_factor), rtol=1e-4)


def test_diag_is_the_exact_precision_diagonal(linear_data, exact):
    X, y = linear_data
    post = fit_laplace(
        MODEL,
        _map_params(exact),
        X,
        y,
        hessian_structure="diag",
        prior_precision=PRIOR_PRECISION,
        tune=None,
    )
    precision = np.linalg.inv(SIGMA**2 * exact.cov_factor)
    np.testing.assert_allclose(1 / post.distribution.variance(), np.diag(precision), rtol=1e-4)


def _closed_form_evidence(X, y, prior_precision, sigma):
    A = np.column_stack([np.ones(len(X)), X]).astype(np.float64)
    cov = sigma**2 * np.eye(len(X)) + A @ A.T / prior_precision
    return stats.multivariate_normal(np.zeros(len(X)), cov).logpdf(y)


@pytest.mark.parametrize(
    "structure", ["full", "kron", pytest.param("lowrank", marks=pytest.mark.slow)]
)
def test_log_marginal_likelihood_equals_closed_form(linear_data, exact, structure):
    X, y = linear_data
    state, _ = laplace_state(
        MODEL.apply_fn, MODEL.likelihood, _map_params(exact), X, y, hessian_structure=structure
    )
    ours = log_marginal_likelihood(state, PRIOR_PRECISION, SIGMA)
    expected = _closed_form_evidence(X, y, PRIOR_PRECISION, SIGMA)
    np.testing.assert_allclose(float(ours), expected, rtol=1e-5)
    # A wrong noise must change it (the test can fail).
    assert abs(float(log_marginal_likelihood(state, PRIOR_PRECISION, 2 * SIGMA)) - expected) > 1


def test_marglik_tuning_finds_the_maximum(linear_data, exact):
    X, y = linear_data
    state, _ = laplace_state(
        MODEL.apply_fn, MODEL.likelihood, _map_params(exact), X, y, hessian_structure="full"
    )
    tuned = tune_marglik(state, jnp.float32(1.0), 1.0, steps=500, learning_rate=0.05)
    prior, sigma = float(tuned["prior_precision"]), float(tuned["sigma"])
    best = float(log_marginal_likelihood(state, prior, sigma))
    np.testing.assert_allclose(best, float(tuned["log_marginal_likelihood"]), rtol=1e-5)
    for p, s in [
        (prior * 1.3, sigma),
        (prior / 1.3, sigma),
        (prior, sigma * 1.1),
        (prior, sigma / 1.1),
    ]:
        assert float(log_marginal_likelihood(state, p, s)) < best
    # The evidence-optimal noise is near the residual scale of the data (0.3).
    assert 0.2 < sigma < 0.4
