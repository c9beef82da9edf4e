"""Bayesian neural networks: ``BayesianRegressor`` and ``BayesianClassifier``.

One estimator API over every network method (NUTS, MAP, VI, low-rank VI, MC dropout, deep
ensembles); the fit functions live in :mod:`posterax.estimators.network_fitters`.

Inputs are standardised internally (and regression targets too); the posterior lives in those
units and every prediction is returned in the original units.
"""

from __future__ import annotations

import copy
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted

from posterax.base import PredictiveSamples
from posterax.data.validation import (
    check_choice,
    check_classification_target,
    check_positive_int,
    check_regression_target,
    rng_key_from,
)
from posterax.diagnostics import (
    convergence_problems,
    count_divergences,
    function_space_diagnostics,
    parameter_diagnostics,
    to_inference_data,
    warn_if_not_converged,
)
from posterax.estimators.common import (
    INFERENCE_DATA_STREAM,
    PREDICT_STREAM,
    stream_key,
)
from posterax.estimators.fit_settings import fit_settings
from posterax.estimators.network_fitters import (
    FOLD_METHODS,
    LIKELIHOODS,
    fit_network_folds,
    fit_network_posterior,
    is_sampled,
    n_outputs,
)
from posterax.estimators.network_inputs import (
    NetworkInputsMixin,
    check_activation,
    check_prior_scales,
    encode_seen_labels,
    standardiser,
)
from posterax.estimators.network_params_doc import SHARED_PARAMS_DOC
from posterax.estimators.persistence import persistable, save_estimator
from posterax.estimators.regression_api import PredictiveRegressorMixin
from posterax.inference import NetworkMethod
from posterax.methods import in_method_terms, method_key, resolve_method
from posterax.models import MLP
from posterax.networks import as_network
from posterax.networks.adapter import NetworkAdapter, check_outputs, widest_activation
from posterax.predictive import (
    predictive_samples,
)
from posterax.predictive.chunking import (
    PROBS,
    Summary,
    draws_at_once,
    summarise_posterior,
    summary_bytes_per_row,
)
from posterax.predictive.memory import resolve_budget

_N_FUNCTION_POINTS = 50  # inputs at which function-space R-hat/ESS are computed
_MAX_STACKED_ENTRIES = 2**27  # training sets x rows x features trained together (~0.5 GB)


class _FitPlan(NamedTuple):
    """What one fit trains: decided by :meth:`_BayesianNetwork._plan_fit`."""

    method_object: Any
    method: NetworkMethod
    settings: Any
    network: Any
    scales: tuple[float, ...]
    likelihood: str
    Xs: np.ndarray
    target: np.ndarray
    key: Any


