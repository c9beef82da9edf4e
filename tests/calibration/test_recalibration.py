"""Temperature / vector scaling, isotonic calibration, quantile recalibration and std-scaling."""

import warnings

import jax
import numpy as np
import pytest
from scipy import optimize, stats
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.neural_network import MLPClassifier

from posterax.base import PredictiveSamples
from posterax.calibration import (
    IsotonicCalibration,
    QuantileRecalibration,
    StdScaling,
    TemperatureScaling,
    VectorScaling,
)
from posterax.metrics import accuracy, coverage, expected_calibration_error, log_loss


@pytest.fixture(scope="module")
def digits_logits():
    """An MLP trained long without regularisation on few digits: over-confident on new ones."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    idx = np.random.default_rng(0).permutation(len(y))
    tr, cal, te = idx[:150], idx[150:650], idx[650:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPClassifier(
            (32,),
            alpha=1e-8,
            max_iter=300,
            tol=0,
            n_iter_no_change=10**9,
            learning_rate_init=1e-2,
            random_state=0,
        )
        mlp.fit(X[tr], y[tr])
    logits = np.log(np.clip(mlp.predict_proba(X), 1e-300, None))  # log-probs are logits
    return (logits[cal], y[cal]), (logits[te], y[te])


def _softmax(z):
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def test_temperature_scaling_reduces_ece_and_keeps_accuracy(digits_logits):
    (l_cal, y_cal), (l_te, y_te) = digits_logits
    ts = TemperatureScaling().fit(l_cal, y_cal)
    assert ts.temperature_ > 1.0  # over-confident -> soften
    before, after = _softmax(l_te), np.asarray(ts.predict_proba(l_te))
    assert float(expected_calibration_error(y_te, after)) < 0.5 * float(
        expected_calibration_error(y_te, before)
    )
    assert float(log_loss(y_te, after)) < float(log_loss(y_te, before))
    np.testing.assert_array_equal(after.argmax(1), before.argmax(1))
    assert float(accuracy(y_te, after)) == float(accuracy(y_te, before))


def test_temperature_is_the_nll_minimiser():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 400)
    logits = 4.0 * (np.eye(4)[y] + rng.normal(size=(400, 4)))

    def nll(t):
        z = logits / t
        return -np.mean(z[np.arange(400), y] - np.log(np.exp(z).sum(1)))

    with jax.enable_x64(True):
        ts = TemperatureScaling(tol=1e-10).fit(logits, y)
    best = optimize.minimize_scalar(
        nll, bounds=(0.05, 50), method="bounded", options={"xatol": 1e-10}
    )
    assert ts.temperature_ == pytest.approx(best.x, rel=1e-5)


def test_a_calibration_set_classified_without_error_does_not_identify_a_temperature():
    """All correct: the NLL falls as T -> 0 (any later mistake would then cost ~infinity).
    The temperature stays 1 with a warning; one wrong draw on one example restores the fit."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 60)
    logits = 5.0 * np.eye(3)[y] + rng.normal(scale=0.5, size=(60, 3))  # margins ~5: all right
    assert np.all(np.argmax(logits, 1) == y)
    with pytest.warns(UserWarning, match=r"every calibration example is classified correctly"):
        ts = TemperatureScaling().fit(logits, y)
    assert ts.temperature_ == 1.0
    np.testing.assert_allclose(ts.predict_proba(logits), jax.nn.softmax(logits), rtol=1e-5)
    draws = np.stack([logits, logits])
    draws[1, 0] = np.roll(draws[1, 0], 1)  # one draw gets one example wrong
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ts = TemperatureScaling().fit(PredictiveSamples.classification(draws), y)
    assert 0.0 < ts.temperature_ < 1.0  # sharpens, to a finite temperature


def test_temperature_scaling_of_predictive_samples():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 400)
    logits = 3.0 * (np.eye(3)[y] + rng.normal(size=(4, 400, 3)))
    pred = PredictiveSamples.classification(logits)
    ts = TemperatureScaling().fit(pred, y)
    out = ts.transform(pred)
    assert isinstance(out, PredictiveSamples)
    np.testing.assert_allclose(out.logits, logits / ts.temperature_, rtol=1e-5)
    assert float(log_loss(y, out)) <= float(log_loss(y, pred)) + 1e-6
    np.testing.assert_allclose(ts.predict_proba(pred), np.asarray(out.probs()).mean(0), rtol=1e-5)


def test_vector_scaling_fixes_class_bias():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 800)
    logits = 2.0 * (np.eye(3)[y] + rng.normal(size=(800, 3))) + np.array([2.0, 0.0, 0.0])
    vs = VectorScaling().fit(logits[:400], y[:400])
    ts = TemperatureScaling().fit(logits[:400], y[:400])
    te, y_te = logits[400:], y[400:]
    assert float(log_loss(y_te, vs.predict_proba(te))) < float(log_loss(y_te, ts.predict_proba(te)))
    assert vs.bias_[0] < vs.bias_[1]  # learns to remove the bias towards class 0
    np.testing.assert_allclose(vs.transform(te), te * vs.scale_ + vs.bias_, rtol=1e-5, atol=1e-5)


