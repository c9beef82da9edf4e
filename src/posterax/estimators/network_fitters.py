"""One fit function per ``method`` of the Bayesian network estimators (a registry, not an
if-chain). Each validates its own settings and returns a :class:`~posterax.Posterior` over the
standardised problem."""

from __future__ import annotations

import dataclasses
import numbers
import os
import types
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from posterax.base import Posterior
from posterax.data.validation import (
    check_choice,
    check_fraction,
    check_positive_float,
    check_positive_int,
)
from posterax.estimators.common import nuts_settings
from posterax.estimators.fit_settings import (
    checkpoint_settings,
    resolve_validation_fraction,
    training_settings,
)
from posterax.estimators.held_out import (
    EARLY_STOPPING_FIX,
    INTERVAL_SCORES,
    TUNE_FIX,
    calibrate_noise,
    held_out_interval_scores,
    hold_out,
)
from posterax.estimators.sampler_fitters import (
    FitFn,
    _fit_mala,
    _fit_nuts,
    _fit_sgmcmc,
    _log_density,
)
from posterax.inference import (
    NetworkMethod,
    NetworkModel,
    fit_ensemble,
    fit_map,
    fit_mc_dropout,
    fit_on_folds,
    fit_swag,
    fit_vi,
)
from posterax.inference.devices import resolve_devices
from posterax.inference.ivon import fit_ivon
from posterax.inference.ivon import option_readers as ivon_option_readers
from posterax.inference.laplace import fit_laplace
from posterax.inference.last_layer_nuts import last_layer_selection, sample_last_layer_nuts
from posterax.inference.vi import INITS as VI_INITS
from posterax.methods import VI
from posterax.models import (
    MLP,
    CategoricalLikelihood,
    ClassificationHead,
    GaussianLikelihood,
    HeteroscedasticGaussianLikelihood,
    RegressionHead,
    WeightPrior,
)
from posterax.models.weight_prior import FAMILIES
from posterax.networks.adapter import NetworkAdapter
from posterax.networks.last_layer import last_layer_mask
from posterax.types import PRNGKey

LIKELIHOODS = ("homoscedastic", "heteroscedastic")


def n_outputs(task: str, likelihood: str, n_classes: int) -> int:
    if task == "classification":
        return n_classes
    return 2 if likelihood == "heteroscedastic" else 1


def network_model(network: MLP, task: str, likelihood: str, prior: WeightPrior) -> NetworkModel:
    """Head + likelihood for the task: a regression head with learned noise, a mean/scale head,
    or logits."""
    if task == "classification":
        return NetworkModel(ClassificationHead(network), CategoricalLikelihood(), prior)
    if likelihood == "heteroscedastic":
        return NetworkModel(ClassificationHead(network), HeteroscedasticGaussianLikelihood(), prior)
    return NetworkModel(RegressionHead(network), GaussianLikelihood(), prior)


def _fit_nuts_last_layer(est, network, model, scales, Xs, target, key, where) -> Posterior:
    """MAP, then NUTS on its last layer given its features (the rest frozen at the MAP). With
    ``checkpoint_dir`` the MAP checkpoints into ``map/`` and the sampler into ``nuts/`` under
    it, so a resumed fit finishes (or reloads) the MAP and continues the chains."""
    settings = nuts_settings(est, where)  # checked before the MAP is trained
    map_est, nuts_checkpoint = est, checkpoint_settings(est, where)
    if est.checkpoint_dir is not None:
        directory = est.checkpoint_dir
        map_est = types.SimpleNamespace(
            **{**vars(est), "checkpoint_dir": os.path.join(directory, "map")}
        )
        nuts_checkpoint = dataclasses.replace(
            nuts_checkpoint, directory=os.path.join(directory, "nuts")
        )
    # The MAP of method=px.methods.MAP(training=...) with the same random_state.
    map_post = _trained(fit_map)(map_est, network, model, scales, Xs, target, key, where)
    nuts_key = jax.random.fold_in(key, 1)
    if model.likelihood.__class__ is not HeteroscedasticGaussianLikelihood:
        model = _log_density(est, network, model, scales, "nuts", where)  # + the noise prior
    mask = last_layer_selection(network, map_post.mean()["net"], tuple(Xs.shape[1:]), where)
    post = sample_last_layer_nuts(
        nuts_key,
        model,
        map_post,
        mask,
        jnp.asarray(Xs, dtype=jnp.float32),
        jnp.asarray(target),
        **settings,
        checkpoint=nuts_checkpoint,
    )
    # The MAP's training record (epochs, losses) beside the sampler's own info.
    post.info.update(_map_record(map_post, post))
    return post


