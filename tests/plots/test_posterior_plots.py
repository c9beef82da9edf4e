import numpy as np
from matplotlib.figure import Figure

from posterax.plots import plot_posterior, plot_regression_band


def test_plot_posterior_one_panel_per_scalar_parameter():
    rng = np.random.default_rng(0)
    fig = plot_posterior(
        {"coef": rng.normal(size=(500, 2)), "sigma": rng.gamma(2, size=500)},
        true_values={"coef[0]": 0.0},
    )
    assert isinstance(fig, Figure)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 3
    assert visible[0].get_title().startswith("coef[0]: [")


def test_regression_band_plot_draws_everything():
    x = np.linspace(0, 1, 20)
    grid = np.linspace(0, 1, 50)
    fig = plot_regression_band(
        x,
        2 * x,
        grid,
        2 * grid,
        2 * grid - 1,
        2 * grid + 1,
        median=2 * grid,
        mean_lower=2 * grid - 0.2,
        mean_upper=2 * grid + 0.2,
        draws=np.tile(2 * grid, (5, 1)),
    )
    ax = fig.axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert {"data", "posterior mean", "posterior median", "posterior draws"} <= set(labels)
    assert len(ax.collections) >= 3  # two bands + scatter
