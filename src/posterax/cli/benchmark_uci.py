"""``posterax benchmark uci``: the UCI regression protocol of Hernández-Lobato & Adams (2015).

The published 90/10 splits (20 per set; 5 for protein), one hidden layer of 50 units (100 for
protein), inputs and targets standardised on the training part (the estimators do this), test
RMSE and test log-likelihood in the original units, mean ± standard error over splits.

Resumable: every (set, method, split) result is written to
``OUT/results/<set>/<method>/split_<k>.json`` as soon as it is done (write, then rename), and a
re-run skips the results already on disk, so a crash loses at most the split in progress. The
summary (``summary.json``, ``summary.md``) puts our numbers beside the published ones, read at
run time from ``PUBLISHED.md`` in the data directory.

With ``--tune BUDGET`` (``20``: trials, ``300s``: seconds, per split) every method also runs
inside ``px.Tuned`` (optuna's TPE over the method's default space, scored on 10% of the training
part), under its own key (``ensemble+tune20``), beside the untuned one. ``--tune 20@map`` has
MAP fits stand in for each method's own in the trials (``px.Tuned(search_method="map")``) and
refits the best settings with the method itself (``ensemble+tune20@map``).
"""

from __future__ import annotations

import json
import math
import re
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import posterax as px
from posterax.cli.benchmark_store import finished, jsonable, mean_se, write_atomic
from posterax.compilation import free_compiled_programs_if_crowded
from posterax.data.uci import find_uci_dir, load_uci_split
from posterax.estimators.common import check_method
from posterax.estimators.held_out import supports_conformal
from posterax.inference import NetworkMethod
from posterax.inference.methods import TRAINED_METHODS
from posterax.methods import method_from_settings, method_names
from posterax.metrics import mixture_nll
from posterax.predictive import predictive_interval

INTERVAL_LEVELS = (0.9, 0.95)  # prediction intervals whose test coverage is recorded
ALIASES = {
    "boston": "bostonHousing",
    "concrete": "concrete",
    "kin8nm": "kin8nm",
    "naval": "naval-propulsion-plant",
    "power": "power-plant",
    "protein": "protein-tertiary-structure",
    "wine": "wine-quality-red",
}


def resolve_dataset(name: str, data_dir: Path) -> str:
    """Folder name of a set (short aliases accepted), with a clear error for unknown ones."""
    folder = ALIASES.get(name, name)
    if not (data_dir / folder / "data.txt").is_file():
        known = sorted(p.name for p in data_dir.iterdir() if (p / "data.txt").is_file())
        raise ValueError(
            f"posterax benchmark uci: no data set {name!r} in {str(data_dir)!r}. Known: "
            f"{', '.join(known)} (or the short names {', '.join(ALIASES)})."
        )
    return folder


def n_splits(data_dir: Path, folder: str) -> int:
    path = data_dir / folder / "n_splits.txt"
    if path.is_file():
        return int(path.read_text().split()[0])
    return len(list((data_dir / folder).glob("index_train_*.txt")))


def method_settings(method: str, folder: str, split: int) -> dict[str, Any]:
    """The protocol's network (50 units, 100 for protein) and early stopping on 10% of the
    training part for the optimisation methods."""
    settings: dict[str, Any] = {
        "method": method,
        "hidden": (100,) if folder.startswith("protein") else (50,),
        "activation": "relu",
        "random_state": split,
        "progress_bar": False,
    }
    if method in TRAINED_METHODS:
        settings["validation_fraction"] = 0.1
    return settings


def estimator(settings: dict[str, Any]) -> px.BayesianRegressor:
    """The regressor that the flat ``settings`` (as recorded with each result) describe."""
    flat = dict(settings)
    network = px.networks.MLP(flat.pop("hidden"), flat.pop("activation"))
    own = {k: flat.pop(k) for k in ("random_state", "progress_bar")}
    method = method_from_settings(flat.pop("method"), flat, where="posterax benchmark uci")
    return px.BayesianRegressor(method, network=network, **own)


_TUNE_KEY = "+tune"


