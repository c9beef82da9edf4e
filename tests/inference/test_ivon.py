"""IVON: the optax transformation against a hand-derived Algorithm 1, its fixed point on a
conjugate model, training through the shared driver, the estimators and the error messages."""

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import posterax as px
from posterax.inference.ivon import ivon
from posterax.inference.training import train
from posterax.inference.vi import MeanFieldGaussian
from user_networks import blob_data, make_network, wave_data


def _hand_steps(m, eps_steps, *, a, c, lr, ess, h0, delta, b1, b2):
    """Algorithm 1 of Shen et al. (2024) on f(theta) = 0.5 * a * (theta - c)^2 per coordinate,
    written out with Python floats (one coordinate at a time, no posterax code)."""
    out = []
    for i in range(len(m)):
        mi, hi, gbar = m[i], h0, 0.0
        traj = []
        for t, eps in enumerate(eps_steps, start=1):
            e = eps[i]
            sigma = 1.0 / math.sqrt(ess * (hi + delta))
            theta = mi + sigma * e
            g = a[i] * (theta - c[i])
            h_hat = g * e / sigma
            gbar = b1 * gbar + (1 - b1) * g
            hi = b2 * hi + (1 - b2) * h_hat + 0.5 * (1 - b2) ** 2 * (hi - h_hat) ** 2 / (hi + delta)
            rate = lr * (h0 + delta)  # rescale_lr
            mi = mi - rate * (gbar / (1 - b1**t) + delta * mi) / (hi + delta)
            traj.append((theta, mi, hi))
        out.append(traj)
    return out


def test_two_steps_match_hand_derived_algorithm():
    a, c = [2.0, 0.5], [1.0, -3.0]
    lr, ess, h0, delta, b1, b2 = 0.3, 50.0, 0.7, 0.02, 0.9, 0.95
    opt = ivon(lr, ess, hess_init=h0, beta1=b1, beta2=b2, weight_decay=delta)
    params = jnp.array([0.4, 2.0])
    state = opt.init(params)

    def loss(theta):
        return 0.5 * jnp.sum(jnp.array(a) * (theta - jnp.array(c)) ** 2)

    eps_steps, got = [], []
    for i in range(2):
        weights, noise = opt.sample_params(jax.random.key(i), params, state)
        assert weights.shape == noise.shape == (1, 2)  # mc_samples = 1 leading axis
        eps_steps.append([float(v) for v in noise[0]])
        grads = jax.vmap(jax.grad(loss))(weights)
        updates, state = opt.update(grads, state, params, noise=noise)
        params = optax.apply_updates(params, updates)
        got.append((np.asarray(weights[0]), np.asarray(params), np.asarray(state.hess)))
    hand = _hand_steps(
        [0.4, 2.0], eps_steps, a=a, c=c, lr=lr, ess=ess, h0=h0, delta=delta, b1=b1, b2=b2
    )
    for t in range(2):
        for i in range(2):
            theta, m, h = hand[i][t]
            np.testing.assert_allclose(got[t][0][i], theta, rtol=1e-5)
            np.testing.assert_allclose(got[t][1][i], m, rtol=1e-5)
            np.testing.assert_allclose(got[t][2][i], h, rtol=1e-5)
    assert int(state.count) == 2
    sd = opt.posterior_scale(state)
    np.testing.assert_allclose(sd, 1 / np.sqrt(ess * (np.asarray(state.hess) + delta)), rtol=1e-6)


