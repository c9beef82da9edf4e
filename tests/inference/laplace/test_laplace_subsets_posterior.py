"""Weight subsets and the posterior distribution's invariants."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from posterax.inference.laplace import fit_laplace, laplace_posterior, laplace_state
from posterax.inference.network_model import NetworkModel
from posterax.models import MLP, GaussianLikelihood, RegressionHead


@pytest.fixture(scope="module")
def deep(make_model, small_data):
    X, y, _ = small_data
    model, params = make_model("regression")
    return model, params, X, y


def test_last_layer_equals_full_laplace_on_frozen_features(deep):
    model, params, X, y = deep
    post, _state = fit_laplace(
        model,
        params,
        X,
        y,
        hessian_structure="full",
        subset_of_weights="last_layer",
        prior_precision=2.0,
        tune=None,
        return_state=True,
    )
    first, last = params["net"]
    features = jnp.tanh(X @ first["w"] + first["b"])  # frozen at the MAP
    linear = NetworkModel(RegressionHead(MLP((), "tanh", 1)), GaussianLikelihood())
    post_lin, _state_lin = fit_laplace(
        linear,
        {"net": [last], "sigma": params["sigma"]},
        features,
        y,
        hessian_structure="full",
        prior_precision=2.0,
        tune=None,
        return_state=True,
    )
    np.testing.assert_allclose(
        post.distribution.covariance(), post_lin.distribution.covariance(), rtol=1e-4, atol=1e-7
    )
    assert post.info["n_laplace_params"] == last["w"].size + last["b"].size
    np.testing.assert_allclose(
        post.info["log_marginal_likelihood"], post_lin.info["log_marginal_likelihood"], rtol=1e-5
    )
    # Draws move only the last layer.
    draws = post.sample(jax.random.key(0), 4)
    np.testing.assert_array_equal(draws["net"][0]["w"], np.broadcast_to(first["w"], (4, 3, 5)))
    assert not np.allclose(draws["net"][1]["w"], last["w"])


@pytest.mark.slow
def test_subnetwork_mask_of_the_last_layer_is_last_layer(deep):
    model, params, X, y = deep
    mask = [
        jax.tree_util.tree_map(lambda _: False, params["net"][0]),
        jax.tree_util.tree_map(lambda _: True, params["net"][1]),
    ]
    kw = {"hessian_structure": "full", "prior_precision": 1.0, "tune": None}
    by_mask = fit_laplace(
        model, params, X, y, subset_of_weights="subnetwork", subnetwork_mask=mask, **kw
    )
    by_name = fit_laplace(model, params, X, y, subset_of_weights="last_layer", **kw)
    np.testing.assert_allclose(by_mask.distribution.covariance(), by_name.distribution.covariance())
    # Top-k by GGN diagonal picks the k largest diagonal entries.
    state, _ = laplace_state(
        model.apply_fn, model.likelihood, params, X, y, hessian_structure="diag"
    )
    top = fit_laplace(model, params, X, y, subset_of_weights="subnetwork", n_subnetwork=5, **kw)
    expected = np.sort(np.argsort(-np.asarray(state.curvature.h))[:5])
    np.testing.assert_array_equal(top.distribution.index, expected)


@pytest.mark.parametrize(
    "structure",
    [
        pytest.param("diag", marks=pytest.mark.slow),
        pytest.param("kron", marks=pytest.mark.slow),
        "full",
        pytest.param("lowrank", marks=pytest.mark.slow),
    ],
)
def test_distribution_moments_and_invariants(deep, structure):
    model, params, X, y = deep
    state, _ = laplace_state(
        model.apply_fn, model.likelihood, params, X, y, hessian_structure=structure, rank=5
    )
    dist = laplace_posterior(state, jnp.float32(3.0), 0.5)
    cov = np.asarray(dist.covariance())
    np.testing.assert_allclose(np.diag(cov), dist.variance(), rtol=1e-4, atol=1e-7)
    precision = np.linalg.inv(cov.astype(np.float64))
    np.testing.assert_allclose(np.linalg.slogdet(precision)[1], dist.log_det_precision(), rtol=1e-4)
    # The precision is scale * H + prior (lowrank: its rank-k part).
    dense = state.curvature.to_dense() / 0.5**2 + 3.0 * np.eye(cov.shape[0])
    np.testing.assert_allclose(precision, dense, rtol=2e-3, atol=2e-3 * np.abs(dense).max())
    key = jax.random.key(3)
    n = 4000
    theta = dist.sample_selected(key, n)
    z = (np.asarray(theta) - np.asarray(dist.map_selected)) / np.sqrt(dist.variance())
    # Standardised draws: mean 0 and variance 1 within Monte Carlo error.
    assert np.abs(z.mean(0)).max() < 5 / np.sqrt(n)
    assert np.abs(z.var(0) - 1).max() < 6 * np.sqrt(2 / n)
    same = jax.jit(dist.sample, static_argnums=1)(key, 3)
    np.testing.assert_allclose(same["net"][0]["w"], dist.sample(key, 3)["net"][0]["w"], atol=1e-5)
    assert dist.mean()["sigma"] == pytest.approx(0.5)
