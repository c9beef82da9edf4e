"""The rows an estimator holds out of training (to stop early by), and what is then set on
them: a regressor's noise (see :mod:`posterax.inference.noise_calibration` for why and what it
gains) and the scores of its conformal intervals (:func:`interval_scores`); Laplace's prior
precision uses the same rows."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from posterax.base import Posterior, PredictiveSamples
from posterax.conformal.quantile import ceil_level
from posterax.inference.noise_calibration import (
    has_learned_noise,
    held_out_noise_factor,
    with_noise_scaled,
)
from posterax.predictive.inputs import mixture_cdf
from posterax.predictive.sampling import predictive_samples
from posterax.types import PRNGKey

CALIBRATION_DRAWS = 100  # draws of a distribution's predictive the factor is fitted on
# posterior.info key of the held-out rows' scores (predict_interval(kind="conformal")).
INTERVAL_SCORES = "interval_scores"


def interval_scores(pred: PredictiveSamples, y: jax.Array) -> np.ndarray:
    """Each held-out row's conformity score, sorted: ``|2 F(y) - 1|`` under its predictive CDF
    ``F``, the level of the smallest central predictive interval that holds ``y``.

    Split conformal prediction with this score (:func:`conformal_level`) sets the level of the
    central predictive interval so that it covers the nominal share of new rows, whatever the
    shape of the predictive. Measured need: the deep ensemble's and MC dropout's central 90%
    intervals covered 0.92-0.99 of UCI test rows (their Gaussian mixtures, fitted for
    log-likelihood, have too heavy tails for the residuals; on UCI power even the test-optimal
    noise scale covered 0.92).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from posterax.base import PredictiveSamples
    >>> pred = PredictiveSamples.regression(jnp.zeros((1, 3)), jnp.ones((1, 3)))
    >>> interval_scores(pred, jnp.array([0.0, -1.96, 1.0])).round(3).tolist()
    [0.0, 0.683, 0.95]
    """
    cdf = mixture_cdf(pred.mean, pred.scale, jnp.asarray(y, pred.mean.dtype))
    return np.sort(np.abs(2.0 * np.asarray(cdf, np.float64) - 1.0))


def held_out_interval_scores(
    posterior: Posterior,
    X_val: jax.Array,
    y_val: jax.Array,
    rng_key: PRNGKey,
    n_samples: int = CALIBRATION_DRAWS,
) -> Posterior:
    """``posterior`` with :func:`interval_scores` of the held-out rows in
    ``info["interval_scores"]``."""
    pred = _predictive(posterior, X_val, rng_key, n_samples)
    return dataclasses.replace(
        posterior, info={**posterior.info, INTERVAL_SCORES: interval_scores(pred, y_val)}
    )


def _predictive(posterior, X_val, rng_key, n_samples) -> PredictiveSamples:
    """The predictive at the held-out rows: every stored draw, or ``n_samples`` of a
    distribution."""
    n = None if posterior.draws is not None else n_samples
    return predictive_samples(posterior, jnp.asarray(X_val), rng_key, n)


def conformal_level(scores: np.ndarray, level: float, where: str) -> float:
    """The central level whose predictive interval holds a new row with probability at least
    ``level`` (split conformal: the ``ceil((n + 1) level)``-th smallest of the ``n`` held-out
    scores), kept inside (0, 1) so the interval stays finite."""
    n = len(scores)
    rank = ceil_level((n + 1) * level)
    if rank > n:
        raise ValueError(
            f"The 'level' parameter of {where} with kind='conformal' must be at most "
            f"{n / (n + 1):.3f} for the {n} held-out rows of this fit (a conformal {level:g} "
            f"interval needs at least {ceil_level(level / (1 - level))}). Got {level}. Lower "
            "the level, or hold out more rows (validation_fraction) or fit on more data."
        )
    return float(np.clip(scores[rank - 1], _LEVEL_FLOOR, 1.0 - _LEVEL_FLOOR))


def supports_conformal(estimator: object, level: float) -> bool:
    """Whether a fitted ``estimator`` (or a ``px.Tuned``'s best) held out enough rows for
    ``predict_interval(X, level, kind="conformal")``."""
    fitted = getattr(estimator, "best_estimator_", estimator)
    info = getattr(getattr(fitted, "posterior_", None), "info", None) or {}
    n = len(info.get(INTERVAL_SCORES, ()))
    return n > 0 and ceil_level((n + 1) * level) <= n


_LEVEL_FLOOR = 1e-6  # a level of 1 - 1e-6 is +-4.9 sd: wider than any held-out row asked for


def calibrate_noise(
    posterior: Posterior,
    X_val: jax.Array,
    y_val: jax.Array,
    rng_key: PRNGKey,
    n_samples: int = CALIBRATION_DRAWS,
) -> Posterior:
    """``posterior`` with its noise sd (a homoscedastic ``sigma`` or a heteroscedastic model's
    scales) scaled to maximise its predictive log-likelihood on the held-out rows
    ``(X_val, y_val)``; ``info["noise_factor"]`` records the factor, ``info["interval_scores"]``
    the rows' :func:`interval_scores` under the calibrated predictive.

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
    pred = _predictive(posterior, X_val, rng_key, n_samples)
    factor = held_out_noise_factor(pred.mean, pred.scale, y_val)
    calibrated = with_noise_scaled(posterior, factor)
    # The calibrated predictive is the same draws with every scale times the factor.
    scores = interval_scores(dataclasses.replace(pred, scale=pred.scale * factor), y_val)
    info = {**posterior.info, "noise_factor": factor, INTERVAL_SCORES: scores}
    return dataclasses.replace(calibrated, info=info)


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


__all__ = [
    "EARLY_STOPPING_FIX",
    "INTERVAL_SCORES",
    "TUNE_FIX",
    "calibrate_noise",
    "conformal_level",
    "held_out_interval_scores",
    "hold_out",
    "interval_scores",
    "supports_conformal",
]
