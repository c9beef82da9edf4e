"""Split predictive uncertainty into aleatoric (noise) and epistemic (model) parts, per input.

Classification (entropies in nats): with per-draw probabilities ``p_s(y | x)`` and their mean
``p(y | x)``,

- total = predictive entropy ``H[p]``,
- aleatoric = expected entropy ``mean_s H[p_s]``,
- epistemic = mutual information ``I(y; w | x) = H[p] - mean_s H[p_s]`` (BALD's score).

The variation ratio ``1 - (votes for the modal class) / S`` is returned beside them.

Regression (variances), by the law of total variance over the draws' Gaussians
``Normal(mean_s, scale_s)``:

- aleatoric = ``mean_s scale_s^2`` (noise the model expects),
- epistemic = ``var_s mean_s`` (disagreement between draws),
- total = their sum, the variance of the predictive mixture.

In both cases ``total = aleatoric + epistemic``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp, xlogy

from posterax.base import PredictiveSamples
from posterax.uncertainty._checks import check_predictive


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Decomposition:
    """Per-input uncertainty, each field of shape ``(N,)``.

    ``units`` is ``"nats"`` (classification: entropies) or ``"variance"`` (regression, in the
    squared units of ``y``). ``variation_ratio`` is ``None`` for regression.
    """

    total: jax.Array
    aleatoric: jax.Array
    epistemic: jax.Array
    variation_ratio: jax.Array | None = None
    units: str = dataclasses.field(default="nats", metadata={"static": True})

    def epistemic_fraction(self) -> jax.Array:
        """Share of the total that is epistemic, in [0, 1] (0 where the total is 0)."""
        return jnp.where(
            self.total > 0, self.epistemic / jnp.where(self.total > 0, self.total, 1), 0
        )

    def as_dict(self) -> dict[str, Any]:
        """The fields as NumPy-convertible arrays (for tables and JSON)."""
        out = {"total": self.total, "aleatoric": self.aleatoric, "epistemic": self.epistemic}
        if self.variation_ratio is not None:
            out["variation_ratio"] = self.variation_ratio
        return out


def entropy(probs: Any, axis: int = -1) -> jax.Array:
    """Shannon entropy in nats along ``axis`` (``0 log 0 = 0``).

    Examples
    --------
    >>> round(float(entropy(jnp.array([0.5, 0.5]))), 4)  # log 2
    0.6931
    """
    p = jnp.asarray(probs)
    return -jnp.sum(xlogy(p, p), axis=axis)


@jax.jit
def _classification(logits: jax.Array) -> tuple[jax.Array, ...]:
    log_p = jax.nn.log_softmax(logits, axis=-1)  # (S, N, K)
    p = jnp.exp(log_p)
    n_draws, _, n_classes = logits.shape
    # Each draw's entropy from its log-probabilities: exact even where p underflows to 0.
    aleatoric = jnp.mean(-jnp.sum(p * log_p, axis=-1), axis=0)
    log_mean = logsumexp(log_p, axis=0) - math.log(n_draws)  # (N, K)
    total = -jnp.sum(jnp.exp(log_mean) * log_mean, axis=-1)
    # MI >= 0 by Jensen; rounding can make it -1e-8, which would read as "negative knowledge".
    epistemic = jnp.maximum(total - aleatoric, 0.0)
    total = aleatoric + epistemic
    votes = jnp.sum(jax.nn.one_hot(jnp.argmax(logits, axis=-1), n_classes), axis=0)  # (N, K)
    variation_ratio = 1.0 - jnp.max(votes, axis=-1) / n_draws
    return total, aleatoric, epistemic, variation_ratio


@jax.jit
def _regression(mean: jax.Array, scale: jax.Array) -> tuple[jax.Array, ...]:
    aleatoric = jnp.mean(jnp.square(scale), axis=0)
    epistemic = jnp.var(mean, axis=0)  # population variance: the mixture's, not an estimate
    return aleatoric + epistemic, aleatoric, epistemic


def decompose(pred: PredictiveSamples) -> Decomposition:
    """Total, aleatoric and epistemic uncertainty of every input.

    Parameters
    ----------
    pred : PredictiveSamples
        Classification logits ``(S, N, K)`` or regression ``mean``/``scale`` ``(S, N)``; the
        draws come from any posterior (ensemble members, MCMC draws, VI/Laplace samples...).

    Returns
    -------
    Decomposition
        ``total``, ``aleatoric``, ``epistemic`` of shape ``(N,)`` (entropies in nats or
        variances), and the ``variation_ratio`` for classification.

    Examples
    --------
    Two draws that are each certain but disagree: all of the uncertainty is epistemic.

    >>> import jax.numpy as jnp
    >>> logits = jnp.array([[[30.0, 0.0]], [[0.0, 30.0]]])  # (S=2, N=1, K=2)
    >>> d = decompose(PredictiveSamples.classification(logits))
    >>> round(float(d.total[0]), 4), round(float(d.aleatoric[0]), 4), float(d.variation_ratio[0])
    (0.6931, 0.0, 0.5)

    Regression: the law of total variance.

    >>> d = decompose(PredictiveSamples.regression(jnp.array([[0.0], [2.0]]), 1.0))
    >>> float(d.aleatoric[0]), float(d.epistemic[0]), float(d.total[0])
    (1.0, 1.0, 2.0)
    """
    check_predictive(pred, "decompose")
    if pred.task == "classification":
        total, aleatoric, epistemic, ratio = _classification(pred.logits)
        return Decomposition(total, aleatoric, epistemic, ratio, units="nats")
    total, aleatoric, epistemic = _regression(pred.mean, pred.scale)
    return Decomposition(total, aleatoric, epistemic, None, units="variance")


__all__ = ["Decomposition", "decompose", "entropy"]
