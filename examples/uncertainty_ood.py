"""Out-of-distribution detection: train on digits 0-4, flag digits 5-9 as unfamiliar.

A deep ensemble's predictive entropy, mutual information (epistemic), max-softmax, energy and
variance scores, each evaluated by AUROC, AUPR (OOD positive) and FPR at 95% TPR. Both the
in-distribution test set and the OOD set are needed: one without the other is no evaluation.

Run: python examples/uncertainty_ood.py
"""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import posterax as px


def main(num_epochs: int = 30, n_members: int = 5) -> dict:
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    inside = y < 5
    X_tr, X_te, y_tr, y_te = train_test_split(
        X[inside], y[inside], test_size=0.3, random_state=0, stratify=y[inside]
    )
    clf = px.BayesianClassifier(
        method=px.methods.Ensemble(
            num_members=n_members,
            training=px.methods.Training(num_epochs=num_epochs, batch_size=64, learning_rate=1e-2),
        ),
        network=(32,),
        progress_bar=False,
        random_state=0,
    ).fit(X_tr, y_tr)
    print(f"test accuracy on digits 0-4: {np.mean(clf.predict(X_te) == y_te):.3f}")
    scores_in = px.uncertainty.ood_scores(clf.predict_samples(X_te))
    scores_out = px.uncertainty.ood_scores(clf.predict_samples(X[~inside]))
    report = px.uncertainty.ood_report(scores_in, scores_out)
    print(f"{'score':<20}{'AUROC':>8}{'AUPR':>8}{'FPR95':>8}")
    for name, r in report.items():
        print(f"{name:<20}{r['auroc']:>8.3f}{r['aupr']:>8.3f}{r['fpr_at_tpr']:>8.3f}")
    return report


if __name__ == "__main__":
    main()
