"""Synthetic data sets, including the seed example of the project."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import make_regression


def seed_regression(
    n_samples: int = 100, noise: float = 12.0, random_state: int = 42
) -> tuple[np.ndarray, np.ndarray, float]:
    """The seed example: one-feature linear regression from ``sklearn.datasets.make_regression``.

    Returns
    -------
    X : ndarray of shape (n_samples, 1)
    y : ndarray of shape (n_samples,)
    true_coef : float
        The generating slope (41.74 for the defaults; the intercept is 0).
    """
    X, y, coef = make_regression(
        n_samples=n_samples, n_features=1, noise=noise, random_state=random_state, coef=True
    )
    return X, y, float(np.asarray(coef).ravel()[0])
