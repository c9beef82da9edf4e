"""Cross-conformal regression: posterax vs MAPIE 1.6 (time and peak memory; issue 22).

Cases (90% intervals, ``method="plus"``, scikit-learn ``Ridge()`` as the estimator of both):

- CV+: ``KFold(10, shuffle=True, random_state=0)`` at n = 10^4 and 10^5;
- jackknife+-after-bootstrap: MAPIE's ``Subsample(n_resamplings=20, random_state=0)`` at
  n = 10^4 and 10^5;
- jackknife+: ``LeaveOneOut()`` at n = 10^4 (at 10^5 it is skipped: 10^5 refits and 10^5
  stored models in both libraries, and MAPIE's dense (n, n) out-of-fold mask alone is 80 GB).

The same splitter object (a fixed ``random_state``, so every ``split`` call gives the same
folds / bootstrap samples) goes to both libraries, on the same data (X ~ N(0, I_10),
y = X beta + heteroscedastic noise) and m = 1,000 test points: the interval step is an
(n x m) computation in both libraries, so m = 1,000 makes it weigh as much as the K fits at
n = 10^5 (10^8 entries) while MAPIE's dense (m, n) arrays still fit in memory here.

Every (library, case) runs in a fresh subprocess: a warm-up on 2,000 training points (imports,
first calls), then ``--repeats`` runs of ``fit_conformalize`` and ``predict_interval``, timed
separately. Peak memory is the peak resident set (``VmHWM``, reset through
``/proc/self/clear_refs`` before each phase) above the RSS before the phase, the data already
in memory; glibc's mmap threshold is fixed for both so freed temporaries really leave RSS. A
last, untimed run under ``tracemalloc`` (numpy reports its buffers to it) gives a second,
allocator-independent peak. The two libraries run one after the other for each case (in the
same run), and ``os.getloadavg()`` is recorded around each child: the machine may be shared.
Each child saves its intervals and the parent records the max abs difference between them.

MAPIE runs in ``benchmarks/.venv-peers`` when it exists (see ``conformal_vs_mapie.py``), else
in this interpreter when it can import ``mapie`` (posterax's dev extra pins mapie 1.6).

Usage::

    .venv/bin/python benchmarks/cross_conformal_vs_mapie.py [--repeats 3] [--m 1000]
        [--cases cv+:10000,cv+:100000,jab:10000,jab:100000,jackknife+:10000]

Writes ``benchmarks/results/cross_conformal_vs_mapie.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS_PYTHON = HERE / ".venv-peers" / "bin" / "python"
ALPHA = 0.1
N_FEATURES = 10
N_FOLDS = 10
N_RESAMPLINGS = 20
CASES = "cv+:10000,cv+:100000,jab:10000,jab:100000,jackknife+:10000,jackknife+:100000"
SKIP = {
    ("jackknife+", 100_000): "10^5 refits and 10^5 stored models in both libraries; MAPIE's "
    "dense (n, n) float64 out-of-fold mask k_ alone would take 80 GB",
}


def _status(key: str) -> int:
    """A /proc/self/status field in bytes (VmRSS, VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def _reset_peak() -> int:
    import ctypes
    import gc

    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak-RSS counter
    return _status("VmRSS")


def _data(n: int, m: int):
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(n + m, N_FEATURES))
    beta = np.linspace(-1.0, 1.0, N_FEATURES)
    y = X @ beta + (0.5 + 0.5 * np.abs(X[:, 0])) * rng.normal(size=n + m)
    return X[:n].copy(), y[:n].copy(), X[n:].copy()


def _splitter(case: str):
    from sklearn.model_selection import KFold, LeaveOneOut

    if case == "cv+":
        return KFold(N_FOLDS, shuffle=True, random_state=0)
    if case == "jackknife+":
        return LeaveOneOut()
    from mapie.subsample import Subsample

    return Subsample(n_resamplings=N_RESAMPLINGS, random_state=0)


