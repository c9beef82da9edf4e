"""Demo section "Aleatoric and epistemic uncertainty": the predictive variance of fits the demo
already made on the seed 1-D data (y = sin(x)·x + 0.3·ε, x ~ U(−3, 3)) split by the law of total
variance. Nothing is fitted here: the deep ensemble of the methods section and the NUTS BNN are
reused, on the methods section's grid (so its compiled predictive programs are reused too)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

import posterax as px
from posterax.cli.demo_methods import GRID, INSIDE, OUTSIDE
from posterax.cli.demo_networks import TRAIN_RANGE
from posterax.plots.uncertainty import plot_decomposition
from posterax.report import Section

PREFERRED = ("ensemble", "nuts")  # shown side by side when the demo fitted them


def _summary(d: px.uncertainty.Decomposition) -> dict[str, float]:
    x = np.abs(GRID[:, 0])
    inside, outside = x < INSIDE, (x > OUTSIDE[0]) & (x < OUTSIDE[1])
    alea, epi = np.asarray(d.aleatoric), np.asarray(d.epistemic)
    return {
        "aleatoric_inside": float(alea[inside].mean()),
        "aleatoric_outside": float(alea[outside].mean()),
        "epistemic_inside": float(epi[inside].mean()),
        "epistemic_outside": float(epi[outside].mean()),
    }


def uncertainty_section(
    methods: dict[str, Any], nuts: px.BayesianRegressor | None = None
) -> tuple[dict[str, Any], Section, dict]:
    """Decomposition figure, table and metrics for the fitted regressors.

    Parameters
    ----------
    methods : dict
        ``fit_methods``' results (objects with a ``reg`` attribute), by method name.
    nuts : BayesianRegressor, optional
        The BNN section's NUTS fit.
    """
    regs = {name: res.reg for name, res in methods.items()}
    if nuts is not None:
        regs["nuts"] = nuts
    chosen = [m for m in PREFERRED if m in regs] or list(regs)[:1]
    fig, axes = plt.subplots(1, len(chosen), figsize=(6.2 * len(chosen), 3.8), squeeze=False)
    metrics, rows = {}, []
    for ax, name in zip(axes[0], chosen, strict=True):
        d = px.uncertainty.decompose(regs[name].predict_samples(GRID))
        metrics[name] = _summary(d)
        m = metrics[name]
        rows.append(
            [
                name,
                m["aleatoric_inside"],
                m["aleatoric_outside"],
                m["epistemic_inside"],
                m["epistemic_outside"],
            ]
        )
        plot_decomposition(d, GRID[:, 0], train_range=TRAIN_RANGE, title=f"method='{name}'", ax=ax)
    fig.tight_layout()
    band = f"{OUTSIDE[0]:g}<|x|<{OUTSIDE[1]:g}"
    section = Section(
        "Aleatoric and epistemic uncertainty",
        paragraphs=[
            "The predictive variance of each fit split by the law of total variance "
            "(posterax.uncertainty.decompose): aleatoric = mean over posterior draws of the "
            "noise variance, epistemic = variance of the draws' means. The noise of the data "
            "is 0.3² = 0.09 everywhere; the model's ignorance should grow outside the training "
            "range.",
        ],
        tables=[
            (
                [
                    "method",
                    f"aleatoric |x|<{INSIDE:g}",
                    f"aleatoric {band}",
                    f"epistemic |x|<{INSIDE:g}",
                    f"epistemic {band}",
                ],
                rows,
            )
        ],
        figures=[
            (
                fig,
                "Predictive variance stacked: aleatoric (blue) and epistemic (red); grey: "
                "training range. Aleatoric stays flat (a homoscedastic noise model), "
                "epistemic rises away from the data.",
            )
        ],
    )
    return metrics, section, {"uncertainty_decomposition.png": fig}


__all__ = ["uncertainty_section"]
