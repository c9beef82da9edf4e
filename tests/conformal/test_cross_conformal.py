"""CV+, jackknife+, CV-minmax and jackknife+-after-bootstrap: the same intervals as MAPIE 1.6 on the same data, estimator and
folds; coverage over repetitions within Monte Carlo error; clear errors."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold, LeaveOneOut, ShuffleSplit

import posterax as px
from posterax.conformal import (
    CrossConformalRegressor,
    JackknifeAfterBootstrapRegressor,
    cross_conformal_interval,
)


def _data(n=103, m=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n + m, 3))
    y = X @ [1.0, -2.0, 0.5] + rng.normal(size=n + m)
    return X[:n], y[:n], X[n:], y[n:]


@pytest.mark.parametrize("method", ["plus", "minmax"])
@pytest.mark.parametrize(
    "cv", [KFold(5, shuffle=True, random_state=1), LeaveOneOut()], ids=["cv+", "jackknife+"]
)
def test_intervals_equal_mapies(method, cv):
    regression = pytest.importorskip("mapie.regression")
    X, y, X_test, _ = _data()
    ours = CrossConformalRegressor(Ridge(), confidence_level=0.9, method=method, cv=cv)
    lower, upper = ours.fit_conformalize(X, y).predict_interval(X_test)
    theirs = regression.CrossConformalRegressor(
        Ridge(), confidence_level=0.9, method=method, cv=cv
    ).fit_conformalize(X, y)
    point, intervals = theirs.predict_interval(X_test)
    np.testing.assert_allclose(lower, intervals[:, 0, 0], atol=1e-6)
    np.testing.assert_allclose(upper, intervals[:, 1, 0], atol=1e-6)
    np.testing.assert_allclose(ours.predict(X_test), point, atol=1e-6)


def test_chunked_bounds_equal_one_pass(monkeypatch):
    from posterax.conformal import cross

    rng = np.random.default_rng(3)
    preds, fold_of, R = rng.normal(size=(4, 50)), rng.integers(0, 4, 60), rng.exponential(size=60)
    whole = cross_conformal_interval(preds, fold_of, R, 0.1)
    monkeypatch.setattr(cross, "_MAX_ENTRIES", 7 * 60)  # 7 test points per chunk
    chunked = cross_conformal_interval(preds, fold_of, R, 0.1)
    np.testing.assert_array_equal(np.stack(whole), np.stack(chunked))


def test_coverage_over_repetitions_within_monte_carlo_error():
    """CV+ covers at least 1 - 2 alpha in theory and about 1 - alpha in practice; minmax at
    least 1 - alpha. 200 repetitions x 40 test points, fixed seeds."""
    hits = {"plus": [], "minmax": []}
    for rep in range(200):
        X, y, X_test, y_test = _data(n=60, seed=rep)
        for method in hits:
            model = CrossConformalRegressor(Ridge(), 0.9, method=method, cv=5, random_state=rep)
            lower, upper = model.fit_conformalize(X, y).predict_interval(X_test)
            hits[method].append(np.mean((lower <= y_test) & (y_test <= upper)))
    se = np.sqrt(0.9 * 0.1 / (200 * 40))  # binomial; repetitions share nothing
    assert abs(np.mean(hits["plus"]) - 0.9) < 4 * se + 0.01, np.mean(hits["plus"])
    assert np.mean(hits["minmax"]) > 0.9 - 4 * se


def test_a_posterax_estimator_goes_in_unchanged():
    X, y, X_test, y_test = _data(n=120, m=200)
    lin = px.BayesianLinearRegression(method="map")
    lower, upper = (
        CrossConformalRegressor(lin, 0.9, cv=4).fit_conformalize(X, y).predict_interval(X_test)
    )
    assert 0.8 < np.mean((lower <= y_test) & (y_test <= upper)) <= 1.0


def test_bad_input_is_refused_by_name():
    X, y, _, _ = _data(n=12)
    with pytest.raises(ValueError, match=r"12 calibration points are too few for alpha=0.01"):
        CrossConformalRegressor(Ridge(), 0.99, cv=3).fit_conformalize(X, y)
    with pytest.raises(ValueError, match=r"'cv' parameter .* int in \[2, n_samples=12\]"):
        CrossConformalRegressor(Ridge(), cv=1).fit_conformalize(X, y)
    with pytest.raises(ValueError, match=r"'cv' parameter .* do not overlap"):
        CrossConformalRegressor(
            Ridge(), cv=ShuffleSplit(3, test_size=6, random_state=0)
        ).fit_conformalize(X, y)
    with pytest.raises(ValueError, match=r"'method' parameter .* 'plus', 'minmax'"):
        CrossConformalRegressor(Ridge(), method="base").fit_conformalize(X, y)


@pytest.mark.parametrize("method", ["plus", "minmax"])
def test_jackknife_after_bootstrap_equals_mapies(method):
    regression = pytest.importorskip("mapie.regression")
    from mapie.subsample import Subsample

    X, y, X_test, _ = _data()
    ours = JackknifeAfterBootstrapRegressor(
        Ridge(), 0.9, method=method, resampling=Subsample(n_resamplings=20, random_state=3)
    ).fit_conformalize(X, y)
    theirs = regression.JackknifeAfterBootstrapRegressor(
        Ridge(), confidence_level=0.9, method=method,
        resampling=Subsample(n_resamplings=20, random_state=3),
    ).fit_conformalize(X, y)  # fmt: skip
    point, intervals = theirs.predict_interval(X_test)
    lower, upper = ours.predict_interval(X_test)
    np.testing.assert_allclose(lower, intervals[:, 0, 0], atol=1e-6)
    np.testing.assert_allclose(upper, intervals[:, 1, 0], atol=1e-6)
    np.testing.assert_allclose(ours.predict(X_test), point, atol=1e-6)


def test_jackknife_after_bootstrap_covers_and_refuses_bad_resampling():
    hits = []
    for rep in range(100):
        X, y, X_test, y_test = _data(n=60, seed=1000 + rep)
        model = JackknifeAfterBootstrapRegressor(Ridge(), 0.9, resampling=20, random_state=rep)
        lower, upper = model.fit_conformalize(X, y).predict_interval(X_test)
        hits.append(np.mean((lower <= y_test) & (y_test <= upper)))
    se = np.sqrt(0.9 * 0.1 / (100 * 40))
    assert abs(np.mean(hits) - 0.9) < 4 * se + 0.01, np.mean(hits)
    with pytest.raises(ValueError, match=r"'resampling' parameter .* int >= 2\. Got 1"):
        JackknifeAfterBootstrapRegressor(Ridge(), resampling=1).fit_conformalize(X, y)
