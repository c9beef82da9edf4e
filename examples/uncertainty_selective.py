"""Selective prediction: abstain when the predictive entropy is too high.

A deep ensemble on digits 0-4; the test stream also contains 150 digits 5-9 (never seen, always
wrong). The abstention threshold is chosen on a calibration split for a 5% target error rate
among answered points (empirically and with a 90%-confidence bound), then checked on the test
split. Writes uncertainty_risk_coverage.png.

Run: python examples/uncertainty_selective.py
"""

import matplotlib

matplotlib.use("Agg")

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import posterax as px
from posterax.plots.uncertainty import plot_risk_coverage


def main(
    num_epochs: int = 30,
    target_risk: float = 0.05,
    out: str | None = "uncertainty_risk_coverage.png",
) -> dict:
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    inside = y < 5
    X_tr, X_rest, y_tr, y_rest = train_test_split(
        X[inside], y[inside], test_size=0.5, random_state=0, stratify=y[inside]
    )
    clf = px.BayesianClassifier(
        method=px.methods.Ensemble(
            training=px.methods.Training(num_epochs=num_epochs, batch_size=64, learning_rate=1e-2)
        ),
        network=(32,),
        progress_bar=False,
        random_state=0,
    ).fit(X_tr, y_tr)
    # A stream of known digits mixed with 150 unknown ones (labelled -1: always an error).
    rng = np.random.default_rng(0)
    unknown = rng.choice(np.flatnonzero(~inside), size=150, replace=False)
    X_stream = np.r_[X_rest, X[unknown]]
    y_stream = np.r_[y_rest, -np.ones(len(unknown), dtype=int)]
    perm = rng.permutation(len(y_stream))
    cal, test = perm[: len(perm) // 2], perm[len(perm) // 2 :]
    pred = clf.predict_samples(X_stream)
    entropy = np.asarray(px.uncertainty.decompose(pred).total)
    errors = (clf.predict(X_stream) != y_stream).astype(float)
    results = {}
    for label, delta in (("empirical", None), ("90% bound", 0.1)):
        rule = px.uncertainty.fit_abstention(entropy[cal], errors[cal], target_risk, delta=delta)
        m = rule.evaluate(entropy[test], errors[test])
        results[label] = {"threshold": rule.threshold, **m}
        print(
            f"{label:>10}: answer when entropy <= {rule.threshold:.3f}; on the test split "
            f"coverage {m['coverage']:.1%}, error rate among answered {m['risk']:.3f} "
            f"(target {target_risk}; answering everything: {errors[test].mean():.3f})"
        )
    if out:
        probs = np.asarray(pred.probs()).mean(0)[test]
        # Risk-coverage needs labels in range: unseen digits get a label the model never predicts
        # correctly (any label != argmax would do; use the argmax + 1 modulo K).
        y_plot = np.where(y_stream[test] >= 0, y_stream[test], (probs.argmax(1) + 1) % 5)
        fig = plot_risk_coverage(
            y_plot,
            probs,
            {"-entropy": -entropy[test], "max probability": probs.max(1)},
            target_risk=target_risk,
        )
        fig.savefig(out)
        print(f"wrote {out}")
    return results


if __name__ == "__main__":
    main()
