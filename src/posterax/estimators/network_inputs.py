"""What the network estimators check and record about their inputs and settings before a fit
method runs: the built-in MLP or the user's network, inputs of any shape for the latter, prior
scales, standardisation, and method objects beside the estimator's own per-method parameters."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted, validate_data

from posterax.data.validation import check_batch, check_class_labels, check_features
from posterax.estimators.common import check_predict_input
from posterax.inference import NetworkMethod
from posterax.methods import resolve_method
from posterax.models.mlp import ACTIVATIONS
from posterax.networks.mlp import builtin_mlp


def check_hidden(hidden: Any, where: str) -> tuple[int, ...]:
    ok = isinstance(hidden, tuple | list) and all(
        isinstance(h, numbers.Integral) and not isinstance(h, bool) and h > 0 for h in hidden
    )
    if not ok:
        raise ValueError(
            f"The 'hidden' parameter of {where} must be a tuple of positive ints (units per "
            f"hidden layer). Got {hidden!r}. Pass e.g. hidden=(50,) or hidden=(32, 32); () means "
            "no hidden layer."
        )
    return tuple(int(h) for h in hidden)


def check_activation(activation: Any, method: NetworkMethod, where: str) -> str:
    """``"auto"``: tanh for NUTS (smooth posterior geometry), ReLU for the optimisation methods
    (uncertainty then keeps growing away from the data instead of saturating)."""
    if activation == "auto":
        return "tanh" if method is NetworkMethod.NUTS else "relu"
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"The 'activation' parameter of {where} must be 'auto' or one of "
            f"{', '.join(map(repr, ACTIVATIONS))}. Got {activation!r}."
        )
    return activation


def check_prior_scales(
    prior_scale: Any, n_layers: int, where: str, own_network: bool = False
) -> tuple[float, ...]:
    scales = (prior_scale,) * n_layers if isinstance(prior_scale, numbers.Real) else prior_scale
    if (
        not isinstance(scales, tuple | list)
        or len(scales) != n_layers
        or not all(isinstance(s, numbers.Real) and np.isfinite(s) and s > 0 for s in scales)
    ):
        rule = (
            "one float > 0 (a network of your own gets one prior scale for every weight)"
            if own_network
            else f"a float > 0 or one float > 0 per layer ({n_layers} layers)"
        )
        raise ValueError(
            f"The 'prior_scale' parameter of {where} must be {rule}. Got {prior_scale!r}."
        )
    return tuple(float(s) for s in scales)


def standardiser(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and sds (1 for a constant column), computed on each column divided by its
    largest |value|: values near the float64 maximum do not overflow when squared, and a constant
    column stays exactly constant (its mean would otherwise pick up rounding, and that rounding
    become a 1e-47 "sd" that blows the column up at prediction)."""
    peak = np.max(np.abs(values), axis=0)
    peak = np.where(peak > 0, peak, 1.0)
    unit = values / peak
    mean = unit.mean(axis=0) * peak
    scale = unit.std(axis=0) * peak
    return mean, np.where(scale > 0, scale, 1.0)


def encode_seen_labels(classes: np.ndarray, y: Any, n_samples: int, where: str) -> np.ndarray:
    """Indices into ``classes`` (the classes seen at fit time) of labels ``y``, one per row of X.
    A label never seen in fit has no index: an error naming it, never a wrong class or a NaN."""
    labels = check_class_labels(y, where=where)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or labels.shape[0] != n_samples:
        raise ValueError(
            f"The 'y' parameter of {where} must be 1-D with one label per row of X. Got shape "
            f"{labels.shape} for {n_samples} sample(s). Pass X and y of the same length."
        )
    known = np.isin(labels, classes)
    if not known.all():
        unseen = list(dict.fromkeys(labels[~known].tolist()))
        shown = ", ".join(map(repr, unseen[:5])) + (", ..." if len(unseen) > 5 else "")
        seen = ", ".join(map(repr, classes[:10].tolist())) + (", ..." if len(classes) > 10 else "")
        raise ValueError(
            f"The 'y' parameter of {where} must hold only classes seen at fit time ({seen}). "
            f"Got {int((~known).sum())} label(s) never seen in fit ({shown}), the first at index "
            f"{int(np.argmin(known))}. Drop those rows, or refit with examples of every class."
        )
    return np.searchsorted(classes, labels)


