"""Search spaces: which settings of an estimator a search samples, and from what.

A space is either a dict ``{parameter: distribution}`` whose keys are the estimator's
``set_params`` names (``"prior_scale"``, ``"method__training__learning_rate"``,
``"method__dropout_rate"``...) and whose values are optuna distributions (or a list of values:
one of them), or a callable ``space(trial) -> {parameter: value}`` that asks an
``optuna.Trial`` for values and returns ``set_params`` arguments (what a dict cannot say, e.g.
a network built from a sampled width and depth). :func:`default_space` is the one the
estimator's method calls for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from sklearn.base import BaseEstimator

from posterax.methods import MCDropout, Method, Training, method_from_settings, method_names
from posterax.networks import MLP
from posterax.networks.mlp import builtin_mlp

Space = Mapping[str, Any] | Callable[[optuna.Trial], dict[str, Any]]

# The ranges of the default space (standardised inputs and targets, as the estimators train).
LEARNING_RATE = (1e-4, 3e-2)  # Adam, log-uniform
NUM_EPOCHS = (20, 1000)  # log-uniform integer (an upper bound when early stopping is on)
PRIOR_SCALE = (1e-2, 10.0)  # sd of the Normal prior on every weight (weight decay), log-uniform
WIDTH = (16, 256)  # hidden units per layer of the built-in MLP, log-uniform integer
DEPTH = (1, 3)  # hidden layers of the built-in MLP
DROPOUT_RATE = (0.01, 0.5)  # MC dropout, uniform
LIKELIHOODS = ("homoscedastic", "heteroscedastic")


def method_object(estimator: BaseEstimator) -> Method | None:
    """The method object of a network estimator (a string ``method=`` means its class with its
    defaults); ``None`` when the estimator has no network method (e.g. ``"exact"``)."""
    method = estimator.get_params(deep=False).get("method")
    if isinstance(method, Method):
        return method
    if isinstance(method, str) and method in method_names():
        return method_from_settings(method, {})
    return None


def default_space(estimator: BaseEstimator) -> Callable[[optuna.Trial], dict[str, Any]]:
    """The search space a posterax network estimator's method calls for.

    - Trained methods (MAP, ensembles, VI, MC dropout, SWAG, Laplace's MAP, last-layer NUTS's
      MAP): ``method__training__learning_rate`` log-uniform in [1e-4, 3e-2] and
      ``method__training__num_epochs`` log-uniform in [20, 1000].
    - ``prior_scale`` (weight decay) log-uniform in [0.01, 10].
    - The built-in MLP (``network=None``, hidden sizes or ``px.networks.MLP``): ``width`` in
      [16, 256] (log-uniform) units in each of ``depth`` in {1, 2, 3} layers, its activation
      kept. A network of your own is left as it is.
    - MC dropout: ``method__dropout_rate`` uniform in [0.01, 0.5].
    - Regression with a method whose own likelihood is heteroscedastic (ensembles, MC dropout,
      VI: ``Method.regression_likelihood``): ``likelihood`` in {"homoscedastic",
      "heteroscedastic"}. Not for the single-network methods: a heteroscedastic MAP wins on
      the validation rows and loses on new ones, where its predicted sd collapses (UCI Boston,
      MAP tuned with it in the space: see the README).
    - Fixed: ensemble members, posterior draws, sampler settings, everything else.

    Returns
    -------
    callable
        ``space(trial) -> {set_params name: value}``; call it inside your own space to extend
        it.

    Examples
    --------
    >>> import optuna, posterax as px
    >>> reg = px.BayesianRegressor(px.methods.Ensemble(num_members=3), network=(50,))
    >>> params = px.tuning.default_space(reg)(optuna.trial.FixedTrial(
    ...     {"learning_rate": 1e-3, "num_epochs": 100, "prior_scale": 1.0, "width": 32,
    ...      "depth": 2, "likelihood": "heteroscedastic"}))
    >>> params["network"], params["method__training__learning_rate"]
    (MLP(hidden=(32, 32), activation='auto'), 0.001)
    """
    params = estimator.get_params(deep=False)
    method = method_object(estimator)
    if method is None or "network" not in params:
        raise ValueError(
            f"The 'space' parameter of px.tuning.Tuned has no default for "
            f"{type(estimator).__name__}(method={params.get('method')!r}): the default space "
            "is for the network estimators (px.BayesianRegressor, px.BayesianClassifier). "
            "Pass space={'parameter': optuna distribution} or space=callable(trial) -> params."
        )
    trains = type(method).trains(method.get_params(deep=False))
    builtin = builtin_mlp(params["network"]) if params["network"] is not None else MLP((), "auto")
    activation = builtin.activation if builtin is not None else None
    heteroscedastic = (
        "likelihood" in params
        and not type(method).sampled
        and type(method).regression_likelihood == LIKELIHOODS[1]
    )
    dropout = isinstance(method, MCDropout)

    def space(trial: optuna.Trial) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if trains:
            out["method__training__learning_rate"] = trial.suggest_float(
                "learning_rate", *LEARNING_RATE, log=True
            )
            out["method__training__num_epochs"] = trial.suggest_int(
                "num_epochs", *NUM_EPOCHS, log=True
            )
        if dropout:
            out["method__dropout_rate"] = trial.suggest_float("dropout_rate", *DROPOUT_RATE)
        out["prior_scale"] = trial.suggest_float("prior_scale", *PRIOR_SCALE, log=True)
        if activation is not None:
            width = trial.suggest_int("width", *WIDTH, log=True)
            depth = trial.suggest_int("depth", *DEPTH)
            out["network"] = MLP((width,) * depth, activation)
        if heteroscedastic:
            out["likelihood"] = trial.suggest_categorical("likelihood", LIKELIHOODS)
        return out

    return space


def as_distribution(name: str, value: Any) -> BaseDistribution:
    """An optuna distribution for one entry of a dict space (a list means one of its values)."""
    if isinstance(value, BaseDistribution):
        return value
    if isinstance(value, list | tuple) and len(value) > 0:
        return CategoricalDistribution(list(value))
    raise ValueError(
        f"The 'space' parameter of px.tuning.Tuned must map each parameter to an optuna "
        f"distribution (optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True), "
        f"IntDistribution, CategoricalDistribution) or a non-empty list of values. Got "
        f"{name!r}: {value!r}."
    )


def suggest(trial: optuna.Trial, name: str, distribution: BaseDistribution) -> Any:
    """Ask ``trial`` for ``name`` from ``distribution`` through optuna's public ``suggest_*``."""
    if isinstance(distribution, FloatDistribution):
        return trial.suggest_float(
            name, distribution.low, distribution.high, log=distribution.log, step=distribution.step
        )
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(
            name, distribution.low, distribution.high, log=distribution.log, step=distribution.step
        )
    if isinstance(distribution, CategoricalDistribution):
        return trial.suggest_categorical(name, distribution.choices)
    raise ValueError(
        f"The 'space' parameter of px.tuning.Tuned: {name!r} has a {type(distribution).__name__}"
        ", which px.tuning.Tuned cannot sample. Use FloatDistribution, IntDistribution or "
        "CategoricalDistribution."
    )


