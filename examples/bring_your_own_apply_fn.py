"""Sample the weights of your own network with NUTS: any ``apply_fn(params, x)`` + params pytree.

Here a hand-written two-layer network; an Equinox or Flax model works the same way once split
into a pure function and its params (see ``posterax.inference.nuts_apply``).

Run: python examples/bring_your_own_apply_fn.py
"""

import jax
import jax.numpy as jnp
import numpy as np

import posterax as px


def apply_fn(params, x):
    hidden = jnp.tanh(x @ params["w1"] + params["b1"])
    return (hidden @ params["w2"] + params["b2"])[:, 0]


def main(num_warmup: int = 500, num_samples: int = 500) -> dict:
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, (100, 1))
    y = np.sin(X[:, 0]) * X[:, 0] + 0.3 * rng.normal(size=100)
    template = {
        "w1": jnp.zeros((1, 8)),
        "b1": jnp.zeros(8),
        "w2": jnp.zeros((8, 1)),
        "b2": jnp.zeros(1),
    }
    posterior = px.inference.nuts_posterior(
        jax.random.key(0),
        apply_fn,
        template,
        X,
        y,
        likelihood="gaussian",
        prior_scale=1.0,
        num_warmup=num_warmup,
        num_samples=num_samples,
        progress_bar=False,
    )
    grid = np.linspace(-5, 5, 11)[:, None]
    pred = px.predictive.predictive_samples(posterior, grid, jax.random.key(1))
    lower, upper = px.predictive.predictive_interval(pred, 0.95)
    for x, lo, hi in zip(grid[:, 0], np.asarray(lower), np.asarray(upper), strict=True):
        print(f"x={x:+.1f}  95% interval [{lo:+.2f}, {hi:+.2f}]")
    return {"grid": grid, "lower": np.asarray(lower), "upper": np.asarray(upper)}


if __name__ == "__main__":
    main()
