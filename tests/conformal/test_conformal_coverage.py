"""Split conformal: the finite-sample quantile and coverage over many random splits.

Coverage is averaged over 200 random calibration/test splits of one synthetic data set, computed
in one vmapped call per method; the mean must be within 1% of 1 - alpha (its Monte Carlo error
is about 0.1%).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from posterax.base import PredictiveSamples
from posterax.conformal import (
    conformal_prediction_sets,
    conformal_quantile,
    conformal_rank,
    cqr_interval,
    split_conformal_interval,
)

ALPHAS = (0.05, 0.1, 0.2)
N_SPLITS, N_CAL, N_TEST = 200, 1000, 1000


@pytest.fixture(scope="module")
def splits():
    rng = np.random.default_rng(0)
    return jnp.asarray(np.stack([rng.permutation(N_CAL + N_TEST) for _ in range(N_SPLITS)]))


@pytest.fixture(scope="module")
def regression_data():
    """Heteroscedastic data; a model whose mean is biased and whose std is too small."""
    rng = np.random.default_rng(1)
    n = N_CAL + N_TEST
    x = rng.uniform(-2, 2, n)
    noise = 0.2 + 0.3 * np.abs(x)
    y = np.sin(2 * x) + noise * rng.standard_t(df=5, size=n)
    mu = np.sin(2 * x) + 0.1 * x
    sd = 0.6 * noise
    return tuple(jnp.asarray(a, jnp.float32) for a in (y, mu, sd))


@pytest.fixture(scope="module")
def classification_data():
    """Ten classes; the model's probabilities are over-confident (sharpened)."""
    rng = np.random.default_rng(2)
    n = N_CAL + N_TEST
    z = 1.5 * rng.normal(size=(n, 10))
    p_true = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = (rng.uniform(size=(n, 1)) > p_true.cumsum(1)).sum(1).clip(0, 9)
    p_model = np.exp(2 * z) / np.exp(2 * z).sum(1, keepdims=True)
    return jnp.asarray(y), jnp.asarray(p_model, jnp.float32)


def _mean_coverage(fn, splits, *arrays):
    def one(perm):
        cal, test = perm[:N_CAL], perm[N_CAL:]
        return fn(*(a[cal] for a in arrays), *(a[test] for a in arrays))

    return float(jnp.mean(jax.jit(jax.vmap(one))(splits)))


def test_conformal_quantile_is_the_mapie_order_statistic():
    rng = np.random.default_rng(3)
    for n in (9, 10, 99, 100, 1000):
        s = rng.normal(size=n)
        for alpha in (0.05, 0.1, 0.2, 0.5):
            if np.ceil((n + 1) * (1 - alpha)) > n:
                continue
            level = np.ceil((n + 1) * (1 - alpha)) / n
            expected = np.quantile(s, level, method="lower")
            assert float(conformal_quantile(s, alpha)) == pytest.approx(expected, rel=1e-6)
    # (n + 1)(1 - alpha) = 900.0000000000001 in floating point still gives rank 900
    assert conformal_rank(999, 0.1) == 900


def test_too_small_calibration_set_is_a_clear_error():
    with pytest.raises(
        ValueError,
        match=r"18 calibration points are too few for alpha=0.05.*"
        r"at least 19",
    ):
        conformal_quantile(np.arange(18.0), 0.05)
    assert float(conformal_quantile(np.arange(19.0), 0.05)) == 18.0
    with pytest.raises(
        ValueError,
        match="'alpha' parameter of conformal_quantile must be in "
        r"\(0, 1\). Got 5. Did you mean 0.05\?",
    ):
        conformal_quantile(np.arange(19.0), 5)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_regression_coverage_over_random_splits(alpha, splits, regression_data):
    y, mu, sd = regression_data

    def absolute(y_c, mu_c, sd_c, y_t, mu_t, sd_t):
        lo, hi = split_conformal_interval(y_c, mu_c, mu_t, alpha=alpha)
        return jnp.mean((lo <= y_t) & (y_t <= hi))

    def normalized(y_c, mu_c, sd_c, y_t, mu_t, sd_t):
        lo, hi = split_conformal_interval(
            y_c, mu_c, mu_t, alpha=alpha, normalized=True, y_std_cal=sd_c, y_std_test=sd_t
        )
        return jnp.mean((lo <= y_t) & (y_t <= hi))

    def cqr(y_c, mu_c, sd_c, y_t, mu_t, sd_t):
        z = 1.0  # deliberately too narrow quantiles
        lo, hi = cqr_interval(
            y_c, (mu_c - z * sd_c, mu_c + z * sd_c), (mu_t - z * sd_t, mu_t + z * sd_t), alpha=alpha
        )
        return jnp.mean((lo <= y_t) & (y_t <= hi))

    for fn in (absolute, normalized, cqr):
        cov = _mean_coverage(fn, splits, y, mu, sd)
        assert abs(cov - (1 - alpha)) < 0.01, (fn.__name__, cov)


