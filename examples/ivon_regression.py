"""IVON: a variational posterior over a network's weights at the cost of Adam.

Two ways in: the estimator (``method="ivon"`` or ``px.methods.IVON(...)``), and the optax
transformation underneath, for a training loop of your own: draw weights from the state, take
the gradient there, hand it back with the noise.

Run: python examples/ivon_regression.py
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

import posterax as px
from posterax.inference.ivon import ivon


def data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-3, 3, (n, 1))
    return X, np.sin(X[:, 0]) + 0.2 * rng.normal(size=n)


def with_the_estimator(X, y):
    reg = px.BayesianRegressor(
        network=(50,),
        method=px.methods.IVON(num_samples=300),  # learning_rate=0.1, hess_init=1, ess = N
        random_state=0,
        progress_bar=False,
    ).fit(X, y)
    grid = np.linspace(-6, 6, 7)[:, None]  # the data cover [-3, 3]: wider beyond
    mean, std = reg.predict(grid, return_std=True)
    print("estimator: x, mean, std")
    for x, m, s in zip(grid[:, 0], mean, std, strict=True):
        print(f"  {x:+.1f}  {m:+.2f}  {s:.2f}")
    return reg, grid, std


def with_optax(X, y, steps=2000):
    """Bayesian linear regression on (sin x, cos x) features, one loop of your own."""
    features = jnp.asarray(np.c_[np.sin(X[:, 0]), np.cos(X[:, 0])], jnp.float32)
    targets = jnp.asarray(y, jnp.float32)
    n = len(y)
    opt = ivon(0.1, ess=n, hess_init=1.0, beta2=0.999, weight_decay=1.0 / n)  # N(0, 1) prior

    def loss(w, batch):  # the average negative log-likelihood (noise sd 0.2): no prior term
        xb, yb = batch
        return 0.5 * jnp.mean((yb - xb @ w) ** 2) / 0.2**2

    @jax.jit
    def step(w, state, key):
        k_batch, k_noise = jax.random.split(key)
        idx = jax.random.choice(k_batch, n, (32,), replace=False)
        weights, noise = opt.sample_params(k_noise, w, state)  # leading axis: mc_samples
        grads = jax.vmap(jax.grad(loss), (0, None))(weights, (features[idx], targets[idx]))
        updates, state = opt.update(grads, state, w, noise=noise)
        return optax.apply_updates(w, updates), state

    w, state = jnp.zeros(2), opt.init(jnp.zeros(2))
    for key in jax.random.split(jax.random.key(0), steps):
        w, state = step(w, state, key)
    sd = opt.posterior_scale(state)
    shown = ", ".join(f"{m:.3f} +- {s:.3f}" for m, s in zip(w.tolist(), sd.tolist(), strict=True))
    print(f"optax loop: weights {shown} (true 1, 0)")
    return w, sd


def main():
    X, y = data()
    _, grid, std = with_the_estimator(X, y)
    w, sd = with_optax(X, y)
    return {"grid": grid[:, 0], "std": std, "w": np.asarray(w), "sd": np.asarray(sd)}


if __name__ == "__main__":
    main()
