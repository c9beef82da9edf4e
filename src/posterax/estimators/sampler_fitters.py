"""The fit functions of the samplers over a network's weights (full-batch NUTS, MALA, SG-MCMC):
the model they sample (with its noise prior) and their settings, read from the estimator."""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from posterax.base import Posterior
from posterax.data.validation import check_positive_int
from posterax.estimators.common import nuts_settings
from posterax.estimators.fit_settings import (
    checkpoint_settings,
)
from posterax.inference import (
    NetworkModel,
    sample_nuts,
)
from posterax.inference.chains import merge_chains
from posterax.inference.devices import resolve_devices
from posterax.inference.mala import OPTIMAL_ACCEPTANCE, MALASettings, sample_mala
from posterax.inference.progress import resolve
from posterax.inference.sgmcmc import PRECONDITIONERS, SGMCMCSettings, sample_sgmcmc
from posterax.models import (
    CategoricalLikelihood,
    HeteroscedasticGaussianLikelihood,
)
from posterax.models.mlp import constrain

FitFn = Callable[..., Posterior]  # fit(est, network, model, scales, Xs, target, key, where)


def _log_density(est, network, model, scales, method: str, where: str) -> NetworkModel:
    """The model the samplers sample: ``model`` with the noise prior (homoscedastic or
    categorical likelihoods)."""
    if model.likelihood.__class__ is HeteroscedasticGaussianLikelihood:
        raise ValueError(
            f"The 'likelihood' parameter of {where}: method={method!r} supports "
            "likelihood='homoscedastic' only. Got 'heteroscedastic'. Use method='map', 'vi', "
            "'vi_lowrank', 'mc_dropout' or 'ensemble' for a heteroscedastic network."
        )
    task = "classification" if isinstance(model.likelihood, CategoricalLikelihood) else "regression"
    noise = getattr(est, "noise_prior_scale", 1.0)  # classifiers have no noise
    if not isinstance(noise, numbers.Real) or not (np.isfinite(noise) and noise > 0):
        raise ValueError(
            f"The 'noise_prior_scale' parameter of {where} must be a float > 0. Got {noise!r}."
        )
    if task == "classification":
        return model
    return dataclasses.replace(model, noise_prior_scale=float(noise))


def _fit_mala(est, network, model, scales, Xs, target, key, where) -> Posterior:
    logdensity = _log_density(est, network, model, scales, "mala", where)
    nuts = nuts_settings(est, where)
    accept = est.target_accept_prob
    settings = MALASettings(
        num_warmup=nuts["num_warmup"],
        num_samples=nuts["num_samples"],
        num_chains=nuts["num_chains"],
        target_accept_prob=OPTIMAL_ACCEPTANCE if accept is None else nuts["target_accept_prob"],
        thinning=check_positive_int(est.thinning, name="thinning", where=where),
        progress_bar=resolve(nuts["progress_bar"]),
    )
    init_key, run_key = jax.random.split(key)
    starts = _starts(logdensity, network, Xs.shape[1], init_key, settings.num_chains)
    run = sample_mala(
        run_key,
        logdensity,
        starts,
        (jnp.asarray(Xs), jnp.asarray(target)),
        settings,
        devices=nuts["devices"],
        checkpoint=checkpoint_settings(est, where),
    )
    flat, (chains, draws) = merge_chains(constrain(run.samples))
    return Posterior(
        model.apply_fn,
        model.likelihood,
        draws=flat,
        info={"sample_stats": run.sample_stats, "sampling_seconds": run.seconds, **run.info},
        chain_shape=(chains, draws),
    )


@dataclasses.dataclass(frozen=True)
class _LogPrior:
    """The prior part of the model (BlackJAX's SG-MCMC ``logprior_fn``)."""

    model: NetworkModel

    def __call__(self, position):
        return self.model.log_prior(position)


@dataclasses.dataclass(frozen=True)
class _LogLikOne:
    """Log-likelihood of one example (BlackJAX's SG-MCMC convention)."""

    model: NetworkModel

    def __call__(self, position, xy):
        x, y = xy
        return jnp.sum(self.model.log_likelihood(position, x[None], y[None]))


def _starts(model, network, n_features, key, num_chains):
    def start(k):
        return model.init_params(network.init(k, n_features))

    return jax.vmap(start)(jax.random.split(key, num_chains))