def test_classification_coverage_over_random_splits(splits, classification_data):
    y, p = classification_data
    keys = jax.random.split(jax.random.key(0), N_SPLITS)

    def run(score, randomized):
        """Mean coverage and set size over the splits, for every alpha, in one compiled call."""

        def one(perm, key):
            cal, test = perm[:N_CAL], perm[N_CAL:]
            out = []
            for alpha in ALPHAS:
                sets = conformal_prediction_sets(
                    y[cal],
                    p[cal],
                    p[test],
                    alpha=alpha,
                    score=score,
                    randomized=randomized,
                    rng_key=key,
                    lambda_reg=0.05,
                )
                covered = jnp.take_along_axis(sets, y[test][:, None], axis=1)
                out.append(jnp.stack([jnp.mean(covered), jnp.mean(jnp.sum(sets, axis=1))]))
            return jnp.stack(out)

        return np.asarray(jnp.mean(jax.jit(jax.vmap(one))(splits, keys), axis=0))

    target = 1 - np.asarray(ALPHAS)
    exact = {name: run(*name) for name in [("lac", False), ("aps", True), ("raps", True)]}
    for name, res in exact.items():
        np.testing.assert_allclose(res[:, 0], target, atol=0.01, err_msg=str(name))
    for name in [("aps", False), ("raps", False)]:  # deterministic sets: valid, a bit above
        res = run(*name)
        assert np.all(res[:, 0] >= target - 0.005), (name, res)
        assert np.all(res[:, 0] <= target + 0.03), (name, res)
    # LAC has the smallest average sets
    assert np.all(exact[("lac", False)][:, 1] <= exact[("aps", True)][:, 1])


def test_predictive_samples_inputs():
    rng = np.random.default_rng(4)
    mean = rng.normal(size=(5, 400)) * 0.2
    scale = np.full((5, 400), 0.5)
    y = mean.mean(0) + rng.normal(size=400)
    pred = PredictiveSamples.regression(mean, scale)
    cal, test = (
        PredictiveSamples.regression(mean[:, :200], scale[:, :200]),
        PredictiveSamples.regression(mean[:, 200:], scale[:, 200:]),
    )
    lo, _ = split_conformal_interval(y[:200], cal, test, alpha=0.1, normalized=True)
    sd = np.sqrt(0.25 + mean.var(0))
    lo2, _ = split_conformal_interval(
        y[:200],
        mean.mean(0)[:200],
        mean.mean(0)[200:],
        alpha=0.1,
        normalized=True,
        y_std_cal=sd[:200],
        y_std_test=sd[200:],
    )
    np.testing.assert_allclose(lo, lo2, rtol=1e-5, atol=1e-6)
    lo3, hi3 = cqr_interval(y[:200], cal, test, alpha=0.1)
    assert lo3.shape == (200,) and bool(jnp.all(lo3 < hi3))
    assert pred.num_inputs == 400
    logits = PredictiveSamples.classification(rng.normal(size=(3, 50, 4)))
    sets = conformal_prediction_sets(rng.integers(0, 4, 50), logits, logits, alpha=0.2)
    assert sets.shape == (50, 4) and sets.dtype == jnp.bool_


@pytest.mark.parametrize("alpha", ALPHAS)
def test_finite_sample_bounds_with_small_calibration_sets(alpha):
    """With n = 99 calibration points, coverage lies in [1 - alpha, 1 - alpha + 1/(n + 1)]."""
    rng = np.random.default_rng(5)
    n_splits, n_cal, n_test = 20000, 99, 100
    scores = jnp.asarray(rng.normal(size=(n_splits, n_cal + n_test)), jnp.float32)

    def one(s):
        lo, hi = split_conformal_interval(
            s[:n_cal], jnp.zeros(n_cal), jnp.zeros(n_test), alpha=alpha
        )
        return jnp.mean((lo <= s[n_cal:]) & (s[n_cal:] <= hi))

    cov = float(jnp.mean(jax.jit(jax.vmap(one))(scores)))
    expected = np.ceil((n_cal + 1) * (1 - alpha)) / (n_cal + 1)
    assert abs(cov - expected) < 0.003
