"""The images benchmark's report section: clean scores beside the published MNIST-1D
accuracies, the dataset-shift figure (ECE and accuracy against shift intensity, one line per
method, as in Ovadia et al. 2019) and the OOD table. Everything comes from
``summary_images.json``; nothing is computed here but averages over corruption kinds."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from posterax.cli.benchmark_images import OOD_SCORES, PUBLISHED_MNIST1D
from posterax.report import Section

CLEAN_HEADER = ["set", "method", "seeds", "accuracy", "NLL", "NLL (TS)", "ECE", "ECE (TS)"]
CLEAN_HEADER += ["Brier", "fit s", "predict s"]


def _cell(entry: dict[str, float], digits: int = 3) -> str:
    se = entry["se"]
    return f"{entry['mean']:.{digits}f}" + ("" if not np.isfinite(se) else f" ± {se:.{digits}f}")


def _by_intensity(row: dict[str, Any], stage: str, metric: str) -> tuple[list, list, list]:
    """Mean over corruption kinds at intensity 0 (clean) to 5, and the mean of their SEs."""
    levels = [0, *sorted({int(k) for kind in row["shift"].values() for k in kind})]
    means, ses = [], []
    for level in levels:
        if level == 0:
            entries = [row[f"clean/{stage}"][metric]]
        else:
            entries = [kind[str(level)][stage][metric] for kind in row["shift"].values()]
        means.append(float(np.mean([e["mean"] for e in entries])))
        finite = [e["se"] for e in entries if np.isfinite(e["se"])]  # one seed: no SE
        ses.append(float(np.mean(finite)) if finite else np.nan)
    return levels, means, ses


def shift_figure(summary: dict[str, Any]):
    """ECE (top) and accuracy (bottom) against shift intensity per data set."""
    sets = [d for d, methods in summary.items() if any(r["shift"] for r in methods.values())]
    fig, axes = plt.subplots(2, max(len(sets), 1), figsize=(5 * max(len(sets), 1), 7.2))
    axes = np.asarray(axes).reshape(2, -1)
    for column, dataset in enumerate(sets):
        for method, row in summary[dataset].items():
            lines = [(method, "raw", "-")]
            if method == "map":
                lines.append(("map + temperature scaling", "temperature_scaled", "--"))
            for label, stage, style in lines:
                for ax, metric in zip(axes[:, column], ("ece", "accuracy"), strict=True):
                    x, mean, se = _by_intensity(row, stage, metric)
                    ax.errorbar(x, mean, yerr=se, linestyle=style, marker="o", ms=3, label=label)
        axes[0, column].set_title(f"{dataset}: ECE under shift")
        axes[1, column].set_title(f"{dataset}: accuracy under shift")
        axes[1, column].set_xlabel("shift intensity (0 = clean test set)")
        axes[0, column].set_ylabel("ECE (lower is better)")
        axes[1, column].set_ylabel("accuracy")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:  # one legend for every panel, below them
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=8)
    fig.tight_layout(rect=(0, 0.04 + 0.03 * ((len(labels) - 1) // 4 if labels else 0), 1, 1))
    return fig


def images_section(summary: dict[str, Any]) -> Section:
    clean_rows = []
    for dataset, methods in summary.items():
        for method, row in methods.items():
            raw, ts = row["clean/raw"], row["clean/temperature_scaled"]
            clean_rows.append(
                [
                    dataset,
                    method,
                    row["seeds"],
                    _cell(raw["accuracy"]),
                    _cell(raw["nll"]),
                    _cell(ts["nll"]),
                    _cell(raw["ece"]),
                    _cell(ts["ece"]),
                    _cell(raw["brier"]),
                    f"{row['fit_seconds']['mean']:.1f}",
                    f"{row['predict_seconds']['mean']:.2f}",
                ]
            )
    ood_rows = [
        [dataset, method, name, *(_cell(scores[s]) for s in OOD_SCORES)]
        for dataset, methods in summary.items()
        for method, row in methods.items()
        for name, scores in row["ood_auroc"].items()
    ]
    published = ", ".join(f"{k} {v:.0%}" for k, v in PUBLISHED_MNIST1D.items())
    return Section(
        "Images: CNNs on 8x8 digits and MNIST-1D",
        paragraphs=[
            "Reference CNNs (posterax.networks.reference) under each method, mean ± standard "
            "error over seeds; temperature scaling (TS) fitted on 10% of the training set, "
            f"held out for every method. Published MNIST-1D test accuracies: {published} "
            "(Greydanus & Kobak).",
            "Shift: rotation, Gaussian noise and pixel dropout (digits), more noise, shear and "
            "translation than in training (MNIST-1D), five intensities each; the figure "
            "averages over the kinds (the JSON has each).",
        ],
        tables=[
            (
                CLEAN_HEADER,
                clean_rows,
            ),
            (["set", "method", "OOD set", *(f"AUROC {s}" for s in OOD_SCORES)], ood_rows),
        ],
        figures=[
            (
                shift_figure(summary),
                "ECE and accuracy against shift intensity (mean over corruption kinds; bars: "
                "standard error over seeds).",
            )
        ],
    )


__all__ = ["images_section", "shift_figure"]
