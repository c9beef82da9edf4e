"""The MAPIE-style wrappers, input checks, and agreement with MAPIE on the same predictions."""

import jax
import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.datasets import load_iris
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression, LogisticRegression

from posterax.conformal import (
    SplitConformalClassifier,
    SplitConformalRegressor,
    conformal_prediction_sets,
    set_size,
    split_conformal_interval,
)


class GaussianModel(RegressorMixin, BaseEstimator):
    """Predicts mean x0 and std x1 (a stand-in for a Bayesian regressor)."""

    def fit(self, X, y=None):
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict(self, X, return_std=False):
        X = np.asarray(X)
        return (X[:, 0], X[:, 1]) if return_std else X[:, 0]

    def predict_interval(self, X, level=0.95):
        from scipy.stats import norm

        X = np.asarray(X)
        z = norm.ppf(0.5 + level / 2)
        return X[:, 0] - z * X[:, 1], X[:, 0] + z * X[:, 1]


class ProbaModel(ClassifierMixin, BaseEstimator):
    """Returns its input as probabilities."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict_proba(self, X):
        return np.asarray(X)

    def predict(self, X):
        return self.classes_[np.asarray(X).argmax(1)]


@pytest.fixture(scope="module")
def reg_data():
    rng = np.random.default_rng(0)
    n = 1500
    mu = rng.normal(size=n)
    sd = rng.uniform(0.2, 1.0, size=n)
    y = mu + sd * rng.normal(size=n) * 1.3
    X = np.stack([mu, sd], 1)
    return X[:700], y[:700], X[700:], y[700:]


def test_regressor_scores(reg_data):
    X_cal, y_cal, X_te, y_te = reg_data
    model = GaussianModel().fit(X_cal)
    widths = {}
    for score in ("absolute", "normalized", "cqr"):
        scr = SplitConformalRegressor(model, confidence_level=0.9, conformity_score=score)
        scr.conformalize(X_cal, y_cal)
        lo, hi = scr.predict_interval(X_te)
        cov = float(np.mean((np.asarray(lo) <= y_te) & (y_te <= np.asarray(hi))))
        assert 0.86 < cov < 0.94, (score, cov)
        widths[score] = np.asarray(hi - lo)
        assert scr.n_conformalize_ == 700
    assert np.ptp(widths["absolute"]) < 1e-5  # one width for all
    assert np.ptp(widths["normalized"]) > 0.5  # adapts to the predictive std
    # the wrapper equals the function on precomputed predictions
    lo_f, hi_f = split_conformal_interval(
        y_cal,
        X_cal[:, 0],
        X_te[:, 0],
        alpha=0.1,
        normalized=True,
        y_std_cal=X_cal[:, 1],
        y_std_test=X_te[:, 1],
    )
    np.testing.assert_allclose(widths["normalized"], np.asarray(hi_f - lo_f), rtol=1e-5)


def test_regressor_fit_and_cqr_pair():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(900, 2))
    y = X @ np.array([1.0, -2.0]) + rng.normal(size=900)
    scr = SplitConformalRegressor(LinearRegression(), prefit=False).fit(X[:300], y[:300])
    lo, hi = scr.conformalize(X[300:600], y[300:600]).predict_interval(X[600:])
    assert 0.84 < float(np.mean((lo <= y[600:]) & (y[600:] <= hi))) < 0.96
    np.testing.assert_allclose(scr.predict(X[600:]), scr.estimator_.predict(X[600:]), rtol=1e-5)

    class Shift(RegressorMixin, BaseEstimator):
        def __init__(self, shift=0.0):
            self.shift = shift

        def fit(self, X, y):
            self.coef_ = np.linalg.lstsq(X, y, rcond=None)[0]
            return self

        def predict(self, X):
            return X @ self.coef_ + self.shift

    pair = (Shift(-0.5), Shift(0.5))  # too narrow: CQR widens
    cqr = SplitConformalRegressor(pair, conformity_score="cqr", prefit=False).fit(X[:300], y[:300])
    lo, hi = cqr.conformalize(X[300:600], y[300:600]).predict_interval(X[600:])
    assert cqr.quantile_ > 0
    assert 0.84 < float(np.mean((lo <= y[600:]) & (y[600:] <= hi))) < 0.96


def test_classifier_with_string_labels_and_randomized_aps():
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    idx = np.random.default_rng(2).permutation(150)
    model = LogisticRegression(max_iter=500).fit(X[idx[:50]], names[idx[:50]])
    for score, randomized in [("lac", False), ("aps", False), ("aps", True), ("raps", True)]:
        scc = SplitConformalClassifier(
            model,
            confidence_level=0.8,
            conformity_score=score,
            randomized=randomized,
            random_state=0,
        )
        sets = scc.conformalize(X[idx[50:100]], names[idx[50:100]]).predict_set(X[idx[100:]])
        assert sets.shape == (50, 3)
        np.testing.assert_array_equal(scc.classes_, ["setosa", "versicolor", "virginica"])
        again = scc.predict_set(X[idx[100:]])  # reproducible
        np.testing.assert_array_equal(np.asarray(sets), np.asarray(again))
    assert set(scc.predict(X[:3])) <= set(names)
    with pytest.raises(ValueError, match="labels the estimator does not predict"):
        scc.conformalize(X[:20], np.array(["rose"] * 20))


def test_errors():
    model = GaussianModel().fit(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="prefit=True"):
        SplitConformalRegressor(model).fit(np.zeros((5, 2)), np.zeros(5))
    with pytest.raises(NotFittedError):
        SplitConformalRegressor(model).predict_interval(np.zeros((5, 2)))
    with pytest.raises(NotFittedError, match="prefit=False"):
        SplitConformalRegressor(model, prefit=False).conformalize(np.zeros((5, 2)), np.zeros(5))
    with pytest.raises(TypeError, match=r"predict\(X, return_std=True\)"):
        SplitConformalRegressor(
            LinearRegression().fit(np.zeros((3, 1)), np.zeros(3)), conformity_score="normalized"
        ).conformalize(np.zeros((30, 1)), np.zeros(30))
    with pytest.raises(
        ValueError, match=r"'confidence_level' .* \(0, 1\). Got 90. Did you mean 0.9"
    ):
        SplitConformalRegressor(model, confidence_level=90).conformalize(
            np.ones((30, 2)), np.zeros(30)
        )
    with pytest.raises(ValueError, match="5 calibration points are too few"):
        SplitConformalRegressor(model).conformalize(np.ones((5, 2)), np.zeros(5))
    with pytest.raises(ValueError, match="'conformity_score' .* 'absolute'"):
        SplitConformalRegressor(model, conformity_score="abs").conformalize(
            np.ones((30, 2)), np.zeros(30)
        )
    p = np.full((30, 3), 1 / 3)
    with pytest.raises(ValueError, match="rng_key"):
        conformal_prediction_sets(np.zeros(30, int), p, p, score="aps", randomized=True)
    with pytest.raises(ValueError, match="LAC sets are deterministic"):
        conformal_prediction_sets(
            np.zeros(30, int), p, p, randomized=True, rng_key=jax.random.key(0)
        )
    with pytest.raises(ValueError, match="normalized=True"):
        split_conformal_interval(np.zeros(30), np.zeros(30), np.zeros(3), y_std_cal=np.ones(30))


# --- agreement with MAPIE 1.6 on the same precomputed predictions (test-only dependency) -------


def test_regression_intervals_equal_mapie(reg_data):
    mapie = pytest.importorskip("mapie")
    from mapie.regression import SplitConformalRegressor as MapieRegressor

    X_cal, y_cal, X_te, _ = reg_data
    model = GaussianModel().fit(X_cal)
    for level in (0.8, 0.9, 0.95):
        ref = MapieRegressor(model, confidence_level=level, prefit=True)
        _, intervals = ref.conformalize(X_cal, y_cal).predict_interval(X_te)
        with jax.enable_x64(True):
            lo, hi = split_conformal_interval(y_cal, X_cal[:, 0], X_te[:, 0], alpha=1 - level)
        np.testing.assert_allclose(lo, intervals[:, 0, 0], rtol=1e-12)
        np.testing.assert_allclose(hi, intervals[:, 1, 0], rtol=1e-12)
    assert mapie.__version__.startswith("1.")


def test_classification_sets_agree_with_mapie():
    pytest.importorskip("mapie")
    from mapie.classification import SplitConformalClassifier as MapieClassifier

    rng = np.random.default_rng(3)
    z = 1.5 * rng.normal(size=(3000, 6))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = (rng.uniform(size=(3000, 1)) > p.cumsum(1)).sum(1).clip(0, 5)
    model = ProbaModel().fit(p[:10], np.arange(10) % 6)
    cal, te = slice(0, 1500), slice(1500, None)
    for level in (0.8, 0.9):
        # LAC is deterministic: identical sets
        ref = MapieClassifier(model, confidence_level=level, conformity_score="lac", prefit=True)
        _, ref_sets = ref.conformalize(p[cal], y[cal]).predict_set(p[te])
        with jax.enable_x64(True):
            sets = conformal_prediction_sets(y[cal], p[cal], p[te], alpha=1 - level)
        np.testing.assert_array_equal(np.asarray(sets), ref_sets[:, :, 0])
        # APS, randomised: MAPIE's "randomized" sets follow Romano et al. (2020) as ours do, with
        # other uniforms; the average set sizes agree within Monte Carlo error.
        ref = MapieClassifier(
            model, confidence_level=level, conformity_score="aps", prefit=True, random_state=0
        )
        ref.conformalize(p[cal], y[cal])
        _, ref_sets = ref.predict_set(
            p[te], conformity_score_params={"include_last_label": "randomized"}
        )
        with jax.enable_x64(True):
            sets = conformal_prediction_sets(
                y[cal],
                p[cal],
                p[te],
                alpha=1 - level,
                score="aps",
                randomized=True,
                rng_key=jax.random.key(0),
            )
        ours, theirs = float(np.mean(set_size(sets))), float(ref_sets[:, :, 0].sum(1).mean())
        assert abs(ours - theirs) / theirs < 0.04, (ours, theirs)
        # APS, deterministic: MAPIE's default (randomised scores, last label included) is
        # conservative; ours is the exact inverse of a deterministic score: no larger, still valid.
        _, ref_sets = ref.predict_set(p[te])
        with jax.enable_x64(True):
            sets = np.asarray(
                conformal_prediction_sets(y[cal], p[cal], p[te], alpha=1 - level, score="aps")
            )
        assert sets.sum(1).mean() <= ref_sets[:, :, 0].sum(1).mean()
        assert sets[np.arange(1500), y[te]].mean() >= level - 0.02


@pytest.mark.parametrize(
    ("score", "randomized"),
    [("lac", False), ("aps", False), ("aps", True), ("raps", False), ("raps", True)],
)
def test_numpy_path_equals_jax_path(score, randomized):
    rng = np.random.default_rng(6)
    z = rng.normal(size=(600, 5)).astype(np.float32)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    p[:20] = 0.2  # exact ties
    y = rng.integers(0, 5, 600)
    kw = dict(
        alpha=0.1,
        score=score,
        randomized=randomized,
        rng_key=jax.random.key(1),
        lambda_reg=0.05,
        k_reg=2,
    )
    fast = conformal_prediction_sets(y[:300], p[:300], p[300:], **kw)
    ref = conformal_prediction_sets(
        jax.numpy.asarray(y[:300]), jax.numpy.asarray(p[:300]), jax.numpy.asarray(p[300:]), **kw
    )
    assert isinstance(fast, np.ndarray)
    assert (fast != np.asarray(ref)).mean() < 0.002  # at most float rounding at the threshold


def test_numpy_regression_path_equals_jax_path(reg_data):
    X_cal, y_cal, X_te, _ = reg_data
    with jax.enable_x64(True):
        for normalized in (False, True):
            kw = dict(alpha=0.1, normalized=normalized)
            if normalized:
                kw.update(y_std_cal=X_cal[:, 1], y_std_test=X_te[:, 1])
            lo, hi = split_conformal_interval(y_cal, X_cal[:, 0], X_te[:, 0], **kw)
            jkw = {
                k: (jax.numpy.asarray(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()
            }
            lo2, hi2 = split_conformal_interval(
                jax.numpy.asarray(y_cal),
                jax.numpy.asarray(X_cal[:, 0]),
                jax.numpy.asarray(X_te[:, 0]),
                **jkw,
            )
            assert isinstance(lo, np.ndarray)
            np.testing.assert_allclose(lo, lo2, rtol=1e-12)
            np.testing.assert_allclose(hi, hi2, rtol=1e-12)
