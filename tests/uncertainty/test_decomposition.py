"""Decomposition identities, checked against entropies computed independently with SciPy."""

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import softmax
from scipy.stats import entropy as scipy_entropy

import posterax as px
from posterax.uncertainty import decompose


def _random_logits(seed, shape=(7, 11, 4), scale=2.0):
    return np.random.default_rng(seed).normal(scale=scale, size=shape)


def test_classification_matches_scipy_entropies():
    logits = _random_logits(0)
    d = decompose(px.PredictiveSamples.classification(logits))
    p = softmax(logits, axis=-1)
    total = scipy_entropy(p.mean(axis=0), axis=-1)
    aleatoric = scipy_entropy(p, axis=-1).mean(axis=0)
    np.testing.assert_allclose(d.total, total, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d.aleatoric, aleatoric, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d.epistemic, total - aleatoric, rtol=1e-4, atol=1e-5)
    # Variation ratio: share of draws that do not vote for the modal class.
    votes = np.argmax(logits, axis=-1)  # (S, N)
    modal = np.array([np.bincount(v, minlength=4).max() for v in votes.T])
    np.testing.assert_allclose(d.variation_ratio, 1 - modal / logits.shape[0], rtol=1e-6)


def test_total_is_aleatoric_plus_epistemic():
    for seed in range(3):
        d = decompose(px.PredictiveSamples.classification(_random_logits(seed)))
        np.testing.assert_allclose(d.total, d.aleatoric + d.epistemic, rtol=1e-6)
        assert np.all(np.asarray(d.epistemic) >= 0)
    rng = np.random.default_rng(1)
    d = decompose(
        px.PredictiveSamples.regression(rng.normal(size=(9, 5)), rng.gamma(2, size=(9, 5)))
    )
    np.testing.assert_allclose(d.total, d.aleatoric + d.epistemic, rtol=1e-6)


def test_draws_that_agree_have_no_epistemic_uncertainty():
    one = _random_logits(3, shape=(1, 6, 5))
    logits = np.repeat(one, 8, axis=0)
    d = decompose(px.PredictiveSamples.classification(logits))
    np.testing.assert_allclose(d.epistemic, 0.0, atol=1e-6)
    np.testing.assert_allclose(d.total, d.aleatoric, rtol=1e-6)
    np.testing.assert_allclose(d.total, scipy_entropy(softmax(one[0], axis=-1), axis=-1), rtol=1e-5)
    np.testing.assert_allclose(d.variation_ratio, 0.0)
    mean = np.repeat(np.random.default_rng(0).normal(size=(1, 6)), 8, axis=0)
    d = decompose(px.PredictiveSamples.regression(mean, 0.7))
    np.testing.assert_allclose(d.epistemic, 0.0, atol=1e-7)
    np.testing.assert_allclose(d.total, 0.49, rtol=1e-6)


def test_deterministic_disagreeing_draws_are_all_epistemic():
    # One-hot draws (huge logits): each draw is certain; they disagree across draws.
    rng = np.random.default_rng(4)
    S, N, K = 10, 8, 3
    classes = rng.integers(0, K, size=(S, N))
    logits = 200.0 * np.eye(K)[classes]
    d = decompose(px.PredictiveSamples.classification(logits))
    np.testing.assert_allclose(d.aleatoric, 0.0, atol=1e-6)
    freq = np.stack([np.bincount(c, minlength=K) / S for c in classes.T])  # (N, K)
    np.testing.assert_allclose(d.total, scipy_entropy(freq, axis=-1), rtol=1e-5)
    np.testing.assert_allclose(d.epistemic, d.total, rtol=1e-5)
    # Regression: zero noise -> all the variance is the spread of the draws' means.
    mean = rng.normal(size=(S, N))
    d = decompose(px.PredictiveSamples.regression(mean, 1e-12))
    np.testing.assert_allclose(d.aleatoric, 0.0, atol=1e-12)
    np.testing.assert_allclose(d.epistemic, np.var(mean, axis=0), rtol=1e-5)


def test_regression_law_of_total_variance_matches_mixture_samples():
    """Total variance equals the variance of y sampled from the mixture (Monte Carlo)."""
    rng = np.random.default_rng(5)
    mean, scale = rng.normal(size=(4, 3)), rng.uniform(0.5, 2.0, size=(4, 3))
    d = decompose(px.PredictiveSamples.regression(mean, scale))
    draws = rng.integers(0, 4, size=200_000)
    y = mean[draws] + scale[draws] * rng.normal(size=(200_000, 3))
    # Monte Carlo sd of a sample variance ~ var * sqrt(2 / n) (plus kurtosis); 5 sd margin.
    np.testing.assert_allclose(d.total, y.var(axis=0), rtol=5 * np.sqrt(2 / 200_000) * 3)


def test_decompose_rejects_arrays_with_a_fix():
    with pytest.raises(TypeError, match=r"'pred' parameter of decompose.*PredictiveSamples"):
        decompose(jnp.zeros((3, 4, 2)))


def test_epistemic_fraction_is_between_zero_and_one():
    d = decompose(px.PredictiveSamples.classification(_random_logits(6)))
    frac = np.asarray(d.epistemic_fraction())
    assert np.all((frac >= 0) & (frac <= 1))
    np.testing.assert_allclose(frac, np.asarray(d.epistemic) / np.asarray(d.total), rtol=1e-5)
