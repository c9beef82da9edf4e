"""Data for the user-network tests."""

import numpy as np
import pytest


@pytest.fixture(scope="session")
def wave():
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, (80, 1))
    return X, np.sin(X[:, 0]) + 0.2 * rng.normal(size=80)


@pytest.fixture(scope="session")
def blobs():
    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    X = np.concatenate([rng.normal(c, 0.6, (30, 2)) for c in centres])
    return X, np.repeat(np.array(["ant", "bee", "cat"]), 30)
