"""Last-layer NUTS on the reference image CNNs: time, leapfrog steps and ESS.

Problem: ``px.data.digits()`` with ``DigitsCNN`` (1,347 training images, last layer 64 x 10 + 10
= 650 weights) and ``px.data.mnist1d()`` with ``MNIST1DCNN`` (4,000 sequences, 125 x 10 + 10 =
1,260), each trained to its MAP with ``reference_training``, then
``px.methods.NUTS(num_warmup=500, num_samples=500, subset="last_layer")`` (one chain).

Reported per data set: the MAP's and last-layer NUTS's test accuracy; the fit's parts (MAP
training, setup = linearisation + affinity check + whitening Hessian, sampling with its
compilation); leapfrog steps per draw; min bulk / tail ESS in weight and function space; and
the cost of one gradient of the last layer's log posterior from the linearisation (features
computed once) against a full forward pass with the last layer substituted. With
``--diagonal`` the same chain is also run without the whitening (NUTS's diagonal adaptation
alone) for leapfrog steps and ESS per second.

    python benchmarks/last_layer_nuts_speed.py --data digits mnist1d --diagonal

Writes ``benchmarks/results/last_layer_nuts_speed.json``. CPU timings vary with the load of a
shared machine: the 1-minute load average is recorded.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import posterax as px
from posterax.inference import NetworkModel
from posterax.inference.chains import merge_chains
from posterax.inference.last_layer_nuts import (
    LastLayerDensity,
    _substituted,
    outputs_of_last_layer,
    selected,
)
from posterax.inference.nuts import sample_nuts
from posterax.inference.vi import Unraveler
from posterax.networks.reference import MNIST1DCNN, DigitsCNN, reference_training

NETWORKS = {"digits": DigitsCNN, "mnist1d": MNIST1DCNN}


def _fit(method, network, split):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # one chain of 500: R-hat is flagged
        return px.BayesianClassifier(
            network=network, method=method, progress_bar=False, random_state=0
        ).fit(split.X_train, split.y_train)


def _gradient_ms(density, outputs, y, position, repeats):
    grad = jax.jit(jax.grad(lambda p, out: density.log_density(p, out, y)))
    jax.block_until_ready(grad(position, outputs))
    start = time.perf_counter()
    for _ in range(repeats):
        result = grad(position, outputs)
    jax.block_until_ready(result)
    return 1e3 * (time.perf_counter() - start) / repeats


def _ess(values):
    """Min bulk and tail ESS over the columns of one chain's ``(draws, k)`` values."""
    import arviz as az

    data = az.convert_to_dataset({"v": np.asarray(values)[None]})
    bulk = float(np.min(az.ess(data, method="bulk")["v"]))
    tail = float(np.min(az.ess(data, method="tail")["v"]))
    return bulk, tail


def run(name: str, diagonal: bool) -> dict:
    split = px.data.digits() if name == "digits" else px.data.mnist1d()
    training = px.methods.Training(**reference_training(name))
    out = {"data": name, "n_train": len(split.X_train), "load_1min": os.getloadavg()[0]}
    map_clf = _fit(px.methods.MAP(training=training), NETWORKS[name](rngs=nnx.Rngs(0)), split)
    out["map_test_accuracy"] = float(np.mean(map_clf.predict(split.X_test) == split.y_test))
    nuts = px.methods.NUTS(num_warmup=500, num_samples=500, subset="last_layer", training=training)
    start = time.perf_counter()
    clf = _fit(nuts, NETWORKS[name](rngs=nnx.Rngs(0)), split)
    info, diag = clf.posterior_.info, clf.diagnostics()
    stats = info["sample_stats"]
    out["last_layer_nuts"] = {
        "test_accuracy": float(np.mean(clf.predict(split.X_test) == split.y_test)),
        "fit_seconds": time.perf_counter() - start,
        "map_train_seconds": info["train_seconds"],
        "setup_seconds": info["setup_seconds"],
        "sampling_seconds": info["sampling_seconds"],
        "n_last_layer_params": info["n_last_layer_params"],
        "outputs": info["last_layer_outputs"],
        "whitened": info["whitened"],
        "leapfrog_per_draw": float(stats["n_steps"].mean()),
        "divergences": int(stats["diverging"].sum()),
        "function_space": diag["function_space"],
        "weight_space": diag["weight_space"],
        "load_1min": os.getloadavg()[0],
    }
    # One gradient: linearisation vs a full pass with the last layer substituted.
    apply_fn = clf.posterior_.apply_fn
    frozen, mask = apply_fn.frozen, apply_fn.mask
    X = jnp.asarray(split.X_train, jnp.float32)
    y = jnp.asarray(np.searchsorted(clf.classes_, split.y_train))
    model = NetworkModel(apply_fn.apply_fn, clf.posterior_.likelihood)
    linear, _ = outputs_of_last_layer(model.apply_fn, frozen, mask, X, jax.random.key(0))
    full = jax.tree_util.Partial(functools.partial(_substituted, model.apply_fn, mask), frozen, X)
    position = {"net": selected(mask, frozen["net"])}
    density = LastLayerDensity(model, Unraveler.of(position))
    out["gradient_ms"] = {
        "linearized": _gradient_ms(density, linear, y, position, 200),
        "full_pass": _gradient_ms(density, full, y, position, 10),
    }
    if diagonal:  # the same chain in the weights' own coordinates (diagonal metric only)
        flat = jnp.concatenate([jnp.ravel(v) for v in jax.tree_util.tree_leaves(position)])
        scale = jnp.full(flat.shape, 0.1, flat.dtype)
        starts = jax.random.uniform(jax.random.key(1), (1, flat.shape[0]), minval=-1.0)
        run_ = sample_nuts(
            jax.random.key(2), density, jnp.zeros_like(flat), (linear, y, flat, scale),
            num_warmup=500, num_samples=500, initial_positions=starts, progress_bar=False,
        )  # fmt: skip
        z, _ = merge_chains(run_.samples)
        out["diagonal_only"] = {
            "sampling_seconds": run_.seconds,
            "leapfrog_per_draw": float(run_.sample_stats["n_steps"].mean()),
            "weight_space_min_ess_bulk_tail": _ess(flat + scale * z),
            "load_1min": os.getloadavg()[0],
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["digits"], choices=sorted(NETWORKS))
    parser.add_argument("--diagonal", action="store_true")
    parser.add_argument("--out", default="benchmarks/results/last_layer_nuts_speed.json")
    args = parser.parse_args()
    results = [run(name, args.diagonal) for name in args.data]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1, default=float))
    print(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
