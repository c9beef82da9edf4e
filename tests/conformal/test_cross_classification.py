"""Cross-conformal prediction sets: the same sets as MAPIE 1.6 where its rule is the paper's,
an independent JAX computation for APS, coverage over repetitions (marginal and per class),
clear errors."""

import warnings

import jax
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, LeaveOneOut
from sklearn.naive_bayes import GaussianNB

from posterax.conformal import CrossConformalClassifier, aps_score, aps_set, conformal_quantile
from posterax.conformal._numpy import label_scores


def _data(n, m=300, seed=0, n_classes=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n + m, 4))
    z = X @ np.random.default_rng(100).normal(size=(4, n_classes))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = (rng.uniform(size=(n + m, 1)) > p.cumsum(1)).sum(1).clip(0, n_classes - 1)
    return X[:n], y[:n], X[n:], y[n:]


def _mapie_sets(cv, level, aggregation, X, y, X_test):
    classification = pytest.importorskip("mapie.classification")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = classification.CrossConformalClassifier(
            LogisticRegression(), confidence_level=level, cv=cv
        ).fit_conformalize(X, y)
        return theirs.predict_set(X_test, agg_scores=aggregation)[1][:, :, 0]


@pytest.mark.parametrize("aggregation", ["mean", "crossval"])
@pytest.mark.parametrize(
    "cv", [KFold(5, shuffle=True, random_state=1), LeaveOneOut()], ids=["kfold", "loo"]
)
def test_lac_sets_equal_mapies(aggregation, cv):
    """n = 100 with alpha in {0.1, 0.2}: MAPIE's crossval count rule (>= alpha (n - 1)) and
    the paper's (> alpha (n + 1) - 1) pick the same integer cut-off here."""
    X, y, X_test, _ = _data(100)
    for level in (0.8, 0.9) if isinstance(cv, KFold) else (0.9,):
        ours = CrossConformalClassifier(
            LogisticRegression(), level, cv=cv, aggregation=aggregation
        ).fit_conformalize(X, y)
        theirs = _mapie_sets(cv, level, aggregation, X, y, X_test)
        np.testing.assert_array_equal(ours.predict_set(X_test), theirs)


def test_crossval_sets_follow_the_paper_where_mapie_does_not():
    """n = 104, alpha = 0.1: Romano et al. (2020, Alg. 2) keep a label that 10 training points
    outscore (10 > 0.1 * 105 - 1); MAPIE asks for 10.3. Ours hold MAPIE's sets, and differ
    only at that count."""
    X, y, X_test, _ = _data(104)
    cv = KFold(5, shuffle=True, random_state=1)
    ours = CrossConformalClassifier(LogisticRegression(), 0.9, cv=cv, aggregation="crossval")
    sets = ours.fit_conformalize(X, y).predict_set(X_test)
    theirs = _mapie_sets(cv, 0.9, "crossval", X, y, X_test)
    assert np.all(sets >= theirs) and np.any(sets != theirs)
    # the count of training points scoring at least as badly, where the two differ
    fold_scores = [label_scores(p, "lac", 0, 0.0) for p in ours._fold_probs(X_test)]
    at_least = sum(ours.scores_[i] >= fold_scores[k] for i, k in enumerate(ours.fold_of_))
    np.testing.assert_array_equal(np.unique(at_least[sets != theirs]), [10])


def test_aps_mean_sets_equal_an_independent_jax_computation():
    X, y, X_test, _ = _data(150, seed=4)
    cv = KFold(5, shuffle=True, random_state=2)
    ours = CrossConformalClassifier(LogisticRegression(), 0.9, "aps", cv=cv)
    sets = ours.fit_conformalize(X, y).predict_set(X_test)
    with jax.enable_x64(True):
        out_of_fold = np.zeros((150, 3))
        for model, (_, test) in zip(ours.estimators_, cv.split(X), strict=True):
            out_of_fold[test] = model.predict_proba(X[test])
        q = conformal_quantile(aps_score(jax.numpy.asarray(out_of_fold), jax.numpy.asarray(y)), 0.1)
        mean = np.mean([m.predict_proba(X_test) for m in ours.estimators_], axis=0)
        expected = np.asarray(aps_set(jax.numpy.asarray(mean), q))
    np.testing.assert_array_equal(sets, expected)


def test_coverage_over_repetitions_marginal_and_per_class():
    """200 repetitions x 300 test points, fixed seeds. Cross-conformal sets cover at least
    1 - 2 alpha in theory and about 1 - alpha in practice; class-conditional ones within each
    class. The Monte Carlo sd of a mean over 200 x 300 is about 0.002; allow 4 sd below."""
    level, hits, per_class = 0.9, {"mean": [], "crossval": []}, []
    for rep in range(200):
        X, y, X_test, y_test = _data(90, seed=rep)
        rows = np.arange(len(y_test))
        for aggregation, record in hits.items():
            model = CrossConformalClassifier(
                GaussianNB(), level, cv=5, aggregation=aggregation, random_state=rep
            )
            record.append(model.fit_conformalize(X, y).predict_set(X_test)[rows, y_test].mean())
        model = CrossConformalClassifier(
            GaussianNB(),
            level,
            cv=5,
            aggregation="crossval",
            class_conditional=True,
            random_state=rep,
        )
        sets = model.fit_conformalize(X, y).predict_set(X_test)
        covered = sets[rows, y_test]
        per_class.append([covered[y_test == k].mean() for k in range(3)])
    for aggregation, record in hits.items():
        assert np.mean(record) >= level - 0.008, (aggregation, np.mean(record))
        assert np.mean(record) <= level + 0.06, (aggregation, np.mean(record))
    by_class = np.nanmean(per_class, axis=0)
    assert np.all(by_class >= level - 0.015), by_class


