"""Brute-force posterior moments of 1-feature linear regression on a 3-D grid (test reference).

Independent of every formula in posterax: it evaluates the unnormalised log posterior density of
(intercept, slope, sigma) on a dense grid and integrates numerically.
"""

import numpy as np
from scipy import stats


def grid_moments(X, y, log_prior, centre, half_width, n=81):
    """Posterior mean and sd of (intercept, slope, sigma) by quadrature on a uniform grid.

    log_prior(b, w, s) -> log density (broadcasting arrays). centre/half_width: 3-tuples.
    """
    axes = [np.linspace(c - h, c + h, n) for c, h in zip(centre, half_width, strict=True)]
    axes[2] = axes[2][axes[2] > 0]
    b, w, s = np.meshgrid(*axes, indexing="ij")
    x = X[:, 0]
    # Sufficient statistics make the likelihood cheap on the grid.
    n_obs, sx, sy, sxx, sxy, syy = len(y), x.sum(), y.sum(), x @ x, x @ y, y @ y
    ssr = syy + n_obs * b**2 + w**2 * sxx - 2 * b * sy - 2 * w * sxy + 2 * b * w * sx
    logp = -n_obs * np.log(s) - 0.5 * ssr / s**2 + log_prior(b, w, s)
    p = np.exp(logp - logp.max())
    p /= p.sum()
    means = [float((p * v).sum()) for v in (b, w, s)]
    sds = [float(np.sqrt((p * (v - m) ** 2).sum())) for v, m in zip((b, w, s), means, strict=True)]
    return np.array(means), np.array(sds)


def seed_log_prior(b, w, s):
    """Normal(0, 10) intercept and slope, HalfCauchy(5) sigma."""
    return (
        stats.norm.logpdf(b, 0, 10) + stats.norm.logpdf(w, 0, 10) + stats.halfcauchy.logpdf(s, 0, 5)
    )


def nig_log_prior(loc, scale, a, rate):
    """Normal-Inverse-Gamma written on (b, w, sigma): sigma^2 ~ IG(a, rate) with Jacobian 2 sigma."""

    def log_prior(b, w, s):
        return (
            stats.invgamma.logpdf(s**2, a, scale=rate)
            + np.log(2 * s)
            + stats.norm.logpdf(b, loc, scale * s)
            + stats.norm.logpdf(w, loc, scale * s)
        )

    return log_prior
