"""CheckpointStore: pytrees with PRNG keys and NamedTuples round-trip through an atomic,
checksummed file; other runs' checkpoints, wrong templates and damaged files are refused."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from posterax import storage
from posterax.inference.checkpoint import FILENAME, CheckpointStore, data_digest
from posterax.storage import CorruptFileError

FINGERPRINT = {"method": "sgld", "seed": 3, "hidden": (5,), "data": "abc"}


class State(NamedTuple):
    position: dict
    step_size: jax.Array
    key: jax.Array


def _state(seed):
    keys = jax.random.split(jax.random.key(seed), 3)
    return {
        "state": State(
            position={"w": jnp.full((2, 3), float(seed)), "b": jnp.arange(3, dtype=jnp.int32)},
            step_size=jnp.asarray(0.1 * (seed + 1)),  # weakly typed, like many sampler scalars
            key=keys[0],
        ),
        "chain_keys": keys[1:],  # a batch of typed keys
        "rbg_key": jax.random.key(seed, impl="rbg"),
        "raw_key": jax.random.PRNGKey(seed),  # an old-style uint32 key is just an array
        "flags": (jnp.array([True, False]), np.array([seed, 1], dtype=np.int64)),
        "count": seed,  # a Python int leaf
    }


def _store(tmp_path, fingerprint=FINGERPRINT, name="ck"):
    return CheckpointStore(tmp_path / name, fingerprint, where="BayesianRegressor.fit")


def _assert_same_tree(a, b):
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        assert type(x) is type(y) or (isinstance(x, jax.Array) and isinstance(y, jax.Array))
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            assert x.dtype == y.dtype and jax.random.key_impl(x) == jax.random.key_impl(y)
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        assert np.asarray(x).dtype == np.asarray(y).dtype and np.shape(x) == np.shape(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
        assert getattr(x, "weak_type", False) == getattr(y, "weak_type", False)


def test_round_trip_with_keys_namedtuples_and_scalars(tmp_path):
    store = _store(tmp_path)
    saved = _state(1)
    store.save(250, saved)
    step, restored = store.load(_state(0))
    assert step == 250
    _assert_same_tree(restored, saved)
    assert isinstance(restored["state"], State)
    assert restored["state"].step_size.weak_type
    # The restored key draws the same numbers as the saved one.
    np.testing.assert_array_equal(
        jax.random.normal(restored["state"].key, (3,)), jax.random.normal(saved["state"].key, (3,))
    )


def test_later_save_replaces_the_earlier_and_abstract_templates_work(tmp_path):
    store = _store(tmp_path)
    store.save(10, _state(1))
    store.save(20, _state(2))
    template = jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype) if isinstance(x, jax.Array) else x,
        _state(0),
    )
    step, restored = store.load(template)
    assert step == 20
    np.testing.assert_array_equal(restored["state"].position["w"], np.full((2, 3), 2.0))
    assert isinstance(restored["state"].position["w"], jax.Array)


def test_restored_arrays_follow_the_template_placement(tmp_path):
    store = _store(tmp_path)
    store.save(1, {"x": jnp.ones(3)})
    device = jax.devices()[-1]
    _, restored = store.load({"x": jax.device_put(jnp.zeros(3), device)})
    assert restored["x"].devices() == {device}


def test_no_checkpoint_gives_none_and_creates_nothing(tmp_path):
    store = _store(tmp_path, name="missing/deeper")
    assert store.load(_state(0)) is None
    assert not store.exists() and not (tmp_path / "missing").exists()
    store.save(0, _state(0))
    assert store.exists() and (tmp_path / "missing" / "deeper" / FILENAME).is_file()


def test_checkpoint_dir_that_is_a_file_is_a_clear_error(tmp_path):
    file = tmp_path / "a_file"
    file.write_text("x")
    with pytest.raises(ValueError, match=r"'checkpoint_dir' parameter must be a directory.*a_file"):
        CheckpointStore(file, FINGERPRINT, where="BayesianRegressor.fit")
    store = CheckpointStore(file / "below", FINGERPRINT, where="BayesianRegressor.fit")
    with pytest.raises(ValueError, match="'checkpoint_dir' parameter .* cannot be created"):
        store.save(1, {"x": jnp.ones(1)})
    with pytest.raises(TypeError, match="'checkpoint_dir' parameter must be a directory path"):
        CheckpointStore(None, FINGERPRINT, where="BayesianRegressor.fit")


def test_another_runs_checkpoint_is_refused_naming_the_differences(tmp_path):
    _store(tmp_path).save(5, _state(1))
    other = {**FINGERPRINT, "seed": 4, "extra": 1}
    del other["data"]
    with pytest.raises(ValueError) as info:
        _store(tmp_path, other).load(_state(0))
    message = str(info.value)
    assert message.startswith("BayesianRegressor.fit: the checkpoint in")
    assert "'seed': checkpoint 3, this run 4" in message
    assert "'data' only in the checkpoint" in message and "'extra' only in this run" in message
    assert "another checkpoint_dir" in message and "resume=False" in message
    assert "'hidden'" not in message  # tuples compare equal to the lists read back


@pytest.mark.parametrize(
    ("template", "match"),
    [
        ({"x": jnp.ones(3)}, "holds 2 arrays but the state to restore has 1"),
        ({"x": jnp.ones(4), "y": jnp.ones(2, jnp.int32)}, r"\['x'\]: float32\(3,\) in the check"),
        ({"x": jnp.ones(3), "y": jnp.ones(2)}, r"\['y'\]: int32\(2,\) in the checkpoint, float32"),
        ({"a": jnp.ones(3), "y": jnp.ones(2, jnp.int32)}, r"leaf \['x'\] where \['a'\] is exp"),
        ({"x": jnp.ones(3), "y": jax.random.key(0)}, r"key<fry>\(\) expected"),
        ({"x": jnp.ones(3), "y": 3}, "a Python int expected"),
    ],
)
def test_wrong_template_is_refused(tmp_path, template, match):
    store = _store(tmp_path)
    store.save(1, {"x": jnp.ones(3), "y": jnp.ones(2, jnp.int32)})
    with pytest.raises(ValueError, match=match):
        store.load(template)


@pytest.mark.parametrize("keep", [0, 100, 0.5, -1])
def test_damaged_checkpoint_is_a_clear_error(tmp_path, keep):
    store = _store(tmp_path)
    store.save(3, _state(1))
    data = store.path.read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else keep
    store.path.write_bytes(data[:cut])
    with pytest.raises(CorruptFileError) as info:
        store.load(_state(0))
    message = str(info.value)
    assert message.startswith("BayesianRegressor.fit: The checkpoint file")
    assert FILENAME in message and "rerun without resume=True" in message


def test_flipped_byte_is_detected(tmp_path):
    store = _store(tmp_path)
    store.save(3, {"w": jnp.arange(64, dtype=jnp.float32) * 1.25})
    data = bytearray(store.path.read_bytes())
    at = bytes(data).find(np.float32(40 * 1.25).tobytes())
    data[at] ^= 0x10
    store.path.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="damaged"):
        store.load({"w": jnp.zeros(64)})


def test_other_array_files_are_not_taken_for_checkpoints(tmp_path):
    store = _store(tmp_path)
    storage.write_arrays(store.path, {"x": np.ones(1)}, {"format": "posterax-model"})
    with pytest.raises(ValueError, match="not a posterax checkpoint"):
        store.load({"x": jnp.ones(1)})
    storage.write_arrays(
        store.path, {"x": np.ones(1)}, {"format": "posterax-checkpoint", "version": 99}
    )
    with pytest.raises(ValueError, match="version 99; this posterax reads versions up to 1"):
        store.load({"x": jnp.ones(1)})


def test_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    store = _store(tmp_path)
    store.save(100, _state(1))

    def no_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(storage.os, "replace", no_replace)
    with pytest.raises(OSError, match="disk full"):
        store.save(200, _state(2))
    monkeypatch.undo()
    step, restored = store.load(_state(0))
    assert step == 100
    _assert_same_tree(restored, _state(1))
    assert sorted(p.name for p in store.directory.iterdir()) == [FILENAME]


def test_clear_removes_the_checkpoint_and_stale_temporaries_only(tmp_path):
    store = _store(tmp_path)
    store.save(1, {"x": jnp.ones(1)})
    (store.directory / f".{FILENAME}.deadbeef.tmp").write_bytes(b"half")  # a killed write
    (store.directory / "notes.txt").write_text("mine")
    store.clear()
    assert not store.exists() and store.load({"x": jnp.ones(1)}) is None
    assert sorted(p.name for p in store.directory.iterdir()) == ["notes.txt"]
    store.clear()  # nothing left to clear: no error
    _store(tmp_path, name="never-created").clear()


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="JSON values"):
        _store(tmp_path, {"data": np.ones(3)})
    with pytest.raises(TypeError, match="must be a dict"):
        _store(tmp_path, [("seed", 1)])
    store = _store(tmp_path)
    with pytest.raises(TypeError, match="step must be an int"):
        store.save(1.5, {"x": jnp.ones(1)})
    with pytest.raises(ValueError, match="step must be >= 0"):
        store.save(-1, {"x": jnp.ones(1)})
    with pytest.raises(TypeError, match=r"leaf \['x'\] is not a numeric array"):
        store.save(1, {"x": object()})
    assert not store.exists()


def test_data_digest_tells_data_apart():
    X = np.arange(12.0).reshape(6, 2)
    y = np.array(["a", "b", "a", "b", "a", "b"], dtype=object)
    base = data_digest(X, y)
    assert base == data_digest(X.copy(), y.copy())
    assert base != data_digest(X, None)
    assert base != data_digest(X[:, ::-1].copy(), y)
    assert base != data_digest(X.reshape(2, 6), y)
    assert base != data_digest(X.astype(np.float32), y)
    assert base != data_digest(X, y[::-1].copy())
    assert data_digest(None) != data_digest() and len(base) == 64
