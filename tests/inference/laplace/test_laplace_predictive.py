"""Linearised (GLM) predictions: the jvp apply_fn, closed-form variances and probit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from posterax.inference.laplace import fit_laplace, function_space, glm_predictive
from posterax.predictive.sampling import predictive_samples


@pytest.fixture(scope="module")
def regression(make_model, small_data):
    X, y, _ = small_data
    model, params = make_model("regression")
    post = fit_laplace(
        model, params, X, y, hessian_structure="full", prior_precision=1.0, tune=None
    )
    return model, params, post, X


def test_linearised_apply_is_the_network_at_the_map_and_linear_around_it(regression):
    model, params, post, X = regression
    lin = post.apply_fn
    np.testing.assert_allclose(lin(params, X), model.apply_fn(params, X), rtol=1e-6)
    flat, unravel = ravel_pytree(params["net"])
    step = 0.3 * jax.random.normal(jax.random.key(0), flat.shape)
    moved = {**params, "net": unravel(flat + step)}
    twice = {**params, "net": unravel(flat + 2 * step)}
    # Linear: f(2 step) - f(0) = 2 (f(step) - f(0)), unlike the network itself.
    np.testing.assert_allclose(
        lin(twice, X) - lin(params, X), 2 * (lin(moved, X) - lin(params, X)), atol=1e-4
    )
    assert not np.allclose(
        model.apply_fn(twice, X) - model.apply_fn(params, X),
        2 * (model.apply_fn(moved, X) - model.apply_fn(params, X)),
        atol=1e-3,
    )


def test_closed_form_regression_matches_brute_force_and_monte_carlo(regression):
    model, params, post, X = regression
    out = glm_predictive(post, X[:6], batch_size=4)
    assert out.mean.shape == out.scale.shape == (1, 6)  # one draw, like every predictive
    flat, unravel = ravel_pytree(params["net"])
    J = jax.jacobian(lambda t: model.apply_fn({**params, "net": unravel(t)}, X[:6]))(flat)
    f_var = np.einsum("np,pq,nq->n", J, post.distribution.covariance(), J)
    _, cov = function_space(post, X[:6], batch_size=4)
    np.testing.assert_allclose(cov[:, 0, 0], f_var, rtol=1e-4)
    np.testing.assert_allclose(out.scale[0], np.sqrt(f_var + 0.25), rtol=1e-4)
    # Monte Carlo through the ordinary predictive path (linearised apply_fn): same moments.
    pred = predictive_samples(post, X[:6], jax.random.key(1), 4000)
    np.testing.assert_allclose(pred.mean.mean(0), out.mean[0], atol=5 * np.sqrt(f_var.max() / 4000))
    np.testing.assert_allclose(pred.mean.var(0), f_var, rtol=0.15)


def test_probit_classification(make_model, small_data):
    X, _, y = small_data
    model, params = make_model("classification")
    post = fit_laplace(
        model, params, X, y, hessian_structure="kron", prior_precision=1.0, tune=None
    )
    probs = glm_predictive(post, X).probs()[0]
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    map_probs = jax.nn.softmax(model.apply_fn(params, X))
    # Uncertainty pulls probabilities toward uniform: lower max-probability than the MAP.
    assert np.all(probs.max(1) <= map_probs.max(1) + 1e-6)
    assert np.mean(probs.max(1) < map_probs.max(1) - 1e-3) > 0.5
    mc = predictive_samples(post, X, jax.random.key(2), 2000).probs().mean(0)
    assert np.abs(mc - probs).max() < 0.06  # probit is close to the MC GLM predictive
    bridge = glm_predictive(post, X, link_approx="bridge").probs()[0]
    np.testing.assert_allclose(bridge.sum(1), 1.0, rtol=1e-5)


@pytest.mark.slow
def test_nn_predictive_uses_the_network(make_model, small_data):
    X, y, _ = small_data
    model, params = make_model("heteroscedastic")
    post = fit_laplace(model, params, X, y, hessian_structure="diag", pred_type="nn")
    assert post.apply_fn is model.apply_fn
    pred = predictive_samples(post, X[:5], jax.random.key(0), 20)
    assert pred.mean.shape == (20, 5) and bool(jnp.all(pred.scale > 0))
    assert post.info["sigma"] is None  # heteroscedastic: no noise to tune
