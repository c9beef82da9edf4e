"""Conformity scores (larger = worse fit) and the prediction sets they define.

Regression: absolute residual, residual normalised by the predictive standard deviation
("conformalised Bayes" when the std comes from a posterior), and CQR (Romano et al., 2019).
Classification: LAC (Sadinle et al., 2019), APS (Romano et al., 2020) and RAPS
(Angelopoulos et al., 2021), each with the set it induces from a calibrated threshold ``q``.

All are pure, elementwise or row-wise ``jax.numpy`` functions (``O(N K)`` memory), usable under
``jit`` and ``vmap``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def absolute_residual_score(y: jax.Array, y_pred: jax.Array) -> jax.Array:
    """``|y - y_pred|``, shape (N,)."""
    return jnp.abs(y - y_pred)


def normalized_residual_score(y: jax.Array, y_pred: jax.Array, y_std: jax.Array) -> jax.Array:
    """``|y - y_pred| / y_std``, shape (N,): intervals then scale with the predictive std."""
    return jnp.abs(y - y_pred) / y_std


def cqr_score(y: jax.Array, lower: jax.Array, upper: jax.Array) -> jax.Array:
    """``max(lower - y, y - upper)``, shape (N,): negative inside the interval."""
    return jnp.maximum(lower - y, y - upper)


def lac_score(probs: jax.Array, y: jax.Array) -> jax.Array:
    """``1 - p_y``, shape (N,). Probabilities ``(N, K)``, labels ``(N,)``."""
    return 1.0 - jnp.take_along_axis(probs, y[:, None], axis=1)[:, 0]


def lac_set(probs: jax.Array, q: jax.Array) -> jax.Array:
    """Classes with ``1 - p_k <= q``: boolean ``(N, K)``."""
    return 1.0 - probs <= q


def _ranked(probs: jax.Array, k_reg: int, lambda_reg: float):
    """Per class: inclusive cumulative mass in decreasing-probability order and RAPS penalty."""
    order = jnp.argsort(-probs, axis=1, stable=True)
    cum_sorted = jnp.cumsum(jnp.take_along_axis(probs, order, axis=1), axis=1)
    # Scatter back to class order (one sort, no argsort of the permutation).
    rows = jnp.arange(probs.shape[0])[:, None]
    cum = jnp.zeros_like(probs).at[rows, order].set(cum_sorted)
    if not isinstance(lambda_reg, jax.core.Tracer) and lambda_reg == 0.0:
        return cum, jnp.zeros((), probs.dtype)
    ranks = jnp.zeros_like(order).at[rows, order].set(jnp.arange(probs.shape[1])[None, :])
    penalty = lambda_reg * jnp.maximum(ranks + 1 - k_reg, 0).astype(probs.dtype)
    return cum, penalty


def raps_score(
    probs: jax.Array,
    y: jax.Array,
    *,
    k_reg: int = 1,
    lambda_reg: float = 0.01,
    u: jax.Array | None = None,
) -> jax.Array:
    """RAPS score of the label (APS with ``lambda_reg=0``), shape (N,).

    ``(mass of the classes ranked above y) + u * p_y + lambda_reg * max(0, rank(y) - k_reg)``,
    ``rank`` 1-based in decreasing probability. With uniforms ``u`` ``(N,)`` this is the
    randomised score of Romano et al. (2020); without (``u = 0``) the label's own mass is left
    out, which keeps the score deterministic and its set never empty.
    """
    cum, penalty = _ranked(probs, k_reg, lambda_reg)
    pick = y[:, None]
    own = 1.0 if u is None else 1.0 - u
    cum_y = jnp.take_along_axis(cum + penalty, pick, axis=1)[:, 0]
    return cum_y - own * jnp.take_along_axis(probs, pick, axis=1)[:, 0]


def aps_score(probs: jax.Array, y: jax.Array, *, u: jax.Array | None = None) -> jax.Array:
    """APS score of the label: probability mass of the classes ranked at or above it, shape (N,).

    See :func:`raps_score` for ``u`` (randomisation).
    """
    return raps_score(probs, y, k_reg=0, lambda_reg=0.0, u=u)


def raps_set(
    probs: jax.Array,
    q: jax.Array,
    *,
    k_reg: int = 1,
    lambda_reg: float = 0.01,
    u: jax.Array | None = None,
) -> jax.Array:
    """Set of classes whose (R)APS score is within ``q``: boolean ``(N, K)``.

    Class ``k`` is in when its score (see :func:`raps_score`, with the same ``u``) is at most
    ``q``: the exact inverse of the score, so the label is in the set exactly when its score
    would have been within the calibration threshold. Randomised sets can be empty;
    deterministic ones (``u=None``) always hold the most probable class.
    """
    cum, penalty = _ranked(probs, k_reg, lambda_reg)
    own = 1.0 if u is None else 1.0 - u[:, None]
    return cum - own * probs + penalty <= q


def aps_set(probs: jax.Array, q: jax.Array, *, u: jax.Array | None = None) -> jax.Array:
    """Set of classes whose APS score is within ``q``: boolean ``(N, K)`` (see :func:`raps_set`)."""
    return raps_set(probs, q, k_reg=0, lambda_reg=0.0, u=u)


__all__ = [
    "absolute_residual_score",
    "aps_score",
    "aps_set",
    "cqr_score",
    "lac_score",
    "lac_set",
    "normalized_residual_score",
    "raps_score",
    "raps_set",
]
