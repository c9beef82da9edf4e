"""Post-hoc recalibration of classifier logits: temperature scaling and vector scaling.

Both are fitted by minimising the negative log-likelihood of held-out labels (Guo et al., 2017) with
optax's L-BFGS inside one compiled ``lax.while_loop``. Inputs are logits ``(N, K)`` or a
classification :class:`~posterax.base.PredictiveSamples` with per-draw logits ``(S, N, K)``; for the
latter every draw is rescaled and the likelihood is that of the mean of the per-draw softmaxes, so
an ensemble or a posterior sample is recalibrated as a whole.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.tree_utils as otu
from jax.scipy.special import logsumexp
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from posterax.base import PredictiveSamples
from posterax.predictive.inputs import (
    as_labels,
    check_positive_int,
    check_same_length,
    is_predictive,
    logits_draws,
)


def _mixture_nll(logits: jax.Array, y: jax.Array, weight: jax.Array) -> jax.Array:
    """Weighted mean NLL of the mean-of-softmaxes predictive.

    Logits ``(S, N, K)``, labels ``(N,)``, weights ``(N,)`` (0 for padding rows).
    """
    logp = jax.nn.log_softmax(logits, axis=-1)
    logp_y = jnp.take_along_axis(logp, y[None, :, None], axis=-1)[..., 0]  # (S, N)
    nll = jnp.log(logits.shape[0]) - logsumexp(logp_y, axis=0)
    return jnp.sum(weight * nll) / jnp.sum(weight)


def _minimise(
    loss: Callable[[Any], jax.Array], init: Any, max_iter: int, tol: float
) -> tuple[Any, int]:
    """Minimise ``loss`` with optax L-BFGS (zoom line search) in a compiled while loop."""
    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(loss)

    def step(carry):
        params, state = carry
        value, grad = value_and_grad(params, state=state)
        updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=loss)
        return optax.apply_updates(params, updates), state

    def keep_going(carry):
        _, state = carry
        count = otu.tree_get(state, "count")
        grad_norm = otu.tree_norm(otu.tree_get(state, "grad"))
        return (count == 0) | ((count < max_iter) & (grad_norm >= tol))

    params, state = jax.lax.while_loop(keep_going, step, (init, opt.init(init)))
    return params, otu.tree_get(state, "count")


def _separable(draws: jax.Array, labels: jax.Array, weight: jax.Array) -> bool:
    """Whether every draw puts every (unpadded) example's label strictly first."""
    true = jnp.take_along_axis(draws, labels[None, :, None], axis=-1)[..., 0]
    others = jnp.where(jax.nn.one_hot(labels, draws.shape[-1], dtype=bool), -jnp.inf, draws)
    margin = true - jnp.max(others, axis=-1)
    return bool(jnp.all((margin > 0) | (weight[None] == 0)))


@partial(jax.jit, static_argnames=("max_iter", "tol"))
def _fit_temperature(
    draws: jax.Array, labels: jax.Array, weight: jax.Array, max_iter: int, tol: float
):
    def loss(log_t: jax.Array) -> jax.Array:
        return _mixture_nll(draws * jnp.exp(-log_t), labels, weight)

    return _minimise(loss, jnp.zeros((), draws.dtype), max_iter, tol)


@partial(jax.jit, static_argnames=("max_iter", "tol"))
def _fit_vector(
    draws: jax.Array,
    labels: jax.Array,
    weight: jax.Array,
    l2: jax.Array,
    max_iter: int,
    tol: float,
):
    def loss(params: tuple[jax.Array, jax.Array]) -> jax.Array:
        w, b = params
        penalty = l2 * (jnp.sum(jnp.square(w - 1.0)) + jnp.sum(jnp.square(b)))
        return _mixture_nll(draws * w + b, labels, weight) + penalty

    k = draws.shape[-1]
    return _minimise(loss, (jnp.ones(k, draws.dtype), jnp.zeros(k, draws.dtype)), max_iter, tol)


