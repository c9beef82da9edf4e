"""``posterax report RUN_DIR``: one self-contained HTML file from a run directory.

A benchmark directory (``summary.json`` from ``benchmark uci``, ``summary_classification.json``
from ``benchmark classification``, ``summary_images.json`` from ``benchmark images``) gets its
tables beside the published numbers and a figure of
test log-likelihood per method; a ``posterax fit`` directory gets its report rebuilt from
``metrics.json`` and ``predictions.csv``. Either way the settings and the package versions that
produced the report are listed at the end. The report computes nothing the run did not store.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import jax
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import posterax as px
from posterax.cli.benchmark_uci import published_number
from posterax.report import Section, write_html


def _versions() -> Section:
    rows = [
        ["posterax", px.__version__],
        ["jax", jax.__version__],
        ["python", platform.python_version()],
        ["platform", platform.platform()],
    ]
    return Section("Versions", tables=[(["package", "version"], rows)])


def _published_value(entry: dict[str, Any], source: str, column: str) -> float | None:
    return published_number(entry.get("published", {}), source, column)


def _uci_figure(summary: dict[str, Any]):
    sets = list(summary)
    fig, axes = plt.subplots(1, len(sets), figsize=(4.2 * len(sets), 3.4), squeeze=False)
    for ax, folder in zip(axes[0], sets, strict=True):
        rows = summary[folder]["methods"]
        names = list(rows)
        means = [rows[m]["test_ll"] for m in names]
        errors = [rows[m]["test_ll_se"] for m in names]
        ax.errorbar(means, range(len(names)), xerr=errors, fmt="o", color="#1f4e79", capsize=3)
        ax.set_yticks(range(len(names)), names)
        for source, column, style, label in (
            ("Gal", "LL MC dropout", "--", "MC dropout (Gal 2016)"),
            ("MC dropout, grid", "LL", ":", "MC dropout, grid search (2018)"),
        ):
            value = _published_value(summary[folder], source, column)
            if value is not None:
                ax.axvline(value, color="#b03a2e", linestyle=style, label=label)
        ax.set_title(folder)
        ax.set_xlabel("test log-likelihood (higher is better)")
        if ax.get_legend_handles_labels()[1]:
            ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def _uci_section(summary: dict[str, Any]) -> Section:
    rows = []
    for folder, entry in summary.items():
        gal_rmse = _published_value(entry, "Gal", "RMSE MC dropout")
        gal_ll = _published_value(entry, "Gal", "LL MC dropout")
        for method, row in entry["methods"].items():
            rows.append(
                [
                    folder,
                    method + (" (best)" if method == entry["best_method"] else ""),
                    row["splits"],
                    f"{row['rmse']:.3f} ± {row['rmse_se']:.3f}",
                    f"{row['test_ll']:.3f} ± {row['test_ll_se']:.3f}",
                    f"{row['fit_seconds']:.1f}",
                    "" if gal_rmse is None else f"{gal_rmse:.2f}",
                    "" if gal_ll is None else f"{gal_ll:.2f}",
                ]
            )
    header = [
        "set",
        "method",
        "splits",
        "RMSE",
        "test LL",
        "fit s",
        "MC dropout RMSE",
        "MC dropout LL",
    ]
    return Section(
        "UCI regression",
        paragraphs=[
            "Hernández-Lobato & Adams (2015) protocol: the published 90/10 splits, one hidden "
            "layer of 50 units (100 for protein), mean ± standard error over splits, original "
            "units. Published MC dropout: Gal & Ghahramani (2016), Table 1."
        ],
        tables=[(header, rows)],
        figures=[
            (
                _uci_figure(summary),
                "Test log-likelihood per method (mean ± standard "
                "error over splits); red lines: published MC dropout.",
            )
        ],
    )


def _classification_section(summary: dict[str, Any]) -> Section:
    rows = []
    for dataset, methods in summary.items():
        for method, row in methods.items():
            rows.append(
                [
                    dataset,
                    method,
                    row["seeds"],
                    *(
                        f"{row[k]['mean']:.3f}"
                        for k in (
                            "before/accuracy",
                            "before/nll",
                            "after_temperature_scaling/nll",
                            "before/ece",
                            "after_temperature_scaling/ece",
                            "before/brier",
                        )
                    ),
                    f"{row['temperature']:.2f}",
                ]
            )
    header = [
        "set",
        "method",
        "seeds",
        "accuracy",
        "NLL",
        "NLL (TS)",
        "ECE",
        "ECE (TS)",
        "Brier",
        "temperature",
    ]
    return Section(
        "Classification",
        paragraphs=[
            "60/20/20 stratified splits per seed; temperature scaling (TS) fitted on "
            "the 20% calibration part; scores on the 20% test part."
        ],
        tables=[(header, rows)],
    )


def _rebuild_fit_report(run_dir: Path) -> Path:
    from posterax.cli.fit_command import write_report

    metrics = json.loads((run_dir / "metrics.json").read_text())
    predictions = pd.read_csv(run_dir / "predictions.csv")
    figures = []
    if metrics["data"]["task"] == "regression":
        fig, ax = plt.subplots(figsize=(5, 4))
        order = np.argsort(predictions["mean"].to_numpy())
        p = predictions.iloc[order]
        ax.errorbar(p["mean"], p["y_true"], fmt=".", alpha=0.6, color="#1f4e79")
        ax.fill_between(
            p["mean"],
            p["lower_95%"],
            p["upper_95%"],
            color="#9ecae1",
            alpha=0.5,
            label="95% prediction interval",
        )
        ax.plot(p["mean"], p["mean"], color="#b03a2e", label="y = prediction")
        ax.set_xlabel("predicted mean")
        ax.set_ylabel("observed")
        ax.legend()
        figures.append(
            (fig, "Held-out rows: observed against predicted, with the 95% prediction interval.")
        )
    return write_report(run_dir, metrics, figures)


def run_report(run_dir: Any) -> Path:
    """Write ``RUN_DIR/report.html`` and return its path."""
    run_dir = Path(run_dir)
    sections = []
    if (run_dir / "summary.json").is_file():
        sections.append(_uci_section(json.loads((run_dir / "summary.json").read_text())))
    if (run_dir / "summary_classification.json").is_file():
        summary = json.loads((run_dir / "summary_classification.json").read_text())
        sections.append(_classification_section(summary))
    if (run_dir / "summary_images.json").is_file():
        from posterax.cli.report_images import images_section

        sections.append(images_section(json.loads((run_dir / "summary_images.json").read_text())))
    if sections:
        return write_html(run_dir / "report.html", "posterax benchmark", [*sections, _versions()])
    if (run_dir / "metrics.json").is_file() and (run_dir / "encoder.json").is_file():
        return _rebuild_fit_report(run_dir)
    raise FileNotFoundError(
        f"posterax report: {str(run_dir)!r} holds no run to report (no summary.json, "
        "summary_classification.json, summary_images.json, or metrics.json + encoder.json). "
        "Pass the --out directory of posterax benchmark or posterax fit."
    )


__all__ = ["run_report"]