def resolve_space(space: Any, estimator: BaseEstimator) -> Callable[[optuna.Trial], dict]:
    """``space(trial) -> params`` for ``space=`` (``None``: :func:`default_space`); the names of a
    dict space are checked against the estimator now."""
    if space is None:
        return default_space(estimator)
    if callable(space):
        return space
    if not isinstance(space, Mapping) or not space:
        raise ValueError(
            "The 'space' parameter of px.tuning.Tuned must be None (the method's default), a "
            "non-empty dict {parameter: optuna distribution or list of values}, or a callable "
            f"space(trial) -> params. Got {space!r}."
        )
    distributions = {name: as_distribution(name, value) for name, value in space.items()}
    for name in distributions:
        check_parameter(estimator, name)

    def from_dict(trial: optuna.Trial) -> dict[str, Any]:
        return {name: suggest(trial, name, dist) for name, dist in distributions.items()}

    return from_dict


def check_parameter(estimator: BaseEstimator, name: str, role: str = "space") -> None:
    """Refuse a ``set_params`` name the estimator does not have, naming the part that is
    wrong and the names it does have there. ``role``: the parameter of ``px.tuning.Tuned``
    the estimator comes from (``"space"``, or ``"search_method"`` for the trials' stand-in)."""
    owner: Any = estimator
    path = []
    for part in name.split("__"):
        valid = owner.get_params(deep=False) if hasattr(owner, "get_params") else {}
        if part not in valid:
            where = "__".join(path) or type(estimator).__name__
            if role == "search_method":
                raise ValueError(
                    f"The 'search_method' parameter of px.tuning.Tuned: its trials set "
                    f"{name!r}, which the stand-in {type(owner).__name__} does not have "
                    f"({part!r} is not among its parameters: "
                    f"{', '.join(sorted(valid)) or '(none)'}). Use a search_method that takes "
                    "every searched setting (the method itself: search_method=None), or a "
                    "space without it."
                )
            raise ValueError(
                f"The 'space' parameter of px.tuning.Tuned names {name!r}, which "
                f"{type(estimator).__name__} does not have: {part!r} is not a parameter of "
                f"{where} ({type(owner).__name__}). Its parameters: "
                f"{', '.join(sorted(valid)) or '(none)'}. Use a name from "
                "estimator.get_params(), e.g. 'method__training__learning_rate'."
            )
        path.append(part)
        owner = valid[part]
        if owner is None and part == "training":
            owner = Training()  # set_params(method__training__x=...) starts from Training()
        elif isinstance(owner, str) and part == "method" and owner in method_names():
            owner = method_from_settings(owner, {})


__all__ = ["Space", "check_parameter", "default_space", "resolve_space"]
