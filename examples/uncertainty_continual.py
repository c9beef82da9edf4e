"""Continual learning on split digits: digits 0-4, then digits 5-9 (both as labels 0-4, one
shared 5-way head). Fine-tuning forgets the first task; EWC and online Laplace keep more of it.
Writes uncertainty_continual.png.

Run: python examples/uncertainty_continual.py
"""

import matplotlib

matplotlib.use("Agg")

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import posterax as px
from posterax.plots.uncertainty import plot_continual_accuracy


def split_digits():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    tasks = []
    for lo in (0, 5):
        m = (y >= lo) & (y < lo + 5)
        X_tr, X_te, y_tr, y_te = train_test_split(
            X[m], y[m] - lo, test_size=0.3, random_state=0, stratify=y[m]
        )
        tasks.append((X_tr, y_tr, X_te, y_te))
    return tasks


def main(num_epochs: int = 30, out: str | None = "uncertainty_continual.png") -> dict:
    tasks = split_digits()
    results = {
        strategy: px.continual.run_continual(
            tasks,
            strategy=strategy,
            hidden=(32,),
            num_epochs=num_epochs,
            learning_rate=3e-3,
            strength=100.0,
            random_state=0,
        )
        for strategy in ("finetune", "ewc", "online_laplace")
    }
    for name, res in results.items():
        acc = np.round(res.final_accuracy, 3).tolist()
        print(f"{name:>15}: accuracy on (task 1, task 2) after both tasks {acc}")
    if out:
        plot_continual_accuracy(results, title="split digits").savefig(out)
        print(f"wrote {out}")
    return {name: res.accuracy.tolist() for name, res in results.items()}


if __name__ == "__main__":
    main()
