"""Property-based input hardening of the estimators' fit/predict (hypothesis).

Random shapes, dtypes, NaN/inf placement, magnitudes from 1e-30 to 1e30, constant columns and
duplicated rows. Every outcome must be either a correct result or one of our clear errors (a
ValueError/TypeError naming the parameter in quotes and the rule) — never an exception from
inside JAX/NumPy/SciPy and never silent NaN/inf output.

Each property runs twice: a small deterministic profile in the default run, and a larger one
marked ``slow``. Network shapes come from a small fixed set because every new shape compiles.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import posterax as px
from flat_settings import flat_estimator

_COMMON = dict(
    deadline=None,
    derandomize=True,  # a fixed seed: CI sees the same examples every run
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

FLOAT_DTYPES = ("float64", "float32")
EXPONENTS = (-30, -15, -3, 0, 3, 15, 30)  # column magnitudes 10**k
MODERATE = (-3, 0, 3)
NONFINITE = (np.nan, np.inf, -np.inf)
NET = dict(method="map", hidden=(4,), num_epochs=2, progress_bar=False, random_state=0)


def two_profiles(strategy, fast: int, slow: int):
    """The same property as a default-run test (``fast`` examples) and a slow one."""

    def make(prop):
        fast_test = settings(max_examples=fast, **_COMMON)(given(strategy)(prop))
        slow_test = settings(max_examples=slow, **_COMMON)(given(strategy)(prop))
        return fast_test, pytest.mark.slow(slow_test)

    return make


# ----------------------------------------------------------------------------- the oracle
def assert_clear_error(err: BaseException, *names: str) -> None:
    """Our clear error: ValueError/TypeError naming one of ``names`` in quotes with a rule."""
    if not isinstance(err, ValueError | TypeError):
        raise AssertionError(f"not one of our clear errors: {type(err).__name__}: {err}") from err
    msg = str(err)
    if not any(f"'{name}'" in msg for name in names):
        raise AssertionError(f"error does not name any of {names} in quotes: {msg}") from err
    if "must" not in msg:
        raise AssertionError(f"error does not state the rule ('must ...'): {msg}") from err


def outcome(call, *names: str, stage: str = ""):
    """``(result, None)`` or ``(None, error)`` where the error is checked to be a clear one.

    NumPy RuntimeWarnings (overflow, invalid value) are turned into failures: they are how a
    silent NaN/inf starts."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            result = call()
        except (ValueError, TypeError) as err:
            assert_clear_error(err, *names)
            named = [name for name in names if f"'{name}'" in str(err)]
            event(f"{stage}: clear error naming {named}")
            return None, err
    event(f"{stage}: result")
    return result, None


def assert_finite(name: str, *arrays) -> None:
    for a in arrays:
        a = np.asarray(a)
        assert np.isfinite(a).all(), f"{name}: non-finite output {a}"


def check_regression_outputs(model, X_pred, n_rows_fit: int | None = None) -> dict:
    """predict (+std) and predict_interval give finite values of the right shape, lo <= hi.

    ``n_rows_fit == 1`` with the exact model: the Student-t predictive has dof 1.002 <= 2, so its
    sd is (correctly) infinite; the mean and the interval stay finite."""
    n = X_pred.shape[0]
    mean, std = model.predict(X_pred, return_std=True)
    lo, hi = model.predict_interval(X_pred, level=0.9)
    lo_m, hi_m = model.predict_interval(X_pred, level=0.5, kind="mean")
    for a in (mean, std, lo, hi, lo_m, hi_m):
        assert a.shape == (n,) and a.dtype == np.float64
    assert_finite("predict mean / intervals", mean, lo, hi, lo_m, hi_m)
    if n_rows_fit == 1 and isinstance(model, px.BayesianLinearRegression):
        assert np.all(np.isposinf(std) | (std >= 0))
    else:
        assert_finite("predict std", std)
        assert np.all(std >= 0)
    assert np.all(lo <= hi) and np.all(lo_m <= hi_m), (lo, hi, lo_m, hi_m)
    assert np.all(lo <= mean + np.abs(mean) * 1e-6 + 1e-300)
    assert np.all(mean - np.abs(mean) * 1e-6 - 1e-300 <= hi)
    return {"mean": mean, "std": std, "lo": lo, "hi": hi}


