import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize, stats

from posterax import PredictiveSamples
from posterax.predictive import (
    predictive_hdi,
    predictive_interval,
    predictive_mean,
    predictive_median,
    predictive_quantiles,
    predictive_std,
    skew_flag,
    summarize,
)


def _mixture(seed=0, s=50, n=4):
    rng = np.random.default_rng(seed)
    mean = rng.normal(size=(s, n)) * np.array([0.1, 1.0, 3.0, 0.0])
    scale = rng.uniform(0.5, 2.0, size=(s, n))
    return mean, scale


def test_single_gaussian_quantiles_match_scipy():
    pred = PredictiveSamples.regression(jnp.full((1, 3), 2.0), jnp.array([[0.5, 1.0, 3.0]]))
    q = [0.025, 0.5, 0.9]
    expected = stats.norm.ppf(np.array(q)[:, None], 2.0, np.array([0.5, 1.0, 3.0]))
    np.testing.assert_allclose(predictive_quantiles(pred, q), expected, rtol=1e-5, atol=1e-5)


def test_mixture_quantiles_match_root_finding():
    mean, scale = _mixture()
    pred = PredictiveSamples.regression(mean, scale)
    got = np.asarray(predictive_quantiles(pred, [0.05, 0.5, 0.975]))
    for j, q in enumerate([0.05, 0.5, 0.975]):
        for n in range(mean.shape[1]):

            def cdf_gap(v, n=n, q=q):
                return stats.norm.cdf(v, mean[:, n], scale[:, n]).mean() - q

            root = optimize.brentq(cdf_gap, -50, 50, xtol=1e-12)
            assert got[j, n] == pytest.approx(root, abs=2e-5)


def test_std_is_law_of_total_variance_and_matches_simulation():
    mean, scale = _mixture(1)
    pred = PredictiveSamples.regression(mean, scale)
    eps = np.random.default_rng(2).normal(size=(4000, *mean.shape))
    y = (mean + scale * eps).reshape(-1, mean.shape[1])
    np.testing.assert_allclose(predictive_std(pred), y.std(axis=0), rtol=0.02)
    np.testing.assert_allclose(predictive_mean(pred), y.mean(axis=0), atol=0.03)
    np.testing.assert_allclose(
        predictive_std(pred, kind="mean"), mean.std(axis=0), rtol=1e-5, atol=1e-7
    )


def test_interval_kinds_and_level():
    mean, scale = _mixture(3)
    pred = PredictiveSamples.regression(mean, scale)
    lo, hi = predictive_interval(pred, 0.9)
    mlo, mhi = predictive_interval(pred, 0.9, kind="mean")
    np.testing.assert_allclose(mlo, np.quantile(mean, 0.05, axis=0), rtol=1e-5, atol=1e-6)
    assert np.all(lo <= mlo) and np.all(hi >= mhi)
    lo2, hi2 = predictive_interval(pred, 0.5)
    assert np.all(hi2 - lo2 < hi - lo)


def test_hdi_of_gaussian_equals_central_interval_and_is_shorter_for_skewed():
    key = jax.random.key(0)
    pred = PredictiveSamples.regression(jnp.zeros((200, 2)), jnp.ones((200, 2)))
    lo, hi = predictive_hdi(pred, 0.9, rng_key=key, n_per_draw=200)
    # 40,000 draws: endpoints carry ~0.02 Monte Carlo error; the width is steadier.
    np.testing.assert_allclose(lo, -1.645, atol=0.1)
    np.testing.assert_allclose(hi, 1.645, atol=0.1)
    np.testing.assert_allclose(hi - lo, 3.29, atol=0.05)
    # Per-draw means from a lognormal: HDI is shorter than the equal-tailed interval.
    draws = np.exp(np.random.default_rng(0).normal(size=(4000, 1)))
    skewed = PredictiveSamples.regression(draws, np.zeros_like(draws))
    hlo, hhi = predictive_hdi(skewed, 0.9, kind="mean")
    clo, chi = predictive_interval(skewed, 0.9, kind="mean")
    assert float(hhi[0] - hlo[0]) < float(chi[0] - clo[0])


def test_skew_flag():
    rng = np.random.default_rng(0)
    symmetric = PredictiveSamples.regression(rng.normal(size=(2000, 1)), np.full((2000, 1), 0.1))
    skewed = PredictiveSamples.regression(
        np.exp(rng.normal(size=(2000, 1))), np.full((2000, 1), 0.1)
    )
    assert not bool(skew_flag(symmetric)[0])
    assert bool(skew_flag(skewed)[0])
    assert float(predictive_median(skewed)[0]) < float(predictive_mean(skewed)[0])


def test_summarize_keys_and_shapes():
    mean, scale = _mixture(4)
    out = summarize(PredictiveSamples.regression(mean, scale))
    assert set(out) == {"mean", "median", "std", "lower", "upper", "skewed"}
    assert all(v.shape == (4,) for v in out.values())


def test_summaries_reject_bad_input():
    pred = PredictiveSamples.regression(jnp.zeros((3, 2)), jnp.ones((3, 2)))
    with pytest.raises(ValueError, match="Did you mean 0.95"):
        predictive_interval(pred, 95)
    with pytest.raises(ValueError, match="'kind'"):
        predictive_quantiles(pred, [0.5], kind="noise")
    with pytest.raises(TypeError, match="PredictiveSamples"):
        predictive_mean(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="classification"):
        predictive_mean(PredictiveSamples.classification(jnp.zeros((2, 3, 4))))
    with pytest.raises(ValueError, match=r"\(S draws, N inputs\)"):
        PredictiveSamples.regression(jnp.zeros(3), jnp.ones(3))
