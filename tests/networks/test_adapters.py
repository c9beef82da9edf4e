"""The adapters are exact (the same network written in NNX / Equinox gives the built-in MLP's
results), networks go back into their frameworks, and bad networks get clear errors."""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from sklearn.base import clone

import posterax as px
from posterax.inference import NetworkModel, TrainingSettings, fit_map
from posterax.methods import method_from_settings
from posterax.models import MLP, GaussianLikelihood, RegressionHead, WeightPrior
from posterax.networks import as_network
from posterax.networks.adapter import widest_activation
from posterax.predictive.chunking import PROBS
from user_networks import NNXMLP, EqxMLP, LinenMLP, Shifted, blob_data, wave_data


def _standardised(X):
    return (X - X.mean(axis=0)) / X.std(axis=0)


def _nnx_from(net, weights):
    """An NNX MLP holding the built-in MLP's ``weights`` ([{"w", "b"}, {"w", "b"}])."""
    for layer, values in zip((net.l1, net.l2), weights, strict=True):
        layer.kernel[...] = values["w"]
        layer.bias[...] = values["b"]
    return net


def _eqx_from(net, weights):
    """An Equinox MLP holding them (Equinox stores ``(out, in)`` matrices)."""
    where = lambda m: (m.l1.weight, m.l1.bias, m.l2.weight, m.l2.bias)  # noqa: E731
    values = (weights[0]["w"].T, weights[0]["b"], weights[1]["w"].T, weights[1]["b"])
    return eqx.tree_at(where, net, values)


@pytest.mark.parametrize("framework", ["nnx", "equinox"])
def test_map_on_the_same_network_equals_the_builtin_mlp(framework):
    """Same initial weights, same minibatches, same loss: the trained networks agree to float
    rounding, so the adapters add nothing and lose nothing."""
    X, y = wave_data()
    X = jnp.asarray(_standardised(X), jnp.float32)
    y = jnp.asarray(y, jnp.float32)
    mlp = MLP((8,), "tanh", 1)
    start = mlp.init(jax.random.key(3), 1)
    user = _nnx_from(NNXMLP(1, 1, nnx.Rngs(0)), start)
    if framework == "equinox":
        user = _eqx_from(EqxMLP(1, 1, jax.random.key(0)), start)
    adapter = as_network(user, np.asarray(X[:2]), jax.random.key(0), where="test")
    settings = TrainingSettings(optax.adam(1e-2), num_epochs=40, batch_size=16, progress_bar=False)
    prior = WeightPrior("normal", (1.0,))
    builtin = fit_map(
        jax.random.key(1),
        NetworkModel(RegressionHead(mlp), GaussianLikelihood(), prior),
        lambda k: start,
        X,
        y,
        settings,
    )
    own = fit_map(
        jax.random.key(1),
        NetworkModel(RegressionHead(adapter), GaussianLikelihood(), prior),
        lambda k: adapter.initial,
        X,
        y,
        settings,
    )
    f_builtin = builtin.apply_fn(builtin.mean(), X)
    f_own = own.apply_fn(own.mean(), X)
    assert float(jnp.max(jnp.abs(f_builtin))) > 0.5  # it learned something
    np.testing.assert_allclose(f_own, f_builtin, atol=2e-4)
    np.testing.assert_allclose(own.mean()["sigma"], builtin.mean()["sigma"], rtol=1e-4)


