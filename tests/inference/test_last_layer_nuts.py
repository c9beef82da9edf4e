"""Last-layer NUTS (``px.methods.NUTS(subset="last_layer")``): the MAP network's features frozen,
the last layer sampled exactly.

Regression against the exact posterior of Bayesian linear regression on the MAP's features
(the noise sd sampled too: integrated on a fine grid), tolerances from ArviZ's Monte Carlo
errors; classification: draws differ only in the last layer, which acts on the MAP's features;
a user's network (traced last layer, BatchNorm, a nonlinearity after the last layer).
"""

import warnings

import arviz as az
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy import stats

import posterax as px
from posterax.inference.last_layer_nuts import outputs_of_last_layer, selected
from posterax.models import MLP, ClassificationHead

Z = 4.0  # a 4-sd band: a correct sampler fails one check with probability ~6e-5
TRAINING = px.methods.Training(num_epochs=100, learning_rate=1e-2)


def _wave(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-3, 3, (n, 1))
    return X, np.sin(X[:, 0]) + 0.3 * rng.normal(size=n)


def _fit(cls, method, X, y, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # short chains are flagged
        return cls(method, progress_bar=False, random_state=0, **kwargs).fit(X, y)


def _exact_posterior(A, y, prior_scale, noise_scale):
    """Posterior moments of ``w`` (``y ~ N(A w, sigma^2)``, ``w ~ N(0, prior_scale^2)``) and
    of ``sigma ~ HalfCauchy(noise_scale)``: conjugate in ``w`` given ``sigma``, and ``sigma``
    integrated on a fine grid of its exact marginal posterior."""
    n, p = A.shape
    U, s, Vt = np.linalg.svd(A * prior_scale, full_matrices=False)
    c = U.T @ y
    rest = y @ y - c @ c
    sigma = np.exp(np.linspace(np.log(0.05), np.log(3.0), 20_001))[:, None]
    var = s**2 + sigma**2
    log_marginal = -0.5 * (
        np.sum(np.log(var), 1, keepdims=True)
        + (n - p) * np.log(sigma**2)
        + np.sum(c**2 / var, 1, keepdims=True)
        + rest / sigma**2
    )
    # On a uniform grid of log sigma: density in sigma times the Jacobian sigma.
    log_post = (log_marginal + stats.halfcauchy.logpdf(sigma, scale=noise_scale) + np.log(sigma))[
        :, 0
    ]
    weight = np.exp(log_post - log_post.max())
    weight /= weight.sum()
    assert weight[0] < 1e-12 and weight[-1] < 1e-12  # the grid covers the posterior
    V = Vt.T * prior_scale
    means = (s / var * c) @ V.T  # (grid, p): mean of w given each sigma
    cov_given = np.einsum("ij,gj,kj->gik", V, sigma**2 / var, V)  # (grid, p, p)
    mean = weight @ means
    cov = np.einsum("g,gij->ij", weight, cov_given + means[:, :, None] * means[:, None, :])
    cov -= np.outer(mean, mean)
    s_mean = weight @ sigma[:, 0]
    s_sd = np.sqrt(weight @ sigma[:, 0] ** 2 - s_mean**2)
    return mean, cov, s_mean, s_sd


def _check(name, draws, chains, mean, sd, report):
    """Posterior mean and sd of each column of ``draws`` (S, k) within ``Z`` Monte Carlo
    standard errors (ArviZ) of the exact ones."""
    by_chain = {name: draws.reshape(chains, -1, *draws.shape[1:])}
    mcse_mean = np.asarray(az.mcse(az.convert_to_dataset(by_chain), method="mean")[name])
    mcse_sd = np.asarray(az.mcse(az.convert_to_dataset(by_chain), method="sd")[name])
    z_mean = np.abs(draws.mean(0) - mean) / mcse_mean
    z_sd = np.abs(draws.std(0, ddof=1) - sd) / mcse_sd
    report[name] = (float(np.max(z_mean)), float(np.max(z_sd)))
    assert np.all(z_mean < Z), (name, z_mean)
    assert np.all(z_sd < Z), (name, z_sd)


@pytest.mark.slow
def test_regression_matches_the_conjugate_posterior_on_the_map_features():
    """Given the MAP's features ``phi`` (computed here from the first layer of a MAP fit with
    the same training and ``random_state``), ``y = phi w + b + N(0, sigma^2)`` with Normal
    priors on ``(w, b)`` and ``sigma ~ HalfCauchy`` is Bayesian linear regression: the last
    layer's draws, ``sigma``'s, and the function at a few inputs (which checks the covariance)
    must match its exact posterior."""
    X, y = _wave()
    nuts = px.methods.NUTS(
        num_warmup=500, num_samples=1500, num_chains=2, subset="last_layer", training=TRAINING
    )
    reg = _fit(px.BayesianRegressor, nuts, X, y, network=(8,))
    map_reg = _fit(px.BayesianRegressor, px.methods.MAP(training=TRAINING), X, y, network=(8,))
    first = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64)[0], map_reg.posterior_.draws)
    first = first["net"][0]

    def features(X_new):
        Xs = (np.asarray(X_new) - reg.x_mean_) / reg.x_scale_
        h = np.maximum(Xs @ first["w"] + first["b"], 0.0)  # activation "auto": ReLU
        return np.column_stack([h, np.ones(len(h))])

    assert reg.activation_ == "relu"
    ys = (y - reg.y_mean_) / reg.y_scale_
    mean, cov, s_mean, s_sd = _exact_posterior(features(X), ys, 1.0, 1.0)
    draws = reg.posterior_.draws
    last = np.column_stack([np.asarray(draws["net"][1]["w"])[:, :, 0], draws["net"][1]["b"]])
    chains = reg.posterior_.chain_shape[0]
    report = {}
    _check("last_layer", last, chains, mean, np.sqrt(np.diag(cov)), report)
    _check("sigma", np.asarray(draws["sigma"])[:, None], chains, s_mean, s_sd, report)
    X_new = np.array([[-2.5], [-1.0], [0.0], [1.5], [2.8]])
    phi = features(X_new)
    f_draws = np.asarray(reg.predict_samples(X_new).mean - reg.y_mean_) / reg.y_scale_
    np.testing.assert_allclose(f_draws, last @ phi.T, rtol=1e-4, atol=1e-4)
    f_sd = np.sqrt(np.einsum("ij,jk,ik->i", phi, cov, phi))
    _check("function", f_draws, chains, phi @ mean, f_sd, report)
    print("max |error| / MCSE (mean, sd):", report)


