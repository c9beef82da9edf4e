"""Scale (issue 11): memory-bounded prediction at 10^6 inputs x 1,000 draws, and fitting an
ensemble of 8 members and NUTS with 8 chains on 1 vs 4 devices.

predictive
    A ``BayesianRegressor(method="vi", hidden=(50, 50), activation="relu", num_samples=1000)``
    (a 2x50 ReLU MLP, mean-field VI: 1,000 weight draws at prediction) is fitted on 500 rows of
    1-D data and saved; then, each in a fresh subprocess (so the peaks of ``ru_maxrss`` do not
    mix):

    - ``chunked``: ``reg.predict(X, return_std=True)`` and ``reg.predict_interval(X)`` at
      ``--n`` rows with ``max_memory=--max-memory``: row chunks sized from the budget, one
      compiled program per chunk from inputs to summaries (cold: compilation included);
    - ``naive_vmap``: ``reg.predict_samples(X)`` (``jax.vmap`` over all draws at all inputs at
      once: ``(S, N)`` outputs and ``S x N x 50`` activations) then mean and sd over draws, under
      ``RLIMIT_AS = --naive-limit-gib`` on a CPU, so running out of memory fails cleanly instead of
      taking the machine down; it is recorded as ``"out of memory"``.

    Peak memory is the process's ``ru_maxrss`` (RSS, CPU); ``peak_increase_mib`` is the peak
    minus the peak before predicting. On an accelerator the allocator's ``peak_bytes_in_use`` is
    recorded too.

devices
    Time to fit ``BayesianRegressor(method="ensemble", n_members=8, hidden=(32, 32))`` (``--rows``
    rows, 8 features) and ``BayesianRegressor(method="nuts", num_chains=8, hidden=(8,))`` (a
    quarter of those rows, 2 features) with ``devices=1`` and ``devices=4``. On a CPU every run
    sees ``--xla_force_host_platform_device_count=4`` (4 host devices), so only ``devices=``
    differs; on an accelerator "devices" are what ``jax.devices()`` has (one GPU: only
    ``devices=1`` runs). Each device count runs in its own subprocess, which fits each method
    twice: ``cold_s`` is the first fit (compilation included), ``warm_s`` the second.

Run by hand (not in CI)::

    .venv/bin/python benchmarks/scale.py [--quick] [--n 1000000] [--draws 1000]
        [--max-memory 1GB] [--naive-limit-gib 16] [--skip devices] [--out FILE.json]

The full run takes about 10 minutes on 2 CPU cores, most of it the chunked prediction (``--quick``:
about a minute, mostly compilation). Writes the JSON to ``--out`` (default
``benchmarks/results/scale.json``) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FORCED_HOST_DEVICES = 4


# ----------------------------------------------------------------------------------------------
# Children: each measurement in its own process.


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _device_peak_mib() -> float | None:
    import jax

    stats = jax.devices()[0].memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return None if peak is None else peak / 2**20


def _data(n: int, d: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.uniform(-3, 3, (n, d))
    y = np.sin(X).sum(axis=1) + 0.1 * X[:, 0] * X[:, -1] + 0.3 * rng.normal(size=n)
    return X, y


def child_probe(args) -> dict:
    import jax

    return {
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "jax": jax.__version__,
    }


def child_fit(args) -> dict:
    import posterax as px

    X, y = _data(500, 1)
    reg = px.BayesianRegressor(
        method=px.methods.VI(
            num_samples=args.draws, training=px.methods.Training(num_epochs=args.epochs)
        ),
        network=px.networks.MLP(hidden=(50, 50), activation="relu"),
        progress_bar=False,
        random_state=0,
    )
    start = time.perf_counter()
    reg.fit(X, y)
    seconds = time.perf_counter() - start
    reg.save(args.model, overwrite=True)
    return {"fit_s": seconds, "probe": child_probe(args)}


def _inputs(n: int):
    import numpy as np

    return np.random.default_rng(1).uniform(-4, 4, (n, 1))


def child_chunked(args) -> dict:
    import numpy as np

    import posterax as px
    from posterax.predictive import chunking

    max_memory = None if args.max_memory.lower() == "none" else args.max_memory
    reg = px.load(args.model).set_params(max_memory=max_memory)
    X = _inputs(args.n)
    rows = []
    plan = chunking.plan_rows

    def spy(*a, **k):  # record the chunk size the budget gives
        rows.append(plan(*a, **k))
        return rows[-1]

    chunking.plan_rows = spy
    before = _peak_rss_mib()
    start = time.perf_counter()
    mean, std = reg.predict(X, return_std=True)
    predict_s = time.perf_counter() - start
    start = time.perf_counter()
    lower, upper = reg.predict_interval(X, level=0.95)
    interval_s = time.perf_counter() - start
    np.save(Path(args.model) / "chunked_mean.npy", mean)
    np.save(Path(args.model) / "chunked_std.npy", std)
    from posterax.predictive.memory import resolve_budget

    budget = resolve_budget(max_memory, where="scale")
    peak = _peak_rss_mib()
    return {
        "status": "ok",
        "max_memory": max_memory,
        "budget_mib": budget / 2**20,
        "rows_per_chunk": rows[0] if rows else None,
        "predict_s": predict_s,
        "predict_interval_s": interval_s,
        "rss_before_predict_mib": before,
        "peak_rss_mib": peak,
        "peak_increase_mib": peak - before,
        "within_budget": bool(peak - before <= budget / 2**20),
        "device_peak_mib": _device_peak_mib(),
        "mean_interval_width": float(np.mean(upper - lower)),
    }


def child_naive(args) -> dict:
    import numpy as np

    import posterax as px
    from posterax.predictive import predictive_mean, predictive_std

    reg = px.load(args.model)
    X = _inputs(args.n)
    before = _peak_rss_mib()
    start = time.perf_counter()
    try:
        pred = reg.predict_samples(X)  # jax.vmap over every draw at every input at once
        mean = np.asarray(predictive_mean(pred)) * 1.0
        std = np.asarray(predictive_std(pred)) * 1.0
    except (MemoryError, RuntimeError, ValueError) as err:  # XlaRuntimeError is a RuntimeError
        text = f"{type(err).__name__}: {err}"
        oom = any(k in text.lower() for k in ("memory", "resource_exhausted", "alloc"))
        return {
            "status": "out of memory" if oom else "error",
            "error": text[:400],
            "seconds_to_failure": time.perf_counter() - start,
            "peak_rss_mib": _peak_rss_mib(),
        }
    seconds = time.perf_counter() - start
    np.save(Path(args.model) / "naive_mean.npy", mean)
    np.save(Path(args.model) / "naive_std.npy", std)
    peak = _peak_rss_mib()
    return {
        "status": "ok",
        "predict_s": seconds,
        "rss_before_predict_mib": before,
        "peak_rss_mib": peak,
        "peak_increase_mib": peak - before,
        "device_peak_mib": _device_peak_mib(),
    }


def _nuts_rows(args) -> int:
    return max(50, args.rows // 4)  # NUTS: full-data gradients, so a quarter of the rows


def _estimator(method: str, args):
    import posterax as px

    if method == "ensemble":
        X, y = _data(args.rows, 8)
        est = px.BayesianRegressor(
            method=px.methods.Ensemble(
                num_members=8, training=px.methods.Training(num_epochs=args.epochs, batch_size=64)
            ),
            network=(32, 32),
            progress_bar=False,
            devices=args.devices,
            random_state=0,
        )
    else:
        X, y = _data(_nuts_rows(args), 2)
        est = px.BayesianRegressor(
            method=px.methods.NUTS(
                num_chains=8,
                num_warmup=args.nuts_steps,
                num_samples=args.nuts_steps,
                max_tree_depth=args.tree_depth,
            ),
            network=(8,),
            progress_bar=False,
            devices=args.devices,
            random_state=0,
        )
    return est, X, y


def child_devices(args) -> dict:
    """Both methods with ``devices=args.devices``: each fitted twice (cold, then warm)."""
    import warnings

    import jax
    import jax.numpy as jnp
    from sklearn.base import clone

    jnp.zeros(1).block_until_ready()  # start the backend before any clock runs
    out = {"devices_visible": len(jax.devices()), "devices_used": args.devices}
    for method in ("ensemble", "nuts"):
        est, X, y = _estimator(method, args)
        times = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # short chains: convergence warnings are expected
            for _ in range(2):
                fresh = clone(est)
                start = time.perf_counter()
                fresh.fit(X, y)
                times.append(time.perf_counter() - start)
        out[method] = {"cold_s": times[0], "warm_s": times[1]}
    return out


CHILDREN = {
    "probe": child_probe,
    "fit": child_fit,
    "chunked": child_chunked,
    "naive": child_naive,
    "devices": child_devices,
}


def run_child(kind: str, args, extra: list[str], env: dict | None = None) -> dict:
    """Run ``kind`` in a fresh interpreter; its last stdout line is its JSON result."""
    cmd = [sys.executable, __file__, "--child", kind, *_forward(args), *extra]
    full_env = dict(os.environ, **(env or {}))
    full_env.setdefault("PYTHONPATH", str(HERE.parent / "src"))
    # Large arrays are mapped and unmapped, so freed temporaries leave RSS (as in
    # conformal_vs_mapie.py): peaks are not hidden by re-used heap pages.
    full_env.setdefault("MALLOC_MMAP_THRESHOLD_", "131072")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode == 0 and lines:
        return json.loads(lines[-1])
    tail = (proc.stderr or proc.stdout)[-600:]
    oom = proc.returncode < 0 or any(
        k in tail.lower() for k in ("memory", "resource_exhausted", "bad_alloc", "killed")
    )
    return {
        "status": "out of memory" if oom else "error",
        "returncode": proc.returncode,
        "error": tail,
    }


def _forward(args) -> list[str]:
    """The settings a child needs, as command-line options."""
    return [
        "--n", str(args.n),
        "--draws", str(args.draws),
        "--epochs", str(args.epochs),
        "--max-memory", str(args.max_memory),
        "--model", str(args.model),
        "--rows", str(args.rows),
        "--nuts-steps", str(args.nuts_steps),
        "--tree-depth", str(args.tree_depth),
        "--naive-limit-gib", str(args.naive_limit_gib),
    ]  # fmt: skip


# ----------------------------------------------------------------------------------------------
# Parent.


def predictive_section(args, fit: dict) -> dict:
    import numpy as np

    backend = fit["probe"]["backend"]
    print(f"fitted VI with {args.draws} draws in {fit['fit_s']:.1f} s", file=sys.stderr)
    chunked = run_child("chunked", args, [])
    print(f"chunked: {chunked}", file=sys.stderr)
    naive_extra = []
    limit = args.naive_limit_gib if backend == "cpu" else 0  # CUDA reserves address space
    if limit:
        naive_extra = ["--rlimit-gib", str(limit)]
    naive = run_child("naive", args, naive_extra)
    naive["address_space_limit_gib"] = limit or None
    print(f"naive: {naive}", file=sys.stderr)
    model = Path(args.model)
    if chunked.get("status") == "ok" and naive.get("status") == "ok":
        naive["max_abs_diff_mean_vs_chunked"] = float(
            np.max(np.abs(np.load(model / "naive_mean.npy") - np.load(model / "chunked_mean.npy")))
        )
        naive["max_abs_diff_std_vs_chunked"] = float(
            np.max(np.abs(np.load(model / "naive_std.npy") - np.load(model / "chunked_std.npy")))
        )
    return {
        "problem": {
            "inputs": args.n,
            "draws": args.draws,
            "network": "2x50 relu, 1 input",
            "posterior": "mean-field VI (BayesianRegressor(method='vi'))",
            "fit_s": fit["fit_s"],
        },
        "chunked": chunked,
        "naive_vmap": naive,
    }


def devices_section(args, backend: str, n_devices: int) -> dict:
    env = {}
    if backend == "cpu":
        flags = os.environ.get("XLA_FLAGS", "")
        env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={FORCED_HOST_DEVICES}"
        counts = [1, FORCED_HOST_DEVICES]
    else:
        counts = sorted({1, min(FORCED_HOST_DEVICES, n_devices)})
    out = {
        "backend": backend,
        "forced_host_devices": FORCED_HOST_DEVICES if backend == "cpu" else None,
        "cpus": os.cpu_count(),
    }
    runs = {}
    for k in counts:
        runs[k] = run_child("devices", args, ["--devices", str(k)], env=env)
        print(f"devices={k}: {runs[k]}", file=sys.stderr)
    for method in ("ensemble", "nuts"):
        rows = {str(k): runs[k].get(method, runs[k]) for k in counts}
        one, many = rows["1"], rows[str(counts[-1])]
        if len(counts) > 1 and "warm_s" in one and "warm_s" in many:
            rows["speedup_warm"] = one["warm_s"] / many["warm_s"]
            rows["speedup_cold"] = one["cold_s"] / many["cold_s"]
        out[method] = rows
    out["settings"] = {
        "ensemble": {"n_members": 8, "hidden": [32, 32], "rows": args.rows, "features": 8,
                     "num_epochs": args.epochs, "batch_size": 64},
        "nuts": {"num_chains": 8, "hidden": [8], "rows": _nuts_rows(args), "features": 2,
                 "num_warmup": args.nuts_steps, "num_samples": args.nuts_steps,
                 "max_tree_depth": args.tree_depth},
    }  # fmt: skip
    return out


def _table(result: dict) -> str:
    lines = []
    pred = result.get("predictive")
    if pred and "chunked" in pred:
        p = pred["problem"]
        lines.append(f"predictive: {p['inputs']:,} inputs x {p['draws']} draws ({p['network']})")
        lines.append(
            "| run | status | predict (s) | interval (s) | peak RSS (MiB) | increase (MiB) |"
        )
        lines.append("| --- | --- | ---: | ---: | ---: | ---: |")
        for name in ("chunked", "naive_vmap"):
            r = pred[name]
            lines.append(
                f"| {name} | {r.get('status')} | {r.get('predict_s', float('nan')):.1f} | "
                f"{r.get('predict_interval_s', float('nan')):.1f} | "
                f"{r.get('peak_rss_mib', float('nan')):.0f} | "
                f"{r.get('peak_increase_mib', float('nan')):.0f} |"
            )
        c = pred["chunked"]
        if c.get("status") == "ok":
            lines.append(
                f"chunked: max_memory={c['max_memory']} ({c['budget_mib']:.0f} MiB), "
                f"{c['rows_per_chunk']} rows per chunk, within budget: {c['within_budget']}"
            )
    dev = result.get("devices")
    if dev:
        lines.append("")
        lines.append(f"devices ({dev['backend']}, {dev['cpus']} CPUs)")
        lines.append("| method | devices | cold (s) | warm (s) |")
        lines.append("| --- | ---: | ---: | ---: |")
        for method in ("ensemble", "nuts"):
            for k, r in dev[method].items():
                if isinstance(r, dict):
                    lines.append(
                        f"| {method} | {k} | {r.get('cold_s', float('nan')):.2f} | "
                        f"{r.get('warm_s', float('nan')):.2f} |"
                    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (under a minute)")
    parser.add_argument("--n", type=int, default=None, help="prediction inputs (10^6)")
    parser.add_argument("--draws", type=int, default=None, help="posterior draws (1000)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument(
        "--max-memory", default="1GB", help="max_memory of the chunked run ('none': the default)"
    )
    parser.add_argument("--naive-limit-gib", type=float, default=16.0)
    parser.add_argument("--rows", type=int, default=None, help="training rows (devices)")
    parser.add_argument("--nuts-steps", type=int, default=None, help="NUTS warmup = samples")
    parser.add_argument("--tree-depth", type=int, default=None, help="NUTS max_tree_depth")
    parser.add_argument("--skip", nargs="*", default=[], choices=("predictive", "devices"))
    parser.add_argument("--out", default=str(HERE / "results" / "scale.json"))
    # Internal: one measurement in a child process.
    parser.add_argument("--child", choices=tuple(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--model", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--devices", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--rlimit-gib", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    quick = args.quick
    defaults = {
        "n": 20_000 if quick else 1_000_000,
        "draws": 200 if quick else 1000,
        "epochs": 3 if quick else 50,
        "rows": 256 if quick else 2000,
        "nuts_steps": 20 if quick else 200,
        "tree_depth": 3 if quick else 6,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)

    if args.child:
        if args.rlimit_gib:
            limit = int(args.rlimit_gib * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        print(json.dumps(CHILDREN[args.child](args)))
        return

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="posterax-scale-") as tmp:
        args.model = str(Path(tmp) / "model")
        # The first child fits the model of the predictive runs and says what JAX runs on.
        fit = run_child("fit", args, []) if "predictive" not in args.skip else None
        probe = fit.get("probe") if fit else run_child("probe", args, [])
        if not probe or "backend" not in probe:
            sys.exit(f"JAX did not start: {fit or probe}")
        backend = probe["backend"]
        result = {
            "benchmark": "scale",
            "quick": quick,
            "machine": {
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "jax": probe["jax"],
                "backend": backend,
                "devices": probe["devices"],
                "load_average_at_start": list(os.getloadavg()),
            },
        }
        if "predictive" not in args.skip:
            result["predictive"] = predictive_section(args, fit)
        if "devices" not in args.skip:
            result["devices"] = devices_section(args, backend, len(probe["devices"]))
    result["machine"]["load_average_at_end"] = list(os.getloadavg())
    result["total_s"] = time.perf_counter() - start
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(_table(result))
    print(f"wrote {args.out} ({result['total_s']:.0f} s)")


if __name__ == "__main__":
    main()
