"""Model files that still parse but were damaged or edited are refused (SHA-256 per array and of
model.json); files saved before the checksums still load; saving is atomic; the run-time
parameters (devices, max_memory, checkpoint_dir, checkpoint_every) are stored JSON-safely.

(Round trips, overwrite, format version, truncation and missing arrays: test_persistence.py and
test_network_conformance.py.)
"""

import copy
import json

import jax
import numpy as np
import pytest

import posterax as px
from posterax.estimators import persistence

RESAVE = "Re-save the model from its source"


@pytest.fixture(scope="module")
def linear(seed_data):
    X, y, _ = seed_data
    return px.BayesianLinearRegression(method="exact").fit(X, y), X


@pytest.fixture(scope="module")
def network():
    # The data and settings of test_network_conformance's MAP fit: in a full run the compiled
    # training program is reused.
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, (80, 1))
    y = np.sin(X[:, 0]) + 0.2 * rng.normal(size=80)
    settings = {"network": (8,), "progress_bar": False, "random_state": 0}
    method = px.methods.MAP(training=px.methods.Training(num_epochs=30))
    return px.BayesianRegressor(method=method, **settings).fit(X, y), X


@pytest.fixture(params=["linear", "network"])
def saved(request, tmp_path):
    est, X = request.getfixturevalue(request.param)
    est.save(tmp_path / "m")
    return est, X, tmp_path / "m"


def _arrays(path):
    with np.load(path / "arrays.npz", allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _meta(path):
    return json.loads((path / "model.json").read_text())


def test_checksums_are_recorded(saved):
    _, _, path = saved
    checks = _meta(path)["checksums"]
    assert checks["algorithm"] == "sha256" and len(checks["model_json"]) == 64
    assert checks["arrays"].keys() == _arrays(path).keys()


def test_flipped_byte_in_array_data_is_a_clear_error(saved):
    _, _, path = saved
    arrays = _arrays(path)
    name = max(arrays, key=lambda k: arrays[k].nbytes)
    needle = arrays[name].tobytes()
    blob = bytearray((path / "arrays.npz").read_bytes())
    at = bytes(blob).find(needle)
    assert at > 0
    blob[at + len(needle) // 2] ^= 0x04
    (path / "arrays.npz").write_bytes(bytes(blob))
    with pytest.raises(ValueError, match=rf"arrays\.npz in '.*m' is .*corrupted.*{RESAVE}"):
        px.load(path)


def test_rewritten_array_fails_its_checksum(saved):
    _, _, path = saved
    arrays = _arrays(path)
    name = sorted(k for k in arrays if arrays[k].dtype.kind == "f" and arrays[k].size)[0]
    arrays[name] = arrays[name].copy()
    arrays[name].flat[0] = np.nextafter(arrays[name].flat[0], np.inf)  # the smallest change
    np.savez(path / "arrays.npz", **arrays)  # a valid archive: only the checksum can tell
    with pytest.raises(ValueError, match=rf"the array '{name}' fails the SHA-256 check.*{RESAVE}"):
        px.load(path)


def test_added_array_is_refused(saved):
    _, _, path = saved
    np.savez(path / "arrays.npz", **_arrays(path), extra=np.ones(2))
    with pytest.raises(ValueError, match=r"unexpected entries \['extra'\]"):
        px.load(path)


@pytest.mark.parametrize("edit", ["value", "checksum", "malformed"])
def test_edited_model_json_is_refused(saved, edit):
    est, _, path = saved
    meta = _meta(path)
    if edit == "value":  # a valid file describing another model
        if isinstance(est, px.BayesianLinearRegression):
            meta["posterior"]["rate"] *= 1.000001
        else:
            activation = meta["posterior"]["activation"]
            meta["posterior"]["activation"] = "tanh" if activation != "tanh" else "relu"
    elif edit == "checksum":
        meta["checksums"]["model_json"] = "0" * 64
    else:
        meta["checksums"] = "sha256"
    (path / "model.json").write_text(json.dumps(meta, indent=2))
    with pytest.raises(ValueError, match=rf"model\.json in '.*m' is corrupted.*{RESAVE}"):
        px.load(path)


def test_reformatted_model_json_still_loads(saved):
    est, X, path = saved
    (path / "model.json").write_text(json.dumps(_meta(path)))  # other whitespace, same content
    np.testing.assert_array_equal(px.load(path).predict(X), est.predict(X))


def test_model_saved_before_checksums_still_loads(saved):
    est, X, path = saved
    meta = _meta(path)
    del meta["checksums"]
    assert meta["format_version"] == persistence.FORMAT_VERSION == 1
    (path / "model.json").write_text(json.dumps(meta, indent=2))
    loaded = px.load(path)
    assert loaded.get_params() == est.get_params()
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))


