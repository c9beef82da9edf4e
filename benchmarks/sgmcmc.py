"""Cost of an SG-MCMC step relative to an optax Adam step on the same network and minibatch
(issue 6).

Problem: 10,000 x 8 synthetic regression (the data of ``ensemble_vmap.py``), a 2x50 ReLU MLP with a
Gaussian likelihood (noise learned on the log scale), Normal(0, 1) weight priors and a
HalfCauchy(1) noise prior: the BNN log posterior of ``BayesianRegressor(method="sghmc")``,
evaluated through the same ``NetworkModel.log_prior`` / ``log_likelihood`` split the estimator
hands to BlackJAX. Minibatch 128, indices drawn at random in every step, one chain.

- ``adam``: ``jax.value_and_grad`` of the minibatch negative log posterior (scaled to the full
  data, as the samplers' gradient) + ``optax.adam(1e-3)`` update, in a ``lax.scan``;
- ``sghmc``: ``sample_sgmcmc(sampler="sghmc")`` (BlackJAX kernel), one gradient per integration
  step; timed with ``num_integration_steps`` 1 (a draw per gradient) and 10 (the default);
- ``sgld`` and ``psgld`` (RMSprop preconditioner): one gradient per step.

The cost ratio compares seconds per gradient step (the unit both do once): the issue's target is
SGHMC <= 1.3x Adam. Every run is compiled first (a cold call) and then timed warm: best of
``--repeats`` runs with new keys.

Run by hand (not in CI; about a minute on 2 cores, keep the machine otherwise idle)::

    .venv/bin/python benchmarks/sgmcmc.py [--steps 5000] [--repeats 3] [--out-dir DIR]

Writes ``sgmcmc.json`` and ``sgmcmc.md`` to ``--out-dir`` (default ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import optax
from ensemble_vmap import make_data

from posterax.inference import NetworkModel, SGMCMCSettings, sample_sgmcmc
from posterax.models import MLP, GaussianLikelihood, RegressionHead, WeightPrior


@dataclasses.dataclass(frozen=True)
class LogPrior:
    density: NetworkModel

    def __call__(self, position):
        return self.density.log_prior(position)


@dataclasses.dataclass(frozen=True)
class LogLikOne:
    density: NetworkModel

    def __call__(self, position, xy):
        return jnp.sum(self.density.log_likelihood(position, xy[0][None], xy[1][None]))


def adam_program(density: NetworkModel, n_data: int, batch: int, steps: int):
    optimizer = optax.adam(1e-3)

    def loss(position, Xb, yb):  # the samplers' target: prior + N/B * minibatch likelihood
        log_lik = jnp.sum(density.log_likelihood(position, Xb, yb))
        return -(density.log_prior(position) + n_data / batch * log_lik)

    @jax.jit
    def run(key, position, X, y):
        def step(carry, key):
            position, state = carry
            idx = jax.random.randint(key, (batch,), 0, n_data)
            grad = jax.grad(loss)(position, X[idx], y[idx])
            updates, state = optimizer.update(grad, state, position)
            return (optax.apply_updates(position, updates), state), None

        carry = (position, optimizer.init(position))
        (position, _), _ = jax.lax.scan(step, carry, jax.random.split(key, steps))
        return position

    return run


def best_of(repeats: int, fn) -> float:
    fn(jax.random.key(0))  # compile
    times = []
    for r in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(jax.random.key(r + 1)))
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5000, help="gradient steps per run")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out-dir", default="benchmarks/results")
    args = parser.parse_args()

    X, y = make_data()
    n, batch, steps = X.shape[0], args.batch_size, args.steps
    network = MLP((50, 50), "relu", 1)
    density = NetworkModel(
        RegressionHead(network), GaussianLikelihood(), WeightPrior("normal", (1.0,) * 3), 1.0
    )
    start = density.init_params(network.init(jax.random.key(0), X.shape[1]))
    n_params = sum(leaf.size for leaf in jax.tree_util.tree_leaves(start))

    adam = adam_program(density, n, batch, steps)
    rows = {
        "adam": {
            "gradients": steps,
            "seconds": best_of(args.repeats, lambda k: adam(k, start, X, y)),
        }
    }

    def sampler(name, **options):
        integration = options.get("num_integration_steps", 1)
        settings = SGMCMCSettings(
            step_size=1e-5 if "preconditioner" not in options else 5e-3,
            num_burnin=0,
            num_samples=steps // integration,
            batch_size=batch,
            **options,
        )
        starts = jax.tree_util.tree_map(lambda leaf: leaf[None], start)

        def run(key):
            return sample_sgmcmc(
                key, LogPrior(density), LogLikOne(density), starts, (X, y), settings
            ).samples

        rows[name] = {
            "gradients": settings.num_samples * integration,
            "draws": settings.num_samples,
            "seconds": best_of(args.repeats, run),
        }

    sampler("sghmc_L1", sampler="sghmc", num_integration_steps=1)
    sampler("sghmc_L10", sampler="sghmc", num_integration_steps=10)
    sampler("sgld", sampler="sgld")
    sampler("psgld", sampler="sgld", preconditioner="rmsprop")

    adam_per_step = rows["adam"]["seconds"] / rows["adam"]["gradients"]
    for row in rows.values():
        row["us_per_gradient"] = 1e6 * row["seconds"] / row["gradients"]
        row["ratio_vs_adam"] = row["seconds"] / row["gradients"] / adam_per_step
        if "draws" in row:
            row["draws_per_s"] = row["draws"] / row["seconds"]

    result = {
        "benchmark": "sgmcmc step cost vs adam",
        "problem": {
            "n": n,
            "d": int(X.shape[1]),
            "hidden": [50, 50],
            "params": int(n_params),
            "batch_size": batch,
            "gradient_steps": steps,
        },
        "runs": rows,
        "target": "sghmc seconds per gradient <= 1.3 x adam",
        "target_met": rows["sghmc_L1"]["ratio_vs_adam"] <= 1.3,
        "machine": {
            "platform": platform.platform(),
            "cpus": jax.device_count(),
            "backend": jax.default_backend(),
            "jax": jax.__version__,
        },
    }
    lines = [
        "| run | gradient steps | µs / gradient | × Adam | draws / s |",
        "|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        draws = f"{row['draws_per_s']:.0f}" if "draws_per_s" in row else ""
        lines.append(
            f"| {name} | {row['gradients']} | {row['us_per_gradient']:.1f} | "
            f"{row['ratio_vs_adam']:.2f} | {draws} |"
        )
    table = "\n".join(lines)
    print(table)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sgmcmc.json").write_text(json.dumps(result, indent=2))
    (out / "sgmcmc.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
