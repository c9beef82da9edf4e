"""One conformance suite over every network method of ``BayesianRegressor`` (both likelihoods)
and ``BayesianClassifier``: predictive shapes, determinism under ``random_state``, a save/load
round trip that predicts identically, and ``diagnostics()``.

Tiny settings throughout (this checks the contract, not the statistics); each configuration is
fitted once per module.
"""

import copy
import json
import warnings

import numpy as np
import optax
import pytest
from sklearn.base import clone

import posterax as px
from flat_settings import flat_estimator
from posterax.methods import method_key

OPTIMISATION = ("map", "vi", "vi_lowrank", "mc_dropout", "ensemble", "swag", "laplace", "ivon")
MCMC = ("nuts", "nuts_last_layer", "mala", "sgld", "sghmc", "csgmcmc")
METHODS = OPTIMISATION + MCMC
SETTINGS = {
    "hidden": (8,),
    "num_epochs": 30,
    "num_samples": 50,
    "num_warmup": 50,
    "n_members": 3,
    "num_cycles": 2,
    "progress_bar": False,
    "random_state": 0,
}
N_DRAWS = {"map": 1, "ensemble": 3}  # the others: num_samples draws
# Heteroscedastic VI / dropout share all code paths but the head with the configurations above:
# they run with the slow tests to keep the default run short.
_HETERO_IN_CI = ("map", "ensemble", "swag", "laplace")
# Variants whose code paths other configurations already cover run with the slow tests.
_SLOW = {
    ("regressor", "homoscedastic", "vi_lowrank"),
    ("classifier", None, "vi_lowrank"),
    ("regressor", "homoscedastic", "mala"),
    ("classifier", None, "sgld"),
    ("classifier", None, "csgmcmc"),
    ("regressor", "homoscedastic", "nuts_last_layer"),  # a MAP and a sampler per fit
    ("classifier", None, "nuts_last_layer"),
    ("classifier", None, "ivon"),  # IVON's own paths: tests/inference/test_ivon.py
}


def _param(config):
    return pytest.param(config, marks=pytest.mark.slow) if config in _SLOW else config


CONFIGS = (
    [_param(("regressor", "homoscedastic", m)) for m in METHODS]
    + [
        pytest.param(
            ("regressor", "heteroscedastic", m),
            marks=() if m in _HETERO_IN_CI else pytest.mark.slow,
        )
        for m in OPTIMISATION
    ]
    + [_param(("classifier", None, m)) for m in METHODS]
)


def _regression_data():
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, (80, 1))
    return X, np.sin(X[:, 0]) + 0.2 * rng.normal(size=80)


def _blob_data():
    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    X = np.concatenate([rng.normal(c, 0.7, (30, 2)) for c in centres])
    return X, np.repeat(np.array(["ant", "bee", "cat"]), 30)  # string labels on purpose


def _fit(est, X, y):
    with warnings.catch_warnings():
        # NUTS with 50 + 50 draws is flagged as not converged, as it should be.
        warnings.simplefilter("ignore", UserWarning)
        return est.fit(X, y)


@pytest.fixture(scope="module", params=CONFIGS, ids=lambda c: "-".join(filter(None, c)))
def fitted(request):
    kind, likelihood, method = request.param
    if kind == "regressor":
        X, y = _regression_data()
        est = flat_estimator(px.BayesianRegressor, method=method, likelihood=likelihood, **SETTINGS)
    else:
        X, y = _blob_data()
        est = flat_estimator(px.BayesianClassifier, method=method, **SETTINGS)
    return _fit(est, X, y), X, y


def _predictions(est, X):
    """Everything the estimator predicts at ``X`` (default keys from ``random_state``)."""
    samples = est.predict_samples(X)
    if isinstance(est, px.BayesianClassifier):
        return {"predict": est.predict(X), "proba": est.predict_proba(X), "logits": samples.logits}
    mean, std = est.predict(X, return_std=True)
    return {
        "predict": mean,
        "std": std,
        "interval": np.stack(est.predict_interval(X)),
        "mean": samples.mean,
        "scale": samples.scale,
    }


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]), err_msg=key)


