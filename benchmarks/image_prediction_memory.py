"""Predicting 10,000 images with 100 posterior draws within ``max_memory``.

Issue 20's memory goal ("predicting 10,000 images with 100 posterior draws stays within
``max_memory``"), measured as the operating system sees it:

- a posterior with 100 draws at prediction: ``px.methods.VI(num_samples=100)`` (mean-field,
  trained for 2 epochs: the memory of prediction does not depend on how well it is trained) on
  the reference CNN of ``--network`` (``mnist1d``: ``MNIST1DCNN``, 5,210 params, inputs (40, 1);
  ``digits``: ``DigitsCNN``, 38,282 params, inputs (8, 8, 1));
- 10,000 inputs: the test set tiled;
- ``predict_proba`` under each ``max_memory`` of ``--budgets`` (``none``: the default, a quarter
  of the available RAM), each in a fresh Python process started with
  ``MALLOC_MMAP_THRESHOLD_=65536`` (glibc returns every freed block of 64 KiB or more to the
  system, so the resident set follows what is live instead of what malloc keeps for reuse).
  The process fits, warms up with a 16-row ``predict_proba`` (draw sampling and input checks
  compiled), then measures two calls on the 10,000 rows: the first (the chunk program of the
  planned shape is compiled in it) and the second (warm). Before each call the kernel's
  high-water mark is reset (``echo 5 > /proc/self/clear_refs``); the peak increase is
  ``VmHWM`` after the call less ``VmRSS`` before it;
- the rows per chunk ``plan_rows`` chose (spied as ``tests/predictive/test_memory_budget.py``
  does), the bytes per row and the fixed bytes (the draws) it planned with, and XLA's own count
  of the chunk program's buffers (``compiled.memory_analysis()``) at that shape;
- ``predict_samples`` (per-draw logits, ``(100, 10000, K)``): measured once, the same way,
  under the smallest budget (it is not one of the calls ``max_memory`` bounds).

The warm peak increase is compared with the budget plus an allowance for what ``max_memory``
does not cover by design (it bounds one chunk's program): the 10,000 input rows as float64 (the
estimator's checked copy), the padded last chunk, and the output (float32 parts, their join and
the float64 result: 4 copies of N x K float64 at most). Predictions are checked to be identical
across budgets (each process's ``predict_proba`` saved and compared).

``--sweep`` also times warm ``predict_proba`` on the 10,000 rows against the rows per chunk
(384 ... 12,288, forced through ``max_memory``, and the default), 3 interleaved rounds.

Run by hand (not in CI; about 3-4 minutes on 2 cores, ``--sweep`` 2-3 more)::

    .venv/bin/python benchmarks/image_prediction_memory.py [--network mnist1d] [--rows 10000]
        [--draws 100] [--budgets 32MB 128MB none] [--sweep] [--out-dir benchmarks/results]

Writes ``image_prediction_memory.json`` and ``.md`` (``image_prediction_memory_digits.*`` for
``--network digits``) to ``--out-dir`` and prints the table.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MiB = 2**20
SAMPLES_RUN = "predict_samples"
SWEEP_RUN = "sweep"
SWEEP_ROWS = (384, 768, 1536, 3072, 6144, 12288)


def status_kib() -> dict[str, int]:
    out = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":")
                out[key] = int(value.split()[0])
    return out


def reset_peak() -> None:
    """Reset the kernel's resident-set high-water mark (VmHWM) to the current RSS."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
        clear.write("5")


def measured(call):
    """``(result, seconds, peak increase in bytes, RSS before in bytes)`` of ``call()``."""
    gc.collect()
    reset_peak()
    before = status_kib()["VmRSS"]
    start = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - start
    peak = status_kib()["VmHWM"]
    return result, seconds, (peak - before) * 1024, before * 1024


