"""The settings a network fit reads: the estimator's shared ones (devices, checkpoints, progress
bar, priors) beside the method object's own, and the validated optimisation settings of the
trained methods."""

from __future__ import annotations

import math
import numbers
import types
import warnings
from typing import Any

import numpy as np

from posterax.data.validation import check_fraction, check_positive_int
from posterax.inference import TrainingSettings
from posterax.inference.devices import resolve_devices
from posterax.inference.resumable import Checkpointing, checkpointing
from posterax.inference.training import check_optimizer
from posterax.methods import Method

# Optimiser steps aimed for by num_epochs="auto": with early stopping it decides when to stop,
# so the cap is high (UCI kin8nm, 20 splits: test LL 0.80 at 5000 steps, 0.99 at 20000;
# protein, MAP, 3 splits: -2.94 at 20000, -2.88 at 200000); without, the budget of a plain fit.
_AUTO_STEPS = 5000
_AUTO_STEPS_EARLY_STOPPING = 200000
_AUTO_MAX_EPOCHS, _AUTO_MAX_EPOCHS_PLAIN = 10000, 2000
# validation_fraction="auto": 10% held out for early stopping from this many rows on (at least
# 10 rows to judge an epoch by; below, the prior alone guards against overfitting).
AUTO_VALIDATION_FRACTION = 0.1
AUTO_VALIDATION_MIN_ROWS = 100
# patience="auto": at least this many epochs and this many optimiser steps without improvement.
AUTO_PATIENCE_EPOCHS = 20
AUTO_PATIENCE_STEPS = 10000


def resolve_validation_fraction(value: Any, n_data: int, where: str) -> float | None:
    """The share of rows held out for early stopping: ``"auto"`` -> 10% from 100 rows on,
    else ``None``; a float is checked to lie in (0, 1)."""
    if isinstance(value, str) and value == "auto":
        return AUTO_VALIDATION_FRACTION if n_data >= AUTO_VALIDATION_MIN_ROWS else None
    if value is None:
        return None
    if isinstance(value, str):
        raise ValueError(
            f"The 'validation_fraction' parameter of {where} must be 'auto', None or a float in "
            f"(0, 1). Got {value!r}. Pass e.g. validation_fraction=0.1."
        )
    return check_fraction(value, name="validation_fraction", where=where)


def training_settings(est: Any, n_data: int, where: str) -> TrainingSettings:
    """Validated optimisation settings; ``batch_size`` > data is clipped with a warning and
    ``num_epochs="auto"`` aims at about 200000 optimiser steps with early stopping (20 to
    10000 epochs) and 5000 without (20 to 2000 epochs)."""
    lr = est.learning_rate
    if not isinstance(lr, numbers.Real) or isinstance(lr, bool) or not (np.isfinite(lr) and lr > 0):
        raise ValueError(
            f"The 'learning_rate' parameter of {where} must be a float > 0. Got {lr!r}. "
            "Pass e.g. learning_rate=1e-3."
        )
    optimizer = check_optimizer(est.optimizer, float(lr), where)
    validation = resolve_validation_fraction(est.validation_fraction, n_data, where)
    n_train = n_data - (0 if validation is None else max(1, round(validation * n_data)))
    if n_train < 1:
        raise ValueError(
            f"The 'validation_fraction' parameter of {where} leaves no training data "
            f"({n_data} rows). Use a smaller fraction or None."
        )
    batch = check_positive_int(est.batch_size, name="batch_size", where=where)
    if batch > n_train:
        warnings.warn(
            f"The 'batch_size' parameter of {where} ({batch}) is larger than the training data "
            f"({n_train} rows); using batch_size={n_train}.",
            UserWarning,
            stacklevel=4,
        )
        batch = n_train
    epochs = est.num_epochs
    if epochs == "auto":
        steps = _AUTO_STEPS if validation is None else _AUTO_STEPS_EARLY_STOPPING
        most = _AUTO_MAX_EPOCHS if validation is not None else _AUTO_MAX_EPOCHS_PLAIN
        epochs = int(np.clip(math.ceil(steps / math.ceil(n_train / batch)), 20, most))
    elif isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise ValueError(
            f"The 'num_epochs' parameter of {where} must be 'auto' or an int >= 1. Got "
            f"{epochs!r}. Pass e.g. num_epochs=200."
        )
    return TrainingSettings(
        optimizer=optimizer,
        num_epochs=epochs,
        batch_size=batch,
        validation_fraction=validation,
        patience=_patience(est.patience, math.ceil(n_train / batch), where),
        progress_bar=est.progress_bar,
        devices=resolve_devices(est.devices, where=where),
        checkpoint=checkpoint_settings(est, where),
    )


def _patience(value: Any, steps_per_epoch: int, where: str) -> int:
    """Epochs without improvement before early stopping; ``"auto"``: 20 epochs or 10000
    steps, whichever is longer."""
    if isinstance(value, str) and value == "auto":
        return max(AUTO_PATIENCE_EPOCHS, math.ceil(AUTO_PATIENCE_STEPS / steps_per_epoch))
    if isinstance(value, str):
        raise ValueError(
            f"The 'patience' parameter of {where} must be 'auto' or an int >= 1. Got {value!r}. "
            "Pass e.g. patience=20."
        )
    return check_positive_int(value, name="patience", where=where)


# What every method's fit reads from the estimator itself (the rest comes from the method).
SHARED_SETTINGS = (
    "progress_bar",
    "devices",
    "checkpoint_dir",
    "checkpoint_every",
    "noise_prior_scale",
    "prior",
)


def fit_settings(est: Any, method: Method) -> types.SimpleNamespace:
    """The settings a fit function reads: the method object's own, plus the estimator's shared
    ones (and the ``resume`` flag of the current ``fit`` call). Fit functions never read the
    estimator itself."""
    shared = {name: getattr(est, name) for name in SHARED_SETTINGS if hasattr(est, name)}
    return types.SimpleNamespace(
        **method.settings(), **shared, _resume=getattr(est, "_resume", False)
    )


def checkpoint_settings(est: Any, where: str) -> Checkpointing | None:
    """The estimator's ``checkpoint_dir`` / ``checkpoint_every`` and the ``resume`` flag of the
    current ``fit`` call."""
    return checkpointing(
        est.checkpoint_dir, est.checkpoint_every, getattr(est, "_resume", False), where=where
    )


__all__ = [
    "AUTO_VALIDATION_FRACTION",
    "AUTO_VALIDATION_MIN_ROWS",
    "SHARED_SETTINGS",
    "checkpoint_settings",
    "fit_settings",
    "resolve_validation_fraction",
    "training_settings",
]
