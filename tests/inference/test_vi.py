"""VI against the exact Gaussian posterior of Bayesian linear regression (a network with no
hidden layer): mean-field gets the means right and underestimates variances; a low-rank +
diagonal q with enough rank recovers the correlated variances; a KL weight below 1 gives the
mean-field optimum of the tempered posterior. Then the pieces that make VI work on networks:
the MAP start, the KL warm-up, the Monte Carlo average, and their settings on px.methods.VI."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

from posterax.inference import NetworkModel, TrainingSettings, fit_map, fit_vi
from posterax.inference.vi import (
    INIT_SCALE,
    LowRankELBO,
    MeanFieldELBO,
    Unraveler,
    warmup_optimizer,
)
from posterax.models import MLP, GaussianLikelihood, RegressionHead, WeightPrior

PRIOR_SCALE = 1.0


@pytest.fixture(scope="module")
def correlated_data():
    rng = np.random.default_rng(3)
    n = 60
    z = rng.normal(size=(n, 1))
    # Two strongly correlated features -> a strongly correlated posterior.
    X = np.hstack([z + 0.15 * rng.normal(size=(n, 1)), z + 0.15 * rng.normal(size=(n, 1))])
    y = X @ np.array([1.0, -0.5]) + 0.3 + 0.5 * rng.normal(size=n)
    return X.astype(np.float32), y.astype(np.float32)


def _exact(X, y, sigma, kl_weight=1.0):
    """Gaussian posterior of (w, b) for known noise sd ``sigma`` and a N(0, 1) prior; with
    ``kl_weight`` the tempered one, likelihood ** (1 / kl_weight) x prior."""
    phi = np.hstack([X, np.ones((X.shape[0], 1))]).astype(np.float64)
    precision = phi.T @ phi / (kl_weight * sigma**2) + np.eye(phi.shape[1]) / PRIOR_SCALE**2
    cov = np.linalg.inv(precision)
    return cov @ phi.T @ y / (kl_weight * sigma**2), cov, precision


def _fit(X, y, family, **kwargs):
    net = MLP((), "tanh", 1)
    model = NetworkModel(
        RegressionHead(net), GaussianLikelihood(), WeightPrior("normal", (PRIOR_SCALE,))
    )
    settings = TrainingSettings(
        optax.adam(optax.cosine_decay_schedule(2e-2, 4000, alpha=0.01)),
        num_epochs=4000,
        batch_size=X.shape[0],
        progress_bar=False,
    )
    return fit_vi(
        jax.random.key(0),
        model,
        lambda k: net.init(k, 2),
        jnp.asarray(X),
        jnp.asarray(y),
        settings,
        family=family,
        rank=3,
        **{"kl_weight": 1.0, **kwargs},  # the proper posterior, unless a test asks otherwise
    )


@pytest.fixture(scope="module")
def fits(correlated_data):
    """Each family fitted on first use (so each test's setup holds one fit)."""
    X, y = correlated_data

    class Fits(dict):
        def __missing__(self, family):
            self[family] = _fit(X, y, family)
            return self[family]

    return Fits()


def _moments(posterior):
    draws = posterior.sample(jax.random.key(1), 20000)
    layer = draws["net"][0]
    flat = np.hstack([np.asarray(layer["w"])[:, :, 0], np.asarray(layer["b"])])
    return flat.mean(axis=0), flat.var(axis=0), float(posterior.mean()["sigma"])


def test_meanfield_means_match_exact_and_variances_are_the_inverse_precision_diagonal(
    fits, correlated_data
):
    X, y = correlated_data
    mean, var, sigma = _moments(fits["meanfield"])
    exact_mean, exact_cov, precision = _exact(X, y, sigma)
    np.testing.assert_allclose(mean, exact_mean, atol=0.05)
    # The mean-field optimum for a Gaussian target: variance 1 / diag(precision)...
    np.testing.assert_allclose(var, 1 / np.diag(precision), rtol=0.15)
    # ...which underestimates the true marginal variances of the correlated weights.
    assert np.all(var[:2] < 0.5 * np.diag(exact_cov)[:2])


def test_lowrank_variances_are_closer_to_exact_than_meanfield(fits, correlated_data):
    X, y = correlated_data
    _, mf_var, _ = _moments(fits["meanfield"])
    lr_mean, lr_var, sigma = _moments(fits["lowrank"])
    exact_mean, exact_cov, _ = _exact(X, y, sigma)
    exact_var = np.diag(exact_cov)
    np.testing.assert_allclose(lr_mean, exact_mean, atol=0.08)
    np.testing.assert_allclose(lr_var, exact_var, rtol=0.25)
    assert np.sum(np.abs(lr_var - exact_var)) < 0.5 * np.sum(np.abs(mf_var - exact_var))


def test_tempered_meanfield_is_the_mean_field_optimum_of_the_tempered_posterior(
    correlated_data,
):
    """kl_weight=0.3: q's means are the mean of likelihood^(1/0.3) x prior and its variances
    1 / diag of that posterior's precision (the default kl_weight, checked by its formula)."""
    X, y = correlated_data
    mean, var, sigma = _moments(_fit(X, y, "meanfield", kl_weight=0.3))
    exact_mean, _, precision = _exact(X, y, sigma, kl_weight=0.3)
    _, _, untempered = _exact(X, y, sigma)
    np.testing.assert_allclose(mean, exact_mean, atol=0.05)
    np.testing.assert_allclose(var, 1 / np.diag(precision), rtol=0.15)
    assert np.all(var < 0.5 * (1 / np.diag(untempered)))  # not the weight-1 variances


def _linear_model():
    net = MLP((), "tanh", 1)
    model = NetworkModel(
        RegressionHead(net), GaussianLikelihood(), WeightPrior("normal", (PRIOR_SCALE,))
    )
    return net, model


def test_map_start_is_the_map_of_the_same_key_and_settings(correlated_data):
    """init="map": q's mean starts at fit_map's result for a quarter of the epochs (same key,
    same driver). An optimiser that moves only the MAP's weights ("net", "log_sigma") and the
    noise leaves q's mean and sds where they start, so the fitted q shows the start."""
    X, y = (jnp.asarray(a) for a in correlated_data)
    net, model = _linear_model()

    def label(params):
        return {
            k: jax.tree_util.tree_map(lambda _, k=k: k in ("net", "log_sigma"), v)
            for k, v in params.items()
        }

    frozen_q = optax.multi_transform({True: optax.adam(5e-2), False: optax.set_to_zero()}, label)
    settings = TrainingSettings(frozen_q, num_epochs=40, batch_size=20, progress_bar=False)
    post = fit_vi(jax.random.key(4), model, lambda k: net.init(k, 2), X, y, settings)
    map_settings = TrainingSettings(frozen_q, num_epochs=10, batch_size=20, progress_bar=False)
    mode = fit_map(jax.random.key(4), model, lambda k: net.init(k, 2), X, y, map_settings)
    loc = post.distribution.loc[0]
    np.testing.assert_allclose(loc["w"], mode.draws["net"][0]["w"][0], rtol=1e-6)
    np.testing.assert_allclose(loc["b"], mode.draws["net"][0]["b"][0], rtol=1e-6)
    assert abs(float(mode.draws["net"][0]["w"][0, 0, 0])) > 0.1  # the MAP did move
    scale = post.distribution.scale[0]["w"]
    np.testing.assert_allclose(scale, INIT_SCALE, rtol=1e-5)
    assert post.info["map_epochs_run"] == 10
    random_start = fit_vi(
        jax.random.key(4), model, lambda k: net.init(k, 2), X, y, settings, init="random"
    )
    assert not np.allclose(random_start.distribution.loc[0]["w"], loc["w"])


def test_kl_warmup_ramp_is_linear_and_reaches_one():
    """The ramp leaf is t / steps at step t, 1 from then on, whatever its gradient; the other
    leaves follow the wrapped optimiser."""
    optimizer = warmup_optimizer(optax.sgd(0.1), 4)
    params = {"loc": jnp.ones(3), "kl_ramp": jnp.zeros(())}
    state = optimizer.init(params)
    seen = []
    for _ in range(7):
        seen.append(float(params["kl_ramp"]))
        grads = {"loc": jnp.ones(3), "kl_ramp": jnp.asarray(5.0)}
        updates, state = optimizer.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    np.testing.assert_allclose(seen, [0, 0.25, 0.5, 0.75, 1, 1, 1], atol=1e-7)
    np.testing.assert_allclose(params["loc"], 1 - 7 * 0.1, atol=1e-6)
    assert warmup_optimizer(optax.sgd(0.1), 4) is not warmup_optimizer(optax.sgd(0.1), 5)


def test_warmup_anneals_the_gradient_not_the_loss(correlated_data):
    """During the warm-up the KL gradient is scaled by the ramp while the loss value (the
    validation loss early stopping compares) stays the target objective."""
    X, y = (jnp.asarray(a) for a in correlated_data)
    net, model = _linear_model()
    loss = MeanFieldELBO(model, X.shape[0], kl_weight=0.5)
    start = model.init_params(net.init(jax.random.key(0), 2))
    q = {"loc": start["net"], "raw_scale": jax.tree_util.tree_map(jnp.zeros_like, start["net"])}
    q["log_sigma"] = start["log_sigma"]
    key = jax.random.key(1)
    values, grads = {}, {}
    for ramp in (None, 0.0, 0.25):
        params = q if ramp is None else {**q, "kl_ramp": jnp.asarray(ramp)}
        values[ramp], g = jax.value_and_grad(loss)(params, key, X, y)
        grads[ramp] = np.asarray(g["raw_scale"][0]["w"])
    assert float(values[0.0]) == pytest.approx(float(values[None]), rel=1e-6)
    assert float(values[0.25]) == pytest.approx(float(values[None]), rel=1e-6)
    kl_grad = grads[None] - grads[0.0]  # the likelihood's gradient cancels
    np.testing.assert_allclose(grads[0.25] - grads[0.0], 0.25 * kl_grad, rtol=1e-4, atol=1e-7)
    assert np.all(np.abs(kl_grad) > 1e-3)


def test_warmup_ends_at_the_target_objective(correlated_data):
    """With the KL warmed up over half the steps, VI still ends at the mean-field optimum
    (the weight reaches 1 and stays); the ramp leaf is not part of q."""
    X, y = correlated_data
    post = _fit(X, y, "meanfield", kl_warmup=0.5)
    assert post.info["kl_warmup_steps"] == 2000
    assert set(post.distribution.extras) == {"sigma"}
    mean, var, sigma = _moments(post)
    exact_mean, _, precision = _exact(X, y, sigma)
    np.testing.assert_allclose(mean, exact_mean, atol=0.05)
    np.testing.assert_allclose(var, 1 / np.diag(precision), rtol=0.15)


@pytest.mark.parametrize("family", ["meanfield", "lowrank"])
def test_more_mc_samples_shrink_the_loss_variance(correlated_data, family):
    """The per-step estimate of the negative ELBO averages num_mc_samples draws: its variance
    over keys falls about as 1 / num_mc_samples."""
    X, y = (jnp.asarray(a) for a in correlated_data)
    net, model = _linear_model()
    start = model.init_params(net.init(jax.random.key(0), 2))
    raw = jax.tree_util.tree_map(lambda w: w * 0 + 0.5, start["net"])
    if family == "meanfield":
        q = {"loc": start["net"], "raw_scale": raw, "log_sigma": start["log_sigma"]}

        def loss(n):
            return MeanFieldELBO(model, X.shape[0], num_mc_samples=n)
    else:
        flat, _ = ravel_pytree(start["net"])
        q = {"loc": flat, "raw_scale": flat * 0 + 0.5, "factor": jnp.ones((3, 1)) * 0.3}
        q["log_sigma"] = start["log_sigma"]

        def loss(n):
            return LowRankELBO(model, X.shape[0], Unraveler.of(start["net"]), num_mc_samples=n)

    keys = jax.random.split(jax.random.key(2), 300)
    one = np.var(np.asarray(jax.vmap(lambda k: loss(1)(q, k, X, y))(keys)))
    sixteen = np.var(np.asarray(jax.vmap(lambda k: loss(16)(q, k, X, y))(keys)))
    assert 8 < one / sixteen < 32  # 16 in expectation; 300 keys give about +-20%


def test_vi_settings_flow_from_the_method_object(correlated_data):
    """px.methods.VI's settings reach fit_vi (what the fit records shows), are checked with
    errors naming the method's parameter, and a method saved before they existed loads with
    their defaults."""
    import posterax as px
    from posterax.estimators.persistence_networks import method_from_dict

    X, y = correlated_data
    training = px.methods.Training(num_epochs=8, validation_fraction=None)
    reg = px.BayesianRegressor(
        method=px.methods.VI(kl_warmup=0.5, num_mc_samples=2, training=training),
        network=(),
        progress_bar=False,
    ).fit(X, y)
    assert reg.posterior_.info["kl_warmup_steps"] == 8  # 8 epochs x 2 batches x 0.5
    assert reg.posterior_.info["map_epochs_run"] == 2
    for bad, match in (
        ({"kl_weight": 0.0}, r"'kl_weight' parameter of px.methods.VI must be a finite float > 0"),
        ({"kl_warmup": 1.5}, r"'kl_warmup' parameter of px.methods.VI must be a float in"),
        ({"init": "zeros"}, r"'init' parameter of px.methods.VI must be one of 'map'"),
        ({"num_mc_samples": 0}, r"'num_mc_samples' parameter of px.methods.VI must be an int"),
        (
            {"init_scale": -1.0},
            r"'init_scale' parameter of px.methods.VI must be a finite float > 0",
        ),
    ):
        with pytest.raises(ValueError, match=match):
            px.BayesianRegressor(
                method=px.methods.VI(training=training, **bad), network=(), progress_bar=False
            ).fit(X, y)
    old = method_from_dict(
        {"__method__": "VI", "params": {"family": "meanfield", "rank": 10, "num_samples": 50}}
    )
    assert old == px.methods.VI(num_samples=50)
    assert (old.init, old.kl_weight, old.kl_warmup, old.num_mc_samples) == ("map", 0.3, 0.0, 8)


def test_vi_model_saved_before_the_new_settings_loads_and_predicts_the_same(tmp_path):
    """A saved VI model whose method lacks init / init_scale / kl_weight / kl_warmup /
    num_mc_samples (files from before them) loads with their defaults and predicts as saved."""
    import json

    import posterax as px

    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, (40, 1))
    y = np.sin(X[:, 0]) + 0.2 * rng.normal(size=40)
    training = px.methods.Training(num_epochs=4, validation_fraction=None)
    method = px.methods.VI(num_samples=20, training=training, kl_weight=1.0, num_mc_samples=1)
    reg = px.BayesianRegressor(method=method, network=(4,), progress_bar=False).fit(X, y)
    reg.save(tmp_path / "m")
    path = tmp_path / "m" / "model.json"
    meta = json.loads(path.read_text())
    meta.pop("checksums", None)  # an edited file: as files from before the checksums
    stored = meta["params"]["method"]["params"]
    for name in ("init", "init_scale", "kl_weight", "kl_warmup", "num_mc_samples"):
        del stored[name]
    path.write_text(json.dumps(meta, indent=2))
    loaded = px.load(tmp_path / "m")
    assert loaded.method == px.methods.VI(num_samples=20, training=training)
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))
