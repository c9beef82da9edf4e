"""What a search scores a setting on: rows carved from the training data, and the negative
log-likelihood of the fitted estimator's predictive on them."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, is_classifier
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from posterax.metrics import mixture_nll


def validation_rows(
    y: np.ndarray, fraction: float, classifier: bool, random_state: Any
) -> tuple[np.ndarray, np.ndarray]:
    """``(fit_rows, validation_rows)``: indices into the training data only, the validation
    part ``fraction`` of it (stratified by class for a classifier)."""
    n = len(y)
    n_val = int(np.ceil(fraction * n))
    if n_val < 2 or n - n_val < 2:
        raise ValueError(
            f"The 'validation_fraction' parameter of px.tuning.Tuned leaves {n_val} of {n} "
            "training rows for validation (and the rest for fitting); each part needs at least "
            "2. Pass more rows or another validation_fraction."
        )
    rows = np.arange(n)
    try:
        fit_rows, val_rows = train_test_split(
            rows,
            test_size=n_val,
            random_state=random_state,
            stratify=y if classifier else None,
        )
    except ValueError as error:  # a class too rare to put in both parts
        raise ValueError(
            f"px.tuning.Tuned cannot carve a stratified validation split of {n_val} rows from "
            f"the training labels: {error} Pass a larger validation_fraction, or more rows of "
            "the rare classes."
        ) from None
    return np.sort(fit_rows), np.sort(val_rows)


def check_cv(cv: Any) -> int | None:
    if cv is None:
        return None
    if not isinstance(cv, numbers.Integral) or isinstance(cv, bool) or cv < 2:
        raise ValueError(
            "The 'cv' parameter of px.tuning.Tuned must be an int >= 2 (K-fold cross-validation "
            f"on the training rows) or None (one validation split). Got {cv!r}. Pass e.g. cv=5."
        )
    return int(cv)


def fold_rows(
    y: np.ndarray, n_folds: int, classifier: bool, random_state: Any
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(fit_rows, validation_rows)]`` of a shuffled K-fold split of the training rows
    (stratified by class for a classifier)."""
    n = len(y)
    if n < 2 * n_folds:
        raise ValueError(
            f"The 'cv' parameter of px.tuning.Tuned asks for {n_folds} folds of {n} training "
            "rows; each fold needs at least 2. Pass a smaller cv or more rows."
        )
    kind = StratifiedKFold if classifier else KFold
    splitter = kind(n_splits=n_folds, shuffle=True, random_state=random_state)
    try:
        return [(np.sort(a), np.sort(b)) for a, b in splitter.split(np.zeros(n), y)]
    except ValueError as error:
        raise ValueError(
            f"px.tuning.Tuned cannot make {n_folds} stratified folds of the training labels: "
            f"{error} Pass a smaller cv."
        ) from None


def validation_nll_rows(estimator: BaseEstimator, X: Any, y: Any) -> np.ndarray:
    """Negative log-likelihood of each row of ``y`` under the fitted ``estimator``'s predictive
    (float64, shape ``(N,)``): of ``predict_proba`` for a classifier (probabilities clipped at
    the smallest normal float, as :func:`posterax.metrics.log_loss` does); for a regressor of
    the exact mixture of ``predict_samples`` (posterax estimators), else of the Gaussian of
    ``predict(X, return_std=True)``. Per row, so two settings can be compared row by row
    (``px.Tuned(default_margin=...)``)."""
    if is_classifier(estimator):
        classes = np.asarray(estimator.classes_)
        labels = np.asarray(y)
        index = np.searchsorted(classes, labels)
        index = np.clip(index, 0, len(classes) - 1)
        if not np.all(classes[index] == labels):
            unseen = sorted(set(labels[classes[index] != labels].tolist()))
            raise ValueError(
                f"px.tuning.Tuned: validation labels {unseen!r} were not among the classes the "
                f"trial was fitted on ({classes.tolist()!r})."
            )
        probs = np.asarray(estimator.predict_proba(X))
        chosen = probs[np.arange(len(index)), index]
        return -np.log(np.maximum(chosen, np.finfo(probs.dtype).tiny).astype(np.float64))
    if hasattr(estimator, "predict_samples"):
        rows = mixture_nll(y, estimator.predict_samples(X), reduction="none")
    else:
        mean, scale = estimator.predict(X, True)
        rows = mixture_nll(y, np.asarray(mean)[None], np.asarray(scale)[None], reduction="none")
    return np.asarray(rows, np.float64)


def validation_nll(estimator: BaseEstimator, X: Any, y: Any) -> float:
    """Mean negative log-likelihood of ``y`` under the fitted ``estimator``'s predictive: the
    mean of :func:`validation_nll_rows` (log loss for a classifier, the exact mixture NLL of a
    posterax regressor, else the Gaussian NLL of ``predict(X, return_std=True)``)."""
    return float(np.mean(validation_nll_rows(estimator, X, y)))


__all__ = [
    "check_cv",
    "fold_rows",
    "validation_nll",
    "validation_nll_rows",
    "validation_rows",
]
