"""px.Tuned: a budgeted optuna search on a validation split of the training rows, then a refit.

The fits share one small MAP configuration (a 16-unit MLP, fixed epochs) and data of fixed
sizes, so the compiled training programs are reused from test to test."""

import math
import os
from typing import ClassVar

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution
from sklearn.base import clone, is_classifier

import posterax as px
import posterax.compilation

N_TRAIN = 160
FRACTION = 0.2


def _map(**kwargs):
    training = px.methods.Training(num_epochs=150, learning_rate=1e-2, batch_size=32)
    return px.BayesianRegressor(
        px.methods.MAP(training), network=(16,), progress_bar=False, random_state=0, **kwargs
    )


def _noise_grows(n, seed):
    """y = x + noise whose sd grows from 0.02 at x = -2 to 1 at x = 2: a heteroscedastic
    likelihood fits it far better than one noise level."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, (n, 1))
    sd = 0.02 + 0.98 * ((X[:, 0] + 2) / 4) ** 2
    return X, X[:, 0] + sd * rng.normal(size=n)


@pytest.fixture(scope="module")
def hetero():
    return _noise_grows(N_TRAIN, 0), _noise_grows(400, 1)


LIKELIHOOD_SPACE = {"likelihood": ["homoscedastic", "heteroscedastic"]}


class SpyRegressor(px.BayesianRegressor):
    """Records the rows (by their x values) every fit is given."""

    calls: ClassVar[list] = []

    def fit(self, X, y, resume=False):
        SpyRegressor.calls.append((np.asarray(X).copy(), np.asarray(y).copy()))
        return super().fit(X, y, resume)


def _spy(**kwargs):
    return SpyRegressor(**_map(**kwargs).get_params(deep=False))


def _nll(est, X, y):
    return float(px.metrics.mixture_nll(y, est.predict_samples(X)))


def test_the_search_finds_the_heteroscedastic_likelihood_and_beats_the_default(hetero):
    (X, y), (X_test, y_test) = hetero
    default = _map().fit(X, y)
    tuned = px.Tuned(
        _map(), n_trials=3, space=LIKELIHOOD_SPACE, validation_fraction=FRACTION, random_state=0
    ).fit(X, y)
    assert tuned.trials_["params"][0] == {}  # the estimator as given is the first trial
    assert tuned.best_params_ == {"likelihood": "heteroscedastic"}
    assert tuned.best_estimator_.likelihood == "heteroscedastic"
    assert tuned.best_loss_ < tuned.trials_["loss"][0] - 0.3  # validation NLL
    # On fresh data from the same law the tuned model's predictive is far better.
    assert _nll(tuned, X_test, y_test) < _nll(default, X_test, y_test) - 0.3


def test_the_budget_in_trials_is_exact_and_validation_rows_come_from_training_rows(hetero):
    (X, y), _ = hetero
    SpyRegressor.calls.clear()
    tuned = px.Tuned(
        _spy(), n_trials=3, space=LIKELIHOOD_SPACE, validation_fraction=FRACTION, random_state=0
    ).fit(X, y)
    assert tuned.n_trials_ == 3 and len(tuned.trials_["loss"]) == 3
    assert len(tuned.study_.trials) == 3
    assert len(SpyRegressor.calls) == 3 + 1  # three trials, one refit
    n_val = math.ceil(FRACTION * N_TRAIN)
    val = set(X[tuned.splits_[0][1], 0])
    assert len(val) == n_val and val <= set(X[:, 0])
    for X_fit, y_fit in SpyRegressor.calls[:3]:
        assert X_fit.shape[0] == N_TRAIN - n_val
        assert not set(X_fit[:, 0]) & val  # no trial trains on a validation row
        assert set(X_fit[:, 0]) | val == set(X[:, 0])
        assert (
            dict(zip(X_fit[:, 0], y_fit, strict=True)).items()
            <= dict(zip(X[:, 0], y, strict=True)).items()
        )
    X_refit, y_refit = SpyRegressor.calls[3]
    np.testing.assert_array_equal(X_refit, X)  # the refit uses every training row
    np.testing.assert_array_equal(y_refit, y)
    assert type(tuned.best_estimator_) is SpyRegressor


def test_cross_validation_scores_every_training_row_once_per_trial(hetero):
    (X, y), _ = hetero
    SpyRegressor.calls.clear()
    tuned = px.Tuned(_spy(), n_trials=2, space=LIKELIHOOD_SPACE, cv=5, random_state=0).fit(X, y)
    assert len(SpyRegressor.calls) == 2 * 5 + 1
    folds = [val for _, val in tuned.splits_]
    np.testing.assert_array_equal(np.sort(np.concatenate(folds)), np.arange(N_TRAIN))
    for (X_fit, _), val in zip(SpyRegressor.calls[:5], folds, strict=True):
        assert X_fit.shape[0] == N_TRAIN - len(val) == 128  # the holdout tests' size: reused
        assert not set(X_fit[:, 0]) & set(X[val, 0])
    np.testing.assert_array_equal(SpyRegressor.calls[-1][0], X)


def test_the_same_random_state_gives_the_same_search(hetero):
    (X, y), _ = hetero
    space = {"likelihood": ["homoscedastic", "heteroscedastic"]}
    runs = [
        px.Tuned(_map(), n_trials=3, space=space, validation_fraction=FRACTION, random_state=3).fit(
            X, y
        )
        for _ in range(2)
    ]
    assert runs[0].trials_["search_params"] == runs[1].trials_["search_params"]
    assert runs[0].trials_["loss"] == runs[1].trials_["loss"]
    assert runs[0].best_params_ == runs[1].best_params_
    np.testing.assert_array_equal(runs[0].splits_[0][1], runs[1].splits_[0][1])


def test_the_seconds_budget_stops_the_search(hetero):
    (X, y), _ = hetero
    timeout = 1.5
    tuned = px.Tuned(
        _map(),
        n_trials=None,
        timeout=timeout,
        space=LIKELIHOOD_SPACE,
        validation_fraction=FRACTION,
        random_state=0,
    ).fit(X, y)
    # optuna starts no trial after the timeout; the one running then finishes.
    assert tuned.search_seconds_ <= timeout + max(tuned.trials_["seconds"]) + 0.5
    assert tuned.search_seconds_ >= timeout
    assert tuned.n_trials_ >= 3  # compiled programs reused: trials are quick


def test_delegation_to_the_refitted_best(hetero):
    (X, y), (X_test, _) = hetero
    tuned = px.Tuned(
        _map(), n_trials=2, space=LIKELIHOOD_SPACE, validation_fraction=FRACTION, random_state=0
    ).fit(X, y)
    best = tuned.best_estimator_
    np.testing.assert_allclose(tuned.predict(X_test), best.predict(X_test))
    np.testing.assert_allclose(
        tuned.predict_interval(X_test, level=0.9), best.predict_interval(X_test, level=0.9)
    )
    np.testing.assert_allclose(
        tuned.predict_samples(X_test).mean, best.predict_samples(X_test).mean
    )
    assert tuned.score(X_test, X_test[:, 0]) == pytest.approx(best.score(X_test, X_test[:, 0]))
    assert tuned.n_features_in_ == 1
    assert not hasattr(tuned, "predict_proba")
    assert clone(tuned).get_params()["estimator__method__training__num_epochs"] == 150


class MethodSpy(px.BayesianRegressor):
    """Records the method object every fit is given."""

    methods: ClassVar[list] = []
    likelihoods: ClassVar[list] = []

    def fit(self, X, y, resume=False):
        MethodSpy.methods.append(self.method)
        MethodSpy.likelihoods.append(self.likelihood)
        return super().fit(X, y, resume)


def test_a_stand_in_method_fits_the_trials_and_the_own_method_the_refit(hetero):
    (X, y), (X_test, y_test) = hetero
    training = _map().method.training
    ensemble = MethodSpy(
        **{**_map().get_params(deep=False), "method": px.methods.Ensemble(2, training)}
    )
    MethodSpy.methods.clear()
    MethodSpy.likelihoods.clear()
    tuned = px.Tuned(
        ensemble.set_params(likelihood="homoscedastic"),
        n_trials=3,
        space=LIKELIHOOD_SPACE,
        validation_fraction=FRACTION,
        search_method="map",
        random_state=0,
    ).fit(X, y)
    # Three trials of the stand-in, with the ensemble's training settings; one refit of the
    # ensemble itself, with the settings the stand-in found.
    assert MethodSpy.methods[:3] == [px.methods.MAP(training)] * 3
    assert MethodSpy.methods[3] == px.methods.Ensemble(2, training)
    assert len(MethodSpy.methods) == 4
    assert tuned.best_params_ == {"likelihood": "heteroscedastic"}
    assert tuned.best_estimator_.posterior_.draws is not None  # two members
    assert _nll(tuned, X_test, y_test) < _nll(_map().fit(X, y), X_test, y_test) - 0.3
    # likelihood="auto" means the ensemble's own (heteroscedastic) in the stand-in's trials too.
    MethodSpy.likelihoods.clear()
    px.Tuned(ensemble.set_params(likelihood="auto"), n_trials=1, search_method="map").fit(X, y)
    assert MethodSpy.likelihoods == ["heteroscedastic", "auto"]  # the trial, then the refit


@pytest.mark.parametrize(
    ("estimator", "kwargs", "match"),
    [
        (
            lambda: _spy().set_params(method=px.methods.MCDropout()),
            {"search_method": "map"},
            r"'search_method'.*set 'method__dropout_rate'.*MAP does not have",
        ),
        (lambda: _spy(), {"search_method": "mapp"}, r"'search_method'.*method name.*'mapp'"),
        (
            lambda: px.BayesianLinearRegression(),
            {"search_method": "map", "space": {"alpha": [1.0]}},
            r"'search_method'.*has none",
        ),
    ],
)
def test_a_stand_in_that_cannot_take_the_search_is_refused_before_any_fit(estimator, kwargs, match):
    X, y = np.zeros((20, 1)), np.zeros(20)
    SpyRegressor.calls.clear()
    with pytest.raises(ValueError, match=match):
        px.Tuned(estimator(), n_trials=2, **kwargs).fit(X, y)
    assert SpyRegressor.calls == []


def _memory_maps():
    with open("/proc/self/maps") as maps:
        return sum(1 for _ in maps)


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="Linux's /proc only")
def test_a_long_search_does_not_pile_up_compiled_programs(hetero, monkeypatch):
    """Every trial of a new width compiles new programs; once the process's memory maps are
    crowded (here: always) they are freed after each trial, so the maps do not grow with the
    number of trials (searches crashed XLA after about 80 trials before)."""
    monkeypatch.setattr(posterax.compilation, "MAX_MAPS_SHARE", 0.0)
    (X, y), (X_test, _) = hetero
    space = {"network": [px.networks.MLP((w,), "tanh") for w in (5, 6, 7, 9, 11, 13)]}

    def search(n_trials):
        before = _memory_maps()
        tuned = px.Tuned(_map(), n_trials=n_trials, space=space, random_state=0).fit(X, y)
        tuned.predict(X_test)  # the refitted best still works after the caches are cleared
        return _memory_maps() - before

    search(1)  # the programs every fit shares (standardising, scoring) are compiled once
    assert search(6) < search(1) + 400


@pytest.mark.slow
def test_a_prior_so_narrow_the_network_underfits_is_escaped():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (N_TRAIN, 1))
    y = np.sin(2 * X[:, 0]) + 0.1 * rng.normal(size=N_TRAIN)
    X_test = rng.uniform(-2, 2, (400, 1))
    y_test = np.sin(2 * X_test[:, 0]) + 0.1 * rng.normal(size=400)
    narrow = _map(prior_scale=1e-3)  # every weight pinned near 0: a constant prediction
    default = clone(narrow).fit(X, y)
    tuned = px.Tuned(
        narrow,
        n_trials=6,
        space={"prior_scale": FloatDistribution(1e-2, 10.0, log=True)},
        validation_fraction=FRACTION,
        random_state=0,
    ).fit(X, y)
    assert tuned.best_params_["prior_scale"] > 0.1
    assert _nll(default, X_test, y_test) > 0.8  # the sd of sin(2x) is ~0.7
    assert _nll(tuned, X_test, y_test) < _nll(default, X_test, y_test) - 1.0


@pytest.mark.slow
def test_a_classifier_is_scored_by_log_loss_on_a_stratified_split():
    rng = np.random.default_rng(0)
    counts = (90, 45, 25)
    X = np.concatenate([rng.normal(3 * k, 1.0, (n, 2)) for k, n in enumerate(counts)])
    labels = np.repeat(np.array(["a", "b", "c"]), counts)
    clf = px.BayesianClassifier(
        px.methods.MAP(px.methods.Training(num_epochs=100, learning_rate=1e-2)),
        network=(16,),
        progress_bar=False,
        random_state=0,
    )
    tuned = px.Tuned(
        clf, n_trials=2, space={"prior_scale": [0.1, 1.0]}, validation_fraction=0.2
    ).fit(X, labels)
    val = labels[tuned.splits_[0][1]]
    assert [int(np.sum(val == c)) for c in "abc"] == [18, 9, 5]  # stratified: 20% of each
    assert is_classifier(tuned)
    np.testing.assert_array_equal(tuned.classes_, ["a", "b", "c"])
    assert tuned.predict_proba(X).shape == (len(X), 3)
    first = tuned.trials_["loss"][0]
    refit = clone(clf).fit(
        np.delete(X, tuned.splits_[0][1], 0), np.delete(labels, tuned.splits_[0][1])
    )
    expected = px.tuning.validation_nll(refit, X[tuned.splits_[0][1]], val)
    assert first == pytest.approx(expected, rel=1e-5)
    assert 0 < first < math.log(3)


def _names(estimator):
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    return set(px.tuning.default_space(estimator)(trial))


def test_the_default_space_follows_the_method():
    assert _names(px.BayesianRegressor("ensemble")) == {
        "method__training__learning_rate",
        "method__training__num_epochs",
        "prior_scale",
        "network",
        "likelihood",
    }  # members stay fixed
    assert "method__dropout_rate" in _names(px.BayesianRegressor("mc_dropout"))
    assert _names(px.BayesianRegressor("nuts")) == {"prior_scale", "network"}
    assert "likelihood" not in _names(px.BayesianClassifier("map"))
    # One network's heteroscedastic sd collapses off the validation rows: not searched.
    assert "likelihood" not in _names(px.BayesianRegressor("map"))
    assert "likelihood" in _names(px.BayesianRegressor("vi"))
    functional = px.networks.Functional(lambda p, x: x @ p["w"], {"w": np.zeros((2, 1))})
    assert "network" not in _names(px.BayesianRegressor("map", network=functional))
    trial = optuna.trial.FixedTrial(
        {"learning_rate": 1e-3, "num_epochs": 50, "prior_scale": 1.0, "width": 32, "depth": 3}
    )
    params = px.tuning.default_space(
        px.BayesianClassifier("map", network=px.networks.MLP((4,), "tanh"))
    )(trial)
    assert params["network"] == px.networks.MLP((32, 32, 32), "tanh")  # activation kept


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_trials": None}, r"needs a budget.*n_trials=20"),
        ({"n_trials": -1}, r"'n_trials'.*int >= 1 or None. Got -1"),
        ({"n_trials": 2.5}, r"'n_trials'.*Got 2.5"),
        ({"timeout": 0}, r"'timeout'.*None or a finite float > 0. Got 0"),
        ({"validation_fraction": 1.0}, r"'validation_fraction'.*\(0, 1\).*Got 1.0"),
        ({"cv": 1}, r"'cv'.*int >= 2.*Got 1. Pass e.g. cv=5"),
        (
            {"space": {"method__training__lr": [1e-3]}},
            r"names 'method__training__lr'.*'lr' is not a parameter of method__training "
            r"\(Training\).*learning_rate",
        ),
        ({"space": {"prior_scale": 3.0}}, r"optuna distribution.*Got 'prior_scale': 3.0"),
        ({"space": {}}, r"'space'.*non-empty dict"),
    ],
)
def test_bad_settings_are_refused_before_any_fit(kwargs, match):
    X, y = np.zeros((20, 1)), np.zeros(20)
    SpyRegressor.calls.clear()
    with pytest.raises(ValueError, match=match):
        px.Tuned(_spy(), **{"n_trials": 2, **kwargs}).fit(X, y)
    assert SpyRegressor.calls == []


def test_a_callable_space_is_checked_when_it_names_a_missing_parameter(hetero):
    (X, y), _ = hetero
    SpyRegressor.calls.clear()
    with pytest.raises(ValueError, match=r"names 'widthh'.*'widthh' is not a parameter"):
        px.Tuned(
            _spy(),
            n_trials=2,
            space=lambda t: {"widthh": t.suggest_int("w", 1, 3)},
            include_default=False,
        ).fit(X, y)
    assert SpyRegressor.calls == []  # refused before the first fit
    with pytest.raises(ValueError, match=r"no default for BayesianLinearRegression"):
        px.Tuned(px.BayesianLinearRegression(), n_trials=2).fit(X, y)
