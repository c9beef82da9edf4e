"""Split predictive uncertainty into aleatoric (noise) and epistemic (model) parts.

A deep ensemble on the seed 1-D data (y = sin(x)·x + 0.3·ε, x ~ U(−3, 3)): the aleatoric part
(the learnt noise variance) is flat, the epistemic part (disagreement between members) rises
outside the training range. Writes uncertainty_decomposition.png.

Run: python examples/uncertainty_decomposition.py
"""

import matplotlib

matplotlib.use("Agg")

import numpy as np

import posterax as px
from posterax.plots.uncertainty import plot_decomposition


def main(num_epochs: int = 300, out: str | None = "uncertainty_decomposition.png") -> dict:
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, (100, 1))
    y = np.sin(X[:, 0]) * X[:, 0] + 0.3 * rng.normal(size=100)
    reg = px.BayesianRegressor(
        method=px.methods.Ensemble(
            training=px.methods.Training(num_epochs=num_epochs, learning_rate=1e-2)
        ),
        network=(50,),
        progress_bar=False,
        random_state=0,
    ).fit(X, y)
    grid = np.linspace(-5, 5, 201)[:, None]
    d = px.uncertainty.decompose(reg.predict_samples(grid))
    inside, outside = np.abs(grid[:, 0]) < 3, np.abs(grid[:, 0]) > 4
    summary = {
        part: (float(np.mean(v[inside])), float(np.mean(v[outside])))
        for part, v in (
            ("aleatoric", np.asarray(d.aleatoric)),
            ("epistemic", np.asarray(d.epistemic)),
        )
    }
    for part, (a, b) in summary.items():
        print(f"{part:>9} variance: {a:.3f} inside the training range, {b:.3f} beyond |x| = 4")
    if out:
        plot_decomposition(d, grid[:, 0], train_range=(-3, 3), title="deep ensemble").savefig(out)
        print(f"wrote {out}")
    return summary


if __name__ == "__main__":
    main()
