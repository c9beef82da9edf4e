"""Conformal prediction for a time series with a change point: EnbPI (Xu & Xie 2021) and ACI
(Gibbs & Candès 2021).

An hourly series with a daily cycle; halfway through the test period the noise triples. Each
day the intervals for the next 24 hours are issued, then the day is observed and the methods
update (no model is refitted):

- EnbPI without updates (the residuals of the training period only) keeps its 90% intervals
  too narrow after the change;
- EnbPI with updates replaces old residuals with new ones: it recovers, after a lag;
- ACI (a posterax Bayesian linear regression, split-conformal residuals, a rolling window and
  the adaptive level alpha_t) and EnbPI + ACI also raise the level they ask for when they miss,
  and keep the long-run coverage at 90%.

Run: python examples/conformal_time_series.py [--figure time_series.png]
"""

import argparse

import numpy as np
from sklearn.linear_model import Ridge

import posterax as px
from posterax.conformal.time_series_wrappers import AdaptiveConformalRegressor, EnbPIRegressor

DAY = 24


def data(n: int, change: int, seed: int):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    X = np.column_stack([np.sin(2 * np.pi * t / DAY), np.cos(2 * np.pi * t / DAY), t / n])
    noise = rng.standard_t(df=8, size=n) * np.where(t < change, 1.0, 3.0)
    return X, 10 + 3 * X[:, 0] - 2 * X[:, 1] + 2 * X[:, 2] + noise


def run_online(model, X, y):
    """Issue a day of intervals, observe the day, update: the intervals issued and the level
    ``alpha_t`` each was issued at."""
    lower, upper, level = [], [], []
    for start in range(0, len(y), DAY):
        day = slice(start, start + DAY)
        lo, hi = model.predict_interval(X[day])
        lower.append(np.asarray(lo)), upper.append(np.asarray(hi))
        level.append(np.full(len(lower[-1]), model.alpha_t_))
        model.update(X[day], y[day])
    return np.concatenate(lower), np.concatenate(upper), np.concatenate(level)


def main(figure: str | None = None) -> dict:
    n_train, n_cal, n_test = 20 * DAY, 10 * DAY, 60 * DAY
    change = n_train + n_cal + n_test // 2
    X, y = data(n_train + n_cal + n_test, change, seed=0)
    test = slice(n_train + n_cal, None)
    X_test, y_test = X[test], y[test]
    after = np.arange(n_test) >= n_test // 2

    train = slice(0, n_train + n_cal)  # EnbPI needs no calibration split
    enbpi = dict(resampling=20, block_length=DAY, random_state=0)
    models = {
        "enbpi_fixed": EnbPIRegressor(Ridge(), 0.9, **enbpi),
        "enbpi": EnbPIRegressor(Ridge(), 0.9, **enbpi),
        "enbpi_aci": EnbPIRegressor(Ridge(), 0.9, gamma=0.02, **enbpi),
    }
    for model in models.values():
        model.fit_conformalize(X[train], y[train])
    forecaster = px.BayesianLinearRegression(method="map").fit(X[:n_train], y[:n_train])
    aci = AdaptiveConformalRegressor(forecaster, 0.9, gamma=0.02, window=10 * DAY)
    models["aci"] = aci.conformalize(X[n_train : n_train + n_cal], y[n_train : n_train + n_cal])

    out, bands = {}, {}
    for name, model in models.items():
        if name == "enbpi_fixed":  # predict only: the training residuals forever
            lower, upper = model.predict_interval(X_test)
        else:
            lower, upper, level = run_online(model, X_test, y_test)
            out[f"{name}_alpha_before"] = float(level[~after].mean())
            out[f"{name}_alpha_first_week_after"] = float(level[after][: 7 * DAY].mean())
        hit = (lower <= y_test) & (y_test <= upper)
        out[f"{name}_before"] = float(hit[~after].mean())
        out[f"{name}_after"] = float(hit[after].mean())
        out[f"{name}_first_week_after"] = float(hit[after][: 7 * DAY].mean())
        out[f"{name}_overall"] = float(hit.mean())
        width = upper - lower
        out[f"{name}_width_after"] = float(np.median(width[after][np.isfinite(width[after])]))
        bands[name] = (lower, upper)
        print(
            f"{name:>12}: coverage {out[f'{name}_before']:.3f} before the change, "
            f"{out[f'{name}_after']:.3f} after ({out[f'{name}_first_week_after']:.3f} in its "
            f"first week), {out[f'{name}_overall']:.3f} overall (target 0.90); median width "
            f"after {out[f'{name}_width_after']:.2f}"
        )
    for name in ("enbpi_aci", "aci"):
        print(
            f"{name:>12}: mean level alpha_t {out[f'{name}_alpha_before']:.3f} before the change, "
            f"{out[f'{name}_alpha_first_week_after']:.3f} in the first week after (alpha = 0.1: "
            "it asks for wider intervals while the residual window still holds the old noise)"
        )
    if figure:
        _plot(y_test, bands, n_test // 2, figure)
    return out


def _plot(y, bands, change, path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4))
    t = np.arange(y.size)
    ax.plot(t, y, color="black", lw=0.6, label="observed")
    for name, color in (("enbpi_fixed", "tab:red"), ("aci", "tab:blue")):
        lower, upper = bands[name]
        ax.fill_between(t, lower, upper, color=color, alpha=0.3, label=name)
    ax.axvline(change, color="grey", ls="--", label="noise x3")
    ax.set_xlabel("hour of the test period")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"figure saved to {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--figure", help="save a figure of the intervals to this path")
    main(parser.parse_args().figure)
