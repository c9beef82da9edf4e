"""posteriordb's reference posteriors (``../shared/data/posteriordb``) as NumPyro models.

Each Stan model is translated line by line: a parameter with no prior statement in Stan gets a
flat prior on its support (``ImproperUniform``), a bounded parameter with a prior gets the prior
truncated to the bound up to a constant (``HalfNormal``, ``HalfCauchy``), and ``target +=``
becomes ``numpyro.factor``. Reference draws are Stan NUTS, 10 chains x 1,000 (thinned by 10).
Used by ``tests/inference/test_posteriordb.py`` and ``benchmarks/posteriordb_vs_numpyro.py``.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints

ROOT_CANDIDATES = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "posteriordb",
    Path("../shared/data/posteriordb"),
)


def root() -> Path | None:
    """The posteriordb folder, or None where this checkout has no ``../shared``."""
    return next((p for p in ROOT_CANDIDATES if p.is_dir()), None)


def _read_zip_json(path: Path) -> Any:
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read(archive.namelist()[0]))


def flat(support, shape=()) -> dist.Distribution:
    """Stan's implicit prior: flat on the parameter's support."""
    return dist.ImproperUniform(support, (), shape)


# ---------------------------------------------------------------------------- the models
def blr(X, y):
    beta = numpyro.sample("beta", flat(constraints.real, (X.shape[1],)))
    sigma = numpyro.sample("sigma", flat(constraints.positive))
    numpyro.factor("beta_prior", dist.Normal(0, 10).log_prob(beta).sum())
    numpyro.factor("sigma_prior", dist.Normal(0, 10).log_prob(sigma))
    numpyro.factor("likelihood", dist.Normal(X @ beta, sigma).log_prob(y).sum())


def linear_flat(X, y):
    """``y ~ normal(X beta, sigma)`` with flat priors on beta and sigma > 0."""
    beta = numpyro.sample("beta", flat(constraints.real, (X.shape[1],)))
    sigma = numpyro.sample("sigma", flat(constraints.positive))
    with numpyro.plate("n", X.shape[0]):
        numpyro.sample("y", dist.Normal(X @ beta, sigma), obs=y)


def linear_cauchy_sigma(X, y):
    """Flat beta, ``sigma ~ cauchy(0, 2.5)`` on sigma > 0 (kidiq)."""
    beta = numpyro.sample("beta", flat(constraints.real, (X.shape[1],)))
    sigma = numpyro.sample("sigma", dist.HalfCauchy(2.5))
    with numpyro.plate("n", X.shape[0]):
        numpyro.sample("y", dist.Normal(X @ beta, sigma), obs=y)


def eight_schools_noncentered(y, sigma):
    theta_trans = numpyro.sample("theta_trans", dist.Normal(0, 1).expand([y.shape[0]]))
    mu = numpyro.sample("mu", dist.Normal(0, 5))
    tau = numpyro.sample("tau", dist.HalfCauchy(5))
    theta = numpyro.deterministic("theta", theta_trans * tau + mu)
    numpyro.sample("y", dist.Normal(theta, sigma), obs=y)


def ark(y, K=5):
    alpha = numpyro.sample("alpha", dist.Normal(0, 10))
    beta = numpyro.sample("beta", dist.Normal(0, 10).expand([K]))
    sigma = numpyro.sample("sigma", dist.HalfCauchy(2.5))
    T = y.shape[0]
    lags = jnp.stack([y[K - k : T - k] for k in range(1, K + 1)], axis=1)  # y[t-k], t = K..T-1
    numpyro.sample("y", dist.Normal(alpha + lags @ beta, sigma), obs=y[K:])


def arma11(y):
    mu = numpyro.sample("mu", dist.Normal(0, 10))
    phi = numpyro.sample("phi", dist.Normal(0, 2))
    theta = numpyro.sample("theta", dist.Normal(0, 2))
    sigma = numpyro.sample("sigma", dist.HalfCauchy(2.5))
    err1 = y[0] - (mu + phi * mu)  # Stan assumes err[0] == 0

    def step(err_prev, pair):
        y_prev, y_t = pair
        err = y_t - (mu + phi * y_prev + theta * err_prev)
        return err, err

    _, errs = jax.lax.scan(step, err1, (y[:-1], y[1:]))
    err = jnp.concatenate([err1[None], errs])
    numpyro.sample("err", dist.Normal(0, sigma), obs=err)


def garch11(y, sigma1):
    mu = numpyro.sample("mu", flat(constraints.real))
    alpha0 = numpyro.sample("alpha0", flat(constraints.positive))
    alpha1 = numpyro.sample("alpha1", flat(constraints.unit_interval))
    # The upper bound depends on alpha1: Stan's <lower=0, upper=(1 - alpha1)>.
    beta1 = numpyro.sample("beta1", flat(constraints.interval(0.0, 1.0 - alpha1)))

    def step(sigma_prev, y_prev):
        sigma = jnp.sqrt(alpha0 + alpha1 * (y_prev - mu) ** 2 + beta1 * sigma_prev**2)
        return sigma, sigma

    _, sigmas = jax.lax.scan(step, jnp.asarray(sigma1, y.dtype), y[:-1])
    sigma = jnp.concatenate([jnp.asarray(sigma1, y.dtype)[None], sigmas])
    numpyro.sample("y", dist.Normal(mu, sigma), obs=y)


def gp_regr(x, y):
    rho = numpyro.sample("rho", dist.Gamma(25, 4))
    alpha = numpyro.sample("alpha", dist.HalfNormal(2))
    sigma = numpyro.sample("sigma", dist.HalfNormal(1))
    sq = (x[:, None] - x[None, :]) ** 2
    # Stan adds sigma (not sigma^2) to the diagonal: translated as written.
    cov = alpha**2 * jnp.exp(-0.5 * sq / rho**2) + sigma * jnp.eye(x.shape[0])
    numpyro.sample("y", dist.MultivariateNormal(jnp.zeros(x.shape[0]), cov), obs=y)


def low_dim_gauss_mix(y):
    mu = numpyro.sample("mu", flat(constraints.ordered_vector, (2,)))
    sigma = numpyro.sample("sigma", dist.HalfNormal(2).expand([2]))
    theta = numpyro.sample("theta", dist.Beta(5, 5))
    numpyro.factor("mu_prior", dist.Normal(0, 2).log_prob(mu).sum())
    mixture = jnp.logaddexp(
        jnp.log(theta) + dist.Normal(mu[0], sigma[0]).log_prob(y),
        jnp.log1p(-theta) + dist.Normal(mu[1], sigma[1]).log_prob(y),
    )
    numpyro.factor("likelihood", mixture.sum())


# ---------------------------------------------------------------------------- the suite
@dataclasses.dataclass(frozen=True)
class Posterior:
    """One posteriordb posterior: its NumPyro model and how to turn its data into arguments."""

    name: str
    model: Callable[..., Any]
    arguments: Callable[[dict[str, Any]], dict[str, Any]]

    def data(self) -> dict[str, Any]:
        folder = root()
        if folder is None:
            raise FileNotFoundError("../shared/data/posteriordb is not here")
        raw = _read_zip_json(folder / self.name / "data.json.zip")
        return {k: np.asarray(v, dtype=np.float32) for k, v in self.arguments(raw).items()}

    def reference(self) -> dict[str, np.ndarray]:
        """Stan parameter name (``beta[1]``, ...) -> reference draws ``(chains, draws)``."""
        chains = _read_zip_json(root() / self.name / "reference_draws.json.zip")
        return {name: np.array([c[name] for c in chains]) for name in chains[0]}


def _design(*columns) -> np.ndarray:
    return np.column_stack([np.ones(len(columns[0])), *columns])


def _nes(d):
    age = np.asarray(d["age_discrete"])
    columns = [d["real_ideo"], d["race_adj"], age == 2, age == 3, age == 4]
    columns += [d["educ1"], d["gender"], d["income"]]
    return {"X": _design(*(np.asarray(c, dtype=float) for c in columns)), "y": d["partyid7"]}


def _mesquite(d):
    volume = np.log(np.asarray(d["diam1"]) * np.asarray(d["diam2"]) * d["canopy_height"])
    return {"X": _design(volume), "y": np.log(d["weight"])}


def _interaction(d):
    hs, iq = np.asarray(d["mom_hs"]), np.asarray(d["mom_iq"])
    return {"X": _design(hs, iq, hs * iq), "y": d["kid_score"]}


POSTERIORS: dict[str, Posterior] = {
    p.name: p
    for p in [
        Posterior("sblrc-blr", blr, lambda d: {"X": d["X"], "y": d["y"]}),
        Posterior(
            "kidiq-kidscore_momiq",
            linear_cauchy_sigma,
            lambda d: {"X": _design(d["mom_iq"]), "y": d["kid_score"]},
        ),
        Posterior("kidiq-kidscore_interaction", linear_cauchy_sigma, _interaction),
        Posterior(
            "earnings-logearn_height",
            linear_flat,
            lambda d: {"X": _design(d["height"]), "y": np.log(d["earn"])},
        ),
        Posterior("mesquite-logmesquite_logvolume", linear_flat, _mesquite),
        Posterior("nes1980-nes", linear_flat, _nes),
        Posterior(
            "eight_schools-eight_schools_noncentered",
            eight_schools_noncentered,
            lambda d: {"y": d["y"], "sigma": d["sigma"]},
        ),
        Posterior("arK-arK", ark, lambda d: {"y": d["y"]}),
        Posterior("arma-arma11", arma11, lambda d: {"y": d["y"]}),
        Posterior("garch-garch11", garch11, lambda d: {"y": d["y"], "sigma1": d["sigma1"]}),
        Posterior("gp_pois_regr-gp_regr", gp_regr, lambda d: {"x": d["x"], "y": d["y"]}),
        Posterior(
            "low_dim_gauss_mix-low_dim_gauss_mix", low_dim_gauss_mix, lambda d: {"y": d["y"]}
        ),
    ]
}


def stan_names(samples: dict[str, Any]) -> dict[str, np.ndarray]:
    """Our draws ``(chains, draws, ...)`` per site as Stan's scalar names (``beta[1]``, ...)."""
    out = {}
    for name, value in samples.items():
        value = np.asarray(value)
        if value.ndim == 2:
            out[name] = value
        else:
            for i in range(value.shape[2]):
                out[f"{name}[{i + 1}]"] = value[:, :, i]
    return out


