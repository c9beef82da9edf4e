"""The noise a trained regressor's predictive uses, set on held-out rows; and the held-out
criterion early stopping judges a homoscedastic Gaussian by (the noise profiled out)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.special import logsumexp
from scipy.stats import norm

import posterax as px
from posterax.estimators.held_out import calibrate_noise
from posterax.inference.map import fit_map
from posterax.inference.network_model import NetworkModel, TrainingSettings, held_out_loss
from posterax.inference.noise_calibration import (
    held_out_noise_factor,
    with_noise_scaled,
)
from posterax.inference.vi import MeanFieldGaussian
from posterax.models import (
    MLP,
    CategoricalLikelihood,
    ClassificationHead,
    GaussianLikelihood,
    HeteroscedasticGaussianLikelihood,
    RegressionHead,
    WeightPrior,
)
from posterax.models.likelihoods import ProfiledGaussianLikelihood
from posterax.predictive.sampling import predictive_samples


def test_profiled_likelihood_uses_the_root_mean_squared_residual():
    rng = np.random.default_rng(0)
    outputs, y = rng.normal(size=50), rng.normal(size=50)
    rms = np.sqrt(np.mean((y - outputs) ** 2))
    got = ProfiledGaussianLikelihood().log_prob({"sigma": 123.0}, jnp.array(outputs), jnp.array(y))
    np.testing.assert_allclose(got, norm.logpdf(y, outputs, rms), rtol=1e-5)


def test_held_out_loss_profiles_only_a_homoscedastic_gaussian():
    net = MLP((4,), "tanh", 1)
    gaussian = NetworkModel(RegressionHead(net), GaussianLikelihood()).map_loss(10)
    profiled = held_out_loss(gaussian)
    assert isinstance(profiled.model.likelihood, ProfiledGaussianLikelihood)
    assert profiled.n_data == 10 and profiled.model.apply_fn == gaussian.model.apply_fn
    classifier = NetworkModel(ClassificationHead(MLP((4,), "tanh", 3)), CategoricalLikelihood())
    loss = classifier.map_loss(10)
    assert held_out_loss(loss) is loss


def test_factor_of_one_draw_is_the_ratio_of_rms_residual_to_scale():
    rng = np.random.default_rng(1)
    mean, y = rng.normal(size=(1, 40)), rng.normal(scale=2.0, size=40)
    scale = np.full((1, 40), 0.5)
    expected = np.sqrt(np.mean((y - mean[0]) ** 2)) / 0.5  # the Gaussian MLE of the sd
    assert held_out_noise_factor(mean, scale, y) == pytest.approx(expected, rel=1e-4)


def test_factor_of_a_mixture_maximises_its_log_likelihood():
    rng = np.random.default_rng(2)
    mean = rng.normal(size=(5, 60))
    scale = rng.uniform(0.2, 0.6, size=(5, 60))
    y = mean.mean(axis=0) + rng.normal(scale=1.0, size=60)

    def ll(c):
        log_p = norm.logpdf(y, mean, c * scale)
        return np.mean(logsumexp(log_p, axis=0) - np.log(5))

    grid = np.exp(np.linspace(np.log(0.1), np.log(20), 4001))
    best = grid[np.argmax([ll(c) for c in grid])]
    found = held_out_noise_factor(mean, scale, y)
    assert found == pytest.approx(best, rel=2e-3)
    assert ll(found) >= ll(best) - 1e-6


def test_factor_shrinks_the_noise_only_on_significant_evidence():
    rng = np.random.default_rng(3)
    # 10 rows, nine fitting well and one not (RMS residual 0.86 at a scale of 1): a factor
    # below 1 gains less than four standard errors of held-out LL over 1, so the noise is kept.
    y = rng.normal(size=10)
    mean = (y - np.array([0.1] * 9 + [2.7]))[None]
    assert held_out_noise_factor(mean, np.ones((1, 10)), y) == 1.0
    # 1000 rows at residual sd 0.1: the shrink is certain and is taken, at the Gaussian MLE.
    y = rng.normal(size=1000)
    mean = (y + rng.normal(scale=0.1, size=1000))[None]
    rms = np.sqrt(np.mean((y - mean[0]) ** 2))
    assert held_out_noise_factor(mean, np.ones((1, 1000)), y) == pytest.approx(rms, rel=1e-4)


def test_scaling_reaches_draws_and_a_distributions_extras():
    draws = px.Posterior(lambda p, X: X, GaussianLikelihood(), draws={"sigma": jnp.ones(3)})
    np.testing.assert_allclose(with_noise_scaled(draws, 2.5).draws["sigma"], 2.5)
    dist = MeanFieldGaussian({"w": jnp.zeros(2)}, {"w": jnp.ones(2)}, {"sigma": jnp.array(0.4)})
    post = px.Posterior(lambda p, X: X, GaussianLikelihood(), distribution=dist)
    scaled = with_noise_scaled(post, 2.0)
    assert float(scaled.distribution.extras["sigma"]) == pytest.approx(0.8)
    assert float(post.distribution.extras["sigma"]) == pytest.approx(0.4)  # not mutated


def _noisy_line(n, key, noise=0.5, features=1):
    k1, k2 = jax.random.split(key)
    X = jax.random.uniform(k1, (n, features), minval=-2, maxval=2)
    return X, jnp.sin(2 * X[:, 0]) + noise * jax.random.normal(k2, (n,))


def test_calibrated_noise_is_the_held_out_rms_of_an_overfitted_map():
    # 40 rows of 8 features (7 of them noise), 256 units and a broad prior for 3000 epochs:
    # the training noise falls well below the true 0.5.
    X, y = _noisy_line(40, jax.random.key(0), features=8)
    X_val, y_val = _noisy_line(400, jax.random.key(1), features=8)
    net = MLP((256,), "relu", 1)
    model = NetworkModel(RegressionHead(net), GaussianLikelihood(), WeightPrior(scales=(10.0,)))
    settings = TrainingSettings(optax.adam(1e-2), num_epochs=3000, progress_bar=False)
    post = fit_map(jax.random.key(2), model, lambda k: net.init(k, 8), X, y, settings)
    learned = float(post.draws["sigma"][0])
    calibrated = calibrate_noise(post, X_val, y_val, jax.random.key(3))
    residual = y_val - post.apply_fn(jax.tree_util.tree_map(lambda a: a[0], post.draws), X_val)
    assert learned < 0.4
    assert float(calibrated.draws["sigma"][0]) == pytest.approx(
        float(jnp.sqrt(jnp.mean(residual**2))), rel=1e-3
    )
    assert calibrated.info["noise_factor"] > 1.2


def test_calibrate_noise_refuses_a_model_without_a_noise_sd():
    post = px.Posterior(lambda p, X: X, CategoricalLikelihood(), draws={"net": jnp.ones(2)})
    with pytest.raises(ValueError, match="Gaussian regressor"):
        calibrate_noise(post, jnp.ones((3, 1)), jnp.ones(3), jax.random.key(0))


@pytest.mark.parametrize("method", [px.methods.MAP, px.methods.Ensemble, px.methods.MCDropout])
def test_estimator_sets_the_noise_on_its_held_out_rows(method):
    X, y = _noisy_line(200, jax.random.key(4))

    def fitted(validation_fraction):
        training = px.methods.Training(num_epochs=50, validation_fraction=validation_fraction)
        reg = px.BayesianRegressor(
            method(training=training),
            network=px.networks.MLP((16,), "tanh"),
            likelihood="homoscedastic",  # one sigma (an ensemble's "auto" is heteroscedastic)
            random_state=0,
            progress_bar=False,
        )
        return reg.fit(np.asarray(X), np.asarray(y))

    reg = fitted("auto")
    factor = reg.posterior_.info["noise_factor"]
    assert np.isfinite(factor) and factor > 0
    assert reg.sigma_ == pytest.approx(
        float(np.mean(reg.posterior_.mean()["sigma"])) * reg.y_scale_
    )
    assert "noise_factor" not in fitted(None).posterior_.info  # no rows held out: none set


def test_profiled_heteroscedastic_likelihood_maximises_over_the_level_of_its_scales():
    rng = np.random.default_rng(5)
    n = 60
    outputs = np.stack([rng.normal(size=n), rng.normal(size=n)], axis=1)
    y = rng.normal(size=n) * 2.0
    het = HeteroscedasticGaussianLikelihood()
    mean, scale = (np.asarray(a, np.float64) for a in het.mean_scale(jnp.array(outputs)))
    got = ProfiledGaussianLikelihood(heteroscedastic=het).log_prob(
        {}, jnp.array(outputs), jnp.array(y)
    )
    grid = np.exp(np.linspace(np.log(0.05), np.log(50), 20001))
    best = max(np.mean(norm.logpdf(y, mean, c * scale)) for c in grid)
    assert float(jnp.mean(got)) == pytest.approx(best, abs=1e-5)


def test_held_out_loss_profiles_a_heteroscedastic_model():
    net = MLP((4,), "tanh", 2)
    het = HeteroscedasticGaussianLikelihood()
    loss = NetworkModel(ClassificationHead(net), het).map_loss(10)
    profiled = held_out_loss(loss).model.likelihood
    assert isinstance(profiled, ProfiledGaussianLikelihood) and profiled.heteroscedastic is het


def test_calibrated_heteroscedastic_scales_maximise_the_held_out_likelihood():
    X, y = _noisy_line(300, jax.random.key(6), noise=0.3)
    net = MLP((32,), "tanh", 2)
    model = NetworkModel(ClassificationHead(net), HeteroscedasticGaussianLikelihood())
    settings = TrainingSettings(optax.adam(1e-2), num_epochs=300, progress_bar=False)
    post = fit_map(jax.random.key(7), model, lambda k: net.init(k, 1), X[:60], y[:60], settings)
    calibrated = calibrate_noise(post, X[60:], y[60:], jax.random.key(8))
    factor = calibrated.info["noise_factor"]
    before = predictive_samples(post, X[60:], jax.random.key(0))
    after = predictive_samples(calibrated, X[60:], jax.random.key(0))
    np.testing.assert_allclose(after.scale, factor * before.scale, rtol=1e-5)
    mean, scale = np.asarray(before.mean[0], np.float64), np.asarray(before.scale[0], np.float64)
    grid = np.exp(np.linspace(np.log(0.1), np.log(100), 20001))
    lls = [np.mean(norm.logpdf(np.asarray(y[60:]), mean, c * scale)) for c in grid]
    assert factor == pytest.approx(max(1.0, grid[int(np.argmax(lls))]), rel=2e-3)
    assert factor > 1.05  # scales fitted to 60 rows are too small for new ones (1.12 here)


@pytest.mark.parametrize(
    "method",
    [px.methods.MAP, px.methods.Ensemble, px.methods.VI, px.methods.MCDropout, px.methods.SWAG],
)
def test_heteroscedastic_estimator_keeps_its_calibration_through_save_and_load(method, tmp_path):
    """The held-out factor on a heteroscedastic model's scales is saved and loaded (it was
    lost for every such model until a forced factor showed it: fitted ones were often 1)."""
    X, y = _noisy_line(200, jax.random.key(9))
    reg = px.BayesianRegressor(
        method(training=px.methods.Training(num_epochs=30)),
        network=px.networks.MLP((16,), "tanh"),
        likelihood="heteroscedastic",
        random_state=0,
        progress_bar=False,
    ).fit(np.asarray(X), np.asarray(y))
    factor = reg.posterior_.info["noise_factor"]
    assert np.isfinite(factor) and factor >= 1.0
    reg.posterior_ = with_noise_scaled(reg.posterior_, 1.7)  # a factor that shows when lost
    reg.save(tmp_path / "het")
    loaded = px.load(tmp_path / "het")
    X_new = np.linspace(-2, 2, 7)[:, None]
    before, after = reg.predict(X_new, return_std=True), loaded.predict(X_new, return_std=True)
    np.testing.assert_allclose(after[1], before[1], rtol=1e-5)
