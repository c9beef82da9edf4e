"""Every bad input gets a clear error naming the parameter, the rule, the value and the fix."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

import posterax as px


@pytest.fixture(scope="module")
def fitted(seed_data):
    X, y, _ = seed_data
    return px.BayesianLinearRegression(method="exact").fit(X, y)


def _fit(X, y, **kw):
    return px.BayesianLinearRegression(**kw).fit(X, y)


def test_nan_in_X(seed_data):
    X, y, _ = seed_data
    X = X.copy()
    X[3, 0] = np.nan
    with pytest.raises(
        ValueError, match=r"'X' parameter .* NaN or inf\. Got 1 NaN .* index \(3, 0\).*impute"
    ):
        _fit(X, y)


def test_inf_in_y(seed_data):
    X, y, _ = seed_data
    y = y.copy()
    y[5] = np.inf
    with pytest.raises(ValueError, match=r"'y' parameter .* Got 0 NaN and 1 inf"):
        _fit(X, y)


def test_1d_X(seed_data):
    X, y, _ = seed_data
    with pytest.raises(
        ValueError, match=r"'X' parameter .* 2-D .* Got a 1-D array .*reshape\(-1, 1\)"
    ):
        _fit(X[:, 0], y)


def test_length_mismatch(seed_data):
    X, y, _ = seed_data
    with pytest.raises(
        ValueError, match=r"'y' parameter .* Got 99 target\(s\) for 100 sample\(s\)"
    ):
        _fit(X, y[:-1])


def test_empty_data():
    with pytest.raises(ValueError, match=r"at least 1 sample .* 0 sample\(s\) \(shape=\(0, 2\)\)"):
        _fit(np.zeros((0, 2)), np.zeros(0))


def test_non_numeric_X(seed_data):
    _, y, _ = seed_data
    X = np.array([["a"], ["b"]] * 50)
    with pytest.raises(
        TypeError, match=r"'X' parameter .* must be numeric\. Got dtype <U1.*OneHotEncoder"
    ):
        _fit(X, y)


def test_non_numeric_y(seed_data):
    X, _, _ = seed_data
    with pytest.raises(TypeError, match=r"'y' parameter .* numeric"):
        _fit(X, np.array(["x"] * 100))


def test_predict_before_fit(seed_data):
    X, _, _ = seed_data
    for call in ("predict", "predict_interval", "predict_samples", "summary", "save"):
        with pytest.raises(NotFittedError):
            getattr(px.BayesianLinearRegression(), call)(
                X
            ) if call != "save" else px.BayesianLinearRegression().save("x")


def test_level_percent_hint(fitted, seed_data):
    X, _, _ = seed_data
    with pytest.raises(
        ValueError,
        match=r"'level' parameter .* must be in \(0, 1\)\. Got 95\. Did you mean 0\.95\?",
    ):
        fitted.predict_interval(X, level=95)
    with pytest.raises(ValueError, match=r"Got 1\.0\. Pass e\.g\. level=0\.95\.$"):
        fitted.predict_interval(X, level=1.0)
    with pytest.raises(TypeError, match=r"'level' .* Got '0.9' of type str"):
        fitted.predict_interval(X, level="0.9")


def test_unknown_method_lists_allowed(seed_data):
    X, y, _ = seed_data
    with pytest.raises(
        ValueError, match=r"'method' .* one of 'exact', 'nuts', 'map'\. Got 'laplace'"
    ):
        _fit(X, y, method="laplace")


def test_wrong_prior_for_exact(seed_data):
    X, y, _ = seed_data
    with pytest.raises(TypeError, match=r"NormalInverseGamma when method='exact'"):
        _fit(X, y, method="exact", prior=px.priors.LinearPrior())
    with pytest.raises(TypeError, match="'prior' parameter"):
        _fit(X, y, method="map", prior="normal")


def test_bad_prior_values():
    with pytest.raises(
        ValueError, match=r"'scale' parameter of Normal must be a finite float > 0\. Got -1"
    ):
        px.priors.Normal(0, -1)
    with pytest.raises(TypeError, match=r"'noise' prior of LinearPrior"):
        px.priors.LinearPrior(noise=px.priors.Normal(0, 1))


def test_wrong_number_of_features(fitted):
    with pytest.raises(
        ValueError, match="X has 2 features, but BayesianLinearRegression is expecting 1"
    ):
        fitted.predict(np.zeros((3, 2)))


def test_bad_kind_and_n_samples(fitted, seed_data):
    X, _, _ = seed_data
    with pytest.raises(ValueError, match=r"'kind' .* Got 'noise'"):
        fitted.predict_interval(X, kind="noise")
    with pytest.raises(ValueError, match=r"'n_samples' .* int >= 1\. Got 0"):
        fitted.predict_samples(X, n_samples=0)


def test_bad_random_state(seed_data):
    X, y, _ = seed_data
    with pytest.raises(TypeError, match=r"'random_state' .* int or None\. Got 'abc'"):
        _fit(X, y, random_state="abc")
    with pytest.raises(
        ValueError, match=r"'num_samples' parameter of px.methods.NUTS .* int >= 1\. Got 0"
    ):
        _fit(X, y, method=px.methods.NUTS(num_samples=0))
