"""Uncertainty plots draw what the numbers say (checked on the artists), and reject bad input."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

import posterax as px
from posterax.active import LearningCurve
from posterax.plots.uncertainty import (
    plot_continual_accuracy,
    plot_decomposition,
    plot_learning_curves,
    plot_ood_scores,
    plot_risk_coverage,
)
from posterax.uncertainty import decompose, fit_abstention


def test_decomposition_stacks_aleatoric_and_epistemic_to_the_total():
    x = np.linspace(-4, 4, 41)
    mean = np.stack([k * 0.1 * x**2 for k in range(5)])  # draws spread more away from 0
    pred = px.PredictiveSamples.regression(mean, 0.5)
    fig = plot_decomposition(pred, x[::-1], train_range=(-2, 2))  # unsorted x is sorted
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    total_line = next(ln for ln in ax.get_lines() if ln.get_label() == "total")
    d = decompose(pred)
    np.testing.assert_allclose(total_line.get_xdata(), x)
    np.testing.assert_allclose(total_line.get_ydata(), np.asarray(d.total)[::-1], rtol=1e-6)
    assert ax.get_ylabel() == "predictive variance"
    plt.close(fig)
    with pytest.raises(ValueError, match=r"'x' must have one value per point \(41\)"):
        plot_decomposition(pred, x[:3])
    with pytest.raises(TypeError, match=r"'decomposition' parameter of plot_decomposition"):
        plot_decomposition(np.zeros(3))


def test_ood_histogram_title_reports_auroc():
    rng = np.random.default_rng(0)
    s_in, s_out = rng.normal(size=200), rng.normal(2.0, size=100)
    fig = plot_ood_scores(s_in, s_out, score_name="entropy")
    auroc = px.uncertainty.ood_report(s_in, s_out)["auroc"]
    assert f"AUROC {auroc:.3f}" in fig.axes[0].get_title()
    plt.close(fig)
    with pytest.raises(ValueError, match=r"'in_scores' parameter of ood_report"):
        plot_ood_scores([], s_out)


def test_risk_coverage_plots_the_metric_curve_and_the_rule():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(3), size=100)
    y = rng.integers(0, 3, size=100)
    unc = 1 - probs.max(1)
    errors = (probs.argmax(1) != y).astype(float)
    rule = fit_abstention(unc, errors, target_risk=0.6)
    fig = plot_risk_coverage(
        y,
        probs,
        {"max p": probs.max(1), "random": rng.uniform(size=100)},
        target_risk=0.6,
        rule=rule,
        uncertainty=unc,
    )
    ax = fig.axes[0]
    _, risk = px.metrics.risk_coverage_curve(y, probs, confidence=probs.max(1))
    line = next(ln for ln in ax.get_lines() if ln.get_label() == "max p")
    np.testing.assert_allclose(line.get_ydata(), np.asarray(risk), rtol=1e-6)
    marker = next(ln for ln in ax.get_lines() if ln.get_label() == "abstention rule")
    assert marker.get_xdata()[0] == pytest.approx(rule.coverage)
    plt.close(fig)


def test_learning_curves_mean_over_seeds():
    def curve(scores):
        n = np.array([10, 20, 30])
        return LearningCurve("bald", "accuracy", n, np.asarray(scores), [], n, [])

    runs = [curve([0.5, 0.7, 0.8]), curve([0.6, 0.8, 0.9])]
    fig = plot_learning_curves({"bald": runs, "random": curve([0.5, 0.6, 0.7])})
    ax = fig.axes[0]
    line = ax.get_lines()[0]
    np.testing.assert_allclose(line.get_ydata(), [0.55, 0.75, 0.85])
    assert "area 0.725" in line.get_label()
    assert ax.get_ylabel() == "test accuracy"
    plt.close(fig)
    with pytest.raises(TypeError, match=r"curves\['x'\] must be a LearningCurve"):
        plot_learning_curves({"x": [1, 2]})


def test_continual_accuracy_one_panel_per_task():
    acc = np.array([[0.99, np.nan], [0.5, 0.97]])
    res = px.continual.ContinualResult("ewc", acc, [], [], None, {})
    fig = plot_continual_accuracy({"ewc": res})
    assert len(fig.axes) == 2
    np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_ydata(), [0.99, 0.5])
    plt.close(fig)