def test_nuts_on_the_same_nnx_network_equals_the_builtin_mlp():
    """NNX's params ({l1: {bias, kernel}, l2: ...}) line up leaf for leaf with the MLP's
    ([{b, w}, {b, w}]): NUTS from the same key gives the same draws, to float rounding."""
    X, y = wave_data()
    Xs = _standardised(X)
    settings = {
        "method": px.methods.NUTS(num_warmup=100, num_samples=50),
        "progress_bar": False,
        "random_state": 0,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        builtin = px.BayesianRegressor(
            network=px.networks.MLP(hidden=(8,), activation="tanh"), **settings
        ).fit(Xs, y)
        own = px.BayesianRegressor(network=NNXMLP(1, 1, nnx.Rngs(0)), **settings).fit(Xs, y)
    np.testing.assert_allclose(own.predict(Xs), builtin.predict(Xs), atol=1e-3)
    sigma_own = np.asarray(own.posterior_.draws["sigma"])
    np.testing.assert_allclose(sigma_own, np.asarray(builtin.posterior_.draws["sigma"]), atol=1e-3)


def test_a_draw_goes_back_into_the_users_framework():
    X, y = wave_data()
    net = NNXMLP(1, 1, nnx.Rngs(0))
    reg = px.BayesianRegressor(
        network=net,
        method=px.methods.MAP(training=px.methods.Training(num_epochs=50)),
        progress_bar=False,
        random_state=0,
    ).fit(X, y)
    adapter = reg.posterior_.apply_fn.network
    trained = adapter.to_user(reg.posterior_.mean()["net"])
    assert isinstance(trained, NNXMLP) and trained is not net
    # The module's own call, in the units the estimator standardised y to.
    ours = (np.asarray(trained(jnp.asarray(X, jnp.float32)))[:, 0]) * reg.y_scale_ + reg.y_mean_
    np.testing.assert_allclose(ours, reg.predict(X), rtol=1e-4, atol=1e-4)
    eqx_reg = px.BayesianRegressor(
        network=EqxMLP(1, 1, jax.random.key(0)),
        method=px.methods.Ensemble(num_members=2, training=px.methods.Training(num_epochs=5)),
        progress_bar=False,
    ).fit(X, y)
    member = jax.tree_util.tree_map(lambda a: a[0], eqx_reg.posterior_.draws["net"])
    assert isinstance(eqx_reg.posterior_.apply_fn.network.to_user(member), EqxMLP)


def test_images_pass_through_untouched():
    """A CNN on N x 8 x 8 x 1 digits: no flattening, no standardisation; predict checks the
    input shape against the one seen at fit time."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    keep = digits.target < 3
    images = (digits.images[keep] / 16.0)[..., None][:300]
    labels = digits.target[keep][:300]

    class CNN(nnx.Module):
        def __init__(self, rngs):
            self.conv = nnx.Conv(1, 4, (3, 3), rngs=rngs)
            self.out = nnx.Linear(4 * 8 * 8, 3, rngs=rngs)

        def __call__(self, x):
            h = jax.nn.relu(self.conv(x))
            return self.out(h.reshape(h.shape[0], -1))

    clf = px.BayesianClassifier(
        network=CNN(nnx.Rngs(0)),
        method=px.methods.Laplace(structure="diag", training=px.methods.Training(num_epochs=10)),
        progress_bar=False,
        random_state=0,
    ).fit(images[:200], labels[:200])
    assert clf.input_shape_ == (8, 8, 1)
    assert np.mean(clf.predict(images[200:]) == labels[200:]) > 0.9
    # The memory plan sees the conv layer's 8 x 8 x 4 activations per row, and predictions in
    # chunks of a few rows equal the unchunked ones.
    assert widest_activation(clf.posterior_.apply_fn.network, (8, 8, 1)) == 8 * 8 * 4
    whole = clf.predict_proba(images[200:])
    leaves = jax.tree_util.tree_leaves(clf.posterior_.mean())
    draws_bytes = 1000 * 4 * sum(leaf.size for leaf in leaves)  # the parameter draws
    clf.set_params(max_memory=draws_bytes + 2 * 7 * clf._prediction_bytes_per_row(PROBS))
    np.testing.assert_allclose(clf.predict_proba(images[200:]), whole, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match=r"'X' parameter .* input shape seen at fit time"):
        clf.predict(images[200:, :, :4])


def test_clone_and_grid_search_keep_the_network():
    from sklearn.model_selection import GridSearchCV

    X, y = wave_data()
    est = px.BayesianRegressor(
        network=LinenMLP(1),
        method=px.methods.Ensemble(training=px.methods.Training(num_epochs=20)),
        progress_bar=False,
        random_state=0,
    )
    twin = clone(est)
    assert isinstance(twin.network, LinenMLP)
    search = GridSearchCV(est, {"method__num_members": [1, 2]}, cv=2).fit(X, y)
    assert search.best_params_["method__num_members"] in (1, 2)


# --- clear errors ------------------------------------------------------------------------------


def _fit(network, method="map", cls=px.BayesianRegressor, X=None, y=None):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 1)) if X is None else X
    y = rng.normal(size=20) if y is None else y
    method = method_from_settings(method, {"num_epochs": 2}, ignore_unknown=True)
    return cls(network=network, method=method, progress_bar=False).fit(X, y)


def test_unknown_kind_of_network_is_refused():
    with pytest.raises(ValueError, match=r"'network' parameter .* Got an object of type .*dict"):
        _fit({"w": np.ones(3)})


def test_output_shape_that_does_not_fit_the_likelihood_is_refused():
    with pytest.raises(ValueError, match=r"must output 1 value\(s\) per example .* shape \(2, 3\)"):
        _fit(NNXMLP(1, 3, nnx.Rngs(0)))
    with pytest.raises(ValueError, match=r"must output 2 value\(s\) .*'heteroscedastic'"):
        px.BayesianRegressor(
            network=NNXMLP(1, 1, nnx.Rngs(0)), method="map", likelihood="heteroscedastic"
        ).fit(np.ones((5, 1)), np.arange(5.0))


def test_network_without_trainable_parameters_is_refused():
    with pytest.raises(ValueError, match=r"must have trainable parameters"):
        _fit(px.networks.Functional(lambda p, x: x, {}))


def test_network_that_fails_on_the_inputs_is_refused():
    with pytest.raises(ValueError, match=r"must accept the inputs X: calling the nnx network"):
        _fit(NNXMLP(4, 1, nnx.Rngs(0)))  # built for 4 features, given 1


def test_mc_dropout_needs_dropout_layers():
    with pytest.raises(ValueError, match=r"must contain dropout layers for method='mc_dropout'"):
        _fit(NNXMLP(1, 1, nnx.Rngs(0)), method="mc_dropout")


def test_batchnorm_beyond_nnx_is_refused_with_the_reason():
    with pytest.raises(ValueError, match=r"Equinox state .* not supported yet"):
        _fit(eqx.nn.BatchNorm(1, "batch"))


@pytest.mark.parametrize("network", [(6,), px.networks.MLP(hidden=(6,), activation="tanh")])
def test_the_builtin_mlp_given_as_network_saves_and_loads(network, tmp_path):
    X, y = wave_data()
    reg = px.BayesianRegressor(
        network=network,
        method=px.methods.MAP(training=px.methods.Training(num_epochs=20)),
        progress_bar=False,
        random_state=0,
    ).fit(X, y)
    assert reg.posterior_.apply_fn.network.hidden == (6,)
    reg.save(tmp_path / "model")
    loaded = px.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))
    assert loaded.network == network  # as given: hidden sizes, or the MLP


def test_networks_differing_only_in_constants_are_different_networks():
    """Constants are baked into the compiled programs: two such networks must never share one."""
    example = np.zeros((2, 1), np.float32)
    a = as_network(Shifted(0.0, nnx.Rngs(0)), example, jax.random.key(0), where="t")
    b = as_network(Shifted(100.0, nnx.Rngs(0)), example, jax.random.key(0), where="t")
    assert a != b and hash(a) != hash(b)
    run = jax.jit(lambda net, x: net(net.initial, x), static_argnums=0)
    np.testing.assert_allclose(run(b, example) - run(a, example), 100.0, rtol=1e-6)


def test_a_network_must_keep_the_batch_axis():
    mean_over_batch = px.networks.Functional(
        lambda p, x: jnp.mean(x @ p["w"], axis=0, keepdims=True), {"w": jnp.ones((1, 1))}
    )
    with pytest.raises(ValueError, match=r"one row of outputs per example. Got .* \(1, 1\)"):
        _fit(mean_over_batch)


def test_dropout_that_cannot_run_with_our_key_is_refused_before_training():
    class NoRngs(nnx.Module):
        def __init__(self, rngs):
            self.lin = nnx.Linear(1, 1, rngs=rngs)
            self.drop = nnx.Dropout(0.5)  # no rngs: cannot draw masks

        def __call__(self, x):
            return self.drop(self.lin(x))

    with pytest.raises(ValueError, match=r"'network' parameter .* dropout layers with a key"):
        _fit(NoRngs(nnx.Rngs(0)), method="mc_dropout")


def test_equinox_dropout_built_in_inference_mode_still_draws():
    """MC dropout switches the user's dropout on, whatever mode the module was left in."""
    X, y = wave_data()
    net = eqx.nn.inference_mode(EqxMLP(1, 1, jax.random.key(0), dropout=0.2))
    reg = px.BayesianRegressor(
        network=net,
        method=px.methods.MCDropout(num_samples=20, training=px.methods.Training(num_epochs=5)),
        progress_bar=False,
    ).fit(X, y)
    draws = np.asarray(reg.predict_samples(X[:5]).mean)
    assert np.std(draws, axis=0).min() > 0  # the draws differ


def test_last_layer_laplace_on_a_user_network_equals_the_builtin_mlps():
    """The last layer found by tracing the NNX network is the built-in MLP's last layer: on the
    same MAP weights the last-layer Laplace evidence and tuned hyperparameters agree."""
    from posterax.inference.laplace import fit_laplace
    from posterax.networks.last_layer import last_layer_mask

    X, y = wave_data()
    X = jnp.asarray(_standardised(X), jnp.float32)
    y = jnp.asarray(y, jnp.float32)
    mlp = MLP((8,), "tanh", 1)
    prior = WeightPrior("normal", (1.0,))
    builtin = NetworkModel(RegressionHead(mlp), GaussianLikelihood(), prior)
    settings = TrainingSettings(optax.adam(1e-2), num_epochs=40, batch_size=16, progress_bar=False)
    start = mlp.init(jax.random.key(3), 1)
    map_post = fit_map(jax.random.key(1), builtin, lambda k: start, X, y, settings)
    trained = map_post.mean()
    adapter = as_network(
        _nnx_from(NNXMLP(1, 1, nnx.Rngs(0)), trained["net"]),
        np.asarray(X[:2]),
        jax.random.key(0),
        where="test",
    )
    mask = last_layer_mask(adapter, (1,), "test")
    assert mask == {"l1": {"bias": False, "kernel": False}, "l2": {"bias": True, "kernel": True}}
    own = NetworkModel(RegressionHead(adapter), GaussianLikelihood(), prior)
    common = {"hessian_structure": "full", "pred_type": "glm"}
    ref = fit_laplace(builtin, trained, X, y, subset_of_weights="last_layer", **common)
    got = fit_laplace(
        own,
        {**trained, "net": adapter.initial},
        X,
        y,
        subset_of_weights="subnetwork",
        subnetwork_mask=mask,
        **common,
    )
    for key in ("log_marginal_likelihood", "prior_precision", "sigma"):
        np.testing.assert_allclose(got.info[key], ref.info[key], rtol=1e-4, err_msg=key)
    assert got.info["n_laplace_params"] == ref.info["n_laplace_params"] == 9


def test_last_layer_laplace_on_user_networks_of_every_framework():
    X, y = blob_data()
    for network in (NNXMLP(2, 3, nnx.Rngs(0)), EqxMLP(2, 3, jax.random.key(0)), LinenMLP(3)):
        clf = px.BayesianClassifier(
            network=network,
            method=px.methods.Laplace(
                structure="full",
                subset="last_layer",
                training=px.methods.Training(num_epochs=100, learning_rate=1e-2),
            ),
            progress_bar=False,
            random_state=0,
        ).fit(X, y)
        laplace = clf.diagnostics()["laplace"]
        assert laplace["subset_of_weights"] == "last_layer"
        assert laplace["n_laplace_params"] == 8 * 3 + 3  # the 8 -> 3 output layer
        assert np.mean(clf.predict(X) == y) > 0.9
