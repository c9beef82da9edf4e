"""Cross-conformal around posterax networks: the K fold networks train in one compiled program
(BayesianRegressor._fit_folds), and each fold's network never sees its held-out fold."""

import numpy as np
import pytest
from sklearn.model_selection import KFold

import posterax as px
from posterax.conformal import CrossConformalRegressor, JackknifeAfterBootstrapRegressor


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-3, 3, size=(n, 1))
    return X, np.sin(X[:, 0]) * X[:, 0] + 0.3 * rng.normal(size=n)


def _regressor(method=None):
    # Without early stopping: folds with held-out rows of their own are fitted one by one.
    training = px.methods.Training(num_epochs=150, validation_fraction=None)
    method = method or px.methods.MAP(training=training)
    return px.BayesianRegressor(method=method, network=(16,), random_state=0, progress_bar=False)


def test_fold_networks_train_together_and_never_see_their_fold():
    X, y = _data(203)
    X_test, y_test = _data(500, seed=1)
    folds = KFold(5, shuffle=True, random_state=0)
    model = CrossConformalRegressor(_regressor(), 0.9, cv=folds).fit_conformalize(X, y)
    # one program: every fold network reports the same share of one training run
    assert len({fit.fit_seconds_ for fit in model.estimators_}) == 1
    lower, upper = model.predict_interval(X_test)
    assert 0.8 < np.mean((lower <= y_test) & (y_test <= upper)) < 0.99
    # Corrupt the targets of fold 0's held-out points: fold 0's network (which never saw
    # them) predicts exactly as before; the others, which trained on them, do not.
    held_out = next(iter(folds.split(X)))[1]
    y_bad = y.copy()
    y_bad[held_out] += 50.0
    again = CrossConformalRegressor(_regressor(), 0.9, cv=folds).fit_conformalize(X, y_bad)
    before = [np.asarray(m.predict(X_test)) for m in model.estimators_]
    after = [np.asarray(m.predict(X_test)) for m in again.estimators_]
    np.testing.assert_array_equal(before[0], after[0])
    for k in range(1, 5):
        assert np.max(np.abs(before[k] - after[k])) > 0.5, k


def test_fold_networks_fit_as_well_as_one_at_a_time():
    """Each fold network's held-out error is within 15% of a network fitted alone on the same
    rows (different random starts: the two differ by training noise only)."""
    X, y = _data(203, seed=2)
    folds = list(KFold(5, shuffle=True, random_state=0).split(X))
    together = _regressor()._fit_folds(X, y, [train for train, _ in folds])
    for fit, (train, test) in zip(together, folds, strict=True):
        alone = _regressor().fit(X[train], y[train])
        rmse_together = np.sqrt(np.mean((fit.predict(X[test]) - y[test]) ** 2))
        rmse_alone = np.sqrt(np.mean((alone.predict(X[test]) - y[test]) ** 2))
        assert rmse_together < 1.15 * rmse_alone, (rmse_together, rmse_alone)


def test_methods_without_a_shared_program_fit_one_by_one():
    assert _regressor(px.methods.Laplace())._fit_folds(*_data(30), [np.arange(20)]) is None
    # Early stopping (the default from 100 rows on) holds rows out per fold: one by one.
    default = px.BayesianRegressor(network=(16,), progress_bar=False)
    assert default._fit_folds(*_data(203), [np.arange(150), np.arange(50, 200)]) is None


@pytest.mark.slow
def test_ensembles_on_bootstrap_samples_train_together():
    X, y = _data(150, seed=3)
    X_test, y_test = _data(500, seed=4)
    method = px.methods.Ensemble(num_members=2, training=px.methods.Training(num_epochs=100))
    model = JackknifeAfterBootstrapRegressor(_regressor(method), 0.9, resampling=6, random_state=0)
    model.fit_conformalize(X, y)
    assert len({fit.fit_seconds_ for fit in model.estimators_}) == 1
    assert all(fit.posterior_.num_draws == 2 for fit in model.estimators_)
    lower, upper = model.predict_interval(X_test)
    assert 0.8 < np.mean((lower <= y_test) & (y_test <= upper)) < 0.99


def test_sets_too_large_to_stack_fit_one_by_one(monkeypatch):
    from posterax.estimators import neural

    monkeypatch.setattr(neural, "_MAX_STACKED_ENTRIES", 39)  # 2 x 20 x 1 = 40
    assert _regressor()._fit_folds(*_data(30), [np.arange(20), np.arange(10, 30)]) is None