class _BayesianNetwork(NetworkInputsMixin, BaseEstimator):
    """Shared fit/diagnostics machinery; subclasses set the task and the target handling."""

    _task: str
    likelihood = "auto"  # classifiers have no choice (a softmax); BayesianRegressor overrides
    # Memory for one chunk of sample-based predictions in bytes (see posterax.predictive.chunking);
    # None: from max_memory (posterax.predictive.memory). Tests set it to force small chunks.
    _prediction_budget_bytes = None

    @property
    def _where(self) -> str:
        return f"{type(self).__name__}.fit"

    def _store(self, params: dict[str, Any]) -> None:
        for name, value in params.items():
            if name not in ("self", "__class__"):
                setattr(self, name, value)

    def resolved_likelihood(self, method: Any = None) -> str:
        """The likelihood a fit uses (``"homoscedastic"`` or ``"heteroscedastic"``; a
        classifier's is its softmax, reported as ``"homoscedastic"``): ``likelihood`` with
        ``"auto"`` resolved. That is the method's own (``method``, default this estimator's)
        with the built-in MLP; a network of your own keeps the outputs it has (one mean).

        Examples
        --------
        >>> import posterax as px
        >>> px.BayesianRegressor("ensemble").resolved_likelihood()
        'heteroscedastic'
        >>> px.BayesianRegressor("ensemble").resolved_likelihood(px.methods.MAP())
        'homoscedastic'
        """
        where = self._where
        method_object = resolve_method(
            self.method if method is None else method, where, type(self).__name__
        )
        likelihood = check_choice(
            self.likelihood, name="likelihood", where=where, allowed=("auto", *LIKELIHOODS)
        )
        if likelihood != "auto":
            return likelihood
        own = self._task == "regression" and self._builtin_network(where) is not None
        return type(method_object).regression_likelihood if own else LIKELIHOODS[0]

    def _plan_fit(self, X_arr: np.ndarray, target: np.ndarray, n_classes: int = 0) -> _FitPlan:
        """Everything a fit decides before training: the method, its settings, the network
        and the (standardised) inputs. Sets the input standardisation."""
        where = self._where
        method_object = resolve_method(self.method, where, type(self).__name__)
        likelihood = self.resolved_likelihood(method_object)
        builtin = self._builtin_network(where)
        outputs = n_outputs(self._task, likelihood, n_classes)
        key = rng_key_from(self.random_state, where=where)
        method = NetworkMethod(method_key(method_object))
        if builtin is None:  # the user's network: inputs pass through untouched
            network = as_network(self.network, X_arr[:2], jax.random.fold_in(key, 1), where=where)
            check_outputs(
                network, X_arr[:2], outputs, self._outputs_meaning(likelihood), where=where
            )
            scales = check_prior_scales(self.prior_scale, 1, where, own_network=True)
            self.activation_ = None
            self.x_mean_, self.x_scale_ = 0.0, 1.0
            Xs = X_arr
        else:
            hidden, activation = builtin
            self.activation_ = check_activation(activation, method, where)
            network = MLP(hidden, self.activation_, outputs)
            scales = check_prior_scales(self.prior_scale, len(hidden) + 1, where)
            self.x_mean_, self.x_scale_ = standardiser(X_arr)
            Xs = (X_arr - self.x_mean_) / self.x_scale_
        settings = fit_settings(self, method_object)
        return _FitPlan(
            method_object, method, settings, network, scales, likelihood, Xs, target, key
        )

    def _fit_network(self, X_arr: np.ndarray, target: np.ndarray, n_classes: int = 0) -> None:
        plan = self._plan_fit(X_arr, target, n_classes)
        start = time.perf_counter()
        posterior = self._fit_with(fit_network_posterior, plan, plan.Xs, plan.target)
        self._finish_fit(plan, posterior, time.perf_counter() - start)

    def _fit_with(self, fitter: Any, plan: _FitPlan, Xs: np.ndarray, target: np.ndarray) -> Any:
        """``fitter`` (one training set, or several stacked) on the plan's model and settings,
        its errors named as the method object names its settings."""
        try:
            return fitter(
                plan.settings,
                plan.method,
                plan.network,
                plan.scales,
                self._task,
                plan.likelihood,
                Xs,
                target,
                plan.key,
                self._where,
            )
        except ValueError as error:
            message = in_method_terms(str(error), plan.method_object, self._where)
            if message == str(error):
                raise
            raise ValueError(message) from None

    def _finish_fit(self, plan: _FitPlan, posterior: Any, seconds: float) -> None:
        self.posterior_ = posterior
        self.fit_seconds_ = seconds
        # Function-space diagnostics at up to 50 training inputs.
        n = plan.Xs.shape[0]
        idx = np.linspace(0, n - 1, min(_N_FUNCTION_POINTS, n))
        self._diagnostic_inputs = jnp.asarray(plan.Xs[idx.astype(int)])
        self._diagnostics = None
        if not is_sampled(plan.method):
            return
        diag = self.diagnostics()
        fs = diag["function_space"]
        problems = convergence_problems(
            fs["max_r_hat"], fs["min_ess_bulk"], diag["divergences"], where="function space"
        )
        sampler = "NUTS" if plan.method is NetworkMethod.NUTS_LAST_LAYER else plan.method.value
        warn_if_not_converged(problems, stacklevel=5, sampler=sampler.upper())

    def _function_values(self) -> np.ndarray:
        post = self.posterior_
        outputs = jax.vmap(lambda p: post.apply_fn(p, self._diagnostic_inputs))(post.draws)
        if self._task == "classification":
            outputs = jax.nn.softmax(outputs, axis=-1)
        chains, draws = post.chain_shape
        return np.asarray(outputs).reshape(chains, draws, -1)

    def diagnostics(self) -> dict[str, Any]:
        """R-hat and bulk/tail ESS (ArviZ) in weight space and in function space, and the
        number of divergences. Convergence warnings are based on function space: hidden units
        can swap places, so weights can mix poorly while predictions mix well."""
        check_is_fitted(self)
        if getattr(self, "_diagnostics", None) is not None:
            return copy.deepcopy(self._diagnostics)
        if self.posterior_.chain_shape is None:
            info = self.posterior_.info
            self._diagnostics = {
                "training": {
                    key: info.get(key)
                    for key in ("epochs_run", "stopped_early", "diverged_at_epoch", "train_seconds")
                },
                "final_loss": float(np.mean(info["loss_history"][-1]))
                if len(info.get("loss_history", ()))
                else float("nan"),
            }
            if "log_marginal_likelihood" in info:  # method="laplace": the tuned evidence
                self._diagnostics["laplace"] = {
                    key: info.get(key)
                    for key in (
                        "hessian_structure",
                        "subset_of_weights",
                        "pred_type",
                        "prior_precision",
                        "sigma",
                        "log_marginal_likelihood",
                        "n_laplace_params",
                    )
                }
            return copy.deepcopy(self._diagnostics)
        weights = parameter_diagnostics(self.to_inference_data())
        finite = [d for d in weights.values() if np.isfinite(d["r_hat"])]
        self._diagnostics = {
            "function_space": function_space_diagnostics(self._function_values()),
            "weight_space": {
                "max_r_hat": max((d["r_hat"] for d in finite), default=float("nan")),
                "min_ess_bulk": min(d["ess_bulk"] for d in weights.values()),
                "min_ess_tail": min(d["ess_tail"] for d in weights.values()),
            },
            "parameters": weights,
            "divergences": count_divergences(self.posterior_),
        }
        return copy.deepcopy(self._diagnostics)

    def save(self, path: Any, overwrite: bool = False) -> None:
        """Save to a directory of JSON metadata + ``.npz`` arrays (no pickle); ``px.load(path)``
        gives back an estimator that predicts identically.

        A custom ``optimizer`` in the method's ``px.methods.Training`` (an optax object) cannot
        be stored without pickle: it is saved as ``optimizer=None`` (with a warning), which
        changes nothing at prediction but means a refit of the loaded estimator uses
        ``Adam(learning_rate)``.
        """
        check_is_fitted(self)
        save_estimator(self, path, overwrite=overwrite)

    def _prediction_bytes_per_row(
        self,
        summary: Summary | None = None,
        n_draws: int | None = None,
        all_draws: bool | None = None,
    ) -> int:
        """float32 bytes one input row costs the chunk program of ``summary`` (default: mixture
        quantiles, the most): every draw's outputs and the activations of the draws in flight."""
        network = getattr(self.posterior_.apply_fn, "network", None)
        network = getattr(network, "network", network)  # through MC dropout's DropoutOn
        if isinstance(network, NetworkAdapter):  # the user's network: its widest array
            hidden: tuple[int, ...] = (widest_activation(network, tuple(self.input_shape_)),)
        else:
            hidden = tuple(getattr(network, "hidden", ())) or (64,)  # a custom apply_fn: a guess
        entries = 2 if self._task == "regression" else max(2, len(getattr(self, "classes_", ())))
        return summary_bytes_per_row(
            summary or Summary("quantiles", (0.025, 0.975)),
            n_draws or self.posterior_.num_draws or self._prediction_draws(),
            entries,
            hidden,
            all_draws=draws_at_once() if all_draws is None else all_draws,
        )

    def _raw_samples(
        self,
        Xs: np.ndarray,
        n_samples: int | None,
        rng_key: Any,
        summary: Summary | None = None,
        where: str | None = None,
    ) -> Any:
        """Per-draw predictive entries (standardised units) at ``Xs``; with ``summary``, that
        summary of them instead (a tuple of NumPy arrays), computed in row chunks that fit the
        memory budget (``max_memory``) by one compiled program per chunk."""
        if rng_key is None:
            rng_key = stream_key(self, PREDICT_STREAM, "predict")
        if n_samples is None and self.posterior_.distribution is not None:
            n_samples = check_positive_int(
                self._prediction_draws(),
                name="num_samples",
                where=f"{type(self).__name__}.predict",
            )
        if summary is None:
            return predictive_samples(self.posterior_, jnp.asarray(Xs), rng_key, n_samples)
        max_memory = getattr(self, "max_memory", None)
        budget = self._prediction_budget_bytes
        if budget is None:
            budget = resolve_budget(max_memory, where=type(self).__name__)
        return summarise_posterior(
            self.posterior_,
            Xs,
            summary,
            rng_key=rng_key,
            n_samples=n_samples,
            budget_bytes=budget,
            bytes_per_row=lambda draws, at_once: self._prediction_bytes_per_row(
                summary, draws, at_once
            ),
            where=where or f"{type(self).__name__}.predict",
            budget_source=f" (max_memory={max_memory!r})",
        )


