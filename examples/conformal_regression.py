"""Conformal intervals around Bayesian regressors: they keep the predictive's shape and gain a
coverage guarantee.

1. ``main``: a calibration set of your own (``px.conformal.SplitConformalRegressor``, the
   score scaled by the Bayesian predictive std).
2. ``held_out_rows``: no calibration set: a network's ``predict_interval(kind="conformal")``
   sets the level on the rows its fit held out for early stopping. Heavy-tailed noise makes the
   Gaussian predictive's own 50% intervals cover far more than half of new rows; the
   conformal ones cover half.

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


def held_out_rows(level: float = 0.5) -> dict:
    rng = np.random.default_rng(1)
    X = rng.uniform(-2, 2, (12000, 1))
    y = np.sin(2 * X[:, 0]) + 0.2 * rng.standard_t(3, size=12000)  # heavy-tailed noise
    train, test = slice(0, 4000), slice(4000, None)
    reg = px.BayesianRegressor("ensemble", network=(32,), random_state=0, progress_bar=False)
    reg.fit(X[train], y[train])  # 10% of the rows held out to stop early by (the default)

    def coverage(kind):
        lo, hi = reg.predict_interval(X[test], level=level, kind=kind)
        return float(np.mean((lo <= y[test]) & (y[test] <= hi)))

    out = {
        "level": level,
        "held_out_rows": len(reg.posterior_.info["interval_scores"]),
        "test_rows": len(y[test]),
        "predictive_coverage": coverage("predictive"),
        "conformal_coverage": coverage("conformal"),
    }
    print(out)
    return out


if __name__ == "__main__":
    main()
    held_out_rows()
