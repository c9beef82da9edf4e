"""The ``posterax`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="posterax",
        description="Bayesian machine learning in JAX: posteriors, predictive uncertainty.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser(
        "demo",
        help="Bayesian linear regression on the seed data: exact, NUTS and MAP side by side.",
    )
    demo.add_argument(
        "--out", default="posterax-demo", help="output directory (default: %(default)s)"
    )
    demo.add_argument(
        "--quick", action="store_true", help="shorter NUTS run (under ~30 s on 2 cores)"
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed for the samplers")
    demo.add_argument(
        "--no-compile-cache",
        action="store_true",
        help="do not keep compiled programs on disk (default: kept in $POSTERAX_CACHE_DIR or "
        "~/.cache/posterax/jax, so later runs skip compilation)",
    )
    fit = sub.add_parser(
        "fit",
        help="Fit a Bayesian network to a CSV/Parquet table; write model, metrics, "
        "predictions and report.",
    )
    fit.add_argument("data", help="CSV or Parquet file")
    fit.add_argument("--target", required=True, help="name of the column to predict")
    fit.add_argument(
        "--task",
        choices=("regression", "classification"),
        default=None,
        help="default: regression for a numeric target with > 10 distinct values",
    )
    fit.add_argument(
        "--method",
        default="auto",
        help="posterior method (e.g. ensemble, nuts, vi, mc_dropout, swag) or auto "
        "(chosen by data size; the reason is written to metrics.json)",
    )
    fit.add_argument(
        "--impute",
        action="store_true",
        help="fill missing features: numeric with the training median, "
        "categorical with the most frequent category (default: refuse)",
    )
    fit.add_argument(
        "--test-fraction",
        type=float,
        default=0.2,
        help="share of rows held out for scoring (default: %(default)s)",
    )
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--out", default="posterax-fit", help="output directory")
    predict = sub.add_parser("predict", help="Predict a new table with a `posterax fit` run.")
    predict.add_argument("model", help="the --out directory of posterax fit")
    predict.add_argument("data", help="CSV or Parquet file with the same feature columns")
    predict.add_argument(
        "--out", default=None, help="CSV to write (default: MODEL/new_predictions.csv)"
    )
    bench = sub.add_parser("benchmark", help="Reproducible benchmarks under published protocols.")
    bench_sub = bench.add_subparsers(dest="suite", metavar="SUITE", required=True)
    uci = bench_sub.add_parser(
        "uci", help="UCI regression (Hernandez-Lobato & Adams 2015 splits), resumable."
    )
    uci.add_argument(
        "--datasets",
        nargs="+",
        default=["boston", "concrete"],
        help="set folders or short names (boston concrete kin8nm naval power protein wine)",
    )
    uci.add_argument("--methods", nargs="+", default=["map", "ensemble", "mc_dropout"])
    uci.add_argument("--splits", type=int, default=None, help="first K splits (default: all)")
    uci.add_argument(
        "--data-dir",
        default=None,
        help="UCI directory (default: $POSTERAX_UCI_DIR or ../shared/data/uci)",
    )
    uci.add_argument("--out", default="posterax-benchmark", help="output directory")
    uci.add_argument(
        "--tune",
        default=None,
        metavar="BUDGET",
        help="also run each method inside px.Tuned (optuna TPE over its settings, validation "
        "on 10%% of the training part), budget per split: trials (20) or seconds (300s), "
        "with @METHOD for a stand-in the trials fit instead (20@map: an ensemble's trial "
        "trains one network); stored as METHOD+tuneBUDGET beside the untuned results",
    )
    cls = bench_sub.add_parser(
        "classification",
        help="Iris, wine, breast cancer, digits: accuracy, NLL, Brier, ECE, before and after "
        "temperature scaling; resumable.",
    )
    cls.add_argument("--datasets", nargs="+", default=["iris", "wine", "breast_cancer", "digits"])
    cls.add_argument("--methods", nargs="+", default=["map", "ensemble", "laplace"])
    cls.add_argument("--seeds", type=int, default=3, help="random splits per set")
    cls.add_argument("--out", default="posterax-benchmark", help="output directory")
    images = bench_sub.add_parser(
        "images",
        help="CNNs on 8x8 digits and MNIST-1D: accuracy, NLL, Brier, ECE clean and under "
        "dataset shift, OOD AUROC; resumable.",
    )
    images.add_argument("--datasets", nargs="+", default=["digits", "mnist1d", "digits_0to4"])
    images.add_argument(
        "--methods",
        nargs="+",
        default=["map", "ensemble", "mc_dropout", "laplace_last_layer", "laplace_kron", "swag"],
        help="map ensemble mc_dropout vi vi_lowrank laplace_last_layer laplace_kron "
        "laplace_last_layer_val laplace_kron_val swag sgld sghmc nuts_last_layer",
    )
    images.add_argument("--seeds", type=int, default=3, help="seeds per set and method")
    images.add_argument(
        "--quick", action="store_true", help="tiny data and epochs: checks the pipeline only"
    )
    images.add_argument("--out", default="posterax-benchmark", help="output directory")
    report = sub.add_parser(
        "report", help="(Re)write RUN_DIR/report.html for a benchmark or fit directory."
    )
    report.add_argument("run_dir", help="the --out directory of posterax benchmark or fit")
    return parser


def _run_report(args: argparse.Namespace) -> int:
    from posterax.cli.report_command import run_report

    print(f"wrote {run_report(args.run_dir)}")
    return 0


def _run_benchmark(args: argparse.Namespace) -> int:
    if args.suite == "images":
        from posterax.cli.benchmark_images import images_markdown, run_images_benchmark

        summary = run_images_benchmark(
            args.datasets, args.methods, seeds=args.seeds, out=args.out, quick=args.quick
        )
        print(images_markdown(summary))
        return _run_report(argparse.Namespace(run_dir=args.out))
    if args.suite == "classification":
        from posterax.cli.benchmark_classification import (
            classification_markdown,
            run_classification_benchmark,
        )

        summary = run_classification_benchmark(
            args.datasets, args.methods, seeds=args.seeds, out=args.out
        )
        print(classification_markdown(summary))
        return _run_report(argparse.Namespace(run_dir=args.out))
    from posterax.cli.benchmark_uci import run_uci_benchmark, summary_markdown

    summary = run_uci_benchmark(
        args.datasets,
        args.methods,
        splits=args.splits,
        out=args.out,
        data_dir=args.data_dir,
        tune=args.tune,
    )
    print(summary_markdown(summary))
    print(f"wrote {args.out}/ (results/, summary.json, summary.md)")
    return _run_report(argparse.Namespace(run_dir=args.out))


def _run_fit(args: argparse.Namespace) -> int:
    from posterax.cli.fit_command import run_fit

    metrics = run_fit(
        args.data,
        args.target,
        out=args.out,
        task=args.task,
        method=args.method,
        impute=args.impute,
        test_fraction=args.test_fraction,
        seed=args.seed,
    )
    print(f"method {metrics['method']['name']}: {metrics['method']['why']}")
    print("held-out: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics["test"].items()))
    print(f"wrote {args.out}/ (model/, metrics.json, predictions.csv, report.html)")
    return 0


def _run_predict(args: argparse.Namespace) -> int:
    from posterax.cli.fit_command import run_predict

    print(f"wrote {run_predict(args.model, args.data, args.out)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "demo":
        from posterax.cli.demo import run_demo

        if not args.no_compile_cache:
            from posterax.compilation import enable_compilation_cache

            enable_compilation_cache(min_compile_seconds=0.05)

        run_demo(out_dir=args.out, quick=args.quick, seed=args.seed)
        return 0
    commands = {
        "fit": _run_fit,
        "predict": _run_predict,
        "benchmark": _run_benchmark,
        "report": _run_report,
    }
    if args.command in commands:
        try:
            return commands[args.command](args)
        except (ValueError, FileNotFoundError, ImportError) as error:
            # Our errors name the problem and the fix: show them without a traceback.
            print(f"posterax {args.command}: error: {error}", file=sys.stderr)
            return 1
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
