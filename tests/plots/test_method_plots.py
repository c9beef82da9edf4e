import numpy as np
import pytest
from matplotlib.figure import Figure

from posterax.plots import plot_method_bands


def _bands(names, grid):
    bands = {}
    for i, name in enumerate(names):
        mean = np.sin(grid) * (i + 1)
        bands[name] = {"mean": mean, "lower": mean - 1 - i, "upper": mean + 1 + i}
    bands[names[0]]["mean_lower"] = bands[names[0]]["mean"] - 0.5
    bands[names[0]]["mean_upper"] = bands[names[0]]["mean"] + 0.5
    return bands


def test_method_bands_one_axis_per_method_on_shared_limits():
    x = np.linspace(-3, 3, 30)
    grid = np.linspace(-5, 5, 101)
    names = ["nuts", "map", "vi", "vi_lowrank", "mc_dropout"]
    fig = plot_method_bands(
        x,
        np.sin(x),
        grid,
        _bands(names, grid),
        titles={"nuts": "nuts (1.0 s)"},
        xlim=(-5, 5),
        ylim=(-4, 4),
        shade=(-3, 3),
        truth=np.sin(grid),
    )
    assert isinstance(fig, Figure)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == len(names)  # 2 x 3 grid, the sixth panel hidden
    assert [ax.get_title() for ax in visible] == ["nuts (1.0 s)", *names[1:]]
    assert {ax.get_xlim() for ax in visible} == {(-5.0, 5.0)}
    assert {ax.get_ylim() for ax in visible} == {(-4.0, 4.0)}
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"data", "posterior mean", "truth", "training range"} <= set(labels)
    assert "95% credible band (mean)" in labels  # from the one panel that has it
    assert all(ax.get_legend() is None for ax in visible)


def test_method_bands_default_limits_cover_every_band():
    x = np.linspace(-1, 1, 10)
    grid = np.linspace(-2, 2, 21)
    bands = _bands(["a", "b"], grid)
    fig = plot_method_bands(x, np.zeros_like(x), grid, bands, ncols=3)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 2
    low, high = axes[0].get_ylim()
    assert axes[1].get_ylim() == (low, high)
    assert low <= bands["b"]["lower"].min() and high >= bands["b"]["upper"].max()
    assert axes[0].get_xlim() == (-2.0, 2.0)


def test_method_bands_needs_a_method():
    with pytest.raises(ValueError, match="at least one method"):
        plot_method_bands(np.zeros(3), np.zeros(3), np.zeros(5), {})
