"""The seed example: Bayesian linear regression three ways (exact, NUTS, MAP).

Run: python examples/seed_linear_regression.py
"""

import posterax as px


def main() -> dict:
    X, y, true_slope = px.data.seed_regression()
    fits = {
        "exact": px.BayesianLinearRegression(method="exact"),
        "nuts": px.BayesianLinearRegression(method="nuts", random_state=0),
        "map": px.BayesianLinearRegression(method="map"),
    }
    for name, reg in fits.items():
        slope = reg.fit(X, y).summary()["coef[0]"]
        print(
            f"{name:>5}: slope {slope['mean']:.2f}, 95% interval "
            f"[{slope['lower']:.2f}, {slope['upper']:.2f}] (true {true_slope:.2f})"
        )
    lo, hi = fits["exact"].predict_interval(X[:3], level=0.95)
    for a, b in zip(lo, hi, strict=True):
        print(f"95% prediction interval [{a:.1f}, {b:.1f}]")
    return fits


if __name__ == "__main__":
    main()
