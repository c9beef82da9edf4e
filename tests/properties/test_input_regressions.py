"""Plain regression tests for the input bugs the properties in test_estimator_inputs.py found.

Each reproduces one failing input (shrunk by hypothesis or found by hand) and checks the fix: a
clear error naming the parameter, or a correct finite result. Networks use one shape, (12, 3),
so the whole file compiles each training loop once.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest

import posterax as px
import posterax.estimators.common as common
from flat_settings import flat_estimator

NET = dict(method="map", hidden=(4,), num_epochs=2, batch_size=12, progress_bar=False)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 3))
    return X, X @ np.array([1.0, -2.0, 0.5]) + 0.3 * rng.normal(size=12)


@pytest.fixture(scope="module")
def regressor(data):
    return flat_estimator(px.BayesianRegressor, **NET).fit(*data)


@contextlib.contextmanager
def _strict():
    """NumPy overflow/invalid warnings are how silent NaN starts: make them errors."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


# ----------------------------------------------------------------- wrong number of columns
@pytest.mark.parametrize("which", ["linear", "network"])
def test_wrong_feature_count_names_X_and_keeps_sklearn_wording(which, data, regressor):
    X, y = data
    model = px.BayesianLinearRegression().fit(X, y) if which == "linear" else regressor
    name = type(model).__name__
    # was sklearn's bare "X has 2 features, ..." without the parameter, the rule or the fix
    with pytest.raises(
        ValueError,
        match=rf"The 'X' parameter of {name}\.predict must have the 3 feature column\(s\) seen at "
        rf"fit time: X has 2 features, but {name} is expecting 3 features as input\. Pass the same",
    ):
        model.predict(X[:, :2])


# ------------------------------------------------------------ exact linear: scale limits
def test_linear_one_row_at_1e14_is_a_clear_error_not_linalgerror():
    # was numpy.linalg.LinAlgError: Matrix is not positive definite (Cholesky of prior + X'X)
    with pytest.raises(
        ValueError, match=r"'X' parameter of BayesianLinearRegression\.fit must be "
    ):
        px.BayesianLinearRegression().fit(np.array([[1.25730221e14, -1.32104863e14]]), [3e-31])


def test_linear_rounding_swamped_posterior_is_refused_or_finite():
    """Identical rows with columns up to 1e29: the factorisation 'succeeded' but with negative
    leverages, so predict_interval(kind="mean") returned NaN (sqrt of a negative)."""
    X = np.tile([-0.128, -4.29e14, 1.37e-30, -2.3e-31, 0.398, 2.73e29], (12, 1))
    y = np.arange(12.0) - 6
    with _strict():
        try:
            model = px.BayesianLinearRegression().fit(X, y)
        except ValueError as err:
            assert "'X' parameter of BayesianLinearRegression.fit" in str(err)
            return
        for kind in ("predictive", "mean"):
            lo, hi = model.predict_interval(X, kind=kind)
            assert np.isfinite(lo).all() and np.isfinite(hi).all() and np.all(lo <= hi)


@pytest.mark.parametrize("which", ["X", "y"])
def test_linear_values_near_float_max_are_a_clear_error_not_nan(which, data):
    X, y = data
    X, y = (X * 1e300, y) if which == "X" else (X, y * 1e300)
    with _strict(), pytest.raises(ValueError, match=rf"The '{which}' parameter of .*fit must be"):
        px.BayesianLinearRegression().fit(X, y)  # was: fit fine, then NaN/inf predictions


def test_linear_predict_at_overflowing_inputs_is_a_clear_error(data):
    model = px.BayesianLinearRegression().fit(*data)
    for call in (model.predict, model.predict_interval):  # was NaN/inf, silently
        with _strict(), pytest.raises(ValueError, match=r"'X' parameter .* must be small enough"):
            call(data[0] * 1e300)


# ------------------------------------------------------------ networks: standardisation
def test_constant_column_gets_unit_scale_not_rounding_noise(data):
    """12 copies of 1.2573e-31: the float mean is off by an ulp, so its 'sd' was ~1e-47 and
    an input of 1000 became 1e50 standard deviations (overflow in the float32 cast)."""
    X, y = data
    X = X.copy()
    X[:, 0] = 1.25730221e-31
    model = flat_estimator(px.BayesianRegressor, **NET).fit(X, y)
    assert model.x_scale_[0] == 1.0 and model.x_mean_[0] == 1.25730221e-31
    X_new = X.copy()
    X_new[:, 0] = 1000.0
    with _strict():
        mean, std = model.predict(X_new, return_std=True)
    assert np.isfinite(mean).all() and np.isfinite(std).all()


