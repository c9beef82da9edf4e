"""``likelihood="auto"`` (the default): each method's own regression likelihood.

Deep ensembles, MC dropout and VI predict a noise sd per input (heteroscedastic: on the UCI protocol
it is their better predictive, see the README); the other methods learn one noise sd. A
network of your own keeps the one output it has."""

import numpy as np
import pytest

import posterax as px
from posterax.models import GaussianLikelihood, HeteroscedasticGaussianLikelihood

TRAINING = px.methods.Training(num_epochs=150, learning_rate=1e-2)


def _noise_grows(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, (n, 1))
    sd = 0.02 + 0.98 * ((X[:, 0] + 2) / 4) ** 2
    return X, X[:, 0] + sd * rng.normal(size=n)


def _fit(method, **kwargs):
    X, y = _noise_grows(200, 0)
    kwargs = {"network": (16,), **kwargs}
    return px.BayesianRegressor(method, progress_bar=False, random_state=0, **kwargs).fit(X, y)


def _nll(reg):
    X, y = _noise_grows(400, 1)
    return float(px.metrics.mixture_nll(y, reg.predict_samples(X)))


@pytest.mark.parametrize(
    ("method", "likelihood"),
    [
        (px.methods.Ensemble(2, TRAINING), HeteroscedasticGaussianLikelihood),
        (
            px.methods.MCDropout(num_samples=50, training=TRAINING),
            HeteroscedasticGaussianLikelihood,
        ),
        (px.methods.VI(num_samples=50, training=TRAINING), HeteroscedasticGaussianLikelihood),
        (px.methods.MAP(TRAINING), GaussianLikelihood),
        (px.methods.Laplace(structure="diag", training=TRAINING), GaussianLikelihood),
    ],
)
def test_auto_is_the_methods_own_likelihood(method, likelihood):
    reg = _fit(method)
    assert px.BayesianRegressor().likelihood == "auto"
    assert type(reg.posterior_.likelihood) is likelihood
    assert (reg.sigma_ is None) == (likelihood is HeteroscedasticGaussianLikelihood)
    if likelihood is HeteroscedasticGaussianLikelihood:  # and it is the better predictive here
        assert _nll(reg) < _nll(_fit(method, likelihood="homoscedastic")) - 0.1


def test_a_given_likelihood_overrides_auto_and_a_bad_one_names_the_choices():
    reg = _fit(px.methods.Ensemble(2, TRAINING), likelihood="homoscedastic")
    assert type(reg.posterior_.likelihood) is GaussianLikelihood and reg.sigma_ > 0
    with pytest.raises(ValueError, match=r"'likelihood'.*'auto'.*'heteroscedastic'.*Got 'het'"):
        _fit(px.methods.Ensemble(2, TRAINING), likelihood="het")


def test_a_network_of_your_own_keeps_its_one_output():
    own = px.networks.Functional(
        lambda p, x: x @ p["w"] + p["b"], {"w": np.zeros((1, 1)), "b": np.zeros(1)}
    )
    reg = _fit(px.methods.Ensemble(2, TRAINING), network=own)
    assert type(reg.posterior_.likelihood) is GaussianLikelihood
    assert reg.predict(np.zeros((3, 1))).shape == (3,)
