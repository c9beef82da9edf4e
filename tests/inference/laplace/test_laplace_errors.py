"""Bad input and oversized structures are refused with messages that say what to do."""

import jax
import numpy as np
import pytest

from posterax.inference.laplace import estimate_memory_bytes, fit_laplace


@pytest.fixture(scope="module")
def setup(make_model, small_data):
    X, y, _ = small_data
    model, params = make_model("regression")
    return model, params, X, y


def test_memory_refusal_names_structure_size_and_alternatives(setup):
    model, params, X, y = setup
    with pytest.raises(ValueError) as err:
        fit_laplace(model, params, X, y, hessian_structure="full", max_memory_bytes=1000)
    message = str(err.value)
    needed = estimate_memory_bytes("full", 26, batch_size=30)
    for part in (
        "hessian_structure",
        "'full'",
        "GB",
        "'kron'",
        "'diag'",
        "'last_layer'",
        f"{needed / 1e9:.3g} GB",
        f"{1000 / 1e9:.3g} GB",
    ):
        assert part in message
    # The same fit under a roomy limit goes through.
    post = fit_laplace(
        model, params, X, y, hessian_structure="diag", max_memory_bytes=10**9, tune=None
    )
    assert post.info["memory_estimate_bytes"] < 10**9
    # A full GGN of a large network is refused by default (half the available RAM).
    assert estimate_memory_bytes("full", 10**7) > 1e14
    assert estimate_memory_bytes("kron", 10**7, layer_shapes=[(1000, 10000)]) < 1e10


@pytest.mark.parametrize(
    ("kwargs", "parts"),
    [
        ({"hessian_structure": "block"}, ["'hessian_structure'", "'kron'", "'block'"]),
        ({"subset_of_weights": "first"}, ["'subset_of_weights'", "'last_layer'", "'first'"]),
        ({"curvature": "fisher"}, ["'curvature'", "'ggn'"]),
        ({"pred_type": "mc"}, ["'pred_type'", "'glm'"]),
        ({"tune": "yes"}, ["'tune'", "'marglik'"]),
        ({"batch_size": 0}, ["'batch_size'", "int >= 1", "Got 0"]),
        ({"prior_precision": -1.0}, ["'prior_precision'", "> 0", "-1.0"]),
        ({"prior_precision": [1.0, 2.0, 3.0]}, ["'prior_precision'", "per layer (2)", "(3,)"]),
        ({"sigma_noise": 0.0}, ["'sigma_noise'", "> 0"]),
        ({"hessian_structure": "kron", "curvature": "hessian"}, ["'curvature'", "'full'"]),
        ({"tune": "gridsearch"}, ["'val_data'", "required"]),
        ({"subset_of_weights": "subnetwork"}, ["'subnetwork_mask'", "n_subnetwork"]),
        ({"subset_of_weights": "subnetwork", "n_subnetwork": 1000}, ["'n_subnetwork'", "[1, 26]"]),
        ({"n_subnetwork": 3}, ["'n_subnetwork'", "'subnetwork'"]),
        ({"subset_of_weights": "subnetwork", "subnetwork_mask": [True]}, ["'subnetwork_mask'"]),
        ({"tune_learning_rate": float("nan")}, ["'tune_learning_rate'"]),
    ],
)
def test_bad_input(setup, kwargs, parts):
    model, params, X, y = setup
    with pytest.raises(ValueError) as err:
        fit_laplace(model, params, X, y, **kwargs)
    for part in parts:
        assert part in str(err.value)


def test_bad_data_and_params(setup):
    model, params, X, y = setup
    with pytest.raises(ValueError, match=r"'X' and 'y'.*\(30, 3\) and \(29,\)"):
        fit_laplace(model, params, X, y[:-1])
    with pytest.raises(ValueError, match="'map_params'.*'net'"):
        fit_laplace(model, params["net"], X, y)
    with pytest.raises(ValueError, match="'map_params'.*noise"):
        fit_laplace(model, {"net": params["net"]}, X, y)
    with pytest.raises(ValueError, match="'model'.*NetworkModel"):
        fit_laplace(model.apply_fn, params, X, y)
    partial = jax.tree_util.tree_map(lambda w: np.zeros(w.shape, bool), params["net"])
    partial[0]["w"][0, 0] = True
    with pytest.raises(ValueError, match="'kron' needs every selected layer"):
        fit_laplace(
            model, params, X, y, subset_of_weights="subnetwork", subnetwork_mask=partial, tune=None
        )
    varying = np.arange(1.0, 27.0)
    with pytest.raises(ValueError, match="'prior_precision'.*constant within a layer"):
        fit_laplace(model, params, X, y, prior_precision=varying, tune=None)


def test_targets_out_of_range_are_refused_not_turned_into_nan(make_model, small_data):
    X, y_reg, y_cls = small_data
    model, params = make_model("classification")
    with pytest.raises(ValueError, match=r"'y'.*class indices 0\.\.2.*values 5 to 7"):
        fit_laplace(model, params, X, y_cls + 5, hessian_structure="diag")
    with pytest.raises(ValueError, match=r"'y'.*class indices.*dtype float32"):
        fit_laplace(model, params, X, y_cls.astype(np.float32), hessian_structure="diag")
    reg_model, reg_params = make_model("regression")
    with pytest.raises(ValueError, match="'y'.*NaN or inf"):
        fit_laplace(reg_model, reg_params, X, np.where(np.arange(30) == 3, np.nan, y_reg))