def _blobs(n=40, seed=1):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
    X = np.concatenate([rng.normal(c, 0.8, (n, 2)) for c in centres])
    return X, np.repeat([0, 1, 2], n)


@pytest.mark.slow
def test_classifier_samples_the_last_layer_on_the_map_features():
    """Only the last layer moves between draws; every draw's logits are the MAP's features
    (computed here from a MAP fit with the same training and random_state) times that draw's
    last layer; probabilities are valid."""
    X, y = _blobs()
    nuts = px.methods.NUTS(num_warmup=100, num_samples=50, subset="last_layer", training=TRAINING)
    clf = _fit(px.BayesianClassifier, nuts, X, y, network=(6,))
    map_clf = _fit(px.BayesianClassifier, px.methods.MAP(training=TRAINING), X, y, network=(6,))
    draws = clf.posterior_.draws["net"]
    assert draws[0] == {"w": None, "b": None}  # the first layer is not sampled
    w, b = np.asarray(draws[1]["w"]), np.asarray(draws[1]["b"])
    assert w.shape == (50, 6, 3) and b.shape == (50, 3)
    assert np.all(w.std(0) > 0) and np.all(b.std(0) > 0)
    first = jax.tree_util.tree_map(lambda a: np.asarray(a)[0], map_clf.posterior_.draws)["net"][0]
    h = np.maximum((X - clf.x_mean_) / clf.x_scale_ @ first["w"] + first["b"], 0.0)
    logits = np.asarray(clf.predict_samples(X).logits)
    np.testing.assert_allclose(logits, h @ w + b[:, None, :], rtol=1e-4, atol=1e-4)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3) and np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
    assert np.mean(clf.predict(X) == y) > 0.85
    info = clf.posterior_.info
    assert info["last_layer_outputs"] == "linearized" and info["n_last_layer_params"] == 21
    assert info["whitened"] and "epochs_run" in info  # the MAP's training record too
    params = clf.diagnostics()["parameters"]
    assert set(params) == {f"net[1].w[{i},{k}]" for i in range(6) for k in range(3)} | {
        f"net[1].b[{k}]" for k in range(3)
    }