class NetworkInputsMixin:
    """Input and settings checks shared by ``BayesianRegressor`` and ``BayesianClassifier``."""

    def set_params(self, **params: Any) -> Any:
        """As scikit-learn's; nested ``method__*`` parameters need a method object."""
        nested = [k for k in params if k.startswith("method__")]
        method = params.get("method", self.method)
        if nested and isinstance(method, str):
            raise ValueError(
                f"The 'method' parameter of {type(self).__name__} is the string {method!r}: "
                f"nested parameters such as {nested[0]!r} need a method object. Got "
                f"method={method!r}. Pass e.g. method=px.methods.Ensemble(num_members=5), then "
                "set method__num_members."
            )
        return super().set_params(**params)

    def _builtin_network(self, where: str) -> tuple[tuple[int, ...], str] | None:
        """``(hidden, activation)`` of the built-in MLP, or ``None`` for the user's network."""
        network = getattr(self, "network", None)
        if network is None:
            return self._default_hidden, "auto"
        spec = builtin_mlp(network)
        if spec is None:
            return None
        return check_hidden(spec.hidden, where), spec.activation

    def _outputs_meaning(self, likelihood: str) -> str:
        if self._task == "classification":
            return "one logit per class"
        if likelihood == "heteroscedastic":
            return "a mean and a raw noise scale for likelihood='heteroscedastic'"
        return "the mean for likelihood='homoscedastic'"

    def _check_inputs(self, X: Any, where: str) -> np.ndarray:
        """2-D features for the built-in MLP; any shape ``(N, ...)`` for the user's network."""
        if self._builtin_network(where) is not None:
            return check_features(X, where=where)
        return check_batch(X, where=where)

    def _prediction_draws(self) -> Any:
        """Posterior draws used at prediction by VI, MC dropout, SWAG and Laplace: the method's
        ``num_samples``."""
        method = resolve_method(self.method, f"{type(self).__name__}.predict")
        return method.settings().get("num_samples", 1000)

    def _record_inputs(self, X: Any, X_arr: np.ndarray) -> None:
        """``n_features_in_`` (scikit-learn) for tables; ``input_shape_`` for the user's network,
        whose inputs may be images or sequences."""
        if self._builtin_network(self._where) is not None:
            self.input_shape_ = None
            validate_data(self, X, reset=True, skip_check_array=True)
            return
        self.input_shape_ = tuple(X_arr.shape[1:])
        if hasattr(self, "feature_names_in_"):  # from an earlier fit on a table
            del self.feature_names_in_
        if X_arr.ndim == 2:
            self.n_features_in_ = X_arr.shape[1]
        elif hasattr(self, "n_features_in_"):
            del self.n_features_in_

    def _check_predict_input(self, X: Any, where: str) -> np.ndarray:
        if getattr(self, "input_shape_", None) is not None:  # the user's network
            check_is_fitted(self)
            X_arr = check_batch(X, where=where)
            if X_arr.shape[1:] != self.input_shape_:
                raise ValueError(
                    f"The 'X' parameter of {where} must have the input shape seen at fit time: "
                    f"(n, {', '.join(map(str, self.input_shape_))}). Got shape {X_arr.shape}. "
                    "Pass inputs shaped like the training data."
                )
            return X_arr
        return (check_predict_input(self, X, where) - self.x_mean_) / self.x_scale_


__all__ = [
    "NetworkInputsMixin",
    "check_activation",
    "check_hidden",
    "check_prior_scales",
    "encode_seen_labels",
    "standardiser",
]
