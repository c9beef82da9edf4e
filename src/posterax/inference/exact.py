"""Exact (conjugate) Bayesian linear regression with unknown noise.

Prior: ``sigma**2 ~ InverseGamma(a0, b0)``, ``w | sigma**2 ~ Normal(m0, sigma**2 * V0)`` where
``w = (intercept, coef)``. Posterior (Bishop 2006 §3.3; Murphy 2012 §7.6.3):

    V_n = (V0^-1 + A^T A)^-1,   m_n = V_n (V0^-1 m0 + A^T y),
    a_n = a0 + n / 2,           b_n = b0 + (y^T y + m0^T V0^-1 m0 - m_n^T V_n^-1 m_n) / 2,

with ``A = [1, X]``. The marginal of ``w`` is a multivariate Student-t with ``2 a_n`` degrees of
freedom, location ``m_n`` and scale matrix ``(b_n / a_n) V_n``; the predictive at ``x`` is
Student-t with the same degrees of freedom, location ``a^T m_n`` and squared scale
``(b_n / a_n) (1 + a^T V_n a)``. Computed in float64 NumPy: a (D+1)-square solve is cheap and
this is the reference every sampler is tested against.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from posterax.models.priors import NormalInverseGamma
from posterax.types import ArrayTree, PRNGKey


def _design(X: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones(X.shape[0]), X])


@dataclasses.dataclass(frozen=True)
class NormalInverseGammaPosterior:
    """The closed-form posterior; satisfies :class:`posterax.base.ParameterDistribution`."""

    loc: np.ndarray  # (D+1,) posterior mean of (intercept, coef)
    cov_factor: np.ndarray  # (D+1, D+1) V_n: cov(w | sigma^2) = sigma^2 V_n
    concentration: float  # a_n
    rate: float  # b_n

    @property
    def dof(self) -> float:
        return 2.0 * self.concentration

    def sample(self, rng_key: PRNGKey, n: int) -> ArrayTree:
        """Joint draws: ``sigma**2`` from the inverse gamma, then ``w`` given ``sigma``.

        Drawn in float64 NumPy from a generator seeded by ``rng_key`` (same key, same draws):
        the closed form needs no compiled sampler, and JAX's gamma sampler costs seconds to
        compile. Being NumPy, it cannot be traced under ``jax.jit``.
        """
        seed = np.asarray(jax.random.key_data(rng_key)).ravel().tolist()
        rng = np.random.default_rng(seed)
        sigma_sq = self.rate / rng.gamma(self.concentration, size=n)
        chol = np.linalg.cholesky(self.cov_factor)
        eps = rng.standard_normal((n, self.loc.shape[0]))
        w = self.loc + np.sqrt(sigma_sq)[:, None] * (eps @ chol.T)
        return {
            "intercept": jnp.asarray(w[:, 0]),
            "coef": jnp.asarray(w[:, 1:]),
            "sigma": jnp.asarray(np.sqrt(sigma_sq)),
        }

    def mean(self) -> ArrayTree:
        sigma_mean = self.sigma_marginal().mean()
        # float64 NumPy: the closed form is the reference, so keep its precision.
        return {"intercept": self.loc[0], "coef": self.loc[1:], "sigma": np.float64(sigma_mean)}

    # Closed-form marginals -------------------------------------------------------------
    def weight_marginal_scale(self) -> np.ndarray:
        """Student-t scale of each of (intercept, coef...) (its sd is this * sqrt(dof/(dof-2)))."""
        return np.sqrt(self.rate / self.concentration * np.diag(self.cov_factor))

    def weight_marginal_std(self) -> np.ndarray:
        if self.concentration <= 1.0:
            return np.full(self.loc.shape, np.inf)
        return np.sqrt(self.rate / (self.concentration - 1.0) * np.diag(self.cov_factor))

    def sigma_marginal(self) -> stats.rv_continuous:
        """Distribution of the noise sd: sqrt of InverseGamma(a_n, b_n) (as a SciPy object)."""
        return _SqrtInverseGamma(self.concentration, self.rate)

    def predictive_t(self, X: np.ndarray, kind: str = "predictive") -> stats.rv_continuous:
        """Student-t of a new ``y`` (``kind="predictive"``) or of the regression function."""
        A = _design(X)
        leverage = np.einsum("ni,ij,nj->n", A, self.cov_factor, A)
        extra = 1.0 if kind == "predictive" else 0.0
        scale = np.sqrt(self.rate / self.concentration * (extra + leverage))
        return stats.t(df=self.dof, loc=A @ self.loc, scale=scale)


class _SqrtInverseGamma:
    """sqrt(sigma^2) for sigma^2 ~ InverseGamma(a, b): exact moments and quantiles."""

    def __init__(self, a: float, b: float):
        self._ig = stats.invgamma(a, scale=b)
        self.a, self.b = a, b

    def mean(self) -> float:
        from scipy.special import gammaln

        if self.a <= 0.5:
            return float("inf")
        return float(np.sqrt(self.b) * np.exp(gammaln(self.a - 0.5) - gammaln(self.a)))

    def std(self) -> float:
        second = self._ig.mean()
        return float(np.sqrt(max(second - self.mean() ** 2, 0.0)))

    def ppf(self, q: np.ndarray | float) -> np.ndarray:
        return np.sqrt(self._ig.ppf(q))


def fit_exact(
    X: np.ndarray, y: np.ndarray, prior: NormalInverseGamma
) -> NormalInverseGammaPosterior:
    """Closed-form posterior of linear regression under a Normal–Inverse-Gamma prior.

    Parameters
    ----------
    X : ndarray of shape (N, D)
    y : ndarray of shape (N,)
    prior : NormalInverseGamma

    Examples
    --------
    >>> import numpy as np
    >>> from posterax.models.priors import NormalInverseGamma
    >>> X = np.arange(10.0)[:, None]; y = 2.0 * X[:, 0] + 1.0
    >>> post = fit_exact(X, y, NormalInverseGamma(scale=100.0))
    >>> np.round(post.loc, 3).tolist()
    [1.0, 2.0]
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    A = _design(X)
    dim = A.shape[1]
    m0 = np.full(dim, prior.loc)
    prior_precision = np.eye(dim) / prior.scale**2
    precision = prior_precision + A.T @ A
    # Solve via Cholesky of the precision: stable for near-collinear features.
    chol = np.linalg.cholesky(precision)
    rhs = prior_precision @ m0 + A.T @ y
    loc = np.linalg.solve(chol.T, np.linalg.solve(chol, rhs))
    cov_factor = np.linalg.solve(chol.T, np.linalg.solve(chol, np.eye(dim)))
    concentration = prior.concentration + 0.5 * y.shape[0]
    # b_n via residuals (avoids cancellation in y'y - m_n' P m_n).
    resid = y - A @ loc
    rate = prior.rate + 0.5 * (resid @ resid + (loc - m0) @ prior_precision @ (loc - m0))
    return NormalInverseGammaPosterior(loc, cov_factor, float(concentration), float(rate))


__all__ = ["NormalInverseGammaPosterior", "fit_exact"]
