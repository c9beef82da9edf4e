"""Input handling shared by calibration, conformal and metrics.

Every public function of those packages takes a :class:`~posterax.base.PredictiveSamples` or plain
arrays (NumPy or JAX). These helpers turn either into the arrays a function needs and check
arguments at the Python boundary, so nothing branches on traced values.

It lives in the predictive layer, below calibration, conformal and metrics, so all three share
one copy (calibration and conformal are siblings and may not import each other).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp, ndtr, ndtri

from posterax.base import PredictiveSamples
from posterax.data import validation


def is_predictive(x: Any) -> bool:
    """Whether ``x`` is a :class:`PredictiveSamples`."""
    return isinstance(x, PredictiveSamples)


def is_concrete(x: Any) -> bool:
    """Whether ``x`` holds values we may inspect (not a tracer inside ``jit``/``vmap``)."""
    return not isinstance(x, jax.core.Tracer)


@jax.jit
def _min_max(a: jax.Array) -> tuple[jax.Array, jax.Array]:
    return jnp.min(a), jnp.max(a)


@jax.jit
def _all_integral(a: jax.Array) -> jax.Array:
    return jnp.all(a == jnp.round(a))


def min_max(a: jax.Array) -> tuple[float, float]:
    """Smallest and largest value of a concrete, non-empty array (one compiled reduction)."""
    lo, hi = _min_max(a)
    return float(lo), float(hi)


def as_float(x: Any, name: str, where: str, ndim: int | tuple[int, ...] | None = None) -> jax.Array:
    """``x`` as a floating JAX array (ints and bools become the default float dtype)."""
    if is_predictive(x):
        raise TypeError(
            f"The '{name}' parameter of {where} must be an array here. Got a PredictiveSamples. "
            "Pass the array it summarises (e.g. its predictive mean) instead."
        )
    try:
        arr = jnp.asarray(x)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"The '{name}' parameter of {where} must be a numeric array (NumPy or JAX). "
            f"Got {type(x).__name__}. Convert it with numpy.asarray first."
        ) from err
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        if not (jnp.issubdtype(arr.dtype, jnp.integer) or arr.dtype == jnp.bool_):
            raise TypeError(
                f"The '{name}' parameter of {where} must hold numbers. Got dtype {arr.dtype}. "
                "Convert it to a float array."
            )
        arr = arr.astype(jnp.result_type(float))
    check_ndim(arr, name, where, ndim)
    return arr


def as_labels(y: Any, name: str, where: str, n_classes: int | None = None) -> jax.Array:
    """Integer class labels ``(N,)`` in ``[0, n_classes)`` (checked when values are concrete)."""
    arr = jnp.asarray(y)
    check_ndim(arr, name, where, 1)
    if jnp.issubdtype(arr.dtype, jnp.floating) and is_concrete(arr):
        if not bool(_all_integral(arr)):
            raise ValueError(
                f"The '{name}' parameter of {where} must hold integer class labels 0..K-1. "
                "Got non-integer floats. Encode labels with sklearn.preprocessing.LabelEncoder."
            )
    elif not (jnp.issubdtype(arr.dtype, jnp.integer) or jnp.issubdtype(arr.dtype, jnp.floating)):
        raise TypeError(
            f"The '{name}' parameter of {where} must hold integer class labels 0..K-1. "
            f"Got dtype {arr.dtype}. Encode labels with sklearn.preprocessing.LabelEncoder."
        )
    arr = arr.astype(jnp.int32)
    if n_classes is not None and is_concrete(arr) and arr.size:
        lo, hi = (int(v) for v in min_max(arr))
        if lo < 0 or hi >= n_classes:
            raise ValueError(
                f"The '{name}' parameter of {where} must hold labels in [0, {n_classes}) to match "
                f"the {n_classes} predicted classes. Got labels in [{lo}, {hi}]. Encode labels "
                "with sklearn.preprocessing.LabelEncoder fitted on all classes."
            )
    return arr


def check_ndim(arr: Any, name: str, where: str, ndim: int | tuple[int, ...] | None) -> None:
    if ndim is None:
        return
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if arr.ndim not in allowed:
        want = " or ".join(f"{d}-D" for d in allowed)
        raise ValueError(
            f"The '{name}' parameter of {where} must be {want}. Got shape {tuple(arr.shape)}."
            + (" Use .ravel() for a column vector." if 1 in allowed and arr.ndim == 2 else "")
        )


def check_same_length(where: str, **arrays: Any) -> int:
    """All arrays share the leading length ``N``; return it."""
    lengths = {k: int(v.shape[0]) for k, v in arrays.items() if v is not None}
    if len(set(lengths.values())) > 1:
        got = ", ".join(f"{k}: {n}" for k, n in lengths.items())
        raise ValueError(
            f"{where}: the inputs must have the same number of rows N. Got {got}. "
            "Pass predictions and targets for the same points."
        )
    return next(iter(lengths.values()))


def check_probability(value: Any, name: str, where: str, *, kind: str = "alpha") -> float:
    """A float in the open interval (0, 1); a hint when it looks like a percentage."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(
            f"The '{name}' parameter of {where} must be a float in (0, 1). "
            f"Got {value!r} of type {type(value).__name__}."
        )
    v = float(value)
    if not 0.0 < v < 1.0 or not math.isfinite(v):
        hint = ""
        if 1.0 < v < 100.0:
            hint = f" Did you mean {v / 100:g}?"
        elif kind == "alpha" and v == 1.0:
            hint = " alpha=1 gives empty predictions; use e.g. 0.1 for 90% coverage."
        raise ValueError(f"The '{name}' parameter of {where} must be in (0, 1). Got {value}.{hint}")
    return v