def _runner(library: str, case: str):
    """``(fit(X, y) -> model, interval(model, X_test) -> (lower, upper))``."""
    import numpy as np
    from sklearn.linear_model import Ridge

    if library == "posterax":
        from posterax.conformal import CrossConformalRegressor, JackknifeAfterBootstrapRegressor

        def fit(X, y):
            if case == "jab":
                model = JackknifeAfterBootstrapRegressor(
                    Ridge(), 1 - ALPHA, method="plus", resampling=_splitter(case)
                )
            else:
                model = CrossConformalRegressor(
                    Ridge(), 1 - ALPHA, method="plus", cv=_splitter(case)
                )
            return model.fit_conformalize(X, y)

        def interval(model, X_test):
            lower, upper = model.predict_interval(X_test)
            return np.asarray(lower), np.asarray(upper)

    else:
        from mapie.regression import CrossConformalRegressor, JackknifeAfterBootstrapRegressor

        def fit(X, y):
            if case == "jab":
                model = JackknifeAfterBootstrapRegressor(
                    Ridge(), confidence_level=1 - ALPHA, method="plus", resampling=_splitter(case)
                )
            else:
                model = CrossConformalRegressor(
                    Ridge(), confidence_level=1 - ALPHA, method="plus", cv=_splitter(case)
                )
            return model.fit_conformalize(X, y)

        def interval(model, X_test):
            _, bounds = model.predict_interval(X_test)
            return bounds[:, 0, 0], bounds[:, 1, 0]

    return fit, interval


def child(library: str, case: str, n: int, m: int, repeats: int, save: str) -> dict:
    """Run one (library, case) in this process; return its measurements."""
    import tracemalloc

    import numpy as np

    fit, interval = _runner(library, case)
    X, y, X_test = _data(n, m)
    interval(fit(X[:2000], y[:2000]), X_test[:50])  # warm-up: imports, first calls
    fit_s, predict_s, fit_peak, predict_peak, total_peak = [], [], [], [], []
    model = lower = upper = None
    for _ in range(repeats):
        model = lower = upper = None
        base = _reset_peak()
        t0 = time.perf_counter()
        model = fit(X, y)
        t1 = time.perf_counter()
        fit_peak.append(_status("VmHWM") - base)
        held = _reset_peak()  # the fitted models stay in memory for the prediction
        t2 = time.perf_counter()
        lower, upper = interval(model, X_test)
        t3 = time.perf_counter()
        predict_peak.append(_status("VmHWM") - held)
        total_peak.append(max(fit_peak[-1], held - base + predict_peak[-1]))
        fit_s.append(t1 - t0)
        predict_s.append(t3 - t2)
    np.save(save, np.stack([lower, upper]))
    model = lower = upper = None
    _reset_peak()
    tracemalloc.start()
    model = fit(X, y)
    fit_traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.reset_peak()
    held_traced = tracemalloc.get_traced_memory()[0]
    interval(model, X_test)
    predict_traced = tracemalloc.get_traced_memory()[1] - held_traced
    tracemalloc.stop()
    total = [f + p for f, p in zip(fit_s, predict_s, strict=True)]
    mib = 2**20
    result = {
        "library": library,
        "case": case,
        "n": n,
        "m": m,
        "fit_s": fit_s,
        "predict_s": predict_s,
        "total_s": total,
        "best_fit_s": min(fit_s),
        "best_predict_s": min(predict_s),
        "best_total_s": min(total),
        "median_total_s": float(np.median(total)),
        "peak_fit_mib": max(fit_peak) / mib,
        "peak_predict_mib": max(predict_peak) / mib,
        "peak_extra_mib": max(total_peak) / mib,
        "tracemalloc_fit_mib": fit_traced / mib,
        "tracemalloc_predict_mib": predict_traced / mib,
        "tracemalloc_peak_mib": max(fit_traced, held_traced + predict_traced) / mib,
        "input_mib": (X.nbytes + y.nbytes + X_test.nbytes) / mib,
    }
    if library == "mapie":
        import mapie

        result["version"] = mapie.__version__
    else:
        import jax

        result["version"] = f"posterax (jax {jax.__version__})"
    return result


