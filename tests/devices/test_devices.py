"""Chains, ensemble members and minibatches split over devices give the one-device results.

Run under ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (``make test`` does, as a
second pytest invocation); with fewer devices these tests skip.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import posterax as px
from posterax.inference import SGMCMCSettings, sample_nuts, sample_sgmcmc
from posterax.inference.mala import MALASettings, sample_mala
from posterax.methods import method_from_settings

pytestmark = pytest.mark.skipif(
    jax.device_count() < 4,
    reason="needs 4 devices: XLA_FLAGS=--xla_force_host_platform_device_count=4",
)


def _data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = X @ np.array([1.0, -1.0, 0.5]) + 0.3 * rng.normal(size=n)
    return X, y


def _log_density(theta, X, y):
    return -0.5 * jnp.sum((y - X @ theta) ** 2) / 0.09 - 0.5 * jnp.sum(theta**2)


def _log_prior(theta):
    return -0.5 * jnp.sum(theta**2)


def _log_lik_one(theta, xy):
    x, y = xy
    return -0.5 * (y - x @ theta) ** 2 / 0.09


def _held_by(array):
    """Leading-axis rows held by each device."""
    return sorted(shard.data.shape[0] for shard in array.addressable_shards)


def test_nuts_chains_split_over_devices_match_one_device():
    X, y = (jnp.asarray(a, jnp.float32) for a in _data())
    runs = {
        d: sample_nuts(
            jax.random.key(1),
            _log_density,
            jnp.zeros(3),
            (X, y),
            num_warmup=30,
            num_samples=30,
            num_chains=4,
            devices=d,
        ).samples
        for d in (1, 4)
    }
    assert _held_by(runs[4]) == [1, 1, 1, 1]
    assert len(runs[4].sharding.device_set) == 4
    assert len(runs[1].sharding.device_set) == 1
    # Float rounding may differ between programs; NUTS amplifies it only over long runs.
    np.testing.assert_allclose(runs[4], runs[1], atol=1e-4)


def test_chains_that_do_not_divide_use_the_largest_even_split():
    X, y = (jnp.asarray(a, jnp.float32) for a in _data())
    draws = sample_nuts(
        jax.random.key(1),
        _log_density,
        jnp.zeros(3),
        (X, y),
        num_warmup=10,
        num_samples=10,
        num_chains=6,
        devices=4,
    ).samples
    assert _held_by(draws) == [2, 2, 2]  # 3 devices of the 4, 2 chains each


def test_mala_and_sgld_chains_split_over_devices_match_one_device():
    X, y = (jnp.asarray(a, jnp.float32) for a in _data())
    mala = MALASettings(num_warmup=100, num_samples=100, num_chains=4)
    starts = jnp.zeros((4, 3))
    m1, m4 = (
        sample_mala(jax.random.key(2), _log_density, starts, (X, y), mala, devices=d).samples
        for d in (1, 4)
    )
    assert _held_by(m4) == [1, 1, 1, 1]
    np.testing.assert_allclose(m4, m1, atol=1e-4)
    sg = SGMCMCSettings(step_size=1e-4, num_burnin=100, num_samples=100, num_chains=4)
    s1, s4 = (
        sample_sgmcmc(
            jax.random.key(3), _log_prior, _log_lik_one, starts, (X, y), sg, devices=d
        ).samples
        for d in (1, 4)
    )
    assert _held_by(s4) == [1, 1, 1, 1]
    np.testing.assert_allclose(s4, s1, atol=1e-4)


def _fit(method, devices, **settings):
    X, y = _data(200)
    est = px.BayesianRegressor(
        method=method_from_settings(method, dict(num_epochs=20, batch_size=32, **settings)),
        network=(16,),
        progress_bar=False,
        random_state=0,
        devices=devices,
    )
    return est.fit(X, y), X


def test_ensemble_members_split_over_devices_match_one_device():
    one, X = _fit("ensemble", 1, n_members=4)
    four, _ = _fit("ensemble", 4, n_members=4)
    kernel = four.posterior_.draws["net"][0]["w"]
    assert _held_by(kernel) == [1, 1, 1, 1]
    np.testing.assert_allclose(four.predict(X), one.predict(X), rtol=1e-5, atol=1e-5)
    lo1, hi1 = one.predict_interval(X)
    lo4, hi4 = four.predict_interval(X)
    np.testing.assert_allclose(lo4, lo1, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(hi4, hi1, rtol=1e-5, atol=1e-5)


def test_map_minibatch_split_over_devices_matches_one_device():
    one, X = _fit("map", 1)
    four, _ = _fit("map", 4)
    # Data parallel: the gradient's sum runs in another order, so equal up to rounding.
    np.testing.assert_allclose(four.predict(X), one.predict(X), rtol=1e-4, atol=1e-4)


def test_nuts_estimator_uses_all_devices_by_default():
    X, y = _data(40)
    est = px.BayesianRegressor(
        px.methods.NUTS(num_warmup=20, num_samples=20, num_chains=4),
        network=(3,),
        progress_bar=False,
        random_state=0,
    )
    with pytest.warns(UserWarning):  # 20 draws do not converge; not the point here
        est.fit(X, y)
    kernel = est.posterior_.draws["net"][0]["w"]
    assert len(kernel.sharding.device_set) == 4


@pytest.mark.parametrize(
    ("devices", "error", "match"),
    [
        (5, ValueError, "between 1 and the number of local devices"),
        (0, ValueError, "between 1"),
        ("cpu", TypeError, "jax.Device"),
        ([], TypeError, "non-empty list"),
    ],
)
def test_bad_devices_are_refused_by_name(devices, error, match):
    X, y = _data(20)
    est = px.BayesianRegressor(
        method=px.methods.MAP(training=px.methods.Training(num_epochs=1)),
        progress_bar=False,
        devices=devices,
    )
    with pytest.raises(error, match=match) as info:
        est.fit(X, y)
    assert "'devices'" in str(info.value)


@pytest.mark.parametrize("structure", ["kron", "full"])
def test_laplace_curvature_split_over_devices_matches_one_device(structure):
    one, X = _fit("laplace", 1, hessian_structure=structure)
    four, _ = _fit("laplace", 4, hessian_structure=structure)
    d1, d4 = one.diagnostics()["laplace"], four.diagnostics()["laplace"]
    np.testing.assert_allclose(
        d4["log_marginal_likelihood"], d1["log_marginal_likelihood"], rtol=1e-4
    )
    np.testing.assert_allclose(d4["prior_precision"], d1["prior_precision"], rtol=1e-3)
    # Predictions average sampled GLM draws: KFAC's eigenbases of nearly equal eigenvalues turn
    # with float rounding, so the same key gives other (equally distributed) draws.
    tolerance = 1e-4 if structure == "full" else 2e-2
    np.testing.assert_allclose(four.predict(X), one.predict(X), atol=tolerance)