def _regression(model: NetworkModel) -> bool:
    return isinstance(model.likelihood, GaussianLikelihood | HeteroscedasticGaussianLikelihood)


def _map_record(map_post: Posterior, post: Posterior) -> dict[str, Any]:
    """What the MAP's info adds to ``post``'s: its training record, not the interval scores of
    the MAP's predictive (``post`` is another predictive)."""
    return {k: v for k, v in map_post.info.items() if k not in post.info and k != INTERVAL_SCORES}


def _trained(fit: Callable[..., Posterior], **extra: Callable[[Any, str], Any]) -> FitFn:
    """Adapter: an optimisation-based ``fit_*`` with estimator-derived extra arguments."""

    def fit_fn(est, network, model, scales, Xs, target, key, where, validation_data=None):
        fraction = resolve_validation_fraction(est.validation_fraction, Xs.shape[0], where)
        calibrate = validation_data is None and fraction is not None and _regression(model)
        if calibrate:  # held out here, as train_model would: the noise is set on them after
            Xs, target, validation_data = hold_out(
                Xs, target, fraction, jax.random.split(key, 3)[1], where, EARLY_STOPPING_FIX
            )
        if validation_data is None:
            settings = training_settings(est, Xs.shape[0], where)
        else:  # rows the caller held out as validation_fraction would: early stopping uses them
            n_data = Xs.shape[0] + validation_data[0].shape[0]
            settings = training_settings(est, n_data, where)
            settings = dataclasses.replace(settings, validation_data=validation_data)
        kwargs = {name: get(est, where) for name, get in extra.items()}
        post = fit(
            key,
            model,
            lambda k: network.init(k, Xs.shape[1]),
            jnp.asarray(Xs),
            jnp.asarray(target),
            settings,
            **kwargs,
        )
        if calibrate:
            post = calibrate_noise(post, *validation_data, jax.random.fold_in(key, 3))
        return post

    return fit_fn


LAPLACE_STRUCTURES = ("kron", "diag", "full", "lowrank")
LAPLACE_SUBSETS = ("all", "last_layer")
LAPLACE_TUNING = ("auto", "marglik", "validation")
PRED_TYPES = ("glm", "nn")
TUNE_FRACTION = 0.1  # rows held out by Laplace(tune="validation")


def _fit_laplace(est, network, model, scales, Xs, target, key, where) -> Posterior:
    """MAP, then a Laplace approximation around it, its prior precision (and noise) tuned by
    the marginal likelihood and, where rows are held out, checked on them (``tune``)."""
    structure = check_choice(
        est.hessian_structure, name="hessian_structure", where=where, allowed=LAPLACE_STRUCTURES
    )
    subset = check_choice(
        est.subset_of_weights, name="subset_of_weights", where=where, allowed=LAPLACE_SUBSETS
    )
    pred_type = check_choice(est.pred_type, name="pred_type", where=where, allowed=PRED_TYPES)
    rank = check_positive_int(est.rank, name="rank", where=where)
    tune = check_choice(
        getattr(est, "tune", "marglik"), name="tune", where=where, allowed=LAPLACE_TUNING
    )  # models saved before 'tune' existed were tuned by the marginal likelihood
    # The MAP is the one MAP(training=...) fits with the same key (same init, minibatches
    # and early-stopping rows), so Laplace is compared with that very network.
    laplace_key = jax.random.fold_in(key, 1)
    early_stopping = resolve_validation_fraction(est.validation_fraction, Xs.shape[0], where)
    val_data = map_val = None
    if tune == "validation" or (tune == "auto" and early_stopping is not None):
        # The rows early stopping holds out are the rows the prior precision is validated on.
        fraction = TUNE_FRACTION if early_stopping is None else early_stopping
        split_key = jax.random.split(key, 3)[1]  # the key train_model splits the rows with
        Xs, target, val_data = hold_out(Xs, target, fraction, split_key, where, TUNE_FIX)
        map_val = val_data if early_stopping is not None else None
    map_post = _trained(fit_map)(
        est, network, model, scales, Xs, target, key, where, validation_data=map_val
    )
    mask, laplace_subset = None, subset
    if subset == "last_layer" and isinstance(network, NetworkAdapter):
        # A user's network: its last layer found from the computation (any framework).
        mask, laplace_subset = last_layer_mask(network, tuple(Xs.shape[1:]), where), "subnetwork"
    post = fit_laplace(
        model,
        map_post,
        jnp.asarray(Xs, dtype=jnp.float32),
        jnp.asarray(target),
        hessian_structure=structure,
        subset_of_weights=laplace_subset,
        subnetwork_mask=mask,
        pred_type=pred_type,
        tune={"marglik": "marglik", "validation": "gridsearch"}.get(
            tune, "marglik" if val_data is None else "validated"
        ),
        val_data=val_data,
        rank=rank,
        batch_size=min(check_positive_int(est.batch_size, name="batch_size", where=where), 256),
        rng_key=laplace_key,
        devices=resolve_devices(est.devices, where=where),
    )
    if val_data is not None and _regression(model):  # the rows the prior precision was tuned on
        post = held_out_interval_scores(post, *val_data, jax.random.fold_in(key, 4))
    # The MAP's training record (epochs, losses) beside the Laplace fit's own info.
    post.info.update(_map_record(map_post, post))
    post.info["subset_of_weights"] = subset
    post.info["tune"] = tune
    return post