def test_mc_samples_average_gradients_and_hessian_estimates():
    opt = ivon(0.1, 10.0, hess_init=1.0, weight_decay=0.0, mc_samples=3, clip_radius=0.05)
    params = {"w": jnp.array([0.0, 1.0])}
    state = opt.init(params)
    weights, noise = opt.sample_params(jax.random.key(0), params, state)
    assert weights["w"].shape == (3, 2)
    grads = {"w": weights["w"] ** 3}
    updates, new = opt.update(grads, state, params, noise=noise)
    g = np.asarray(grads["w"]).mean(0)
    h_hat = (np.asarray(grads["w"]) * np.asarray(noise["w"])).mean(0) * math.sqrt(10.0)
    np.testing.assert_allclose(new.momentum["w"], 0.1 * g, rtol=1e-5)
    h = 0.99999 + 1e-5 * h_hat + 0.5e-10 * (1 - h_hat) ** 2
    np.testing.assert_allclose(new.hess["w"], h, rtol=1e-6)
    direction = np.clip(g / np.asarray(new.hess["w"]), -0.05, 0.05)  # debiased: g_bar / 0.1 = g
    np.testing.assert_allclose(updates["w"], -0.1 * direction, rtol=1e-5)


def _conjugate_problem():
    """y = X w + noise (sd 0.5 known), correlated features, a strong Normal(0, 0.05) prior."""
    rng = np.random.default_rng(0)
    n, noise_sd, prior_sd = 200, 0.5, 0.05
    cov = np.array([[1.0, 0.6, 0.0], [0.6, 1.0, -0.4], [0.0, -0.4, 1.0]])
    X = rng.multivariate_normal(np.zeros(3), cov, n)
    y = X @ np.array([0.3, -0.2, 0.25]) + noise_sd * rng.normal(size=n)
    precision = X.T @ X / noise_sd**2 + np.eye(3) / prior_sd**2
    mean = np.linalg.solve(precision, X.T @ y / noise_sd**2)
    return X, y, n, noise_sd, prior_sd, precision, mean


def test_fixed_point_is_the_meanfield_optimum_of_a_conjugate_posterior():
    """Exact posterior N(mu, Lambda^-1); the mean-field optimum is N(mu, 1/diag(Lambda)). IVON's
    iterates, averaged over the second half of 20000 full-batch steps, must match both within a
    Monte Carlo tolerance (z = 5)."""
    X, y, n, noise_sd, prior_sd, precision, mean = _conjugate_problem()
    Xj, yj = jnp.asarray(X, jnp.float32), jnp.asarray(y, jnp.float32)
    opt = ivon(0.1, float(n), hess_init=5.0, beta2=0.999, weight_decay=1 / (n * prior_sd**2))

    def loss(w):
        return 0.5 * jnp.mean((yj - Xj @ w) ** 2) / noise_sd**2

    steps, tail = 20000, 10000

    def step(carry, key):
        w, state = carry
        weights, noise = opt.sample_params(key, w, state)
        grads = jax.vmap(jax.grad(loss))(weights)
        updates, state = opt.update(grads, state, w, noise=noise)
        return (optax.apply_updates(w, updates), state), (w, state.hess)

    _, (ws, hs) = jax.jit(lambda k: jax.lax.scan(step, (jnp.zeros(3), opt.init(jnp.zeros(3))), k))(
        jax.random.split(jax.random.key(1), steps)
    )
    m_bar = np.asarray(ws[-tail:]).mean(0)
    h_bar = np.asarray(hs[-tail:]).mean(0)
    ivon_precision = n * (h_bar + 1 / (n * prior_sd**2))
    # Var(h_hat_i) for a Gaussian target: 2 H_ii^2 + sum_{j != i} (H_ij sigma_j / sigma_i)^2,
    # H the Hessian of the average loss; an average of `tail` EMA iterates has about
    # Var(h_hat) / tail (x4 for the iterates' correlation through the mean).
    H = X.T @ X / (n * noise_sd**2)
    sigma = 1 / np.sqrt(np.diag(precision))
    a = H * sigma[None, :] / sigma[:, None]
    var_hat = np.sum(a**2, axis=1) + np.diag(H) ** 2
    tol_h = 5 * np.sqrt(4 * var_hat / tail)
    np.testing.assert_array_less(np.abs(ivon_precision / n - np.diag(precision) / n), tol_h)
    # The mean: within a small fraction of the posterior sd (its iterates wander ~sigma).
    assert np.all(np.abs(m_bar - mean) < 0.2 * sigma), (m_bar, mean, sigma)
    # Not the prior-free least squares (the prior matters here), nor the exact marginals.
    least_squares = np.linalg.lstsq(X, y, rcond=None)[0]
    assert np.max(np.abs(least_squares - mean) / sigma) > 2
    exact_sd = np.sqrt(np.diag(np.linalg.inv(precision)))
    assert np.max(np.abs(1 / np.sqrt(ivon_precision) / exact_sd - 1)) > 0.05


