"""Metropolis-adjusted Langevin (MALA) on the full-batch log posterior: the "Langevin-informed
Metropolis–Hastings" sampler, exact in the limit (the Metropolis step corrects the Langevin
discretisation).

BlackJAX's MALA kernel inside one compiled program: a warmup whose step size is tuned by dual
averaging to a target acceptance rate (0.574 is optimal for MALA in high dimension, Roberts &
Rosenthal 1998), then sampling at the averaged step size with optional thinning, chains split
over the devices (see :mod:`posterax.inference.devices`). Cached like the NUTS driver, so a refit
with the same shapes does not recompile.
"""

from __future__ import annotations

import functools
import time
from typing import Any, NamedTuple

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
from blackjax.adaptation.step_size import dual_averaging_adaptation

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
from posterax.inference.progress import report_every, scan_progress, tick
from posterax.inference.resumable import (
    Checkpointing,
    data_fingerprint,
    identity,
    key_fingerprint,
    settings_fingerprint,
)
from posterax.types import ArrayTree, PRNGKey

OPTIMAL_ACCEPTANCE = 0.574


class MALASettings(NamedTuple):
    num_warmup: int = 1000
    num_samples: int = 1000
    num_chains: int = 1
    target_accept_prob: float = OPTIMAL_ACCEPTANCE
    thinning: int = 1
    initial_step_size: float = 1e-3
    progress_bar: bool = False


def _total_steps(settings: MALASettings) -> int:
    return settings.num_warmup + settings.num_samples * settings.thinning


@functools.lru_cache(maxsize=32)
def _compiled_mala(logdensity, settings: MALASettings, mesh: Any, vectorized: bool):
    """Jitted ``start``, ``warm`` and ``draw`` programs over all chains: the warmup steps and
    the thinned draws can each be advanced in segments (checkpoints between them)."""
    kernel = blackjax.mala.build_kernel()
    da_init, da_update, da_final = dual_averaging_adaptation(settings.target_accept_prob)
    total = _total_steps(settings)
    every = report_every(total)

    def bound(X, y):
        def log_post(p):
            return logdensity(p, X, y)

        return log_post

    def start_chain(key, position, X, y, index):
        warm_key, sample_key = jax.random.split(key)
        state = blackjax.mala.init(position, bound(X, y))
        carry = (state, da_init(settings.initial_step_size))
        warm_keys = jax.random.split(warm_key, settings.num_warmup)
        return carry, warm_keys, jax.random.split(sample_key, settings.num_samples)

    def warm_chain(carry, keys, steps, X, y, index):
        log_post = bound(X, y)

        def warm(carry, inputs):
            state, da = carry
            i, k = inputs
            state, info = kernel(k, state, log_post, jnp.exp(da.log_step_size))
            tick(settings.progress_bar, i + 1, every, total, index * total)
            return (state, da_update(da, info.acceptance_rate)), None

        return jax.lax.scan(warm, carry, (steps, keys))[0]

    def draw_chain(carry, keys, steps, X, y, index):
        log_post = bound(X, y)
        step_size = da_final(carry[1])  # the warmup's averaged step size

        def draw(state, inputs):
            j, k = inputs

            def one(i, carry):
                state, accepted = carry
                state, info = kernel(jax.random.fold_in(k, i), state, log_post, step_size)
                return state, accepted + info.acceptance_rate

            state, acc = jax.lax.fori_loop(0, settings.thinning, one, (state, 0.0))
            done = settings.num_warmup + (j + 1) * settings.thinning
            tick(settings.progress_bar, done, every, total, index * total)
            return state, (state.position, acc / settings.thinning)

        state, out = jax.lax.scan(draw, carry[0], (steps, keys))
        return (state, carry[1]), out

    def step_size(carry):
        return jax.vmap(da_final)(carry[1])

    return (
        jax.jit(run_items(start_chain, mesh, vectorized, 2)),
        jax.jit(run_items(warm_chain, mesh, vectorized, 2)),
        jax.jit(run_items(draw_chain, mesh, vectorized, 2)),
        jax.jit(step_size),
    )


