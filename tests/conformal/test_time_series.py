"""ACI and EnbPI: the same intervals as MAPIE 1.6, ACI's long-run coverage across a change
point, and clear errors for unsorted time, bad gamma and windows too small for the level."""

import warnings

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression

from posterax.conformal.cross import JackknifeAfterBootstrapRegressor
from posterax.conformal.time_series import (
    adaptive_conformal_intervals,
    residual_offsets,
    smallest_window,
)
from posterax.conformal.time_series_wrappers import (
    AdaptiveConformalRegressor,
    EnbPIRegressor,
    block_bootstrap_samples,
)

N_TRAIN = 220  # n + 1 = 221 is prime to 10: no rank (n + 1) * level lands on an integer


def series(n=420, jump=260, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = X @ [1.0, 2.0, 3.0] + rng.normal(size=n) * np.where(np.arange(n) < jump, 1.0, 3.0)
    return X, y


def block_bootstrap():
    subsample = pytest.importorskip("mapie.subsample")
    return subsample.BlockBootstrap(n_resamplings=20, length=10, overlapping=True, random_state=0)


def mapie_regressor(method, aggregation="mean"):
    regression = pytest.importorskip("mapie.regression")
    return regression.TimeSeriesRegressor(
        LinearRegression(), method=method, cv=block_bootstrap(), agg_function=aggregation
    )


def finite_equal(a, b, atol=1e-6):
    """Same infinities at the same places and the finite values within atol."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert np.array_equal(np.isposinf(a), np.isposinf(b))
    assert np.array_equal(np.isneginf(a), np.isneginf(b))
    finite = np.isfinite(a)
    np.testing.assert_allclose(a[finite], b[finite], rtol=0, atol=atol)


# ---------------------------------------------------------------------------------------------
# Beside MAPIE 1.6


@pytest.mark.parametrize("aggregation", ["mean", "median"])
@pytest.mark.parametrize("optimize_beta", [False, True])
def test_enbpi_matches_mapie_before_and_after_updates(aggregation, optimize_beta):
    X, y = series()
    mapie = mapie_regressor("enbpi", aggregation).fit(X[:N_TRAIN], y[:N_TRAIN])
    ours = EnbPIRegressor(
        LinearRegression(),
        0.9,
        resampling=block_bootstrap(),
        aggregation=aggregation,
        optimize_beta=optimize_beta,
    ).fit_conformalize(X[:N_TRAIN], y[:N_TRAIN])
    np.testing.assert_allclose(ours.scores_, mapie.conformity_scores_, atol=1e-9)
    test = X[N_TRAIN:]
    for stage in ("fitted", "updated"):
        point, bounds = mapie.predict(
            test, ensemble=True, confidence_level=0.9, optimize_beta=optimize_beta
        )
        lower, upper = ours.predict_interval(test)
        np.testing.assert_allclose(lower, bounds[:, 0, 0], rtol=0, atol=1e-6, err_msg=stage)
        np.testing.assert_allclose(upper, bounds[:, 1, 0], rtol=0, atol=1e-6, err_msg=stage)
        np.testing.assert_allclose(ours.predict(test), point, rtol=0, atol=1e-6)
        for t in range(N_TRAIN, N_TRAIN + 100 * (stage == "fitted"), 10):  # noise x3 at 260
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # MAPIE's note on update's arguments
                mapie.update(X[t : t + 10], y[t : t + 10], ensemble=True)
            ours.update(X[t : t + 10], y[t : t + 10])
    assert ours.n_updates_ == 100


@pytest.mark.parametrize(
    ("step", "gamma", "optimize_beta"),
    [(1, 0.05, False), (5, 0.01, True)],  # MAPIE's beta search fails once alpha_t hits 0
)
def test_aci_matches_mapie_over_a_sequence_of_updates(step, gamma, optimize_beta):
    X, y = series()
    mapie = mapie_regressor("aci").fit(X[:N_TRAIN], y[:N_TRAIN])
    ours = EnbPIRegressor(
        LinearRegression(),
        0.9,
        resampling=block_bootstrap(),
        center="full",
        gamma=gamma,
        optimize_beta=optimize_beta,
    ).fit_conformalize(X[:N_TRAIN], y[:N_TRAIN])
    alphas, infinite = [], 0
    for t in range(N_TRAIN, X.shape[0], step):
        rows = slice(t, t + step)
        _, bounds = mapie.predict(
            X[rows], confidence_level=0.9, allow_infinite_bounds=True, optimize_beta=optimize_beta
        )
        lower, upper = ours.predict_interval(X[rows])
        finite_equal(lower, bounds[:, 0, 0])
        finite_equal(upper, bounds[:, 1, 0])
        infinite += int(np.sum(np.isinf(upper)))
        mapie.adapt_conformal_inference(
            X[rows], y[rows], gamma=gamma, confidence_level=0.9, optimize_beta=optimize_beta
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mapie.update(X[rows], y[rows])
        ours.update(X[rows], y[rows])
        assert ours.alpha_t_ == pytest.approx(mapie.current_alpha[0.1], abs=1e-9)
        alphas.append(ours.alpha_t_)
    assert min(alphas) < 0.05 and max(alphas) > 0.11  # the level did move
    if not optimize_beta:
        assert infinite > 0  # alpha_t reached 0: both give the whole line


def test_aci_function_on_precomputed_predictions_matches_mapie():
    X, y = series()
    mapie = mapie_regressor("aci").fit(X[:N_TRAIN], y[:N_TRAIN])
    start = np.array(mapie.conformity_scores_)  # MAPIE's out-of-bag residuals
    test, target = X[N_TRAIN:], y[N_TRAIN:]
    bounds = []
    for t in range(test.shape[0]):
        bounds.append(
            mapie.predict(test[t : t + 1], confidence_level=0.9, allow_infinite_bounds=True)[1]
        )
        mapie.adapt_conformal_inference(test[t : t + 1], target[t : t + 1], 0.02, 0.9)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mapie.update(test[t : t + 1], target[t : t + 1])
    bounds = np.concatenate(bounds)[:, :, 0]
    forecaster = LinearRegression().fit(X[:N_TRAIN], y[:N_TRAIN])  # MAPIE's full-data model
    out = adaptive_conformal_intervals(forecaster.predict(test), target, start, 0.9, 0.02)
    finite_equal(out.lower, bounds[:, 0])
    finite_equal(out.upper, bounds[:, 1])
    np.testing.assert_allclose(out.scores[-(target.size) :], target - forecaster.predict(test))
    assert out.scores.shape == start.shape


# ---------------------------------------------------------------------------------------------
# The intervals by hand


def test_residual_offsets_are_the_conformal_order_statistics():
    scores = np.arange(1.0, 40.0)  # 39 residuals 1..39
    lower, upper = residual_offsets(scores, 0.2)
    # beta = 0.1: upper = ceil(0.9 * 40) = 36th smallest, lower = 36th largest = 4th smallest
    assert (float(lower), float(upper)) == (4.0, 36.0)
    lower, upper = residual_offsets(scores - 20.0, 0.2, symmetric=True)  # |r| = 0,1,1,...,19,19
    assert float(upper) == -float(lower) == 16.0  # ceil(0.8 * 40) = 32nd smallest |r|
    with_nan = np.concatenate([scores, [np.nan, np.nan]])
    assert residual_offsets(with_nan, 0.2) == residual_offsets(scores, 0.2)
    lower, upper = residual_offsets(scores, np.array([0.0, -0.1, 1.2, 0.04]))
    assert np.all(np.isneginf(lower[:2])) and np.all(np.isposinf(upper[:2]))  # whole line
    assert np.all(np.isnan(lower[2:3])) and np.isnan(upper[2])  # alpha_t > 1: empty
    assert np.isneginf(lower[3]) and np.isposinf(upper[3])  # 39 < 2/0.04 - 1 = 49
    assert smallest_window(0.1) == 19 and smallest_window(0.1, symmetric=True) == 9


@pytest.mark.parametrize("n", [50, 200])
def test_optimize_beta_outside_its_search_range_gives_the_limiting_intervals(n):
    scores = np.random.default_rng(2).normal(size=n)
    # alpha_t < 1/(n + 1): no beta range to search; every beta in [0, alpha] gives the whole line
    tiny = np.array([-0.2, 0.0, 0.5 / (n + 1), 0.999 / (n + 1)])
    lower, upper = residual_offsets(scores, tiny, optimize_beta=True)
    assert np.all(np.isneginf(lower)) and np.all(np.isposinf(upper))
    # alpha_t >= 1: confidence level <= 0, the empty set, as without the search
    for alpha in (1.0, 1.2, 3.0):
        for beta in (False, True):
            lower, upper = residual_offsets(scores, alpha, optimize_beta=beta)
            assert np.isnan(lower) and np.isnan(upper), (alpha, beta)
    lower, upper = residual_offsets(scores, 0.01, optimize_beta=True)  # searched when n >= 99
    assert (np.isfinite(lower) or np.isfinite(upper)) == (n >= 99)


@pytest.mark.parametrize("clip", [True, False])
def test_aci_with_optimize_beta_runs_through_tiny_and_large_alpha_t(clip):
    # The noise quadruples (misses: alpha_t falls through (0, 1/(n + 1)) and below 0), then the
    # forecast is exact for 300 steps (every interval covers: alpha_t climbs to 1 and beyond).
    rng = np.random.default_rng(0)
    y = np.r_[rng.normal(size=100), rng.normal(size=100) * 4, np.zeros(300)]
    out = adaptive_conformal_intervals(
        np.zeros(400), y[100:], y[:100], 0.9, 0.05, optimize_beta=True, clip=clip
    )
    tiny, large = (out.alpha > 0) & (out.alpha < 1 / 101), out.alpha >= 1
    assert tiny.any() and large.any()
    whole = out.alpha < 1 / 101
    assert np.all(np.isneginf(out.lower[whole]) & np.isposinf(out.upper[whole]))
    assert np.all(out.covered[whole])
    assert np.all(np.isnan(out.lower[large]) & np.isnan(out.upper[large]))
    assert not out.covered[large].any()
    if not clip:  # Gibbs & Candès, Prop. 4.1, for any sequence
        assert abs(1 - out.covered.mean() - 0.1) <= (0.9 + 0.05) / (0.05 * 400)


def test_optimize_beta_narrows_a_skewed_residual_interval():
    rng = np.random.default_rng(1)
    scores = rng.exponential(size=300)  # all the mass near 0: shift the interval down
    lower, upper = residual_offsets(scores, 0.1)
    lower_b, upper_b = residual_offsets(scores, 0.1, optimize_beta=True)
    assert upper_b - lower_b < 0.95 * (upper - lower) and lower_b < lower  # moved down
    kept = np.mean((scores >= lower_b) & (scores <= upper_b))
    assert kept >= 0.9


def test_the_wrapper_equals_the_function_stepped_by_hand():
    X, y = series(seed=3)
    model = LinearRegression().fit(X[:100], y[:100])
    aci = AdaptiveConformalRegressor(model, 0.8, gamma=0.03, window=80, symmetric=True)
    aci.conformalize(X[100:200], y[100:200])
    assert aci.scores_.size == 80
    out = adaptive_conformal_intervals(
        model.predict(X[200:]),
        y[200:],
        y[100:200] - model.predict(X[100:200]),
        0.8,
        0.03,
        window=80,
        symmetric=True,
    )
    alpha, scores = 0.2, list(y[120:200] - model.predict(X[120:200]))
    for i, t in enumerate(range(200, 420)):
        lower, upper = aci.predict_interval(X[t : t + 1])
        assert (lower[0], upper[0]) == pytest.approx((out.lower[i], out.upper[i]))
        # by hand: the ceil(0.8-level) order statistic of |residuals| at the current alpha
        k = int(np.ceil((1 - alpha) * 81 - 1e-9))
        q = np.inf if k > 80 else np.sort(np.abs(scores))[k - 1]
        center = model.predict(X[t : t + 1])[0]
        assert upper[0] == pytest.approx(center + q)
        alpha = min(max(alpha + 0.03 * (0.2 - (abs(y[t] - center) > q)), 0.0), 1.0)
        scores = [*scores[1:], y[t] - center]
        aci.update(X[t : t + 1], y[t : t + 1])
        assert aci.alpha_t_ == pytest.approx(alpha)
    assert aci.n_errors_ == int(np.sum(~out.covered))


# ---------------------------------------------------------------------------------------------
# Coverage across a change point


def test_aci_keeps_long_run_coverage_where_split_conformal_calibrated_before_the_change_fails():
    R, n, T, change, alpha = 200, 200, 1000, 500, 0.1
    rng = np.random.default_rng(0)
    t = np.arange(n + T)
    mean = np.sin(t / 20.0)
    y = mean + rng.normal(size=(R, n + T)) * np.where(t < n + change, 1.0, 3.0)
    pred = np.broadcast_to(mean, y.shape)
    calibration = y[:, :n] - pred[:, :n]
    aci = adaptive_conformal_intervals(pred[:, n:], y[:, n:], calibration, 0.9, 0.01, clip=False)
    # Gibbs & Candès, Prop. 4.1: for every series, |mean err - alpha| <= (max(a, 1-a) + g)/(g T)
    err = 1.0 - aci.covered.mean(axis=1)
    assert np.all(np.abs(err - alpha) <= (0.9 + 0.01) / (0.01 * T))
    # Over the 200 series, within the Monte Carlo error of a calibrated method (4 se)
    for part in (slice(None), slice(change, None)):
        cov = aci.covered[:, part]
        assert abs(cov.mean() - 0.9) < 4 * np.sqrt(alpha * (1 - alpha) / cov.size), part
    # Split conformal calibrated before the change: q fixed, the noise tripled after it.
    q = np.sort(np.abs(calibration), axis=1)[:, int(np.ceil(0.9 * (n + 1))) - 1]
    split = np.abs(y[:, n:] - pred[:, n:]) <= q[:, None]
    before, after = split[:, :change].mean(), split[:, change:].mean()
    expected_after = np.mean(2 * norm.cdf(q / 3.0) - 1)  # P(|3 eps| <= q), about 0.42
    assert abs(after - expected_after) < 4 * np.sqrt(0.25 / split[:, change:].size)
    assert after < 0.5 and abs(before - 0.9) < 0.01
    # A rolling window alone (gamma = 0) lags: it undercovers for a while after the change.
    rolling = adaptive_conformal_intervals(pred[:, n:], y[:, n:], calibration, 0.9, 0.0)
    assert rolling.covered[:, change : change + 200].mean() < 0.8
    assert aci.covered[:, change : change + 200].mean() > 0.86


# ---------------------------------------------------------------------------------------------
# EnbPI's own resampling, wrapper checks and bad input


def test_block_bootstrap_draws_consecutive_blocks():
    samples = block_bootstrap_samples(53, 40, 5, random_state=0)
    assert len(samples) == 40 and all(s.size == 53 for s in samples)
    blocks = np.stack(samples)[:, :50].reshape(40, 10, 5)
    assert np.all(np.diff(blocks, axis=-1) == 1)
    starts = blocks[:, :, 0].ravel()
    assert starts.min() == 0 and starts.max() == 48  # every start in [0, n - length]


def test_enbpi_with_its_own_bootstrap_covers_and_runs_aci():
    X, y = series(n=900, jump=10_000, seed=2)
    for block_length in (1, 8):
        enbpi = EnbPIRegressor(
            LinearRegression(),
            0.9,
            resampling=25,
            block_length=block_length,
            gamma=0.01,
            random_state=0,
        ).fit_conformalize(X[:300], y[:300])
        lower, upper = enbpi.predict_interval(X[300:])
        assert 0.86 < np.mean((lower <= y[300:]) & (y[300:] <= upper)) < 0.95
        enbpi.update(X[300:600], y[300:600])
        assert enbpi.scores_.size == 300 and 0.0 < enbpi.n_errors_ / enbpi.n_updates_ < 0.2


def test_enbpi_around_the_full_model_without_aci_is_a_rolling_window_at_the_fixed_level():
    X, y = series()
    enbpi = EnbPIRegressor(
        LinearRegression(), 0.9, resampling=15, center="full", gamma=0.0, random_state=0
    ).fit_conformalize(X[:N_TRAIN], y[:N_TRAIN])
    full = LinearRegression().fit(X[:N_TRAIN], y[:N_TRAIN])
    scores = enbpi.scores_.copy()  # the ensemble's out-of-bag residuals, not the full model's
    assert not np.allclose(scores, y[:N_TRAIN] - full.predict(X[:N_TRAIN]))
    misses = 0
    for t in range(N_TRAIN, X.shape[0], 20):  # through the change at 260
        rows = slice(t, t + 20)
        center = full.predict(X[rows])
        lower, upper = enbpi.predict_interval(X[rows])
        low, up = residual_offsets(scores, 1 - 0.9)
        np.testing.assert_allclose(lower, center + low, rtol=0, atol=1e-12)
        np.testing.assert_allclose(upper, center + up, rtol=0, atol=1e-12)
        misses += int(np.sum((y[rows] < lower) | (y[rows] > upper)))
        enbpi.update(X[rows], y[rows])
        assert enbpi.alpha_t_ == 1 - 0.9  # gamma = 0: the level never moves
        scores = np.r_[scores, y[rows] - center][-N_TRAIN:]
    np.testing.assert_allclose(enbpi.scores_, scores, rtol=0, atol=1e-12)
    assert enbpi.n_errors_ == misses > 0


class CountingRegression(LinearRegression):
    """Counts the rows its clones are asked to predict."""

    rows_predicted = 0

    def predict(self, X):
        CountingRegression.rows_predicted += len(X)
        return super().predict(X)


@pytest.mark.parametrize("aggregation", ["mean", "median"])
def test_enbpi_scores_come_from_the_ensemble_without_predicting_again(aggregation):
    X, y = series(n=150)
    CountingRegression.rows_predicted = 0
    enbpi = EnbPIRegressor(
        CountingRegression(), 0.9, resampling=12, aggregation=aggregation, random_state=3
    ).fit_conformalize(X, y)
    assert CountingRegression.rows_predicted == 12 * 150  # each model once, in the ensemble
    jab = JackknifeAfterBootstrapRegressor(
        LinearRegression(), 0.9, resampling=12, random_state=3
    ).fit_conformalize(X, y)  # block_length=1: the same i.i.d. samples as the ensemble's own
    kept = ~np.isnan(enbpi.scores_)
    np.testing.assert_array_equal(enbpi.out_of_bag_, jab.out_of_bag_[kept])
    if aggregation == "mean":
        np.testing.assert_allclose(np.abs(enbpi.scores_[kept]), jab.residuals_, atol=1e-12)
    else:
        loo = np.nanmedian(np.where(jab.out_of_bag_, jab.train_predictions_.T, np.nan), axis=1)
        np.testing.assert_allclose(enbpi.scores_[kept], (y - loo)[kept], atol=1e-12)


def test_unsorted_time_is_refused_with_the_fix():
    pd = pytest.importorskip("pandas")
    X, y = series(n=300)
    stamps = pd.date_range("2024-01-01", periods=300, freq="h")
    shuffled = np.r_[0:40, 41, 40, 42:300]
    enbpi = EnbPIRegressor(LinearRegression(), 0.9, resampling=10, random_state=0)
    with pytest.raises(ValueError, match=r"'time' .*sorted in increasing time.*sort them by time"):
        enbpi.fit_conformalize(X[:200], y[:200], time=np.asarray(stamps)[shuffled[:200]])
    frame = pd.DataFrame(X, index=stamps[shuffled])
    with pytest.raises(ValueError, match=r"'X.index' .*Got X.index\[41\].*sort_index"):
        enbpi.fit_conformalize(frame.iloc[:200], y[:200])
    enbpi.fit_conformalize(pd.DataFrame(X[:200], index=stamps[:200]), y[:200])
    with pytest.raises(ValueError, match=r"at or after the last time already seen"):
        enbpi.update(pd.DataFrame(X[200:210], index=stamps[150:160]), y[200:210])
    enbpi.update(pd.DataFrame(X[200:210], index=stamps[200:210]), y[200:210])
    aci = AdaptiveConformalRegressor(LinearRegression(), prefit=False)
    with pytest.raises(ValueError, match=r"'time' .*Got time\[2\] = 1 before time\[1\] = 5"):
        aci.fit(X[:3], y[:3], time=[0, 5, 1])
    with pytest.raises(ValueError, match=r"'time' .* must be 1-D.* Got shape \(3, 1\)\. .*ravel"):
        aci.fit(X[:3], y[:3], time=np.zeros((3, 1)))


@pytest.mark.parametrize("gamma", [-0.01, 1.5, "0.01", True])
def test_gamma_out_of_range_is_refused(gamma):
    X, y = series(n=120)
    with pytest.raises(ValueError, match=r"'gamma' parameter .* must be a float in \[0, 1\]"):
        adaptive_conformal_intervals(np.zeros(10), np.zeros(10), np.arange(30.0), 0.9, gamma)
    model = LinearRegression().fit(X[:60], y[:60])
    with pytest.raises(ValueError, match=r"gamma=0.005"):
        AdaptiveConformalRegressor(model, gamma=gamma).conformalize(X[60:], y[60:])


def test_a_window_too_small_for_the_level_names_the_smallest():
    X, y = series(n=120)
    model = LinearRegression().fit(X[:60], y[:60])
    with pytest.raises(ValueError, match=r"'window' parameter .* needs n >= 19\. Pass window"):
        AdaptiveConformalRegressor(model, 0.9, window=15).conformalize(X[60:], y[60:])
    with pytest.raises(ValueError, match=r"30 calibration residuals are too few .*n >= 39"):
        AdaptiveConformalRegressor(model, 0.95).conformalize(X[60:90], y[60:90])
    with pytest.raises(ValueError, match=r"needs n >= 9"):
        AdaptiveConformalRegressor(model, 0.9, window=8, symmetric=True).conformalize(
            X[60:], y[60:]
        )
    with pytest.raises(ValueError, match=r"10 scores are too few .*Pass at least 19 scores"):
        adaptive_conformal_intervals(np.zeros(5), np.zeros(5), np.arange(10.0), 0.9)
    with pytest.raises(ValueError, match=r"'window' parameter .*Pass window >= 19"):
        adaptive_conformal_intervals(np.zeros(5), np.zeros(5), np.arange(30.0), 0.9, window=10)
    AdaptiveConformalRegressor(model, 0.9, window=19).conformalize(X[60:], y[60:])


def test_unfitted_and_other_bad_settings():
    X, y = series(n=100)
    with pytest.raises(NotFittedError, match=r"Call fit_conformalize\(X, y\) first"):
        EnbPIRegressor(LinearRegression()).predict_interval(X)
    with pytest.raises(NotFittedError, match=r"Call conformalize\(X, y\) first"):
        AdaptiveConformalRegressor(LinearRegression()).update(X, y)
    with pytest.raises(ValueError, match=r"'aggregation'"):
        EnbPIRegressor(LinearRegression(), aggregation="max").fit_conformalize(X, y)
    with pytest.raises(ValueError, match=r"'block_length' .* at most the training size 100"):
        EnbPIRegressor(LinearRegression(), block_length=101).fit_conformalize(X, y)
    with pytest.raises(ValueError, match=r"'resampling' parameter of EnbPIRegressor.* >= 2"):
        EnbPIRegressor(LinearRegression(), resampling=1).fit_conformalize(X, y)
    # Before the fits, in EnbPI's own terms (the ensemble alone would refuse fewer than 99)
    with pytest.raises(
        ValueError, match=r"EnbPIRegressor.fit_conformalize: 50 training rows are too few .*199"
    ):
        EnbPIRegressor(LinearRegression(), 0.99).fit_conformalize(X[:50], y[:50])
    aci = AdaptiveConformalRegressor(LinearRegression().fit(X, y)).conformalize(X, y)
    mismatch = r"'y' parameter of .*update must hold one value per row of X.* 3 values of y for 4"
    with pytest.raises(ValueError, match=mismatch):
        aci.update(X[:4], y[:3])
    with pytest.raises(ValueError, match=r"same shape"):
        adaptive_conformal_intervals(np.zeros(5), np.zeros(4), np.arange(30.0))
