"""``BayesianLinearRegression``: exact (conjugate), NUTS or MAP, with the scikit-learn contract."""

from __future__ import annotations

import time
import types
from typing import Any

import jax.numpy as jnp
import numpy as np
from scipy import stats
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from posterax.base import Posterior, PredictiveSamples
from posterax.data.validation import (
    check_features,
    check_level,
    check_regression_target,
    rng_key_from,
)
from posterax.diagnostics import (
    convergence_problems,
    count_divergences,
    parameter_diagnostics,
    to_inference_data,
    warn_if_not_converged,
)
from posterax.estimators.common import (
    INFERENCE_DATA_STREAM,
    PREDICT_STREAM,
    check_method,
    check_predict_input,
    nuts_settings,
    stream_key,
)
from posterax.estimators.persistence import persistable, save_estimator
from posterax.estimators.regression_api import PredictiveRegressorMixin
from posterax.inference import LinearMethod, fit_exact, fit_map_linear, run_nuts
from posterax.inference.exact import NormalInverseGammaPosterior
from posterax.methods import MAP, NUTS, Method
from posterax.models import GaussianLikelihood, linear_apply, linear_regression_model
from posterax.models.priors import LinearPrior, NormalInverseGamma
from posterax.predictive import (
    predictive_samples,
)

_PARAM_NAMES = ("intercept", "coef", "sigma")


def _resolve_prior(prior: Any, method: LinearMethod) -> LinearPrior | NormalInverseGamma:
    if prior is None:
        return NormalInverseGamma() if method is LinearMethod.EXACT else LinearPrior()
    if method is LinearMethod.EXACT and not isinstance(prior, NormalInverseGamma):
        raise TypeError(
            "The 'prior' parameter of BayesianLinearRegression must be a "
            "px.priors.NormalInverseGamma when method='exact' (the conjugate family that has a "
            f"closed form). Got {prior!r}. Use method='nuts' for other priors."
        )
    if not isinstance(prior, LinearPrior | NormalInverseGamma):
        raise TypeError(
            "The 'prior' parameter of BayesianLinearRegression must be None, a "
            "px.priors.LinearPrior(coef=..., intercept=..., noise=...) or a "
            f"px.priors.NormalInverseGamma(...). Got {prior!r}."
        )
    return prior


