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
    return parser


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
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
