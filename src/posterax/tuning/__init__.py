"""Budgeted hyperparameter search: ``px.Tuned(estimator, n_trials=20)`` (optuna's seeded TPE
sampler) over a method's settings, scored on a validation split of the training data only,
then refitted on all of it. :func:`default_space` is the space the method calls for."""

from posterax.tuning.space import default_space
from posterax.tuning.tuned import Tuned
from posterax.tuning.validation import validation_nll, validation_nll_rows

__all__ = [
    "Tuned",
    "default_space",
    "validation_nll",
    "validation_nll_rows",
]
