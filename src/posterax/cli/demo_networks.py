"""Demo sections for Bayesian neural networks: the seed 1-5-1 regression BNN and an Iris
4-16-3 classifier, both sampled with NUTS."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

import posterax as px
from posterax.plots import (
    plot_coverage,
    plot_regression_band,
    plot_regression_calibration,
    plot_reliability_diagram,
)
from posterax.predictive import predictive_interval, predictive_mean, predictive_median
from posterax.report import Section

LEVEL = 0.95
TRAIN_RANGE = (-3.0, 3.0)


def seed_bnn_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The seed BNN data: y = sin(x)·x + 0.3·eps with x ~ U(-3, 3)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(*TRAIN_RANGE, (n, 1))
    return X, np.sin(X[:, 0]) * X[:, 0] + 0.3 * rng.normal(size=n)


def _nuts(quick: bool) -> px.methods.NUTS:
    return (
        px.methods.NUTS(num_warmup=300, num_samples=500)
        if quick
        else px.methods.NUTS(num_warmup=1000, num_samples=1000)
    )


def fit_bnn(quick: bool, seed: int) -> px.BayesianRegressor:
    X, y = seed_bnn_data(100, 0)
    return px.BayesianRegressor(
        _nuts(quick),
        network=px.networks.MLP(hidden=(5,), activation="tanh"),
        random_state=seed,
    ).fit(X, y)


def fit_iris(quick: bool, seed: int) -> px.BayesianClassifier:
    X_tr, _, y_tr, _ = _iris_split()
    return px.BayesianClassifier(_nuts(quick), network=(16,), random_state=seed).fit(X_tr, y_tr)


def _iris_split():
    data = load_iris()
    return train_test_split(
        data.data, data.target, test_size=30, stratify=data.target, random_state=42
    )


def bnn_regression_section(reg: px.BayesianRegressor) -> tuple[dict[str, Any], Section, dict]:
    X, y = seed_bnn_data(100, 0)
    X_test, y_test = seed_bnn_data(500, 1)
    grid = np.linspace(-6, 6, 241)[:, None]
    pred = reg.predict_samples(grid)
    lower, upper = predictive_interval(pred, LEVEL)
    mean_lower, mean_upper = predictive_interval(pred, LEVEL, kind="mean")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.axvspan(*TRAIN_RANGE, color="#dddddd", alpha=0.35, label="training range")
    plot_regression_band(
        X[:, 0],
        y,
        grid[:, 0],
        predictive_mean(pred),
        lower,
        upper,
        median=predictive_median(pred),
        mean_lower=mean_lower,
        mean_upper=mean_upper,
        draws=np.asarray(pred.mean[:20]),
        level=LEVEL,
        title="1-5-1 tanh BNN (NUTS): the band widens away from the data",
        ax=ax,
    )
    ax.plot(
        grid[:, 0], np.sin(grid[:, 0]) * grid[:, 0], color="black", lw=1, ls=":", label="sin(x)·x"
    )
    ax.legend(fontsize=8, frameon=False, loc="lower center", ncol=3)
    test_lo, test_hi = reg.predict_interval(X_test, LEVEL)
    test_mean = reg.predict(X_test)
    inside = (grid[:, 0] >= -2.5) & (grid[:, 0] <= 2.5)
    outside = np.abs(grid[:, 0]) >= 4.5
    width = np.asarray(mean_upper - mean_lower)
    calib = plot_regression_calibration(
        y_test,
        reg.predict_samples(X_test),
        label="BNN",
        title="Quantile calibration on 500 held-out points",
    )
    conformal = _conformal_comparison(reg, X_test, y_test)
    diag = reg.diagnostics()
    metrics = {
        "conformal": conformal["metrics"],
        "fit_seconds": reg.fit_seconds_,
        "test_coverage_95": float(np.mean((test_lo <= y_test) & (y_test <= test_hi))),
        "test_rmse": float(np.sqrt(np.mean((test_mean - y_test) ** 2))),
        "test_mixture_nll": float(px.metrics.mixture_nll(y_test, reg.predict_samples(X_test))),
        "mean_band_width_inside": float(width[inside].mean()),
        "mean_band_width_outside": float(width[outside].mean()),
        "sigma": reg.sigma_,
        "function_space": diag["function_space"],
        "weight_space": diag["weight_space"],
        "divergences": diag["divergences"],
    }
    fs, ws = diag["function_space"], diag["weight_space"]
    section = Section(
        "Bayesian neural network regression (seed 1-5-1 tanh BNN)",
        paragraphs=[
            "100 points of y = sin(x)·x + 0.3·ε, x ~ U(−3, 3); weights and biases ~ Normal(0, 1) "
            "on standardised inputs and targets, sigma ~ HalfCauchy(1); NUTS.",
            f"Held-out coverage of the 95% prediction interval: "
            f"{metrics['test_coverage_95']:.1%}; test RMSE {metrics['test_rmse']:.3f}. The "
            f"credible band of the mean is {metrics['mean_band_width_outside']:.2f} wide "
            f"outside the training range vs {metrics['mean_band_width_inside']:.2f} inside.",
        ],
        tables=[
            (
                ["diagnostic", "max R-hat", "min bulk ESS", "min tail ESS"],
                [
                    [
                        "function space (predictions)",
                        fs["max_r_hat"],
                        fs["min_ess_bulk"],
                        fs["min_ess_tail"],
                    ],
                    ["weight space", ws["max_r_hat"], ws["min_ess_bulk"], ws["min_ess_tail"]],
                ],
            )
        ],
        notes=[
            "Weights mix poorly because hidden units can swap places; predictions mix well. "
            "posterax bases its convergence warnings on function space."
        ],
        figures=[
            (
                fig,
                "Posterior predictive of the BNN: mean (red), median (dashed), 95% "
                "credible band of the function (dark) and 95% prediction interval (light).",
            ),
            (
                calib,
                "Observed vs nominal quantile level: calibrated predictions follow the diagonal.",
            ),
        ],
    )
    section.figures.append((conformal["figure"], conformal["caption"]))
    section.tables.append(conformal["table"])
    return (
        metrics,
        section,
        {
            "bnn_band.png": fig,
            "bnn_calibration.png": calib,
            "bnn_conformal_coverage.png": conformal["figure"],
        },
    )


def _conformal_comparison(reg: px.BayesianRegressor, X: np.ndarray, y: np.ndarray) -> dict:
    """Bayesian intervals vs their conformalised version (normalised score with the predictive
    std), calibrated on the first half of the held-out points and scored on the second half."""
    half = len(y) // 2
    pred_cal = reg.predict_samples(X[:half])
    pred_test = reg.predict_samples(X[half:])
    y_cal, y_test = y[:half], y[half:]
    levels = np.array([0.5, 0.7, 0.8, 0.9, 0.95])
    bayes, conformal, rows = [], [], []
    for level in levels:
        lo, hi = reg.predict_interval(X[half:], level)
        c_lo, c_hi = px.conformal.split_conformal_interval(
            y_cal, pred_cal, pred_test, alpha=1 - level, normalized=True
        )
        bayes.append(float(px.metrics.coverage(y_test, lo, hi)))
        conformal.append(float(px.metrics.coverage(y_test, c_lo, c_hi)))
        rows.append(
            [
                f"{level:.0%}",
                bayes[-1],
                conformal[-1],
                float(px.metrics.mean_interval_width(lo, hi)),
                float(px.metrics.mean_interval_width(c_lo, c_hi)),
            ]
        )
    figure = plot_coverage(
        levels,
        {"Bayesian": np.array(bayes), "conformalised": np.array(conformal)},
        title=f"Coverage on {len(y_test)} held-out points",
    )
    return {
        "metrics": {
            "levels": levels.tolist(),
            "bayes_coverage": bayes,
            "conformal_coverage": conformal,
            "n_calibration": half,
        },
        "figure": figure,
        "caption": (
            f"Split conformal (normalised by the BNN's predictive std, {half} calibration "
            "points) against the Bayesian intervals: conformal coverage is guaranteed "
            "on average, the Bayesian one holds only if the model is right."
        ),
        "table": (
            [
                "level",
                "Bayesian coverage",
                "conformal coverage",
                "Bayesian width",
                "conformal width",
            ],
            rows,
        ),
    }


def iris_section(clf: px.BayesianClassifier) -> tuple[dict[str, Any], Section, dict]:
    data = load_iris()
    X_tr, X_te, y_tr, y_te = _iris_split()
    plain = MLPClassifier(
        hidden_layer_sizes=(16,), activation="tanh", max_iter=3000, random_state=42
    ).fit(X_tr, y_tr)
    rows, metrics = [], {"fit_seconds": clf.fit_seconds_}
    for name, proba in (
        ("Bayesian (NUTS)", clf.predict_proba(X_te)),
        ("plain network (sklearn MLP)", plain.predict_proba(X_te)),
    ):
        scores = {
            "accuracy": float(px.metrics.accuracy(y_te, proba)),
            "nll": float(px.metrics.log_loss(y_te, proba)),
            "brier": float(px.metrics.brier_score(y_te, proba)),
            "ece": float(px.metrics.expected_calibration_error(y_te, proba)),
        }
        metrics[name] = scores
        rows.append([name, *scores.values()])
    draws = np.asarray(clf.predict_samples(X_te).probs())  # (S, N, K)
    names = data.target_names
    spread_rows = [
        [i, names[y_te[i]], names[int(np.argmax(draws[:, i].mean(0)))]]
        + [f"{draws[:, i, k].mean():.2f} ± {draws[:, i, k].std():.2f}" for k in range(3)]
        for i in np.argsort(-draws.std(0).max(-1))[:8]
    ]
    reliability = plot_reliability_diagram(
        y_te, clf.predict_samples(X_te), n_bins=10, title="Iris test set (30 points)"
    )
    diag = clf.diagnostics()
    metrics["function_space"] = diag["function_space"]
    metrics["divergences"] = diag["divergences"]
    section = Section(
        "Bayesian neural network classification (Iris, 4-16-3 tanh)",
        paragraphs=[
            "Stratified 120/30 split (random_state=42); weights and biases ~ Normal(0, 1) on "
            "standardised inputs; softmax likelihood; NUTS. The plain network is scikit-learn's "
            "MLPClassifier with the same architecture.",
        ],
        tables=[
            (["model", "accuracy", "NLL", "Brier", "ECE"], rows),
            (
                ["test point", "true", "predicted", *[f"p({n}) mean ± sd" for n in names]],
                spread_rows,
            ),
        ],
        notes=[
            "The second table lists the 8 test points whose class probabilities vary most "
            "across posterior draws: there the model says how unsure it is."
        ],
        figures=[(reliability, "Reliability diagram of the Bayesian classifier (10 bins).")],
    )
    return metrics, section, {"iris_reliability.png": reliability}


__all__ = ["bnn_regression_section", "fit_bnn", "fit_iris", "iris_section", "seed_bnn_data"]
