"""The optimisation driver: minibatching, vmapped members, early stopping, divergence."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from posterax.inference import TrainingDivergedWarning, train
from posterax.inference.training import batch_plan, check_optimizer


def _line_data(n=64):
    X = jnp.linspace(-1, 1, n)[:, None]
    return X, 2.0 * X[:, 0] - 1.0


def _mse(params, key, X, y):
    return jnp.mean((X[:, 0] * params["a"] + params["b"] - y) ** 2)


def test_minibatch_training_recovers_least_squares_and_is_deterministic():
    X, y = _line_data()
    kwargs = dict(num_epochs=150, batch_size=10, progress_bar=False)
    start = {"a": jnp.zeros(()), "b": jnp.zeros(())}
    one = train(jax.random.key(0), _mse, start, (X, y), optax.adam(0.05), **kwargs)
    two = train(jax.random.key(0), _mse, start, (X, y), optax.adam(0.05), **kwargs)
    np.testing.assert_allclose([one.params["a"], one.params["b"]], [2.0, -1.0], atol=1e-2)
    assert float(one.params["a"]) == float(two.params["a"])
    assert one.info["epochs_run"] == 150 and one.info["loss_history"].shape == (150,)


def test_batches_cover_every_example_each_epoch():
    # 64 rows in batches of 10 -> 7 batches, the last topped up from the same permutation.
    assert batch_plan(64, 10) == (10, 7)
    assert batch_plan(5, 10) == (5, 1)


def test_members_are_trained_independently_under_vmap():
    X, y = _line_data()
    starts = {"a": jnp.array([0.0, 5.0, -5.0]), "b": jnp.zeros(3)}
    res = train(
        jax.random.key(1),
        _mse,
        starts,
        (X, y),
        optax.adam(0.05),
        num_epochs=150,
        batch_size=16,
        num_members=3,
        progress_bar=False,
    )
    np.testing.assert_allclose(res.params["a"], 2.0, atol=2e-2)
    assert res.info["loss_history"].shape == (150, 3)
    # Different shuffles per member: the loss trajectories are not identical.
    assert not np.allclose(res.info["loss_history"][:, 1], res.info["loss_history"][:, 2])


def test_early_stopping_keeps_the_best_validation_params():
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.normal(size=(30, 20)))
    y = jnp.asarray(rng.normal(size=30))  # pure noise: any fit beyond zero overfits
    Xv, yv = jnp.asarray(rng.normal(size=(30, 20))), jnp.asarray(rng.normal(size=30))

    def loss(p, key, X, y):
        return jnp.mean((X @ p - y) ** 2)

    res = train(
        jax.random.key(0),
        loss,
        jnp.zeros(20),
        (X, y),
        optax.adam(0.05),
        num_epochs=500,
        batch_size=30,
        validation=(Xv, yv),
        patience=10,
        progress_bar=False,
    )
    val = res.info["val_history"]
    assert res.info["stopped_early"] and res.info["epochs_run"] < 500
    assert float(loss(res.params, None, Xv, yv)) == pytest.approx(float(val.min()), rel=1e-5)


def test_non_finite_loss_stops_with_a_warning_and_keeps_last_good_params():
    X, y = _line_data(8)

    def loss(p, key, X, y):  # Adam(1.0) moves p by ~1 per step; NaN once p > 3.5
        return jnp.where(p > 3.5, jnp.nan, -p)

    with pytest.warns(TrainingDivergedWarning, match=r"epoch 5 of 20.*smaller learning_rate"):
        res = train(
            jax.random.key(0),
            loss,
            jnp.zeros(()),
            (X, y),
            optax.adam(1.0),
            num_epochs=20,
            batch_size=8,
            progress_bar=False,
        )
    assert res.info["diverged_at_epoch"] == 5 and res.info["epochs_run"] == 4
    # The params at the end of epoch 4, the last epoch whose loss was finite.
    assert float(res.params) == pytest.approx(4.0, abs=1e-3)


def test_optimizer_must_be_an_optax_transformation():
    with pytest.raises(
        TypeError, match="'optimizer'.*optax GradientTransformation.*Got an object of type SGD"
    ):
        check_optimizer(type("SGD", (), {})(), 1e-3, "BayesianRegressor.fit")
    assert check_optimizer(None, 1e-3, "x") is check_optimizer(None, 1e-3, "x")


def test_progress_bar_shows_epochs_and_loss_only_when_asked(capsys):
    X, y = _line_data()
    start = {"a": jnp.zeros(()), "b": jnp.zeros(())}
    for shown in (True, False):
        train(
            jax.random.key(0),
            _mse,
            start,
            (X, y),
            optax.adam(0.05),
            num_epochs=5,
            batch_size=16,
            progress_bar=shown,
            desc="MAP",
        )
        err = capsys.readouterr().err
        assert ("MAP" in err and "5/5" in err and "loss=" in err) is shown
