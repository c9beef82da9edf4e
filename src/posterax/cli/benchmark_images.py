"""``posterax benchmark images``: CNNs on 8x8 digits and MNIST-1D under the scalable methods,
scored on the clean test set, under dataset shift and on out-of-distribution inputs.

Per (data set, method, seed) one JSON file, so runs resume:

- clean test set: accuracy, NLL, Brier, ECE (15 bins), before and after temperature scaling
  (fitted on 10% of the training set, held out for every method alike), fit and predict time;
- dataset shift (Ovadia et al. 2019): accuracy, NLL and ECE at five intensities of each
  corruption (:mod:`posterax.data.shift`), raw and temperature-scaled;
- last-layer NUTS (MAP features, the last layer sampled exactly) is the reference posterior
  on the last layer, for last-layer Laplace to be judged against;
- out-of-distribution: AUROC of max probability, entropy and mutual information, in-test vs
  noise images (digits), shuffled sequences (MNIST-1D), and digits 5-9 for a network trained
  on 0-4 (``digits_0to4``).

The networks are the reference CNNs of :mod:`posterax.networks.reference`, passed to
``px.BayesianClassifier(network=...)`` as any user's network; the data split is fixed and the
seed sets the network's initialisation and training.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

import posterax as px
from posterax.cli.benchmark_classification import classification_scores
from posterax.cli.benchmark_store import finished, mean_se, write_atomic
from posterax.data.shift import (
    DIGITS_SHIFTS,
    INTENSITIES,
    MNIST1D_SHIFTS,
    noise_images,
    shift_digits,
    shift_mnist1d,
    shuffled_sequences,
)

DATASETS = ("digits", "mnist1d", "digits_0to4")
# Published MNIST-1D test accuracies (Greydanus & Kobak 2024, default data).
PUBLISHED_MNIST1D = {"logistic regression": 0.32, "MLP": 0.68, "CNN": 0.94, "GRU": 0.91}
OOD_SCORES = ("max_probability", "entropy", "mutual_information")
NUM_DRAWS = 100  # posterior draws per prediction
DROPOUT_RATE = 0.1  # the MC dropout variant's rate


def _methods(training: px.methods.Training, quick: bool) -> dict[str, Callable[[], Any]]:
    draws = 10 if quick else NUM_DRAWS
    steps = 50 if quick else 2000
    sg = {"num_warmup": steps, "num_samples": draws, "thinning": max(1, steps // draws)}
    return {
        "map": lambda: px.methods.MAP(training=training),
        "ensemble": lambda: px.methods.Ensemble(num_members=5, training=training),
        "mc_dropout": lambda: px.methods.MCDropout(num_samples=draws, training=training),
        "vi": lambda: px.methods.VI(family="meanfield", num_samples=draws, training=training),
        "vi_lowrank": lambda: px.methods.VI(
            family="lowrank", rank=10, num_samples=draws, training=training
        ),
        "laplace_last_layer": lambda: px.methods.Laplace(
            structure="full", subset="last_layer", num_samples=draws, training=training
        ),
        "laplace_kron": lambda: px.methods.Laplace(
            structure="kron", subset="all", num_samples=draws, training=training
        ),
        "laplace_last_layer_val": lambda: px.methods.Laplace(
            structure="full",
            subset="last_layer",
            tune="validation",
            num_samples=draws,
            training=training,
        ),
        "laplace_kron_val": lambda: px.methods.Laplace(
            structure="kron",
            subset="all",
            tune="validation",
            num_samples=draws,
            training=training,
        ),
        "swag": lambda: px.methods.SWAG(num_samples=draws, training=training),
        "sgld": lambda: px.methods.SGLD(batch_size=training.batch_size, **sg),
        "sghmc": lambda: px.methods.SGHMC(batch_size=training.batch_size, **sg),
        "nuts_last_layer": lambda: px.methods.NUTS(
            subset="last_layer",
            training=training,
            num_warmup=50 if quick else 500,
            num_samples=draws,
        ),
    }


METHODS = tuple(_methods(px.methods.Training(), quick=False))


class _Data:
    """One data set's fixed split, its shifted test sets and its OOD sets (made once)."""

    def __init__(self, dataset: str, quick: bool):
        self.dataset = dataset
        if dataset == "mnist1d":
            split = px.data.mnist1d(num_samples=1000 if quick else 5000)
            raw = px.data.mnist1d(num_samples=1000 if quick else 5000, standardize=False)
            self.scale = (float(raw.X_train.mean()), float(raw.X_train.std()))
        else:
            split = px.data.digits()
        X_train, y_train, X_test, y_test = split
        if dataset == "digits_0to4":
            inside_train, inside_test = y_train < 5, y_test < 5
            self.ood = {"digits 5-9": X_test[~inside_test]}
            X_train, y_train = X_train[inside_train], y_train[inside_train]
            X_test, y_test = X_test[inside_test], y_test[inside_test]
        elif dataset == "digits":
            self.ood = {"noise images": noise_images(X_test.shape, seed=1)}
        else:
            self.ood = {"shuffled sequences": shuffled_sequences(X_test, seed=1)}
        if quick:
            X_train, y_train = X_train[:300], y_train[:300]
            X_test, y_test = X_test[:200], y_test[:200]
            self.ood = {k: v[:200] for k, v in self.ood.items()}
        self.X_fit, self.X_cal, self.y_fit, self.y_cal = train_test_split(
            X_train, y_train, test_size=0.1, stratify=y_train, random_state=0
        )
        self.X_test, self.y_test = X_test, y_test
        self.n_classes = int(np.max(y_train)) + 1
        self.shifted = self._shifted(quick)

    def _shifted(self, quick: bool) -> dict[str, dict[int, tuple[np.ndarray, np.ndarray]]]:
        if self.dataset == "digits_0to4":
            return {}
        n = 200 if quick else 1000
        out: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
        if self.dataset == "digits":
            for kind in DIGITS_SHIFTS:
                out[kind] = {
                    k: (shift_digits(self.X_test, kind, k, seed=k), self.y_test)
                    for k in INTENSITIES
                }
        else:
            for kind in MNIST1D_SHIFTS:
                out[kind] = {
                    k: shift_mnist1d(kind, k, self.scale, num_samples=n, seed=1000 + k)
                    for k in INTENSITIES
                }
        return out

    def network(self, method: str, seed: int):
        from flax import nnx

        from posterax.networks.reference import MNIST1DCNN, DigitsCNN

        cls = MNIST1DCNN if self.dataset == "mnist1d" else DigitsCNN
        rate = DROPOUT_RATE if method == "mc_dropout" else 0.0
        return cls(num_classes=self.n_classes, dropout_rate=rate, rngs=nnx.Rngs(seed))

    def training(self, quick: bool) -> px.methods.Training:
        from posterax.networks.reference import reference_training

        recipe = "mnist1d" if self.dataset == "mnist1d" else "digits"
        settings = reference_training(recipe, n_train=len(self.y_fit))
        if quick:
            settings = {**settings, "num_epochs": 2}
        return px.methods.Training(**settings)


