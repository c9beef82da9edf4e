"""The seed Iris classifier as a 4-16-3 Bayesian neural network (NUTS), with calibration
metrics and conformal prediction sets.

Run: python examples/iris_bnn.py
"""

import numpy as np
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

import posterax as px


def main(num_warmup: int = 1000, num_samples: int = 1000) -> dict:
    X, y = load_iris(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=30, stratify=y, random_state=42)
    clf = px.BayesianClassifier(
        px.methods.NUTS(num_warmup=num_warmup, num_samples=num_samples),
        network=(16,),
        random_state=42,
    ).fit(X_tr, y_tr)
    proba = clf.predict_proba(X_te)
    scores = {
        "accuracy": float(px.metrics.accuracy(y_te, proba)),
        "nll": float(px.metrics.log_loss(y_te, proba)),
        "ece": float(px.metrics.expected_calibration_error(y_te, proba)),
        "brier": float(px.metrics.brier_score(y_te, proba)),
    }
    print(scores)
    # Conformal sets: calibrate on half of the test split, evaluate on the other half.
    sets = px.conformal.SplitConformalClassifier(clf, confidence_level=0.9)
    sets.conformalize(X_te[::2], y_te[::2])
    predicted = np.asarray(sets.predict_set(X_te[1::2]))
    print("mean set size", predicted.sum(axis=1).mean())
    return scores


if __name__ == "__main__":
    main()
