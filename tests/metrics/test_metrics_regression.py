"""Regression, interval and regression-calibration metrics against independent references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import logsumexp
from sklearn.metrics import mean_absolute_error, mean_pinball_loss, mean_squared_error

from posterax.base import PredictiveSamples
from posterax.metrics import (
    coverage,
    crps_gaussian,
    crps_samples,
    gaussian_nll,
    interval_score,
    mae,
    mean_interval_width,
    mixture_nll,
    pinball_loss,
    pit,
    regression_calibration_curve,
    regression_calibration_error,
    rmse,
)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    n, s = 60, 7
    mean = rng.normal(size=(s, n))
    scale = rng.uniform(0.3, 2.0, size=(s, n))
    y = rng.normal(size=n) * 1.5
    return y, mean, scale


def test_point_errors_match_sklearn(data):
    y, mean, scale = data
    pred = PredictiveSamples.regression(mean, scale)
    mu = mean.mean(axis=0)
    assert float(rmse(y, mu)) == pytest.approx(np.sqrt(mean_squared_error(y, mu)), rel=1e-6)
    assert float(mae(y, mu)) == pytest.approx(mean_absolute_error(y, mu), rel=1e-6)
    assert float(rmse(y, pred)) == pytest.approx(float(rmse(y, mu)), rel=1e-6)
    assert float(mae(jnp.asarray(y), pred)) == pytest.approx(float(mae(y, mu)), rel=1e-6)


def test_gaussian_nll_matches_scipy_and_moment_matching(data):
    y, mean, scale = data
    mu, sd = mean[0], scale[0]
    expected = -np.mean(stats.norm.logpdf(y, mu, sd))
    assert float(gaussian_nll(y, mu, sd)) == pytest.approx(expected, rel=1e-5)
    # PredictiveSamples -> moment-matched Gaussian
    m = mean.mean(0)
    v = (scale**2).mean(0) + mean.var(0)
    expected_mm = -np.mean(stats.norm.logpdf(y, m, np.sqrt(v)))
    got = gaussian_nll(y, PredictiveSamples.regression(mean, scale))
    assert float(got) == pytest.approx(expected_mm, rel=1e-5)


def test_mixture_nll_matches_bruteforce_and_stays_finite(data):
    y, mean, scale = data
    logp = stats.norm.logpdf(y[None], mean, scale)
    expected = -np.mean(logsumexp(logp, axis=0) - np.log(mean.shape[0]))
    pred = PredictiveSamples.regression(mean, scale)
    assert float(mixture_nll(y, pred)) == pytest.approx(expected, rel=1e-5)
    assert float(mixture_nll(y, mean, scale)) == pytest.approx(expected, rel=1e-5)
    # every component density underflows in float32, the log-sum-exp does not
    far = mixture_nll(np.array([200.0], np.float32), np.zeros((3, 1), np.float32), 1.0)
    assert np.isfinite(float(far)) and float(far) == pytest.approx(0.5 * 200**2, rel=1e-3)


def test_mixture_nll_per_row(data):
    y, mean, scale = data
    expected = -(logsumexp(stats.norm.logpdf(y[None], mean, scale), axis=0) - np.log(len(mean)))
    rows = mixture_nll(y, PredictiveSamples.regression(mean, scale), reduction="none")
    assert rows.shape == y.shape
    np.testing.assert_allclose(np.asarray(rows), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="'reduction' parameter of mixture_nll.*'none'"):
        mixture_nll(y, mean, scale, reduction="sum")


def _crps_quad(y, mu, sd):
    cdf = stats.norm(mu, sd).cdf
    lo, hi = mu - 12 * sd, mu + 12 * sd
    left, _ = integrate.quad(lambda x: cdf(x) ** 2, min(lo, y), y, limit=200)
    right, _ = integrate.quad(lambda x: (1 - cdf(x)) ** 2, y, max(hi, y), limit=200)
    return left + right


def test_crps_gaussian_matches_numerical_integration():
    with jax.enable_x64(True):
        rng = np.random.default_rng(1)
        mu, sd = rng.normal(size=8), rng.uniform(0.2, 3.0, size=8)
        y = mu + sd * rng.normal(size=8) * 2
        expected = np.mean([_crps_quad(a, b, c) for a, b, c in zip(y, mu, sd, strict=True)])
        assert float(crps_gaussian(y, mu, sd)) == pytest.approx(expected, rel=1e-7)


def test_crps_samples_matches_bruteforce_and_gaussian_limit(data):
    y, mean, _ = data
    brute = np.mean(
        np.abs(mean - y).mean(0) - 0.5 * np.abs(mean[:, None] - mean[None]).mean((0, 1))
    )
    assert float(crps_samples(y, mean)) == pytest.approx(brute, rel=1e-5)
    # many samples of N(0, 1): converges to the closed form
    draws = np.random.default_rng(2).normal(size=(4000, 3))
    closed = float(crps_gaussian(np.zeros(3) + 0.3, np.zeros(3), np.ones(3)))
    assert float(crps_samples(np.zeros(3) + 0.3, draws)) == pytest.approx(closed, abs=0.02)
    pred = PredictiveSamples.regression(np.zeros((4000, 3)), np.ones((4000, 3)))
    assert float(crps_samples(np.zeros(3) + 0.3, pred, rng_key=jax.random.key(0))) == (
        pytest.approx(closed, abs=0.02)
    )
    with pytest.raises(ValueError, match="rng_key"):
        crps_samples(np.zeros(3), pred)


def test_pinball_matches_sklearn_and_mixture_quantiles(data):
    y, mean, scale = data
    q = mean[0] + 0.3
    for tau in (0.1, 0.5, 0.9):
        expected = mean_pinball_loss(y, q, alpha=tau)
        assert float(pinball_loss(y, q, tau)) == pytest.approx(expected, rel=1e-5)
    both = pinball_loss(y, np.stack([q, q + 1], 1), [0.1, 0.9])
    ref = 0.5 * (mean_pinball_loss(y, q, alpha=0.1) + mean_pinball_loss(y, q + 1, alpha=0.9))
    assert float(both) == pytest.approx(ref, rel=1e-5)
    # from PredictiveSamples: the mixture quantile has CDF tau
    with jax.enable_x64(True):
        pred = PredictiveSamples.regression(mean, scale)
        from posterax.predictive.inputs import mixture_cdf, mixture_quantile

        qs = mixture_quantile(pred.mean, pred.scale, jnp.array([0.05, 0.5, 0.95]))
        cdf = np.stack([np.asarray(mixture_cdf(pred.mean, pred.scale, qs[:, j])) for j in range(3)])
        np.testing.assert_allclose(
            cdf, np.array([0.05, 0.5, 0.95])[:, None] * np.ones((3, 60)), atol=1e-9
        )
        expected = np.mean(
            [
                mean_pinball_loss(y, np.asarray(qs[:, j]), alpha=t)
                for j, t in enumerate([0.05, 0.5, 0.95])
            ]
        )
        assert float(pinball_loss(y, pred, [0.05, 0.5, 0.95])) == pytest.approx(expected)
    with pytest.raises(ValueError, match="must be in \\(0, 1\\)"):
        pinball_loss(y, q, 90)


def test_interval_metrics_hand_computed():
    y = np.array([0.0, 2.0, -3.0, 0.5])
    lo = np.array([-1.0, -1.0, -1.0, 0.5])
    hi = np.array([1.0, 1.0, 1.0, 0.5])
    assert float(coverage(y, lo, hi)) == 0.5  # bounds are inclusive
    assert float(mean_interval_width(lo, hi)) == 1.5
    # widths 2,2,2,0; misses: y=2 above by 1, y=-3 below by 2; alpha = 0.2 -> 2/alpha = 10
    assert float(interval_score(y, lo, hi, alpha=0.2)) == pytest.approx((6 + 10 + 20) / 4)


def test_interval_metrics_from_predictive_samples():
    pred = PredictiveSamples.regression(np.zeros((1, 4)), np.ones((1, 4)))
    z = stats.norm.ppf(0.95)
    assert float(mean_interval_width(pred, level=0.9)) == pytest.approx(2 * z, rel=1e-5)
    y = np.array([0.0, 1.0, 1.7, -2.0])
    assert float(coverage(y, pred, level=0.9)) == 0.5  # 0, 1 inside; 1.7, -2 outside
    assert float(interval_score(y, pred, alpha=0.1)) == pytest.approx(
        float(interval_score(y, -z * np.ones(4), z * np.ones(4), alpha=0.1)), rel=1e-5
    )
    with pytest.raises(ValueError, match="level"):
        coverage(y, pred)
    with pytest.raises(ValueError, match="Did you mean 0.9"):
        coverage(y, pred, level=90)


def test_pit_and_calibration_curve():
    y = np.array([0.0, 1.0, -1.0])
    u = pit(y, np.zeros(3), np.ones(3))
    np.testing.assert_allclose(u, stats.norm.cdf(y), rtol=1e-6)
    p, obs = regression_calibration_curve(y, np.zeros(3), np.ones(3), n_levels=4)
    np.testing.assert_allclose(p, [0.2, 0.4, 0.6, 0.8])
    np.testing.assert_allclose(obs, [1 / 3, 1 / 3, 2 / 3, 2 / 3], rtol=1e-6)


def test_calibration_error_is_exact_area():
    rng = np.random.default_rng(3)
    y = rng.normal(size=25) * 1.7
    mu, sd = np.zeros(25), np.ones(25)
    u = np.sort(stats.norm.cdf(y))

    def gap(p):
        return abs(np.searchsorted(u, p, side="right") / u.size - p)

    expected, _ = integrate.quad(gap, 0, 1, points=u, limit=500)
    with jax.enable_x64(True):
        assert float(regression_calibration_error(y, mu, sd)) == pytest.approx(expected, abs=1e-8)
    # calibrated predictive: the area shrinks like 1/sqrt(N)
    y_cal = rng.normal(size=20000)
    assert float(regression_calibration_error(y_cal, np.zeros(20000), np.ones(20000))) < 0.01
    assert float(regression_calibration_error([10.0], [0.0], [1.0])) == pytest.approx(0.5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtypes_and_jit(dtype, data):
    y, mean, scale = data
    with jax.enable_x64(dtype == np.float64):
        y, mu, sd = y.astype(dtype), mean[0].astype(dtype), scale[0].astype(dtype)
        for fn in (gaussian_nll, crps_gaussian):
            out = fn(y, mu, sd)
            assert out.dtype == dtype
            assert float(jax.jit(fn)(y, mu, sd)) == pytest.approx(float(out), rel=1e-5)
        assert rmse(y, mu).dtype == dtype
        assert regression_calibration_error(y, mu, sd).dtype == dtype


def test_errors_name_the_parameter():
    with pytest.raises(ValueError, match="same number of rows"):
        rmse(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="'y_std'"):
        gaussian_nll(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="'y_std' parameter of gaussian_nll must be > 0"):
        gaussian_nll(np.zeros(3), np.zeros(3), np.array([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="'y_true' parameter of rmse must be 1-D"):
        rmse(np.zeros((3, 1)), np.zeros(3))
    with pytest.raises(TypeError, match="numeric array"):
        rmse(np.array(["a"]), np.zeros(1))
    pred = PredictiveSamples.classification(np.zeros((1, 3, 2)))
    with pytest.raises(ValueError, match="regression predictions"):
        rmse(np.zeros(3), pred)
