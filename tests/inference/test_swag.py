"""SWAG on a linear-Gaussian model: mean near the MAP, PSD covariance, right sample shapes."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import posterax as px
from posterax.inference import NetworkModel, TrainingSettings, fit_map, fit_swag
from posterax.inference.swag import largest_curvature
from posterax.models import MLP, GaussianLikelihood, RegressionHead


def test_swag_on_a_linear_model():
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.normal(size=(200, 3)), dtype=jnp.float32)
    y = X @ jnp.array([1.0, -1.0, 0.5]) + 0.3 + 0.5 * jnp.asarray(rng.normal(size=200))
    net = MLP((), "tanh", 1)
    model = NetworkModel(RegressionHead(net), GaussianLikelihood())
    settings = TrainingSettings(optax.adam(1e-2), num_epochs=300, progress_bar=False)
    post = fit_swag(
        jax.random.key(0),
        model,
        lambda k: net.init(k, 3),
        X,
        y,
        settings,
        swa_learning_rate=1e-2,
        num_collections=30,
        max_rank=10,
    )
    map_post = fit_map(jax.random.key(0), model, lambda k: net.init(k, 3), X, y, settings)
    dist = post.distribution
    map_flat = np.concatenate(
        [np.ravel(map_post.draws["net"][0]["b"]), np.ravel(map_post.draws["net"][0]["w"])]
    )
    # ravel_pytree orders dict keys alphabetically: b before w.
    posterior_sd = 0.5 / np.sqrt(200)
    np.testing.assert_allclose(np.asarray(dist.loc), map_flat, atol=3 * posterior_sd)
    cov = np.asarray(dist.covariance())
    assert np.all(np.linalg.eigvalsh(cov) > -1e-8)
    assert dist.deviations.shape == (10, 4)
    draws = post.sample(jax.random.key(1), 7)
    assert draws["net"][0]["w"].shape == (7, 3, 1) and draws["sigma"].shape == (7,)
    # The spread is of the order of the posterior sd, not zero and not huge.
    sd = np.sqrt(np.diag(cov))
    assert np.all(sd > 0.05 * posterior_sd) and np.all(sd < 20 * posterior_sd)


def test_largest_curvature_is_the_top_eigenvalue_of_the_dense_hessian():
    rng = np.random.default_rng(1)
    X = jnp.asarray(rng.normal(size=(300, 2)), dtype=jnp.float32)
    y = jnp.asarray(np.sin(2 * rng.normal(size=300)), dtype=jnp.float32)
    net = MLP((6,), "tanh", 1)
    model = NetworkModel(RegressionHead(net), GaussianLikelihood())
    params = model.init_params(net.init(jax.random.key(2), 2))
    loss = model.map_loss(X.shape[0])
    flat, unravel = ravel_pytree(params)
    dense = jax.hessian(lambda w: loss(unravel(w), jax.random.key(0), X, y))(flat)
    top = float(np.max(np.linalg.eigvalsh(np.asarray(dense, np.float64))))
    got = largest_curvature(loss, params, X, y, jax.random.key(3), iterations=200)
    assert got == pytest.approx(top, rel=1e-3)
    # a subset of the rows estimates the mean curvature over all of them
    part = largest_curvature(loss, params, X, y, jax.random.key(3), max_rows=150, iterations=200)
    assert part == pytest.approx(top, rel=0.3)


def test_auto_step_is_the_fixed_one_where_the_loss_is_flat_enough():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 2))
    y = (X[:, 0] + 0.5 * rng.normal(size=120) > 0).astype(int)  # overlapping classes
    method = px.methods.SWAG(num_collections=3)
    clf = px.BayesianClassifier(method, network=(8,), random_state=0).fit(X, y)
    assert clf.posterior_.info["swa_learning_rate"] == 1e-2
