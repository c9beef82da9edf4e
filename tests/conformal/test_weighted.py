"""Weighted split conformal under covariate shift (Tibshirani et al., 2019): equal weights give
exactly split conformal; the weighted quantile matches an exact brute-force reference (ties,
zero weights); under a known shift plain split conformal undercovers and weighted conformal (true
or estimated ratio) is back at nominal; bad input fails with clear errors."""

from fractions import Fraction

import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.naive_bayes import GaussianNB
from sklearn.svm import SVC

import posterax as px
from posterax.conformal import (
    SplitConformalClassifier,
    SplitConformalRegressor,
    conformal_quantile,
    lac_score,
    lac_set,
)
from posterax.conformal.weighted import (
    ClassifierLikelihoodRatio,
    WeightedSplitConformalRegressor,
    weighted_conformal_quantile,
)


def _shifted(rng, n, shift):
    """x ~ N(shift, 1); a nonlinear mean and noise growing with x > 0 (a linear fit is wrong)."""
    X = rng.normal(shift, 1.0, (n, 1))
    noise = rng.normal(size=n) * (0.2 + 0.6 * np.maximum(X[:, 0], 0.0))
    return X, np.sin(2 * X[:, 0]) + X[:, 0] + noise


def _true_ratio(X):
    """dN(1, 1) / dN(0, 1) at x: exp(x - 1/2)."""
    return np.exp(np.asarray(X)[:, 0] - 0.5)


def _covered(lower, upper, y):
    return (np.asarray(lower) <= y) & (y <= np.asarray(upper))


# (a) Equal weights: the split-conformal interval, by another code path -------------------------


@pytest.mark.parametrize(
    "n, alpha",
    [(n, a) for n in (9, 10, 19, 199, 250, 1001) for a in (0.1, 0.05, 0.2, 0.37) if n >= 1 / a - 1],
)
def test_equal_weights_give_the_split_conformal_quantile(n, alpha):
    scores = np.random.default_rng(n).exponential(size=n)
    q = weighted_conformal_quantile(
        scores, alpha, weights=np.full(n, 3.7), test_weights=np.full(5, 3.7)
    )
    assert np.all(q == float(conformal_quantile(scores, alpha)))


@pytest.mark.parametrize("score", ["absolute", "normalized", "cqr"])
@pytest.mark.parametrize("level", [0.9, 0.8])
def test_equal_weights_give_the_split_conformal_interval(score, level):
    rng = np.random.default_rng(1)
    X, y = _shifted(rng, 600, 0.0)
    model = px.BayesianLinearRegression(method="exact").fit(X[:200], y[:200])
    split = SplitConformalRegressor(model, level, conformity_score=score)
    lo, hi = split.conformalize(X[200:399], y[200:399]).predict_interval(X[400:])
    constant = WeightedSplitConformalRegressor(
        model, level, conformity_score=score, likelihood_ratio=lambda X: np.full(len(X), 0.3)
    )
    lo_w, hi_w = constant.conformalize(X[200:399], y[200:399]).predict_interval(X[400:])
    np.testing.assert_array_equal(np.asarray(lo_w), np.asarray(lo))
    np.testing.assert_array_equal(np.asarray(hi_w), np.asarray(hi))
    arrays = WeightedSplitConformalRegressor(model, level, conformity_score=score)
    arrays.conformalize(X[200:399], y[200:399], weights=np.full(199, 2.0))
    lo_a, hi_a = arrays.predict_interval(X[400:], weights=np.full(200, 2.0))
    np.testing.assert_array_equal(np.asarray(lo_a), np.asarray(lo))
    np.testing.assert_array_equal(np.asarray(hi_a), np.asarray(hi))
    assert constant.effective_sample_size_ == pytest.approx(199)


# (c) The weighted quantile against a brute-force reference ------------------------------------


def _reference(scores, weights, test_weight, alpha):
    """Scan every candidate threshold; the smallest whose calibration mass reaches 1 - alpha."""
    total = sum(weights) + test_weight
    for v in sorted(set(scores)):
        if sum(w for s, w in zip(scores, weights, strict=True) if s <= v) >= (1 - alpha) * total:
            return v
    return np.inf