def check_positive_int(value: Any, name: str, where: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"The '{name}' parameter of {where} must be an int >= {minimum}. "
            f"Got {value!r} of type {type(value).__name__}."
        )
    if value < minimum:
        raise ValueError(f"The '{name}' parameter of {where} must be >= {minimum}. Got {value}.")
    return int(value)


def check_choice(value: Any, name: str, where: str, choices: tuple[str, ...]) -> str:
    """Positional form of :func:`posterax.data.validation.check_choice`."""
    return validation.check_choice(value, name=name, where=where, allowed=choices)


# ----------------------------------------------------------------------------------------------
# Regression predictives: Gaussian (mean, std) or an equal-weight mixture of Gaussians.


def regression_draws(pred: Any, std: Any, name: str, where: str) -> tuple[jax.Array, jax.Array]:
    """Per-draw ``(mean, scale)`` of shape ``(S, N)``.

    ``pred`` is a regression :class:`PredictiveSamples` (``std`` must be None), a mean ``(N,)``
    with ``std`` ``(N,)`` (one Gaussian per point, ``S = 1``), or per-draw means ``(S, N)`` with
    scales broadcastable to them.
    """
    if is_predictive(pred):
        if pred.task != "regression":
            raise ValueError(
                f"The '{name}' parameter of {where} must hold regression predictions. "
                "Got classification PredictiveSamples (logits)."
            )
        if std is not None:
            raise ValueError(
                f"{where}: pass either a PredictiveSamples as '{name}' or a mean with 'y_std', "
                "not both. Drop 'y_std'; the PredictiveSamples carries its own scale."
            )
        return pred.mean, pred.scale
    mean = as_float(pred, name, where, ndim=(1, 2))
    if std is None:
        raise ValueError(
            f"{where} needs a predictive spread: pass 'y_std' (shape (N,)) with the mean, or "
            f"a PredictiveSamples as '{name}'."
        )
    scale = as_float(std, "y_std", where, ndim=(0, 1, 2))
    if mean.ndim == 1:
        check_ndim(scale, "y_std", where, 1)
        check_same_length(where, **{name: mean, "y_std": scale})
    dtype = jnp.result_type(mean.dtype, scale.dtype)
    try:
        scale = jnp.broadcast_to(scale.astype(dtype), mean.shape)
    except ValueError as err:
        raise ValueError(
            f"The 'y_std' parameter of {where} must broadcast to the shape of '{name}' "
            f"{tuple(mean.shape)}. Got shape {tuple(scale.shape)}."
        ) from err
    if is_concrete(scale) and scale.size and (low := min_max(scale)[0]) <= 0:
        raise ValueError(
            f"The 'y_std' parameter of {where} must be > 0 everywhere. Got minimum "
            f"{low}. Clip it, e.g. numpy.maximum(y_std, 1e-12)."
        )
    mean = mean.astype(dtype)
    if mean.ndim == 1:
        return mean[None], scale[None]
    return mean, scale


def point_prediction(pred: Any, name: str, where: str) -> jax.Array:
    """A point prediction ``(N,)``: the predictive mean of a PredictiveSamples, else the array."""
    if is_predictive(pred):
        if pred.task != "regression":
            raise ValueError(
                f"The '{name}' parameter of {where} must hold regression predictions. "
                "Got classification PredictiveSamples (logits)."
            )
        return jnp.mean(pred.mean, axis=0)
    return as_float(pred, name, where, ndim=1)