@persistable
class BayesianRegressor(PredictiveRegressorMixin, RegressorMixin, _BayesianNetwork):
    """Bayesian neural network regression, ``y ~ Normal(f(x; W), sigma)``.

    Weights and biases ~ ``prior``(0, ``prior_scale``) (one float, or one per layer). With
    ``likelihood="homoscedastic"`` one noise sd ``sigma`` is learned (NUTS: ``sigma ~
    HalfCauchy(noise_prior_scale)``; optimisation methods: a point estimate); with
    ``"heteroscedastic"`` the network predicts a mean and a noise sd per input (Lakshminarayanan
    et al.; not for NUTS). ``"auto"`` (the default) is each method's own: heteroscedastic for
    deep ensembles, MC dropout and VI on the built-in MLP (their better predictive on 6 or 7 of
    the 7 UCI sets of the README's protocol), homoscedastic for the other methods (a single
    heteroscedastic network can be badly over-confident on a few test points) and for a
    network of your own (it keeps the one output it has). X and y are standardised internally,
    so the priors act on the standardised scale, and every prediction is in the units of y.
    ``method="nuts"`` samples with the compile-once NUTS driver (BlackJAX kernel and Stan-style
    window adaptation).

    Examples
    --------
    >>> import numpy as np, posterax as px
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-3, 3, (60, 1)); y = np.sin(X[:, 0]) * X[:, 0] + 0.3 * rng.normal(size=60)
    >>> nuts = px.methods.NUTS(num_warmup=300, num_samples=300)
    >>> reg = px.BayesianRegressor(nuts, network=(5,), progress_bar=False,
    ...                            random_state=0).fit(X, y)
    >>> lo, hi = reg.predict_interval(X, level=0.95)
    >>> bool(np.mean((lo <= y) & (y <= hi)) > 0.85)
    True
    """

    _task = "regression"
    _default_hidden = (5,)

    def __init__(
        self,
        method: Any = "nuts",
        network: Any = None,
        prior: str = "normal",
        prior_scale: float | tuple[float, ...] = 1.0,
        likelihood: str = "auto",
        noise_prior_scale: float = 1.0,
        progress_bar: bool | None = None,
        devices: Any = None,
        max_memory: Any = None,
        checkpoint_dir: Any = None,
        checkpoint_every: int = 500,
        random_state: int | None = None,
    ):
        self._store(locals())

    def fit(self, X: Any, y: Any, resume: bool = False) -> BayesianRegressor:
        """Sample the posterior from ``X`` (n_samples, n_features) and ``y`` (n_samples,);
        ``resume=True`` continues a killed run from its checkpoint in ``checkpoint_dir``."""
        self._resume = resume
        X_arr = self._check_inputs(X, self._where)
        y_arr = check_regression_target(y, n_samples=X_arr.shape[0], where=self._where)
        self._record_inputs(X, X_arr)
        y_mean, y_scale = standardiser(y_arr[:, None])  # overflow-free, exact when constant
        self.y_mean_, self.y_scale_ = float(y_mean[0]), float(y_scale[0])
        self._fit_network(X_arr, (y_arr - self.y_mean_) / self.y_scale_)
        self._set_sigma()
        return self

    def _set_sigma(self) -> None:
        mean = self.posterior_.mean()
        # Homoscedastic noise sd in the units of y (None when the network predicts it).
        self.sigma_ = float(np.mean(mean["sigma"])) * self.y_scale_ if "sigma" in mean else None

    def _fit_folds(
        self, X: Any, y: Any, train_sets: list[np.ndarray]
    ) -> list[BayesianRegressor] | None:
        """Clones fitted on ``X[rows], y[rows]`` for each ``rows`` in ``train_sets``, trained
        together in one compiled program (MAP and ensembles; cross-conformal folds and
        bootstrap samples call this). ``None`` for methods that train no network this way:
        the caller then fits the clones one by one.

        Sets of unequal sizes (K folds of ``n`` points, ``n % K != 0``) are topped up to the
        largest with their own first rows, as a minibatch epoch tops up its last batch.
        """
        where = self._where
        method_object = resolve_method(self.method, where, type(self).__name__)
        if NetworkMethod(method_key(method_object)) not in FOLD_METHODS:
            return None
        X_arr = self._check_inputs(X, where)
        y_arr = check_regression_target(y, n_samples=X_arr.shape[0], where=where)
        size = max(len(rows) for rows in train_sets)
        if len(train_sets) * size * max(1, X_arr[0].size) > _MAX_STACKED_ENTRIES:
            return None  # e.g. the jackknife+ on many points: one set after another
        fits, plans = [], []
        for rows in train_sets:
            rows = np.concatenate([rows, rows[: size - len(rows)]])
            fit = clone(self)
            fit._resume = False
            fit._record_inputs(X, X_arr)
            y_mean, y_scale = standardiser(y_arr[rows, None])
            fit.y_mean_, fit.y_scale_ = float(y_mean[0]), float(y_scale[0])
            plans.append(fit._plan_fit(X_arr[rows], (y_arr[rows] - fit.y_mean_) / fit.y_scale_))
            fits.append(fit)
        plan = plans[0]
        start = time.perf_counter()
        Xs, targets = np.stack([p.Xs for p in plans]), np.stack([p.target for p in plans])
        posteriors = self._fit_with(fit_network_folds, plan, Xs, targets)
        if posteriors is None:
            return None
        seconds = (time.perf_counter() - start) / len(fits)
        for fit, fit_plan, posterior in zip(fits, plans, posteriors, strict=True):
            fit._finish_fit(fit_plan, posterior, seconds)
            fit._set_sigma()
        return fits

    def _samples(self, Xs, n_samples=None, rng_key=None) -> PredictiveSamples:
        pred = self._raw_samples(Xs, n_samples, rng_key)
        return PredictiveSamples.regression(
            pred.mean * self.y_scale_ + self.y_mean_, pred.scale * self.y_scale_
        )

    def to_inference_data(self, X: Any = None, y: Any = None):
        """ArviZ InferenceData; with ``X`` and ``y`` also log_likelihood, posterior_predictive
        and observed_data, in the original units of ``y``."""
        check_is_fitted(self)
        key = stream_key(self, INFERENCE_DATA_STREAM, "to_inference_data")
        if X is None or y is None:
            return to_inference_data(self.posterior_, rng_key=key)
        Xs = self._check_predict_input(X, "BayesianRegressor.to_inference_data")
        y_arr = check_regression_target(y, n_samples=Xs.shape[0], where="to_inference_data")
        return to_inference_data(
            self.posterior_,
            Xs,
            (y_arr - self.y_mean_) / self.y_scale_,
            rng_key=key,
            target_scale=(self.y_mean_, self.y_scale_),
        )