@persistable
class BayesianLinearRegression(PredictiveRegressorMixin, RegressorMixin, BaseEstimator):
    """Bayesian linear regression ``y ~ Normal(intercept + X @ coef, sigma)``.

    Parameters
    ----------
    method : {"exact", "nuts", "map"} or px.methods.NUTS(...) / px.methods.MAP(), default="exact"
        ``"exact"``: conjugate Normal–Inverse-Gamma posterior, closed-form Student-t predictive.
        ``"nuts"`` or ``px.methods.NUTS(num_warmup=..., num_samples=..., num_chains=...)``:
        NUTS (chains vectorised) under any :class:`~posterax.priors.LinearPrior`; the string
        means ``NUTS()``'s defaults.
        ``"map"`` or ``px.methods.MAP()``: the posterior mode (ridge for Normal priors, lasso
        for Laplace priors), solved exactly.
    prior : LinearPrior or NormalInverseGamma, optional
        Default: ``NormalInverseGamma()`` for ``"exact"``; the seed priors
        ``LinearPrior(coef=Normal(0, 10), intercept=Normal(0, 10), noise=HalfCauchy(5))``
        otherwise.
    progress_bar : bool, optional
        Default: shown only when stderr is a terminal.
    random_state : int, optional
        Seed for every random draw; the same seed gives identical draws. ``None`` means 0.

    Attributes
    ----------
    posterior_ : Posterior
    coef_ : ndarray of shape (n_features,)
        Posterior mean (``"map"``: the mode).
    intercept_, sigma_ : float
        Posterior means (``"map"``: the mode) of the intercept and the noise sd.
    n_features_in_ : int
    fit_seconds_ : float

    Examples
    --------
    >>> import posterax as px
    >>> X, y, _ = px.data.seed_regression()
    >>> reg = px.BayesianLinearRegression().fit(X, y)
    >>> round(float(reg.coef_[0]), 1)
    45.0
    >>> lo, hi = reg.predict_interval(X[:2], level=0.95)
    """

    def __init__(
        self,
        method: str = "exact",
        prior: Any = None,
        progress_bar: bool | None = None,
        random_state: int | None = None,
    ):
        self.method = method
        self.prior = prior
        self.progress_bar = progress_bar
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any) -> BayesianLinearRegression:
        """Compute the posterior from ``X`` (n_samples, n_features) and ``y`` (n_samples,)."""
        where = "BayesianLinearRegression.fit"
        method = self._linear_method()
        prior = _resolve_prior(self.prior, method)
        X_arr = check_features(X, where=where)
        y_arr = check_regression_target(y, n_samples=X_arr.shape[0], where=where)
        validate_data(self, X, reset=True, skip_check_array=True)
        key = rng_key_from(self.random_state, where=where)
        start = time.perf_counter()
        self.posterior_ = _FITTERS[method](self, X_arr, y_arr, prior, key)
        self.fit_seconds_ = time.perf_counter() - start
        self._set_point_estimates()
        self.prior_ = prior
        if method is LinearMethod.NUTS:
            self._warn_on_poor_mixing()
        return self

    def _linear_method(self) -> LinearMethod:
        """``"exact"``, ``"nuts"``, ``"map"``, or the method objects that apply here:
        ``px.methods.NUTS(...)`` and ``px.methods.MAP()``."""
        if isinstance(self.method, NUTS):
            if self.method.subset != "all" or self.method.training is not None:
                raise ValueError(
                    "The 'subset' parameter of px.methods.NUTS must be 'all' (and 'training' "
                    "None) in BayesianLinearRegression: a linear model is one layer, sampled "
                    f"whole. Got {self.method!r}. Use px.methods.NUTS(...) without them."
                )
            return LinearMethod.NUTS
        if isinstance(self.method, MAP) and self.method.training is None:
            return LinearMethod.MAP  # the mode is found exactly: no training settings apply
        if isinstance(self.method, Method):
            raise ValueError(
                "The 'method' parameter of BayesianLinearRegression must be 'exact', 'nuts', "
                "'map', px.methods.NUTS(...) or px.methods.MAP() (its mode is solved exactly, "
                f"so MAP takes no training settings). Got {self.method!r}."
            )
        return check_method(self.method, LinearMethod, "BayesianLinearRegression")

    def _nuts_source(self) -> Any:
        """The NUTS settings: the method object's, or ``NUTS()``'s for ``"nuts"``."""
        nuts = self.method if isinstance(self.method, NUTS) else NUTS()
        return types.SimpleNamespace(**nuts.settings(), progress_bar=self.progress_bar)

    def _set_point_estimates(self) -> None:
        # MAP keeps its float64 mode in info (draws may be float32 under JAX's default dtype).
        point = self.posterior_.info.get("mode") or self.posterior_.mean()
        self.coef_ = np.asarray(point["coef"], dtype=np.float64)
        self.intercept_ = float(point["intercept"])
        self.sigma_ = float(point["sigma"])

    def _fit_exact(self, X, y, prior, key) -> Posterior:
        # The closed form is float64 NumPy: huge values overflow and, at a large scale, the
        # prior is lost in rounding (1 row, more columns than rows, collinear columns) so the
        # precision cannot be factorised. Both end in our error, not a LinAlgError or NaN.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            try:
                dist = fit_exact(X, y, prior)
            except np.linalg.LinAlgError:
                dist = None
        problem = "precision" if dist is None else _posterior_problem(dist, X)
        if problem == "target":
            raise ValueError(
                "The 'y' parameter of BayesianLinearRegression.fit must be small enough for the "
                "exact posterior in float64: its products and squares overflow. Got largest "
                f"|y| = {np.abs(y).max():.3g}. Rescale y (e.g. divide it by a power of ten) and "
                "scale the predictions back."
            )
        if problem is not None:
            raise ValueError(
                "The 'X' parameter of BayesianLinearRegression.fit must be on a scale where the "
                "exact posterior can be computed in float64. Got largest |X| = "
                f"{np.abs(X).max():.3g} for {X.shape[0]} row(s) and {X.shape[1]} column(s): the "
                "posterior precision (prior + X'X) cannot be factorised accurately (its entries "
                "overflow, or the prior is lost in rounding next to them: large constant, "
                "duplicated or collinear columns, or fewer rows than columns). Rescale X (e.g. "
                "sklearn.preprocessing.StandardScaler) and drop duplicated or constant columns."
            )
        return Posterior(linear_apply, GaussianLikelihood(), distribution=dist)

    def _fit_nuts(self, X, y, prior, key) -> Posterior:
        result = run_nuts(
            key,
            linear_regression_model,
            jnp.asarray(X),
            jnp.asarray(y),
            prior=prior,
            **nuts_settings(self._nuts_source(), "px.methods.NUTS"),
        )
        info = {"sample_stats": result.sample_stats, "sampling_seconds": result.seconds}
        return Posterior(
            linear_apply,
            GaussianLikelihood(),
            draws=result.flat(_PARAM_NAMES),
            info=info,
            chain_shape=result.chain_shape,
        )

    def _fit_map(self, X, y, prior, key) -> Posterior:
        params, info = fit_map_linear(X, y, prior)
        draws = {k: jnp.asarray(v)[None] for k, v in params.items()}
        return Posterior(
            linear_apply, GaussianLikelihood(), draws=draws, info={**info, "mode": params}
        )

    # ------------------------------------------------------------- predict
    def _check_predict_input(self, X: Any, where: str) -> np.ndarray:
        X_arr = check_predict_input(self, X, where)
        exact = self._exact
        if exact is not None:  # inputs far enough out overflow the closed form: refuse them
            with np.errstate(over="ignore", invalid="ignore"):
                ok = np.ones(X_arr.shape[0], dtype=bool)
                for kind in ("predictive", "mean"):
                    dist = exact.predictive_t(X_arr, kind=kind)
                    ok &= np.isfinite(dist.kwds["loc"]) & np.isfinite(dist.kwds["scale"])
            if not ok.all():
                rows = np.flatnonzero(~ok)
                raise ValueError(
                    f"The 'X' parameter of {where} must be small enough for float64 "
                    f"predictions. Got largest |X| = {np.abs(X_arr).max():.3g}: the prediction at "
                    f"row(s) {rows[:5].tolist()} overflows. Rescale X as at fit time (refit on "
                    "rescaled data if needed)."
                )
        return X_arr

    @property
    def _exact(self) -> NormalInverseGammaPosterior | None:
        dist = self.posterior_.distribution
        return dist if isinstance(dist, NormalInverseGammaPosterior) else None

    def _closed_form(self, inputs: np.ndarray, kind: str):
        return None if self._exact is None else self._exact.predictive_t(inputs, kind=kind)

    def _samples(self, X_arr, n_samples, rng_key=None) -> PredictiveSamples:
        if n_samples is None and self.posterior_.draws is None:
            n_samples = 1000
        if rng_key is None:
            rng_key = stream_key(self, PREDICT_STREAM, "predict_samples")
        return predictive_samples(self.posterior_, X_arr, rng_key, n_samples)

    def summary(self, level: float = 0.95) -> dict[str, dict[str, float]]:
        """Per scalar parameter: posterior mean, sd and central ``level`` interval.

        Exact posteriors use their closed-form marginals (Student-t weights, sqrt-inverse-gamma
        noise sd); MCMC uses its draws; MAP reports the mode with sd 0.
        """
        check_is_fitted(self)
        level = check_level(level, where="BayesianLinearRegression.summary")
        tails = ((1 - level) / 2, (1 + level) / 2)
        names = ["intercept"] + [f"coef[{i}]" for i in range(self.n_features_in_)]
        out: dict[str, dict[str, float]] = {}
        exact = self._exact
        if exact is not None:
            t_scale = exact.weight_marginal_scale()
            sd = exact.weight_marginal_std()
            for i, name in enumerate(names):
                t = stats.t(df=exact.dof, loc=exact.loc[i], scale=t_scale[i])
                out[name] = _row(exact.loc[i], sd[i], t.ppf(tails[0]), t.ppf(tails[1]))
            sig = exact.sigma_marginal()
            lo, hi = sig.ppf(np.asarray(tails))
            out["sigma"] = _row(sig.mean(), sig.std(), lo, hi)
            return out
        draws = self.posterior_.draws
        columns = {
            "intercept": np.asarray(draws["intercept"])[:, None],
            "coef": np.asarray(draws["coef"]),
            "sigma": np.asarray(draws["sigma"])[:, None],
        }
        flat = np.concatenate([columns["intercept"], columns["coef"], columns["sigma"]], axis=1)
        for j, name in enumerate([*names, "sigma"]):
            values = flat[:, j].astype(np.float64)
            lo, hi = np.quantile(values, tails)
            out[name] = _row(values.mean(), values.std(ddof=1) if len(values) > 1 else 0.0, lo, hi)
        return out

    # --------------------------------------------------------- diagnostics
    def to_inference_data(self, X: Any = None, y: Any = None):
        """ArviZ InferenceData (posterior, sample_stats for NUTS; with X and y also
        log_likelihood, posterior_predictive and observed_data)."""
        check_is_fitted(self)
        key = stream_key(self, INFERENCE_DATA_STREAM, "to_inference_data")
        return to_inference_data(self.posterior_, X, y, rng_key=key)

    def diagnostics(self) -> dict[str, Any]:
        """R-hat and bulk/tail ESS per parameter (ArviZ) and the number of divergences."""
        check_is_fitted(self)
        if self.posterior_.draws is None or self.posterior_.num_draws == 1:
            raise ValueError(
                f"diagnostics() describes MCMC draws; method={self.method!r} has none (its "
                "posterior is exact or a point). Use method='nuts'."
            )
        return {
            "parameters": parameter_diagnostics(self.to_inference_data()),
            "divergences": count_divergences(self.posterior_),
        }

    def _warn_on_poor_mixing(self) -> None:
        diag = self.diagnostics()
        params = diag["parameters"].values()
        problems = convergence_problems(
            max(p["r_hat"] for p in params),
            min(p["ess_bulk"] for p in params),
            diag["divergences"],
            where="parameters",
        )
        warn_if_not_converged(problems, stacklevel=4)

    # ---------------------------------------------------------- save/load
    def save(self, path: Any, overwrite: bool = False) -> None:
        """Save to a directory of JSON metadata + ``.npz`` arrays (no pickle). See ``px.load``."""
        check_is_fitted(self)
        save_estimator(self, path, overwrite=overwrite)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


