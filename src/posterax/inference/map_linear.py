"""MAP estimate of Bayesian linear regression: the mode of p(intercept, coef, sigma | data).

Coordinate ascent between the weights and the noise sd, each step solved exactly:

* weights given sigma: a penalised least-squares problem. Normal priors give ridge (closed form);
  Laplace priors give lasso, solved by FISTA (Beck & Teboulle 2009) on the Gram matrix.
  In sklearn's terms: Normal(0, s) on coef == ``Ridge(alpha=sigma**2 / s**2)`` and
  Laplace(0, s) == ``Lasso(alpha=sigma**2 / (n * s))``, intercept unpenalised under a Flat prior.
* sigma given the weights: a 1-D convex problem in log sigma (SciPy's Brent).

The mode is taken in the (intercept, coef, sigma) parametrisation users see.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import optimize

from posterax.models.priors import (
    Flat,
    HalfCauchy,
    HalfNormal,
    Laplace,
    LinearPrior,
    Normal,
    NormalInverseGamma,
)


def _weight_penalties(prior: LinearPrior | NormalInverseGamma, dim: int, sigma: float):
    """Per-weight (kind, loc, scale) for w = (intercept, coef...), given sigma."""
    if isinstance(prior, NormalInverseGamma):
        return ["normal"] * dim, np.full(dim, prior.loc), np.full(dim, prior.scale * sigma)
    specs = [prior.intercept] + [prior.coef] * (dim - 1)
    kinds = [s.kind for s in specs]
    locs = np.array([getattr(s, "loc", 0.0) for s in specs])
    scales = np.array([getattr(s, "scale", np.inf) for s in specs])
    return kinds, locs, scales


def _ridge_weights(A, y, sigma, quad, locs):
    """Minimiser of ||A w - y||^2 / sigma^2 + sum_j quad_j (w_j - loc_j)^2, by SVD.

    The normal equations ``(A'A / sigma^2 + diag(quad)) w = ...`` are singular in floating point
    once sigma is small next to the prior scales (one row, an exact fit, duplicated columns), and
    whether ``np.linalg.solve`` then raises depends on the CPU and BLAS. Unpenalised (flat)
    weights are profiled out by least squares; the penalised ones are whitened to
    ``v_j = sqrt(quad_j) (w_j - loc_j)``, leaving a ridge problem with parameter sigma^2 whose
    SVD solution is well posed for every sigma >= 0.
    """
    free = quad == 0.0
    r = y - A[:, ~free] @ locs[~free]
    A_free = A[:, free]
    if free.any():
        # Profile the flat weights out: project onto the complement of their columns' span.
        Q, _ = np.linalg.qr(A_free)
        project = lambda M: M - Q @ (Q.T @ M)  # noqa: E731
    else:
        project = lambda M: M  # noqa: E731
    B = project(A[:, ~free] / np.sqrt(quad[~free]))
    U, s, Vt = np.linalg.svd(B, full_matrices=False)
    keep = s > s.max(initial=0.0) * max(B.shape) * np.finfo(np.float64).eps
    gain = np.where(keep, s / np.where(keep, s**2 + sigma**2, 1.0), 0.0)
    v = Vt.T @ (gain * (U.T @ project(r)))
    w = np.empty(A.shape[1])
    w[~free] = locs[~free] + v / np.sqrt(quad[~free])
    if free.any():
        w[free] = np.linalg.lstsq(A_free, y - A[:, ~free] @ w[~free], rcond=None)[0]
    return w


def _check_identified(A: np.ndarray, free: np.ndarray, names: list[str]) -> None:
    """Refuse flat priors that leave the mode underdetermined (fewer rows than free weights)."""
    if not free.any():
        return
    A_free = A[:, free]
    rank = np.linalg.matrix_rank(A_free)
    if rank < A_free.shape[1]:
        flat = [name for name, f in zip(names, free, strict=True) if f]
        raise ValueError(
            "The 'prior' parameter of BayesianLinearRegression(method='map') must make the "
            "posterior mode unique: a Flat prior leaves a weight unpenalised, so its columns must "
            f"be linearly independent. Got Flat priors on {len(flat)} weight(s) "
            f"({', '.join(flat)}) "
            f"whose columns have rank {rank} with {A.shape[0]} sample(s) (constant, duplicated or "
            "collinear columns, or fewer samples than unpenalised weights). Give those weights a "
            "proper prior (e.g. px.priors.Normal(0, 10)), or drop the collinear columns, or add "
            "samples."
        )


def _solve_weights(A, y, gram, Aty, sigma, kinds, locs, scales, w0, tol, max_iter):
    kinds_arr = np.array(kinds)
    quad = np.where(kinds_arr == "normal", 1.0 / scales**2, 0.0)
    l1 = np.where(kinds_arr == "laplace", 1.0 / np.where(np.isinf(scales), 1.0, scales), 0.0)
    if not l1.any():
        return _ridge_weights(A, y, sigma, quad, locs), 1
    hessian = gram / sigma**2 + np.diag(quad)
    linear = Aty / sigma**2 + quad * locs
    # FISTA on 0.5 w'Hw - linear'w + sum l1_j |w_j - loc_j|
    step = 1.0 / np.linalg.eigvalsh(hessian)[-1]
    w = w0.copy()
    z, t = w.copy(), 1.0
    for it in range(1, max_iter + 1):
        grad = hessian @ z - linear
        u = z - step * grad - locs
        w_new = locs + np.sign(u) * np.maximum(np.abs(u) - step * l1, 0.0)
        t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
        z = w_new + ((t - 1.0) / t_new) * (w_new - w)
        change = np.max(np.abs(w_new - w))
        w, t = w_new, t_new
        if change <= tol * (1.0 + np.max(np.abs(w))):
            return w, it
    return w, max_iter


def _neg_log_sigma_objective(log_sigma, ssr, n, prior, weights, log_floor):
    # Below the floor the objective is held flat: with an exact fit (SSR = 0) it has no minimum.
    log_sigma = max(log_sigma, log_floor)
    sigma = math.exp(log_sigma)
    value = n * log_sigma + 0.5 * ssr / sigma**2
    if isinstance(prior, NormalInverseGamma):
        # sigma^2 ~ IG(a, b) as a density on sigma (Jacobian 2 sigma);
        # w | sigma ~ N(loc, (scale sigma)^2).
        a, b = prior.concentration, prior.rate
        value += (2 * a + 1) * log_sigma + b / sigma**2
        value += (
            weights.size * log_sigma
            + 0.5 * np.sum((weights - prior.loc) ** 2) / (prior.scale * sigma) ** 2
        )
    elif isinstance(prior.noise, HalfCauchy):
        value += math.log1p((sigma / prior.noise.scale) ** 2)
    elif isinstance(prior.noise, HalfNormal):
        value += 0.5 * (sigma / prior.noise.scale) ** 2
    return value


def fit_map_linear(
    X: np.ndarray,
    y: np.ndarray,
    prior: LinearPrior | NormalInverseGamma,
    *,
    tol: float = 1e-10,
    max_iter: int = 1000,
    max_inner_iter: int = 100_000,
) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    """Joint MAP of ``(intercept, coef, sigma)`` for linear regression.

    Parameters
    ----------
    X : ndarray of shape (N, D)
    y : ndarray of shape (N,)
    prior : LinearPrior or NormalInverseGamma

    Returns
    -------
    params : dict
        ``{"intercept": float, "coef": (D,), "sigma": float}`` (float64).
    info : dict
        ``{"iterations": int, "converged": bool}``.

    Examples
    --------
    >>> import numpy as np
    >>> from posterax.models.priors import LinearPrior, Normal, Flat
    >>> X = np.arange(20.0)[:, None]; y = 3.0 * X[:, 0] + np.sin(np.arange(20.0))
    >>> params, info = fit_map_linear(X, y, LinearPrior(coef=Normal(0, 100), intercept=Flat()))
    >>> round(float(params["coef"][0]), 2), info["converged"]
    (2.98, True)
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, d = X.shape
    A = np.column_stack([np.ones(n), X])
    gram, Aty = A.T @ A, A.T @ y
    if isinstance(prior, LinearPrior) and not isinstance(prior.intercept, Normal | Laplace | Flat):
        raise TypeError(f"Unsupported intercept prior {prior.intercept!r}.")
    kinds, _, _ = _weight_penalties(prior, d + 1, 1.0)
    names = ["intercept"] + [f"coef[{j}]" for j in range(d)]
    _check_identified(A, np.array([k == "flat" for k in kinds]), names)
    scale_y = float(np.std(y)) or 1.0
    w = np.linalg.lstsq(A, y, rcond=None)[0]
    sigma = max(float(np.sqrt(np.mean((y - A @ w) ** 2))), 1e-3 * scale_y)
    floor = 1e-9 * scale_y
    converged = False
    iteration = 0
    while iteration < max_iter:
        iteration += 1
        kinds, locs, scales = _weight_penalties(prior, d + 1, sigma)
        w, _ = _solve_weights(A, y, gram, Aty, sigma, kinds, locs, scales, w, tol, max_inner_iter)
        ssr = float(np.sum((y - A @ w) ** 2))
        result = optimize.minimize_scalar(
            _neg_log_sigma_objective,
            bracket=(math.log(sigma) - 1.0, math.log(sigma) + 1.0),
            args=(ssr, n, prior, w, math.log(floor)),
            tol=1e-12,
        )
        new_sigma = max(math.exp(float(result.x)), floor)
        if abs(new_sigma - sigma) <= tol * sigma:
            sigma = new_sigma
            converged = True
            break
        sigma = new_sigma
    if sigma <= floor:
        warnings.warn(
            "The MAP noise sd hit its floor (the data are fitted exactly): the posterior mode of "
            "sigma is at 0. Use method='exact' or 'nuts', or a noise prior that keeps sigma away "
            "from 0.",
            UserWarning,
            stacklevel=2,
        )
    params = {"intercept": np.float64(w[0]), "coef": w[1:], "sigma": np.float64(sigma)}
    return params, {"iterations": iteration, "converged": converged}


__all__ = ["fit_map_linear"]
