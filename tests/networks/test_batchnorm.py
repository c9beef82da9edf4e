"""A network of your own with BatchNorm (Flax NNX) under MAP, Ensemble, Laplace and SWAG: trained
on each minibatch's statistics, evaluated with the statistics of all training inputs at the
trained weights (per ensemble member; at the SWA mean for SWAG), saved and loaded with them;
the samplers and VI refuse it by name."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import posterax as px
from posterax.networks import batch_stats
from user_networks import wave_data


class WithBatchNorm(nnx.Module):
    def __init__(self, rngs, width=16):
        self.l1 = nnx.Linear(1, width, rngs=rngs)
        self.bn = nnx.BatchNorm(width, rngs=rngs)
        self.l2 = nnx.Linear(width, 1, rngs=rngs)

    def __call__(self, x):
        return self.l2(jnp.tanh(self.bn(self.l1(x))))


def _fit(method, X=None, y=None):
    if X is None:
        X, y = wave_data()
    training = px.methods.Training(num_epochs=150, learning_rate=1e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # KFAC: BatchNorm's scale has no factor
        return px.BayesianRegressor(
            method(training), network=WithBatchNorm(nnx.Rngs(0)), progress_bar=False,
            random_state=0,
        ).fit(X, y)  # fmt: skip


def _hidden_statistics(reg, X, draw=0):
    """The BatchNorm input's mean and biased variance over X, computed by hand from the
    trained weights of one draw (the regressor sees standardised targets, raw inputs)."""
    net = jax.tree_util.tree_map(lambda a: np.asarray(a)[draw], reg.posterior_.draws["net"])
    h = np.asarray(X, np.float32) @ net["l1"]["kernel"] + net["l1"]["bias"]
    return h.mean(0), h.var(0)


def test_map_evaluates_with_the_statistics_of_all_training_inputs(monkeypatch):
    monkeypatch.setattr(batch_stats, "CHUNK_ROWS", 30)  # 80 rows: three chunks, combined
    X, y = wave_data()
    reg = _fit(lambda t: px.methods.MAP(training=t), X, y)
    state = reg.posterior_.draws["state"]["bn"]
    mean, var = _hidden_statistics(reg, X)
    np.testing.assert_allclose(np.asarray(state["mean"])[0], mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(state["var"])[0], var, rtol=1e-4, atol=1e-5)
    # Evaluation mode: a row's prediction does not depend on the rest of its batch.
    np.testing.assert_allclose(reg.predict(X[:1]), reg.predict(X)[:1], rtol=1e-5)
    assert np.sqrt(np.mean((reg.predict(X) - y) ** 2)) < 0.3  # noise sd 0.2


def test_each_ensemble_member_has_its_own_statistics():
    X, y = wave_data()
    reg = _fit(lambda t: px.methods.Ensemble(num_members=3, training=t), X, y)
    means = np.asarray(reg.posterior_.draws["state"]["bn"]["mean"])
    assert means.shape == (3, 16)
    for member in range(3):
        np.testing.assert_allclose(means[member], _hidden_statistics(reg, X, member)[0], atol=1e-4)
    assert not np.allclose(means[0], means[1])
    lo, hi = reg.predict_interval(X)
    assert np.mean((lo <= y) & (y <= hi)) > 0.8


@pytest.mark.parametrize(
    "method",
    [
        lambda t: px.methods.Laplace(structure="kron", training=t),
        lambda t: px.methods.SWAG(num_collections=10, num_samples=100, training=t),
    ],
    ids=["laplace", "swag"],
)
def test_laplace_and_swag_run_on_frozen_statistics_and_round_trip(method, tmp_path):
    X, y = wave_data()
    reg = _fit(method, X, y)
    lo, hi = reg.predict_interval(X)
    assert np.mean((lo <= y) & (y <= hi)) > 0.8
    assert np.sqrt(np.mean((reg.predict(X) - y) ** 2)) < 0.3
    reg.save(tmp_path / "m")
    loaded = px.load(tmp_path / "m", network=WithBatchNorm(nnx.Rngs(5)))
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))


@pytest.mark.parametrize("method", ["nuts", "vi", "mc_dropout"])
def test_samplers_and_vi_refuse_batchnorm_by_name(method):
    X, y = wave_data()
    with pytest.raises(
        ValueError, match=rf"BatchNorm, which MAP, Ensemble, Laplace and SWAG .* method='{method}'"
    ):
        px.BayesianRegressor(method, network=WithBatchNorm(nnx.Rngs(0))).fit(X, y)
