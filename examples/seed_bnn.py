"""The seed 1-5-1 tanh Bayesian neural network, sampled with NUTS; checks the band widens
away from the data and that predictions (not weights) have converged.

Run: python examples/seed_bnn.py
"""

import numpy as np

import posterax as px


def main(num_warmup: int = 1000, num_samples: int = 1000) -> px.BayesianRegressor:
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, (100, 1))
    y = np.sin(X[:, 0]) * X[:, 0] + 0.3 * rng.normal(size=100)
    reg = px.BayesianRegressor(
        px.methods.NUTS(num_warmup=num_warmup, num_samples=num_samples),
        network=px.networks.MLP(hidden=(5,), activation="tanh"),
        random_state=0,
    ).fit(X, y)
    for x in (0.0, 2.0, 5.0):
        lo, hi = reg.predict_interval(np.array([[x]]), level=0.95)
        print(f"x={x:3.1f}: 95% prediction interval [{lo[0]:+.2f}, {hi[0]:+.2f}]")
    diag = reg.diagnostics()
    print("function space:", diag["function_space"])
    print("weight space:  ", diag["weight_space"])
    return reg


if __name__ == "__main__":
    main()