@pytest.mark.parametrize("seed", range(6))
def test_weighted_quantile_matches_an_exact_reference_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(10, 60))
    scores = rng.integers(0, 6, n).astype(float)  # many ties
    weights = rng.integers(0, 4, n).astype(float)  # integers, zeros included: exact arithmetic
    weights[0] = 1.0
    test_weights = rng.integers(0, 8, 40).astype(float)
    for alpha in (Fraction(1, 10), Fraction(1, 4), Fraction(1, 3), Fraction(2, 5)):
        if n < (1 - alpha) / alpha:
            continue
        q = weighted_conformal_quantile(
            scores, float(alpha), weights=weights, test_weights=test_weights
        )
        # Fractions: the boundary cases (mass exactly 1 - alpha) are decided exactly.
        want = [
            _reference(scores.tolist(), [Fraction(int(w)) for w in weights], int(t), alpha)
            for t in test_weights
        ]
        np.testing.assert_array_equal(q, want)


def test_weighted_quantile_matches_the_reference_on_continuous_weights():
    rng = np.random.default_rng(7)
    regimes = []
    for n in (20, 73, 300):
        scores = np.round(rng.normal(size=n), 1).astype(np.float32)  # ties from rounding
        weights = rng.lognormal(0.0, 1.0, n)
        test_weights = rng.lognormal(0.0, 1.5, 30)
        q = weighted_conformal_quantile(
            jnp.asarray(scores), 0.1, weights=weights, test_weights=test_weights
        )
        want = [_reference(scores.tolist(), list(weights), t, 0.1) for t in test_weights]
        np.testing.assert_array_equal(q, np.asarray(want))
        regimes += np.isinf(q).tolist()
    assert any(regimes) and not all(regimes)  # finite and infinite thresholds both checked


def test_infinite_exactly_where_the_test_weight_outweighs_alpha_of_the_calibration_mass():
    rng = np.random.default_rng(3)
    weights = rng.uniform(0.5, 1.5, 100)
    test_weights = np.linspace(0.0, 30.0, 301)
    q = weighted_conformal_quantile(
        rng.normal(size=100), 0.1, weights=weights, test_weights=test_weights
    )
    # alpha * W >= (1 - alpha) w_t  <=>  the calibration mass can reach 1 - alpha
    np.testing.assert_array_equal(np.isinf(q), test_weights > weights.sum() / 9 * (1 + 1e-9))
    assert np.all(q[1:] >= q[:-1])  # a heavier test point never gets a smaller threshold


# (b) A known covariate shift over 200 repetitions ------------------------------------------------
# Calibration x ~ N(0, 1), test x ~ N(1, 1), n_cal = n_test = 200, level 0.9; the 200 seeds below
# give (mean coverage, Monte Carlo se, share of infinite intervals): plain split (0.784, 0.003, 0);
# weighted, true ratio (0.912, 0.003, 0.5%); weighted, logistic-regression ratio (0.912, 0.003,
# 0.7%); weighted with the inverted (wrong) ratio (0.816, 0.004, 0), so the check tells ratios
# apart. About 5 s.


def _ratio_inverted(X):
    return 1.0 / _true_ratio(X)