@dataclasses.dataclass(frozen=True)
class Agreement:
    """One parameter: our and the reference's mean and sd, and z-scores of the differences
    against the Monte Carlo standard errors of both (from ArviZ's ESS)."""

    name: str
    mean: float
    reference_mean: float
    z_mean: float
    sd: float
    reference_sd: float
    z_sd: float
    ess_bulk: float


def agreement(samples: dict[str, Any], reference: dict[str, np.ndarray]) -> list[Agreement]:
    import arviz as az

    ours = stan_names(samples)
    missing = sorted(set(reference) - set(ours))
    if missing:
        raise KeyError(f"draws lack the reference parameters {missing}")
    rows = []
    for name, ref in reference.items():
        mine = ours[name].astype(np.float64)
        se_mean = np.hypot(float(az.mcse(mine, method="mean")), float(az.mcse(ref, method="mean")))
        se_sd = np.hypot(float(az.mcse(mine, method="sd")), float(az.mcse(ref, method="sd")))
        mean, ref_mean, sd, ref_sd = mine.mean(), ref.mean(), mine.std(), ref.std()
        rows.append(
            Agreement(
                name,
                float(mean),
                float(ref_mean),
                float((mean - ref_mean) / se_mean),
                float(sd),
                float(ref_sd),
                float((sd - ref_sd) / se_sd),
                float(az.ess(mine, method="bulk")),
            )
        )
    return rows