def _dropout_rate(est, where):
    return check_fraction(est.dropout_rate, name="dropout_rate", where=where, zero_allowed=True)


def _vi_setting(check: Callable[[Any, str, str], Any], name: str) -> Callable[[Any, str], Any]:
    """One of px.methods.VI's own settings, checked; its default where the settings lack it."""
    default = VI().get_params(deep=False)[name]
    return lambda est, where: check(getattr(est, name, default), name, where)


def _positive(value, name, where):
    return check_positive_float(value, name=name, where=where)


def _fraction_or_one(value, name, where):
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 <= value <= 1
    if not ok:
        raise ValueError(
            f"The '{name}' parameter of {where} must be a float in [0, 1] (a share of the "
            f"optimiser steps). Got {value!r}."
        )
    return float(value)


VI_SETTINGS: dict[str, Callable[[Any, str], Any]] = {
    "init": _vi_setting(lambda v, n, w: check_choice(v, name=n, where=w, allowed=VI_INITS), "init"),
    "init_scale": _vi_setting(_positive, "init_scale"),
    "kl_weight": _vi_setting(_positive, "kl_weight"),
    "kl_warmup": _vi_setting(_fraction_or_one, "kl_warmup"),
    "num_mc_samples": _vi_setting(
        lambda v, n, w: check_positive_int(v, name=n, where=w), "num_mc_samples"
    ),
}


FITTERS: dict[NetworkMethod, FitFn] = {
    NetworkMethod.NUTS: _fit_nuts,
    NetworkMethod.NUTS_LAST_LAYER: _fit_nuts_last_layer,
    NetworkMethod.MALA: _fit_mala,
    NetworkMethod.SWAG: _trained(
        fit_swag,
        swa_learning_rate=lambda est, where: (
            "auto"
            if isinstance(est.swa_learning_rate, str) and est.swa_learning_rate == "auto"
            else check_positive_float(
                est.swa_learning_rate,
                name="swa_learning_rate",
                where=where,
                example="'auto'",
                also="'auto' or ",
            )
        ),
        num_collections=lambda est, where: check_positive_int(
            est.num_collections, name="num_collections", where=where, minimum=2
        ),
        collect_every=lambda est, where: check_positive_int(
            est.collect_every, name="collect_every", where=where
        ),
        max_rank=lambda est, where: check_positive_int(est.max_rank, name="max_rank", where=where),
    ),
    NetworkMethod.SGLD: _fit_sgmcmc("sgld"),
    NetworkMethod.SGHMC: _fit_sgmcmc("sghmc"),
    NetworkMethod.CSGMCMC: _fit_sgmcmc("csgmcmc"),
    NetworkMethod.MAP: _trained(fit_map),
    NetworkMethod.LAPLACE: _fit_laplace,
    NetworkMethod.VI: _trained(fit_vi, family=lambda est, where: "meanfield", **VI_SETTINGS),
    NetworkMethod.VI_LOWRANK: _trained(
        fit_vi,
        family=lambda est, where: "lowrank",
        rank=lambda est, where: check_positive_int(est.rank, name="rank", where=where),
        **VI_SETTINGS,
    ),
    NetworkMethod.MC_DROPOUT: _trained(fit_mc_dropout, dropout_rate=_dropout_rate),
    NetworkMethod.IVON: _trained(fit_ivon, **ivon_option_readers()),
    NetworkMethod.ENSEMBLE: _trained(
        fit_ensemble,
        num_members=lambda est, where: check_positive_int(
            est.n_members, name="n_members", where=where
        ),
    ),
}