def test_weighted_conformal_restores_coverage_under_covariate_shift():
    model = LinearRegression().fit(*_shifted(np.random.default_rng(0), 500, 0.0))
    coverage = {"plain": [], "true": [], "estimated": [], "inverted": []}
    infinite = {"plain": [], "true": [], "estimated": [], "inverted": []}
    for rep in range(200):
        rng = np.random.default_rng(1000 + rep)
        X_cal, y_cal = _shifted(rng, 200, 0.0)
        X_test, y_test = _shifted(rng, 200, 1.0)
        wrappers = {
            "plain": SplitConformalRegressor(model, 0.9).conformalize(X_cal, y_cal),
            "true": WeightedSplitConformalRegressor(
                model, 0.9, likelihood_ratio=_true_ratio
            ).conformalize(X_cal, y_cal),
            "estimated": WeightedSplitConformalRegressor(model, 0.9).conformalize(
                X_cal, y_cal, X_test=X_test
            ),
            "inverted": WeightedSplitConformalRegressor(
                model, 0.9, likelihood_ratio=_ratio_inverted
            ).conformalize(X_cal, y_cal),
        }
        for name, wrapper in wrappers.items():
            lo, hi = wrapper.predict_interval(X_test)
            coverage[name].append(np.mean(_covered(lo, hi, y_test)))
            infinite[name].append(np.mean(np.isinf(np.asarray(lo))))
    mean = {k: float(np.mean(v)) for k, v in coverage.items()}
    se = {k: float(np.std(v) / np.sqrt(len(v))) for k, v in coverage.items()}
    assert mean["plain"] < 0.9 - 10 * se["plain"] and mean["plain"] < 0.86, (mean, se)
    assert mean["true"] >= 0.9 - 3 * se["true"] and mean["true"] < 0.94, (mean, se)
    assert abs(mean["estimated"] - 0.9) < 0.025, (mean, se)
    assert mean["inverted"] < 0.86, (mean, se)  # a wrong ratio does not do it
    assert np.mean(infinite["true"]) < 0.02 and np.mean(infinite["estimated"]) < 0.02


def test_the_classifier_estimates_the_ratio_of_a_gaussian_mean_shift():
    rng = np.random.default_rng(0)
    ratio = ClassifierLikelihoodRatio().fit(
        rng.normal(0, 1, (3000, 1)), rng.normal(1, 1, (1500, 1))
    )
    grid = np.linspace(-1.5, 2.5, 9)[:, None]
    np.testing.assert_allclose(ratio(grid), _true_ratio(grid), rtol=0.2)


def test_any_classifier_with_predict_proba_is_accepted():
    rng = np.random.default_rng(0)
    X_cal, X_test = rng.normal(0, 1, (300, 1)), rng.normal(1, 1, (300, 1))
    ratio = ClassifierLikelihoodRatio(GaussianNB()).fit(X_cal, X_test)
    w = ratio(np.array([[-1.0], [2.0]]))
    assert w[0] < 1.0 < w[1]


def test_cross_fitting_gives_each_fitted_input_the_ratio_of_a_classifier_that_did_not_see_it():
    rng = np.random.default_rng(1)
    X_cal, X_test = rng.normal(0, 1, (300, 1)), rng.normal(1, 1, (200, 1))
    forest = RandomForestClassifier(30, min_samples_leaf=3, random_state=0)
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    ratio = ClassifierLikelihoodRatio(forest, cv=folds).fit(X_cal, X_test)
    pooled, label = np.r_[X_cal, X_test], np.r_[np.zeros(300, int), np.ones(200, int)]
    p = cross_val_predict(clone(forest), pooled, label, cv=folds, method="predict_proba")[:, 1]
    want = p / np.maximum(1 - p, 1e-12) * 1.5  # prior odds n_cal / n_test
    np.testing.assert_allclose(ratio(X_cal), want[:300], rtol=1e-12)
    np.testing.assert_allclose(ratio(X_test[::-1]), want[300:][::-1], rtol=1e-12)  # row by row
    new = np.array([[-0.25], [1.5]])  # not fitted on: the classifier fitted on all inputs
    full = ratio.classifier_.predict_proba(new)[:, 1]
    np.testing.assert_allclose(ratio(new), full / np.maximum(1 - full, 1e-12) * 1.5)
    mixed = ratio(np.r_[new[:1], X_cal[:2]])  # new and fitted rows in one call
    np.testing.assert_allclose(mixed, np.r_[ratio(new)[0], want[:2]], rtol=1e-12)


