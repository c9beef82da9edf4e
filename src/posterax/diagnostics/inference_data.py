"""Export a :class:`Posterior` to ArviZ ``InferenceData`` and read R-hat / ESS from ArviZ."""

from __future__ import annotations

from typing import Any

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np

from posterax.base import Posterior
from posterax.diagnostics.function_space import split_single_chain
from posterax.types import PRNGKey


def _flat_names(params: dict) -> dict[str, Any]:
    """Nested params (e.g. an MLP's list of layers) -> flat ``{"net[0].w": array, ...}``."""
    flat = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        parts = []
        for entry in path:
            if isinstance(entry, jax.tree_util.SequenceKey):
                parts.append(f"[{entry.idx}]")
            else:
                parts.append("." + str(getattr(entry, "key", getattr(entry, "name", entry))))
        flat["".join(parts).lstrip(".")] = leaf
    return flat


def _by_chain(posterior: Posterior, rng_key: PRNGKey, n_draws: int) -> dict[str, np.ndarray]:
    """Parameter draws shaped ``(chain, draw, ...)`` with flat names."""
    params = posterior.sample(rng_key, None if posterior.draws is not None else n_draws)
    chains, per_chain = posterior.chain_shape or (1, jax.tree_util.tree_leaves(params)[0].shape[0])
    return {
        name: np.asarray(value).reshape((chains, per_chain, *np.shape(value)[1:]))
        for name, value in _flat_names(params).items()
    }


def to_inference_data(
    posterior: Posterior,
    X: Any = None,
    y: Any = None,
    *,
    rng_key: PRNGKey | None = None,
    n_draws: int = 2000,
    target_scale: tuple[float, float] = (0.0, 1.0),
) -> az.InferenceData:
    """ArviZ ``InferenceData`` with groups posterior, sample_stats (MCMC only) and, when ``X``
    and ``y`` are given, log_likelihood, posterior_predictive and observed_data.

    Dims are ``(chain, draw, ...)``; a distribution posterior is sampled ``n_draws`` times as
    one chain. Nested params get flat names (``net[0].w``). When the model was fitted to a
    standardised target ``y_std = (y - shift) / scale``, pass ``y_std`` and
    ``target_scale=(shift, scale)``: observed data, posterior predictive and log-likelihood are
    then reported in the original units.
    """
    key = jax.random.key(0) if rng_key is None else rng_key
    key_params, key_pp = jax.random.split(key)
    posterior_group = _by_chain(posterior, key_params, n_draws)
    params = posterior.sample(key_params, None if posterior.draws is not None else n_draws)
    groups: dict[str, Any] = {"posterior": posterior_group}
    stats = posterior.info.get("sample_stats")
    if stats:
        groups["sample_stats"] = {name: np.asarray(value) for name, value in stats.items()}
    if X is not None and y is not None:
        chains, per_chain = next(iter(posterior_group.values())).shape[:2]
        flat = jax.tree_util.tree_map(jnp.asarray, params)
        X_arr, y_arr = jnp.asarray(X), jnp.asarray(y)
        likelihood = posterior.likelihood

        def per_draw(p):
            out = posterior.apply_fn(p, X_arr)
            return likelihood.log_prob(p, out, y_arr), likelihood.predictive(p, out)

        loglik, entries = jax.vmap(per_draw)(flat)
        shape = (chains, per_chain, -1)
        shift, scale = target_scale
        # Densities of the original-unit target: change of variables y = shift + scale * y_std.
        loglik = np.asarray(loglik) - np.log(scale)
        groups["log_likelihood"] = {"obs": loglik.reshape(shape)}
        if likelihood.task == "regression":
            eps = jax.random.normal(key_pp, entries["mean"].shape, entries["mean"].dtype)
            y_rep = shift + scale * (entries["mean"] + entries["scale"] * eps)
            groups["posterior_predictive"] = {"obs": np.asarray(y_rep).reshape(shape)}
        else:
            logits = entries["logits"]
            y_rep = jax.random.categorical(key_pp, logits, axis=-1)
            groups["posterior_predictive"] = {"obs": np.asarray(y_rep).reshape(shape)}
        observed = np.asarray(y)
        groups["observed_data"] = {
            "obs": shift + scale * observed if scale != 1.0 or shift else observed
        }
    return az.from_dict(**groups)


def parameter_diagnostics(idata: az.InferenceData) -> dict[str, dict[str, float]]:
    """R-hat and bulk/tail ESS per scalar parameter, from ArviZ (``coef[0]``-style names).

    With a single chain, R-hat is computed on its two halves treated as two chains.
    """
    posterior = idata.posterior
    rhat_input = az.convert_to_dataset(
        {k: split_single_chain(np.asarray(v)) for k, v in posterior.data_vars.items()}
    )
    rhat = az.rhat(rhat_input)
    ess_bulk = az.ess(posterior, method="bulk")
    ess_tail = az.ess(posterior, method="tail")
    out: dict[str, dict[str, float]] = {}
    for name in posterior.data_vars:
        values = np.atleast_1d(np.asarray(rhat[name]))
        bulk = np.atleast_1d(np.asarray(ess_bulk[name]))
        tail = np.atleast_1d(np.asarray(ess_tail[name]))
        shape = np.asarray(rhat[name]).shape
        for i in range(values.size):
            index = ",".join(str(j) for j in np.unravel_index(i, shape)) if shape else ""
            label = f"{name}[{index}]" if shape else name
            out[label] = {
                "r_hat": float(values.ravel()[i]),
                "ess_bulk": float(bulk.ravel()[i]),
                "ess_tail": float(tail.ravel()[i]),
            }
    return out


def count_divergences(posterior: Posterior) -> int:
    stats = posterior.info.get("sample_stats") or {}
    diverging = stats.get("diverging")
    return 0 if diverging is None else int(np.sum(diverging))


__all__ = ["count_divergences", "parameter_diagnostics", "to_inference_data"]
