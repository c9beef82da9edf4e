import json

import numpy as np
import pytest

import posterax as px


@pytest.fixture(scope="module", params=["exact", "map", "nuts"])
def fitted(request, seed_data):
    X, y, _ = seed_data
    nuts = px.methods.NUTS(num_warmup=200, num_samples=300)
    method = nuts if request.param == "nuts" else request.param
    return px.BayesianLinearRegression(method=method, random_state=5).fit(X, y)


def test_round_trip_predicts_identically(fitted, seed_data, tmp_path):
    X, _, _ = seed_data
    fitted.save(tmp_path / "model")
    loaded = px.load(tmp_path / "model")
    assert loaded.get_params() == fitted.get_params()
    np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))
    for kind in ("predictive", "mean"):
        for a, b in zip(
            loaded.predict_interval(X, kind=kind),
            fitted.predict_interval(X, kind=kind),
            strict=True,
        ):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.predict_samples(X).mean, fitted.predict_samples(X).mean)
    assert loaded.summary() == fitted.summary()
    assert not list(tmp_path.glob(".model*")), "staging directory left behind"


def test_files_are_json_and_npz_without_pickle(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["format_version"] == 1 and meta["estimator"] == "BayesianLinearRegression"
    with np.load(tmp_path / "m" / "arrays.npz", allow_pickle=False) as data:
        assert all(data[k].dtype != object for k in data.files)


def test_refuses_to_overwrite_unless_asked(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        fitted.save(tmp_path / "m")
    fitted.save(tmp_path / "m", overwrite=True)
    assert px.load(tmp_path / "m").n_features_in_ == 1


def test_newer_format_version_is_a_clear_error(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    path = tmp_path / "m" / "model.json"
    meta = json.loads(path.read_text())
    meta["format_version"] = 99
    path.write_text(json.dumps(meta))
    with pytest.raises(
        ValueError, match=r"format version 99; this posterax reads versions up to 1\. Upgrade"
    ):
        px.load(tmp_path / "m")


def test_corrupted_files_are_clear_errors(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    arrays = tmp_path / "m" / "arrays.npz"
    arrays.write_bytes(arrays.read_bytes()[:50])
    with pytest.raises(ValueError, match="truncated or corrupted"):
        px.load(tmp_path / "m")
    (tmp_path / "m" / "model.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupted"):
        px.load(tmp_path / "m")
    with pytest.raises(FileNotFoundError, match="not a saved posterax model"):
        px.load(tmp_path / "nowhere")
