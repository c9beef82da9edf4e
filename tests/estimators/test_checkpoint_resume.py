"""Checkpoint and resume: a run killed mid-way and resumed gives the uninterrupted run's result."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import posterax as px
from flat_settings import flat_estimator
from posterax import storage
from posterax.inference.checkpoint import FILENAME

_DATA = "rng = np.random.default_rng(0); X = rng.normal(size=(200, 3)); y = X[:, 0] + 0.3 * rng.normal(size=200)"

_SETTINGS = {
    "ensemble": dict(method="ensemble", n_members=2, num_epochs=800, checkpoint_every=40),
    "nuts": dict(method="nuts", num_warmup=600, num_samples=600, num_chains=2, checkpoint_every=50),
}


def _data():
    namespace = {"np": np}
    exec(_DATA, namespace)
    return namespace["X"], namespace["y"]


def _estimator(name, **extra):
    kwargs = {"hidden": (8,), "progress_bar": False, "random_state": 3, **_SETTINGS[name]}
    return flat_estimator(px.BayesianRegressor, **{**kwargs, **extra})


def _checkpoint_step(directory):
    _, meta = storage.read_arrays(directory / FILENAME, what="checkpoint")
    return meta["step"]


def _kill_mid_run(method, directory):
    """Start the fit in a subprocess; SIGKILL it once the first checkpoint exists."""
    script = textwrap.dedent(
        f"""
        import sys; sys.path.insert(0, {os.path.dirname(os.path.dirname(__file__))!r})
        import numpy as np, posterax as px
        from flat_settings import flat_estimator
        {_DATA}
        flat_estimator(px.BayesianRegressor, hidden=(8,), progress_bar=False, random_state=3,
                       checkpoint_dir={str(directory)!r}, **{_SETTINGS[method]!r}).fit(X, y)
        print("finished")
        """
    )
    # On a GPU, JAX would give the child 75% of the memory up front, as the parent has.
    env = {**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 240
    while not (directory / FILENAME).exists():
        assert proc.poll() is None, "the run ended before writing a checkpoint"
        assert time.monotonic() < deadline, "no checkpoint after 240 s"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("method", ["ensemble", pytest.param("nuts", marks=pytest.mark.slow)])
def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path, method):
    X, y = _data()
    _kill_mid_run(method, tmp_path)
    step = _checkpoint_step(tmp_path)
    total = 1200 if method == "nuts" else 800
    assert 0 < step < total  # killed mid-run, so the resume below has work to do
    with pytest.warns(UserWarning) if method == "nuts" else _nothing():
        resumed = _estimator(method, checkpoint_dir=tmp_path).fit(X, y, resume=True)
    assert _checkpoint_step(tmp_path) >= min(total, step + 1)
    # Uninterrupted, with the same checkpoint segments (on CPU equal to a run without
    # checkpoints too; on a GPU XLA may round a segmented program differently).
    reference = _estimator(method, checkpoint_dir=tmp_path / "uninterrupted").fit(X, y)
    np.testing.assert_array_equal(resumed.predict(X), reference.predict(X))
    lo, hi = resumed.predict_interval(X)
    lo_ref, hi_ref = reference.predict_interval(X)
    np.testing.assert_array_equal(lo, lo_ref)
    np.testing.assert_array_equal(hi, hi_ref)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_an_existing_checkpoint_is_not_overwritten_without_resume(tmp_path):
    X, y = _data()
    est = _estimator("ensemble", num_epochs=30, checkpoint_every=10, checkpoint_dir=tmp_path)
    est.fit(X, y)
    before = (tmp_path / FILENAME).read_bytes()
    with pytest.raises(FileExistsError, match="resume=True") as info:
        est.fit(X, y)
    assert "'checkpoint_dir'" in str(info.value) and "BayesianRegressor.fit" in str(info.value)
    assert (tmp_path / FILENAME).read_bytes() == before


def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    X, y = _data()
    _estimator("ensemble", num_epochs=30, checkpoint_every=10, checkpoint_dir=tmp_path).fit(X, y)
    other = _estimator(
        "ensemble", num_epochs=30, checkpoint_every=10, checkpoint_dir=tmp_path, random_state=4
    )
    with pytest.raises(ValueError, match="rng_key"):
        other.fit(X, y, resume=True)


def test_a_corrupted_checkpoint_gives_a_clear_error(tmp_path):
    X, y = _data()
    est = _estimator("ensemble", num_epochs=30, checkpoint_every=10, checkpoint_dir=tmp_path)
    est.fit(X, y)
    path = tmp_path / FILENAME
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(storage.CorruptFileError, match="checkpoint"):
        est.fit(X, y, resume=True)


@pytest.mark.parametrize(
    ("kwargs", "fit_kwargs", "error", "match"),
    [
        (dict(checkpoint_every=0), {}, ValueError, "'checkpoint_every'"),
        (dict(checkpoint_dir=None), dict(resume=True), ValueError, "'resume'"),
        (dict(checkpoint_dir=3), {}, TypeError, "'checkpoint_dir'"),
    ],
)
def test_bad_checkpoint_settings_are_refused_by_name(tmp_path, kwargs, fit_kwargs, error, match):
    X, y = _data()
    kwargs = {"checkpoint_dir": tmp_path, **kwargs}
    est = _estimator("ensemble", **{"num_epochs": 2, **kwargs})
    with pytest.raises(error, match=match):
        est.fit(X, y, **fit_kwargs)


class _Killed(Exception):
    """Stands in for a kill between two checkpoints."""


@pytest.mark.parametrize(
    ("method", "settings"),
    [
        ("mala", dict(num_warmup=40, num_samples=30, thinning=2, num_chains=2)),
        ("sgld", dict(num_warmup=40, num_samples=30, thinning=2, num_chains=2)),
        pytest.param(
            "csgmcmc", dict(num_warmup=40, num_samples=40, num_cycles=2), marks=pytest.mark.slow
        ),
    ],
)
def test_samplers_resume_after_an_interruption_to_the_same_draws(
    tmp_path, monkeypatch, method, settings
):
    """Interrupted after the third checkpoint (in-process, cheaper than a kill), resumed, and
    compared with an uninterrupted run without checkpoints."""
    from posterax.inference.checkpoint import CheckpointStore

    X, y = _data()
    kwargs = dict(method=method, hidden=(4,), progress_bar=False, random_state=5, **settings)
    reference = flat_estimator(px.BayesianRegressor, **kwargs).fit(X, y)
    original, saves = CheckpointStore.save, []

    def save_then_die(self, step, tree):
        original(self, step, tree)
        saves.append(step)
        if len(saves) == 3:
            raise _Killed

    monkeypatch.setattr(CheckpointStore, "save", save_then_die)
    # Segments of 10 units (cut at the warmup's end too): one compiled length per program.
    est = flat_estimator(
        px.BayesianRegressor, **kwargs, checkpoint_dir=tmp_path, checkpoint_every=10
    )
    with pytest.raises(_Killed):
        est.fit(X, y)
    monkeypatch.setattr(CheckpointStore, "save", original)
    est.fit(X, y, resume=True)
    assert saves[-1] < 70  # it was interrupted before the end
    ref_draws = reference.posterior_.draws["net"][0]["w"]
    np.testing.assert_array_equal(est.posterior_.draws["net"][0]["w"], ref_draws)
