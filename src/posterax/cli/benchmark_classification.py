"""``posterax benchmark classification``: scikit-learn's small classification sets (Iris, wine,
breast cancer, digits) under every method asked for, with and without temperature scaling.

Each set is split once per seed into 60% train, 20% calibration and 20% test (stratified). The
network is fitted on the train part; temperature scaling is fitted on the calibration part's log
predictive probabilities; accuracy, NLL, Brier and ECE (15 bins) are computed on the test part
before and after scaling. Results are written per (set, method, seed) as in the UCI benchmark,
so runs resume.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.model_selection import train_test_split

import posterax as px
from posterax.cli.benchmark_store import finished, mean_se, write_atomic
from posterax.estimators.common import check_method
from posterax.inference import NetworkMethod

LOADERS = {
    "iris": load_iris,
    "wine": load_wine,
    "breast_cancer": load_breast_cancer,
    "digits": load_digits,
}
HIDDEN = {"iris": (16,), "wine": (16,), "breast_cancer": (32,), "digits": (64,)}
METRICS = ("accuracy", "nll", "brier", "ece")


def classification_scores(y: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    """Accuracy, NLL, Brier and ECE (15 bins) of class probabilities."""
    return {
        "accuracy": float(px.metrics.accuracy(y, prob)),
        "nll": float(px.metrics.log_loss(y, prob)),
        "brier": float(px.metrics.brier_score(y, prob)),
        "ece": float(px.metrics.expected_calibration_error(y, prob)),
    }


def score_classification(dataset: str, method: str, seed: int) -> dict[str, Any]:
    X, y = LOADERS[dataset](return_X_y=True)
    X_rest, X_test, y_rest, y_test = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=seed
    )
    X_train, X_cal, y_train, y_cal = train_test_split(
        X_rest, y_rest, test_size=0.25, stratify=y_rest, random_state=seed
    )
    clf = px.BayesianClassifier(
        method=method, network=HIDDEN[dataset], random_state=seed, progress_bar=False
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        clf.fit(X_train, y_train)
    fit_seconds = time.perf_counter() - start
    prob_cal, prob_test = clf.predict_proba(X_cal), clf.predict_proba(X_test)
    scaler = px.calibration.TemperatureScaling().fit(np.log(np.clip(prob_cal, 1e-12, 1)), y_cal)
    scaled = np.asarray(scaler.predict_proba(np.log(np.clip(prob_test, 1e-12, 1))))
    return {
        "dataset": dataset,
        "method": method,
        "seed": seed,
        "fit_seconds": fit_seconds,
        "temperature": float(scaler.temperature_),
        "before": classification_scores(y_test, prob_test),
        "after_temperature_scaling": classification_scores(y_test, scaled),
    }


def run_classification_benchmark(
    datasets: Sequence[str],
    methods: Sequence[str],
    *,
    seeds: int = 3,
    out: Any = "posterax-benchmark",
    progress_bar: bool | None = None,
) -> dict[str, Any]:
    """Run (or resume) the grid; returns the summary (also written to ``out``)."""
    unknown = [d for d in datasets if d not in LOADERS]
    if unknown:
        raise ValueError(
            f"posterax benchmark classification: unknown data sets {unknown}. Known: "
            f"{', '.join(LOADERS)}."
        )
    for method in methods:
        check_method(method, NetworkMethod, "posterax benchmark classification --methods")
    if seeds < 1:
        raise ValueError(
            f"posterax benchmark classification: --seeds must be an int >= 1. Got {seeds}."
        )
    from tqdm.auto import tqdm

    results_dir = Path(out) / "results"
    grid = [(d, m, s) for d in datasets for m in methods for s in range(seeds)]
    with tqdm(
        total=len(grid), desc="classification", unit="fit", disable=progress_bar is False
    ) as bar:
        for dataset, method, seed in grid:
            path = results_dir / dataset / method / f"seed_{seed:02d}.json"
            settings = {"method": method, "hidden": list(HIDDEN[dataset]), "seed": seed}
            if not finished(path, settings):
                bar.set_postfix_str(f"{dataset} {method} {seed}")
                result = {**score_classification(dataset, method, seed), "settings": settings}
                write_atomic(path, json.dumps(result))
            bar.update(1)
    summary: dict[str, Any] = {}
    for dataset in datasets:
        for method in methods:
            folder = results_dir / dataset / method
            runs = [json.loads((folder / f"seed_{k:02d}.json").read_text()) for k in range(seeds)]
            row: dict[str, Any] = {"seeds": len(runs)}
            for stage in ("before", "after_temperature_scaling"):
                for metric in METRICS:
                    mean, se = mean_se([r[stage][metric] for r in runs])
                    row[f"{stage}/{metric}"] = {"mean": mean, "se": se}
            row["temperature"] = float(np.mean([r["temperature"] for r in runs]))
            summary.setdefault(dataset, {})[method] = row
    write_atomic(Path(out) / "summary_classification.json", json.dumps(summary, indent=2))
    write_atomic(Path(out) / "summary_classification.md", classification_markdown(summary))
    return summary


def classification_markdown(summary: dict[str, Any]) -> str:
    lines = [
        "| set | method | accuracy | NLL | NLL (TS) | ECE | ECE (TS) | Brier | T |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for dataset, methods in summary.items():
        for method, row in methods.items():

            def cell(key, row=row):
                return f"{row[key]['mean']:.3f}"

            lines.append(
                f"| {dataset} | {method} | {cell('before/accuracy')} | {cell('before/nll')} | "
                f"{cell('after_temperature_scaling/nll')} | {cell('before/ece')} | "
                f"{cell('after_temperature_scaling/ece')} | {cell('before/brier')} | "
                f"{row['temperature']:.2f} |"
            )
    return "\n".join(lines) + "\n"


__all__ = ["LOADERS", "run_classification_benchmark", "score_classification"]
