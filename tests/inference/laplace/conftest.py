"""Small models shared by the Laplace tests (fixed keys, float32)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from posterax.inference.network_model import NetworkModel
from posterax.models import (
    MLP,
    CategoricalLikelihood,
    ClassificationHead,
    GaussianLikelihood,
    HeteroscedasticGaussianLikelihood,
    RegressionHead,
)


@pytest.fixture(scope="package")
def linear_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2)).astype(np.float32)
    y = (X @ np.array([1.0, -2.0]) + 0.5 + 0.3 * rng.normal(size=40)).astype(np.float32)
    return X, y


@pytest.fixture(scope="package")
def small_data():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 3)).astype(np.float32)
    return X, rng.normal(size=30).astype(np.float32), rng.integers(0, 3, 30)


def _make_model(task: str, hidden=(5,), n_features=3, seed=1):
    """A model and random (stand-in MAP) params: 'regression', 'heteroscedastic' or
    'classification'."""
    if task == "regression":
        net = MLP(hidden, "tanh", 1)
        model = NetworkModel(RegressionHead(net), GaussianLikelihood())
        extras = {"sigma": jnp.float32(0.5)}
    elif task == "heteroscedastic":
        net = MLP(hidden, "tanh", 2)
        model = NetworkModel(ClassificationHead(net), HeteroscedasticGaussianLikelihood())
        extras = {}
    else:
        net = MLP(hidden, "tanh", 3)
        model = NetworkModel(ClassificationHead(net), CategoricalLikelihood())
        extras = {}
    return model, {"net": net.init(jax.random.key(seed), n_features), **extras}


@pytest.fixture(scope="package")
def make_model():
    """``make_model(task, hidden=(5,), n_features=3, seed=1) -> (model, params)``."""
    return _make_model
