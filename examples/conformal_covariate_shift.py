"""Conformal prediction under covariate shift: weighted split conformal (Tibshirani et al., 2019)
around a posterax Bayesian linear regression.

Training and calibration inputs come from N(0, 1), test inputs from N(1, 1); the noise grows
with x (for x > 0) and the straight line is the wrong model. The test set has more points where
the noise is large, so plain split conformal (calibrated on N(0, 1)) under-covers. Weighting each
calibration score by the likelihood ratio w(x) = dN(1, 1)/dN(0, 1)(x) = exp(x - 1/2), known or
estimated by a logistic regression telling calibration from (unlabeled) test inputs, restores
90% coverage, with wider intervals where the test data are noisier.

A test point whose weight exceeds 1/9 of the calibration points' total weight (at 90%) gets an
infinite interval: the calibration data say nothing about it. With 1000 calibration points that
takes x > 5.2, so none here; with 200, about 0.5% of test points (tests/conformal/test_weighted.py).

Run: python examples/conformal_covariate_shift.py [--figure shift.png]
"""

import argparse

import numpy as np

import posterax as px
from posterax.conformal.weighted import WeightedSplitConformalRegressor


def data(n: int, shift: float, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.normal(shift, 1.0, (n, 1))
    noise = rng.normal(size=n) * (0.2 + 0.6 * np.maximum(X[:, 0], 0.0))
    return X, np.sin(2 * X[:, 0]) + X[:, 0] + noise


def true_ratio(X):
    return np.exp(np.asarray(X)[:, 0] - 0.5)


def covered(lower, upper, y):
    return float(np.mean((np.asarray(lower) <= y) & (y <= np.asarray(upper))))


def main(figure: str | None = None) -> dict:
    X_fit, y_fit = data(500, 0.0, 0)
    X_cal, y_cal = data(1000, 0.0, 1)
    X_test, y_test = data(5000, 1.0, 2)
    model = px.BayesianLinearRegression(method="exact").fit(X_fit, y_fit)
    score = {"conformity_score": "normalized"}  # scores |y - mean| / predictive std
    plain = px.conformal.SplitConformalRegressor(model, 0.9, **score).conformalize(X_cal, y_cal)
    known = WeightedSplitConformalRegressor(model, 0.9, likelihood_ratio=true_ratio, **score)
    known.conformalize(X_cal, y_cal)
    estimated = WeightedSplitConformalRegressor(model, 0.9, **score)
    estimated.conformalize(X_cal, y_cal, X_test=X_test)  # logistic regression, cal vs test
    out = {}
    bands = {}
    wrappers = {"plain": plain, "weighted_true": known, "weighted_estimated": estimated}
    for name, wrapper in wrappers.items():
        lower, upper = (np.asarray(b) for b in wrapper.predict_interval(X_test))
        bands[name] = (lower, upper)
        finite = np.isfinite(upper - lower)
        out[name] = covered(lower, upper, y_test)
        out[f"{name}_infinite"] = float(np.mean(~finite))
        out[f"{name}_median_width"] = float(np.median((upper - lower)[finite]))
    for name in ("plain", "weighted_true", "weighted_estimated"):
        print(
            f"{name:>19}: coverage {out[name]:.3f} (target 0.90), median width "
            f"{out[f'{name}_median_width']:.2f}, infinite intervals {out[f'{name}_infinite']:.1%}"
        )
    if figure:
        _plot(X_test[:, 0], y_test, bands, figure)
    return out


def _plot(x, y, bands, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = np.argsort(x)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.scatter(x, y, s=2, c="0.6", label="test data, x ~ N(1, 1)")
    for name, color in (("plain", "tab:red"), ("weighted_true", "tab:blue")):
        lower, upper = bands[name]
        ax.plot(x[order], lower[order], color=color, lw=1, label=name.replace("_", " "))
        ax.plot(x[order], upper[order], color=color, lw=1)
    ax.set(xlabel="x", ylabel="y", ylim=(y.min() - 1, y.max() + 1))
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"figure saved to {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--figure", help="save a figure of the intervals to this path")
    main(parser.parse_args().figure)
