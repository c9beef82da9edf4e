"""Conformalised Bayes: a Bayesian regressor's predictive std as the conformal score's scale,
so the intervals keep their shape and gain a finite-sample coverage guarantee.

Run: python examples/conformal_regression.py
"""

import numpy as np

import posterax as px


def main() -> dict:
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, (3000, 2))
    y = X[:, 0] - 0.5 * X[:, 1] + (0.2 + 0.3 * np.abs(X[:, 0])) * rng.normal(size=3000)
    train, cal, test = slice(0, 1000), slice(1000, 2000), slice(2000, 3000)
    reg = px.BayesianLinearRegression().fit(X[train], y[train])
    conformal = px.conformal.SplitConformalRegressor(
        reg, confidence_level=0.9, conformity_score="normalized"
    ).conformalize(X[cal], y[cal])
    lo, hi = (np.asarray(b) for b in conformal.predict_interval(X[test]))
    bayes_lo, bayes_hi = reg.predict_interval(X[test], level=0.9)
    out = {
        "conformal_coverage": float(np.mean((lo <= y[test]) & (y[test] <= hi))),
        "bayes_coverage": float(np.mean((bayes_lo <= y[test]) & (y[test] <= bayes_hi))),
    }
    print(out)
    return out


if __name__ == "__main__":
    main()