def test_trains_through_the_driver_and_keeps_the_state_of_the_best_epoch():
    X, y, n, noise_sd, prior_sd, precision, mean = _conjugate_problem()
    Xj, yj = jnp.asarray(X, jnp.float32), jnp.asarray(y, jnp.float32)
    opt = ivon(0.1, float(n), hess_init=5.0, beta2=0.999, weight_decay=1 / (n * prior_sd**2))

    def loss(w, key, xb, yb):
        return 0.5 * jnp.mean((yb - xb @ w) ** 2) / noise_sd**2

    kwargs = {"num_epochs": 60, "batch_size": 20, "progress_bar": False}
    val = (Xj[:50], yj[:50])
    res = train(jax.random.key(0), loss, jnp.zeros(3), (Xj, yj), opt, validation=val, **kwargs)
    again = train(jax.random.key(0), loss, jnp.zeros(3), (Xj, yj), opt, validation=val, **kwargs)
    np.testing.assert_array_equal(res.params, again.params)  # same key, same result
    sigma = 1 / np.sqrt(np.diag(precision))
    assert np.all(np.abs(np.asarray(res.params) - mean) < 1.5 * sigma)
    # With early stopping, the state returned is the one of the best epoch (10 steps each).
    best_epoch = int(np.argmin(res.info["val_history"])) + 1
    assert int(res.opt_state.count) == best_epoch * 10
    assert res.info["epochs_run"] > best_epoch  # so the final state is not the best one


def test_regression_through_the_estimator_saves_and_loads(tmp_path):
    X, y = wave_data()
    method = px.methods.IVON(num_samples=200, training=px.methods.Training(num_epochs=150))
    reg = px.BayesianRegressor(network=(16,), method=method, random_state=0, progress_bar=False)
    reg.fit(X, y)
    mean = reg.predict(X)
    assert float(np.sqrt(np.mean((mean - y) ** 2))) < 0.35  # noise sd 0.2
    lo, hi = reg.predict_interval(X, level=0.95)
    assert np.mean((lo <= y) & (y <= hi)) > 0.85
    assert isinstance(reg.posterior_.distribution, MeanFieldGaussian)
    assert reg.posterior_.info["ess"] == len(X)  # below 100 rows none are held out
    reg.save(tmp_path / "ivon")
    loaded = px.load(tmp_path / "ivon")
    assert loaded.method == method
    np.testing.assert_allclose(loaded.predict(X), mean, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_heteroscedastic_head_trains_with_the_default_clipping():
    # Unclipped, the first (SGD-like) steps on this head's large initial gradients throw the
    # mean far off (RMSE in the hundreds): the default clip_radius=0.1 is what keeps it sane.
    X, y = wave_data()
    method = px.methods.IVON(num_samples=100, training=px.methods.Training(num_epochs=100))
    reg = px.BayesianRegressor(
        network=(16,), likelihood="heteroscedastic", method=method, random_state=0
    )
    reg.set_params(progress_bar=False).fit(X, y)
    assert float(np.sqrt(np.mean((reg.predict(X) - y) ** 2))) < 0.35


@pytest.mark.slow
def test_method_name_on_a_network_of_your_own():
    X, y = wave_data()
    net = make_network("equinox", X.shape[1], 1)
    user = px.BayesianRegressor(network=net, method="ivon", random_state=0, progress_bar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        user.fit(X, y)
    assert float(np.sqrt(np.mean((user.predict(X) - y) ** 2))) < 0.4


@pytest.mark.slow
def test_classification_through_the_estimator():
    X, y = blob_data()
    clf = px.BayesianClassifier(
        network=(16,),
        method=px.methods.IVON(num_samples=100, training=px.methods.Training(num_epochs=100)),
        random_state=0,
        progress_bar=False,
    )
    clf.fit(X, y)
    assert np.mean(clf.predict(X) == y) > 0.9
    np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "name", "rule"),
    [
        ({"ess": -5.0}, "ess", "> 0"),
        ({"beta2": 1.0}, "beta2", "(0, 1)"),
        ({"beta2": 0.0}, "beta2", "(0, 1)"),
        ({"beta1": 1.0}, "beta1", "[0, 1)"),
        ({"hess_init": 0.0}, "hess_init", "> 0"),
        ({"mc_samples": 0}, "mc_samples", ">= 1"),
        ({"learning_rate": -0.1}, "learning_rate", "> 0"),
        ({"weight_decay": -1.0}, "weight_decay", ">= 0"),
    ],
)
def test_bad_settings_name_the_parameter_rule_value_and_fix(kwargs, name, rule):
    settings = {"learning_rate": 0.1, "ess": 100.0, **kwargs}
    with pytest.raises(ValueError) as info:
        ivon(**settings)
    message = str(info.value)
    assert f"'{name}' parameter of ivon" in message
    assert rule in message and repr(kwargs[name]) in message and "Pass e.g." in message


