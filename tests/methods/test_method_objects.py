"""Methods as values: a string means its class's defaults, objects follow scikit-learn's
get_params / set_params (clone, nested set_params, GridSearchCV), save and load, and settings
flat settings (the command line's, old saved models') become method objects."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

import posterax as px
from posterax.methods import method_from_settings


def _wave(n=80, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-3, 3, (n, 1))
    return X, np.sin(X[:, 0]) + 0.2 * rng.normal(size=n)


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short chains are flagged as not converged
        return est.fit(X, y)


SHARED = {"network": (8,), "progress_bar": False, "random_state": 0}


@pytest.mark.parametrize(
    ("name", "flat", "method"),
    [
        (
            "ensemble",
            {"n_members": 3, "num_epochs": 20, "learning_rate": 1e-2},
            px.methods.Ensemble(
                num_members=3, training=px.methods.Training(num_epochs=20, learning_rate=1e-2)
            ),
        ),
        (
            "nuts",
            {"num_warmup": 60, "num_samples": 40, "num_chains": 2},
            px.methods.NUTS(num_warmup=60, num_samples=40, num_chains=2),
        ),
        (
            "laplace",
            {
                "hessian_structure": "full",
                "subset": "last_layer",
                "num_epochs": 20,
                "num_samples": 30,
            },
            px.methods.Laplace(
                structure="full",
                subset="last_layer",
                num_samples=30,
                training=px.methods.Training(num_epochs=20),
            ),
        ),
        (
            "vi_lowrank",
            {"rank": 3, "num_epochs": 10, "num_samples": 30},
            px.methods.VI(
                family="lowrank",
                rank=3,
                num_samples=30,
                training=px.methods.Training(num_epochs=10),
            ),
        ),
        (
            "csgmcmc",
            {"num_cycles": 2, "num_warmup": 40, "num_samples": 40},
            px.methods.CyclicalSGMCMC(num_cycles=2, num_warmup=40, num_samples=40),
        ),
    ],
    ids=["ensemble", "nuts", "laplace", "vi_lowrank", "csgmcmc"],
)
def test_flat_settings_make_the_method_object(name, flat, method):
    """method_from_settings (the command line, benchmarks, old saved models) sorts flat
    settings, in the method's or the old estimator's spelling, into the object and its
    Training."""
    made = method_from_settings(name, flat)
    assert type(made) is type(method)
    assert made.get_params() == {
        **method.get_params(),
        **({"training": made.training} if "training" in method.get_params() else {}),
    }


def test_flat_settings_a_method_does_not_have_are_refused_by_name():
    with pytest.raises(ValueError, match=r"px.methods.MAP .* has no setting 'n_members'"):
        method_from_settings("map", {"n_members": 3})
    assert method_from_settings("map", {"n_members": 3}, ignore_unknown=True).training is None


def test_a_string_fits_its_class_defaults():
    """'ensemble' and Ensemble() travel different paths (string resolution vs the object) and
    must give identical posteriors."""
    X, y = _wave()
    string = _fit(px.BayesianRegressor("ensemble", **SHARED), X, y)
    obj = _fit(px.BayesianRegressor(px.methods.Ensemble(), **SHARED), X, y)
    assert string.posterior_.num_draws == 5
    np.testing.assert_array_equal(string.predict(X), obj.predict(X))


def test_methods_follow_get_params_set_params():
    method = px.methods.Laplace(structure="diag", training=px.methods.Training(num_epochs=5))
    params = method.get_params()
    assert params["structure"] == "diag" and params["training__num_epochs"] == 5
    method.set_params(training__num_epochs=7, rank=3)
    assert method.training.num_epochs == 7 and method.rank == 3
    twin = clone(method)
    assert twin is not method and twin.get_params()["training__num_epochs"] == 7
    assert twin == method and hash(twin) == hash(method)  # values: equal settings are equal
    assert twin.set_params(rank=4) != method and px.methods.MAP() != px.methods.SWAG()


def test_clone_nested_set_params_and_grid_search_over_a_method_parameter():
    X, y = _wave()
    est = px.BayesianRegressor(
        method=px.methods.Ensemble(num_members=2, training=px.methods.Training(num_epochs=10)),
        **SHARED,
    )
    twin = clone(est)
    assert twin.method is not est.method and twin.method.num_members == 2
    est.set_params(method__num_members=3, method__training__learning_rate=1e-2)
    assert est.method.num_members == 3 and est.method.training.learning_rate == 1e-2
    assert twin.method.num_members == 2  # the clone is independent
    search = GridSearchCV(est, {"method__num_members": [1, 2]}, cv=2).fit(X, y)
    assert search.best_params_["method__num_members"] in (1, 2)
    assert search.best_estimator_.posterior_.num_draws == search.best_params_["method__num_members"]


def test_a_method_object_saves_and_loads(tmp_path):
    X, y = _wave()
    method = px.methods.SWAG(
        num_collections=4, num_samples=20, training=px.methods.Training(num_epochs=10)
    )
    reg = _fit(px.BayesianRegressor(method=method, **SHARED), X, y)
    reg.save(tmp_path / "model")
    loaded = px.load(tmp_path / "model")
    assert isinstance(loaded.method, px.methods.SWAG)

    def plain(params):  # nested objects compare by identity: compare their parameters
        return {k: v for k, v in params.items() if k != "training"}

    assert plain(loaded.method.get_params()) == plain(method.get_params())
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))


def test_the_estimators_take_no_per_method_settings():
    with pytest.raises(TypeError, match="n_members"):
        px.BayesianRegressor(method="ensemble", n_members=3)
    with pytest.raises(TypeError, match="num_warmup"):
        px.BayesianLinearRegression(method="nuts", num_warmup=3)
    assert len(px.BayesianRegressor().get_params()) <= 12


def test_bad_method_values_are_refused_by_name():
    X, y = _wave()
    with pytest.raises(ValueError, match=r"'method' parameter .* or a method object .* Got 'hmc'"):
        px.BayesianRegressor(method="hmc").fit(X, y)
    with pytest.raises(ValueError, match=r"'family' parameter of px.methods.VI .* Got 'full'"):
        px.BayesianRegressor(method=px.methods.VI(family="full")).fit(X, y)
    with pytest.raises(ValueError, match=r"'training' parameter of px.methods.MAP .* Got 5"):
        px.BayesianRegressor(method=px.methods.MAP(training=5), **SHARED).fit(X, y)


def test_linear_regression_takes_nuts_and_map_objects(seed_data):
    X, y, _ = seed_data
    string = px.BayesianLinearRegression(method="nuts", random_state=1)
    obj = px.BayesianLinearRegression(method=px.methods.NUTS(), random_state=1)
    _fit(string, X, y)
    _fit(obj, X, y)
    np.testing.assert_array_equal(obj.coef_, string.coef_)
    assert obj.posterior_.chain_shape == (1, 1000)  # NUTS()'s defaults
    map_obj = px.BayesianLinearRegression(method=px.methods.MAP()).fit(X, y)
    map_str = px.BayesianLinearRegression(method="map").fit(X, y)
    np.testing.assert_array_equal(map_obj.coef_, map_str.coef_)
    with pytest.raises(
        ValueError, match=r"'method' parameter of BayesianLinearRegression .* Ensemble"
    ):
        px.BayesianLinearRegression(method=px.methods.Ensemble()).fit(X, y)


def test_errors_about_a_method_objects_settings_use_its_own_names():
    X, y = _wave()
    with pytest.raises(ValueError, match=r"'num_members' parameter of px.methods.Ensemble"):
        px.BayesianRegressor(method=px.methods.Ensemble(num_members=0), **SHARED).fit(X, y)
    with pytest.raises(ValueError, match=r"'structure' parameter of px.methods.Laplace"):
        px.BayesianRegressor(method=px.methods.Laplace(structure="block"), **SHARED).fit(X, y)
    training = px.methods.Training(num_epochs=0)
    with pytest.raises(ValueError, match=r"'num_epochs' parameter of px.methods.Training"):
        px.BayesianRegressor(method=px.methods.MAP(training=training), **SHARED).fit(X, y)


def test_nested_training_parameters_start_from_the_defaults():
    method = px.methods.MAP().set_params(training__num_epochs=3)
    assert method.training.num_epochs == 3 and method.training.batch_size == 32
    est = px.BayesianRegressor(method="map")
    with pytest.raises(ValueError, match=r"'method' parameter .* string 'map': nested"):
        est.set_params(method__training__num_epochs=3)
