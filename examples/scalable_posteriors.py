"""Deep ensembles and Bayes by backprop for your own network: any ``apply_fn`` + params pytree.

The estimators do this in one line (``px.BayesianRegressor(method="ensemble")``); this example
shows the functional layer underneath, for JAX users with their own networks (hand-written here;
Equinox or Flax models work once split into a pure function and a params pytree).

Run: python examples/scalable_posteriors.py
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

import posterax as px
from posterax.inference import NetworkModel, TrainingSettings, fit_ensemble, fit_vi
from posterax.models import GaussianLikelihood, HeteroscedasticGaussianLikelihood, WeightPrior


def init_fn(key, width=50):
    """A 1-``width``-2 ReLU network: outputs are (mean, raw noise scale)."""
    k1, k2 = jax.random.split(key)
    return {
        "w1": jax.random.normal(k1, (1, width)) * jnp.sqrt(2.0),
        "b1": jnp.zeros(width),
        "w2": jax.random.normal(k2, (width, 2)) * jnp.sqrt(2.0 / width),
        "b2": jnp.zeros(2),
    }


def apply_fn(params, x):
    """Reads the weights from ``params["net"]``, as every posterax posterior stores them."""
    net = params["net"]
    hidden = jax.nn.relu(x @ net["w1"] + net["b1"])
    return hidden @ net["w2"] + net["b2"]


def mean_only(params, x):
    return apply_fn(params, x)[:, 0]


def main(num_epochs: int = 1000) -> dict:
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.uniform(-3, 3, (100, 1)), dtype=jnp.float32)
    y = jnp.sin(X[:, 0]) * X[:, 0] + 0.3 * jnp.asarray(rng.normal(size=100), dtype=jnp.float32)
    settings = TrainingSettings(optax.adam(3e-3), num_epochs=num_epochs, progress_bar=False)
    prior = WeightPrior("normal", (1.0,))

    # Deep ensemble of heteroscedastic networks (Lakshminarayanan et al.): 5 members, one program.
    ensemble_model = NetworkModel(apply_fn, HeteroscedasticGaussianLikelihood(), prior)
    ensemble = fit_ensemble(jax.random.key(0), ensemble_model, init_fn, X, y, settings, 5)

    # Mean-field Gaussian q over the same weights (homoscedastic noise, learned).
    vi_model = NetworkModel(mean_only, GaussianLikelihood(), prior)
    vi = fit_vi(jax.random.key(1), vi_model, init_fn, X, y, settings, family="meanfield")

    grid = jnp.linspace(-6, 6, 13)[:, None]
    out = {"grid": np.asarray(grid[:, 0])}
    for name, posterior, n in (("ensemble", ensemble, None), ("vi", vi, 500)):
        pred = px.predictive.predictive_samples(posterior, grid, jax.random.key(2), n)
        out[name] = np.asarray(px.predictive.predictive_std(pred))
    print("   x   ensemble sd   VI sd")
    for x, a, b in zip(out["grid"], out["ensemble"], out["vi"], strict=True):
        print(f"{x:+5.1f}   {a:9.3f}   {b:6.3f}")
    return out


if __name__ == "__main__":
    main()
