"""Losses that remember earlier tasks: elastic weight consolidation and online Laplace.

Both add quadratic penalties ``strength / 2 * (w - anchor)^T C (w - anchor)`` to a task's
minibatch loss and are trained with the one driver, :func:`posterax.inference.train`:

- EWC (Kirkpatrick et al., 2017): per earlier task ``t`` the anchor is that task's solution
  ``w*_t`` and ``C`` its (per-example) Fisher ``F_t``; ``strength`` is the hyper-parameter
  ``lambda`` (``lambda = N_t / N_current`` is the Bayesian value, larger values protect more).
- Online Laplace (Ritter et al., 2018): the diagonal Gaussian posterior ``N(mu_t, Lambda_t^-1)``
  of task ``t`` is the prior of task ``t + 1``. Task 1's prior is the weight prior
  ``N(0, s^2)``; after each task ``Lambda_t = Lambda_{t-1} + N_t F_t(mu_t)``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from posterax.continual.fisher import Curvature, DiagonalFisher
from posterax.inference.network_model import NetworkModel
from posterax.types import ArrayTree, PRNGKey


@dataclasses.dataclass(frozen=True, eq=False)
class QuadraticPenalty:
    """``strength / 2 * (w - anchor)^T C (w - anchor)`` over the network weights.

    Compared by identity (``eq=False``): it holds arrays, and the training driver caches its
    compiled program per loss object.
    """

    anchor: ArrayTree
    curvature: Curvature
    strength: float = 1.0

    def __call__(self, net: ArrayTree) -> jax.Array:
        delta = jax.tree_util.tree_map(jnp.subtract, net, self.anchor)
        return 0.5 * self.strength * self.curvature.quadratic(delta)


@dataclasses.dataclass(frozen=True, eq=False)
class PenalizedLoss:
    """A task's minibatch loss plus penalties on ``params["net"]``; a drop-in ``loss_fn`` for
    :func:`~posterax.inference.train`.

    ``base`` is e.g. ``model.map_loss(n_data)`` (EWC) or :class:`NLLLoss` (online Laplace,
    where the prior is itself a penalty).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> pen = QuadraticPenalty({"w": jnp.zeros(2)}, DiagonalFisher({"w": jnp.ones(2)}), 4.0)
    >>> loss = PenalizedLoss(lambda p, k, X, y: 0.0, (pen,))
    >>> float(loss({"net": {"w": jnp.array([1.0, 1.0])}}, None, None, None))  # 4/2 * 2
    4.0
    """

    base: Any
    penalties: tuple[QuadraticPenalty, ...] = ()

    def __call__(self, params: ArrayTree, rng_key: PRNGKey, X: jax.Array, y: jax.Array):
        loss = self.base(params, rng_key, X, y)
        for penalty in self.penalties:
            loss = loss + penalty(params["net"])
        return loss


@dataclasses.dataclass(frozen=True)
class NLLLoss:
    """``-mean_b log p(y_b | w)``: the data term alone (the prior comes as a penalty)."""

    model: NetworkModel

    def __call__(self, params: ArrayTree, rng_key: PRNGKey, X: jax.Array, y: jax.Array):
        return -jnp.mean(self.model.log_likelihood(params, X, y))


def ewc_loss(
    model: NetworkModel,
    n_data: int,
    anchors: list[tuple[ArrayTree, Curvature]],
    strength: float,
) -> Any:
    """MAP loss of the current task plus one EWC penalty per earlier ``(weights, Fisher)``.

    With no earlier task it is the plain MAP loss, so the first task shares its compiled
    training program with fine-tuning.
    """
    if not anchors:
        return model.map_loss(n_data)
    return PenalizedLoss(
        model.map_loss(n_data),
        tuple(QuadraticPenalty(anchor, fisher, strength) for anchor, fisher in anchors),
    )


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class DiagonalGaussian:
    """``N(mean, diag(1 / precision))`` over the network weights: the online-Laplace posterior."""

    mean: ArrayTree
    precision: ArrayTree

    @classmethod
    def prior(cls, template: ArrayTree, scale: float) -> DiagonalGaussian:
        """The weight prior ``N(0, scale^2)`` on every weight of ``template``."""
        return cls(
            jax.tree_util.tree_map(jnp.zeros_like, template),
            jax.tree_util.tree_map(lambda w: jnp.full_like(w, 1.0 / scale**2), template),
        )

    def update(self, mean: ArrayTree, fisher: DiagonalFisher, n_data: int) -> DiagonalGaussian:
        """Laplace step: new mode ``mean``, precision plus the data's Fisher ``n_data * F``."""
        return DiagonalGaussian(
            mean, (DiagonalFisher(self.precision) + fisher.scaled(n_data)).diagonal
        )

    def scale(self) -> ArrayTree:
        """Marginal standard deviations."""
        return jax.tree_util.tree_map(lambda p: 1.0 / jnp.sqrt(p), self.precision)

    def loss(self, model: NetworkModel, n_data: int) -> PenalizedLoss:
        """Per-example negative log posterior of a new task with this as its prior."""
        penalty = QuadraticPenalty(self.mean, DiagonalFisher(self.precision), 1.0 / n_data)
        return PenalizedLoss(NLLLoss(model), (penalty,))


__all__ = [
    "DiagonalGaussian",
    "NLLLoss",
    "PenalizedLoss",
    "QuadraticPenalty",
    "ewc_loss",
]
