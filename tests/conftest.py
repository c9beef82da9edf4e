import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

import posterax as px


@pytest.fixture(scope="session")
def seed_data():
    X, y, true_coef = px.data.seed_regression()
    return X, y, true_coef


@pytest.fixture(scope="session")
def multi_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = 1.5 + X @ np.array([2.0, -1.0, 0.5]) + rng.normal(scale=0.7, size=60)
    return X, y


# The runnable examples are imported by tests that check them.
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
