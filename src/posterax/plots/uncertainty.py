"""Plots for using uncertainty: the aleatoric/epistemic decomposition, OOD score histograms, the
risk–coverage curve of selective prediction, active-learning curves and continual-learning
accuracy. Each function returns a matplotlib Figure; the numbers come from
:mod:`posterax.uncertainty`, :mod:`posterax.active`, :mod:`posterax.continual` and
:mod:`posterax.metrics`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from posterax.active import LearningCurve
from posterax.base import PredictiveSamples
from posterax.continual import ContinualResult
from posterax.metrics import risk_coverage_curve
from posterax.uncertainty import AbstentionRule, Decomposition, decompose, ood_report

_BLUE, _RED, _GREEN, _GREY = "#4C72B0", "#C44E52", "#55A868", "#8C8C8C"


def _axes(ax: plt.Axes | None, figsize: tuple[float, float]) -> tuple[Figure, plt.Axes]:
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def _tidy(ax: plt.Axes) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def plot_decomposition(
    decomposition: Decomposition | PredictiveSamples,
    x: Any = None,
    *,
    train_range: tuple[float, float] | None = None,
    title: str | None = None,
    ax: plt.Axes | None = None,
) -> Figure:
    """Aleatoric and epistemic uncertainty stacked to the total, against a 1-D input.

    Parameters
    ----------
    decomposition : Decomposition or PredictiveSamples
        From :func:`posterax.uncertainty.decompose` (a PredictiveSamples is decomposed here).
    x : array (N,), optional
        The 1-D input of each point (sorted for the plot). Without it, points are shown in
        order of increasing total uncertainty.
    train_range : (low, high), optional
        Shaded: where the training inputs were.
    title : str, optional
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    d = decompose(decomposition) if isinstance(decomposition, PredictiveSamples) else decomposition
    if not isinstance(d, Decomposition):
        raise TypeError(
            "The 'decomposition' parameter of plot_decomposition must be a Decomposition or a "
            f"PredictiveSamples. Got {type(decomposition).__name__}. Pass "
            "posterax.uncertainty.decompose(pred)."
        )
    alea, epi = np.asarray(d.aleatoric, float), np.asarray(d.epistemic, float)
    if x is None:
        order = np.argsort(alea + epi)
        xs, xlabel = np.arange(alea.size), "points, by total uncertainty"
    else:
        xs = np.asarray(x, dtype=float).ravel()
        if xs.shape != alea.shape:
            raise ValueError(
                f"plot_decomposition: 'x' must have one value per point ({alea.size}). Got shape "
                f"{np.shape(x)}. Pass the 1-D inputs the predictions were made at."
            )
        order = np.argsort(xs)
        xs, xlabel = xs[order], "x"
    alea, epi = alea[order], epi[order]
    fig, ax = _axes(ax, (7, 4))
    if train_range is not None:
        ax.axvspan(*train_range, color="#dddddd", alpha=0.4, label="training range")
    ax.fill_between(xs, 0, alea, color=_BLUE, alpha=0.55, label="aleatoric")
    ax.fill_between(xs, alea, alea + epi, color=_RED, alpha=0.45, label="epistemic")
    ax.plot(xs, alea + epi, color="black", lw=1, label="total")
    unit = "entropy (nats)" if d.units == "nats" else "predictive variance"
    ax.set_xlabel(xlabel)
    ax.set_ylabel(unit)
    ax.set_ylim(0, 1.2 * float(np.max(alea + epi, initial=0.0)) or 1.0)  # room for the legend
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, frameon=False, loc="upper center", ncol=4)
    _tidy(ax)
    fig.tight_layout()
    return fig


def plot_ood_scores(
    in_scores: Any,
    out_scores: Any,
    *,
    score_name: str = "score",
    bins: int = 30,
    title: str | None = None,
    ax: plt.Axes | None = None,
) -> Figure:
    """Histograms of an OOD score for in-distribution and OOD points, with AUROC and FPR95.

    Parameters
    ----------
    in_scores, out_scores : array (N_in,), (N_out,)
        Higher = more likely out of distribution (see :func:`posterax.uncertainty.ood_scores`).
    score_name : str
    bins : int
    title : str, optional
    ax : matplotlib Axes, optional
    """
    report = ood_report(in_scores, out_scores)
    a, b = np.asarray(in_scores, float), np.asarray(out_scores, float)
    edges = np.histogram_bin_edges(np.r_[a, b], bins=bins)
    fig, ax = _axes(ax, (6, 3.8))
    ax.hist(
        a, bins=edges, color=_BLUE, alpha=0.6, density=True, label=f"in-distribution ({a.size})"
    )
    ax.hist(b, bins=edges, color=_RED, alpha=0.6, density=True, label=f"OOD ({b.size})")
    ax.set_xlabel(score_name)
    ax.set_ylabel("density")
    ax.set_title(
        title
        or f"AUROC {report['auroc']:.3f}, FPR@{report['tpr']:.0%} TPR {report['fpr_at_tpr']:.3f}"
    )
    ax.legend(fontsize=8, frameon=False)
    _tidy(ax)
    fig.tight_layout()
    return fig


