"""Every method x every kind of network x {regression, classification}: each fit gives a sensible
result (not only a run): regression RMSE near the noise (0.2) with intervals that cover, and
classification accuracy on well-separated blobs.

The default run takes each kind of network through a few methods; the whole matrix (130 fits,
about 11 minutes on 2 cores) runs with the slow tests.
"""

import warnings

import numpy as np
import pytest

import posterax as px
from flat_settings import flat_estimator
from user_networks import KINDS, blob_data, make_network, wave_data

METHODS = (
    "map",
    "ensemble",
    "vi",
    "vi_lowrank",
    "ivon",
    "swag",
    "laplace",
    "mc_dropout",
    "nuts",
    "nuts_last_layer",
    "mala",
    "sgld",
    "sghmc",
    "csgmcmc",
)
SETTINGS = {
    "num_epochs": 200,
    "num_warmup": 200,
    "num_samples": 200,
    "n_members": 3,
    "num_cycles": 2,
    "hessian_structure": "diag",
    "progress_bar": False,
    "random_state": 0,
}
# In the default run: each kind of network, both tasks, and the methods whose code paths differ
# most for a user's network (sampling, dropout layers, curvature); the whole matrix is slow.
FAST = {
    ("regression", "nnx", "nuts"),
    ("regression", "nnx", "mc_dropout"),
    ("regression", "equinox", "mc_dropout"),
    ("regression", "equinox", "ensemble"),
    ("regression", "linen", "vi"),
    ("regression", "functional", "laplace"),
    ("classification", "nnx", "laplace"),
    ("classification", "equinox", "map"),
}


def _cases():
    return [
        pytest.param(
            task,
            kind,
            method,
            marks=() if (task, kind, method) in FAST else pytest.mark.slow,
            id=f"{task}-{kind}-{method}",
        )
        for task in ("regression", "classification")
        for kind in KINDS
        for method in METHODS
    ]


@pytest.mark.parametrize(("task", "kind", "method"), _cases())
def test_method_on_network(task, kind, method):
    X, y = wave_data() if task == "regression" else blob_data()
    n_out = 1 if task == "regression" else 3
    dropout = 0.1 if method == "mc_dropout" else 0.0
    if method == "mc_dropout" and kind in ("linen", "functional"):
        pytest.skip("MC dropout runs the network's own dropout layers (NNX, Equinox, the MLP)")
    network = make_network(kind, X.shape[1], n_out, dropout=dropout)
    cls = px.BayesianRegressor if task == "regression" else px.BayesianClassifier
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short chains are flagged as not converged
        est = flat_estimator(cls, method=method, network=network, **SETTINGS).fit(X, y)
    if task == "regression":
        mean = est.predict(X)
        lo, hi = est.predict_interval(X, level=0.95)
        rmse = float(np.sqrt(np.mean((mean - y) ** 2)))
        assert rmse < 0.4, rmse  # noise sd 0.2; a constant predictor has RMSE 0.73
        assert np.mean((lo <= y) & (y <= hi)) > 0.8
    else:
        assert np.mean(est.predict(X) == y) > 0.9
        proba = est.predict_proba(X)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