# ----------------------------------------------------------------------------- strategies
@dataclass
class Case:
    X: np.ndarray
    y: np.ndarray
    X_pred: np.ndarray
    bad_X: bool = False  # NaN/inf in X
    bad_y: bool = False  # NaN/inf in y (or labels that are not labels)
    bad_pred: bool = False  # wrong columns or NaN/inf in X_pred
    moderate: bool = True  # every column magnitude in 1e-3..1e3, no offsets
    notes: list[str] = field(default_factory=list)


def _inject_nonfinite(draw, array: np.ndarray, notes: list[str], what: str) -> np.ndarray:
    """Put 1-3 NaN/inf values at drawn positions (as float; ints and bools cannot hold NaN)."""
    out = array.astype(array.dtype if array.dtype.kind == "f" else np.float64)
    flat = out.reshape(-1)
    for _ in range(draw(st.integers(1, 3))):
        pos = draw(st.integers(0, flat.size - 1))
        flat[pos] = draw(st.sampled_from(NONFINITE))
        notes.append(f"{flat[pos]} in {what}[{np.unravel_index(pos, out.shape)}]")
    return out


@st.composite
def feature_matrices(draw, shapes, exponents=EXPONENTS):
    """``(X, moderate, notes)``: dtype, per-column magnitude and offset, constant columns and
    duplicated rows drawn by hypothesis; the base values from a drawn NumPy seed."""
    n, d = draw(shapes)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dtype = draw(st.sampled_from(("float64", "float32", "int64", "int32", "bool")))
    notes = [f"dtype={dtype}"]
    base = rng.normal(size=(n, d))
    moderate = True
    if dtype in FLOAT_DTYPES:
        exps = np.array(draw(st.lists(st.sampled_from(exponents), min_size=d, max_size=d)))
        X = base * 10.0**exps
        moderate = bool(np.isin(exps, MODERATE).all())
        notes.append(f"column exponents {exps.tolist()}")
        if draw(st.booleans()):  # a column far from 0 with small spread (tiny relative sd)
            j = draw(st.integers(0, d - 1))
            offset = draw(st.sampled_from((1e3, -1e6, 1e12, 1e30)))
            X[:, j] += offset
            moderate = moderate and abs(offset) <= 1e3
            notes.append(f"offset {offset:g} on column {j}")
        X = X.astype(dtype)
    elif dtype == "bool":
        X = base > 0
    else:
        exp = draw(st.sampled_from((0, 3, 8) if dtype == "int32" else (0, 3, 17)))
        X = np.round(base * 10.0**exp).astype(dtype)
        moderate = exp <= 3
        notes.append(f"int magnitude 1e{exp}")
    for j in draw(st.lists(st.integers(0, d - 1), max_size=d, unique=True)):
        X[:, j] = X[0, j]
        notes.append(f"constant column {j}")
    if n > 1 and draw(st.booleans()):
        src = draw(st.integers(0, n - 1))
        dst = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
        X[dst] = X[src]
        notes.append(f"rows {dst} duplicate row {src}")
    return X, moderate, notes


@st.composite
def regression_targets(draw, X: np.ndarray, notes: list[str]):
    n = X.shape[0]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(("linear", "noise", "constant", "int", "bool")))
    exp = draw(st.sampled_from(EXPONENTS))
    notes.append(f"y {kind} 1e{exp}")
    if kind == "linear":  # a linear function of the (column-normalised) features plus noise
        Xf = X.astype(np.float64)
        peak = np.abs(Xf).max(axis=0)
        Z = Xf / np.where(peak > 0, peak, 1.0)
        y = (Z @ rng.normal(size=X.shape[1]) + 0.1 * rng.normal(size=n)) * 10.0**exp
    elif kind == "noise":
        y = rng.normal(size=n) * 10.0**exp + draw(st.sampled_from((0.0, 1e6, -1e30)))
    elif kind == "constant":
        y = np.full(n, draw(st.sampled_from((0.0, 1.0, -3.5, 1e-30, 1e30))))
    elif kind == "int":
        y = rng.integers(-100, 100, size=n)
    else:
        y = rng.normal(size=n) > 0
    if kind in ("linear", "noise") and draw(st.booleans()):
        y = y.astype(np.float32)
    return y