def parse_tune_budget(budget: str) -> dict[str, Any]:
    """``--tune BUDGET``: ``"20"`` is 20 trials, ``"300s"`` 300 seconds of search per split;
    ``"20@map"`` the same with MAP fits standing in for the method's own in the trials
    (``px.Tuned(search_method="map")``: an ensemble's trial trains one network, not five)."""
    text = str(budget).strip()
    match = re.fullmatch(r"(\d+)(s?)(?:@(\w+))?", text)
    if match is None or int(match.group(1)) < 1:
        raise ValueError(
            "posterax benchmark uci: --tune must be a number of trials >= 1 (e.g. 20) or of "
            "seconds followed by s (e.g. 300s), per split, optionally followed by @METHOD for "
            f"the method the trials fit in place of each method's own (e.g. 20@map). Got "
            f"{budget!r}."
        )
    count, search_method = int(match.group(1)), match.group(3)
    if search_method is not None and search_method not in method_names():
        raise ValueError(
            f"posterax benchmark uci: --tune {budget!r} names the stand-in method "
            f"{search_method!r}, which is not one of {', '.join(method_names())}. Use "
            "e.g. --tune 20@map."
        )
    seconds = bool(match.group(2))
    return {
        "label": text,
        "n_trials": None if seconds else count,
        "timeout": float(count) if seconds else None,
        "search_method": search_method,
        "per_split": f"{count} {'seconds' if seconds else 'trials'}",
    }


def tuned_key(method: str, budget: str) -> str:
    """The results key of ``method`` tuned with ``budget`` (``ensemble+tune20``)."""
    return f"{method}{_TUNE_KEY}{parse_tune_budget(budget)['label']}"


def split_key(key: str) -> tuple[str, str | None]:
    """``(method, budget)`` of a results key; ``budget`` is ``None`` for an untuned method."""
    method, _, budget = key.partition(_TUNE_KEY)
    return method, (budget or None)


def cell_settings(key: str, folder: str, split: int) -> dict[str, Any]:
    """The settings recorded with a result (a tuned key adds its budget)."""
    method, budget = split_key(key)
    settings = method_settings(method, folder, split)
    if budget is not None:
        settings["tune"] = budget
    return settings


def _search_params(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, int | float | str | bool) else repr(v) for k, v in params.items()}


def score_split(method: str, folder: str, split: int, data_dir: Path) -> dict[str, Any]:
    """Fit on the split's training part; RMSE and LL on its test part, original units. A
    tuned key (``ensemble+tune20``) searches inside ``px.Tuned`` first, on the training part
    only, and records what it chose."""
    data = load_uci_split(folder, split, data_dir)
    base_method, budget = split_key(method)
    reg = estimator(method_settings(base_method, folder, split))
    if budget is not None:
        limits = parse_tune_budget(budget)
        reg = px.Tuned(
            reg,
            n_trials=limits["n_trials"],
            timeout=limits["timeout"],
            search_method=limits["search_method"],
            random_state=split,
        )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # convergence notes: kept in diagnostics
        reg.fit(data.X_train, data.y_train)
    fit_seconds = time.perf_counter() - start
    tuning = None
    if budget is not None:
        tuning = {
            "budget": budget,
            "n_trials": reg.n_trials_,
            "search_seconds": reg.search_seconds_,
            "refit_seconds": reg.refit_seconds_,
            "best_params": _search_params(reg.trials_["search_params"][reg.best_index_]),
            "best_validation_nll": reg.best_loss_,
            "default_validation_nll": reg.trials_["loss"][0],
            "selection": reg.selection_,  # the best trial's lead over the defaults, per row
        }
    pred = reg.predict_samples(data.X_test)
    test_ll = -float(mixture_nll(data.y_test, pred))
    rmse = float(np.sqrt(np.mean((np.asarray(pred.mean).mean(axis=0) - data.y_test) ** 2)))
    intervals = {}
    for level in INTERVAL_LEVELS:  # central intervals of the predictive mixture
        lower, upper = (np.asarray(b) for b in predictive_interval(pred, level))
        intervals[f"coverage_{round(100 * level)}"] = float(
            np.mean((lower <= data.y_test) & (data.y_test <= upper))
        )
        intervals[f"width_{round(100 * level)}"] = float(np.mean(upper - lower))
        if supports_conformal(reg, level):  # the same fit's interval, level set held out
            lower, upper = reg.predict_interval(data.X_test, level, kind="conformal")
            intervals[f"conformal_coverage_{round(100 * level)}"] = float(
                np.mean((lower <= data.y_test) & (data.y_test <= upper))
            )
            intervals[f"conformal_width_{round(100 * level)}"] = float(np.mean(upper - lower))
    return {
        "dataset": folder,
        "method": method,
        "split": split,
        "rmse": rmse,
        "test_ll": test_ll,
        **intervals,
        "fit_seconds": fit_seconds,
        "n_train": int(data.X_train.shape[0]),
        "n_test": int(data.X_test.shape[0]),
        **({"tuning": tuning} if tuning is not None else {}),
    }