class SmallCNN(nnx.Module):
    def __init__(self, rngs, classes=3):
        self.conv = nnx.Conv(1, 4, (3, 3), rngs=rngs)
        self.dense = nnx.Linear(4 * 4 * 4, classes, rngs=rngs)

    def features(self, x):
        h = nnx.max_pool(jax.nn.relu(self.conv(x)), (2, 2), (2, 2))
        return h.reshape(h.shape[0], -1)

    def __call__(self, x):
        return self.dense(self.features(x))


def _images(n=30, seed=0):
    """8x8 one-channel images of three classes: a bright row, column or diagonal."""
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 0.3, (3 * n, 8, 8, 1)).astype(np.float32)
    y = np.repeat([0, 1, 2], n)
    for i, label in enumerate(y):
        k = rng.integers(1, 7)
        if label == 0:
            X[i, k, :, 0] += 1.5
        elif label == 1:
            X[i, :, k, 0] += 1.5
        else:
            X[i, np.arange(8), np.arange(8), 0] += 1.5
    return X, y


def test_own_cnn_samples_its_last_layer_on_the_map_features(tmp_path):
    """An NNX CNN on images: the traced last layer (the dense layer) is sampled and differs
    between draws; every draw's logits are the MAP network's features (its own ``features``
    method, at the MAP's conv weights) times that draw's last layer; probabilities are valid;
    save/load predicts identically."""
    X, y = _images()
    training = px.methods.Training(num_epochs=15, learning_rate=1e-2)
    nuts = px.methods.NUTS(num_warmup=40, num_samples=20, subset="last_layer", training=training)
    clf = _fit(px.BayesianClassifier, nuts, X, y, network=SmallCNN(nnx.Rngs(0)))
    draws = clf.posterior_.draws["net"]
    assert draws["conv"] == {"kernel": None, "bias": None}  # not sampled
    kernel, bias = np.asarray(draws["dense"]["kernel"]), np.asarray(draws["dense"]["bias"])
    assert kernel.shape == (20, 64, 3) and bias.shape == (20, 3)
    assert np.all(kernel.std(0) > 0) and np.all(bias.std(0) > 0)
    cnn = SmallCNN(nnx.Rngs(1))
    frozen = clf.posterior_.apply_fn.frozen["net"]["conv"]
    cnn.conv.kernel[...], cnn.conv.bias[...] = frozen["kernel"], frozen["bias"]
    h = np.asarray(cnn.features(jnp.asarray(X)))
    logits = np.asarray(clf.predict_samples(X).logits)
    np.testing.assert_allclose(logits, h @ kernel + bias[:, None, :], rtol=1e-4, atol=1e-4)
    proba = clf.predict_proba(X)
    assert np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
    assert np.mean(clf.predict(X) == y) > 0.9
    info = clf.posterior_.info
    assert info["last_layer_outputs"] == "linearized" and info["n_last_layer_params"] == 195
    assert info["whitened"] and "epochs_run" in info  # the MAP's training record too
    assert {name.split("[")[0] for name in clf.diagnostics()["parameters"]} == {
        "net.dense.kernel",
        "net.dense.bias",
    }
    clf.save(tmp_path / "m")
    loaded = px.load(tmp_path / "m", network=SmallCNN(nnx.Rngs(7)))
    assert loaded.method == nuts
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


