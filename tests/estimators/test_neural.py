"""Bayesian neural networks with NUTS: coverage, widening bands, Iris accuracy, diagnostics,
compile-once reuse and bad input."""

import arviz as az
import jax
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

import posterax as px
from posterax.inference.nuts import TRACE_COUNTS


def seed_bnn_data(n, seed):
    """The seed BNN data: y = sin(x)·x + 0.3·eps, x ~ U(-3, 3)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-3, 3, (n, 1))
    return X, np.sin(X[:, 0]) * X[:, 0] + 0.3 * rng.normal(size=n)


@pytest.fixture(scope="module")
def bnn():
    X, y = seed_bnn_data(100, 0)
    reg = px.BayesianRegressor(
        px.methods.NUTS(num_warmup=500, num_samples=1000), network=(5,), random_state=0
    )
    return reg.fit(X, y)


@pytest.fixture(scope="module")
def iris_fit():
    X, y = load_iris(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=30, stratify=y, random_state=42)
    clf = px.BayesianClassifier(
        px.methods.NUTS(num_warmup=500, num_samples=500), network=(16,), random_state=42
    )
    return clf.fit(Xtr, ytr), Xte, yte


def test_bnn_band_covers_held_out_points(bnn):
    X_test, y_test = seed_bnn_data(300, 1)
    lower, upper = bnn.predict_interval(X_test, level=0.95)
    assert np.mean((lower <= y_test) & (y_test <= upper)) >= 0.90


def test_bnn_band_widens_outside_training_range(bnn):
    inside = np.linspace(-2.5, 2.5, 21)[:, None]
    outside = np.concatenate([np.linspace(-6, -4.5, 5), np.linspace(4.5, 6, 5)])[:, None]
    width_in = np.subtract(*bnn.predict_interval(inside, kind="mean")[::-1]).mean()
    width_out = np.subtract(*bnn.predict_interval(outside, kind="mean")[::-1]).mean()
    assert width_out > 1.5 * width_in


def test_bnn_function_space_mixes_even_when_weights_do_not(bnn):
    diag = bnn.diagnostics()
    fs = diag["function_space"]
    assert fs["max_r_hat"] < 1.05 and fs["min_ess_bulk"] > 100
    assert {"max_r_hat", "min_ess_bulk", "min_ess_tail"} <= set(diag["weight_space"])
    assert {"net[0].w[0,0]", "net[1].b[0]", "sigma"} <= set(diag["parameters"])


def test_iris_accuracy(iris_fit):
    clf, Xte, yte = iris_fit
    assert np.mean(clf.predict(Xte) == yte) >= 0.93
    proba = clf.predict_proba(Xte)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    nll = -np.mean(np.log(proba[np.arange(len(yte)), yte]))
    assert nll < 0.3
    logits = clf.predict_samples(Xte)
    assert logits.logits.shape == (500, 30, 3)


def test_string_labels_round_trip():
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf2 = px.BayesianClassifier(
        px.methods.NUTS(num_warmup=100, num_samples=100), network=(4,), random_state=0
    )
    with pytest.warns(UserWarning):  # 100 draws: ESS < 100 is flagged, as it should be
        clf2.fit(X, names)
    assert list(clf2.classes_) == ["setosa", "versicolor", "virginica"]
    assert set(clf2.predict(X[:20])) <= set(names)


def test_inference_data_groups_and_netcdf_round_trip(bnn, tmp_path):
    X, y = seed_bnn_data(100, 0)
    idata = bnn.to_inference_data(X, y)
    assert set(idata.groups()) >= {
        "posterior",
        "posterior_predictive",
        "log_likelihood",
        "sample_stats",
        "observed_data",
    }
    assert idata.posterior["net[0].w"].shape == (1, 1000, 1, 5)
    np.testing.assert_allclose(idata.observed_data["obs"], y)
    path = tmp_path / "bnn.nc"
    idata.to_netcdf(str(path))
    back = az.from_netcdf(str(path))
    np.testing.assert_array_equal(back.posterior["sigma"], idata.posterior["sigma"])
    np.testing.assert_array_equal(back.sample_stats["diverging"], idata.sample_stats["diverging"])


def test_compiled_program_is_reused_across_fits_and_seeds():
    X, y = seed_bnn_data(40, 3)
    kw = {"network": (3,), "method": px.methods.NUTS(num_warmup=50, num_samples=50)}
    with pytest.warns(UserWarning):
        px.BayesianRegressor(random_state=0, **kw).fit(X, y)
    traces = TRACE_COUNTS["nuts_program"]
    X2, y2 = seed_bnn_data(40, 4)  # new data, same shape
    with pytest.warns(UserWarning):
        px.BayesianRegressor(random_state=1, **kw).fit(X2, y2)
    assert TRACE_COUNTS["nuts_program"] == traces
    with pytest.warns(UserWarning):  # new shape: one new trace
        px.BayesianRegressor(random_state=1, **kw).fit(X2[:30], y2[:30])
    assert TRACE_COUNTS["nuts_program"] == traces + 1


def test_diagnostics_warn_on_a_bad_run():
    X, y = seed_bnn_data(60, 5)
    with pytest.warns(UserWarning, match="NUTS may not have converged: .*function space"):
        px.BayesianRegressor(
            px.methods.NUTS(num_warmup=10, num_samples=60), network=(5,), random_state=0
        ).fit(X, y)


def test_bring_your_own_apply_fn_matches_estimator_quality():
    import bring_your_own_apply_fn as example  # examples/ is on sys.path via conftest

    out = example.main(num_warmup=300, num_samples=300)
    inside = np.abs(out["grid"][:, 0]) <= 2
    assert np.all(out["upper"] > out["lower"])
    assert np.all(out["upper"][inside] - out["lower"][inside] < 3.0)


def test_bring_your_own_numpyro_model_reuses_compilation():
    import bring_your_own_numpyro_model as example

    before = TRACE_COUNTS["nuts_program"]
    results = example.main(num_warmup=300, num_samples=500)
    assert TRACE_COUNTS["nuts_program"] - before <= 1
    slope = np.asarray(results[1].samples["slope"])
    assert abs(slope.mean() - 2.0) < 0.3


@pytest.mark.parametrize(
    ("kwargs", "y", "error", "match"),
    [
        ({}, np.zeros(10, dtype=int), ValueError, r"at least 2 classes\. Got 1 class"),
        ({}, np.linspace(0, 1, 10), ValueError, r"not whole numbers"),
        (
            {"network": (5, 0)},
            None,
            ValueError,
            r"'hidden' .* tuple of positive ints .* Got \(5, 0\)\.",
        ),
        ({"network": 5}, None, ValueError, r"'network' .* hidden sizes .* type builtins.int"),
        (
            {"method": px.methods.NUTS(num_chains=0)},
            None,
            ValueError,
            r"'num_chains' parameter of px.methods.NUTS .* int >= 1\. Got 0",
        ),
        (
            {"method": "gaussian_process"},
            None,
            ValueError,
            r"'method' .* one of 'nuts', 'nuts_last_layer', 'map'.*Got 'gaussian_process'",
        ),
        (
            {"prior_scale": (1.0,)},
            None,
            ValueError,
            r"'prior_scale' .* one float > 0 per layer \(2 layers\)",
        ),
    ],
)
def test_classifier_bad_input(kwargs, y, error, match):
    X = np.random.default_rng(0).normal(size=(10, 2))
    y = np.array([0, 1] * 5) if y is None else y
    with pytest.raises(error, match=match):
        nuts = px.methods.NUTS(num_warmup=5, num_samples=5)
        px.BayesianClassifier(**{"method": nuts, **kwargs}).fit(X, y)


def test_regressor_predict_before_fit_and_shapes(bnn):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        px.BayesianRegressor().predict(np.zeros((2, 1)))
    pred = bnn.predict_samples(np.zeros((7, 1)), n_samples=50, rng_key=jax.random.key(0))
    assert pred.mean.shape == (50, 7) and pred.scale.shape == (50, 7)
    with pytest.raises(ValueError, match="X has 2 features, but BayesianRegressor is expecting 1"):
        bnn.predict(np.zeros((3, 2)))
