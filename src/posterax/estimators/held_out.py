"""The rows an estimator holds out of training (to stop early by), and what is then set on
them: a regressor's noise (see :mod:`posterax.inference.noise_calibration` for why and what it
gains); Laplace's prior precision uses the same rows."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from posterax.base import Posterior
from posterax.inference.noise_calibration import (
    has_learned_noise,
    held_out_noise_factor,
    with_noise_scaled,
)
from posterax.predictive.sampling import predictive_samples
from posterax.types import PRNGKey

CALIBRATION_DRAWS = 100  # draws of a distribution's predictive the factor is fitted on


def calibrate_noise(
    posterior: Posterior,
    X_val: jax.Array,
    y_val: jax.Array,
    rng_key: PRNGKey,
    n_samples: int = CALIBRATION_DRAWS,
) -> Posterior:
    """``posterior`` with its noise sd (a homoscedastic ``sigma`` or a heteroscedastic model's
    scales) scaled to maximise its predictive log-likelihood on the held-out rows
    ``(X_val, y_val)``; ``info["noise_factor"]`` records the factor.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, optax
    >>> from posterax.inference.map import fit_map
    >>> from posterax.inference.network_model import NetworkModel, TrainingSettings
    >>> from posterax.models import MLP, RegressionHead, GaussianLikelihood
    >>> X = jax.random.normal(jax.random.key(0), (200, 1)); y = X[:, 0] + 0.5 * jax.random.normal(
    ...     jax.random.key(1), (200,))
    >>> net = MLP((16,), "tanh", 1)
    >>> model = NetworkModel(RegressionHead(net), GaussianLikelihood())
    >>> settings = TrainingSettings(optax.adam(1e-2), num_epochs=100, progress_bar=False)
    >>> post = fit_map(jax.random.key(2), model, lambda k: net.init(k, 1), X[:150], y[:150],
    ...                settings)
    >>> from posterax.estimators.held_out import calibrate_noise
    >>> post = calibrate_noise(post, X[150:], y[150:], jax.random.key(3))
    >>> 0.3 < float(post.draws["sigma"][0]) < 0.8
    True
    """
    if not has_learned_noise(posterior):
        raise ValueError(
            "calibrate_noise needs a posterior of a Gaussian regressor (a learned 'sigma', or "
            "a heteroscedastic model's scales, with its weights as draws or a distribution "
            "with extras). Got one without: a classifier has no noise sd to scale."
        )
    n = None if posterior.draws is not None else n_samples
    pred = predictive_samples(posterior, jnp.asarray(X_val), rng_key, n)
    factor = held_out_noise_factor(pred.mean, pred.scale, y_val)
    calibrated = with_noise_scaled(posterior, factor)
    return dataclasses.replace(calibrated, info={**posterior.info, "noise_factor": factor})


TUNE_FIX = ("tune", "Use tune='marglik'.")
EARLY_STOPPING_FIX = ("validation_fraction", "Use validation_fraction=None.")


def hold_out(Xs, target, fraction, key, where, fix):
    """``fraction`` of the rows, at random, to stop training early by and then set what
    training cannot (Laplace's prior precision, the noise). ``fix``: (parameter, advice)
    for the error when too few rows would remain."""
    n = Xs.shape[0]
    n_val = max(1, round(fraction * n))
    if n - n_val < 2:
        name, advice = fix
        raise ValueError(
            f"The '{name}' parameter of {where} holds out {fraction:.0%} of the rows, but "
            f"there are only {n}. {advice}"
        )
    order = np.asarray(jax.random.permutation(key, n))  # as split_validation orders them
    val, kept = order[:n_val], order[n_val:]
    return Xs[kept], target[kept], (jnp.asarray(Xs[val]), jnp.asarray(target[val]))


__all__ = ["EARLY_STOPPING_FIX", "TUNE_FIX", "calibrate_noise", "hold_out"]
