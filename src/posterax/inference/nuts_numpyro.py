"""Any NumPyro model through the NUTS driver (:mod:`posterax.inference.nuts`): the model's
unconstrained log density (NumPyro's ``potential_energy``, every site's transform computed from
the current draw), the shapes of its latent sites, starts from NumPyro's init strategies, and
the draws mapped back to constrained sites (deterministic sites included).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpyro import handlers
from numpyro.distributions import transforms
from numpyro.infer.initialization import init_to_feasible, init_to_uniform
from numpyro.infer.util import constrain_fn, potential_energy

from posterax.inference.chains import Chains
from posterax.inference.nuts import sample_nuts
from posterax.types import ArrayTree, PRNGKey


@dataclasses.dataclass(frozen=True)
class _NumPyroLogDensity:
    """``-potential_energy`` of a NumPyro model; array arguments are traced, the rest static."""

    model: Callable[..., Any]
    static_kwargs: tuple[tuple[str, Any], ...]
    array_kwarg_names: tuple[str, ...]

    def kwargs(self, array_kwargs: tuple[Any, ...]) -> dict[str, Any]:
        return {
            **dict(self.static_kwargs),
            **dict(zip(self.array_kwarg_names, array_kwargs, strict=True)),
        }

    def __call__(self, position, args, array_kwargs):
        return -potential_energy(self.model, args, self.kwargs(array_kwargs), position)


def _is_array(value: Any) -> bool:
    return isinstance(value, np.ndarray | jax.Array)


def _latent_sites(logdensity: _NumPyroLogDensity, args, array_kwargs, substitute_fn, key):
    """The model's latent sample sites, each valued by ``substitute_fn`` (a NumPyro init
    strategy) rather than by sampling its distribution: improper priors
    (``ImproperUniform``) have no sampler."""
    model = handlers.substitute(
        handlers.seed(logdensity.model, rng_seed=key), substitute_fn=substitute_fn
    )
    trace = handlers.trace(model).get_trace(*args, **logdensity.kwargs(array_kwargs))
    return {
        name: site
        for name, site in trace.items()
        if site["type"] == "sample" and not site["is_observed"]
    }


def _unconstrained(sites) -> dict[str, jax.Array]:
    return {
        name: transforms.biject_to(site["fn"].support).inv(site["value"])
        for name, site in sites.items()
    }


def _numpyro_template(logdensity: _NumPyroLogDensity, args, array_kwargs) -> ArrayTree:
    """Unconstrained shapes of a NumPyro model's latent sites; refuses discrete ones by name.

    Traced abstractly (``jax.eval_shape``): running the model eagerly would compile every
    operation on first use (about a second for the seed linear regression).
    """
    discrete: list[str] = []

    def unconstrained(args, array_kwargs):
        sites = _latent_sites(logdensity, args, array_kwargs, init_to_feasible, 0)
        discrete.extend(n for n, site in sites.items() if site["fn"].support.is_discrete)
        return _unconstrained({n: v for n, v in sites.items() if n not in discrete})

    shapes = jax.eval_shape(unconstrained, args, array_kwargs)
    if discrete:
        raise ValueError(
            f"The 'model' parameter of run_nuts has discrete latent sites {discrete}; NUTS "
            "samples continuous parameters only. Sum the discrete variables out in the model "
            "(e.g. a mixture written with logsumexp and numpyro.factor), or observe them."
        )
    return jax.tree_util.tree_map(lambda s: np.zeros(s.shape), shapes)


def _uniform_radius(init_strategy: Any) -> float | None:
    """The radius when ``init_strategy`` is NumPyro's ``init_to_uniform`` (the default: the
    compiled program draws those starts itself), else ``None``."""
    if init_strategy is None or init_strategy is init_to_uniform:
        return 2.0
    if isinstance(init_strategy, functools.partial) and init_strategy.func is init_to_uniform:
        if not init_strategy.args and set(init_strategy.keywords) <= {"radius"}:
            return float(init_strategy.keywords.get("radius", 2.0))
    return None


def _strategy_starts(
    logdensity: _NumPyroLogDensity, init_strategy, rng_key, num_chains: int, args, array_kwargs
) -> dict[str, jax.Array]:
    """One unconstrained start per chain from a NumPyro init strategy (``init_to_median``,
    ``init_to_value``, ...), each chain with its own key."""
    if not callable(init_strategy):
        raise TypeError(
            "The 'init_strategy' parameter of run_nuts must be a NumPyro init strategy such as "
            "numpyro.infer.init_to_median or numpyro.infer.init_to_value(values={...}); got "
            f"{type(init_strategy).__name__}."
        )

    def one(key):
        return _unconstrained(_latent_sites(logdensity, args, array_kwargs, init_strategy, key))

    keys = jax.random.split(jax.random.fold_in(rng_key, 1), num_chains)
    fix = (
        "Give values inside each site's support (init_to_value takes constrained values), or "
        "use numpyro.infer.init_to_uniform."
    )
    try:
        starts = jax.jit(jax.vmap(one))(keys)
    except ValueError as error:  # NumPyro's argument validation on a start outside the support
        raise ValueError(
            f"The 'init_strategy' parameter of run_nuts gave a start the model refuses "
            f"({str(error).splitlines()[0]}). " + fix
        ) from error
    bad = [name for name, v in starts.items() if not bool(jnp.all(jnp.isfinite(v)))]
    if bad:
        raise ValueError(
            f"The 'init_strategy' parameter of run_nuts gave non-finite starts for sites {bad} "
            f"(outside their support?). {fix}"
        )
    return starts


@functools.lru_cache(maxsize=64)
def _constrainer(logdensity: _NumPyroLogDensity) -> Callable[..., Any]:
    """Jitted map from unconstrained draws ``(chains, draws, ...)`` to constrained sites."""

    def one(z, args, array_kwargs):
        kwargs = logdensity.kwargs(array_kwargs)
        return constrain_fn(logdensity.model, args, kwargs, z, return_deterministic=True)

    return jax.jit(jax.vmap(jax.vmap(one, in_axes=(0, None, None)), in_axes=(0, None, None)))


def run_nuts(
    rng_key: PRNGKey,
    model: Callable[..., Any],
    *model_args: Any,
    num_warmup: int = 1000,
    num_samples: int = 2000,
    num_chains: int = 1,
    target_accept_prob: float = 0.8,
    max_tree_depth: int = 10,
    progress_bar: bool | None = None,
    devices: Any = None,
    dense_mass: bool = False,
    init_strategy: Callable[..., Any] | None = None,
    **model_kwargs: Any,
) -> Chains:
    """Sample any NumPyro model with NUTS through the compile-once driver.

    Parameters
    ----------
    rng_key : PRNGKey
    model : callable
        A NumPyro model function. Array arguments (positional, and keyword arguments that are
        arrays) are data and may change between calls without recompiling; other keyword
        arguments are static and must be hashable.
    num_warmup, num_samples, num_chains, target_accept_prob, max_tree_depth
        NUTS settings; chains are vectorised.
    progress_bar : bool, optional
        Default: shown only when stderr is a terminal.
    devices : None, int or list of jax.Device
        Chains are split over these (default: all local devices).
    dense_mass : bool
        Adapt a dense mass matrix over all unconstrained coordinates (Stan's ``dense_e``;
        helps strongly correlated posteriors, costs a Cholesky per step) instead of a diagonal.
    init_strategy : NumPyro init strategy, optional
        Where chains start. Default: ``init_to_uniform`` (uniform in ``[-2, 2]`` in
        unconstrained space, drawn inside the compiled program). ``init_to_median``,
        ``init_to_mean``, ``init_to_sample`` or ``init_to_value(values={...})`` give one start
        per chain, each from its own key.

    The model may use anything NumPyro's NUTS takes for continuous latent sites: improper
    priors (``ImproperUniform``), constraints that depend on other sites,
    ``numpyro.factor``, ``numpyro.deterministic`` and plates. Discrete latent sites are refused
    with an error naming them.

    Returns
    -------
    Chains
        ``samples[name]`` (constrained, deterministic sites included) has shape
        ``(num_chains, num_samples, ...)``.

    Examples
    --------
    >>> import jax, numpy as np, numpyro, numpyro.distributions as dist
    >>> def model(y=None):
    ...     mu = numpyro.sample("mu", dist.Normal(0, 10))
    ...     numpyro.sample("obs", dist.Normal(mu, 1), obs=y)
    >>> res = run_nuts(jax.random.key(0), model, num_warmup=200, num_samples=500,
    ...                y=np.array([1.0, 2.0, 3.0]), progress_bar=False)
    >>> res.samples["mu"].shape
    (1, 500)
    """
    static = tuple(sorted((k, v) for k, v in model_kwargs.items() if not _is_array(v)))
    array_names = tuple(sorted(k for k, v in model_kwargs.items() if _is_array(v)))
    array_kwargs = tuple(jnp.asarray(model_kwargs[k]) for k in array_names)
    args = tuple(jnp.asarray(a) if _is_array(a) else a for a in model_args)
    logdensity = _NumPyroLogDensity(model, static, array_names)
    template = _numpyro_template(logdensity, args, array_kwargs)
    radius = _uniform_radius(init_strategy)
    starts = None
    if radius is None:
        starts = _strategy_starts(
            logdensity, init_strategy, rng_key, num_chains, args, array_kwargs
        )
    chains = sample_nuts(
        rng_key,
        logdensity,
        template,
        (args, array_kwargs),
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        target_accept_prob=target_accept_prob,
        max_tree_depth=max_tree_depth,
        progress_bar=progress_bar,
        devices=devices,
        dense_mass=dense_mass,
        init_radius=2.0 if radius is None else radius,
        initial_positions=starts,
    )
    samples = _constrainer(logdensity)(chains.samples, args, array_kwargs)
    return dataclasses.replace(chains, samples=dict(samples))


__all__ = ["run_nuts"]
