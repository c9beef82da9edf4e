"""The seed Iris BNN under every sampler and the plain (MAP) network: accuracy, NLL and ECE
(issue 6's table).

Seed case: 4-16-3 tanh MLP, Normal(0, 1) priors on every weight and bias (standardised inputs),
stratified 120/30 split with ``random_state=42``. Each method runs with the estimator's defaults
(1000 warmup steps and 1000 draws for the samplers, one chain) and ``random_state=0``; the plain
network is ``method="map"`` (the same prior as weight decay). Scores on the 30 test flowers:
accuracy, NLL (log loss of the posterior-averaged probabilities), ECE (15 equal-width bins) and
the fit time (compilation included; each method compiles once per process).

Run by hand (not in CI; about two minutes on 2 cores)::

    .venv/bin/python benchmarks/iris_methods.py [--methods map mala ...] [--out-dir DIR]

Writes ``iris_methods.json`` and ``iris_methods.md`` to ``--out-dir``
(default ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import json
import platform
import warnings
from pathlib import Path

import jax
import numpy as np
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

import posterax as px

METHODS = ("map", "nuts", "mala", "sgld", "psgld", "sghmc", "csgmcmc", "swag", "ensemble", "vi")


def fit(method: str, X: np.ndarray, y: np.ndarray) -> tuple[px.BayesianClassifier, list[str]]:
    clf = px.BayesianClassifier(
        px.methods.SGLD(preconditioner="rmsprop") if method == "psgld" else method,
        network=px.networks.MLP(hidden=(16,), activation="tanh"),
        random_state=0,
        progress_bar=False,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        clf.fit(X, y)
    return clf, [str(w.message).split(":")[0] for w in caught]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--out-dir", default="benchmarks/results")
    args = parser.parse_args()

    X, y = load_iris(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=30, stratify=y, random_state=42)
    rows = {}
    for method in args.methods:
        clf, flagged = fit(method, Xtr, ytr)
        prob = clf.predict_proba(Xte)
        rows[method] = {
            "accuracy": float(px.metrics.accuracy(yte, prob)),
            "nll": float(px.metrics.log_loss(yte, prob)),
            "ece": float(px.metrics.expected_calibration_error(yte, prob)),
            "fit_seconds": clf.fit_seconds_,
            "warnings": flagged,
        }
        print(method, {k: v for k, v in rows[method].items() if k != "warnings"}, flush=True)

    lines = ["| method | accuracy | NLL | ECE | fit s |", "|---|---|---|---|---|"]
    for name, row in rows.items():
        lines.append(
            f"| {name} | {row['accuracy']:.3f} | {row['nll']:.3f} | {row['ece']:.3f} | "
            f"{row['fit_seconds']:.1f} |"
        )
    table = "\n".join(lines)
    print(table)
    result = {
        "benchmark": "iris seed BNN, 4-16-3 tanh, Normal(0, 1) priors, split 120/30 seed 42",
        "runs": rows,
        "machine": {
            "platform": platform.platform(),
            "backend": jax.default_backend(),
            "jax": jax.__version__,
        },
    }
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "iris_methods.json").write_text(json.dumps(result, indent=2))
    (out / "iris_methods.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