def test_isotonic_top_label(digits_logits):
    (l_cal, y_cal), (l_te, y_te) = digits_logits
    p_cal, p_te = _softmax(l_cal), _softmax(l_te)
    iso = IsotonicCalibration().fit(p_cal, y_cal)
    out = iso.predict_proba(p_te)
    np.testing.assert_allclose(out.sum(1), 1.0, atol=1e-12)
    assert np.all(out >= 0)
    assert float(expected_calibration_error(y_te, out)) < float(
        expected_calibration_error(y_te, p_te)
    )
    top = p_te.argmax(1)
    np.testing.assert_allclose(
        out[np.arange(len(top)), top], iso.predict_confidence(p_te), atol=1e-12
    )


def test_quantile_recalibration_restores_coverage():
    rng = np.random.default_rng(4)
    mu = rng.normal(size=3000)
    y = mu + rng.standard_t(df=3, size=3000) * 1.5  # heavy tails, model says N(mu, 1)
    sd = np.ones(3000)
    rec = QuantileRecalibration().fit(mu[:1500], y[:1500], y_std=sd[:1500])
    for level in (0.5, 0.9):
        raw = stats.norm.ppf(0.5 + level / 2)
        before = float(coverage(y[1500:], mu[1500:] - raw, mu[1500:] + raw))
        lo, hi = rec.predict_interval(mu[1500:], level=level, y_std=sd[1500:])
        after = float(coverage(y[1500:], lo, hi))
        assert abs(after - level) < 0.03 < abs(before - level)
    u = rec.cdf(mu[1500:], y[1500:], y_std=sd[1500:])
    assert abs(np.mean(u <= 0.25) - 0.25) < 0.03
    np.testing.assert_array_equal(np.diff(rec.transform(np.linspace(0, 1, 50))) >= 0, True)


def test_quantile_recalibration_of_predictive_samples():
    rng = np.random.default_rng(5)
    mean = rng.normal(size=(3, 800)) * 0.1
    y = mean.mean(0) + 2.0 * rng.normal(size=800)
    pred = PredictiveSamples.regression(mean, np.ones_like(mean))
    rec = QuantileRecalibration().fit(pred, y)
    q = rec.quantile(pred, [0.05, 0.5, 0.95])
    assert q.shape == (800, 3)
    assert abs(float(np.mean(y <= np.asarray(q[:, 2]))) - 0.95) < 0.03


def test_std_scaling_closed_form_and_predictive_samples():
    rng = np.random.default_rng(6)
    mu, sd = rng.normal(size=500), rng.uniform(0.5, 1.5, size=500)
    y = mu + 1.7 * sd * rng.normal(size=500)
    ss = StdScaling().fit(mu, y, y_std=sd)
    best = optimize.minimize_scalar(
        lambda s: -stats.norm.logpdf(y, mu, s * sd).mean(), bounds=(0.1, 10), method="bounded"
    )
    assert ss.scale_factor_ == pytest.approx(best.x, rel=1e-4)
    _, s = ss.transform(mu, y_std=sd)
    np.testing.assert_allclose(s, ss.scale_factor_ * sd, rtol=1e-5)
    draws = PredictiveSamples.regression(mu + rng.normal(size=(4, 500)) * 0.3, np.tile(sd, (4, 1)))
    ss2 = StdScaling().fit(draws, y)
    out = ss2.transform(draws)
    np.testing.assert_allclose(
        np.asarray(out.mean).mean(0), np.asarray(draws.mean).mean(0), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        ss2.predict_std(draws),
        ss2.scale_factor_
        * np.sqrt((np.asarray(draws.scale) ** 2).mean(0) + np.asarray(draws.mean).var(0)),
        rtol=1e-4,
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtypes(dtype):
    rng = np.random.default_rng(7)
    y = rng.integers(0, 3, 400)
    logits = (3.0 * (np.eye(3)[y] + rng.normal(size=(400, 3)))).astype(dtype)
    with jax.enable_x64(dtype == np.float64):
        ts = TemperatureScaling().fit(logits, y)
        assert ts.transform(logits).dtype == dtype
        assert np.isfinite(ts.temperature_)


def test_sklearn_contract_and_errors():
    ts = TemperatureScaling(max_iter=50)
    assert ts.get_params() == {"max_iter": 50, "tol": 1e-6}
    with pytest.raises(NotFittedError):
        ts.transform(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"'y' parameter of TemperatureScaling.fit .* \[0, 3\)"):
        ts.fit(np.zeros((4, 3)), [0, 1, 2, 3])
    with pytest.raises(ValueError, match="'max_iter' parameter of TemperatureScaling.fit"):
        TemperatureScaling(max_iter=0).fit(np.zeros((4, 3)), [0, 1, 2, 0])
    with pytest.raises(ValueError, match="same number of rows"):
        StdScaling().fit(np.zeros(3), np.zeros(4), y_std=np.ones(3))
    with pytest.raises(ValueError, match="Did you mean 0.9"):
        QuantileRecalibration().fit(np.zeros(20), np.zeros(20), y_std=np.ones(20)).predict_interval(
            np.zeros(2), level=90, y_std=np.ones(2)
        )
