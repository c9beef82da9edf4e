"""Mondrian (group-conditional) split conformal: coverage within every group, where plain split
conformal over-covers the easy group and under-covers the hard one; class-conditional sets;
clear errors for groups with too few or no calibration examples."""

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from posterax.conformal import SplitConformalClassifier, SplitConformalRegressor


def _grouped(n, seed):
    """Group 0 has noise sd 1, group 1 noise sd 3: one threshold fits neither."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    groups = rng.integers(0, 2, n)
    y = X @ [1.0, -1.0] + rng.normal(size=n) * np.where(groups == 1, 3.0, 1.0)
    return X, y, groups


def test_group_coverage_over_repetitions():
    X_fit, y_fit, _ = _grouped(500, 0)
    model = LinearRegression().fit(X_fit, y_fit)
    plain, mondrian = {0: [], 1: []}, {0: [], 1: []}
    for rep in range(200):
        X, y, g = _grouped(400, 1 + rep)
        cal, test = slice(0, 200), slice(200, 400)
        flat = SplitConformalRegressor(model, 0.9).conformalize(X[cal], y[cal])
        per = SplitConformalRegressor(model, 0.9).conformalize(X[cal], y[cal], partition=g[cal])
        # NumPy copies: boolean indexing of JAX arrays compiles once per group size
        lo, hi = map(np.asarray, flat.predict_interval(X[test]))
        lo_g, hi_g = map(np.asarray, per.predict_interval(X[test], partition=g[test]))
        for group in (0, 1):
            at = g[test] == group
            plain[group].append(np.mean((lo[at] <= y[test][at]) & (y[test][at] <= hi[at])))
            mondrian[group].append(np.mean((lo_g[at] <= y[test][at]) & (y[test][at] <= hi_g[at])))
    se = np.sqrt(0.9 * 0.1 / (200 * 100))
    for group in (0, 1):  # 1 - alpha <= coverage < 1 - alpha + 1 / (n_group + 1)
        assert abs(np.mean(mondrian[group]) - 0.905) < 4 * se + 0.006, np.mean(mondrian[group])
    assert np.mean(plain[0]) > 0.95 and np.mean(plain[1]) < 0.85  # what Mondrian repairs


def test_class_conditional_sets_cover_every_class():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [1.5, 0.0], [0.0, 3.0]])
    spreads = np.array([1.0, 1.0, 0.3])  # class 2 is easy, classes 0 and 1 overlap

    def draw(n):
        labels = rng.integers(0, 3, n)
        return centres[labels] + rng.normal(size=(n, 2)) * spreads[labels, None], labels

    model = LogisticRegression().fit(*draw(600))
    covered = {k: [] for k in range(3)}
    for _ in range(100):
        X_cal, y_cal = draw(300)
        X_test, y_test = draw(300)
        scc = SplitConformalClassifier(model, 0.9, class_conditional=True)
        sets = np.asarray(scc.conformalize(X_cal, y_cal).predict_set(X_test))
        for k in range(3):
            at = y_test == k
            covered[k].append(np.mean(sets[at, k]))
    se = np.sqrt(0.9 * 0.1 / (100 * 100))
    for k in range(3):
        assert np.mean(covered[k]) > 0.9 - 4 * se, (k, np.mean(covered[k]))
        assert np.mean(covered[k]) < 0.9 + 0.01 + 4 * se, (k, np.mean(covered[k]))


def test_groups_are_checked_by_name():
    X, y, g = _grouped(60, 0)
    model = LinearRegression().fit(X, y)
    per = SplitConformalRegressor(model, 0.9).conformalize(X, y, partition=g)
    with pytest.raises(ValueError, match=r"'partition' parameter .* is required"):
        per.predict_interval(X)
    with pytest.raises(ValueError, match=r"groups that had no calibration examples: \[7\]"):
        per.predict_interval(X[:2], partition=[0, 7])
    few = np.where(np.arange(60) < 3, 5, g)  # group 5: three examples
    with pytest.raises(ValueError, match=r"group 5 has too few calibration examples.*at least 9"):
        SplitConformalRegressor(model, 0.9).conformalize(X, y, partition=few)
    clf = LogisticRegression().fit(X, (y > 0).astype(int))
    with pytest.raises(ValueError, match=r"class_conditional=True needs calibration examples"):
        SplitConformalClassifier(clf, 0.5, class_conditional=True).conformalize(X, np.zeros(60))


def test_the_cross_and_mondrian_example_shows_what_it_says():
    import conformal_cross_and_mondrian as example  # examples/ is on sys.path via conftest

    out = example.main()
    assert 0.87 < out["cv_plus"] < 0.94 and 0.87 < out["jackknife_after_bootstrap"] < 0.94
    assert out["split_group_0"] > 0.97 and out["split_group_1"] < 0.86  # one threshold
    assert 0.87 < out["mondrian_group_0"] < 0.95 and 0.87 < out["mondrian_group_1"] < 0.95
    # ~2000 test points per class: Monte Carlo sd about 0.007
    assert out["cross_sets_class_0"] > 0.95 and out["cross_sets_class_2"] < 0.85
    for k in range(3):
        assert 0.87 < out[f"per_class_class_{k}"] < 0.93, k
