"""KFAC (hessian_structure="kron") on networks of your own: the dense layers are found in the
network's jaxpr whatever the framework; the same MLP in NNX, Linen and Equinox gets the built-in
MLP's Kronecker factors (which test_laplace_* check against dense GGNs and known posteriors);
weights outside dense and convolution layers (norm scales) get the exact GGN diagonal, named in
a warning and in the posterior's info (convolutions themselves: tests/inference/laplace/
test_kfac_conv.py)."""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import posterax as px
from posterax.inference import NetworkModel
from posterax.inference.laplace import fit_laplace
from posterax.inference.laplace.dense_layers import find_dense_layers
from posterax.models import (
    MLP,
    CategoricalLikelihood,
    ClassificationHead,
    GaussianLikelihood,
    RegressionHead,
    WeightPrior,
)
from posterax.networks import as_network
from user_networks import NNXMLP, EqxMLP, LinenMLP, wave_data


def _weights(seed=3, n_in=1, n_out=1):
    return MLP((8,), "tanh", n_out).init(jax.random.key(seed), n_in)


def _nnx(weights, n_in, n_out):
    net = NNXMLP(n_in, n_out, nnx.Rngs(0))
    for layer, values in zip((net.l1, net.l2), weights, strict=True):
        layer.kernel[...] = values["w"]
        layer.bias[...] = values["b"]
    return net


def _eqx(weights, n_in, n_out):
    net = EqxMLP(n_in, n_out, jax.random.key(0))
    where = lambda m: (m.l1.weight, m.l1.bias, m.l2.weight, m.l2.bias)  # noqa: E731
    values = (weights[0]["w"].T, weights[0]["b"], weights[1]["w"].T, weights[1]["b"])
    return eqx.tree_at(where, net, values)


def _linen(weights, n_in, n_out):
    # LinenMLP creates its output layer first: Dense_0 is the output layer.
    params = {
        "Dense_0": {"kernel": weights[1]["w"], "bias": weights[1]["b"]},
        "Dense_1": {"kernel": weights[0]["w"], "bias": weights[0]["b"]},
    }
    return LinenMLP(n_out), params


def _own(framework, weights, X, n_out):
    n_in = X.shape[1]
    if framework == "linen":
        module, params = _linen(weights, n_in, n_out)
        adapter = as_network(module, np.asarray(X[:2]), jax.random.key(0), where="test")
        return adapter, params
    net = (_nnx if framework == "nnx" else _eqx)(weights, n_in, n_out)
    adapter = as_network(net, np.asarray(X[:2]), jax.random.key(0), where="test")
    return adapter, adapter.initial


def _evidence(post):
    return {k: np.asarray(post.info[k]) for k in ("log_marginal_likelihood", "prior_precision")}


@pytest.mark.parametrize("framework", ["nnx", "linen", "equinox"])
@pytest.mark.parametrize("task", ["regression", "classification"])
def test_kfac_on_the_same_mlp_in_any_framework_equals_the_builtin_mlps(framework, task):
    """Same weights, same data: the Kronecker factors, hence the evidence, the tuned prior
    precision and the predictive, equal the built-in MLP's (to float rounding)."""
    if task == "regression":
        X, y = wave_data()
        X = jnp.asarray((X - X.mean(0)) / X.std(0), jnp.float32)
        y, n_out, likelihood = jnp.asarray(y, jnp.float32), 1, GaussianLikelihood()
        head = RegressionHead
        extras = {"sigma": jnp.asarray(0.3, jnp.float32)}
    else:
        rng = np.random.default_rng(0)
        X = jnp.asarray(rng.normal(size=(90, 2)), jnp.float32)
        y, n_out, likelihood = jnp.asarray(rng.integers(0, 3, 90)), 3, CategoricalLikelihood()
        head, extras = ClassificationHead, {}
    weights = _weights(n_in=X.shape[1], n_out=n_out)
    prior = WeightPrior("normal", (1.0,))
    builtin = NetworkModel(head(MLP((8,), "tanh", n_out)), likelihood, prior)
    adapter, net = _own(framework, weights, X, n_out)
    own = NetworkModel(head(adapter), likelihood, prior)
    kw = {"hessian_structure": "kron", "pred_type": "glm", "prior_structure": "layer"}
    ref = fit_laplace(builtin, {"net": weights, **extras}, X, y, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every weight is in a dense layer: no fallback warning
        got = fit_laplace(own, {"net": net, **extras}, X, y, **kw)
    assert got.info["kron_fallback"] == {}
    assert len(got.distribution.factor.vec_a) == 2  # two Kronecker blocks
    mine = _evidence(got)
    if framework == "linen":  # its layers' groups come output layer first
        mine["prior_precision"] = mine["prior_precision"][::-1]
    for key, value in _evidence(ref).items():
        np.testing.assert_allclose(mine[key], value, rtol=2e-4, err_msg=key)
    if task == "regression":
        np.testing.assert_allclose(got.info["sigma"], ref.info["sigma"], rtol=2e-4)


class _ConvNet(nnx.Module):
    def __init__(self, rngs):
        self.conv = nnx.Conv(1, 4, kernel_size=(3, 3), rngs=rngs)
        self.norm = nnx.LayerNorm(4 * 6 * 6, rngs=rngs)
        self.dense = nnx.Linear(4 * 6 * 6, 2, rngs=rngs)

    def __call__(self, x):
        h = jax.nn.relu(self.conv(x)).reshape(x.shape[0], -1)
        return self.dense(self.norm(h))


def test_weights_outside_dense_and_convolution_layers_get_the_diagonal_and_are_named():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 6, 6, 1)).astype(np.float32)
    y = (X[:, :3].mean((1, 2, 3)) > X[:, 3:].mean((1, 2, 3))).astype(int)
    clf = px.BayesianClassifier(
        network=_ConvNet(nnx.Rngs(0)),
        method=px.methods.Laplace(
            structure="kron", training=px.methods.Training(num_epochs=30, learning_rate=1e-2)
        ),
        progress_bar=False,
        random_state=0,
    )
    with pytest.warns(
        UserWarning, match=r"factorises 2 dense or convolution.*\['norm'\]\['scale'\]"
    ):
        clf.fit(X, y)
    fallback = clf.posterior_.info["kron_fallback"]
    assert set(fallback) == {"['norm']['scale']", "['norm']['bias']"}
    curvature = clf.posterior_.distribution.factor
    n_kron = (4 * 6 * 6 * 2 + 2) + (3 * 3 * 1 * 4 + 4)  # the dense layer and the convolution
    assert int(np.sum([pos.shape[0] for pos in curvature.pos])) == n_kron
    probs = clf.predict_proba(X)
    assert np.all(np.isfinite(probs)) and np.mean(clf.predict(X) == y) > 0.8


def test_a_matrix_used_twice_is_not_a_dense_layer():
    def apply(leaves, X):
        (w,) = leaves
        return jnp.tanh(X @ w) @ w  # one matrix, two layers: no Kronecker factor

    scan = find_dense_layers(apply, [jnp.ones((3, 3))], jnp.ones((5, 3)))
    assert scan.layers == ()
    assert scan.fallback == ((0, "shared by 2 dense layers"),)
