"""``fit_laplace``: MAP params + data -> a Laplace :class:`~posterax.Posterior`.

The steps are separate functions for JAX users: :func:`laplace_state` (select weights, check the
memory estimate, compute the curvature once), :func:`~.evidence.tune_marglik` or
:func:`~.gridsearch.tune_gridsearch` (hyperparameters, re-using the curvature) and
:func:`laplace_posterior` (the distribution for given hyperparameters).
"""

from __future__ import annotations

import functools
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from posterax.base import Likelihood, Posterior
from posterax.inference.devices import (
    mesh_for,
    replicated,
    resolve_devices,
)
from posterax.inference.laplace.checks import (
    WHERE,
    allowed_value,
    check_data,
    check_targets,
    positive_float,
    positive_int,
)
from posterax.inference.laplace.curvature import (
    STRUCTURES,
    DiagCurvature,
    data_batches,
    full_curvature,
    generic_curvature,
    ggn_matmat,
    lowrank_from_matmat,
)
from posterax.inference.laplace.evidence import (
    PRIOR_STRUCTURES,
    LaplaceState,
    log_marginal_likelihood,
    tune_marglik,
)
from posterax.inference.laplace.gridsearch import tune_gridsearch, tune_validated
from posterax.inference.laplace.kfac import (
    diag_from_factors,
    kron_from_factors,
    layer_positions,
    mlp_factors,
    network_kron,
    tapped_network,
)
from posterax.inference.laplace.memory import check_memory, estimate_memory_bytes
from posterax.inference.laplace.output_hessian import (
    CURVATURES,
    NOISE_POWER,
    is_gaussian,
    outputs_2d,
)
from posterax.inference.laplace.posterior import LaplaceGaussian, posterior_factor
from posterax.inference.laplace.predictive import linearized_apply
from posterax.inference.laplace.subset import (
    SUBSETS,
    WeightSubset,
    make_subset,
    prior_vector,
    top_k_subset,
)
from posterax.inference.network_model import NetworkModel
from posterax.inference.noise_calibration import held_out_sigma
from posterax.models.mlp import constrain
from posterax.types import ArrayTree, PRNGKey

PRED_TYPES = ("glm", "nn")
TUNE = ("marglik", "gridsearch", "validated", None)
SUBNETWORK_SCORES = ("ggn", "variance")


def map_params_of(map_params: Any) -> ArrayTree:
    """Constrained MAP params ``{"net", "sigma"?}`` from unconstrained params, constrained
    params or a one-draw MAP :class:`~posterax.Posterior` (from ``fit_map``)."""
    if isinstance(map_params, Posterior):
        if map_params.draws is None or map_params.num_draws != 1:
            raise ValueError(
                f"The 'map_params' parameter of {WHERE} must be MAP params or a one-draw MAP "
                "Posterior (from fit_map). Got a Posterior with "
                f"{map_params.num_draws or 'a distribution, not'} draws."
            )
        return jax.tree_util.tree_map(lambda leaf: leaf[0], map_params.draws)
    if not isinstance(map_params, dict) or "net" not in map_params:
        raise ValueError(
            f"The 'map_params' parameter of {WHERE} must be a dict with the network weights "
            f"under 'net' (and 'log_sigma' or 'sigma' for a Gaussian). Got {type(map_params)}."
        )
    if "log_sigma" in map_params:
        extras = {k: v for k, v in map_params.items() if k not in ("net", "log_sigma")}
        return {**constrain(map_params), **extras}
    return dict(map_params)


def default_prior_precision(model: NetworkModel) -> np.ndarray:
    """The Gaussian prior precision matching the MAP's weight prior, one per layer or one in
    all: ``1 / scale^2`` (Normal) or ``1 / (2 b^2)`` (Laplace, variance-matched)."""
    scales = np.asarray(model.prior.scales, dtype=float)
    var = scales**2 if model.prior.family == "normal" else 2 * scales**2
    return 1 / var if var.size > 1 else np.asarray(1 / var[0])


