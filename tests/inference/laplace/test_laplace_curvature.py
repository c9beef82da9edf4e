"""Curvature structures agree with each other and with brute force where they should."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from posterax.inference.laplace import laplace_state
from posterax.inference.network_model import NetworkModel
from posterax.models import MLP, CategoricalLikelihood, ClassificationHead


def _state(model, params, X, y, structure, **kw):
    return laplace_state(
        model.apply_fn, model.likelihood, params, X, y, hessian_structure=structure, **kw
    )[0]


def _target(small_data, task):
    X, y_reg, y_cls = small_data
    return X, (y_cls if task == "classification" else y_reg)


def _brute_ggn(model, params, X, y, task):
    """sum_n J_n^T Lambda_n J_n with dense per-example Jacobians and output Hessians."""
    flat, unravel = ravel_pytree(params["net"])

    def f(theta, x):
        out = model.apply_fn({**params, "net": unravel(theta)}, x[None])[0]
        return jnp.atleast_1d(out)

    def nll(out, y_n):
        p = {**params, "sigma": jnp.float32(1.0)} if "sigma" in params else params
        out = out[0] if task == "regression" else out
        return -model.likelihood.log_prob(
            p, jnp.atleast_1d(out)[None] if task != "regression" else out[None], y_n[None]
        )[0]

    @jax.jit
    def one(x, y_n):
        J = jax.jacobian(f)(flat, x)
        out = f(flat, x)
        lam = jax.hessian(nll)(out, y_n)
        if task == "heteroscedastic":  # the Fisher, not the Hessian, in the raw outputs
            s = jax.nn.softplus(out[1]) + model.likelihood.min_scale
            lam = jnp.diag(jnp.stack([1 / s**2, 2 * jax.nn.sigmoid(out[1]) ** 2 / s**2]))
        return J.T @ lam @ J

    total = jnp.sum(jax.vmap(one)(jnp.asarray(X), jnp.asarray(y)), axis=0)
    return np.asarray(total)


@pytest.mark.parametrize(
    "task",
    [
        pytest.param("regression", marks=pytest.mark.slow),
        "classification",
        pytest.param("heteroscedastic", marks=pytest.mark.slow),
    ],
)
def test_full_ggn_matches_brute_force_and_diag(make_model, small_data, task):
    model, params = make_model(task)
    X, y = _target(small_data, task)
    full = _state(model, params, X, y, "full", batch_size=8).curvature.H
    np.testing.assert_allclose(full, _brute_ggn(model, params, X, y, task), rtol=2e-4, atol=2e-5)
    # Exact diagonal from layer inputs / output gradients (MLP) and from per-example vjps.
    diag = _state(model, params, X, y, "diag", batch_size=8).curvature.h
    np.testing.assert_allclose(diag, np.diag(full), rtol=1e-4, atol=1e-6)
    wrapped = NetworkModel(lambda p, x: model.apply_fn(p, x), model.likelihood)  # not tapped
    diag_generic = _state(wrapped, params, X, y, "diag", batch_size=8).curvature.h
    np.testing.assert_allclose(diag_generic, np.diag(full), rtol=1e-4, atol=1e-6)


def test_kfac_equals_full_ggn_for_a_single_layer_under_gaussian_noise(make_model, small_data):
    # One dense layer, Gaussian likelihood: every output Hessian is 1/sigma^2, so
    # sum_n x~ x~^T (x) g g^T = (sum x~ x~^T) (x) G exactly (any N).
    X, y, _ = small_data
    model, params = make_model("regression", hidden=())
    kron = _state(model, params, X, y, "kron", batch_size=7).curvature.to_dense()
    full = _state(model, params, X, y, "full").curvature.H
    np.testing.assert_allclose(kron, full, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_kfac_is_an_approximation_when_output_hessians_vary(small_data):
    X, _, y = small_data
    net = MLP((), "tanh", 3)
    model = NetworkModel(ClassificationHead(net), CategoricalLikelihood())
    params = {"net": net.init(jax.random.key(0), 3)}
    kron = _state(model, params, X, y, "kron").curvature.to_dense()
    full = _state(model, params, X, y, "full").curvature.H
    assert np.linalg.norm(kron - full) / np.linalg.norm(full) > 1e-2
    np.testing.assert_allclose(np.trace(kron), np.trace(full), rtol=0.5)  # same scale


@pytest.mark.slow
def test_empirical_fisher_diag_is_sum_of_squared_gradients(make_model, small_data):
    X, _, y = small_data
    model, params = make_model("classification")
    diag = _state(model, params, X, y, "diag", curvature="ef").curvature.h
    flat, unravel = ravel_pytree(params["net"])

    def log_lik(theta, x, y_n):
        return model.likelihood.log_prob(
            {"net": unravel(theta)}, model.apply_fn({"net": unravel(theta)}, x[None]), y_n[None]
        )[0]

    grads = jax.vmap(jax.grad(log_lik), (None, 0, 0))(flat, X, y)
    np.testing.assert_allclose(diag, np.sum(grads**2, axis=0), rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_exact_hessian_of_a_linear_gaussian_model_is_the_ggn(make_model, linear_data):
    X, y = linear_data
    model, params = make_model("regression", hidden=(), n_features=2)
    hess = _state(model, params, X, y, "full", curvature="hessian").curvature.H
    ggn = _state(model, params, X, y, "full").curvature.H
    np.testing.assert_allclose(hess, ggn, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_lowrank_recovers_the_top_eigenpairs(make_model, small_data):
    X, _, y = small_data
    model, params = make_model("classification")
    full = _state(model, params, X, y, "full").curvature
    low = _state(model, params, X, y, "lowrank", rank=4, batch_size=16).curvature
    top = np.sort(np.asarray(full.eigvals))[::-1][:4]
    np.testing.assert_allclose(np.sort(np.asarray(low.lam))[::-1], top, rtol=1e-2)
    # U spans the top eigenvectors: H U = U diag(lam).
    np.testing.assert_allclose(full.H @ low.U, low.U * low.lam, atol=1e-2 * top[0])


@pytest.mark.slow
def test_minibatch_size_does_not_change_the_curvature(make_model, small_data):
    X, y, _ = small_data
    model, params = make_model("regression")
    one = _state(model, params, X, y, "kron", batch_size=30).curvature
    many = _state(model, params, X, y, "kron", batch_size=4).curvature
    np.testing.assert_allclose(one.to_dense(), many.to_dense(), rtol=1e-4, atol=1e-5)
