"""Demo section "Posterior methods compared": every network posterior method of
``BayesianRegressor`` on the seed 1-D data y = sin(x)·x + 0.3·ε, x ~ U(−3, 3), with the
predictive band of each on shared axes out to |x| = 5 and held-out scores."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

import posterax as px
from posterax.cli.demo_networks import TRAIN_RANGE, seed_bnn_data
from posterax.methods import method_from_settings
from posterax.plots import plot_method_bands
from posterax.predictive import predictive_interval, predictive_mean, predictive_std
from posterax.report import Section

LEVEL = 0.95
METHODS = (
    "nuts",
    "mala",
    "sghmc",
    "csgmcmc",
    "map",
    "laplace",
    "vi",
    "vi_lowrank",
    "mc_dropout",
    "ensemble",
    "swag",
)
SAMPLERS = ("nuts", "mala", "sghmc", "csgmcmc")  # MCMC: warmup and draws, no epochs
# --quick: the NUTS fit comes for free from the BNN section; each optimisation method costs
# 5-10 s of compilation on a cold start, so keep one: the deep ensemble, the usual baseline.
QUICK_METHODS = ("nuts", "ensemble")
HIDDEN = (50,)
ACTIVATION = "relu"  # a relu network's spread grows linearly away from the data; tanh saturates
X_LIM = (-5.0, 5.0)
Y_LIM = (-5.5, 4.5)
INSIDE = 3.0  # |x| < 3: the training range
OUTSIDE = (4.0, 5.0)  # 4 < |x| < 5: extrapolation
GRID = np.linspace(*X_LIM, 241)[:, None]


def _settings(quick: bool) -> dict[str, Any]:
    """Shared options of the optimisation methods: ``num_epochs="auto"`` (~5000 optimiser
    steps, 1250 epochs of 4 minibatches here); --quick trains 200 epochs at a larger step."""
    if quick:
        return {"num_epochs": 200, "learning_rate": 1e-2, "num_samples": 200}
    return {"num_epochs": "auto", "learning_rate": 3e-3, "num_samples": 500}


@dataclass
class MethodResult:
    """A fitted network, its band on ``GRID`` and its held-out scores."""

    reg: px.BayesianRegressor
    band: dict[str, np.ndarray]
    scores: dict[str, float]


def evaluate(method: str, reg: px.BayesianRegressor) -> MethodResult:
    """Band on ``GRID`` and scores on 500 fresh points, summarised as ``predict`` /
    ``predict_interval`` do. ``GRID`` has the BNN section's grid size, so for the NUTS fit the
    compiled predictive programs of that section are reused."""
    X_test, y_test = seed_bnn_data(500, 1)
    pred = reg.predict_samples(GRID)
    std = np.asarray(predictive_std(pred))
    lower, upper = predictive_interval(pred, LEVEL)
    band = {"mean": np.asarray(predictive_mean(pred)), "lower": lower, "upper": upper}
    if method != "map":  # a point estimate has no band of the function
        band["mean_lower"], band["mean_upper"] = predictive_interval(pred, LEVEL, kind="mean")
    band = {k: np.asarray(v) for k, v in band.items()}
    test = reg.predict_samples(X_test)
    test_mean, test_std = predictive_mean(test), predictive_std(test)
    x = np.abs(GRID[:, 0])
    inside, outside = x < INSIDE, (x > OUTSIDE[0]) & (x < OUTSIDE[1])
    scores = {
        "fit_seconds": reg.fit_seconds_,
        "test_rmse": float(px.metrics.rmse(y_test, test_mean)),
        "test_gaussian_nll": float(px.metrics.gaussian_nll(y_test, test_mean, test_std)),
        "test_coverage_95": float(px.metrics.coverage(y_test, *predictive_interval(test, LEVEL))),
        "mean_std_inside": float(std[inside].mean()),
        "mean_std_outside": float(std[outside].mean()),
    }
    return MethodResult(reg, band, scores)


def fit_methods(quick: bool, seed: int) -> dict[str, MethodResult]:
    """Fit and evaluate ``METHODS`` (or ``QUICK_METHODS``) but NUTS, which the BNN section
    fits, on the seed BNN data, 1-50-1 relu; meant for a worker thread. The samplers' draws
    are not checked for convergence here: the table shows what each gives in its default
    budget."""
    X, y = seed_bnn_data(100, 0)
    results = {}
    for method in QUICK_METHODS if quick else METHODS:
        if method == "nuts":
            continue
        reg = px.BayesianRegressor(
            method=method_from_settings(method, _settings(quick), ignore_unknown=True),
            network=px.networks.MLP(hidden=HIDDEN, activation=ACTIVATION),
            # One model for every method, as NUTS samples it: the seed data's noise is one sd
            # (the ensemble's own "auto" would predict an sd per x, which grows off the data).
            likelihood="homoscedastic",
            progress_bar=False,
            random_state=seed,
        )
        with warnings.catch_warnings():  # short MALA / SG-MCMC chains do not converge
            warnings.simplefilter("ignore", UserWarning)
            reg.fit(X, y)
        results[method] = evaluate(method, reg)
    return results


def _training(method: str, reg: px.BayesianRegressor) -> dict[str, Any]:
    settings = reg.method.settings()
    if method in SAMPLERS:
        return {"num_warmup": settings["num_warmup"], "num_samples": settings["num_samples"]}
    return {
        "epochs_run": reg.diagnostics()["training"]["epochs_run"],
        "learning_rate": settings["learning_rate"],
        "num_samples": settings.get("num_samples"),  # ensembles: one draw per member
    }


def _label(method: str, reg: px.BayesianRegressor) -> str:
    if method == "nuts":
        return f"nuts, 1-5-1 tanh ({reg.fit_seconds_:.1f} s)"
    network = reg.network
    return f"{method}, 1-{network.hidden[0]}-1 {network.activation} ({reg.fit_seconds_:.1f} s)"


def methods_section(
    results: dict[str, MethodResult], nuts: px.BayesianRegressor | None = None
) -> tuple[dict[str, Any], Section, dict]:
    """Band figure, score table and metrics for ``results`` plus, when given, the BNN
    section's NUTS fit (reused rather than sampled again)."""
    if nuts is not None:
        results = {"nuts": evaluate("nuts", nuts), **results}
    results = {m: results[m] for m in METHODS if m in results}
    X, y = seed_bnn_data(100, 0)
    metrics, rows = {}, []
    for method, res in results.items():
        metrics[method] = {
            "hidden": list(res.reg.network.hidden),
            "activation": res.reg.network.activation,
            **_training(method, res.reg),
            **res.scores,
        }
        ratio = res.scores["mean_std_outside"] / res.scores["mean_std_inside"]
        rows.append([method, *res.scores.values(), ratio])
    figure = plot_method_bands(
        X[:, 0],
        y,
        GRID[:, 0],
        {m: res.band for m, res in results.items()},
        titles={m: _label(m, res.reg) for m, res in results.items()},
        level=LEVEL,
        xlim=X_LIM,
        ylim=Y_LIM,
        shade=TRAIN_RANGE,
        truth=np.sin(GRID[:, 0]) * GRID[:, 0],
    )
    header = [
        "method",
        "fit s",
        "test RMSE",
        "test NLL",
        f"{LEVEL:.0%} coverage",
        f"std |x|<{INSIDE:g}",
        f"std {OUTSIDE[0]:g}<|x|<{OUTSIDE[1]:g}",
        "ratio",
    ]
    section = Section(
        "Posterior methods compared",
        paragraphs=[
            "The seed 1-D data of the section above (100 points of y = sin(x)·x + 0.3·ε, "
            "x ~ U(−3, 3)) fitted by every network method of BayesianRegressor. All but nuts "
            f"use a 1-{HIDDEN[0]}-1 {ACTIVATION} network with Normal(0, 1) weight priors on "
            "standardised data; nuts is the 1-5-1 tanh NUTS fit of the section above. mala "
            "(full-batch Metropolis-adjusted Langevin), sghmc and csgmcmc (cyclical SGLD, "
            "minibatches of 32) run 1000 warmup steps and keep 500 draws of one chain each: at "
            "this budget R-hat flags the mala chain as unconverged (its steps are small on a "
            "151-weight network), and csgmcmc's split R-hat is high by design (each cycle "
            "restarts with a large step and may settle in another mode). laplace is a KFAC "
            "Laplace approximation around the map network, its prior precision and noise tuned "
            "by the marginal likelihood, predicting with the network linearised at the MAP.",
            "Scores on 500 fresh points from the same generator: RMSE of the predictive mean, "
            "Gaussian NLL with the predictive mean and sd, coverage of the 95% prediction "
            f"interval; then the mean predictive sd inside the training range (|x| < {INSIDE:g}) "
            f"and in extrapolation ({OUTSIDE[0]:g} < |x| < {OUTSIDE[1]:g}) and their ratio.",
        ],
        tables=[(header, rows)],
        notes=[
            "Fit times include compilation (or loading it from the disk cache) and were "
            "measured while the other demo fits ran in parallel threads, so they compare only "
            "roughly: the first fit of a thread pays most for the contention. map has no "
            "posterior: its interval is the fitted noise alone and does not widen away from "
            "the data."
        ],
        figures=[
            (
                figure,
                "Predictive mean (red), 95% prediction interval (light) and 95% credible band "
                "of the function (dark) per method, shared axes; grey: training range; dotted: "
                "the generating function sin(x)·x.",
            )
        ],
    )
    return metrics, section, {"methods_bands.png": figure}


__all__ = [
    "METHODS",
    "QUICK_METHODS",
    "MethodResult",
    "evaluate",
    "fit_methods",
    "methods_section",
]