def test_a_class_missing_from_a_training_fold_gets_a_zero_column():
    X, y, X_test, _ = _data(40, seed=1)
    y = y.copy()
    y[:3] = 7  # a rare class: some folds train without it
    model = CrossConformalClassifier(GaussianNB(), 0.5, cv=KFold(5)).fit_conformalize(X, y)
    assert model.predict_proba(X_test).shape == (300, 4)
    np.testing.assert_allclose(model.predict_proba(X_test).sum(1), 1.0)


def test_bad_input_names_the_fix():
    X, y, X_test, _ = _data(30)
    with pytest.raises(ValueError, match=r"at least 19"):
        CrossConformalClassifier(GaussianNB(), 0.95, cv=5).fit_conformalize(X[:15], y[:15])
    with pytest.raises(ValueError, match="'aggregation'"):
        CrossConformalClassifier(GaussianNB(), aggregation="median").fit_conformalize(X, y)
    with pytest.raises(ValueError, match="'cv'"):
        CrossConformalClassifier(GaussianNB(), cv=1).fit_conformalize(X, y)
    with pytest.raises(ValueError, match="too few calibration examples"):
        CrossConformalClassifier(GaussianNB(), 0.9, cv=3, class_conditional=True).fit_conformalize(
            X, y
        )
    with pytest.raises(Exception, match="fit_conformalize"):
        CrossConformalClassifier(GaussianNB()).predict_set(X_test)


def _two_groups(n, seed):
    """Group 1's labels are noisier: without Mondrian its sets undercover, group 0's over."""
    X, y, X_test, y_test = _data(n, seed=seed)
    rng = np.random.default_rng(seed + 1000)
    g, g_test = rng.integers(0, 2, n), rng.integers(0, 2, len(y_test))
    y, y_test = y.copy(), y_test.copy()
    y[g == 1] = np.where(
        rng.uniform(size=(g == 1).sum()) < 0.5, rng.integers(0, 3, (g == 1).sum()), y[g == 1]
    )
    flip = (g_test == 1) & (rng.uniform(size=len(y_test)) < 0.5)
    y_test[flip] = rng.integers(0, 3, flip.sum())
    return X, y, g, X_test, y_test, g_test


@pytest.mark.parametrize("aggregation", ["mean", "crossval"])
def test_partition_gives_coverage_within_each_group(aggregation):
    """100 repetitions x 300 test points: per-group coverage within Monte Carlo error of 0.9
    (sd about 0.004 per group) with partition=; without it group 1 falls short."""
    per_group, plain = [], []
    for rep in range(100):
        X, y, g, X_test, y_test, g_test = _two_groups(120, rep)
        rows = np.arange(len(y_test))
        for record, part in ((per_group, g), (plain, None)):
            model = CrossConformalClassifier(
                GaussianNB(), 0.9, cv=5, aggregation=aggregation, random_state=rep
            ).fit_conformalize(X, y, partition=part)
            sets = model.predict_set(X_test, partition=None if part is None else g_test)
            hit = sets[rows, y_test]
            record.append([hit[g_test == k].mean() for k in (0, 1)])
    per_group, plain = np.mean(per_group, axis=0), np.mean(plain, axis=0)
    assert np.all(per_group >= 0.9 - 0.015), per_group
    assert plain[1] < 0.9 - 0.03 and plain[1] < per_group[1] - 0.03, (plain, per_group)


def test_class_conditional_mean_sets_use_each_class_quantile():
    X, y, X_test, _ = _data(150, seed=5)
    model = CrossConformalClassifier(
        LogisticRegression(), 0.8, cv=KFold(5, shuffle=True, random_state=0), class_conditional=True
    ).fit_conformalize(X, y)
    sets = model.predict_set(X_test)
    mean = model.predict_proba(X_test)
    for k in range(3):  # an independent per-class split quantile of the out-of-fold scores
        scores = np.sort(model.scores_[y == k])
        q = scores[int(np.ceil((scores.size + 1) * 0.8)) - 1]
        np.testing.assert_array_equal(sets[:, k], 1 - mean[:, k] <= q)


def test_partition_bad_input():
    X, y, g, X_test, _, g_test = _two_groups(120, 0)
    model = CrossConformalClassifier(GaussianNB(), 0.9).fit_conformalize(X, y, partition=g)
    with pytest.raises(ValueError, match="'partition' parameter .* is required"):
        model.predict_set(X_test)
    with pytest.raises(ValueError, match="no calibration examples"):
        model.predict_set(X_test, partition=g_test + 5)
    with pytest.raises(ValueError, match="two ways of grouping"):
        CrossConformalClassifier(GaussianNB(), class_conditional=True).fit_conformalize(
            X, y, partition=g
        )
