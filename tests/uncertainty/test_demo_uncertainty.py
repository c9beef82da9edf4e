"""The demo's decomposition section, wired to stand-in fits (the real ones run in tests/cli)."""

from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pytest

import posterax as px
from posterax.cli.demo_uncertainty import uncertainty_section


class _Spread:
    """Draws that agree inside |x| < 3 and fan out beyond; noise sd 0.3 everywhere."""

    def predict_samples(self, X):
        x = np.asarray(X)[:, 0]
        spread = np.maximum(np.abs(x) - 3, 0)
        mean = np.sin(x) * x + np.linspace(-1, 1, 8)[:, None] * spread
        return px.PredictiveSamples.regression(mean, 0.3)


def test_section_reports_flat_aleatoric_and_rising_epistemic():
    metrics, section, figures = uncertainty_section({"ensemble": SimpleNamespace(reg=_Spread())})
    m = metrics["ensemble"]
    assert m["aleatoric_inside"] == pytest.approx(0.09, rel=1e-5)
    assert m["aleatoric_outside"] == pytest.approx(0.09, rel=1e-5)
    assert m["epistemic_inside"] == pytest.approx(0.0, abs=1e-9)
    assert m["epistemic_outside"] > 0.1
    assert section.title == "Aleatoric and epistemic uncertainty"
    assert set(figures) == {"uncertainty_decomposition.png"}
    assert len(section.tables[0][1]) == 1
    plt.close("all")
