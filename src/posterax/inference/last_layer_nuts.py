"""Last-layer NUTS: the MAP network's features frozen, its last layer sampled exactly.

Every weight but the last layer's stays at the MAP; the last layer's weights and bias (and the
noise sd of a homoscedastic regression) are sampled by NUTS under the model's own prior and
likelihood, given the features the MAP network computes: the reference posterior on the last
layer (laplace-torch's ``subset_of_weights="last_layer"`` approximates this one with a
Gaussian).

The work per gradient is the last layer's alone. The outputs are affine in the last layer's
params ``theta`` (a matrix product plus a bias), so ``f(theta) = f(theta*) + J (theta - theta*)``
holds exactly; ``jax.linearize`` at the MAP runs the network up to the last layer once (its
residuals are the features) and leaves the map ``delta -> J delta``, a product with the
features, which NUTS then evaluates (and transposes for gradients) at every leapfrog step. The
affinity is checked at fit time on the data; where it fails (a nonlinearity or a norm layer
after the last matrix product, whose parameters belong to the last layer), every evaluation
runs the network with the last layer substituted: still exact, at a full forward pass.

NUTS runs in coordinates whitened by the Laplace approximation at the MAP (the inverse Hessian
of the last layer's log posterior: a fixed dense metric, which the window adaptation's diagonal
then refines); on the 8x8 digits CNN this cuts the leapfrog steps per draw about fourfold
against the diagonal metric alone.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from posterax.base import Posterior
from posterax.inference.chains import merge_chains
from posterax.inference.network_model import NetworkModel
from posterax.inference.nuts import sample_nuts
from posterax.inference.vi import Unraveler
from posterax.models.mlp import constrain
from posterax.networks.adapter import NetworkAdapter
from posterax.networks.last_layer import last_layer_mask
from posterax.types import ArrayTree, PRNGKey

START_JITTER = 0.1
"""Without whitening (above ``MAX_WHITENED`` coordinates), chains start at the MAP's last layer
(the mode of the last layer's posterior given the features, where the MAP's training
converged) plus uniform noise of this radius per coordinate."""

MAX_WHITENED = 4096
"""Largest last layer (+ noise) whose ``P x P`` Hessian is formed to whiten the coordinates."""

AFFINE_RTOL = 1e-4
"""Largest relative difference, at a random step from the MAP, between the network's outputs and
their linearisation for the outputs to count as affine in the last layer (float32 rounding
stays orders of magnitude below; a nonlinearity after the last layer orders above)."""


def last_layer_selection(network: Any, net: ArrayTree, input_shape: tuple[int, ...], where: str):
    """A boolean pytree like ``net``: ``True`` on the last layer's arrays. The built-in MLP's
    last layer is the last entry of its list of layers; a network of the user's is traced
    (:func:`~posterax.networks.last_layer.last_layer_mask`).

    Examples
    --------
    >>> import jax
    >>> from posterax.models import MLP
    >>> net = MLP((4,), "tanh", 2)
    >>> mask = last_layer_selection(net, net.init(jax.random.key(0), 3), (3,), "example")
    >>> mask
    [{'b': False, 'w': False}, {'b': True, 'w': True}]
    >>> selected(mask, net.init(jax.random.key(0), 3))[0]
    {'b': None, 'w': None}
    """
    if isinstance(network, NetworkAdapter):
        return last_layer_mask(network, tuple(input_shape), where)
    if isinstance(net, list | tuple) and net:
        last = len(net) - 1
        return [
            jax.tree_util.tree_map(lambda _, flag=i == last: flag, layer)
            for i, layer in enumerate(net)
        ]
    raise ValueError(
        f"The 'subset_of_weights' parameter of {where}: 'last_layer' needs the built-in MLP or a "
        f"network of your own (Flax, Equinox, px.networks.Functional). Got weights of type "
        f"{type(net).__name__}."
    )


def selected(mask: ArrayTree, tree: ArrayTree) -> ArrayTree:
    """``tree`` with the arrays outside the last layer replaced by ``None``."""
    return jax.tree_util.tree_map(lambda m, leaf: leaf if m else None, mask, tree)


def merged(mask: ArrayTree, last: ArrayTree, full: ArrayTree) -> ArrayTree:
    """``full`` with the last layer's arrays taken from ``last`` (a :func:`selected` tree)."""
    return jax.tree_util.tree_map(lambda m, s, f: s if m else f, mask, last, full)


