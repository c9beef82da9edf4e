import numpy as np
import pytest
from sklearn.datasets import make_regression
from sklearn.linear_model import Lasso, Ridge

import posterax as px
from posterax.priors import Flat, Laplace, LinearPrior, Normal, NormalInverseGamma


@pytest.fixture(scope="module")
def data():
    X, y = make_regression(n_samples=80, n_features=6, n_informative=3, noise=5.0, random_state=0)
    return X, y


@pytest.mark.parametrize("scale", [0.3, 2.0, 50.0])
def test_map_gaussian_prior_is_ridge(data, scale):
    X, y = data
    prior = LinearPrior(coef=Normal(0, scale), intercept=Flat())
    reg = px.BayesianLinearRegression(method="map", prior=prior).fit(X, y)
    ridge = Ridge(alpha=reg.sigma_**2 / scale**2, tol=1e-12).fit(X, y)
    np.testing.assert_allclose(reg.coef_, ridge.coef_, rtol=1e-7, atol=1e-8)
    assert reg.intercept_ == pytest.approx(ridge.intercept_, abs=1e-7)


@pytest.mark.parametrize("scale", [0.2, 1.0])
def test_map_laplace_prior_is_lasso(data, scale):
    X, y = data
    prior = LinearPrior(coef=Laplace(0, scale), intercept=Flat())
    reg = px.BayesianLinearRegression(method="map", prior=prior).fit(X, y)
    lasso = Lasso(alpha=reg.sigma_**2 / (len(y) * scale), tol=1e-14, max_iter=200_000).fit(X, y)
    np.testing.assert_allclose(reg.coef_, lasso.coef_, rtol=1e-6, atol=1e-6)
    assert reg.intercept_ == pytest.approx(lasso.intercept_, abs=1e-6)
    # L1 gives exact zeros on the uninformative features for the tighter prior.
    if scale == 0.2:
        assert np.sum(reg.coef_ == 0.0) >= 1
        assert np.array_equal(reg.coef_ == 0.0, lasso.coef_ == 0.0)


def test_map_sigma_is_the_mode_of_its_conditional(data):
    """With a HalfCauchy(s) noise prior the sigma mode solves n/sigma - SSR/sigma^3 + 2 sigma/(s^2+sigma^2) = 0."""
    X, y = data
    reg = px.BayesianLinearRegression(method="map").fit(X, y)
    ssr = np.sum((y - reg.intercept_ - X @ reg.coef_) ** 2)
    s, sig = 5.0, reg.sigma_
    assert len(y) / sig - ssr / sig**3 + 2 * sig / (s**2 + sig**2) == pytest.approx(0.0, abs=1e-6)


def test_map_of_conjugate_prior_is_near_exact_mean(seed_data):
    X, y, _ = seed_data
    prior = NormalInverseGamma()
    map_reg = px.BayesianLinearRegression(method="map", prior=prior).fit(X, y)
    exact = px.BayesianLinearRegression(method="exact", prior=prior).fit(X, y)
    # Given sigma, the weights' conditional is Gaussian: its mode is the exact posterior mean.
    np.testing.assert_allclose(map_reg.coef_, exact.coef_, rtol=1e-8)
    assert map_reg.intercept_ == pytest.approx(exact.intercept_, rel=1e-8)