@jax.jit
def mixture_moments(mean: jax.Array, scale: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean and std ``(N,)`` of the equal-weight Gaussian mixture given by draws ``(S, N)``."""
    m = jnp.mean(mean, axis=0)
    var = jnp.mean(jnp.square(scale), axis=0) + jnp.mean(jnp.square(mean - m), axis=0)
    return m, jnp.sqrt(var)


@jax.jit
def mixture_cdf(mean: jax.Array, scale: jax.Array, y: jax.Array) -> jax.Array:
    """CDF of the mixture at ``y``: ``(S, N)`` draws and ``y`` ``(N,)`` or ``(N, Q)``."""
    if y.ndim == mean.ndim:  # (N, Q) against (S, N)
        z = (y[None] - mean[..., None]) / scale[..., None]
    else:
        z = (y[None] - mean) / scale
    return jnp.mean(ndtr(z), axis=0)


@jax.jit
def mixture_logpdf(mean: jax.Array, scale: jax.Array, y: jax.Array) -> jax.Array:
    """Log density ``(N,)`` of the equal-weight mixture at ``y`` (log-sum-exp over draws)."""
    z = (y[None] - mean) / scale
    logp = -0.5 * jnp.square(z) - jnp.log(scale) - 0.5 * jnp.log(2.0 * jnp.pi)
    return logsumexp(logp, axis=0) - jnp.log(mean.shape[0])


@jax.jit
def mixture_quantile(mean: jax.Array, scale: jax.Array, q: jax.Array) -> jax.Array:
    """Quantiles of the mixture: draws ``(S, N)``, levels ``q`` ``(Q,)`` -> ``(N, Q)``.

    One draw is the Gaussian quantile in closed form; a mixture is inverted by bisection on its
    CDF (the mixture's quantile lies between the smallest and largest component quantiles).
    """
    q = jnp.asarray(q, dtype=mean.dtype)
    comp = mean[..., None] + scale[..., None] * ndtri(q)  # (S, N, Q)
    if mean.shape[0] == 1:
        return comp[0]
    lo, hi = jnp.min(comp, axis=0), jnp.max(comp, axis=0)
    iters = 64 if mean.dtype == jnp.float64 else 40

    def body(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        below = mixture_cdf(mean, scale, mid) < q
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    lo, hi = jax.lax.fori_loop(0, iters, body, (lo, hi))
    return 0.5 * (lo + hi)


# ----------------------------------------------------------------------------------------------
# Classification predictives: per-draw logits (S, N, K) or probabilities (N, K).


def class_probs(pred: Any, name: str, where: str) -> jax.Array:
    """Predictive probabilities ``(N, K)``: mean softmax over draws, or the array as given.

    A 1-D array is read as the probability of the positive class of a binary problem.
    """
    if is_predictive(pred):
        if pred.task != "classification":
            raise ValueError(
                f"The '{name}' parameter of {where} must hold classification predictions. "
                "Got regression PredictiveSamples (mean/scale)."
            )
        return jnp.exp(class_log_probs(pred, name, where))
    p = as_float(pred, name, where, ndim=(1, 2))
    if p.ndim == 1:
        p = jnp.stack([1.0 - p, p], axis=1)
    if is_concrete(p) and p.size:
        lo, hi = min_max(p)
        if lo < 0.0 or hi > 1.0 or not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(
                f"The '{name}' parameter of {where} must hold probabilities in [0, 1]. Got values "
                f"in [{lo:g}, {hi:g}]. If these are logits, pass "
                "PredictiveSamples.classification(logits[None]) or apply a softmax."
            )
    return p


def class_log_probs(pred: Any, name: str, where: str) -> jax.Array:
    """Log predictive probabilities ``(N, K)``, computed stably from logits when available."""
    if is_predictive(pred):
        if pred.task != "classification":
            raise ValueError(
                f"The '{name}' parameter of {where} must hold classification predictions. "
                "Got regression PredictiveSamples (mean/scale)."
            )
        return _mean_log_softmax(pred.logits)
    p = class_probs(pred, name, where)
    tiny = jnp.finfo(p.dtype).tiny
    return jnp.log(jnp.clip(p, tiny, 1.0))


@jax.jit
def _mean_log_softmax(logits: jax.Array) -> jax.Array:
    logp = jax.nn.log_softmax(logits, axis=-1)
    return logsumexp(logp, axis=0) - jnp.log(logits.shape[0])


def logits_draws(pred: Any, name: str, where: str) -> jax.Array:
    """Per-draw logits ``(S, N, K)``: from a PredictiveSamples, or a ``(N, K)`` array of logits."""
    if is_predictive(pred):
        if pred.task != "classification":
            raise ValueError(
                f"The '{name}' parameter of {where} must hold classification logits. "
                "Got regression PredictiveSamples (mean/scale)."
            )
        return pred.logits
    logits = as_float(pred, name, where, ndim=2)
    return logits[None]