@persistable
class BayesianClassifier(ClassifierMixin, _BayesianNetwork):
    """Bayesian neural network classification with a softmax likelihood.

    Any number of classes and any labels (ints, strings). ``predict_proba`` averages the class
    probabilities over posterior draws; ``predict_samples`` returns per-draw logits.
    Defaults: the built-in MLP with 16 hidden units (``network=(16,)``), weights and biases ~
    Normal(0, 1) on standardised inputs.
    """

    _task = "classification"
    _default_hidden = (16,)

    def __init__(
        self,
        method: Any = "nuts",
        network: Any = None,
        prior: str = "normal",
        prior_scale: float | tuple[float, ...] = 1.0,
        progress_bar: bool | None = None,
        devices: Any = None,
        max_memory: Any = None,
        checkpoint_dir: Any = None,
        checkpoint_every: int = 500,
        random_state: int | None = None,
    ):
        self._store(locals())

    def fit(self, X: Any, y: Any, resume: bool = False) -> BayesianClassifier:
        """Sample the posterior from ``X`` (n_samples, n_features) and labels ``y``;
        ``resume=True`` continues a killed run from its checkpoint in ``checkpoint_dir``."""
        self._resume = resume
        where = self._where
        X_arr = self._check_inputs(X, where)
        labels = check_classification_target(y, n_samples=X_arr.shape[0], where=where)
        self._record_inputs(X, X_arr)
        self.classes_, encoded = np.unique(labels, return_inverse=True)
        self._fit_network(X_arr, encoded.astype(np.int32), n_classes=len(self.classes_))
        return self

    def predict_samples(
        self, X: Any, n_samples: int | None = None, rng_key: Any = None
    ) -> PredictiveSamples:
        """Per-draw logits, shape ``(S, n, n_classes)``."""
        where = "BayesianClassifier.predict_samples"
        Xs = self._check_predict_input(X, where)
        if n_samples is not None:
            n_samples = check_positive_int(n_samples, name="n_samples", where=where)
        return self._raw_samples(Xs, n_samples, rng_key)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Posterior-averaged class probabilities, shape ``(n, n_classes)``."""
        where = "BayesianClassifier.predict_proba"
        Xs = self._check_predict_input(X, where)
        (probs,) = self._raw_samples(Xs, None, None, summary=PROBS, where=where)
        return np.asarray(probs, dtype=np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class label under the posterior predictive."""
        probs = self.predict_proba(X)  # checks that the estimator is fitted first
        return self.classes_[np.argmax(probs, axis=1)]

    def to_inference_data(self, X: Any = None, y: Any = None):
        """ArviZ InferenceData; with ``X`` and ``y`` also log_likelihood, posterior_predictive
        (class indices into ``classes_``) and observed_data."""
        check_is_fitted(self)
        key = stream_key(self, INFERENCE_DATA_STREAM, "to_inference_data")
        if X is None or y is None:
            return to_inference_data(self.posterior_, rng_key=key)
        where = "BayesianClassifier.to_inference_data"
        Xs = self._check_predict_input(X, where)
        encoded = encode_seen_labels(self.classes_, y, Xs.shape[0], where)
        return to_inference_data(self.posterior_, Xs, encoded, rng_key=key)


for _cls in (BayesianRegressor, BayesianClassifier):
    _doc = _cls.__doc__ or ""
    _cls.__doc__ = (
        _doc.replace("    Examples\n", SHARED_PARAMS_DOC.lstrip("\n") + "\n    Examples\n", 1)
        if "    Examples\n" in _doc
        else _doc + SHARED_PARAMS_DOC
    )

__all__ = ["BayesianClassifier", "BayesianRegressor"]