def _sgmcmc_step_size(est, sampler: str, preconditioner: str | None, n: int, where: str):
    step = est.step_size
    if step is None:  # stable for standardised data: curvature of the log posterior ~ N
        if preconditioner == "rmsprop":
            return 5e-3  # RMSprop scale: the preconditioner divides by the gradient's size
        return 0.1 / n if sampler == "sgld" else 0.05 / math.sqrt(n)
    if not (isinstance(step, numbers.Real) and np.isfinite(step) and step > 0):
        raise ValueError(
            f"The 'step_size' parameter of {where} must be a float > 0 or None (chosen from "
            f"the data size). Got {step!r}."
        )
    return float(step)


def _sgmcmc_settings(est, method: str, n: int, where: str) -> SGMCMCSettings:
    cyclical = method == "csgmcmc"
    sampler = "sgld" if cyclical else method
    preconditioner = est.preconditioner
    if preconditioner not in PRECONDITIONERS:
        raise ValueError(
            f"The 'preconditioner' parameter of {where} must be None or 'rmsprop'. Got "
            f"{preconditioner!r}."
        )
    if preconditioner is not None and sampler != "sgld":
        raise ValueError(
            f"The 'preconditioner' parameter of {where} applies to method='sgld' or 'csgmcmc' "
            f"(pSGLD). Got preconditioner={preconditioner!r} with method={method!r}. Use "
            "preconditioner=None, or method='sgld'."
        )
    nuts = nuts_settings(est, where)
    settings = SGMCMCSettings(
        sampler=sampler,
        step_size=_sgmcmc_step_size(est, sampler, preconditioner, n, where),
        num_burnin=nuts["num_warmup"],
        num_samples=nuts["num_samples"],
        num_chains=nuts["num_chains"],
        thinning=check_positive_int(est.thinning, name="thinning", where=where),
        batch_size=min(check_positive_int(est.batch_size, name="batch_size", where=where), n),
        schedule="cyclical" if cyclical else "constant",
        num_cycles=check_positive_int(est.num_cycles, name="num_cycles", where=where),
        preconditioner=preconditioner,
        progress_bar=resolve(est.progress_bar),
    )
    for name, value, what in (
        ("num_samples", settings.num_samples, "collects the same number of draws"),
        ("num_warmup", settings.num_burnin, "explores for the same number of steps"),
    ):
        if cyclical and value % settings.num_cycles:
            raise ValueError(
                f"The '{name}' parameter of {where} must be a multiple of num_cycles="
                f"{settings.num_cycles} with method='csgmcmc' (each cycle {what}). Got "
                f"{name}={value}."
            )
    return settings


def _fit_sgmcmc(method: str) -> FitFn:
    def fit(est, network, model, scales, Xs, target, key, where) -> Posterior:
        logdensity = _log_density(est, network, model, scales, method, where)
        settings = _sgmcmc_settings(est, method, Xs.shape[0], where)
        init_key, run_key = jax.random.split(key)
        starts = _starts(logdensity, network, Xs.shape[1], init_key, settings.num_chains)
        run = sample_sgmcmc(
            run_key,
            _LogPrior(logdensity),
            _LogLikOne(logdensity),
            starts,
            (jnp.asarray(Xs, dtype=jnp.float32), jnp.asarray(target)),
            settings,
            devices=resolve_devices(est.devices, where=where),
            checkpoint=checkpoint_settings(est, where),
        )
        flat, (chains, draws) = merge_chains(constrain(run.samples))
        info = {"sampling_seconds": run.seconds, **run.info, "step_size": settings.step_size}
        return Posterior(
            model.apply_fn,
            model.likelihood,
            draws=flat,
            info=info,
            chain_shape=(chains, draws),
        )

    return fit


def _fit_nuts(est, network, model, scales, Xs, target, key, where) -> Posterior:
    logdensity = _log_density(est, network, model, scales, "nuts", where)
    run = sample_nuts(
        key,
        logdensity,
        logdensity.init_params(network.template(Xs.shape[1])),
        (jnp.asarray(Xs), jnp.asarray(target)),
        **nuts_settings(est, where),
        checkpoint=checkpoint_settings(est, where),
    )
    flat, (chains, draws) = merge_chains(constrain(run.samples))
    return Posterior(
        model.apply_fn,
        model.likelihood,
        draws=flat,
        info={"sample_stats": run.sample_stats, "sampling_seconds": run.seconds},
        chain_shape=(chains, draws),
    )