def _fit_inputs(logits: Any, y: Any, where: str) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Draws, labels and weights, padded to a power-of-two N (at least 128).

    The fit is one compiled L-BFGS loop; padding (with weight 0) lets calibration sets of
    similar size share one compilation instead of compiling for every N.
    """
    draws = logits_draws(logits, "logits", where)
    labels = as_labels(y, "y", where, draws.shape[-1])
    n = check_same_length(where, logits=draws[0], y=labels)
    padded = max(128, 1 << (n - 1).bit_length())
    weight = jnp.zeros(padded, draws.dtype).at[:n].set(1.0)
    draws = jnp.pad(draws, ((0, 0), (0, padded - n), (0, 0)))
    labels = jnp.pad(labels, (0, padded - n))
    return draws, labels, weight


def _rewrap(logits: Any, scaled: jax.Array) -> Any:
    return PredictiveSamples.classification(scaled) if is_predictive(logits) else scaled[0]


class TemperatureScaling(BaseEstimator):
    """Divide logits by one temperature ``T > 0`` fitted by NLL on held-out data.

    Scaling all logits of a point by the same positive factor keeps their order, so the predicted
    class (and accuracy) never changes; only the confidence does. ``T > 1`` softens an
    over-confident model.

    Parameters
    ----------
    max_iter : int, default 100
        L-BFGS iterations at most.
    tol : float, default 1e-6
        Stop when the gradient norm (in ``log T``) falls below this.

    Attributes
    ----------
    temperature_ : float
        Fitted temperature.
    n_classes_ : int
    n_iter_ : int

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, 500)
    >>> logits = 3.0 * (np.eye(3)[y] + rng.normal(size=(500, 3)))  # over-confident
    >>> ts = TemperatureScaling().fit(logits, y)
    >>> ts.temperature_ > 1.0
    True
    >>> ts.predict_proba(logits).shape
    (500, 3)
    """

    def __init__(self, max_iter: int = 100, tol: float = 1e-6):
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, logits: Any, y: Any) -> TemperatureScaling:
        """Fit the temperature.

        Parameters
        ----------
        logits : array, shape (N, K), or PredictiveSamples
            Held-out logits (per-draw logits ``(S, N, K)`` for a PredictiveSamples).
        y : array of int, shape (N,)
            Labels ``0..K-1``.

        Returns
        -------
        self
        """
        where = "TemperatureScaling.fit"
        max_iter = check_positive_int(self.max_iter, "max_iter", where)
        draws, labels, weight = _fit_inputs(logits, y, where)
        self.n_classes_ = int(draws.shape[-1])
        if _separable(draws, labels, weight):
            # Every draw ranks every true label first: the NLL falls all the way to T -> 0,
            # which would make any later mistake infinitely costly. Leave the model as it is.
            warnings.warn(
                f"{where}: every calibration example is classified correctly (by every draw), "
                "so the likelihood keeps improving as the temperature goes to 0 and does not "
                "identify one. temperature_ is set to 1 (predictions unchanged). Calibrate on "
                "more examples, ones the model gets wrong too.",
                UserWarning,
                stacklevel=2,
            )
            self.temperature_, self.n_iter_ = 1.0, 0
            return self
        log_t, n_iter = _fit_temperature(
            draws, labels, weight, max_iter=max_iter, tol=float(self.tol)
        )
        self.temperature_ = float(np.exp(float(log_t)))
        self.n_iter_ = int(n_iter)
        return self

    def transform(self, logits: Any) -> Any:
        """Rescaled logits ``logits / temperature_``, of the same kind as given.

        Parameters
        ----------
        logits : array, shape (N, K), or PredictiveSamples

        Returns
        -------
        array, shape (N, K), or PredictiveSamples
        """
        check_is_fitted(self)
        draws = logits_draws(logits, "logits", "TemperatureScaling.transform")
        return _rewrap(logits, draws / jnp.asarray(self.temperature_, draws.dtype))

    def fit_transform(self, logits: Any, y: Any) -> Any:
        """``fit(logits, y).transform(logits)``."""
        return self.fit(logits, y).transform(logits)

    def predict_proba(self, logits: Any) -> jax.Array:
        """Calibrated probabilities ``(N, K)`` (mean of per-draw softmaxes for draws)."""
        check_is_fitted(self)
        draws = logits_draws(logits, "logits", "TemperatureScaling.predict_proba")
        return jnp.mean(jax.nn.softmax(draws / self.temperature_, axis=-1), axis=0)


class VectorScaling(BaseEstimator):
    """Per-class affine map of the logits, ``logits * w + b``, fitted by NLL (Guo et al., 2017).

    More flexible than temperature scaling (``K`` scales and ``K`` biases), so it can also fix
    class-dependent bias; unlike temperature scaling it can change the predicted class.

    Parameters
    ----------
    max_iter : int, default 200
    tol : float, default 1e-6
    l2 : float, default 0.0
        Ridge penalty ``l2 * (||w - 1||^2 + ||b||^2)`` towards the identity map, for small
        calibration sets.

    Attributes
    ----------
    scale_ : numpy.ndarray, shape (K,)
    bias_ : numpy.ndarray, shape (K,)
    n_classes_ : int
    n_iter_ : int

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, 500)
    >>> logits = 3.0 * (np.eye(3)[y] + rng.normal(size=(500, 3))) + [2.0, 0.0, 0.0]
    >>> vs = VectorScaling().fit(logits, y)
    >>> vs.scale_.shape, vs.bias_.shape
    ((3,), (3,))
    """

    def __init__(self, max_iter: int = 200, tol: float = 1e-6, l2: float = 0.0):
        self.max_iter = max_iter
        self.tol = tol
        self.l2 = l2

    def fit(self, logits: Any, y: Any) -> VectorScaling:
        """Fit ``w`` and ``b``.

        Parameters
        ----------
        logits : array, shape (N, K), or PredictiveSamples
        y : array of int, shape (N,)

        Returns
        -------
        self
        """
        where = "VectorScaling.fit"
        max_iter = check_positive_int(self.max_iter, "max_iter", where)
        if not float(self.l2) >= 0.0:
            raise ValueError(f"The 'l2' parameter of {where} must be >= 0. Got {self.l2}.")
        draws, labels, weight = _fit_inputs(logits, y, where)
        k = draws.shape[-1]
        l2 = jnp.asarray(float(self.l2), draws.dtype)
        (w, b), n_iter = _fit_vector(
            draws, labels, weight, l2, max_iter=max_iter, tol=float(self.tol)
        )
        self.scale_ = np.asarray(w)
        self.bias_ = np.asarray(b)
        self.n_classes_ = int(k)
        self.n_iter_ = int(n_iter)
        return self

    def _check_k(self, draws: jax.Array, where: str) -> None:
        if draws.shape[-1] != self.n_classes_:
            raise ValueError(
                f"{where}: 'logits' has {draws.shape[-1]} classes but the scaling was fitted on "
                f"{self.n_classes_}. Pass logits for the same classes."
            )

    def transform(self, logits: Any) -> Any:
        """Rescaled logits ``logits * scale_ + bias_``, of the same kind as given."""
        check_is_fitted(self)
        draws = logits_draws(logits, "logits", "VectorScaling.transform")
        self._check_k(draws, "VectorScaling.transform")
        scaled = draws * self.scale_.astype(draws.dtype) + self.bias_.astype(draws.dtype)
        return _rewrap(logits, scaled)

    def fit_transform(self, logits: Any, y: Any) -> Any:
        """``fit(logits, y).transform(logits)``."""
        return self.fit(logits, y).transform(logits)

    def predict_proba(self, logits: Any) -> jax.Array:
        """Calibrated probabilities ``(N, K)``."""
        check_is_fitted(self)
        draws = logits_draws(logits, "logits", "VectorScaling.predict_proba")
        self._check_k(draws, "VectorScaling.predict_proba")
        scaled = draws * self.scale_.astype(draws.dtype) + self.bias_.astype(draws.dtype)
        return jnp.mean(jax.nn.softmax(scaled, axis=-1), axis=0)


__all__ = ["TemperatureScaling", "VectorScaling"]