class TanhOut(eqx.Module):
    """A tanh after the last layer: outputs not affine in the last layer's weights."""

    l1: eqx.nn.Linear
    l2: eqx.nn.Linear

    def __init__(self, key):
        k1, k2 = jax.random.split(key)
        self.l1, self.l2 = eqx.nn.Linear(1, 8, key=k1), eqx.nn.Linear(8, 1, key=k2)

    def __call__(self, x):
        return 3.0 * jnp.tanh(self.l2(jnp.tanh(self.l1(x))))


@pytest.mark.slow
def test_outputs_not_affine_in_the_last_layer_run_the_network():
    """The linearisation is used only where it is exact; otherwise every evaluation runs the
    network with the last layer substituted (same posterior, a full pass per gradient)."""
    X, y = _wave(40)
    nuts = px.methods.NUTS(num_warmup=60, num_samples=30, subset="last_layer", training=TRAINING)
    reg = _fit(px.BayesianRegressor, nuts, X, y, network=TanhOut(jax.random.key(0)))
    assert reg.posterior_.info["last_layer_outputs"] == "substituted"
    assert np.all(np.isfinite(reg.predict(X)))


def test_the_linearisation_is_the_network_at_any_last_layer():
    """For an affine last layer the outputs from the linearisation at the MAP equal a forward
    pass with the last layer replaced, far from the MAP too."""
    net = MLP((5,), "tanh", 2)
    params = net.init(jax.random.key(0), 3)
    head = ClassificationHead(net)
    mask = [{"w": False, "b": False}, {"w": True, "b": True}]
    X = jax.random.normal(jax.random.key(1), (30, 3))
    outputs, linear = outputs_of_last_layer(head, {"net": params}, mask, X, jax.random.key(2))
    assert linear
    far = selected(mask, net.init(jax.random.key(3), 3))
    far[1] = jax.tree_util.tree_map(lambda a: 10.0 * a, far[1])
    direct = head({"net": [params[0], far[1]]}, X)
    np.testing.assert_allclose(outputs(far), direct, rtol=1e-4, atol=1e-4)


class WithBatchNorm(nnx.Module):
    def __init__(self, rngs, width=8):
        self.l1 = nnx.Linear(1, width, rngs=rngs)
        self.bn = nnx.BatchNorm(width, rngs=rngs)
        self.l2 = nnx.Linear(width, 1, rngs=rngs)

    def __call__(self, x):
        return self.l2(jnp.tanh(self.bn(self.l1(x))))


@pytest.mark.slow
def test_batchnorm_statistics_stay_the_maps():
    X, y = _wave(40)
    nuts = px.methods.NUTS(num_warmup=60, num_samples=30, subset="last_layer", training=TRAINING)
    reg = _fit(px.BayesianRegressor, nuts, X, y, network=WithBatchNorm(nnx.Rngs(0)))
    map_reg = _fit(
        px.BayesianRegressor, px.methods.MAP(training=TRAINING), X, y,
        network=WithBatchNorm(nnx.Rngs(0)),
    )  # fmt: skip
    np.testing.assert_array_equal(
        np.asarray(reg.posterior_.apply_fn.frozen["state"]["bn"]["mean"]),
        np.asarray(map_reg.posterior_.draws["state"]["bn"]["mean"])[0],
    )
    assert reg.posterior_.draws["net"]["bn"] == {"scale": None, "bias": None}
    assert np.sqrt(np.mean((reg.predict(X) - y) ** 2)) < 0.45  # noise sd 0.3


def test_settings_are_checked_by_name():
    X, y = _wave(20)
    with pytest.raises(ValueError, match=r"'subset' parameter of px.methods.NUTS .* Got 'first'"):
        px.BayesianRegressor(px.methods.NUTS(subset="first")).fit(X, y)
    with pytest.raises(ValueError, match=r"'training' parameter of px.methods.NUTS applies to"):
        px.BayesianRegressor(px.methods.NUTS(training=TRAINING)).fit(X, y)
    with pytest.raises(ValueError, match=r"'subset' parameter of px.methods.NUTS must be 'all'"):
        px.BayesianLinearRegression(method=px.methods.NUTS(subset="last_layer")).fit(X, y)