@st.composite
def prediction_inputs(draw, X: np.ndarray, notes: list[str], allow_far: bool = True):
    """``(X_pred, bad)``: the training X, far-away rows, too many/few columns or NaN."""
    kind = draw(
        st.sampled_from(("same", "far", "columns", "nonfinite") if allow_far else ("same",))
    )
    notes.append(f"predict on {kind}")
    if kind == "same":
        return X, False
    if kind == "far":
        scale = draw(st.sampled_from((1e3, 1e10, 1e30)))
        return X.astype(np.float64) * scale + scale, False
    if kind == "columns":
        d = X.shape[1]
        new_d = draw(st.sampled_from([c for c in (d - 1, d + 1) if c >= 1]))
        return np.ones((X.shape[0], new_d)), True
    return _inject_nonfinite(draw, X, notes, "X_pred"), True


@st.composite
def regression_cases(draw, shapes, exponents=EXPONENTS, clean: bool = False):
    """``clean``: no NaN/inf in X or y (the few costly ensemble examples all reach a fit)."""
    X, moderate, notes = draw(feature_matrices(shapes, exponents))
    y = draw(regression_targets(X, notes))
    bad_X = not clean and draw(st.integers(0, 9)) == 0
    bad_y = not clean and draw(st.integers(0, 9)) == 0
    X_pred, bad_pred = draw(prediction_inputs(X, notes))
    if bad_X:
        X = _inject_nonfinite(draw, X, notes, "X")
    if bad_y:
        y = _inject_nonfinite(draw, y, notes, "y")
    return Case(X, y, X_pred, bad_X, bad_y, bad_pred, moderate, notes)


# ------------------------------------------------------------------- linear (exact, cheap)
LINEAR_SHAPES = st.tuples(st.integers(1, 50), st.integers(1, 6))


def _ridge_reference(X: np.ndarray, y: np.ndarray, X_pred: np.ndarray) -> np.ndarray:
    """Posterior mean of the default NormalInverseGamma prior (loc 0, scale 10) by a stable
    least-squares solve of the augmented system [A; I/10] w = [y; 0]."""
    A = np.column_stack([np.ones(len(X)), X])
    aug = np.vstack([A, np.eye(A.shape[1]) / 10.0])
    w = np.linalg.lstsq(aug, np.concatenate([y, np.zeros(A.shape[1])]), rcond=None)[0]
    return np.column_stack([np.ones(len(X_pred)), X_pred]) @ w


@two_profiles(regression_cases(LINEAR_SHAPES), fast=150, slow=2000)
def linear_property(case):
    model = px.BayesianLinearRegression(method="exact")
    fitted, err = outcome(lambda: model.fit(case.X, case.y), "X", "y", stage="fit")
    if case.bad_X or case.bad_y:
        assert err is not None, "NaN/inf input was accepted"
        assert ("'X'" in str(err)) == case.bad_X, err
        return
    if case.moderate:  # valid, well-scaled data (constant columns, duplicates...) must fit
        assert err is None, err
    if err is not None:
        event("fit: refused a valid (ill-conditioned, huge-scale) input")
        return
    out, err = outcome(
        lambda: check_regression_outputs(fitted, case.X_pred, len(case.X)), "X", stage="predict"
    )
    if case.bad_pred:
        assert err is not None and "'X'" in str(err), "bad predict input was accepted"
        return
    if case.moderate:
        assert err is None, err
    if err is None and case.moderate and case.X_pred is case.X:
        # Correct, not just finite: the closed form agrees with a stable ridge solve.
        X64, y64 = case.X.astype(np.float64), case.y.astype(np.float64)
        ref = _ridge_reference(X64, y64, X64)
        tol = 1e-6 * (np.abs(ref).max() + np.abs(y64).max() + 1e-300)
        np.testing.assert_allclose(out["mean"], ref, rtol=1e-6, atol=tol)


test_linear_exact_inputs, test_linear_exact_inputs_slow = linear_property


# --------------------------------------------------------------- networks (MAP, ensembles)
# Every (rows, columns, classes) compiles the training loop once (seconds): few fixed shapes.
NET_SHAPES = st.sampled_from(((12, 3), (1, 2)))
NET_SHAPES_SLOW = st.sampled_from(((12, 3), (1, 2), (7, 1), (30, 6)))
# One row always has one class (an error, no compilation): rarer for the classifier.
CLF_SHAPES = st.sampled_from(((12, 3), (12, 3), (12, 3), (1, 2)))
ONE_SHAPE = st.just((12, 3))