def test_failed_overwrite_keeps_the_old_model(linear, network, tmp_path, monkeypatch):
    est, X = linear
    est.save(tmp_path / "m")

    def broken_savez(file, *args, **kwargs):
        file.write(b"PK half written")
        raise OSError("disk full")

    monkeypatch.setattr(persistence.np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        network[0].save(tmp_path / "m", overwrite=True)
    monkeypatch.undo()
    loaded = px.load(tmp_path / "m")
    assert isinstance(loaded, px.BayesianLinearRegression)
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_overwrite_after_an_interrupted_save(linear, tmp_path):
    est, X = linear
    est.save(tmp_path / "m")
    stale = tmp_path / ".m.old"  # left by a save killed between its two renames
    stale.mkdir()
    (stale / "model.json").write_text("{}")
    est.save(tmp_path / "m", overwrite=True)
    np.testing.assert_array_equal(px.load(tmp_path / "m").predict(X), est.predict(X))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_run_time_parameters_are_stored_json_safely(network, tmp_path):
    est, X = network
    # Set after fitting: what is stored does not depend on how fit uses them.
    placed = copy.copy(est).set_params(
        devices=[jax.devices()[0]],
        max_memory="1GB",
        checkpoint_dir=tmp_path / "ck",
        checkpoint_every=7,
    )
    placed.save(tmp_path / "m")
    params = _meta(tmp_path / "m")["params"]
    assert params["devices"] is None  # Device objects belong to one machine
    assert params["checkpoint_dir"] == str(tmp_path / "ck")
    assert params["max_memory"] == "1GB" and params["checkpoint_every"] == 7
    loaded = px.load(tmp_path / "m")
    assert loaded.devices is None and loaded.checkpoint_dir == str(tmp_path / "ck")
    assert loaded.max_memory == "1GB" and loaded.checkpoint_every == 7
    np.testing.assert_array_equal(loaded.predict(X), placed.predict(X))

    counted = copy.copy(est).set_params(devices=1, max_memory=2**30, checkpoint_dir="ck")
    counted.save(tmp_path / "n")
    loaded = px.load(tmp_path / "n")
    assert (loaded.devices, loaded.max_memory, loaded.checkpoint_dir) == (1, 2**30, "ck")


def test_object_arrays_are_never_written(linear, tmp_path, monkeypatch):
    est, _ = linear
    real = persistence._linear_state

    def with_object_array(estimator):
        params, fitted, posterior, arrays = real(estimator)
        return params, fitted, posterior, {**arrays, "bad": np.array([None, 1], dtype=object)}

    monkeypatch.setattr(persistence, "_linear_state", with_object_array)
    with pytest.raises(TypeError, match="'bad' has dtype object"):
        est.save(tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


def test_models_saved_before_method_objects_still_load(network, linear, tmp_path):
    """Files from before method objects hold the method's settings as estimator parameters
    and the built-in MLP as hidden / activation: they load as the method object and network
    those meant, and predict identically."""
    est, X = network
    est.save(tmp_path / "m")
    meta = _meta(tmp_path / "m")
    del meta["checksums"]  # as old files were
    meta["params"].update(
        method="map",
        network=None,
        hidden=[8],
        activation="relu",
        num_epochs=30,
        learning_rate=0.01,
        n_members=5,  # every setting was stored; the ones MAP has no use for are dropped
        hessian_structure="kron",
        num_warmup=1000,
    )
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta, indent=2))
    loaded = px.load(tmp_path / "m")
    assert loaded.network == px.networks.MLP(hidden=(8,), activation="relu")
    assert isinstance(loaded.method, px.methods.MAP)
    assert loaded.method.training.get_params() == {
        **px.methods.Training().get_params(),
        "num_epochs": 30,
        "learning_rate": 0.01,
    }
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))

    X_lin = linear[1]
    lin_nuts = px.BayesianLinearRegression(method=px.methods.NUTS(num_warmup=50, num_samples=50))
    with pytest.warns(UserWarning):  # 50 draws are flagged as too few
        lin_nuts.fit(X_lin, X_lin[:, 0])
    lin_nuts.save(tmp_path / "lin")
    meta = _meta(tmp_path / "lin")
    del meta["checksums"]
    meta["params"].update(method="nuts", num_warmup=50, num_samples=2000, num_chains=1)
    (tmp_path / "lin" / "model.json").write_text(json.dumps(meta, indent=2))
    loaded = px.load(tmp_path / "lin")
    assert loaded.method == px.methods.NUTS(num_warmup=50, num_samples=2000)