def test_predictive_shapes(fitted):
    est, X, _ = fitted
    n, draws = len(X), N_DRAWS.get(method_key(est.method), SETTINGS["num_samples"])
    pred = _predictions(est, X)
    assert pred["predict"].shape == (n,)
    if isinstance(est, px.BayesianClassifier):
        assert set(pred["predict"]) <= set(est.classes_)
        assert pred["proba"].shape == (n, 3)
        np.testing.assert_allclose(pred["proba"].sum(axis=1), 1.0, rtol=1e-6)
        assert pred["logits"].shape == (draws, n, 3)
        return
    assert np.all(np.isfinite(pred["predict"]))
    assert pred["interval"].shape == (2, n) and np.all(pred["interval"][0] <= pred["interval"][1])
    assert pred["mean"].shape == pred["scale"].shape == (draws, n)
    assert np.all(pred["scale"] > 0)
    assert pred["std"].shape == (n,) and np.all(pred["std"] > 0)
    assert (est.sigma_ is None) == (est.likelihood == "heteroscedastic")


def test_random_state_decides_everything(fitted):
    est, X, y = fitted
    twin = _fit(clone(est), X, y)
    _assert_same(_predictions(twin, X), _predictions(est, X))
    other = _fit(clone(est).set_params(random_state=1), X, y)
    key = "proba" if isinstance(est, px.BayesianClassifier) else "mean"
    assert not np.array_equal(_predictions(other, X)[key], _predictions(est, X)[key])


def test_save_load_predicts_identically(fitted, tmp_path):
    est, X, _ = fitted
    est.save(tmp_path / "model")
    loaded = px.load(tmp_path / "model")
    assert type(loaded) is type(est) and loaded.get_params() == est.get_params()
    _assert_same(_predictions(loaded, X), _predictions(est, X))
    assert loaded.diagnostics().keys() == est.diagnostics().keys()
    meta = json.loads((tmp_path / "model" / "model.json").read_text())
    assert meta["format_version"] == 1 and meta["estimator"] == type(est).__name__
    with np.load(tmp_path / "model" / "arrays.npz", allow_pickle=False) as data:
        assert all(data[k].dtype != object for k in data.files)
    assert not list(tmp_path.glob(".model*")), "staging directory left behind"


def test_diagnostics_is_a_dict(fitted):
    est, _, _ = fitted
    diag = est.diagnostics()
    assert isinstance(diag, dict)
    if method_key(est.method) in MCMC:
        assert {"function_space", "weight_space", "divergences"} <= set(diag)
    else:
        assert diag["training"]["epochs_run"] == SETTINGS["num_epochs"]
        assert np.isfinite(diag["final_loss"])


@pytest.fixture(scope="module")
def small_map():
    X, y = _regression_data()
    return _fit(flat_estimator(px.BayesianRegressor, method="map", **SETTINGS), X, y), X


def test_custom_optimizer_is_saved_as_none(small_map, tmp_path):
    est, X = small_map
    custom = copy.copy(est)  # as if it had been fitted with a custom optimizer
    training = px.methods.Training(optimizer=optax.sgd(1e-2), num_epochs=30)
    custom.method = px.methods.MAP(training=training)
    with pytest.warns(UserWarning, match="custom optax optimizer cannot be saved"):
        custom.save(tmp_path / "m")
    loaded = px.load(tmp_path / "m")
    assert loaded.method == px.methods.MAP(training=px.methods.Training(num_epochs=30))
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))


def test_missing_array_is_a_clear_error(small_map, tmp_path):
    est, _ = small_map
    est.save(tmp_path / "m")
    path = tmp_path / "m" / "arrays.npz"
    with np.load(path, allow_pickle=False) as data:
        kept = {k: data[k] for k in data.files if k != "posterior/draws/net/1/w"}
    np.savez(path, **kept)
    with pytest.raises(ValueError, match="missing or has malformed entries"):
        px.load(tmp_path / "m")