def profiles(fast_strategy, slow_strategy, fast: int, slow: int):
    """Like :func:`two_profiles`, with a wider strategy (more shapes) for the slow run."""

    def make(prop):
        fast_test = settings(max_examples=fast, **_COMMON)(given(fast_strategy)(prop))
        slow_test = settings(max_examples=slow, **_COMMON)(given(slow_strategy)(prop))
        return fast_test, pytest.mark.slow(slow_test)

    return make


def _network(cls, n_rows: int, method: str = "map"):
    extra = {"n_members": 2} if method == "ensemble" else {}
    settings = {**NET, "method": method, "batch_size": n_rows, **extra}  # full batch
    return flat_estimator(cls, **settings)


def _regressor_property(method: str):
    def prop(case):
        model = _network(px.BayesianRegressor, len(case.X), method)
        fitted, err = outcome(lambda: model.fit(case.X, case.y), "X", "y", stage="fit")
        if case.bad_X or case.bad_y:
            assert err is not None and ("'X'" in str(err)) == case.bad_X, err
            return
        assert err is None, err  # X and y are standardised: any finite input must fit
        _, err = outcome(
            lambda: check_regression_outputs(fitted, case.X_pred), "X", stage="predict"
        )
        if case.bad_pred:
            assert err is not None and "'X'" in str(err), "bad predict input was accepted"
        elif case.X_pred is case.X:
            assert err is None, err

    return prop


test_regressor_map_inputs, test_regressor_map_inputs_slow = profiles(
    regression_cases(NET_SHAPES), regression_cases(NET_SHAPES_SLOW), fast=25, slow=300
)(_regressor_property("map"))
test_regressor_ensemble_inputs, test_regressor_ensemble_inputs_slow = profiles(
    regression_cases(ONE_SHAPE, clean=True), regression_cases(NET_SHAPES_SLOW), fast=3, slow=60
)(_regressor_property("ensemble"))