def _posterior_problem(dist: NormalInverseGammaPosterior, X: np.ndarray) -> str | None:
    """``"precision"`` when the weights' posterior is unusable: not finite, or leverages of the
    training rows outside [0, 1] where they must lie (rounding that swamps the prior, which
    would give NaN interval widths); ``"target"`` when only the parts computed from ``y``
    overflowed."""
    if not np.isfinite(dist.cov_factor).all():
        return "precision"
    with np.errstate(over="ignore", invalid="ignore"):
        A = np.column_stack([np.ones(X.shape[0]), X])
        leverage = np.einsum("ni,ij,nj->n", A, dist.cov_factor, A)
    if not np.all((leverage >= 0) & (leverage <= 1 + 1e-6)):
        return "precision"
    if not (np.isfinite(dist.loc).all() and np.isfinite(dist.rate) and dist.rate > 0):
        return "target"
    return None


def _row(mean: float, sd: float, lower: float, upper: float) -> dict[str, float]:
    return {"mean": float(mean), "sd": float(sd), "lower": float(lower), "upper": float(upper)}


_FITTERS = {
    LinearMethod.EXACT: BayesianLinearRegression._fit_exact,
    LinearMethod.NUTS: BayesianLinearRegression._fit_nuts,
    LinearMethod.MAP: BayesianLinearRegression._fit_map,
}

__all__ = ["BayesianLinearRegression"]