def run_uci_benchmark(
    datasets: Sequence[str],
    methods: Sequence[str],
    *,
    splits: int | None = None,
    out: Any = "posterax-benchmark",
    data_dir: Any = None,
    progress_bar: bool | None = None,
    score: Callable[[str, str, int, Path], dict[str, Any]] = score_split,
    tune: str | None = None,
) -> dict[str, Any]:
    """Run (or resume) the grid; returns the summary (also written to ``out``). With ``tune``
    (``"20"`` trials or ``"300s"`` per split) each method runs untuned and tuned."""
    root = find_uci_dir(data_dir)
    if root is None:
        raise FileNotFoundError(
            "posterax benchmark uci: no UCI data directory found. Pass --data-dir (a folder "
            "holding <set>/data.txt and index_*.txt), or set POSTERAX_UCI_DIR."
        )
    for method in methods:  # an unknown method fails now, not after hours of fits
        check_method(method, NetworkMethod, "posterax benchmark uci --methods")
    if splits is not None and splits < 1:
        raise ValueError(
            f"posterax benchmark uci: --splits must be an int >= 1 (the first K splits) or "
            f"omitted for all. Got {splits}."
        )
    if tune is not None:
        methods = [key for m in methods for key in (m, tuned_key(m, tune))]
    folders = [resolve_dataset(name, root) for name in datasets]
    grid = [
        (folder, method, split)
        for folder in folders
        for method in methods
        for split in range(min(splits or math.inf, n_splits(root, folder)))
    ]
    out = Path(out)
    results_dir = out / "results"
    from tqdm.auto import tqdm

    with tqdm(total=len(grid), desc="UCI", unit="fit", disable=progress_bar is False) as bar:
        for folder, method, split in grid:
            path = results_dir / folder / method / f"split_{split:02d}.json"
            settings = jsonable(cell_settings(method, folder, split))
            if not finished(path, settings):  # resume: finished cells are kept
                bar.set_postfix_str(f"{folder} {method} {split}")
                result = {**score(method, folder, split, root), "settings": settings}
                result["posterax"] = px.__version__
                write_atomic(path, json.dumps(result, indent=2))
                free_compiled_programs_if_crowded()  # every set and method compiles its own
            bar.update(1)
    cells = {(f, m): [s for g, n, s in grid if (g, n) == (f, m)] for f in folders for m in methods}
    summary = summarize(results_dir, folders, methods, published_tables(root), cells)
    write_atomic(out / "summary.json", json.dumps(summary, indent=2))
    write_atomic(out / "summary.md", summary_markdown(summary))
    return summary


def summarize(
    results_dir: Path,
    folders: Sequence[str],
    methods: Sequence[str],
    published: dict[str, dict[str, dict[str, str]]],
    cells: dict[tuple[str, str], list[int]],
) -> dict[str, Any]:
    """Mean ± standard error per (set, method) over the splits of this grid (``cells``), and
    the best method per set with the published MC-dropout LL to beat."""
    table: dict[str, Any] = {}
    for folder in folders:
        rows = {}
        for method in methods:
            files = [
                results_dir / folder / method / f"split_{k:02d}.json"
                for k in cells[(folder, method)]
            ]
            runs = [json.loads(f.read_text()) for f in files if f.is_file()]
            if not runs:
                continue
            rmse, rmse_se = mean_se([r["rmse"] for r in runs])
            ll, ll_se = mean_se([r["test_ll"] for r in runs])
            rows[method] = {
                "splits": len(runs),
                "rmse": rmse,
                "rmse_se": rmse_se,
                "test_ll": ll,
                "test_ll_se": ll_se,
                "fit_seconds": float(np.mean([r["fit_seconds"] for r in runs])),
            }
            for level in INTERVAL_LEVELS:  # results written before coverage was recorded lack it
                for kind in ("", "conformal_"):
                    key = f"{kind}coverage_{round(100 * level)}"
                    values = [r[key] for r in runs if key in r]
                    if values:
                        rows[method][key], rows[method][f"{key}_se"] = mean_se(values)
            tuned = [r["tuning"] for r in runs if "tuning" in r]
            if tuned:
                rows[method]["tuning"] = _tuning_summary(tuned)
        reference = {
            source: values[folder] for source, values in published.items() if folder in values
        }
        best = max(rows, key=lambda m: rows[m]["test_ll"]) if rows else None
        mc_ll = published_number(reference, "Gal", "LL MC dropout")
        table[folder] = {
            "methods": rows,
            "published": reference,
            "best_method": best,
            "best_beats_published_mc_dropout_ll": None
            if best is None or mc_ll is None
            else rows[best]["test_ll"] > mc_ll,
        }
    return table


