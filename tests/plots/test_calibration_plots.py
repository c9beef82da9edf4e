"""Calibration plots return Figures and show what the metrics compute."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from posterax.base import PredictiveSamples
from posterax.metrics import expected_calibration_error
from posterax.plots.calibration import (
    plot_coverage,
    plot_interval_widths,
    plot_regression_calibration,
    plot_reliability_diagram,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_reliability_diagram(tmp_path):
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(3) * 0.5, 400)
    y = rng.integers(0, 3, 400)
    for strategy in ("uniform", "quantile"):
        fig = plot_reliability_diagram(y, p, n_bins=10, strategy=strategy)
        assert isinstance(fig, Figure) and len(fig.axes) == 2
        ece = float(expected_calibration_error(y, p, n_bins=10, strategy=strategy))
        labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        assert any(f"{ece:.3f}" in label for label in labels)
        fig.savefig(tmp_path / f"rel_{strategy}.png")
    logits = PredictiveSamples.classification(rng.normal(size=(2, 50, 3)))
    assert isinstance(plot_reliability_diagram(rng.integers(0, 3, 50), logits), Figure)


def test_regression_calibration_and_overlay():
    rng = np.random.default_rng(1)
    y = rng.normal(size=300)
    fig = plot_regression_calibration(y, np.zeros(300), np.full(300, 0.5), label="narrow")
    pred = PredictiveSamples.regression(np.zeros((2, 300)), np.ones((2, 300)))
    same = plot_regression_calibration(y, pred, label="calibrated", ax=fig.axes[0])
    assert same is fig
    assert len(fig.axes[0].lines) == 3  # diagonal + two curves


def test_coverage_and_widths():
    fig = plot_coverage([0.5, 0.8, 0.9], {"bayes": [0.4, 0.7, 0.8], "conformal": [0.5, 0.8, 0.9]})
    assert isinstance(fig, Figure) and len(fig.axes[0].lines) == 3
    with pytest.raises(ValueError, match="one coverage per nominal level"):
        plot_coverage([0.5, 0.9], [0.5])
    fig = plot_interval_widths(
        {"absolute": np.full(100, 2.0), "normalized": np.linspace(1, 3, 100)}
    )
    assert isinstance(fig, Figure)
    assert isinstance(plot_interval_widths(np.linspace(0, 1, 10), bins=5), Figure)