# ----------------------------------------------------------------------------- classifier
@st.composite
def labels(draw, n: int, notes: list[str], max_classes: int = 3, clean: bool = False):
    """``(y, bad)``: ints, strings, bools or whole floats with 1..max_classes classes present;
    or not labels at all (continuous floats, NaN/inf, None)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(
        st.sampled_from(("int", "str", "bool", "whole-float", *(() if clean else ("bad",))))
    )
    k = draw(st.sampled_from((2, *(() if clean else (1,)), *range(2, max_classes + 1))))
    k = min(k, 2) if kind == "bool" else k
    codes = rng.integers(k, size=n)
    codes[: min(n, k)] = np.arange(min(n, k))  # every class present when the rows allow
    notes.append(f"labels {kind}, {len(set(codes.tolist()))} class(es)")
    if kind == "int":
        values = np.array(draw(st.sampled_from(([0, 1, 2], [-7, 3, 100], [5, 2, 9]))))
        return values[codes].astype(draw(st.sampled_from(("int64", "int32", "uint8")))), False
    if kind == "str":
        return np.array(["cat", "dog", "émû"])[codes], False
    if kind == "bool":
        return codes.astype(bool), False
    if kind == "whole-float":
        return codes.astype(draw(st.sampled_from(FLOAT_DTYPES))) * 2.0 - 1.0, False
    bad = draw(st.sampled_from(("continuous", "nonfinite", "none")))
    notes.append(bad)
    y = codes.astype(np.float64)
    if bad == "continuous":
        y[draw(st.integers(0, n - 1))] += 0.5
    elif bad == "nonfinite":
        y = _inject_nonfinite(draw, y, notes, "y")
    else:
        y = np.array(["a", "b", "c"], dtype=object)[codes]
        y[draw(st.integers(0, n - 1))] = None
    return y, True


@st.composite
def classification_cases(draw, shapes, max_classes: int = 3, clean: bool = False):
    """``clean``: valid X and labels of at least 2 classes."""
    X, moderate, notes = draw(feature_matrices(shapes))
    y, bad_y = draw(labels(X.shape[0], notes, max_classes, clean))
    bad_X = not clean and draw(st.integers(0, 9)) == 0
    X_pred, bad_pred = draw(prediction_inputs(X, notes))
    if bad_X:
        X = _inject_nonfinite(draw, X, notes, "X")
    return Case(X, y, X_pred, bad_X, bad_y, bad_pred, moderate, notes)


def _classifier_property(method: str):
    def prop(case):
        model = _network(px.BayesianClassifier, len(case.X), method)
        fitted, err = outcome(lambda: model.fit(case.X, case.y), "X", "y", stage="fit")
        n_classes = len(set(np.asarray(case.y).tolist()))
        if case.bad_X or case.bad_y or n_classes < 2:
            assert err is not None and ("'X'" in str(err)) == case.bad_X, err
            return
        assert err is None, err
        np.testing.assert_array_equal(fitted.classes_, np.unique(case.y))

        def predict():
            probs = fitted.predict_proba(case.X_pred)
            assert probs.shape == (len(case.X_pred), n_classes) and probs.dtype == np.float64
            assert_finite("predict_proba", probs)
            assert np.all((probs >= 0) & (probs <= 1))
            np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
            predicted = fitted.predict(case.X_pred)
            assert predicted.shape == (len(case.X_pred),)
            assert np.isin(predicted, fitted.classes_).all()
            np.testing.assert_array_equal(predicted, fitted.classes_[probs.argmax(axis=1)])

        _, err = outcome(predict, "X", stage="predict")
        if case.bad_pred:
            assert err is not None and "'X'" in str(err), "bad predict input was accepted"
        elif case.X_pred is case.X:
            assert err is None, err

    return prop


test_classifier_map_inputs, test_classifier_map_inputs_slow = profiles(
    classification_cases(CLF_SHAPES, max_classes=2),
    classification_cases(NET_SHAPES_SLOW, max_classes=3),
    fast=25,
    slow=300,
)(_classifier_property("map"))
test_classifier_ensemble_inputs, test_classifier_ensemble_inputs_slow = profiles(
    classification_cases(ONE_SHAPE, max_classes=2, clean=True),
    classification_cases(NET_SHAPES_SLOW, max_classes=3),
    fast=3,
    slow=60,
)(_classifier_property("ensemble"))


# ------------------------------------------------- correctness: standardisation is exact
@st.composite
def rescalings(draw, shapes, max_exponent: int = 300):
    """Moderate data and a per-column (and target) rescaling with offsets, magnitudes up to
    10**max_exponent: fitting on the rescaled data must give the same predictions."""
    n, d = draw(shapes)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = rng.normal(size=(n, d))
    y = X @ rng.normal(size=d) + 0.3 * rng.normal(size=n)
    exps = st.integers(-max_exponent, max_exponent)
    x_scale = 10.0 ** np.array(draw(st.lists(exps, min_size=d, max_size=d)))
    x_shift = x_scale * np.array(
        draw(st.lists(st.sampled_from((0.0, 5.0, -1e6)), min_size=d, max_size=d))
    )
    y_scale = 10.0 ** draw(exps)
    y_shift = y_scale * draw(st.sampled_from((0.0, 3.0, -1e6)))
    return X, y, X * x_scale + x_shift, y * y_scale + y_shift, y_scale, y_shift


def _equivariance_property(data):
    """The networks standardise X and y, so units must not matter (not even 1e±300): this is
    the "correct, not just finite" check for huge and tiny magnitudes."""
    X, y, X2, y2, y_scale, y_shift = data
    base = _network(px.BayesianRegressor, len(X)).fit(X, y)
    scaled = _network(px.BayesianRegressor, len(X)).fit(X2, y2)
    mean, std = base.predict(X, return_std=True)
    mean2, std2 = scaled.predict(X2, return_std=True)
    lo, hi = base.predict_interval(X, level=0.8)
    lo2, hi2 = scaled.predict_interval(X2, level=0.8)
    assert_finite("rescaled predictions", mean2, std2, lo2, hi2)
    for a, b, shift in (
        (mean, mean2, y_shift),
        (std, std2, 0.0),
        (lo, lo2, y_shift),
        (hi, hi2, y_shift),
    ):
        np.testing.assert_allclose((b - shift) / y_scale, a, rtol=1e-3, atol=1e-3 * y.std())


test_regressor_units_do_not_matter, test_regressor_units_do_not_matter_slow = profiles(
    rescalings(ONE_SHAPE),
    # Not one row: a constant target keeps y_scale_ = 1 (absolute units), by convention.
    rescalings(st.sampled_from(((12, 3), (7, 1), (30, 6)))),
    fast=10,
    slow=150,
)(_equivariance_property)
