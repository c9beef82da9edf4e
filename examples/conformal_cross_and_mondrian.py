"""Conformal prediction without a calibration split (CV+, jackknife+-after-bootstrap) and
with coverage per group (Mondrian), around a posterax Bayesian linear regression; then
cross-conformal prediction sets with coverage per class.

Regression: the noise is three times larger for group 1 than for group 0. One split-conformal
threshold covers 90% on average but over-covers group 0 and under-covers group 1; one threshold
per group covers 90% within each.

Classification: classes 1 and 2 overlap, class 0 stands apart. Cross-conformal sets (10 folds,
no calibration split) cover 90% on average but class 2 about 81%; calibrating each class on its
own (``class_conditional=True``) brings every class to about 90%.

Run: python examples/conformal_cross_and_mondrian.py
"""

import numpy as np
from sklearn.linear_model import LogisticRegression

import posterax as px


def data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    group = rng.integers(0, 2, n)
    y = X @ [1.0, -1.0] + rng.normal(size=n) * np.where(group == 1, 3.0, 1.0)
    return X, y, group


def class_data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centers = np.array([[-3.0, 0.0], [1.0, 0.0], [1.8, 0.5]])
    X = centers[y] + rng.normal(size=(n, 2)) * np.array([1.0, 1.0, 1.5])[y, None]
    return X, y


def covered(lower, upper, y):
    return float(np.mean((np.asarray(lower) <= y) & (y <= np.asarray(upper))))


def main() -> dict:
    X, y, group = data(2400, 0)
    X_test, y_test, group_test = data(2000, 1)
    model = px.BayesianLinearRegression(method="map")
    out = {}
    # 400 points that all train and calibrate: no split lost.
    few_X, few_y = X[:400], y[:400]
    cv_plus = px.conformal.CrossConformalRegressor(model, 0.9, cv=10, random_state=0)
    out["cv_plus"] = covered(
        *cv_plus.fit_conformalize(few_X, few_y).predict_interval(X_test), y_test
    )
    jab = px.conformal.JackknifeAfterBootstrapRegressor(model, 0.9, resampling=30, random_state=0)
    out["jackknife_after_bootstrap"] = covered(
        *jab.fit_conformalize(few_X, few_y).predict_interval(X_test), y_test
    )
    # Split conformal: fit on those 400, calibrate on 2000; one threshold or one per group.
    fitted = px.BayesianLinearRegression(method="map").fit(few_X, few_y)
    split = px.conformal.SplitConformalRegressor(fitted, 0.9).conformalize(X[400:], y[400:])
    mondrian = px.conformal.SplitConformalRegressor(fitted, 0.9).conformalize(
        X[400:], y[400:], partition=group[400:]
    )
    lower, upper = split.predict_interval(X_test)
    lower_g, upper_g = mondrian.predict_interval(X_test, partition=group_test)
    for g in (0, 1):
        at = group_test == g
        out[f"split_group_{g}"] = covered(lower[at], upper[at], y_test[at])
        out[f"mondrian_group_{g}"] = covered(lower_g[at], upper_g[at], y_test[at])
    # Classification: cross-conformal sets, one threshold or one per class.
    X, y = class_data(1500, 2)
    X_test, y_test = class_data(6000, 3)
    for per_class in (False, True):
        sets = (
            px.conformal.CrossConformalClassifier(
                LogisticRegression(), 0.9, cv=10, class_conditional=per_class, random_state=0
            )
            .fit_conformalize(X, y)
            .predict_set(X_test)
        )
        hit = sets[np.arange(len(y_test)), y_test]
        name = "per_class" if per_class else "cross_sets"
        for k in range(3):
            out[f"{name}_class_{k}"] = float(hit[y_test == k].mean())
    for name, value in out.items():
        print(f"{name:>26}: coverage {value:.3f} (target 0.90)")
    return out


if __name__ == "__main__":
    main()