@dataclasses.dataclass(frozen=True, eq=False)
class LastLayerApply:
    """``apply_fn`` of a last-layer posterior: draws hold the last layer (``net``, ``None``
    elsewhere) and the noise sd; everything else comes from the MAP (``frozen``: its weights
    ``net`` and BatchNorm statistics ``state``). Hashed by identity, as a compiled predictive's
    static argument. Under ``jax.vmap`` over draws the layers before the last are computed once:
    they do not depend on the draw."""

    apply_fn: Callable[[ArrayTree, jax.Array], jax.Array]
    frozen: ArrayTree
    mask: ArrayTree

    def __call__(self, params: ArrayTree, X: jax.Array) -> jax.Array:
        net = merged(self.mask, params["net"], self.frozen["net"])
        return self.apply_fn({**self.frozen, **params, "net": net}, X)

    @property
    def network(self) -> Any:
        """The wrapped head's network (what persistence and the estimators read)."""
        return self.apply_fn.network


def _substituted(apply_fn, mask, frozen, X, last):
    """Outputs with the last layer set to ``last``: a full forward pass."""
    return apply_fn({**frozen, "net": merged(mask, last, frozen["net"])}, X)


def _affine(f0, f_jvp, theta_map, last):
    """Outputs with the last layer set to ``last``, from the linearisation at the MAP."""
    delta = jax.tree_util.tree_map(jnp.subtract, last, theta_map)
    return f0 + f_jvp(delta)


def outputs_of_last_layer(
    apply_fn: Callable[[ArrayTree, jax.Array], jax.Array],
    frozen: ArrayTree,
    mask: ArrayTree,
    X: jax.Array,
    rng_key: PRNGKey,
) -> tuple[jax.tree_util.Partial, bool]:
    """``outputs(last)`` at the rows ``X`` as a function of the last layer (a
    :class:`jax.tree_util.Partial`, so it travels as data into the compiled sampler), and
    whether it is the linearisation (exact: the outputs were found affine in the last layer)
    rather than a forward pass with the last layer substituted."""
    theta_map = selected(mask, frozen["net"])
    substituted = jax.tree_util.Partial(functools.partial(_substituted, apply_fn, mask), frozen, X)
    # The known part (the network up to the last layer) runs op by op, once: a compiled call
    # inside the linear map would carry this context's mesh into the sampler's chains.
    f0, f_jvp = jax.linearize(substituted, theta_map)
    call = jax.jit(lambda fn, last: fn(last))  # arrays as arguments: nothing constant-folded
    leaves, treedef = jax.tree_util.tree_flatten(theta_map)
    keys = jax.random.split(rng_key, len(leaves))
    step = jax.tree_util.tree_unflatten(
        treedef,
        [jax.random.normal(k, jnp.shape(v), v.dtype) for k, v in zip(keys, leaves, strict=True)],
    )
    moved = jax.tree_util.tree_map(jnp.add, theta_map, step)
    direct, linear = call(substituted, moved), f0 + call(f_jvp, step)
    scale = 1.0 + float(jnp.max(jnp.abs(direct)))
    affine = bool(jnp.all(jnp.isfinite(linear))) and (
        float(jnp.max(jnp.abs(direct - linear))) <= AFFINE_RTOL * scale
    )
    if affine:
        return jax.tree_util.Partial(_affine, f0, f_jvp, theta_map), True
    return substituted, False