def _peer_python() -> str:
    if PEERS_PYTHON.exists():
        return str(PEERS_PYTHON)
    probe = subprocess.run([sys.executable, "-c", "import mapie"], capture_output=True)
    if probe.returncode == 0:
        return sys.executable
    sys.exit(
        "MAPIE runs in benchmarks/.venv-peers: python -m venv benchmarks/.venv-peers && "
        "benchmarks/.venv-peers/bin/pip install mapie==1.6.0 scikit-learn"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--m", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cases", default=CASES)
    parser.add_argument("--child", nargs=3, metavar=("LIBRARY", "CASE", "SAVE"))
    parser.add_argument("--n", type=int)
    parser.add_argument("--out", default=str(HERE / "results" / "cross_conformal_vs_mapie.json"))
    args = parser.parse_args()
    if args.child:
        library, case, save = args.child
        print(json.dumps(child(library, case, args.n, args.m, args.repeats, save)))
        return

    import numpy as np

    env = dict(os.environ, PYTHONPATH=str(HERE.parent / "src"), MALLOC_MMAP_THRESHOLD_="131072")
    pythons = (("posterax", sys.executable), ("mapie", _peer_python()))
    rows, cases, skipped = [], [], []
    tmp = tempfile.mkdtemp(prefix="cross_conformal_vs_mapie_")
    for spec in args.cases.split(","):
        case, n = spec.split(":")[0], int(spec.split(":")[1])
        if (case, n) in SKIP:
            skipped.append({"case": case, "n": n, "reason": SKIP[case, n]})
            continue
        saved = {}
        for library, python in pythons:
            saved[library] = f"{tmp}/{library}_{case}_{n}.npy"
            cmd = [python, __file__, "--child", library, case, saved[library], "--n", str(n),
                   "--m", str(args.m), "--repeats", str(args.repeats)]
            load0, t0 = os.getloadavg()[0], time.time()
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            if proc.returncode != 0:
                sys.exit(f"{library}/{case}/{n} failed:\n{proc.stderr[-3000:]}")
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            row["loadavg_1min"] = [load0, os.getloadavg()[0]]
            row["child_wall_s"] = time.time() - t0
            rows.append(row)
            print(f"done {library:8s} {case} n={n} ({row['child_wall_s']:.0f} s)", file=sys.stderr)
        ours, theirs = rows[-2], rows[-1]
        a, b = np.load(saved["posterax"]), np.load(saved["mapie"])
        cases.append({
            "case": case,
            "n": n,
            "max_abs_diff_intervals": float(np.max(np.abs(a - b))),
            "ratio_time_total_best": ours["best_total_s"] / theirs["best_total_s"],
            "ratio_time_fit_best": ours["best_fit_s"] / theirs["best_fit_s"],
            "ratio_time_predict_best": ours["best_predict_s"] / theirs["best_predict_s"],
            "ratio_peak_memory": ours["peak_extra_mib"] / theirs["peak_extra_mib"],
            "ratio_tracemalloc_peak": (
                ours["tracemalloc_peak_mib"] / theirs["tracemalloc_peak_mib"]
            ),
        })
    report = {
        "benchmark": "cross_conformal_vs_mapie",
        "alpha": ALPHA,
        "estimator": "sklearn.linear_model.Ridge()",
        "n_features": N_FEATURES,
        "cv+": f"KFold({N_FOLDS}, shuffle=True, random_state=0)",
        "jab": f"mapie.subsample.Subsample(n_resamplings={N_RESAMPLINGS}, random_state=0)",
        "jackknife+": "LeaveOneOut()",
        "m_test": args.m,
        "repeats": args.repeats,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "rows": rows,
        "ratios_posterax_over_mapie": cases,
        "skipped": skipped,
        "target": "<= 0.5 for time and memory",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))

    head = (f"{'case':11s} {'n':>7s} {'library':9s} {'fit s':>7s} {'pred s':>7s} {'total s':>8s} "
            f"{'peak MiB':>9s} {'traced MiB':>10s} {'load':>10s}")
    print(head)
    print("-" * len(head))
    for r in rows:
        load = "{:.1f}-{:.1f}".format(*r["loadavg_1min"])
        print(f"{r['case']:11s} {r['n']:7d} {r['library']:9s} {r['best_fit_s']:7.3f} "
              f"{r['best_predict_s']:7.3f} {r['best_total_s']:8.3f} {r['peak_extra_mib']:9.1f} "
              f"{r['tracemalloc_peak_mib']:10.1f} {load:>10s}")
    for c in cases:
        print(f"{c['case']} n={c['n']}: posterax / MAPIE time {c['ratio_time_total_best']:.3f}x "
              f"(fit {c['ratio_time_fit_best']:.3f}x, "
              f"predict {c['ratio_time_predict_best']:.3f}x), "
              f"peak memory {c['ratio_peak_memory']:.3f}x (tracemalloc "
              f"{c['ratio_tracemalloc_peak']:.3f}x), max |diff| {c['max_abs_diff_intervals']:.2e}")
    for s in skipped:
        print(f"skipped {s['case']} n={s['n']}: {s['reason']}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
