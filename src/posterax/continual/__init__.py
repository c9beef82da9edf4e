"""Continual learning: learn tasks in sequence without forgetting the earlier ones.

- :func:`diagonal_fisher` / :class:`DiagonalFisher`: curvature of the log-likelihood; anything
  with ``quadratic(delta)`` (the :class:`Curvature` protocol, e.g. a KFAC Fisher) plugs in.
- :func:`ewc_loss`, :class:`PenalizedLoss`, :class:`QuadraticPenalty`: elastic weight
  consolidation as a loss wrapper for :func:`posterax.inference.train`.
- :class:`DiagonalGaussian`: online Laplace — the posterior of task t is the prior of task t+1.
- :func:`run_continual`: a sequence-of-tasks runner recording accuracy on every past task.
"""

from posterax.continual.ewc import (
    DiagonalGaussian,
    NLLLoss,
    PenalizedLoss,
    QuadraticPenalty,
    ewc_loss,
)
from posterax.continual.fisher import FISHER_KINDS, Curvature, DiagonalFisher, diagonal_fisher
from posterax.continual.runner import STRATEGIES, ContinualResult, run_continual

__all__ = [
    "FISHER_KINDS",
    "STRATEGIES",
    "ContinualResult",
    "Curvature",
    "DiagonalFisher",
    "DiagonalGaussian",
    "NLLLoss",
    "PenalizedLoss",
    "QuadraticPenalty",
    "diagonal_fisher",
    "ewc_loss",
    "run_continual",
]