def test_cross_fitting_keeps_an_overfitting_classifier_from_inflating_the_test_weights():
    model = LinearRegression().fit(*_shifted(np.random.default_rng(0), 500, 0.0))
    rng = np.random.default_rng(1)
    (X_cal, y_cal), (X_test, _) = _shifted(rng, 300, 0.0), _shifted(rng, 300, 1.0)
    forest = RandomForestClassifier(50, min_samples_leaf=3, random_state=0)
    whole_line, calibration_weight = {}, {}
    for cv in (None, StratifiedKFold(5, shuffle=True, random_state=0)):
        wcp = WeightedSplitConformalRegressor(model, 0.9, classifier=forest, cv=cv)
        lo, _ = wcp.conformalize(X_cal, y_cal, X_test=X_test).predict_interval(X_test)
        whole_line[cv is None] = float(np.mean(np.isinf(np.asarray(lo))))
        calibration_weight[cv is None] = float(np.median(wcp.likelihood_ratio_(X_cal)))
    # In-sample the forest calls calibration points calibration and test points test: the
    # calibration weights shrink (the true ratio's median is exp(-1/2) = 0.61; other fold
    # shuffles give 0.44-0.60 and 0-6% whole-line intervals).
    assert whole_line[True] > 0.15 and whole_line[False] < 0.08, whole_line
    assert calibration_weight[True] < 0.35 < 0.4 < calibration_weight[False], calibration_weight


# (d) Bad input ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted():
    X, y = _shifted(np.random.default_rng(0), 300, 0.0)
    return LinearRegression().fit(X[:100], y[:100]), X[100:], y[100:]


@pytest.mark.parametrize(
    "bad, match",
    [
        (-1.0, r"finite likelihood ratios >= 0\. Got 1 bad value\(s\), e\.g\. -1\.0 at index 3"),
        (np.nan, r"finite likelihood ratios >= 0"),
        (np.inf, r"finite likelihood ratios >= 0"),
    ],
)
def test_negative_or_non_finite_weights_are_refused(bad, match):
    w = np.ones(20)
    w[3] = bad
    with pytest.raises(ValueError, match=match):
        weighted_conformal_quantile(np.arange(20.0), 0.1, weights=w, test_weights=[1.0])
    with pytest.raises(ValueError, match=r"'test_weights' parameter .* finite likelihood"):
        weighted_conformal_quantile(np.arange(20.0), 0.1, weights=np.ones(20), test_weights=w)


def test_misshaped_or_empty_weights_are_refused(fitted):
    with pytest.raises(ValueError, match=r"'weights' .* shape \(20,\), one weight per example"):
        weighted_conformal_quantile(np.arange(20.0), 0.1, weights=np.ones(19), test_weights=[1])
    with pytest.raises(ValueError, match=r"Use \.ravel\(\)"):
        weighted_conformal_quantile(
            np.arange(20.0), 0.1, weights=np.ones((20, 1)), test_weights=[1]
        )
    with pytest.raises(ValueError, match=r"must not be all zero"):
        weighted_conformal_quantile(np.arange(20.0), 0.1, weights=np.zeros(20), test_weights=[1])
    model, X, y = fitted
    wcp = WeightedSplitConformalRegressor(model, 0.9).conformalize(X, y, weights=np.ones(200))
    with pytest.raises(ValueError, match=r"'weights' parameter .*predict_interval.* shape \(5,\)"):
        wcp.predict_interval(X[:5], weights=np.ones(4))
    bad_ratio = WeightedSplitConformalRegressor(model, 0.9, likelihood_ratio=lambda X: np.ones(3))
    with pytest.raises(ValueError, match=r"'likelihood_ratio' parameter .* shape \(200,\)"):
        bad_ratio.conformalize(X, y)
    broken = WeightedSplitConformalRegressor(model, 0.9, likelihood_ratio=lambda X: len(X) + "w")
    with pytest.raises(TypeError, match=r"Calling it on X of type ndarray failed: .*Make it take"):
        broken.conformalize(X, y)


def test_too_few_calibration_points_name_the_smallest_n(fitted):
    with pytest.raises(ValueError, match=r"8 calibration points are too few .* at least 9"):
        weighted_conformal_quantile(np.arange(8.0), 0.1, weights=np.ones(8), test_weights=[1])
    weighted_conformal_quantile(np.arange(9.0), 0.1, weights=np.ones(9), test_weights=[1])
    model, X, y = fitted
    with pytest.raises(ValueError, match=r"18 calibration points are too few .* at least 19"):
        WeightedSplitConformalRegressor(model, 0.95).conformalize(X[:18], y[:18], X_test=X)