def _tuning_summary(tuned: list[dict[str, Any]]) -> dict[str, Any]:
    """The budget and what the searches of one (set, method) cost, over its splits."""
    budget = tuned[0]["budget"]
    limits = parse_tune_budget(budget)
    return {
        "budget": budget,
        "budget_per_split": limits["per_split"],
        "search_method": limits["search_method"],
        "mean_trials": float(np.mean([t["n_trials"] for t in tuned])),
        "mean_search_seconds": float(np.mean([t["search_seconds"] for t in tuned])),
        "best_params": [t["best_params"] for t in tuned],
    }


def published_number(
    reference: dict[str, dict[str, str]], source: str, column: str
) -> float | None:
    """The mean of ``column`` in the published table whose title starts with ``source``."""
    for title, row in reference.items():
        if title.startswith(source) and column in row:
            try:
                return float(row[column].split("±")[0])
            except ValueError:
                return None
    return None


def published_tables(data_dir: Path) -> dict[str, dict[str, dict[str, str]]]:
    """``{table title: {set: {column: "mean ± se"}}}`` from ``PUBLISHED.md`` (empty if absent)."""
    path = data_dir / "PUBLISHED.md"
    if not path.is_file():
        return {}
    tables: dict[str, dict[str, dict[str, str]]] = {}
    title, header = "", None
    for line in path.read_text().splitlines():
        if line.startswith("## "):
            title, header = line[3:].strip(), None
        elif line.startswith("| set |"):
            header = [c.strip() for c in line.strip("|").split("|")]
        elif header and line.startswith("|") and not re.match(r"\|\s*-", line):
            cells = [c.strip() for c in line.strip("|").split("|")]
            tables.setdefault(title, {})[cells[0]] = dict(zip(header[1:], cells[1:], strict=False))
        elif not line.startswith("|"):
            header = None
    return tables


def summary_markdown(summary: dict[str, Any]) -> str:
    lines = [
        "| set | method | splits | RMSE | test LL | 90% / 95% coverage | conformal | fit s "
        "| published MC dropout (Gal 2016) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for folder, entry in summary.items():
        ref = entry["published"]
        gal = next((row for title, row in ref.items() if "Gal" in title), {})
        published = (
            f"RMSE {gal.get('RMSE MC dropout', '?')}, LL {gal.get('LL MC dropout', '?')}"
            if gal
            else ""
        )
        for method, row in entry["methods"].items():
            mark = " **best**" if method == entry["best_method"] else ""
            lines.append(
                f"| {folder} | {method}{mark} | {row['splits']} | {row['rmse']:.3f} ± "
                f"{row['rmse_se']:.3f} | {row['test_ll']:.3f} ± {row['test_ll_se']:.3f} | "
                f"{_coverage(row)} | {_coverage(row, 'conformal_')} | "
                f"{row['fit_seconds']:.1f} | {published} |"
            )
    return "\n".join(lines + _tuning_notes(summary)) + "\n"


def _coverage(row: dict[str, Any], kind: str = "") -> str:
    """Test coverage of the predictive (``kind=""``) or conformal 90% / 95% intervals."""
    low, high = f"{kind}coverage_90", f"{kind}coverage_95"
    if low not in row or high not in row:
        return ""
    return f"{row[low]:.3f} / {row[high]:.3f}"


def _stand_in(tuning: dict[str, Any]) -> str:
    method = tuning.get("search_method")
    return f" (the trials fit {method} in place of the method)" if method else ""


def _tuning_notes(summary: dict[str, Any]) -> list[str]:
    """A line per tuned (set, method) under the table: its budget and what the search cost."""
    notes = []
    for folder, entry in summary.items():
        for method, row in entry["methods"].items():
            tuning = row.get("tuning")
            if tuning:
                notes.append(
                    f"- {folder} {method}: px.Tuned (optuna TPE, the method's default space, "
                    f"validation on 10% of the training part), budget {tuning['budget_per_split']}"
                    f" per split{_stand_in(tuning)}; {tuning['mean_trials']:.1f} trials and "
                    f"{tuning['mean_search_seconds']:.1f} s of search on average (fit s includes "
                    "search and refit)."
                )
    return ["", *notes] if notes else []


__all__ = [
    "parse_tune_budget",
    "published_number",
    "published_tables",
    "run_uci_benchmark",
    "score_split",
    "summarize",
]