def _run(
    programs, rng_key, starts, data, settings: MALASettings, checkpoint, fingerprint, mesh=None
):
    """Warmup steps, then the thinned draws, through the sampling driver; positions,
    acceptance, step sizes."""
    start, warm, draw, step_size = programs
    keys = jax.random.split(rng_key, settings.num_chains)
    across = spans_processes(mesh)
    if across:
        keys, starts = split_leading(mesh, (keys, starts))
    carry, warm_keys, draw_keys = start(keys, starts, *data)
    one = jax.eval_shape(draw, carry, draw_keys[:, :1], np.zeros(1, np.int32), *data)[1]
    buffers = jax.tree_util.tree_map(
        lambda s: np.zeros((s.shape[0], settings.num_samples, *s.shape[2:]), s.dtype), one
    )
    units = [Unit("warm", i, np.int32(i)) for i in range(settings.num_warmup)]
    units += [Unit("draw", j, np.int32(j), row=j) for j in range(settings.num_samples)]
    carry, (positions, acceptance) = drive(
        Programs({"warm": warm, "draw": draw}, frozenset({"draw"})),
        units,
        carry,
        {"warm": warm_keys, "draw": draw_keys},
        data,
        buffers,
        mesh=mesh,
        checkpoint=checkpoint,
        fingerprint=fingerprint,
        where="sample_mala",
    )
    sizes = step_size(carry)
    return positions, acceptance, gathered(sizes) if across else sizes


def sample_mala(
    rng_key: PRNGKey,
    logdensity: Any,
    initial_positions: ArrayTree,
    data: tuple[jax.Array, jax.Array],
    settings: MALASettings,
    devices: Any = None,
    checkpoint: Checkpointing | None = None,
) -> tuple[ArrayTree, dict[str, np.ndarray], dict[str, Any]]:
    """Run ``settings.num_chains`` MALA chains on ``logdensity(position, X, y)``.

    Parameters
    ----------
    rng_key : PRNGKey
    logdensity : callable
        Unnormalised log posterior ``logdensity(position, X, y)``; hashable (e.g. a frozen
        dataclass such as :class:`~posterax.inference.NetworkModel`) to reuse compilation.
    initial_positions : pytree
        One starting position per chain (leading axis ``num_chains``).
    data : (X, y)
    settings : MALASettings
    devices : None, int or list of jax.Device
        Chains are split over these (default: all local devices).
    checkpoint : Checkpointing, optional
        Save the state every ``checkpoint.every`` iterations (warmup steps, or draws with their
        thinning); ``resume=True`` continues a killed run to the same draws.

    Returns
    -------
    Chains
        ``samples``: the positions, leaves ``(chains, draws, ...)``;
        ``sample_stats["acceptance_rate"]`` ``(chains, draws)``; ``seconds``; ``info``:
        ``step_size`` per chain and the mean ``acceptance_rate``.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> def logdensity(p, X, y):  # standard normal, data unused
    ...     return -0.5 * jnp.sum(p ** 2)
    >>> run = sample_mala(jax.random.key(0), logdensity, jnp.zeros((2, 3)),
    ...                   (jnp.zeros(1), jnp.zeros(1)),
    ...                   MALASettings(num_warmup=500, num_samples=2000, num_chains=2))
    >>> acceptance = float(run.sample_stats["acceptance_rate"].mean())
    >>> run.samples.shape, bool(abs(acceptance - 0.574) < 0.1)
    ((2, 2000, 3), True)
    """
    mesh = mesh_for(settings.num_chains, resolve_devices(devices, where="sample_mala"))
    across = spans_processes(mesh)
    vectorized = vectorize_items()
    programs = _compiled_mala(logdensity, settings, mesh, vectorized)
    fingerprint = {
        "sampler": "mala",
        "settings": settings_fingerprint(settings),
        "logdensity": identity(logdensity),
        "data": data_fingerprint(data),
        "starts": data_fingerprint(initial_positions),
        "rng_key": key_fingerprint(rng_key),
    }
    steps = items_per_device(settings.num_chains, mesh, vectorized) * _total_steps(settings)
    start = time.perf_counter()
    with scan_progress(settings.progress_bar, steps, "MALA"):
        positions, acceptance, step_size = _run(
            programs,
            rng_key,
            initial_positions,
            replicated(mesh, data),
            settings,
            checkpoint,
            fingerprint,
            mesh,
        )
        positions = jax.tree_util.tree_map(jnp.asarray, positions)
        if not across:  # across processes the draws stay whole on every process
            positions = split_leading(mesh, positions)
        jax.block_until_ready(positions)
    seconds = time.perf_counter() - start
    info = {"step_size": np.asarray(step_size), "acceptance_rate": float(np.mean(acceptance))}
    return Chains(positions, {"acceptance_rate": np.asarray(acceptance)}, seconds, info)


__all__ = ["OPTIMAL_ACCEPTANCE", "MALASettings", "sample_mala"]
