"""A model fitted on a network of your own is saved as its weights (no pickle) and loaded with
``px.load(path, network=like)``, Equinox's ``tree_deserialise_leaves(path, like)`` convention;
a network of another structure, or none, is refused with a clear error."""

import warnings

import jax
import numpy as np
import pytest
from flax import nnx

import posterax as px
from posterax.methods import method_from_settings
from user_networks import NNXMLP, EqxMLP, LinenMLP, Shifted, functional_mlp, wave_data

SETTINGS = {"progress_bar": False, "random_state": 0}


def _method(name, **extra):
    """``name`` trained 20 epochs (or sampled), 30 predictive draws."""
    flat = {"num_epochs": 20, "num_samples": 30, **extra}
    return method_from_settings(name, flat, ignore_unknown=True)


def _like(kind, dropout=0.0):
    """A fresh network built as for the fit (other random weights: only the structure counts)."""
    if kind == "nnx":
        return NNXMLP(1, 1, nnx.Rngs(5), dropout=dropout)
    if kind == "equinox":
        return EqxMLP(1, 1, jax.random.key(5), dropout=dropout)
    if kind == "linen":
        return LinenMLP(1)
    return functional_mlp(1, 1, seed=5)


@pytest.mark.parametrize(
    ("kind", "method"),
    [
        ("nnx", "nuts"),
        ("nnx", "mc_dropout"),
        ("equinox", "laplace"),
        ("linen", "ensemble"),
        ("functional", "vi"),
    ],
)
def test_round_trip_predicts_identically(kind, method, tmp_path):
    X, y = wave_data()
    dropout = 0.1 if method == "mc_dropout" else 0.0
    network = _like(kind, dropout)
    method = _method(method, num_warmup=50, structure="full", num_members=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = px.BayesianRegressor(network=network, method=method, **SETTINGS).fit(X, y)
    reg.save(tmp_path / "model")
    loaded = px.load(tmp_path / "model", network=_like(kind, dropout))
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))
    np.testing.assert_array_equal(
        np.stack(loaded.predict_interval(X)), np.stack(reg.predict_interval(X))
    )
    assert loaded.input_shape_ == (1,)


def test_loading_without_or_with_another_network_is_refused(tmp_path):
    X, y = wave_data()
    reg = px.BayesianRegressor(network=_like("nnx"), method=_method("map"), **SETTINGS).fit(X, y)
    reg.save(tmp_path / "model")
    with pytest.raises(
        ValueError, match=r"'network' parameter of px.load is required .*\(NNXMLP\)"
    ):
        px.load(tmp_path / "model")
    wider = NNXMLP(1, 1, nnx.Rngs(0), width=16)
    with pytest.raises(ValueError, match=r"structure of the saved network .* \[8\] vs \[16\]"):
        px.load(tmp_path / "model", network=wider)
    with pytest.raises(ValueError, match=r"structure of the saved network .* equinox"):
        px.load(tmp_path / "model", network=_like("equinox"))


def test_loading_with_other_constants_or_into_the_builtin_mlp_is_refused(tmp_path):
    X, y = wave_data()
    reg = px.BayesianRegressor(network=Shifted(1.0, nnx.Rngs(0)), method=_method("map"), **SETTINGS)
    reg.fit(X, y).save(tmp_path / "own")
    loaded = px.load(tmp_path / "own", network=Shifted(1.0, nnx.Rngs(3)))
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))
    with pytest.raises(ValueError, match=r"non-trainable variables the saved network had"):
        px.load(tmp_path / "own", network=Shifted(2.0, nnx.Rngs(0)))
    builtin = px.BayesianRegressor(network=(4,), method=_method("map"), **SETTINGS).fit(X, y)
    builtin.save(tmp_path / "builtin")
    with pytest.raises(ValueError, match=r"only for models fitted on a network of your own"):
        px.load(tmp_path / "builtin", network=_like("nnx"))