@functools.partial(jax.jit, static_argnames=("apply_fn", "likelihood", "squeeze"))
def _map_fit_terms(params, Xb, yb, wb, *, apply_fn, likelihood, squeeze):
    """Residual sum of squares and log-likelihood at the MAP, over batches."""

    def body(acc, batch):
        X, y, w = batch
        f = outputs_2d(apply_fn, params, X)
        ll = likelihood.log_prob(params, f[:, 0] if squeeze else f, y)
        sse = jnp.sum(w * (y - f[:, 0]) ** 2) if f.shape[1] == 1 else jnp.zeros((), Xb.dtype)
        return (acc[0] + sse, acc[1] + jnp.sum(w * ll)), None

    zero = jnp.zeros((), Xb.dtype)
    return jax.lax.scan(body, (zero, zero), (Xb, yb, wb))[0]


def laplace_state(
    apply_fn,
    likelihood: Likelihood,
    map_params: ArrayTree,
    X: jax.Array,
    y: jax.Array,
    *,
    hessian_structure: str = "kron",
    subset_of_weights: str = "all",
    curvature: str = "ggn",
    subnetwork_mask: ArrayTree | None = None,
    n_subnetwork: int | None = None,
    subnetwork_score: str = "ggn",
    prior_precision: Any = 1.0,
    rank: int = 20,
    batch_size: int = 256,
    max_memory_bytes: int | None = None,
    rng_key: PRNGKey | None = None,
    devices: Any = None,
) -> tuple[LaplaceState, dict[str, Any]]:
    """Select the weights and compute the curvature at the MAP (once).

    ``map_params`` are constrained (``{"net", "sigma"?}``). Returns the state and a dict with the
    memory estimate and limit (bytes) and the seconds taken.
    """
    start = time.perf_counter()
    X, y = check_data(X, y)
    net = map_params["net"]
    extras = {k: v for k, v in map_params.items() if k != "net"}
    squeeze = jax.eval_shape(lambda p: apply_fn(p, X[:1]), map_params).ndim == 1
    n_outputs = 1 if squeeze else jax.eval_shape(lambda p: apply_fn(p, X[:1]), map_params).shape[1]
    check_targets(y, likelihood, n_outputs)
    network = tapped_network(apply_fn)
    subset = make_subset(
        net,
        "all" if n_subnetwork is not None and subnetwork_mask is None else subset_of_weights,
        subnetwork_mask,
    )
    Xb, yb, wb = data_batches(X, y, batch_size)
    # Data parallel: each batch's rows split over the devices, the sums reduced across them.
    mesh = mesh_for(Xb.shape[1], resolve_devices(devices, where=WHERE))
    Xb, yb, wb, net, extras = replicated(mesh, (Xb, yb, wb, net, extras))
    kw = {"apply_fn": apply_fn, "likelihood": likelihood, "curvature": curvature}
    generic = {**kw, "unravel": subset.unravel, "squeeze": squeeze, "mesh": mesh}
    positions = subset.positions()
    layer_pos = layer_positions(positions) if network is not None else []

    def mlp_diag(sub: WeightSubset):
        factors = mlp_factors(
            net,
            extras,
            Xb,
            yb,
            wb,
            network=network,
            likelihood=likelihood,
            curvature=curvature,
            squeeze=squeeze,
            mesh=mesh,
        )
        return factors, diag_from_factors(factors, layer_pos, sub.index, sub.n_all, X.dtype)

    def diag_of(sub: WeightSubset):
        if network is not None and curvature != "hessian":
            return mlp_diag(sub)[1]
        return generic_curvature(
            sub.map_flat, jnp.asarray(sub.index), extras, Xb, yb, wb, structure="diag", **generic
        )

    if subset_of_weights == "subnetwork" and subnetwork_mask is None:
        h = diag_of(subset)
        # Largest GGN diagonal (most data-determined) or largest diagonal-Laplace variance.
        scores = h if subnetwork_score == "ggn" else 1 / (h + prior_vector(prior_precision, subset))
        subset = top_k_subset(subset, scores, n_subnetwork)

    P = subset.size
    layer_shapes = [tuple(layer["w"].shape) for layer in net] if network is not None else []
    estimate = estimate_memory_bytes(
        hessian_structure,
        P,
        layer_shapes=layer_shapes,
        batch_size=min(batch_size, X.shape[0]),
        n_outputs=n_outputs,
        rank=rank,
        itemsize=X.dtype.itemsize,
        per_example_vjps=network is None or curvature == "hessian",
    )
    limit = check_memory(hessian_structure, subset.kind, estimate, P, max_memory_bytes)

    index = jnp.asarray(subset.index)
    fallback: dict[str, str] = {}
    if hessian_structure == "diag":
        curv: Any = DiagCurvature(diag_of(subset))
    elif hessian_structure == "full":
        curv = full_curvature(
            generic_curvature(
                subset.map_flat, index, extras, Xb, yb, wb, structure="full", **generic
            )
        )
    elif hessian_structure == "kron":
        if network is not None:
            factors, _ = mlp_diag(subset)
            curv = kron_from_factors(
                factors, layer_pos, subset.selected_position_of(), X.shape[0], P, X.dtype
            )
        else:
            curv, fallback = network_kron(
                net, extras, Xb, yb, wb, subset, X, apply_fn, likelihood, curvature, squeeze,
                mesh, lambda: diag_of(subset), WHERE,
            )  # fmt: skip
    else:
        key = jax.random.key(0) if rng_key is None else rng_key

        def matmat(V):
            return ggn_matmat(subset.map_flat, index, extras, Xb, yb, wb, V, **generic)

        curv = lowrank_from_matmat(matmat, P, rank, key)

    sse, log_lik_map = _map_fit_terms(
        map_params, Xb, yb, wb, apply_fn=apply_fn, likelihood=likelihood, squeeze=squeeze
    )
    state = LaplaceState(
        curvature=curv,
        subset=subset,
        structure=hessian_structure,
        curvature_kind=curvature,
        noise_power=NOISE_POWER[curvature] if is_gaussian(likelihood) else 0,
        n_data=int(X.shape[0]),
        sse=sse,
        log_lik_map=log_lik_map,
        apply_fn=apply_fn,
        likelihood=likelihood,
        extras=extras,
    )
    jax.block_until_ready(jax.tree_util.tree_leaves(curv))
    seconds = time.perf_counter() - start
    meta = {"memory_estimate_bytes": estimate, "memory_limit_bytes": limit, "s": seconds}
    return state, {**meta, "kron_fallback": fallback}