def fit_network_posterior(
    est: Any,
    method: NetworkMethod,
    network: MLP,
    scales: tuple[float, ...],
    task: str,
    likelihood: str,
    Xs: np.ndarray,
    target: np.ndarray,
    key: PRNGKey,
    where: str,
) -> Posterior:
    """Dispatch to the method's fit function."""
    family = check_choice(est.prior, name="prior", where=where, allowed=FAMILIES)
    model = network_model(network, task, likelihood, WeightPrior(family, scales))
    if model.state is not None and method not in BATCHNORM_METHODS:
        raise ValueError(
            f"The 'method' parameter of {where}: this network has BatchNorm, which MAP, "
            "Ensemble, Laplace and SWAG support (trained on each minibatch's statistics, then "
            "evaluated with the statistics of all training inputs at the trained weights), "
            "and NUTS on the last layer alone (px.methods.NUTS(subset='last_layer'), at the "
            f"MAP's statistics). Got method={method.value!r}: a sampler or a variational family "
            "would need the statistics to move with every weight draw, which they do not yet. "
            "Use one of those methods, or nnx.LayerNorm instead of BatchNorm."
        )
    return FITTERS[method](est, network, model, scales, Xs, target, key, where)


BATCHNORM_METHODS = (
    NetworkMethod.MAP,
    NetworkMethod.ENSEMBLE,
    NetworkMethod.LAPLACE,
    NetworkMethod.SWAG,
    NetworkMethod.NUTS_LAST_LAYER,  # the statistics stay the MAP's, as its features do
)


FOLD_METHODS = (NetworkMethod.MAP, NetworkMethod.ENSEMBLE)


def fit_network_folds(
    est: Any,
    method: NetworkMethod,
    network: MLP,
    scales: tuple[float, ...],
    task: str,
    likelihood: str,
    Xs: np.ndarray,
    target: np.ndarray,
    key: PRNGKey,
    where: str,
) -> list[Posterior] | None:
    """One posterior per training set (``Xs`` (K, N, ...), ``target`` (K, N)), trained in one
    program, for MAP and ensembles; ``None`` where that does not apply (other methods,
    BatchNorm, a validation split, checkpoints) and the sets are fitted one by one."""
    if method not in FOLD_METHODS:
        return None
    if resolve_validation_fraction(est.validation_fraction, Xs.shape[1], where) is not None:
        return None
    if getattr(est, "checkpoint_dir", None) is not None:
        return None
    family = check_choice(est.prior, name="prior", where=where, allowed=FAMILIES)
    model = network_model(network, task, likelihood, WeightPrior(family, scales))
    if model.state is not None:
        return None
    settings = training_settings(est, Xs.shape[1], where)
    num_members = None
    if method is NetworkMethod.ENSEMBLE:
        num_members = check_positive_int(est.n_members, name="n_members", where=where)
    return fit_on_folds(
        key,
        model,
        lambda k: network.init(k, Xs.shape[2]),
        jnp.asarray(Xs),
        jnp.asarray(target),
        settings,
        num_members,
    )


def is_sampled(method: NetworkMethod) -> bool:
    """Whether the method gives MCMC chains (R-hat / ESS apply)."""
    return method in (
        NetworkMethod.NUTS,
        NetworkMethod.NUTS_LAST_LAYER,
        NetworkMethod.MALA,
        NetworkMethod.SGLD,
        NetworkMethod.SGHMC,
        NetworkMethod.CSGMCMC,
    )


__all__ = [
    "FITTERS",
    "LIKELIHOODS",
    "FOLD_METHODS",
    "fit_network_folds",
    "fit_network_posterior",
    "is_sampled",
    "n_outputs",
    "network_model",
]
