"""Active learning: label the pool points the posterior is most unsure about.

- Acquisition functions (:data:`ACQUISITIONS`): max entropy, BALD, greedy BatchBALD with a
  sample budget, predictive variance, random.
- :class:`ActiveLearner`: the pool-based loop, refitting any Bayesian estimator each round and
  recording the :class:`LearningCurve` (plot: ``posterax.plots.uncertainty.plot_learning_curves``).
"""

from posterax.active.acquisition import (
    ACQUISITIONS,
    Acquisition,
    bald,
    batchbald,
    get_acquisition,
    max_entropy,
    max_variance,
    random_acquisition,
)
from posterax.active.learner import ActiveLearner, LearningCurve

__all__ = [
    "ACQUISITIONS",
    "Acquisition",
    "ActiveLearner",
    "LearningCurve",
    "bald",
    "batchbald",
    "get_acquisition",
    "max_entropy",
    "max_variance",
    "random_acquisition",
]
