"""Split conformal on precomputed predictions: posterax vs MAPIE 1.6 (time and peak memory).

Two tasks on 1,000,000 calibration and 1,000,000 test points (issue 8):

- regression: absolute-residual split conformal intervals at 90%;
- classification: APS prediction sets at 90% over K = 10 classes.

Every (library, task) runs in a fresh subprocess that generates the same data from a fixed seed,
resets the peak-RSS counter (``/proc/self/clear_refs``), runs calibrate + predict ``--repeats``
times, and reports the wall time of each run and the peak resident memory above the RSS before
the first run (the working memory of the method; inputs are already in memory; glibc's mmap
threshold is fixed so freed temporaries really leave RSS). posterax runs in
float64 (``jax.enable_x64``) to match MAPIE. MAPIE runs in ``benchmarks/.venv-peers`` (created with
``python -m venv benchmarks/.venv-peers && benchmarks/.venv-peers/bin/pip install mapie==1.6.0``),
never as a dependency of posterax.

Usage::

    .venv/bin/python benchmarks/conformal_vs_mapie.py [--n 1000000] [--repeats 3]

Writes ``benchmarks/results/conformal_vs_mapie.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS_PYTHON = HERE / ".venv-peers" / "bin" / "python"
N_CLASSES = 10
ALPHA = 0.1


def _status(key: str) -> int:
    """A /proc/self/status field in bytes (VmRSS, VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def _data(task: str, n: int):
    import numpy as np

    rng = np.random.default_rng(0)
    if task == "regression":
        x = rng.uniform(-3, 3, 2 * n)
        y = np.sin(x) + (0.1 + 0.2 * np.abs(x)) * rng.normal(size=2 * n)
        pred = np.sin(x) + 0.05 * x
        return y[:n], pred[:n], pred[n:], y[n:]
    z = 1.5 * rng.normal(size=(2 * n, N_CLASSES))
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    y = (rng.uniform(size=(2 * n, 1)) > np.cumsum(p, axis=1)).sum(axis=1).clip(0, N_CLASSES - 1)
    return y[:n], p[:n], p[n:], y[n:]


def _posterax_runner(task: str):
    import jax

    jax.config.update("jax_enable_x64", True)
    from posterax.conformal import conformal_prediction_sets, split_conformal_interval

    if task == "regression":

        def run(y_cal, pred_cal, pred_test):
            lo, hi = split_conformal_interval(y_cal, pred_cal, pred_test, alpha=ALPHA)
            return jax.block_until_ready((lo, hi))

    else:

        def run(y_cal, p_cal, p_test):
            sets = conformal_prediction_sets(y_cal, p_cal, p_test, alpha=ALPHA, score="aps")
            return jax.block_until_ready(sets)

    return run


def _mapie_runner(task: str):
    import numpy as np
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

    if task == "regression":
        from mapie.regression import SplitConformalRegressor

        class Precomputed(RegressorMixin, BaseEstimator):
            def fit(self, X, y=None):
                self.n_features_in_ = 1
                return self

            def predict(self, X):
                return X[:, 0]

        model = Precomputed().fit(np.zeros((1, 1)))

        def run(y_cal, pred_cal, pred_test):
            scr = SplitConformalRegressor(model, confidence_level=1 - ALPHA, prefit=True)
            scr.conformalize(pred_cal[:, None], y_cal)
            return scr.predict_interval(pred_test[:, None])

    else:
        from mapie.classification import SplitConformalClassifier

        class PrecomputedProba(ClassifierMixin, BaseEstimator):
            def fit(self, X, y):
                self.classes_ = np.arange(N_CLASSES)
                self.n_features_in_ = N_CLASSES
                return self

            def predict_proba(self, X):
                return X

            def predict(self, X):
                return X.argmax(axis=1)

        model = PrecomputedProba().fit(np.eye(N_CLASSES), np.arange(N_CLASSES))

        def run(y_cal, p_cal, p_test):
            scc = SplitConformalClassifier(
                model, confidence_level=1 - ALPHA, conformity_score="aps", prefit=True,
                random_state=0,
            )
            scc.conformalize(p_cal, y_cal)
            return scc.predict_set(p_test)

    return run


def _summary(task: str, library: str, out, y_test) -> dict:
    import numpy as np

    if task == "regression":
        if library == "mapie":
            lo, hi = out[1][:, 0, 0], out[1][:, 1, 0]
        else:
            lo, hi = np.asarray(out[0]), np.asarray(out[1])
        return {
            "coverage": float(np.mean((lo <= y_test) & (y_test <= hi))),
            "mean_width": float(np.mean(hi - lo)),
        }
    sets = out[1][:, :, 0] if library == "mapie" else np.asarray(out)
    return {
        "coverage": float(np.mean(sets[np.arange(len(y_test)), y_test])),
        "mean_set_size": float(sets.sum(axis=1).mean()),
    }


def child(library: str, task: str, n: int, repeats: int) -> dict:
    """Run one case in this process; return its measurements."""
    import ctypes
    import gc

    runner = _posterax_runner(task) if library == "posterax" else _mapie_runner(task)
    y_cal, a_cal, a_test, y_test = _data(task, n)
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed data-generation memory back
    baseline = _status("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak-RSS counter
    times = []
    out = None
    for _ in range(repeats):
        out = None
        gc.collect()
        t0 = time.perf_counter()
        out = runner(y_cal, a_cal, a_test)
        times.append(time.perf_counter() - t0)
    peak = _status("VmHWM") - baseline
    result = {
        "library": library,
        "task": task,
        "n_cal": n,
        "n_test": n,
        "times_s": times,
        "first_s": times[0],
        "best_s": min(times),
        "peak_extra_mib": peak / 2**20,
        "input_mib": sum(getattr(a, "nbytes", 0) for a in (y_cal, a_cal, a_test)) / 2**20,
    }
    result.update(_summary(task, library, out, y_test))
    if library == "mapie":
        import mapie

        result["version"] = mapie.__version__
    else:
        import jax

        result["version"] = f"posterax (jax {jax.__version__})"
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("LIBRARY", "TASK"))
    parser.add_argument("--out", default=str(HERE / "results" / "conformal_vs_mapie.json"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.n, args.repeats)))
        return

    peers = str(PEERS_PYTHON) if PEERS_PYTHON.exists() else None
    if peers is None:
        sys.exit(
            "MAPIE runs in benchmarks/.venv-peers: python -m venv benchmarks/.venv-peers && "
            "benchmarks/.venv-peers/bin/pip install mapie==1.6.0"
        )
    # A fixed mmap threshold: large arrays are mapped and unmapped, so freed temporaries leave
    # RSS and peaks are not hidden by re-used heap pages (same setting for both libraries).
    env = dict(os.environ, PYTHONPATH=str(HERE.parent / "src"), MALLOC_MMAP_THRESHOLD_="131072")
    rows = []
    for task in ("regression", "aps"):
        for library, python in (("posterax", sys.executable), ("mapie", peers)):
            cmd = [python, __file__, "--child", library, task, "--n", str(args.n),
                   "--repeats", str(args.repeats)]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            if proc.returncode != 0:
                sys.exit(f"{library}/{task} failed:\n{proc.stderr[-3000:]}")
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"done {library:8s} {task}", file=sys.stderr)

    ratios = {}
    for task in ("regression", "aps"):
        ours = next(r for r in rows if r["task"] == task and r["library"] == "posterax")
        theirs = next(r for r in rows if r["task"] == task and r["library"] == "mapie")
        ratios[task] = {
            "time_best": ours["best_s"] / theirs["best_s"],
            "time_first": ours["first_s"] / theirs["first_s"],
            "peak_memory": ours["peak_extra_mib"] / theirs["peak_extra_mib"],
        }
    report = {
        "benchmark": "conformal_vs_mapie",
        "alpha": ALPHA,
        "n_classes": N_CLASSES,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "rows": rows,
        "ratios_posterax_over_mapie": ratios,
        "target": "<= 0.5 for time and memory",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))

    head = (
        f"{'task':11s} {'library':9s} {'first s':>8s} {'best s':>8s} {'peak MiB':>9s} "
        f"{'coverage':>9s} {'size/width':>10s}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        extra = r.get("mean_width", r.get("mean_set_size"))
        print(f"{r['task']:11s} {r['library']:9s} {r['first_s']:8.3f} {r['best_s']:8.3f} "
              f"{r['peak_extra_mib']:9.1f} {r['coverage']:9.4f} {extra:10.4f}")
    for task, rat in ratios.items():
        print(f"{task}: posterax / MAPIE  time (best) {rat['time_best']:.3f}x, "
              f"time (first call) {rat['time_first']:.3f}x, peak memory {rat['peak_memory']:.3f}x")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
