"""Conformal Bayes: the importance-sampled p-values equal brute-force full conformal (one exact
conjugate refit per candidate), coverage over repetitions with a right and a wrong model,
clear errors."""

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

import posterax as px
from posterax.conformal import ConformalBayesRegressor, conformal_bayes_pvalues
from posterax.inference.exact import fit_exact


def _data(n, seed, noise=1.0, heavy=False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 1))
    eps = rng.standard_t(2, size=n) if heavy else rng.normal(size=n)
    return X, 0.5 + 2.0 * X[:, 0] + noise * eps


def test_pvalues_equal_brute_force_full_conformal():
    """Full conformal by definition: refit the conjugate posterior on the n training points
    plus (x, y) for each candidate y, score every point by its Student-t posterior predictive
    density, rank. 20 000 posterior draws: the p-values agree within a rank or two."""
    X, y = _data(30, seed=0)
    x_test = np.array([[0.7]])
    cb = ConformalBayesRegressor(
        px.BayesianLinearRegression(method="exact", random_state=0), 0.8, n_samples=20_000
    ).fit_conformalize(X, y)
    prior = cb.estimator_.prior_
    grid, in_set = cb.predict_candidates(x_test)
    mean, scale = cb._draws(x_test)
    train_ll = -0.5 * ((y - mean[:, :30]) / scale[:, :30]) ** 2 - np.log(scale[:, :30])
    cand_ll = -0.5 * ((grid[0] - mean[:, 30:]) / scale[:, 30:]) ** 2 - np.log(scale[:, 30:])
    ours = conformal_bayes_pvalues(train_ll, cand_ll)
    reference = []
    for candidate in grid[0]:
        X_aug, y_aug = np.vstack([X, x_test]), np.append(y, candidate)
        density = fit_exact(X_aug, y_aug, prior).predictive_t(X_aug).logpdf(y_aug)
        reference.append(np.sum(density[:30] <= density[30]) + 1)
    reference = np.array(reference) / 31.0
    assert np.max(np.abs(ours - reference)) <= 2.0 / 31 + 1e-12, np.abs(ours - reference).max()
    assert np.mean(np.abs(ours - reference) < 1e-12) > 0.9
    # the sets: 1 - alpha = 0.8 keeps p > 0.2; equal but at most a grid point at each end
    assert np.sum(in_set[0] != (reference > 0.2)) <= 2


@pytest.mark.parametrize("heavy", [False, True], ids=["right-model", "heavy-tailed-noise"])
def test_coverage_over_repetitions(heavy):
    """200 repetitions x 20 test points with the exact posterior: coverage 0.9 within Monte
    Carlo error (sd about 0.0067 for 4000 correlated-by-repetition hits) whether the Gaussian
    noise model is right or not (Student-t noise with 2 degrees of freedom)."""
    hits = []
    for rep in range(200):
        X, y = _data(60, seed=rep, heavy=heavy)
        cb = ConformalBayesRegressor(
            px.BayesianLinearRegression(method="exact", random_state=rep),
            0.9,
            grid_size=100,
            grid_width=8.0,
            n_samples=300,
        ).fit_conformalize(X[:40], y[:40])
        lower, upper = cb.predict_interval(X[40:])
        hits.append(np.mean((lower <= y[40:]) & (y[40:] <= upper)))
    assert 0.9 - 0.025 <= np.mean(hits) <= 0.9 + 0.045, np.mean(hits)


def test_bad_input_names_the_fix():
    X, y = _data(20, seed=1)
    with pytest.raises(ValueError, match="at least 19"):
        ConformalBayesRegressor(px.BayesianLinearRegression(method="exact"), 0.95).fit_conformalize(
            X[:10], y[:10]
        )
    with pytest.raises(TypeError, match="predict_samples"):
        ConformalBayesRegressor(LinearRegression()).fit_conformalize(X, y)
    with pytest.raises(ValueError, match="same draws"):
        conformal_bayes_pvalues(np.zeros((5, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="'train_log_lik'"):
        conformal_bayes_pvalues(np.full((5, 3), np.nan), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="'grid_width'"):
        ConformalBayesRegressor(px.BayesianLinearRegression(), grid_width=0).fit_conformalize(X, y)
    fitted = ConformalBayesRegressor(px.BayesianLinearRegression(method="exact")).fit_conformalize(
        X, y
    )
    with pytest.raises(ValueError, match="'confidence_level'"):
        fitted.set_params(confidence_level=90).predict_interval(X[:2])


def test_integer_training_inputs_do_not_truncate_test_inputs():
    X, y = _data(40, seed=2)
    X_int = np.round(X * 3).astype(int)
    cb = ConformalBayesRegressor(px.BayesianLinearRegression(method="exact", random_state=0))
    cb.fit_conformalize(X_int, y)
    at_07, at_0 = cb.predict(np.array([[0.7]])), cb.predict(np.array([[0.0]]))
    expected = cb.estimator_.predict(np.array([[0.7], [0.0]]))
    np.testing.assert_allclose([at_07[0], at_0[0]], expected, atol=0.05)  # Monte Carlo
    assert at_07[0] - at_0[0] > 0.3  # truncated, 0.7 would predict as 0


def test_chunked_candidates_equal_one_pass(monkeypatch):
    from posterax.conformal import bayes

    X, y = _data(40, seed=3)
    cb = ConformalBayesRegressor(
        px.BayesianLinearRegression(method="exact", random_state=0), grid_size=50, n_samples=200
    ).fit_conformalize(X, y)
    whole = cb.predict_candidates(X[:7])
    monkeypatch.setattr(bayes, "_CHUNK", 200 * 50 * 2)  # two test points per chunk
    chunked = cb.predict_candidates(X[:7])
    np.testing.assert_array_equal(whole[1], chunked[1])
    np.testing.assert_allclose(whole[0], chunked[0])
