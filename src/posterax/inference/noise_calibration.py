"""The noise of a trained regressor (a homoscedastic sd, or the level of a heteroscedastic
model's scales), set on held-out rows (the estimators' step:
:func:`posterax.estimators.held_out.calibrate_noise`).

A network trained to fit its rows learns a noise sd from residuals it has partly fitted, so the
sd is too small for new rows (UCI concrete, MAP: 90% intervals covered 0.82 of the test
points). Scaling every draw's sd by the one factor that maximises the log-likelihood of
the method's own predictive on rows held out from training is Gal & Ghahramani's (2016) choice of
the noise precision on a validation split, done exactly for any predictive: a point network,
an ensemble's mixture, VI or dropout draws. A factor below 1 needs a significant held-out gain
(see :func:`held_out_noise_factor`).

Measured on UCI (10 splits each of Boston, Concrete and Wine, against the learned noise):
MAP test LL -2.790/-3.292/-1.002 -> -2.780/-3.182/-0.994 (with the held-out criterion of early
stopping, :func:`~posterax.inference.network_model.held_out_loss`); VI
-2.870/-3.187/-0.985 -> -2.728/-3.150/-0.987. Only applying the factor where it beats the
learned noise by a standard error was no better on the whole (VI -2.774/-3.171/-0.986).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp

from posterax.base import Posterior
from posterax.models.likelihoods import NOISE_FACTOR, HeteroscedasticGaussianLikelihood

# Far outside what held-out rows ask for (up to 4 on UCI), inside what floats represent.
_LOG_FACTOR_BOUNDS = (float(np.log(1e-3)), float(np.log(1e3)))
# A shrinking factor must gain this many paired standard errors of held-out LL over 1. Not 2:
# early stopping picked its epoch on these rows, so their residuals are optimistic (UCI
# concrete, MC dropout, 93 rows: shrinks at 2.1-2.3 SE took 90% test coverage to 0.76-0.85;
# the shrinks that helped, naval and kin8nm, were at 5.7-11 SE).
SHRINK_STANDARD_ERRORS = 4.0


def held_out_noise_factor(mean: jax.Array, scale: jax.Array, y: jax.Array) -> float:
    """The factor ``c`` maximising the mean log density of the equal-weight mixture of
    ``Normal(mean[s], c * scale[s])`` (shapes ``(S, N)``) at the rows ``y`` (``(N,)``).

    A factor above 1 is taken as found; one below 1 only where its held-out gain over 1 is
    more than :data:`SHRINK_STANDARD_ERRORS` paired standard errors. Training tends to leave the
    noise too small, and a few held-out rows that happen to fit well must not shrink it (UCI
    Boston split 10, IVON: a factor below 1 from 45 rows took the test LL from -2.96 to -4.21
    at the same RMSE); but a noise learned too large is real where its sd has far to fall
    (UCI naval, MAP, 20 splits: test LL 6.64 with the factor held at 1, 6.84 shrunk)."""
    # float64 NumPy: the optimum is flat, and float32 noise would move it by 1e-4.
    mean, scale, y = (np.asarray(a, np.float64) for a in (mean, scale, y))
    z2 = np.square((y[None] - mean) / scale)
    log_scale = np.log(scale)

    def row_ll(log_factor: float) -> np.ndarray:
        log_p = -0.5 * z2 * np.exp(-2 * log_factor) - log_scale - log_factor
        return logsumexp(log_p, axis=0)  # per row, constants dropped

    found = minimize_scalar(
        lambda c: -float(np.mean(row_ll(c))),
        bounds=_LOG_FACTOR_BOUNDS,
        method="bounded",
        options={"xatol": 1e-9},
    )
    factor = float(np.exp(found.x))
    if factor >= 1.0:
        return factor
    gain = row_ll(found.x) - row_ll(0.0)
    n = gain.size
    standard_error = np.std(gain, ddof=1) / np.sqrt(n) if n > 1 else np.inf
    return factor if np.mean(gain) > SHRINK_STANDARD_ERRORS * standard_error else 1.0


def with_noise_scaled(posterior: Posterior, factor: float) -> Posterior:
    """``posterior`` with its noise sd multiplied by ``factor``: a homoscedastic ``sigma`` (in
    its draws or beside its distribution), or a heteroscedastic model's scales (through
    :data:`~posterax.models.likelihoods.NOISE_FACTOR` beside its weights)."""
    key = NOISE_FACTOR if _heteroscedastic(posterior) else "sigma"
    if posterior.draws is not None:
        draws = dict(posterior.draws)
        if key not in draws:  # one factor per draw, for vmapping over draws
            draws[key] = jnp.ones(jax.tree_util.tree_leaves(draws["net"])[0].shape[0])
        draws[key] = draws[key] * factor
        return dataclasses.replace(posterior, draws=draws)
    dist = posterior.distribution
    extras = dict(dist.extras)
    extras[key] = extras.get(key, jnp.ones(())) * factor
    return dataclasses.replace(posterior, distribution=dataclasses.replace(dist, extras=extras))


def has_learned_noise(posterior: Posterior) -> bool:
    """Whether ``posterior`` holds a noise sd this module can scale: a homoscedastic ``sigma``,
    or a heteroscedastic model's scales (with its weights as draws or a distribution with
    ``extras``)."""
    if posterior.draws is not None:
        draws = posterior.draws
        return isinstance(draws, dict) and (
            "sigma" in draws or (_heteroscedastic(posterior) and "net" in draws)
        )
    extras: Any = getattr(posterior.distribution, "extras", None)
    return (
        dataclasses.is_dataclass(posterior.distribution)
        and isinstance(extras, dict)
        and ("sigma" in extras or _heteroscedastic(posterior))
    )


def _heteroscedastic(posterior: Posterior) -> bool:
    return isinstance(posterior.likelihood, HeteroscedasticGaussianLikelihood)


def held_out_sigma(apply_fn, params, sigma, X_val, y_val):
    """The MAP's noise sd scaled to its maximum-likelihood value on the held-out rows (the
    training rows' residuals, partly fitted, make the learned one too small); ``None`` for a
    model without one."""
    if sigma is None:
        return None
    outputs = apply_fn(params, X_val)
    scale = jnp.broadcast_to(sigma, outputs.shape)
    return sigma * held_out_noise_factor(outputs[None], scale[None], y_val)


__all__ = ["has_learned_noise", "held_out_noise_factor", "held_out_sigma", "with_noise_scaled"]
