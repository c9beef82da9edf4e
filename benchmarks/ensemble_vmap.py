"""Deep ensemble under ``jax.vmap`` vs the same members trained one after another, and the cost
of an epoch of ``"vi"`` (mean-field Bayes by backprop) relative to ``"map"`` (issue 5).

Problem: 10,000 x 8 synthetic regression (y = sum_j sin(x_j) + 0.1 * x_0 x_1 + 0.3 eps), a 2x50
ReLU MLP with a homoscedastic Gaussian likelihood (noise learned) and Normal(0, 1) priors,
Adam(1e-3), batch 128, the same number of epochs for every run. Everything goes through
``posterax.inference.train`` with the same loss object:

- ``vmapped``: ``train(..., num_members=M)``: one compiled program, members vmapped;
- ``sequential``: ``train(...)`` called M times (the compiled epoch program is reused, so only
  the first member pays compilation).

Cold = first call in the process (tracing + compilation included); warm = the same call again
with a new key. The targets in the issue: vmapped >= 2x faster than sequential on 2 CPU cores;
VI time per epoch <= 2x MAP.

With ``--host-devices K`` (K forced XLA host devices, one thread each) a third run shards the
member axis of the vmapped program over the K devices (``NamedSharding``; GSPMD partitions the
one compiled program): how a vmapped ensemble uses more than one CPU core.

Run by hand (not in CI; about two minutes on 2 cores, keep the machine otherwise idle)::

    .venv/bin/python benchmarks/ensemble_vmap.py [--members 5] [--epochs 10] [--host-devices 2]
        [--out-dir DIR]

Writes ``ensemble_vmap.json`` and ``ensemble_vmap.md`` to ``--out-dir``
(default ``benchmarks/results``) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

if "--host-devices" in sys.argv:  # must be set before JAX starts
    _n = sys.argv[sys.argv.index("--host-devices") + 1]
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={_n}"
    ).strip()

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from posterax.inference import NetworkModel, train
from posterax.inference.vi import INIT_SCALE, MeanFieldELBO, _softplus_inverse
from posterax.models import MLP, GaussianLikelihood, RegressionHead, WeightPrior


def make_data(n: int = 10_000, d: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = np.sin(X).sum(axis=1) + 0.1 * X[:, 0] * X[:, 1] + 0.3 * rng.normal(size=n)
    y = (y - y.mean()) / y.std()
    return jnp.asarray(X), jnp.asarray(y.astype(np.float32))


def timed(fn):
    start = time.perf_counter()
    result = fn()
    jax.block_until_ready(result.params)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--host-devices", type=int, default=1, help="forced XLA host devices")
    parser.add_argument("--out-dir", default="benchmarks/results")
    args = parser.parse_args()

    X, y = make_data()
    net = MLP((50, 50), "relu", 1)
    model = NetworkModel(RegressionHead(net), GaussianLikelihood(), WeightPrior("normal", (1.0,)))
    optimizer = optax.adam(1e-3)
    map_loss = model.map_loss(X.shape[0])
    settings = dict(num_epochs=args.epochs, batch_size=args.batch_size, progress_bar=False)
    M = args.members

    def members_init(key):
        return jax.vmap(lambda k: model.init_params(net.init(k, X.shape[1])))(
            jax.random.split(key, M)
        )

    def vmapped(key):
        return train(key, map_loss, members_init(key), (X, y), optimizer, num_members=M, **settings)

    def sequential(key):
        results = []
        for m in range(M):
            k = jax.random.fold_in(key, m)
            params = model.init_params(net.init(k, X.shape[1]))
            results.append(train(k, map_loss, params, (X, y), optimizer, **settings))
        return results[-1]

    devices = jax.devices()

    def vmapped_sharded(key):
        mesh = Mesh(np.array(devices), ("members",))
        params = jax.device_put(members_init(key), NamedSharding(mesh, PartitionSpec("members")))
        return train(key, map_loss, params, (X, y), optimizer, num_members=M, **settings)

    runs = [("vmapped", vmapped), ("sequential", sequential)]
    if len(devices) > 1:
        runs.append((f"vmapped_sharded_{len(devices)}dev", vmapped_sharded))
    rows = {}
    for name, fn in runs:
        cold, _ = timed(lambda fn=fn: fn(jax.random.key(0)))
        warm, _ = timed(lambda fn=fn: fn(jax.random.key(1)))
        rows[name] = {"cold_s": cold, "warm_s": warm}
        print(f"{name:10s} cold {cold:7.2f} s   warm {warm:7.2f} s", flush=True)

    # One network: time per epoch of MAP vs mean-field VI (local reparameterisation), warm.
    raw = _softplus_inverse(INIT_SCALE)
    vi_loss = MeanFieldELBO(model, X.shape[0])

    def fit_map(key):
        return train(
            key, map_loss, model.init_params(net.init(key, 8)), (X, y), optimizer, **settings
        )

    def fit_vi(key):
        start = model.init_params(net.init(key, 8))
        variational = {
            "loc": start["net"],
            "raw_scale": jax.tree_util.tree_map(lambda w: w * 0 + raw, start["net"]),
            "log_sigma": start["log_sigma"],
        }
        return train(key, vi_loss, variational, (X, y), optimizer, **settings)

    per_epoch = {}
    for name, fn in (("map", fit_map), ("vi", fit_vi)):
        timed(lambda fn=fn: fn(jax.random.key(0)))
        warm, _ = timed(lambda fn=fn: fn(jax.random.key(1)))
        per_epoch[name] = warm / args.epochs
        print(f"{name:10s} {1e3 * per_epoch[name]:7.1f} ms / epoch", flush=True)

    result = {
        "problem": {"n": int(X.shape[0]), "d": int(X.shape[1]), "network": "2x50 relu"},
        "members": M,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "ensemble": rows,
        "speedup_warm": rows["sequential"]["warm_s"] / rows["vmapped"]["warm_s"],
        "speedup_cold": rows["sequential"]["cold_s"] / rows["vmapped"]["cold_s"],
        "speedup_warm_sharded": (
            rows["sequential"]["warm_s"] / rows[runs[2][0]]["warm_s"] if len(runs) > 2 else None
        ),
        "seconds_per_epoch": per_epoch,
        "vi_over_map_per_epoch": per_epoch["vi"] / per_epoch["map"],
        "targets": {"speedup_warm": ">= 2", "vi_over_map_per_epoch": "<= 2"},
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "jax": jax.__version__,
            "devices": [str(d) for d in devices],
        },
    }
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ensemble_vmap.json").write_text(json.dumps(result, indent=2))
    table = [
        "| run | cold (s) | warm (s) |",
        "| --- | ---: | ---: |",
        *(f"| {k} | {v['cold_s']:.2f} | {v['warm_s']:.2f} |" for k, v in rows.items()),
        "",
        f"vmapped speed-up (warm): {result['speedup_warm']:.2f}x; "
        f"cold: {result['speedup_cold']:.2f}x"
        + (
            f"; vmapped + sharded over {len(devices)} host devices (warm): "
            f"{result['speedup_warm_sharded']:.2f}x"
            if result["speedup_warm_sharded"]
            else ""
        ),
        f"VI / MAP time per epoch: {result['vi_over_map_per_epoch']:.2f}x "
        f"({1e3 * per_epoch['vi']:.1f} vs {1e3 * per_epoch['map']:.1f} ms)",
    ]
    (out / "ensemble_vmap.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