def test_the_string_and_flat_settings_name_it():
    made = px.methods.method_from_settings(
        "nuts_last_layer", {"num_warmup": 50, "num_epochs": 20, "learning_rate": 0.01}
    )
    assert made == px.methods.NUTS(
        num_warmup=50,
        subset="last_layer",
        training=px.methods.Training(num_epochs=20, learning_rate=0.01),
    )
    assert px.methods.method_key(made) == "nuts_last_layer"
    # Plain NUTS trains nothing: training settings beside it are not its own.
    assert px.methods.method_from_settings("nuts", {"num_epochs": 5}, ignore_unknown=True) == (
        px.methods.NUTS()
    )
    nuts = px.methods.NUTS(subset="last_layer").set_params(training__num_epochs=7)
    assert nuts.training == px.methods.Training(num_epochs=7)
    assert nuts.settings()["subset_of_weights"] == "last_layer"


@pytest.mark.slow
def test_digits_cnn_accuracy_close_to_the_maps():
    """The 8x8 digits with a small CNN: last-layer NUTS predicts about as well as its MAP."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = (digits.images / 16.0)[..., None].astype(np.float32)
    order = np.random.default_rng(0).permutation(len(X))
    train, test = order[:1000], order[1000:]
    training = px.methods.Training(num_epochs=40, learning_rate=3e-3, batch_size=64)

    class CNN(nnx.Module):
        def __init__(self, rngs):
            self.conv = nnx.Conv(1, 8, (3, 3), rngs=rngs)
            self.hidden = nnx.Linear(4 * 4 * 8, 32, rngs=rngs)
            self.out = nnx.Linear(32, 10, rngs=rngs)

        def __call__(self, x):
            h = nnx.max_pool(jax.nn.relu(self.conv(x)), (2, 2), (2, 2))
            return self.out(jax.nn.relu(self.hidden(h.reshape(h.shape[0], -1))))

    accuracy = {}
    for name, method in (
        ("map", px.methods.MAP(training=training)),
        (
            "nuts",
            px.methods.NUTS(
                num_warmup=300, num_samples=300, subset="last_layer", training=training
            ),
        ),
    ):
        clf = _fit(
            px.BayesianClassifier, method, X[train], digits.target[train], network=CNN(nnx.Rngs(0))
        )
        accuracy[name] = np.mean(clf.predict(X[test]) == digits.target[test])
    assert accuracy["map"] > 0.9
    assert abs(accuracy["nuts"] - accuracy["map"]) < 0.03, accuracy


@pytest.mark.slow
def test_heteroscedastic_head_and_checkpoint_resume(tmp_path):
    """The mean and the noise scale both come from the last layer (no sigma); with
    checkpoint_dir the MAP and the chains checkpoint apart, and a resumed fit equals an
    uninterrupted one."""
    X, y = _wave(50)
    nuts = px.methods.NUTS(num_warmup=60, num_samples=40, subset="last_layer", training=TRAINING)
    kwargs = {"network": (8,), "likelihood": "heteroscedastic"}
    plain = _fit(px.BayesianRegressor, nuts, X, y, **kwargs)
    assert "sigma" not in plain.posterior_.draws and plain.sigma_ is None
    assert np.asarray(plain.posterior_.draws["net"][1]["w"]).shape == (40, 8, 2)
    lo, hi = plain.predict_interval(X)
    assert np.mean((lo <= y) & (y <= hi)) > 0.8
    saved = _fit(px.BayesianRegressor, nuts, X, y, checkpoint_dir=tmp_path, **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map", "nuts"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        resumed = px.BayesianRegressor(
            nuts, progress_bar=False, random_state=0, checkpoint_dir=tmp_path, **kwargs
        ).fit(X, y, resume=True)
    for fit in (saved, resumed):
        np.testing.assert_array_equal(fit.predict(X), plain.predict(X))
