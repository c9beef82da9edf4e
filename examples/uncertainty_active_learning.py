"""Active learning on digits: label the pool points a Bayesian network is most unsure about.

MC-dropout network; each round refits on the labelled set, scores the unlabelled pool with
BALD (mutual information between label and weights) and labels the top batch; random
acquisition is the baseline. Prints both learning curves and writes
uncertainty_active_learning.png.

Run: python examples/uncertainty_active_learning.py
"""

import matplotlib

matplotlib.use("Agg")

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import posterax as px
from posterax.plots.uncertainty import plot_learning_curves


def main(
    n_rounds: int = 10,
    batch_size: int = 20,
    n_initial: int = 100,
    seeds: tuple[int, ...] = (0,),
    acquisitions: tuple[str, ...] = ("random", "bald"),
    out: str | None = "uncertainty_active_learning.png",
) -> dict:
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_pool, X_test, y_pool, y_test = train_test_split(
        X, y, test_size=500, random_state=0, stratify=y
    )
    clf = px.BayesianClassifier(
        method=px.methods.MCDropout(
            dropout_rate=0.5,
            num_samples=30,
            training=px.methods.Training(num_epochs=200, learning_rate=1e-2),
        ),
        network=(128,),
        progress_bar=False,
        random_state=0,
    )
    curves = {}
    for name in acquisitions:
        curves[name] = [
            px.active.ActiveLearner(
                clf,
                name,
                batch_size=batch_size,
                n_rounds=n_rounds,
                n_initial=n_initial,
                random_state=seed,
            ).run(X_pool, y_pool, X_test, y_test)
            for seed in seeds
        ]
        for c in curves[name]:
            print(f"{name:>8}: area {c.area():.3f}, accuracy {c.scores.round(3).tolist()}")
    if out:
        plot_learning_curves(curves, title="digits, MC dropout").savefig(out)
        print(f"wrote {out}")
    return {name: [c.as_dict() for c in runs] for name, runs in curves.items()}


if __name__ == "__main__":
    main()