def child(args: argparse.Namespace) -> None:
    """One budget in this (fresh) process; prints a JSON line."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    import posterax as px
    from posterax.networks.reference import MNIST1DCNN, DigitsCNN
    from posterax.predictive import chunking
    from posterax.predictive.memory import resolve_budget

    split = px.data.mnist1d() if args.network == "mnist1d" else px.data.digits()
    Network = MNIST1DCNN if args.network == "mnist1d" else DigitsCNN
    budget = None if args.child in ("none", SAMPLES_RUN, SWEEP_RUN) else args.child
    if args.child == SAMPLES_RUN:
        budget = args.budgets[0] if args.budgets[0] != "none" else None
    training = px.methods.Training(num_epochs=2, batch_size=100, validation_fraction=None)
    clf = px.BayesianClassifier(
        network=Network(rngs=nnx.Rngs(0)),
        method=px.methods.VI(num_samples=args.draws, training=training),
        max_memory=budget,
        progress_bar=False,
        random_state=0,
    )
    clf.fit(split.X_train, split.y_train)
    reps = -(-args.rows // split.X_test.shape[0])
    X = np.concatenate([split.X_test] * reps)[: args.rows]

    planned: list[dict] = []
    plan = chunking.plan_rows

    def spy(n_rows, bytes_per_row, budget_bytes, **kwargs):
        rows = plan(n_rows, bytes_per_row, budget_bytes, **kwargs)
        planned.append(
            dict(
                n_rows=n_rows,
                rows=rows,
                bytes_per_row=bytes_per_row,
                budget_bytes=budget_bytes,
                fixed_bytes=kwargs.get("fixed_bytes", 0),
            )
        )
        return rows

    chunking.plan_rows = spy
    out: dict = {"budget": args.child, "max_memory": budget}
    if args.child == SAMPLES_RUN:
        clf.predict_samples(X[:16])  # compiled for 16 rows only: the big call compiles again
        # np.asarray inside the measured call: dispatch is asynchronous, so the computation
        # (and its memory) happens when the logits are read.
        logits, seconds, increase, before = measured(
            lambda: np.asarray(clf.predict_samples(X).logits)
        )
        out.update(
            seconds=seconds,
            peak_increase_bytes=increase,
            rss_before_bytes=before,
            output_bytes=int(logits.nbytes),
            output_shape=list(logits.shape),
        )
        print(json.dumps(out))
        return

    if args.child == SWEEP_RUN:  # warm predict_proba time against the rows per chunk
        per_row = clf._prediction_bytes_per_row(chunking.PROBS, args.draws, False)
        draws_bytes = (
            4
            * args.draws
            * sum(np.size(v) for v in jax.tree_util.tree_leaves(clf.posterior_.mean()))
        )
        settings = {
            rows: draws_bytes + chunking._PLAN_SAFETY * per_row * rows + per_row
            for rows in SWEEP_ROWS
        }
        settings[None] = None  # the default: a quarter of the available RAM
        times: dict = {}
        for rows, budget_bytes in settings.items():
            clf.set_params(max_memory=budget_bytes)
            clf.predict_proba(X)  # compiles this chunk shape
            times[rows] = dict(rows_per_chunk=planned[-1]["rows"], seconds=[])
        for _ in range(3):  # interleaved rounds
            for rows, budget_bytes in settings.items():
                clf.set_params(max_memory=budget_bytes)
                start = time.perf_counter()
                clf.predict_proba(X)
                times[rows]["seconds"].append(time.perf_counter() - start)
                times[rows]["load"] = os.getloadavg()[0]
        out["sweep"] = [
            dict(
                max_memory=budget_bytes,
                rows_per_chunk=times[rows]["rows_per_chunk"],
                rows_computed=-(-args.rows // times[rows]["rows_per_chunk"])
                * times[rows]["rows_per_chunk"],
                best_seconds=min(times[rows]["seconds"]),
                all_seconds=times[rows]["seconds"],
            )
            for rows, budget_bytes in settings.items()
        ]
        print(json.dumps(out))
        return

    clf.predict_proba(X[:16])  # draw sampling, input checks and a small chunk shape compiled
    first, first_s, first_increase, first_before = measured(lambda: clf.predict_proba(X))
    second, second_s, second_increase, second_before = measured(lambda: clf.predict_proba(X))
    call = planned[-1]
    rows = call["rows"]
    # XLA's own count of the chunk program at the planned shape (what plan_rows estimates).
    params = chunking._draw(clf.posterior_, jax.random.key(0), args.draws)
    compiled = chunking._chunk_program.lower(
        params,
        jnp.zeros((rows, *X.shape[1:]), jnp.float32),
        jnp.float32(0),
        jnp.float32(1),
        apply_fn=clf.posterior_.apply_fn,
        likelihood=clf.posterior_.likelihood,
        summary=chunking.PROBS,
        draws_at_once=chunking.draws_at_once(),
    ).compile()
    analysis = compiled.memory_analysis()
    xla = {
        name: int(getattr(analysis, f"{name}_size_in_bytes", 0) or 0)
        for name in ("argument", "output", "temp", "generated_code")
    }
    np.save(args.probs_out, second)
    out.update(
        budget_bytes=call["budget_bytes"],
        resolved_budget_bytes=resolve_budget(budget, where="benchmark"),
        rows_per_chunk=rows,
        chunks=-(-args.rows // rows),
        planned_bytes_per_row=call["bytes_per_row"],
        planned_fixed_bytes=call["fixed_bytes"],
        planned_chunk_bytes=call["fixed_bytes"]
        + chunking._PLAN_SAFETY * rows * call["bytes_per_row"],
        plans=planned,
        xla_chunk_program_bytes=xla,
        first_call=dict(
            seconds=first_s, peak_increase_bytes=first_increase, rss_before_bytes=first_before
        ),
        warm_call=dict(
            seconds=second_s, peak_increase_bytes=second_increase, rss_before_bytes=second_before
        ),
        first_equals_warm=bool(np.array_equal(first, second)),
        test_accuracy=float(
            np.mean(np.argmax(second, 1) == np.concatenate([split.y_test] * reps)[: args.rows])
        ),
        input_shape=list(X.shape),
        n_params=int(sum(np.size(v) for v in jax.tree_util.tree_leaves(clf.posterior_.mean()))),
    )
    print(json.dumps(out))


def run_child(budget: str, args: argparse.Namespace, probs_out: Path) -> dict:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="65536")
    cmd = [sys.executable, __file__, "--child", budget, "--probs-out", str(probs_out)]
    cmd += ["--network", args.network, "--rows", str(args.rows), "--draws", str(args.draws)]
    cmd += ["--budgets", *args.budgets]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{budget}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--network", choices=("mnist1d", "digits"), default="mnist1d")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--draws", type=int, default=100)
    parser.add_argument("--budgets", nargs="+", default=["32MB", "128MB", "none"])
    parser.add_argument("--no-samples", action="store_true", help="skip predict_samples")
    parser.add_argument(
        "--sweep", action="store_true", help="also time predict_proba against rows per chunk"
    )
    parser.add_argument("--out-dir", default="benchmarks/results")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # internal
    parser.add_argument("--probs-out", default=None, help=argparse.SUPPRESS)  # internal
    args = parser.parse_args()
    if args.child is not None:
        child(args)
        return

    import jax

    import posterax as px

    total = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        probs = {}
        for budget in args.budgets:
            row = run_child(budget, args, Path(tmp) / f"{budget}.npy")
            probs[budget] = np.load(Path(tmp) / f"{budget}.npy")
            rows.append(row)
            warm = row["warm_call"]
            print(
                f"max_memory={budget:6s} rows/chunk {row['rows_per_chunk']:6d} "
                f"({row['chunks']} chunks)  warm peak +{warm['peak_increase_bytes'] / MiB:7.1f} MiB"
                f"  first call +{row['first_call']['peak_increase_bytes'] / MiB:7.1f} MiB  "
                f"{warm['seconds']:.2f} s",
                flush=True,
            )
        samples = None
        if not args.no_samples:
            samples = run_child(SAMPLES_RUN, args, Path(tmp) / "samples.npy")
            print(
                f"predict_samples (max_memory={samples['max_memory']}): peak "
                f"+{samples['peak_increase_bytes'] / MiB:.1f} MiB, output "
                f"{samples['output_bytes'] / MiB:.1f} MiB, {samples['seconds']:.2f} s",
                flush=True,
            )
        sweep = None
        if args.sweep:
            sweep = run_child(SWEEP_RUN, args, Path(tmp) / "sweep.npy")["sweep"]
            for entry in sweep:
                print(
                    f"rows/chunk {entry['rows_per_chunk']:6d} (max_memory "
                    f"{entry['max_memory']}): best {entry['best_seconds']:.2f} s",
                    flush=True,
                )
    reference = probs[args.budgets[-1]]
    identical = {b: bool(np.array_equal(p, reference)) for b, p in probs.items()}
    max_diff = {b: float(np.max(np.abs(p - reference))) for b, p in probs.items()}

    n, k = reference.shape
    input_values = int(np.prod(rows[0]["input_shape"]))
    for row in rows:
        per_row_input = input_values // n
        allowance = 8 * input_values + 8 * per_row_input * row["rows_per_chunk"] + 4 * 8 * n * k
        row["allowance_bytes"] = allowance
        row["within_budget_plus_allowance"] = bool(
            row["warm_call"]["peak_increase_bytes"] <= row["budget_bytes"] + allowance
        )
        row["within_budget"] = bool(row["warm_call"]["peak_increase_bytes"] <= row["budget_bytes"])
    result = {
        "problem": {
            "network": args.network,
            "method": "px.methods.VI(num_samples=draws, training=Training(num_epochs=2))",
            "rows": args.rows,
            "draws": args.draws,
            "n_params": rows[0]["n_params"],
            "input_shape": rows[0]["input_shape"],
            "classes": k,
        },
        "budgets": rows,
        "predictions_identical_across_budgets": identical,
        "max_abs_difference_from_last_budget": max_diff,
        "predict_samples": samples,
        "predict_proba_time_by_rows_per_chunk": sweep,
        "allowance": "input rows as float64 + one padded chunk of inputs as float64 + 4 x (N, K)"
        " float64 (float32 parts, their join, the float64 result)",
        "malloc_env": {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "65536"},
        "total_seconds": time.perf_counter() - total,
        "load_average_at_end": list(os.getloadavg()),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "jax": jax.__version__,
            "posterax": px.__version__,
            "devices": [str(d) for d in jax.devices()],
        },
    }
    stem = "image_prediction_memory" + ("" if args.network == "mnist1d" else f"_{args.network}")
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2))

    def mib(b: float) -> str:
        return f"{b / MiB:.1f}"

    table = [
        f"{args.network} CNN ({rows[0]['n_params']} params), VI with {args.draws} draws, "
        f"predict_proba on {args.rows} inputs {tuple(rows[0]['input_shape'][1:])}; "
        f"{os.cpu_count()} CPU(s), {jax.devices()[0].platform}; MiB = 2^20 bytes",
        "",
        "| max_memory | budget (MiB) | rows / chunk (chunks) | planned bytes / row | planned: "
        "draws + 2 x rows x bytes/row (MiB) | XLA chunk program temp (MiB) | peak RSS increase, "
        "first call (MiB) | peak RSS increase, warm (MiB) | warm time (s) | within budget "
        "(+ allowance) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        table.append(
            f"| {row['budget']} | {mib(row['budget_bytes'])} | {row['rows_per_chunk']} "
            f"({row['chunks']}) | {row['planned_bytes_per_row']} | "
            f"{mib(row['planned_chunk_bytes'])} | {mib(row['xla_chunk_program_bytes']['temp'])} | "
            f"{mib(row['first_call']['peak_increase_bytes'])} | "
            f"{mib(row['warm_call']['peak_increase_bytes'])} | {row['warm_call']['seconds']:.2f} | "
            f"{'yes' if row['within_budget'] else 'no'} "
            f"({'yes' if row['within_budget_plus_allowance'] else 'no'}, +"
            f"{mib(row['allowance_bytes'])}) |"
        )
    table.append("")
    table.append(
        "- Predictions identical across budgets: "
        + ", ".join(f"{b}: {identical[b]} (max |diff| {max_diff[b]:.1e})" for b in identical)
    )
    if samples is not None:
        table.append(
            f"- predict_samples (max_memory={samples['max_memory']}): peak RSS increase "
            f"{mib(samples['peak_increase_bytes'])} MiB for an output of "
            f"{mib(samples['output_bytes'])} MiB {tuple(samples['output_shape'])}, "
            f"{samples['seconds']:.2f} s"
        )
    if sweep is not None:
        table += [
            "",
            "Warm predict_proba time against the rows per chunk (best of 3 interleaved rounds):",
            "",
            "| rows / chunk | rows computed (padding) | best (s) | all (s) |",
            "| ---: | ---: | ---: | --- |",
        ]
        for entry in sweep:
            label = "default" if entry["max_memory"] is None else ""
            table.append(
                f"| {entry['rows_per_chunk']} {label} | {entry['rows_computed']} | "
                f"{entry['best_seconds']:.2f} | "
                + ", ".join(f"{t:.2f}" for t in entry["all_seconds"])
                + " |"
            )
    text = "\n".join(table)
    (out / f"{stem}.md").write_text(
        "# Predicting 10,000 images with 100 posterior draws under max_memory\n\n"
        "`.venv/bin/python benchmarks/image_prediction_memory.py "
        + " ".join(sys.argv[1:])
        + "`\n\n"
        + text
        + "\n"
    )
    print("\n" + text)


if __name__ == "__main__":
    main()
