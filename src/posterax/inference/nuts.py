"""The NUTS driver: BlackJAX's NUTS kernel and window adaptation (Stan-style step size and
diagonal mass matrix), warmup and sampling for all chains in one compiled program.

Compile once. NumPyro's ``MCMC.run`` re-traces its program on every call. Here the compiled
program is cached by the log-density (a hashable object: a module-level function or a frozen
dataclass), the static settings (warmup, samples, chains, target acceptance, tree depth) and —
through ``jax.jit``'s own cache — the shapes of the data. Data and keys are traced arguments, so
a refit on new data of the same shape, or with a new ``random_state``, reuses the program.

Chains (each with its own adaptation) are split over the devices with ``shard_map``; on one
device they are ``vmap``-ed on accelerators (NumPyro's ``chain_method="vectorized"``) and run one
after another on CPU, so a chain's draws do not depend on how many devices share the work (see
:func:`posterax.inference.devices.vectorize_items`). Any NumPyro model runs through this driver
with :func:`posterax.inference.nuts_numpyro.run_nuts`.
"""

from __future__ import annotations

import dataclasses
import functools
import time
import warnings
from collections.abc import Callable, Hashable
from typing import Any

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
from blackjax.adaptation.staged_adaptation import build_schedule
from blackjax.adaptation.window_adaptation import base as window_adaptation_base

from posterax.inference.chains import Chains
from posterax.inference.devices import (
    gathered,
    items_per_device,
    mesh_for,
    replicated,
    resolve_devices,
    run_items,
    spans_processes,
    split_leading,
    vectorize_items,
)
from posterax.inference.driver import Programs, Unit, drive
from posterax.inference.progress import report_every, resolve, scan_progress, tick
from posterax.inference.resumable import (
    Checkpointing,
    data_fingerprint,
    identity,
    key_fingerprint,
    settings_fingerprint,
)
from posterax.types import ArrayTree, PRNGKey

TRACE_COUNTS: dict[str, int] = {"nuts_program": 0}
"""How many times the sampling program was traced (tests use it to prove reuse)."""


@dataclasses.dataclass(frozen=True)
class NUTSSettings:
    """Static settings of one compiled program."""

    num_warmup: int = 1000
    num_samples: int = 2000
    num_chains: int = 1
    target_accept_prob: float = 0.8
    max_tree_depth: int = 10
    init_radius: float = 2.0
    progress_bar: bool = False
    dense_mass: bool = False


# ---------------------------------------------------------------------------- the program
# One kernel for both phases (as NumPyro does) halves compilation compared with BlackJAX's
# ``window_adaptation(...).run`` followed by a second ``nuts`` kernel. The adaptation itself is
# BlackJAX's Stan-style window adaptation (``window_adaptation.base`` + ``build_schedule``).
# A run is a start (initial positions, adaptation state, one key per step) and an ``advance``
# over a range of steps: the whole run at once, or segments with a checkpoint after each.


def _adaptation(settings: NUTSSettings):
    with warnings.catch_warnings():
        # Deprecated in BlackJAX 1.7 in favour of staged_adaptation recipes; pinned <1.8.
        warnings.simplefilter("ignore", DeprecationWarning)
        return window_adaptation_base(not settings.dense_mass, settings.target_accept_prob)


MAX_START_TRIES = 100
"""Uniform starts drawn per chain until one has a finite log density and gradient (NumPyro's
``find_valid_initial_params`` tries as often)."""


def _uniform_draw(template, radius: float, key):
    """Every coordinate uniform in ``[-radius, radius]`` (NumPyro's ``init_to_uniform``)."""
    leaves, treedef = jax.tree_util.tree_flatten(template)
    keys = jax.random.split(key, len(leaves))
    draws = [
        jax.random.uniform(k, jnp.shape(leaf), jnp.result_type(float), -radius, radius)
        for k, leaf in zip(keys, leaves, strict=True)
    ]
    return jax.tree_util.tree_unflatten(treedef, draws)


def _finite(state) -> jax.Array:
    """Whether a NUTS state's log density and gradient are finite (per chain when batched)."""
    leaves = [state.logdensity, *jax.tree_util.tree_leaves(state.logdensity_grad)]
    chains = jnp.shape(state.logdensity)
    return jnp.all(
        jnp.stack([jnp.isfinite(v).reshape(*chains, -1).all(-1) for v in leaves]), axis=0
    )


