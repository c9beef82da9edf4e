"""``predict_interval(kind="conformal")``: the central predictive interval at the level set on
the rows a fit held out (split conformal prediction with the score ``|2 F(y) - 1|``)."""

import math

import numpy as np
import pytest

import posterax as px
from posterax.conformal import conformal_quantile
from posterax.estimators.held_out import INTERVAL_SCORES, conformal_level, interval_scores

N_TRAIN, N_TEST = 3000, 20000


def _student_t_line(n, seed):
    """y = x + t(3) noise: a Gaussian predictive fitted by likelihood has the wrong shape (its
    sd matches the noise's, sqrt(3) of the t scale, so its central 50% interval holds 0.67)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, (n, 1))
    return X, X[:, 0] + 0.3 * rng.standard_t(3, size=n)


@pytest.fixture(scope="module")
def map_fit():
    X, y = _student_t_line(N_TRAIN, 0)
    method = px.methods.MAP(px.methods.Training(num_epochs=200))
    reg = px.BayesianRegressor(method, network=(8,), random_state=0, progress_bar=False)
    return reg.fit(X, y)


def _coverage(reg, X, y, level, kind):
    lower, upper = reg.predict_interval(X, level, kind=kind)
    return float(np.mean((lower <= y) & (y <= upper)))


def _tolerance(level, n_val):
    """Split conformal coverage ~ Beta(k, n + 1 - k), k = ceil((n + 1) level), plus the test
    rows' binomial error: its mean and four of its sds."""
    k = math.ceil((n_val + 1) * level)
    mean = k / (n_val + 1)
    sd = math.sqrt(mean * (1 - mean) / (n_val + 2) + level * (1 - level) / N_TEST)
    return mean, 4 * sd


def test_conformal_interval_covers_the_nominal_share_where_the_predictive_does_not(map_fit):
    X, y = _student_t_line(N_TEST, 1)
    n_val = len(map_fit.posterior_.info[INTERVAL_SCORES])
    assert n_val == round(0.1 * N_TRAIN)  # the rows early stopping held out
    for level in (0.5, 0.9):
        mean, tolerance = _tolerance(level, n_val)
        conformal = _coverage(map_fit, X, y, level, "conformal")
        assert abs(conformal - mean) < tolerance, (level, conformal, mean, tolerance)
    # The Gaussian predictive's own 50% interval covers far more (t(3) noise: about 0.67).
    mean, tolerance = _tolerance(0.5, n_val)
    assert _coverage(map_fit, X, y, 0.5, "predictive") > mean + tolerance


def test_conformal_level_is_the_split_conformal_quantile_of_the_scores():
    rng = np.random.default_rng(3)
    scores = np.sort(rng.uniform(size=57))
    for level in (0.5, 0.8, 0.9, 0.95):
        expected = float(conformal_quantile(scores, alpha=1 - level))
        assert conformal_level(scores, level, "here") == pytest.approx(expected)


def test_interval_at_the_conformal_level_is_the_predictive_interval_at_that_level(map_fit):
    X = np.linspace(-2, 2, 9)[:, None]
    scores = map_fit.posterior_.info[INTERVAL_SCORES]
    level = conformal_level(scores, 0.9, "here")
    np.testing.assert_allclose(
        map_fit.predict_interval(X, 0.9, kind="conformal"),
        map_fit.predict_interval(X, level),
        rtol=1e-6,
    )


def test_scores_are_those_of_the_calibrated_predictive():
    """|2F(y) - 1| of a standard normal predictive: 0 at the median, 0.95 at 1.96 sd."""
    pred = px.PredictiveSamples.regression(np.zeros((2, 3)), np.ones((2, 3)))
    np.testing.assert_allclose(
        interval_scores(pred, np.array([1.959964, 0.0, -0.6744898])), [0.0, 0.5, 0.95], atol=1e-5
    )


def test_a_level_the_held_out_rows_cannot_support_is_refused(map_fit):
    n_val = len(map_fit.posterior_.info[INTERVAL_SCORES])
    level = 1 - 0.5 / (n_val + 1)  # needs more rows than there are
    with pytest.raises(ValueError, match=rf"'level' .* at most .* the {n_val} held-out rows"):
        map_fit.predict_interval(np.zeros((2, 1)), level, kind="conformal")


def test_a_fit_without_held_out_rows_says_so():
    X, y = _student_t_line(200, 2)
    training = px.methods.Training(num_epochs=5, validation_fraction=None)
    reg = px.BayesianRegressor(
        px.methods.MAP(training), network=(4,), random_state=0, progress_bar=False
    ).fit(X, y)
    with pytest.raises(ValueError, match="'kind' .* 'conformal' only after a fit that held rows"):
        reg.predict_interval(X, 0.9, kind="conformal")
    linear = px.BayesianLinearRegression().fit(X, y)
    with pytest.raises(ValueError, match="held out none"):
        linear.predict_interval(X, 0.9, kind="conformal")


def test_laplace_scores_its_own_predictive_not_its_maps():
    X, y = _student_t_line(400, 4)
    training = px.methods.Training(num_epochs=100)
    fits = {
        name: px.BayesianRegressor(
            method(training=training), network=(8,), random_state=0, progress_bar=False
        ).fit(X, y)
        for name, method in (("map", px.methods.MAP), ("laplace", px.methods.Laplace))
    }
    scores = {name: fit.posterior_.info[INTERVAL_SCORES] for name, fit in fits.items()}
    assert len(scores["laplace"]) == len(scores["map"])  # the same held-out rows
    assert not np.allclose(scores["laplace"], scores["map"])  # a wider predictive's scores


def test_scores_survive_save_and_load(map_fit, tmp_path):
    map_fit.save(tmp_path / "m")
    loaded = px.load(tmp_path / "m")
    np.testing.assert_array_equal(
        loaded.posterior_.info[INTERVAL_SCORES], map_fit.posterior_.info[INTERVAL_SCORES]
    )
