"""Using uncertainty: aleatoric/epistemic decomposition, out-of-distribution scores and their
evaluation, and selective prediction (abstain when unsure).

Active learning and continual learning, which use the same quantities, are in
:mod:`posterax.active` and :mod:`posterax.continual`.
"""

from posterax.uncertainty.decomposition import Decomposition, decompose, entropy
from posterax.uncertainty.ood import (
    SCORES,
    energy_score,
    entropy_score,
    max_probability_score,
    mutual_information_score,
    ood_report,
    ood_scores,
    variance_score,
)
from posterax.uncertainty.selective import AbstentionRule, fit_abstention, prediction_errors

__all__ = [
    "SCORES",
    "AbstentionRule",
    "Decomposition",
    "decompose",
    "energy_score",
    "entropy",
    "entropy_score",
    "fit_abstention",
    "max_probability_score",
    "mutual_information_score",
    "ood_report",
    "ood_scores",
    "prediction_errors",
    "variance_score",
]
