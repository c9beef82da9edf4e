"""The network model's log posterior (what NUTS, MALA and SG-MCMC sample), term by term,
against scipy (independent of our code)."""

import jax
import numpy as np
import pytest
from scipy import stats

from posterax.inference import NetworkModel
from posterax.models import (
    MLP,
    CategoricalLikelihood,
    ClassificationHead,
    GaussianLikelihood,
    RegressionHead,
    WeightPrior,
)


def _position(task, rng):
    net = MLP((3,), "tanh", 1 if task == "regression" else 3).init(jax.random.key(0), 2)
    position = {"net": net}
    if task == "regression":
        position["log_sigma"] = np.float32(np.log(0.7))
    return position


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_prior_and_likelihood_match_scipy(task):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 2)).astype(np.float32)
    y = rng.normal(size=6).astype(np.float32) if task == "regression" else np.arange(6) % 3
    mlp = MLP((3,), "tanh", 1 if task == "regression" else 3)
    head, likelihood = (
        (RegressionHead, GaussianLikelihood())
        if task == "regression"
        else (ClassificationHead, CategoricalLikelihood())
    )
    density = NetworkModel(
        head(mlp), likelihood, WeightPrior("normal", (1.0, 0.5)), noise_prior_scale=2.0
    )
    position = _position(task, rng)
    net = [{k: np.asarray(v, np.float64) for k, v in layer.items()} for layer in position["net"]]
    hidden = np.tanh(X @ net[0]["w"] + net[0]["b"])
    out = hidden @ net[1]["w"] + net[1]["b"]
    scales = (1.0, 0.5)
    prior = sum(stats.norm.logpdf(net[i][k], 0, scales[i]).sum() for i in range(2) for k in "wb")
    if task == "regression":
        sigma = 0.7
        prior += stats.halfcauchy.logpdf(sigma, 0, 2.0) + np.log(sigma)  # + log-Jacobian
        loglik = stats.norm.logpdf(y, out[:, 0], sigma).sum()
    else:
        loglik = (out - np.log(np.exp(out).sum(1, keepdims=True)))[np.arange(6), y].sum()
    np.testing.assert_allclose(density.log_prior(position), prior, rtol=1e-5)
    np.testing.assert_allclose(density.log_likelihood(position, X, y).sum(), loglik, rtol=1e-5)
    np.testing.assert_allclose(density(position, X, y), prior + loglik, rtol=1e-5)
    if task == "regression":  # the trained methods' model: sigma a point estimate, flat prior
        weights_only = NetworkModel(head(mlp), likelihood, WeightPrior("normal", (1.0, 0.5)))
        np.testing.assert_allclose(
            weights_only.log_prior(position),
            prior - stats.halfcauchy.logpdf(0.7, 0, 2.0) - np.log(0.7),
            rtol=1e-5,
        )