def _finite_start(logdensity, template, radius: float, key):
    """The NUTS state at a uniform start where the log density and its gradient are finite:
    the first draw, or a redraw (up to ``MAX_START_TRIES``) where it is not. A time series
    whose recursion overflows from a start outside the stationary region would otherwise
    leave that chain stuck with a zero step size. One copy of the gradient in the program:
    every try is a ``nuts.init`` inside the loop."""

    def state_at(tries):
        k = jax.lax.cond(tries == 0, lambda: key, lambda: jax.random.fold_in(key, tries))
        return blackjax.nuts.init(_uniform_draw(template, radius, k), logdensity)

    def more(carry):
        tries, state = carry
        return (tries == 0) | ((tries < MAX_START_TRIES) & ~_finite(state))

    def step(carry):
        tries, _ = carry
        return tries + 1, state_at(tries)

    shapes = jax.eval_shape(lambda: blackjax.nuts.init(template, logdensity))
    empty = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    return jax.lax.while_loop(more, step, (jnp.int32(0), empty))[1]


def _chain_start(logdensity, template, settings: NUTSSettings, key, position=None):
    """One chain's carry (NUTS state, adaptation state, step size, inverse mass) and its keys;
    the chain starts at ``position`` when given, else uniformly in ``[-init_radius,
    init_radius]``."""
    key_init, key_run = jax.random.split(key)
    if position is None:
        state = _finite_start(logdensity, template, settings.init_radius, key_init)
        position = state.position
    else:
        state = blackjax.nuts.init(position, logdensity)
    adapt_init, _, _ = _adaptation(settings)
    adapt_state = adapt_init(position, 1.0)
    carry = (state, adapt_state, adapt_state.step_size, adapt_state.inverse_mass_matrix)
    return carry, jax.random.split(key_run, settings.num_warmup + settings.num_samples)


def _chain_advance(logdensity, settings: NUTSSettings, carry, keys, steps, index):
    """Steps ``steps = (i, stage, window_end)`` of one chain in one ``lax.scan``; returns the
    carry and every step's position and sample statistics."""
    _, adapt_update, adapt_final = _adaptation(settings)
    kernel = blackjax.mcmc.nuts.build_kernel()
    num_warmup = settings.num_warmup
    total = num_warmup + settings.num_samples
    every = report_every(total)

    def step(carry, xs):
        state, adapt_state, step_size, inv_mass = carry
        k, (i, stage, window_end) = xs
        warming = i < num_warmup
        step_size = jnp.where(warming, adapt_state.step_size, step_size)
        inv_mass = jnp.where(warming, adapt_state.inverse_mass_matrix, inv_mass)
        state, info = kernel(k, state, logdensity, step_size, inv_mass, settings.max_tree_depth)
        updated = adapt_update(
            adapt_state, (stage, window_end), state.position, info.acceptance_rate
        )
        adapt_state = jax.tree_util.tree_map(
            lambda new, old: jnp.where(warming, new, old), updated, adapt_state
        )
        final_step, final_mass = adapt_final(adapt_state)
        last_warmup = i == num_warmup - 1
        step_size = jnp.where(last_warmup, final_step, step_size)
        inv_mass = jnp.where(last_warmup, final_mass, inv_mass)
        tick(settings.progress_bar, i + 1, every, total, index * total)
        stats = (
            info.is_divergent,
            info.acceptance_rate,
            info.num_integration_steps,
            info.energy,
            step_size,
        )
        return (state, adapt_state, step_size, inv_mass), (state.position, stats)

    return jax.lax.scan(step, carry, (keys, steps))