@dataclasses.dataclass(frozen=True)
class LastLayerDensity:
    """Unnormalised log posterior of the last layer (and ``log_sigma``) given the features:
    ``model``'s prior on the last layer's weights (the others are fixed, so their prior is a
    constant) and its likelihood of ``y`` at ``outputs(position["net"])``.

    Called with ``(z, outputs, y, shift, scale)`` it is the density of the whitened coordinates
    ``z`` of the flat position ``shift + scale @ z`` (``scale`` a matrix, or a vector acting
    elementwise); the Jacobian of that fixed linear map is a constant, so NUTS on ``z`` samples
    the same posterior."""

    model: NetworkModel
    unravel: Unraveler

    def log_density(self, position: ArrayTree, outputs: Callable[..., jax.Array], y: jax.Array):
        log_lik = self.model.likelihood.log_prob(constrain(position), outputs(position["net"]), y)
        return self.model.log_prior(position) + jnp.sum(log_lik)

    def __call__(self, z, outputs, y, shift, scale):
        flat = shift + (scale @ z if scale.ndim == 2 else scale * z)
        return self.log_density(self.unravel(flat), outputs, y)


def whitening(
    density: LastLayerDensity,
    flat_map: jax.Array,
    outputs: Any,
    y: jax.Array,
    floor: float,
    linear: bool = True,
) -> jax.Array:
    """``L`` with ``L L^T`` the inverse of the Hessian of the negative log density at the MAP
    (``flat_map``), eigenvalues raised to at least ``floor`` (the prior precision: a MAP short
    of the mode, or a likelihood that is not log-concave, can leave the Hessian indefinite):
    the covariance of the Laplace approximation, used as NUTS's (fixed) dense metric. ``P``
    Hessian-vector products, batched (8 at a time where ``outputs`` is not ``linear`` and each
    runs the whole network)."""
    size = flat_map.shape[0]
    n_values = int(np.prod(jax.eval_shape(outputs, density.unravel(flat_map)["net"]).shape))
    batch = int(max(1, min(size, 2**22 // max(1, n_values) if linear else 8)))

    @jax.jit
    def factor(flat_map, outputs, y):
        def negative(flat):
            return -density.log_density(density.unravel(flat), outputs, y)

        def hvp(v):
            return jax.jvp(jax.grad(negative), (flat_map,), (v,))[1]

        hessian = jax.lax.map(hvp, jnp.eye(size, dtype=flat_map.dtype), batch_size=batch)
        values, vectors = jnp.linalg.eigh(0.5 * (hessian + hessian.T))
        return vectors * jax.lax.rsqrt(jnp.maximum(values, floor))

    return factor(flat_map, outputs, y)


def sample_last_layer_nuts(
    rng_key: PRNGKey,
    model: NetworkModel,
    map_posterior: Posterior,
    mask: ArrayTree,
    X: jax.Array,
    y: jax.Array,
    **nuts_kwargs: Any,
) -> Posterior:
    """NUTS on the last layer of the MAP network ``map_posterior`` (one draw).

    The last layer (and ``log_sigma``) is sampled in coordinates whitened by the Laplace
    approximation at the MAP (:func:`whitening`; up to ``MAX_WHITENED`` coordinates): a fixed
    dense metric, which NUTS's diagonal adaptation then refines. Chains start one unit of it
    apart around the MAP (uniform in ``[-1, 1]`` per whitened coordinate).

    Parameters
    ----------
    rng_key : PRNGKey
        Chain starts, the affinity check, and the sampler.
    model : NetworkModel
        Head, likelihood, weight prior and (homoscedastic regression) the noise prior; the
        density sampled is its posterior with every weight outside ``mask`` at the MAP.
    map_posterior : Posterior
        The MAP: draws ``{"net", "sigma"?, "state"?}`` with a draw axis of 1.
    mask : pytree of bool
        Like the weights: ``True`` on the last layer (see :func:`last_layer_selection`).
    X, y : arrays
        Training inputs ``(N, ...)`` and targets ``(N,)``.
    **nuts_kwargs
        :func:`~posterax.inference.nuts.sample_nuts`'s settings (``num_warmup``,
        ``num_samples``, ``num_chains``, ``checkpoint``, ...).

    Returns
    -------
    Posterior
        Draws ``{"net": last layer (None elsewhere), "sigma"?}`` of every chain (chain-major)
        with a :class:`LastLayerApply`; ``info`` holds the sampler's statistics,
        ``n_last_layer_params``, ``last_layer_outputs`` (``"linearized"`` or
        ``"substituted"``), ``whitened`` and ``setup_seconds`` (features and metric).

    Estimators run this through ``px.methods.NUTS(subset="last_layer")``, after training the
    MAP; ``tests/inference/test_last_layer_nuts.py`` checks it against the exact posterior.
    """
    began = time.perf_counter()
    map_params = jax.tree_util.tree_map(lambda leaf: leaf[0], map_posterior.draws)
    frozen = {k: map_params[k] for k in ("net", "state") if k in map_params}
    start_key, check_key, run_key = jax.random.split(rng_key, 3)
    X, y = jnp.asarray(X), jnp.asarray(y)
    outputs, linear = outputs_of_last_layer(model.apply_fn, frozen, mask, X, check_key)
    position: dict[str, Any] = {"net": selected(mask, frozen["net"])}
    if "sigma" in map_params:
        position["log_sigma"] = jnp.log(map_params["sigma"])
    unravel = Unraveler.of(position)
    flat_map = jnp.concatenate([jnp.ravel(v) for v in jax.tree_util.tree_leaves(position)])
    density = LastLayerDensity(model, unravel)
    size = flat_map.shape[0]
    whitened = size <= MAX_WHITENED
    if whitened:
        scales = np.asarray(model.prior.scales, dtype=float)
        spread = 2.0 if model.prior.family == "laplace" else 1.0  # Laplace(0, b): var 2 b^2
        floor = 1.0 / (spread * float(np.max(scales)) ** 2)
        scale = whitening(density, flat_map, outputs, y, floor, linear)
    else:  # no P x P metric: steps of START_JITTER in the weights' own units
        scale = jnp.full(size, START_JITTER, flat_map.dtype)
    chains = nuts_kwargs.get("num_chains", 1)
    starts = jax.random.uniform(start_key, (chains, size), flat_map.dtype, -1.0, 1.0)
    jax.block_until_ready(scale)
    setup = time.perf_counter() - began
    run = sample_nuts(
        run_key,
        density,
        jnp.zeros(size, flat_map.dtype),
        (outputs, y, flat_map, scale),
        initial_positions=starts,
        **nuts_kwargs,
    )

    @jax.jit
    def positions(z, flat_map, scale):
        flat = flat_map + (z @ scale.T if scale.ndim == 2 else scale * z)
        return jax.vmap(jax.vmap(unravel))(flat)

    samples = positions(run.samples, flat_map, scale)
    draws, (n_chains, n_draws) = merge_chains(constrain(samples))
    info = {
        "sample_stats": run.sample_stats,
        "sampling_seconds": run.seconds,
        "setup_seconds": setup,
        "subset_of_weights": "last_layer",
        "n_last_layer_params": int(size - ("log_sigma" in position)),
        "last_layer_outputs": "linearized" if linear else "substituted",
        "whitened": whitened,
    }
    return Posterior(
        LastLayerApply(model.apply_fn, frozen, mask),
        model.likelihood,
        draws=draws,
        info=info,
        chain_shape=(n_chains, n_draws),
    )


__all__ = [
    "LastLayerApply",
    "LastLayerDensity",
    "last_layer_selection",
    "outputs_of_last_layer",
    "sample_last_layer_nuts",
]
