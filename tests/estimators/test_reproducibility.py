import jax
import numpy as np
import pytest

import posterax as px


def test_same_random_state_gives_identical_nuts_draws(seed_data):
    X, y, _ = seed_data
    kw = {"method": px.methods.NUTS(num_warmup=150, num_samples=200)}
    a = px.BayesianLinearRegression(random_state=7, **kw).fit(X, y)
    b = px.BayesianLinearRegression(random_state=7, **kw).fit(X, y)
    c = px.BayesianLinearRegression(random_state=8, **kw).fit(X, y)
    for name in ("intercept", "coef", "sigma"):
        np.testing.assert_array_equal(a.posterior_.draws[name], b.posterior_.draws[name])
    assert not np.array_equal(a.posterior_.draws["coef"], c.posterior_.draws["coef"])


def test_exact_predictive_draws_are_reproducible(seed_data):
    X, y, _ = seed_data
    a = px.BayesianLinearRegression(random_state=1).fit(X, y)
    b = px.BayesianLinearRegression(random_state=1).fit(X, y)
    np.testing.assert_array_equal(a.predict_samples(X, 50).mean, b.predict_samples(X, 50).mean)
    np.testing.assert_array_equal(a.predict_samples(X, 50).mean, a.predict_samples(X, 50).mean)
    other = a.predict_samples(X, 50, rng_key=jax.random.key(123))
    assert not np.array_equal(other.mean, a.predict_samples(X, 50).mean)


def test_posterior_sample_jit_matches_eager(seed_data):
    """Stored draws are pushed through the model identically with and without jit.

    (The exact posterior samples in NumPy from its key, so it is not traced under jit.)"""
    X, y, _ = seed_data
    kw = {"method": px.methods.NUTS(num_warmup=100, num_samples=100), "random_state": 2}
    with pytest.warns(UserWarning):  # 100 draws: flagged as too few, as it should be
        post = px.BayesianLinearRegression(**kw).fit(X, y).posterior_
    key = jax.random.key(0)
    eager = px.predictive.predictive_samples(post, X, key, 16)
    jitted = jax.jit(lambda k: px.predictive.predictive_samples(post, X, k, 16))(key)
    np.testing.assert_allclose(eager.mean, jitted.mean, rtol=1e-5)