def _log(prob: np.ndarray) -> np.ndarray:
    return np.log(np.clip(prob, 1e-12, 1.0))


def score_images(data: _Data, method: str, seed: int, quick: bool = False) -> dict[str, Any]:
    """Fit one method on one data set with one seed and score it everywhere."""
    make = _methods(data.training(quick), quick)[method]
    clf = px.BayesianClassifier(
        network=data.network(method, seed), method=make(), random_state=seed, progress_bar=False
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # convergence notes: kept in info
        clf.fit(data.X_fit, data.y_fit)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    prob_test = clf.predict_proba(data.X_test)
    predict_seconds = time.perf_counter() - start
    scaler = px.calibration.TemperatureScaling().fit(
        _log(clf.predict_proba(data.X_cal)), data.y_cal
    )

    def scaled(prob):
        return np.asarray(scaler.predict_proba(_log(prob)))

    shift: dict[str, Any] = {}
    for kind, levels in data.shifted.items():
        for k, (X, y) in levels.items():
            prob = clf.predict_proba(X)
            shift.setdefault(kind, {})[str(k)] = {
                "raw": classification_scores(y, prob),
                "temperature_scaled": classification_scores(y, scaled(prob)),
            }
    scores_in = px.uncertainty.ood_scores(clf.predict_samples(data.X_test), OOD_SCORES)
    ood = {}
    for name, X in data.ood.items():
        scores_out = px.uncertainty.ood_scores(clf.predict_samples(X), OOD_SCORES)
        report = px.uncertainty.ood_report(scores_in, scores_out)
        ood[name] = {score: report[score]["auroc"] for score in OOD_SCORES}
    return {
        "dataset": data.dataset,
        "method": method,
        "seed": seed,
        "fit_seconds": fit_seconds,
        "predict_seconds": predict_seconds,
        "n_test": len(data.y_test),
        "temperature": float(scaler.temperature_),
        "clean": {
            "raw": classification_scores(data.y_test, prob_test),
            "temperature_scaled": classification_scores(data.y_test, scaled(prob_test)),
        },
        "shift": shift,
        "ood_auroc": ood,
    }


def _check(datasets: Sequence[str], methods: Sequence[str], seeds: int) -> None:
    where = "posterax benchmark images"
    unknown = [d for d in datasets if d not in DATASETS]
    if unknown:
        raise ValueError(f"{where}: unknown data sets {unknown}. Known: {', '.join(DATASETS)}.")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"{where}: unknown methods {unknown}. Known: {', '.join(METHODS)}.")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"{where}: --seeds must be an int >= 1. Got {seeds!r}.")