def _check_kron_prior(state: LaplaceState, prior: jax.Array) -> None:
    if state.structure != "kron" or prior.ndim == 0:
        return
    for block in state.curvature.blocks:
        values = np.asarray(prior)[np.asarray(block.pos)]
        if not np.allclose(values, values[0]):
            raise ValueError(
                f"The 'prior_precision' parameter of {WHERE}: hessian_structure='kron' needs one "
                "prior precision per layer (constant within a layer). Got a diagonal prior that "
                "varies within a layer. Pass a float or one value per layer, or use 'diag'/'full'."
            )


def laplace_posterior(
    state: LaplaceState, prior_precision: Any, sigma_noise: Any = None
) -> LaplaceGaussian:
    """The Laplace distribution for a prior precision (scalar or per selected weight) and noise
    scale (homoscedastic Gaussian; default the MAP's)."""
    prior = jnp.asarray(prior_precision, dtype=state.subset.map_flat.dtype)
    _check_kron_prior(state, prior)
    extras = dict(state.extras)
    scale = jnp.ones((), prior.dtype)
    if state.has_noise:
        sigma = jnp.asarray(extras["sigma"] if sigma_noise is None else sigma_noise, prior.dtype)
        extras["sigma"] = sigma
        scale = sigma ** (-state.noise_power)
    factor = posterior_factor(state.curvature, prior, scale)
    return LaplaceGaussian(
        state.subset.map_flat,
        jnp.asarray(state.subset.index),
        factor,
        extras,
        state.subset.unravel,
        state.structure,
    )