def test_a_classifier_without_predict_proba_is_refused(fitted):
    model, X, y = fitted
    with pytest.raises(TypeError, match=r"'classifier' .* fit and predict_proba.* Got SVC"):
        WeightedSplitConformalRegressor(model, classifier=SVC()).conformalize(X, y, X_test=X)
    with pytest.raises(TypeError, match=r"Got LinearRegression"):
        ClassifierLikelihoodRatio(LinearRegression()).fit(X, X)
    with pytest.raises(ValueError, match=r"'X_test' .* shaped like the calibration inputs"):
        ClassifierLikelihoodRatio().fit(X, np.ones((10, 3)))


def test_the_ratio_must_come_from_exactly_one_source(fitted):
    model, X, y = fitted
    with pytest.raises(ValueError, match=r"needs the likelihood ratio .* pass unlabeled test"):
        WeightedSplitConformalRegressor(model).conformalize(X, y)
    both = WeightedSplitConformalRegressor(model, likelihood_ratio=_true_ratio)
    with pytest.raises(ValueError, match=r"Got likelihood_ratio and X_test; pass one"):
        both.conformalize(X, y, X_test=X)
    with pytest.raises(TypeError, match=r"'likelihood_ratio' .* must be a callable"):
        WeightedSplitConformalRegressor(model, likelihood_ratio=np.ones(200)).conformalize(X, y)
    given = WeightedSplitConformalRegressor(model, likelihood_ratio=_true_ratio, classifier=SVC())
    with pytest.raises(ValueError, match=r"Drop 'classifier'"):
        given.conformalize(X, y)
    with pytest.raises(ValueError, match=r"'cv' is for estimating the ratio .* Drop 'cv'"):
        WeightedSplitConformalRegressor(model, cv=5).conformalize(X, y, weights=np.ones(200))
    with pytest.raises(ValueError, match=r"'cv' parameter of ClassifierLikelihoodRatio.fit"):
        WeightedSplitConformalRegressor(model, cv=1).conformalize(X, y, X_test=X)
    arrays = WeightedSplitConformalRegressor(model).conformalize(X, y, weights=np.ones(200))
    with pytest.raises(ValueError, match=r"'weights' parameter .* is required"):
        arrays.predict_interval(X)
    with pytest.raises(NotFittedError):
        WeightedSplitConformalRegressor(model, likelihood_ratio=_true_ratio).predict_interval(X)


def test_a_wrapper_that_fits_its_model_and_clones_like_an_estimator():
    X, y = _shifted(np.random.default_rng(4), 400, 0.0)
    wcp = WeightedSplitConformalRegressor(LinearRegression(), 0.8, prefit=False)
    wcp = clone(wcp.set_params(likelihood_ratio=_true_ratio))
    assert wcp.get_params()["likelihood_ratio"] is _true_ratio
    lo, hi = wcp.fit(X[:200], y[:200]).conformalize(X[200:], y[200:]).predict_interval(X[:3])
    np.testing.assert_allclose(
        0.5 * (np.asarray(lo) + np.asarray(hi)), wcp.predict(X[:3]), rtol=1e-5
    )
    assert 1.0 < wcp.effective_sample_size_ < 200.0  # unequal weights are worth fewer points


def test_weighted_lac_sets_with_equal_weights_are_the_split_conformal_sets():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 2))
    y = (X[:, 0] + rng.normal(size=300) > 0).astype(int) + (X[:, 1] > 1)
    clf = LogisticRegression(max_iter=500).fit(X[:100], y[:100])
    split = SplitConformalClassifier(clf, 0.8).conformalize(X[100:200], y[100:200])
    p_cal, p_test = clf.predict_proba(X[100:200]), clf.predict_proba(X[200:])
    q = weighted_conformal_quantile(
        lac_score(p_cal, y[100:200]), 0.2, weights=np.ones(100), test_weights=np.ones(100)
    )
    sets = lac_set(p_test, q[:, None])
    np.testing.assert_array_equal(np.asarray(sets), np.asarray(split.predict_set(X[200:])))