def run_images_benchmark(
    datasets: Sequence[str],
    methods: Sequence[str],
    *,
    seeds: int = 3,
    out: Any = "posterax-benchmark",
    quick: bool = False,
    progress_bar: bool | None = None,
) -> dict[str, Any]:
    """Run (or resume) the grid; returns the summary (also written to ``out``).

    ``quick`` shrinks everything (300 training images, 2 epochs, 10 draws) to check the
    pipeline, not the methods; its results are kept apart from full runs' (settings differ).
    """
    _check(datasets, methods, seeds)
    from tqdm.auto import tqdm

    results_dir = Path(out) / "results_images"
    grid = [(d, m, s) for d in datasets for m in methods for s in range(seeds)]
    loaded: dict[str, _Data] = {}
    with tqdm(total=len(grid), desc="images", unit="fit", disable=progress_bar is False) as bar:
        for dataset, method, seed in grid:
            path = results_dir / dataset / method / f"seed_{seed:02d}.json"
            settings = {"method": method, "seed": seed, "quick": quick, "draws": NUM_DRAWS}
            if not finished(path, settings):
                bar.set_postfix_str(f"{dataset} {method} {seed}")
                if dataset not in loaded:
                    loaded[dataset] = _Data(dataset, quick)
                result = score_images(loaded[dataset], method, seed, quick)
                write_atomic(path, json.dumps({**result, "settings": settings}))
            bar.update(1)
    summary = summarise(results_dir, datasets, methods, seeds)
    write_atomic(Path(out) / "summary_images.json", json.dumps(summary, indent=2))
    write_atomic(Path(out) / "summary_images.md", images_markdown(summary))
    return summary


def _mean_se(values: list[float]) -> dict[str, float]:
    mean, se = mean_se(values)
    return {"mean": mean, "se": se}


def summarise(
    results_dir: Path, datasets: Sequence[str], methods: Sequence[str], seeds: int
) -> dict[str, Any]:
    """Mean and standard error over the stored seeds of every number (cells not run yet are
    left out; ``seeds`` says how many each row has)."""
    summary: dict[str, Any] = {}
    for dataset in datasets:
        for method in methods:
            folder = results_dir / dataset / method
            paths = [folder / f"seed_{k:02d}.json" for k in range(seeds)]
            runs = [json.loads(path.read_text()) for path in paths if path.is_file()]
            if not runs:  # not run yet (a report of a run still going)
                continue
            row: dict[str, Any] = {"seeds": len(runs)}
            for key in ("fit_seconds", "predict_seconds", "temperature"):
                row[key] = _mean_se([r[key] for r in runs])
            for stage in ("raw", "temperature_scaled"):
                row[f"clean/{stage}"] = {
                    metric: _mean_se([r["clean"][stage][metric] for r in runs])
                    for metric in runs[0]["clean"][stage]
                }
            shift: dict[str, Any] = {}
            for kind, levels in runs[0]["shift"].items():
                for k in levels:
                    shift.setdefault(kind, {})[k] = {
                        stage: {
                            metric: _mean_se([r["shift"][kind][k][stage][metric] for r in runs])
                            for metric in ("accuracy", "nll", "ece")
                        }
                        for stage in ("raw", "temperature_scaled")
                    }
            row["shift"] = shift
            row["ood_auroc"] = {
                name: {s: _mean_se([r["ood_auroc"][name][s] for r in runs]) for s in OOD_SCORES}
                for name in runs[0]["ood_auroc"]
            }
            summary.setdefault(dataset, {})[method] = row
    return summary


def images_markdown(summary: dict[str, Any]) -> str:
    lines = [
        "| set | method | accuracy | NLL | NLL (TS) | ECE | ECE (TS) | Brier | OOD AUROC (entropy) "
        "| fit s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dataset, methods in summary.items():
        for method, row in methods.items():
            raw, ts = row["clean/raw"], row["clean/temperature_scaled"]
            ood = "; ".join(
                f"{name} {v['entropy']['mean']:.3f}" for name, v in row["ood_auroc"].items()
            )
            lines.append(
                f"| {dataset} | {method} | {raw['accuracy']['mean']:.3f} ± "
                f"{raw['accuracy']['se']:.3f} | {raw['nll']['mean']:.3f} | {ts['nll']['mean']:.3f} "
                f"| {raw['ece']['mean']:.3f} | {ts['ece']['mean']:.3f} | "
                f"{raw['brier']['mean']:.3f} | {ood} | {row['fit_seconds']['mean']:.1f} |"
            )
    return "\n".join(lines) + "\n"


__all__ = ["DATASETS", "METHODS", "run_images_benchmark", "score_images", "summarise"]