def _prior_arg(prior_precision: Any, subset: WeightSubset) -> jax.Array:
    """A scalar stays a scalar (fast evidence for 'full'); anything else a per-weight vector."""
    vec = prior_vector(prior_precision, subset)
    if np.ndim(prior_precision) == 0 and not isinstance(prior_precision, list | tuple | dict):
        return vec[0]
    return vec


def fit_laplace(
    model: NetworkModel,
    map_params: Any,
    X: Any,
    y: Any,
    *,
    hessian_structure: str = "kron",
    subset_of_weights: str = "all",
    curvature: str = "ggn",
    prior_precision: Any = None,
    sigma_noise: float | None = None,
    pred_type: str = "glm",
    tune: str | None = "marglik",
    prior_structure: str = "scalar",
    tune_noise: bool = True,
    tune_steps: int = 300,
    tune_learning_rate: float = 0.1,
    val_data: tuple[Any, Any] | None = None,
    grid: Any = None,
    subnetwork_mask: ArrayTree | None = None,
    n_subnetwork: int | None = None,
    subnetwork_score: str = "ggn",
    rank: int = 20,
    batch_size: int = 256,
    max_memory_bytes: int | None = None,
    rng_key: PRNGKey | None = None,
    return_state: bool = False,
    devices: Any = None,
) -> Posterior | tuple[Posterior, LaplaceState]:
    """Laplace approximation around MAP weights.

    Parameters
    ----------
    model : NetworkModel
        ``apply_fn`` + likelihood (+ the weight prior, used for the default prior precision).
    map_params : dict or Posterior
        MAP params (``{"net", "log_sigma"}`` or ``{"net", "sigma"}``) or ``fit_map``'s result.
    X, y : arrays (N, D), (N,)
        The training data (targets; class indices for classification).
    hessian_structure : {"kron", "diag", "full", "lowrank"}
    subset_of_weights : {"all", "last_layer", "subnetwork"}
    curvature : {"ggn", "ef", "hessian"}
        Generalised Gauss–Newton, empirical Fisher or exact Hessian (``"full"``/``"diag"``).
    prior_precision : float, per-layer array, per-weight array or pytree, optional
        Default: matched to ``model.prior`` (``1 / scale^2``). The start of tuning.
    sigma_noise : float, optional
        Observation noise sd (homoscedastic Gaussian); default the MAP's learned ``sigma``.
    pred_type : {"glm", "nn"}
        ``"glm"``: the posterior's ``apply_fn`` is the network linearised at the MAP.
    tune : {"marglik", "gridsearch", "validated", None}
        Maximise the evidence (prior precision and, unless ``tune_noise=False``, sigma), or
        minimise the validation NLL over ``grid`` (scalar prior precisions; needs
        ``val_data``; the default grid ends at the MAP limit), or ``"validated"``: the
        evidence checked on ``val_data`` (:func:`~.gridsearch.tune_validated`; which won is
        ``info["tune_choice"]``), or keep the given values.
    prior_structure : {"scalar", "layer"}
        One prior precision, or one per layer, when tuning by marginal likelihood.
    subnetwork_mask, n_subnetwork, subnetwork_score
        ``"subnetwork"``: a boolean mask pytree, or the top ``n_subnetwork`` weights by
        ``"ggn"`` diagonal or diagonal-Laplace ``"variance"``.
    rank : int
        Eigenpairs kept by ``"lowrank"``.
    batch_size : int
        Rows per curvature minibatch (memory ∝ batch size, not N).
    max_memory_bytes : int, optional
        Refuse structures estimated above this (default: half the available RAM).
    rng_key : PRNGKey, optional
        For the ``"lowrank"`` sketch and grid-search Monte Carlo.
    return_state : bool
        Also return the :class:`LaplaceState` (for :func:`log_marginal_likelihood`).
    devices : None, int or list of jax.Device
        The curvature minibatches' rows are split over these devices (data parallel; default
        all local devices); results equal the one-device fit up to float rounding.

    Returns
    -------
    Posterior
        ``distribution`` is a :class:`LaplaceGaussian`; ``info`` holds the prior precision,
        sigma, log marginal likelihood, structure, memory estimate and timings.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from posterax.models import MLP, RegressionHead, GaussianLikelihood
    >>> net = MLP((), "tanh", 1)
    >>> model = NetworkModel(RegressionHead(net), GaussianLikelihood())
    >>> X = jnp.linspace(-1, 1, 50)[:, None]; y = 2 * X[:, 0]
    >>> params = {"net": [{"w": jnp.full((1, 1), 2.0), "b": jnp.zeros(1)}], "sigma": 0.1}
    >>> post = fit_laplace(model, params, X, y, hessian_structure="full", tune=None)
    >>> post.info["hessian_structure"], post.sample(jax.random.key(0), 3)["net"][0]["w"].shape
    ('full', (3, 1, 1))
    """
    total_start = time.perf_counter()
    if not isinstance(model, NetworkModel):
        raise ValueError(
            f"The 'model' parameter of {WHERE} must be a NetworkModel(apply_fn, likelihood, "
            f"prior). Got {type(model).__name__}."
        )
    allowed_value(hessian_structure, "hessian_structure", STRUCTURES)
    allowed_value(subset_of_weights, "subset_of_weights", SUBSETS)
    allowed_value(curvature, "curvature", CURVATURES)
    allowed_value(pred_type, "pred_type", PRED_TYPES)
    allowed_value(tune, "tune", TUNE)
    allowed_value(prior_structure, "prior_structure", PRIOR_STRUCTURES)
    allowed_value(subnetwork_score, "subnetwork_score", SUBNETWORK_SCORES)
    batch_size = positive_int(batch_size, "batch_size")
    rank = positive_int(rank, "rank")
    tune_steps = positive_int(tune_steps, "tune_steps")
    tune_learning_rate = positive_float(tune_learning_rate, "tune_learning_rate")
    if curvature == "hessian" and hessian_structure in ("kron", "lowrank"):
        raise ValueError(
            f"The 'curvature' parameter of {WHERE}: 'hessian' (exact Hessian) is available for "
            f"hessian_structure='full' or 'diag'. Got hessian_structure={hessian_structure!r}. "
            "Use curvature='ggn' for 'kron' or 'lowrank'."
        )
    if tune in ("gridsearch", "validated") and val_data is None:
        raise ValueError(
            f"The 'val_data' parameter of {WHERE} is required when tune={tune!r}. Got "
            "None. Pass val_data=(X_val, y_val), or tune='marglik'."
        )
    if n_subnetwork is not None and subset_of_weights != "subnetwork":
        raise ValueError(
            f"The 'n_subnetwork' parameter of {WHERE} applies to subset_of_weights="
            f"'subnetwork'. Got subset_of_weights={subset_of_weights!r}."
        )
    if sigma_noise is not None:
        sigma_noise = positive_float(sigma_noise, "sigma_noise")
    params = map_params_of(map_params)
    if is_gaussian(model.likelihood) and "sigma" not in params and sigma_noise is None:
        raise ValueError(
            f"The 'map_params' parameter of {WHERE} has no noise ('log_sigma' or 'sigma') for a "
            "Gaussian likelihood. Pass the params from fit_map, or sigma_noise=..."
        )
    if sigma_noise is not None and is_gaussian(model.likelihood):
        params["sigma"] = jnp.asarray(sigma_noise, jnp.result_type(float))
    init_prior = default_prior_precision(model) if prior_precision is None else prior_precision

    state, meta = laplace_state(
        model.apply_fn,
        model.likelihood,
        params,
        X,
        y,
        hessian_structure=hessian_structure,
        subset_of_weights=subset_of_weights,
        curvature=curvature,
        subnetwork_mask=subnetwork_mask,
        n_subnetwork=n_subnetwork,
        subnetwork_score=subnetwork_score,
        prior_precision=init_prior,
        rank=rank,
        batch_size=batch_size,
        max_memory_bytes=max_memory_bytes,
        rng_key=rng_key,
        devices=devices,
    )
    prior = _prior_arg(init_prior, state.subset)
    sigma = state.extras.get("sigma")
    tune_start = time.perf_counter()
    history, choice = None, tune
    if tune in ("marglik", "validated"):
        tuned = tune_marglik(
            state,
            prior,
            prior_structure=prior_structure,
            tune_noise=tune_noise,
            steps=tune_steps,
            learning_rate=tune_learning_rate,
        )
        map_sigma = sigma
        prior, history = tuned["prior_vector"], tuned["history"]
        sigma = tuned["sigma"] if tuned["sigma"] is not None else sigma
        if tune == "validated":
            X_val, y_val = check_data(*val_data, name="val_data")
            prior, sigma, choice = tune_validated(
                state,
                X_val,
                y_val,
                (prior, sigma),
                held_out_sigma(model.apply_fn, params, map_sigma, X_val, y_val),
                grid,
                pred_type=pred_type,
                posterior_for=laplace_posterior,
                rng_key=rng_key,
            )
    elif tune == "gridsearch":
        X_val, y_val = check_data(*val_data, name="val_data")
        prior = tune_gridsearch(
            state,
            X_val,
            y_val,
            grid,
            pred_type=pred_type,
            sigma=sigma,
            posterior_for=laplace_posterior,
            rng_key=rng_key,
        )
    tune_seconds = time.perf_counter() - tune_start
    dist = laplace_posterior(state, prior, sigma)
    evidence = log_marginal_likelihood(state, prior, sigma)
    apply_fn = linearized_apply(model.apply_fn, params) if pred_type == "glm" else model.apply_fn
    reported_prior = np.asarray(prior)
    if reported_prior.ndim == 1 and prior_structure == "layer" and choice == "marglik":
        reported_prior = np.asarray(tuned["prior_precision"])
    info = {
        "method": "laplace",
        "hessian_structure": hessian_structure,
        "subset_of_weights": subset_of_weights,
        "curvature": curvature,
        "pred_type": pred_type,
        "tune": tune if tune is not None else "none",
        "tune_choice": choice if choice is not None else "none",
        "n_laplace_params": state.subset.size,
        "prior_precision": reported_prior,
        "sigma": None if sigma is None else float(sigma),
        "log_marginal_likelihood": float(evidence),
        "memory_estimate_bytes": int(meta["memory_estimate_bytes"]),
        "memory_limit_bytes": meta["memory_limit_bytes"],
        "kron_fallback": meta["kron_fallback"],
        "timing": {
            "curvature_s": meta["s"],
            "tune_s": tune_seconds,
            "total_s": time.perf_counter() - total_start,
        },
    }
    if history is not None:
        info["marglik_history"] = np.asarray(history)
    posterior = Posterior(apply_fn, model.likelihood, distribution=dist, info=info)
    return (posterior, state) if return_state else posterior


__all__ = [
    "PRED_TYPES",
    "TUNE",
    "default_prior_precision",
    "fit_laplace",
    "laplace_posterior",
    "laplace_state",
    "map_params_of",
]
