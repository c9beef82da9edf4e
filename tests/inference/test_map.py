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


# --- degenerate designs (issue 18): never a raw linear-algebra error ---------------------------


def test_map_one_sample_is_the_min_norm_interpolant():
    """One row, equal Normal priors on all weights: the noise mode goes to 0 and the weights go
    to the prior-closest interpolant, w = A'(AA')^-1 y, whatever the BLAS does with the
    singular normal equations."""
    X, y = np.array([[1.0, 2.0, -1.0]]), np.array([3.0])
    prior = LinearPrior(coef=Normal(0, 10), intercept=Normal(0, 10))
    with pytest.warns(UserWarning, match="floor"):
        reg = px.BayesianLinearRegression(method="map", prior=prior).fit(X, y)
    A = np.column_stack([np.ones(1), X])
    expected = A.T @ np.linalg.inv(A @ A.T) @ y
    np.testing.assert_allclose(np.r_[reg.intercept_, reg.coef_], expected, rtol=1e-6)


def test_map_does_not_depend_on_whether_a_singular_solve_raises(monkeypatch, data):
    """On some CPUs / BLAS builds np.linalg.solve raises on an exactly singular system and on
    others it does not: the MAP fit must not call it (so every machine gives the same answer)."""
    X, y = data

    def refuse(*args, **kwargs):
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(np.linalg, "solve", refuse)
    X_dup = np.column_stack([X, X[:, 0]])  # duplicated column: X'X singular
    reg = px.BayesianLinearRegression(method="map").fit(X_dup, y)
    # Equal Normal priors on the two copies split their joint effect evenly between them.
    assert reg.coef_[0] == pytest.approx(reg.coef_[-1], rel=1e-8)
    ridge = Ridge(alpha=reg.sigma_**2 / 10.0**2, tol=1e-12, fit_intercept=False)
    A = np.column_stack([np.ones(len(y)), X_dup])
    # Normal(0, 10) on the intercept too: ridge on the augmented design without its own intercept.
    ridge.fit(A, y)
    np.testing.assert_allclose(np.r_[reg.intercept_, reg.coef_], ridge.coef_, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(
    ("X", "n_samples"),
    [
        (np.ones((1, 2)), 1),  # one sample
        (np.column_stack([np.arange(5.0), np.arange(5.0)]), 5),  # duplicated column
        (np.random.default_rng(0).normal(size=(3, 6)), 3),  # fewer samples than weights
        (np.column_stack([np.arange(5.0), np.full(5, 2.0)]), 5),  # constant column + intercept
    ],
)
def test_map_flat_priors_that_leave_the_mode_underdetermined_are_refused(X, n_samples):
    y = np.arange(X.shape[0], dtype=float)
    prior = LinearPrior(coef=Flat(), intercept=Flat())
    with pytest.raises(
        ValueError, match=rf"'prior' parameter .* Flat .* with {n_samples} sample\(s\).*Normal"
    ):
        px.BayesianLinearRegression(method="map", prior=prior).fit(X, y)


def test_map_flat_intercept_with_proper_coef_prior_fits_one_sample():
    """A flat intercept alone is identified by a single row."""
    prior = LinearPrior(coef=Laplace(0, 1.0), intercept=Flat())
    with pytest.warns(UserWarning, match="floor"):
        reg = px.BayesianLinearRegression(method="map", prior=prior).fit(np.ones((1, 3)), [2.0])
    # The lasso penalty is cheapest with every coefficient at 0 and the intercept fitting y.
    np.testing.assert_allclose(reg.coef_, 0.0, atol=1e-6)
    assert reg.intercept_ == pytest.approx(2.0, abs=1e-6)