def test_feature_near_float_max_is_standardised_not_zeroed(data):
    X, y = data
    model = flat_estimator(px.BayesianRegressor, **NET).fit(X * [1e300, 1.0, 1.0], y)
    # was: the sd overflowed to inf, so the column became 0 / inf = 0 (silently ignored)
    np.testing.assert_allclose(model.x_scale_[0] / 1e300, X[:, 0].std(), rtol=1e-12)
    reference = flat_estimator(px.BayesianRegressor, **NET).fit(X, y)
    np.testing.assert_allclose(
        model.predict(X * [1e300, 1.0, 1.0]), reference.predict(X), rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("scale, shift", [(1e29, 0.0), (1e300, 0.0), (1e15, 1e25)])
def test_huge_targets_give_finite_predictions_in_their_units(data, regressor, scale, shift):
    """y ~ 1e29: the float32 samples squared overflowed (an infinite sd); y ~ 1e300 overflowed
    outright; y = 1e25 + 1e15 * noise lost its noise in float32 (1e25 has an ulp of 1e18)."""
    X, y = data
    model = flat_estimator(px.BayesianRegressor, **NET).fit(X, y * scale + shift)
    with _strict():
        mean, std = model.predict(X, return_std=True)
        lo, hi = model.predict_interval(X)
        q = model.predict_quantiles(X, [0.1, 0.9])
    base_mean, base_std = regressor.predict(X, return_std=True)
    np.testing.assert_allclose((mean - shift) / scale, base_mean, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(std / scale, base_std, rtol=1e-4)
    assert np.all(lo < hi) and np.all(q[0] < q[1])


def test_constant_target_near_float_max(data):
    X, _ = data
    model = flat_estimator(px.BayesianRegressor, **NET).fit(X, np.full(12, 1e300))
    mean, std = model.predict(X, return_std=True)  # was NaN (1e300 + float32 -> inf)
    assert model.y_scale_ == 1.0 and model.y_mean_ == 1e300
    assert np.all(mean == 1e300) and np.isfinite(std).all()


def test_network_predict_far_outside_the_data_is_a_clear_error(data, regressor):
    X, y = data
    classifier = flat_estimator(px.BayesianClassifier, **NET).fit(X, y > 0)
    for call in (regressor.predict, regressor.predict_interval, classifier.predict_proba):
        with (
            _strict(),
            pytest.raises(ValueError, match=r"'X' parameter .* must lie within 1e\+12 training"),
        ):
            call(X * 1e30)  # was a float32 overflow warning and NaN predictions


def test_nonfinite_summaries_are_a_clear_error(data, regressor, monkeypatch):
    """The guard behind the input limit: whatever still overflows says so (no NaN output)."""
    monkeypatch.setattr(common, "MAX_STANDARDISED_INPUT", np.inf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(ValueError, match=r"'X' parameter of BayesianRegressor\.predict must"):
            regressor.predict(data[0] * 1e40, return_std=True)  # inf in float32


# ------------------------------------------------------------------ classifier labels
@pytest.mark.parametrize(
    "labels, message",
    [
        # was TypeError: '<' not supported between instances of 'NoneType' and 'str' (numpy)
        (np.array(["a", None] * 6, dtype=object), r"must not contain missing labels .* index 1"),
        (np.array([0.0, np.inf] * 6), r"must not contain NaN or inf\. Got 0 NaN and 6 inf"),
        # was "not whole numbers (e.g. [])": the inf was not shown
        (np.array([0.0, np.nan] * 6), r"must not contain NaN or inf\. Got 6 NaN"),
        (
            np.array(["a", 1] * 6, dtype=object),
            r"must hold labels of one kind .* Got a mix of int, string",
        ),
    ],
)
def test_bad_class_labels_are_clear_errors(data, labels, message):
    with pytest.raises(
        ValueError, match=r"The 'y' parameter of BayesianClassifier\.fit " + message
    ):
        flat_estimator(px.BayesianClassifier, **NET).fit(data[0], labels)