def _schedule(num_warmup: int, num_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Stan's adaptation windows for the warmup, padded with (fast, no-end) for sampling."""
    warm = np.asarray(build_schedule(num_warmup), dtype=np.int32).reshape(-1, 2)
    pad = np.zeros((num_samples, 2), dtype=np.int32)
    full = np.concatenate([warm, pad])
    return full[:, 0], full[:, 1].astype(bool)


@functools.lru_cache(maxsize=64)
def _compiled_program(
    logdensity_fn: Hashable,
    template_def: Any,
    settings: NUTSSettings,
    mesh: Any = None,
    vectorized: bool = True,
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The jitted ``start(rng_key, data, positions)``, ``advance(carry, keys, steps, data)``
    and ``whole`` (both in one program) per (log-density, parameter structure, settings,
    device mesh)."""
    treedef, shapes = template_def

    def bound(data):
        def logdensity(position):
            return logdensity_fn(position, *data)

        return logdensity

    def start(rng_key, data, positions):
        template = jax.tree_util.tree_unflatten(treedef, [jnp.zeros(s) for s in shapes])
        keys = jax.random.split(rng_key, settings.num_chains)
        if positions is None:

            def chain(key, data, index):
                return _chain_start(bound(data), template, settings, key)

            return run_items(chain, mesh, vectorized, 1)(keys, data)

        def chain_from(key, position, data, index):
            return _chain_start(bound(data), template, settings, key, position)

        return run_items(chain_from, mesh, vectorized, 2)(keys, positions, data)

    def advance(carry, keys, steps, data):
        TRACE_COUNTS["nuts_program"] += 1  # runs at trace time only

        def chain(carry, keys, steps, data, index):
            return _chain_advance(bound(data), settings, carry, keys, steps, index)

        return run_items(chain, mesh, vectorized, 2)(carry, keys, steps, data)

    def whole(rng_key, data, positions, steps):
        """Start and every step in one program (a run without checkpoints): one compile
        instead of two, and the warmup draws dropped inside it. Also says which chains
        started where the log density and its gradient are finite."""
        carry, keys = start(rng_key, data, positions)
        _, outputs = advance(carry, keys, steps, data)
        draws = jax.tree_util.tree_map(lambda a: a[:, settings.num_warmup :], outputs)
        return draws, _finite(carry[0])

    return jax.jit(start), jax.jit(advance), jax.jit(whole)


def _check_initial_positions(positions: Any, template_def: Any, num_chains: int) -> None:
    """``initial_positions`` must be the template's structure, each leaf with a leading chain
    axis: ``(num_chains, *leaf.shape)``."""
    treedef, shapes = template_def
    leaves, given = jax.tree_util.tree_flatten(positions)
    expected = [(num_chains, *shape) for shape in shapes]
    got = [tuple(np.shape(leaf)) for leaf in leaves]
    if given != treedef or got != expected:
        raise ValueError(
            "The 'initial_positions' parameter of sample_nuts must have the position "
            f"template's structure with a leading chain axis: leaf shapes {expected}. Got "
            f"{got}. Stack one start per chain (e.g. jnp.stack([start] * num_chains))."
        )


def _check_starts(finite: np.ndarray, settings: NUTSSettings) -> None:
    """Refuse a run with a chain that never found a finite log density (NumPyro raises too)."""
    bad = np.flatnonzero(~np.asarray(finite)).tolist()
    if bad:
        raise ValueError(
            f"NUTS chains {bad} found no start where the log density and its gradient are "
            f"finite ({MAX_START_TRIES} uniform draws in [-{settings.init_radius:g}, "
            f"{settings.init_radius:g}] in unconstrained space, or the starts given). Check the "
            "model for -inf or NaN (a support that excludes every start, a log of a negative "
            "number), or give starts inside the support (run_nuts: init_strategy=init_to_value"
            "(values={...}); sample_nuts: initial_positions=...)."
        )


def _settings_fingerprint(settings: NUTSSettings) -> dict[str, Any]:
    """Settings as checkpoints record them; options left at their defaults are omitted, so a
    checkpoint written before an option existed still resumes."""
    fields = settings_fingerprint(settings)
    if not settings.dense_mass:
        del fields["dense_mass"]
    return fields


def _run(
    programs,
    rng_key,
    data,
    settings: NUTSSettings,
    checkpoint: Checkpointing | None,
    ident,
    initial_positions=None,
    place=lambda tree: tree,
):
    """All steps at once, or in checkpointed segments; positions and stats of the draws."""
    start, advance, whole = programs
    total = settings.num_warmup + settings.num_samples
    steps = place(
        (
            np.arange(total, dtype=np.int32),
            *_schedule(settings.num_warmup, settings.num_samples),
        )
    )
    if checkpoint is None:
        return whole(rng_key, data, initial_positions, steps)
    carry, keys = start(rng_key, data, initial_positions)
    _check_starts(np.asarray(jax.jit(_finite)(carry[0])), settings)
    fingerprint = {
        "sampler": "nuts",
        "settings": _settings_fingerprint(settings),
        "logdensity": ident,
        "data": data_fingerprint(data),
        "rng_key": key_fingerprint(rng_key),
    }
    if initial_positions is not None:
        fingerprint["initial_positions"] = data_fingerprint(initial_positions)
    one_step = jax.eval_shape(
        advance, carry, keys[:, :1], jax.tree_util.tree_map(lambda a: a[:1], steps), data
    )[1]
    draws = jax.tree_util.tree_map(
        lambda s: np.zeros((s.shape[0], settings.num_samples, *s.shape[2:]), s.dtype), one_step
    )
    W = settings.num_warmup
    units = [
        Unit("warm" if i < W else "draw", i, step, row=None if i < W else i - W)
        for i, step in enumerate(zip(*(np.asarray(a) for a in steps), strict=True))
    ]
    _, draws = drive(
        Programs({"warm": lambda *args: advance(*args)[0], "draw": advance}, frozenset({"draw"})),
        units,
        carry,
        {"warm": keys, "draw": keys},
        (data,),
        draws,
        checkpoint=checkpoint,
        fingerprint=fingerprint,
        where="sample_nuts",
    )
    draws = jax.tree_util.tree_map(jnp.asarray, draws)  # placed like the chains by the caller
    return draws, np.ones(settings.num_chains, bool)  # starts checked above


def sample_nuts(
    rng_key: PRNGKey,
    logdensity_fn: Callable[..., jax.Array],
    position_template: ArrayTree,
    data: tuple[Any, ...] = (),
    *,
    num_warmup: int = 1000,
    num_samples: int = 2000,
    num_chains: int = 1,
    target_accept_prob: float = 0.8,
    max_tree_depth: int = 10,
    progress_bar: bool | None = None,
    devices: Any = None,
    checkpoint: Checkpointing | None = None,
    dense_mass: bool = False,
    init_radius: float = 2.0,
    initial_positions: ArrayTree | None = None,
) -> Chains:
    """Run NUTS on ``logdensity_fn(position, *data)`` (unconstrained ``position``).

    ``logdensity_fn`` must be hashable and stable across calls (a module-level function or a
    frozen dataclass) for the compiled program to be reused. ``position_template`` gives the
    structure and shapes of ``position``; chains start uniformly in ``[-init_radius,
    init_radius]`` per coordinate (NumPyro's default, radius 2), or at ``initial_positions``
    (the template's structure with a leading chain axis). ``dense_mass`` adapts a dense mass
    matrix over all coordinates (Stan's ``metric=dense_e``) instead of a diagonal one. Chains
    are split over ``devices`` (``None``: all local devices; an int: the first n; see
    :mod:`posterax.inference.devices`). With ``checkpoint``
    (:class:`~posterax.inference.resumable.Checkpointing`) the run saves its state every
    ``checkpoint.every`` steps and, with ``resume=True``, continues a killed run to the draws
    an uninterrupted run gives. Returns :class:`~posterax.inference.chains.Chains` of the
    positions ``(chains, draws, ...)``.
    """
    progress_bar = resolve(progress_bar)
    settings = NUTSSettings(
        num_warmup,
        num_samples,
        num_chains,
        float(target_accept_prob),
        max_tree_depth,
        float(init_radius),
        bool(progress_bar),
        bool(dense_mass),
    )
    leaves, treedef = jax.tree_util.tree_flatten(position_template)
    template_def = (treedef, tuple(tuple(np.shape(leaf)) for leaf in leaves))
    mesh = mesh_for(num_chains, resolve_devices(devices, where="sample_nuts"))
    vectorized = vectorize_items()
    programs = _compiled_program(logdensity_fn, template_def, settings, mesh, vectorized)
    per_device = items_per_device(num_chains, mesh, vectorized)
    start = time.perf_counter()
    across = spans_processes(mesh)
    if across and checkpoint is not None:
        raise ValueError(
            "The 'checkpoint' parameter of sample_nuts is not supported under JAX's "
            "multi-process runtime yet (every process would write the same files). Run "
            "without checkpoint_dir there, or checkpoint single-process runs."
        )
    with scan_progress(progress_bar, per_device * (num_warmup + num_samples), "NUTS"):
        data = tuple(jnp.asarray(d) if isinstance(d, np.ndarray) else d for d in data)
        data = replicated(mesh, data)
        if across:
            rng_key = replicated(mesh, rng_key)
        if initial_positions is not None:
            _check_initial_positions(initial_positions, template_def, num_chains)
            initial_positions = split_leading(
                mesh, jax.tree_util.tree_map(jnp.asarray, initial_positions)
            )
        (positions, stats), finite = _run(
            programs,
            rng_key,
            data,
            settings,
            checkpoint,
            identity(logdensity_fn),
            initial_positions,
            (lambda tree: replicated(mesh, tree)) if across else (lambda tree: tree),
        )
        if across:  # every process gets every chain's draws
            positions, stats, finite = gathered((positions, stats, finite))
        else:
            positions = split_leading(mesh, positions)
        jax.block_until_ready(positions)
    seconds = time.perf_counter() - start
    _check_starts(np.asarray(finite), settings)
    diverging, acceptance, n_steps, energy, step_size = (np.asarray(s) for s in stats)
    sample_stats = {
        "diverging": diverging.astype(bool),
        "acceptance_rate": acceptance,
        "step_size": step_size,
        "n_steps": n_steps,
        # NUTS doubles the trajectory each tree level: depth = log2(leapfrog steps + 1).
        "tree_depth": np.floor(np.log2(n_steps + 1)).astype(np.int64),
        "energy": energy,
    }
    return Chains(positions, sample_stats, seconds)


__all__ = ["TRACE_COUNTS", "NUTSSettings", "sample_nuts"]