def test_bad_method_settings_are_named_in_method_terms():
    X, y = wave_data()
    with pytest.raises(ValueError, match=r"'beta2' parameter of px\.methods\.IVON.*Got 1\.5"):
        px.BayesianRegressor(method=px.methods.IVON(beta2=1.5)).fit(X, y)
    with pytest.raises(ValueError, match=r"'ess' parameter of px\.methods\.IVON.*Got -1"):
        px.BayesianRegressor(method=px.methods.IVON(ess=-1)).fit(X, y)
    with pytest.raises(ValueError, match=r"'learning_rate' parameter of px\.methods\.IVON"):
        px.BayesianRegressor(method=px.methods.IVON(learning_rate=0)).fit(X, y)
    training = px.methods.Training(learning_rate=0.01)
    with pytest.raises(ValueError, match=r"'learning_rate' parameter of px\.methods\.Training"):
        px.BayesianRegressor(method=px.methods.IVON(training=training)).fit(X, y)
    with pytest.raises(ValueError, match=r"'prior' parameter .* must be 'normal' for IVON"):
        px.BayesianRegressor(method="ivon", prior="laplace").fit(X, y)


def test_update_without_noise_says_what_is_missing():
    opt = ivon(0.1, 10.0)
    params = jnp.zeros(2)
    with pytest.raises(ValueError, match="noise"):
        opt.update(jnp.zeros(2), opt.init(params), params)


def test_equal_settings_give_equal_optimisers():
    # Equal by value, so the driver's compiled programs are reused across fits.
    a = ivon(0.1, 10.0, weight_decay={"net": 0.1, "log_sigma": 0.0})
    b = ivon(0.1, 10.0, weight_decay={"net": 0.1, "log_sigma": 0.0})
    assert a == b and hash(a) == hash(b) and a != ivon(0.2, 10.0)
    assert isinstance(a, optax.GradientTransformation)


@pytest.mark.slow
def test_example_runs_and_widens_away_from_the_data():
    import ivon_regression as example  # examples/ is on sys.path via conftest

    out = example.main()
    std, middle = out["std"], len(out["std"]) // 2
    assert std[0] > 1.5 * std[middle] and std[-1] > 1.5 * std[middle]
    np.testing.assert_allclose(out["w"], [1.0, 0.0], atol=0.1)
