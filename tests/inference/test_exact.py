import jax
import numpy as np
import pytest

import posterax as px
from posterax.inference import fit_exact
from posterax.models.priors import NormalInverseGamma
from reference_posteriors import grid_moments, nig_log_prior


@pytest.mark.parametrize(
    "prior",
    [NormalInverseGamma(), NormalInverseGamma(loc=1.0, scale=0.5, concentration=3.0, rate=50.0)],
)
def test_exact_posterior_matches_brute_force_grid(seed_data, prior):
    X, y, _ = seed_data
    post = fit_exact(X, y, prior)
    sigma = post.sigma_marginal()
    exact_mean = np.array([post.loc[0], post.loc[1], sigma.mean()])
    exact_sd = np.array([*post.weight_marginal_std(), sigma.std()])
    grid_mean, grid_sd = grid_moments(
        X,
        y,
        nig_log_prior(prior.loc, prior.scale, prior.concentration, prior.rate),
        centre=exact_mean,
        half_width=7 * exact_sd,
        n=121,
    )
    np.testing.assert_allclose(exact_mean, grid_mean, atol=2e-3 * exact_sd.max())
    np.testing.assert_allclose(exact_sd, grid_sd, rtol=2e-3)


def test_exact_matches_direct_formula_multifeature(multi_data):
    """Posterior mean/cov vs the textbook formulas written out independently with inv()."""
    X, y = multi_data
    prior = NormalInverseGamma(loc=0.3, scale=2.0, concentration=2.0, rate=3.0)
    post = fit_exact(X, y, prior)
    A = np.column_stack([np.ones(len(y)), X])
    V0_inv = np.eye(4) / 4.0
    Vn = np.linalg.inv(V0_inv + A.T @ A)
    mn = Vn @ (V0_inv @ np.full(4, 0.3) + A.T @ y)
    an = 2.0 + len(y) / 2
    bn = 3.0 + 0.5 * (y @ y + 0.3**2 * 4 / 4.0 - mn @ np.linalg.inv(Vn) @ mn)
    np.testing.assert_allclose(post.loc, mn, rtol=1e-10)
    np.testing.assert_allclose(post.cov_factor, Vn, rtol=1e-9)
    assert post.concentration == pytest.approx(an)
    assert post.rate == pytest.approx(bn, rel=1e-9)
    # Marginal covariance of the weights: b_n / (a_n - 1) * V_n.
    np.testing.assert_allclose(
        post.weight_marginal_std() ** 2, bn / (an - 1) * np.diag(Vn), rtol=1e-9
    )


def test_exact_samples_agree_with_closed_form(seed_data):
    X, y, _ = seed_data
    post = fit_exact(X, y, NormalInverseGamma())
    n = 200_000
    draws = post.sample(jax.random.key(3), n)
    sd = post.weight_marginal_std()
    for i, name in enumerate(["intercept", "coef"]):
        values = np.asarray(draws[name]).reshape(n, -1)[:, 0].astype(np.float64)
        assert abs(values.mean() - post.loc[i]) < 5 * sd[i] / np.sqrt(n)
        assert values.std() == pytest.approx(sd[i], rel=0.01)


def test_exact_predictive_is_student_t_of_samples(seed_data):
    """Closed-form predictive interval vs the mixture quantiles of the sampled posterior."""
    X, y, _ = seed_data
    reg = px.BayesianLinearRegression(method="exact", random_state=0).fit(X, y)
    x_new = np.array([[-2.0], [0.0], [3.0]])
    lo, hi = reg.predict_interval(x_new, level=0.9)
    pred = reg.predict_samples(x_new, n_samples=20_000)
    lo_s, hi_s = px.predictive.predictive_interval(pred, 0.9)
    _, std = reg.predict(x_new, return_std=True)
    np.testing.assert_allclose(lo, np.asarray(lo_s), atol=0.03 * std.max())
    np.testing.assert_allclose(hi, np.asarray(hi_s), atol=0.03 * std.max())
    # Mean band is narrower than the predictive interval and contains the mean.
    mlo, mhi = reg.predict_interval(x_new, level=0.9, kind="mean")
    assert np.all((lo < mlo) & (mlo < reg.predict(x_new)) & (reg.predict(x_new) < mhi) & (mhi < hi))
