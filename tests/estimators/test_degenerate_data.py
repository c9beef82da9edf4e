"""Degenerate designs (issue 18): one sample, constant columns, duplicated columns, fewer samples
than columns, a constant target. Every estimator and method either fits and predicts finite
values, or raises one of our errors naming the parameter; never a raw linear-algebra error or a
NaN (whether a singular solve raises depends on the CPU and BLAS, so such paths fail CI at random).

The default run covers the linear models and the Laplace structures whose linear algebra is
their own; every other method runs with the slow tests.
"""

import warnings

import numpy as np
import pytest

import posterax as px
from flat_settings import flat_estimator

_RNG = np.random.default_rng(0)
_X = _RNG.normal(size=(20, 3))
_Y = _X[:, 0] + 0.1 * _RNG.normal(size=20)


def _constant_column():
    X = _X.copy()
    X[:, 1] = 5.0
    return X, _Y


CASES = {
    "one_sample": (_X[:1], _Y[:1]),
    "constant_column": _constant_column(),
    "duplicated_column": (np.column_stack([_X, _X[:, 0]]), _Y),
    "fewer_samples_than_columns": (_RNG.normal(size=(4, 10)), _RNG.normal(size=4)),
    "constant_target": (_X, np.full(20, 3.0)),
}
NETWORK = {
    "hidden": (4,),
    "num_epochs": 5,
    "num_samples": 20,
    "num_warmup": 20,
    "n_members": 2,
    "num_cycles": 2,
    "progress_bar": False,
    "random_state": 0,
}
# The default run: the methods with linear algebra of their own (the low-rank Laplace found the
# NaN gradient of a zero eigenvalue); the rest share these code paths and run with the slow tests.
FAST_NETWORK = [
    {"method": "laplace", "hessian_structure": "lowrank"},
    {"method": "laplace", "hessian_structure": "full", "subset_of_weights": "last_layer"},
]
SLOW_NETWORK = [
    {"method": "map"},
    {"method": "ensemble"},
    *({"method": "laplace", "hessian_structure": s} for s in ("kron", "diag", "full")),
    *(
        {"method": m}
        for m in ("vi", "vi_lowrank", "mc_dropout", "swag", "nuts", "mala", "sgld", "sghmc")
    ),
    {"method": "csgmcmc"},
]


def _fits_or_refuses_clearly(make, X, y, predict):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence / batch-size / floor warnings are expected
        try:
            est = make().fit(X, y)
        except ValueError as error:
            assert str(error).startswith("The '"), f"not one of our errors: {error}"
            return
        for name, values in predict(est, X).items():
            if name == "std":  # a Student-t predictive with <= 2 degrees of freedom has sd inf
                assert not np.isnan(values).any() and (values > 0).all(), name
            else:
                assert np.isfinite(values).all(), f"{name} is not finite"


def _regression_outputs(est, X):
    mean, std = est.predict(X, return_std=True)
    lo, hi = est.predict_interval(X)
    return {"mean": mean, "std": std, "lower": lo, "upper": hi}


def _labels(y):
    # Two classes in every case but one sample (which must be refused: one class).
    return (np.arange(len(y)) % 2).astype(int)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("method", ["exact", "map", pytest.param("nuts", marks=pytest.mark.slow)])
def test_linear_regression(case, method):
    X, y = CASES[case]
    kw = {"num_warmup": 50, "num_samples": 50, "random_state": 0}
    _fits_or_refuses_clearly(
        lambda: flat_estimator(px.BayesianLinearRegression, method=method, **kw),
        X,
        y,
        _regression_outputs,
    )


def _network_params(n_fast=2):
    fast, slow = FAST_NETWORK[:n_fast], FAST_NETWORK[n_fast:] + SLOW_NETWORK
    return [
        pytest.param(s, id="-".join(map(str, s.values())), marks=marks)
        for group, marks in ((fast, ()), (slow, pytest.mark.slow))
        for s in group
    ]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("settings", _network_params())
def test_network_regressor(case, settings):
    X, y = CASES[case]
    _fits_or_refuses_clearly(
        lambda: flat_estimator(px.BayesianRegressor, **NETWORK, **settings),
        X,
        y,
        _regression_outputs,
    )


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("settings", _network_params(n_fast=1))
def test_network_classifier(case, settings):
    X, y = CASES[case]
    _fits_or_refuses_clearly(
        lambda: flat_estimator(px.BayesianClassifier, **NETWORK, **settings),
        X,
        _labels(y),
        lambda est, X: {"proba": est.predict_proba(X)},
    )


def test_one_sample_classification_is_refused_by_name():
    with pytest.raises(ValueError, match=r"'y' parameter .* at least 2 classes"):
        flat_estimator(px.BayesianClassifier, **NETWORK).fit(_X[:1], [0])