def plot_risk_coverage(
    y_true: Any,
    y_prob: Any,
    confidence: Any = None,
    *,
    target_risk: float | None = None,
    rule: AbstentionRule | None = None,
    uncertainty: Any = None,
    title: str | None = None,
    ax: plt.Axes | None = None,
) -> Figure:
    """Selective risk against coverage (answer the most confident first).

    Parameters
    ----------
    y_true : array of int (N,)
    y_prob : array (N, K) or PredictiveSamples
    confidence : array (N,) or dict of name -> array (N,), optional
        Higher answers first (e.g. ``-entropy``); default the top-label probability. A dict
        overlays several scores.
    target_risk : float, optional
        Drawn as a horizontal line.
    rule : AbstentionRule, optional
        With ``uncertainty`` (N,): the rule's coverage and risk on these points, marked.
    title : str, optional
    ax : matplotlib Axes, optional
    """
    series = (
        dict(confidence)
        if isinstance(confidence, Mapping)
        else {"max probability" if confidence is None else "confidence": confidence}
    )
    fig, ax = _axes(ax, (6, 4))
    for name, conf in series.items():
        cov, risk = risk_coverage_curve(y_true, y_prob, confidence=conf)
        ax.plot(np.asarray(cov), np.asarray(risk), lw=1.8, label=name)
    if target_risk is not None:
        ax.axhline(target_risk, color=_GREY, ls="--", lw=1, label=f"target risk {target_risk:g}")
    if rule is not None and uncertainty is not None:
        y_arr = np.asarray(y_true)
        if isinstance(y_prob, PredictiveSamples):
            probs = np.asarray(y_prob.probs()).mean(axis=0)
        else:
            probs = np.asarray(y_prob)
        errors = (np.argmax(probs, axis=1) != y_arr).astype(float)
        m = rule.evaluate(uncertainty, errors)
        ax.plot(m["coverage"], m["risk"], "o", color=_RED, ms=8, label="abstention rule")
    ax.set_xlabel("coverage (share answered)")
    ax.set_ylabel("selective risk (error rate)")
    ax.set_xlim(0, 1.01)
    ax.set_ylim(bottom=0)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, frameon=False)
    _tidy(ax)
    fig.tight_layout()
    return fig


def plot_learning_curves(
    curves: Mapping[str, LearningCurve | Sequence[LearningCurve]],
    *,
    title: str | None = None,
    ax: plt.Axes | None = None,
) -> Figure:
    """Test accuracy (or RMSE) against the number of labelled points, one line per acquisition.

    Parameters
    ----------
    curves : dict of name -> LearningCurve or list of LearningCurve
        A list (e.g. one curve per seed, same label budgets) is drawn as mean ± 1 sd.
    title : str, optional
    ax : matplotlib Axes, optional
    """
    fig, ax = _axes(ax, (6, 4))
    metric = "score"
    for name, value in curves.items():
        runs = [value] if isinstance(value, LearningCurve) else list(value)
        if not runs or not all(isinstance(r, LearningCurve) for r in runs):
            raise TypeError(
                f"plot_learning_curves: curves['{name}'] must be a LearningCurve or a list of "
                "them (from ActiveLearner.run)."
            )
        metric = runs[0].metric
        x = runs[0].n_labelled
        scores = np.stack([r.scores for r in runs])
        mean = scores.mean(axis=0)
        area = np.mean([r.area() for r in runs])
        (line,) = ax.plot(x, mean, marker="o", ms=3, lw=1.6, label=f"{name} (area {area:.3f})")
        if len(runs) > 1:
            sd = scores.std(axis=0)
            ax.fill_between(x, mean - sd, mean + sd, color=line.get_color(), alpha=0.15)
    ax.set_xlabel("labelled points")
    ax.set_ylabel(f"test {metric}")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, frameon=False)
    _tidy(ax)
    fig.tight_layout()
    return fig


def plot_continual_accuracy(
    results: Mapping[str, ContinualResult], *, title: str | None = None
) -> Figure:
    """Accuracy on each task as later tasks are learnt: one panel per task, one line per
    strategy (the drop is forgetting)."""
    results = dict(results)
    if not results:
        raise ValueError("plot_continual_accuracy: 'results' is empty. Pass {name: result}.")
    n_tasks = next(iter(results.values())).accuracy.shape[0]
    fig, axes = plt.subplots(1, n_tasks, figsize=(3.6 * n_tasks, 3.4), sharey=True, squeeze=False)
    for j, ax in enumerate(axes[0]):
        for name, res in results.items():
            after = np.arange(j, n_tasks)
            ax.plot(after + 1, res.accuracy[j:, j], marker="o", lw=1.6, label=name)
        ax.set_title(f"task {j + 1}")
        ax.set_xlabel("tasks learnt")
        ax.set_xticks(np.arange(1, n_tasks + 1))
        _tidy(ax)
    axes[0][0].set_ylabel("test accuracy")
    axes[0][0].legend(fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


__all__ = [
    "plot_continual_accuracy",
    "plot_decomposition",
    "plot_learning_curves",
    "plot_ood_scores",
    "plot_risk_coverage",
]
