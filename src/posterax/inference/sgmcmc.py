"""Stochastic-gradient MCMC: SGLD (Welling & Teh, 2011), preconditioned SGLD (Li et al., 2016),
SGHMC (Chen et al., 2014) and their cyclical versions (Zhang et al., 2020).

BlackJAX's SGLD and SGHMC kernels take the minibatch gradient scaled to the full data
(``blackjax.sgmcmc.gradients.grad_estimator``); pSGLD's RMSprop preconditioner is the one kernel
BlackJAX does not have, so :func:`rmsprop_sgld` writes it with BlackJAX's pure ``init`` /
``step`` interface. JAX users who drive their own loop use ``blackjax.sgld``, ``blackjax.sghmc``,
``blackjax.mala`` and :func:`rmsprop_sgld` directly. Step sizes are constant,
polynomially decaying or cyclical; burn-in, thinning and vmapped chains all run in one compiled
program with an optional progress bar.

The cyclical schedule splits the run into ``num_cycles`` cycles of a cosine step size. The first
part of each cycle explores at zero temperature (SGD, or SGD with momentum for SGHMC) while the
step is large; the last part samples at temperature one while the step is small, and its draws
are collected. Each cycle visits one mode: the draws cover several modes of a multimodal posterior.

SG-MCMC is not exact: without a Metropolis correction its bias shrinks with the step size (tested
on Bayesian linear regression), so treat its draws as an approximation.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
from blackjax.sgmcmc.gradients import grad_estimator
from blackjax.util import generate_gaussian_noise

from posterax.inference.chains import Chains
from posterax.inference.devices import (
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

SAMPLERS = ("sgld", "sghmc")
SCHEDULES = ("constant", "polynomial", "cyclical")
PRECONDITIONERS = (None, "rmsprop")


class SGMCMCSettings(NamedTuple):
    """Settings of :func:`sample_sgmcmc` (hashable: the compiled program is cached by them).

    Step size at step ``t``: constant; ``step_size * (1 + t / decay_steps) ** -0.55`` for
    ``"polynomial"`` (Welling & Teh's exponent); ``step_size / 2 * (cos(pi * r) + 1)`` for
    ``"cyclical"``, where ``r`` is the position within the current cycle (0 to 1).

    With ``"cyclical"``, each of the ``num_cycles`` cycles runs ``num_burnin / num_cycles``
    exploration steps (temperature 0), then collects ``num_samples / num_cycles`` draws
    ``thinning`` steps apart (temperature 1); both must be multiples of ``num_cycles``.
    Otherwise the chain burns in for ``num_burnin`` steps and then collects ``num_samples``
    draws ``thinning`` steps apart.

    ``preconditioner="rmsprop"`` (SGLD only) is pSGLD: gradient and noise are scaled per
    coordinate by ``1 / (rmsprop_epsilon + sqrt(v))``, ``v`` a running mean of squared gradients.
    Its ``step_size`` is therefore on an RMSprop scale (about 1e-2), not SGLD's (about 1/N).
    """

    sampler: str = "sgld"
    step_size: float = 1e-4
    num_burnin: int = 1000
    num_samples: int = 1000
    thinning: int = 1
    num_chains: int = 1
    batch_size: int = 32
    schedule: str = "constant"
    decay_steps: int = 1000
    num_cycles: int = 4
    friction: float = 0.01  # SGHMC's alpha
    num_integration_steps: int = 10  # SGHMC steps per momentum refresh
    preconditioner: str | None = None
    rmsprop_decay: float = 0.99
    rmsprop_epsilon: float = 1e-5
    progress_bar: bool = False


class _Plan(NamedTuple):
    """The run as ``cycles`` repeats of ``explore`` steps then ``draws`` draws."""

    cycles: int
    explore: int
    draws: int
    thinning: int

    @property
    def cycle_length(self) -> int:
        return self.explore + self.draws * self.thinning

    @property
    def total_steps(self) -> int:
        return self.cycles * self.cycle_length


def _plan(settings: SGMCMCSettings) -> _Plan:
    if settings.schedule != "cyclical":
        return _Plan(1, settings.num_burnin, settings.num_samples, settings.thinning)
    cycles = settings.num_cycles
    return _Plan(
        cycles, settings.num_burnin // cycles, settings.num_samples // cycles, settings.thinning
    )


def check_settings(settings: SGMCMCSettings) -> None:
    """Raise a ``ValueError`` naming the setting when the combination cannot run."""
    rules = [
        (settings.sampler in SAMPLERS, "sampler", f"one of {SAMPLERS}", settings.sampler),
        (settings.schedule in SCHEDULES, "schedule", f"one of {SCHEDULES}", settings.schedule),
        (
            settings.preconditioner in PRECONDITIONERS,
            "preconditioner",
            "None or 'rmsprop'",
            settings.preconditioner,
        ),
        (
            settings.preconditioner is None or settings.sampler == "sgld",
            "preconditioner",
            "None with sampler='sghmc' (pSGLD preconditions SGLD only)",
            settings.preconditioner,
        ),
        (settings.num_cycles >= 1, "num_cycles", "an int >= 1", settings.num_cycles),
        (
            math.isfinite(settings.step_size) and settings.step_size > 0,
            "step_size",
            "a finite float > 0",
            settings.step_size,
        ),
        *(
            (getattr(settings, name) >= 1, name, "an int >= 1", getattr(settings, name))
            for name in ("num_samples", "thinning", "num_chains", "batch_size", "decay_steps")
        ),
        (settings.num_burnin >= 0, "num_burnin", "an int >= 0", settings.num_burnin),
        (0 <= settings.rmsprop_decay < 1, "rmsprop_decay", "in [0, 1)", settings.rmsprop_decay),
        (settings.rmsprop_epsilon > 0, "rmsprop_epsilon", "> 0", settings.rmsprop_epsilon),
    ]
    for ok, name, rule, got in rules:
        if not ok:
            raise ValueError(f"SG-MCMC setting {name!r} must be {rule}. Got {got!r}.")
    if settings.schedule == "cyclical" and settings.num_burnin % settings.num_cycles:
        raise ValueError(
            f"SG-MCMC with schedule='cyclical' explores for the same number of steps in each "
            f"cycle: num_burnin ({settings.num_burnin}) must be a multiple of num_cycles "
            f"({settings.num_cycles}). Use e.g. num_burnin="
            f"{settings.num_cycles * max(1, settings.num_burnin // settings.num_cycles)}."
        )
    if settings.schedule == "cyclical" and settings.num_samples % settings.num_cycles:
        raise ValueError(
            f"SG-MCMC with schedule='cyclical' collects the same number of draws in each cycle: "
            f"num_samples ({settings.num_samples}) must be a multiple of num_cycles "
            f"({settings.num_cycles}). Use e.g. num_samples="
            f"{settings.num_cycles * max(1, settings.num_samples // settings.num_cycles)}."
        )


def schedule_at(settings: SGMCMCSettings, t: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Step size and temperature at step ``t`` (0-based)."""
    one = jnp.ones(())
    if settings.schedule == "constant":
        return jnp.asarray(settings.step_size) * one, one
    if settings.schedule == "polynomial":
        return settings.step_size * (1.0 + t / settings.decay_steps) ** -0.55, one
    plan = _plan(settings)
    within = t % plan.cycle_length
    step = settings.step_size / 2 * (jnp.cos(math.pi * within / plan.cycle_length) + 1.0)
    return step, (within >= plan.explore).astype(step.dtype)


def step_size_at(settings: SGMCMCSettings, t: jax.Array) -> jax.Array:
    """Step size at step ``t`` (0-based)."""
    return schedule_at(settings, t)[0]


class PSGLDState(NamedTuple):
    position: ArrayTree
    square_avg: ArrayTree  # running mean of squared gradients


def rmsprop_sgld(
    grad_estimator: Callable, decay: float = 0.99, epsilon: float = 1e-5
) -> blackjax.base.SamplingAlgorithm:
    """Preconditioned SGLD (Li et al., 2016) as BlackJAX-style pure ``init`` / ``step``.

    ``init(position, minibatch)`` starts the squared-gradient average from one minibatch;
    ``step(rng_key, state, minibatch, step_size, temperature=1.0)`` moves every coordinate by
    ``step_size * G * grad + sqrt(2 * temperature * step_size * G) * noise`` with
    ``G = 1 / (epsilon + sqrt(square_avg))`` (the small correction term Gamma is dropped, as in
    the paper's experiments). ``grad_estimator(position, minibatch)`` is BlackJAX's
    full-data-scaled gradient of the log posterior.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from blackjax.sgmcmc.gradients import grad_estimator
    >>> grad = grad_estimator(lambda m: -0.5 * m ** 2, lambda m, y: -0.5 * (y - m) ** 2, 100)
    >>> psgld = rmsprop_sgld(grad)
    >>> batch = jnp.ones(10)
    >>> state = psgld.init(jnp.zeros(()), batch)
    >>> state = psgld.step(jax.random.key(0), state, batch, 1e-2)
    >>> state.position.shape
    ()
    """

    def init(position: ArrayTree, minibatch: Any) -> PSGLDState:
        grad = grad_estimator(position, minibatch)
        return PSGLDState(position, jax.tree_util.tree_map(jnp.square, grad))

    def step(rng_key, state: PSGLDState, minibatch, step_size, temperature=1.0) -> PSGLDState:
        grad = grad_estimator(state.position, minibatch)
        square = jax.tree_util.tree_map(
            lambda s, g: decay * s + (1 - decay) * g * g, state.square_avg, grad
        )
        noise = generate_gaussian_noise(rng_key, state.position)

        def move(p, g, s, n):
            precondition = 1.0 / (epsilon + jnp.sqrt(s))
            drift = step_size * precondition * g
            return p + drift + jnp.sqrt(2 * temperature * step_size * precondition) * n

        position = jax.tree_util.tree_map(move, state.position, grad, square, noise)
        return PSGLDState(position, square)

    return blackjax.base.SamplingAlgorithm(init, step)


def _kernel(settings: SGMCMCSettings, estimator: Callable) -> Callable:
    """``kernel(key, (position, extra), batch, step, temperature) -> (position, extra)``;
    ``extra`` is pSGLD's running squared gradient, ``()`` for the other samplers."""
    if settings.sampler == "sghmc":
        sghmc = blackjax.sghmc.build_kernel(alpha=settings.friction)

        def kernel(key, state, batch, step, temperature):
            position = sghmc(
                key, state[0], estimator, batch, step, settings.num_integration_steps, temperature
            )
            return position, state[1]

        return kernel
    if settings.preconditioner == "rmsprop":
        psgld = rmsprop_sgld(estimator, settings.rmsprop_decay, settings.rmsprop_epsilon)

        def kernel(key, state, batch, step, temperature):
            new = psgld.step(key, PSGLDState(*state), batch, step, temperature)
            return new.position, new.square_avg

        return kernel
    sgld = blackjax.sgld.build_kernel()

    def kernel(key, state, batch, step, temperature):
        return sgld(key, state[0], estimator, batch, step, temperature), state[1]

    return kernel


@functools.lru_cache(maxsize=32)
def _compiled(
    logprior_fn: Callable,
    loglik_fn: Callable,
    n_data: int,
    settings: SGMCMCSettings,
    mesh: Any = None,
    vectorized: bool = True,
):
    """Jitted ``start``, ``explore`` and ``draw`` programs over all chains.

    A run is a list of *units*: per cycle, ``explore`` single steps, then ``draws`` units of
    ``thinning`` steps that each end in a kept draw. ``explore(carry, keys, t)`` and
    ``draw(carry, keys, t)`` advance through a range of one kind of unit (``t``: each unit's
    first step), so a run can stop after any unit for a checkpoint."""
    estimator = grad_estimator(logprior_fn, loglik_fn, n_data)
    kernel = _kernel(settings, estimator)
    plan = _plan(settings)
    every = report_every(plan.total_steps)

    def sampler(X, y, index):
        def batch(k):
            idx = jax.random.randint(k, (settings.batch_size,), 0, n_data)
            return X[idx], y[idx]

        def step(state, inputs):
            t, k = inputs
            batch_key, move_key = jax.random.split(k)
            size, temperature = schedule_at(settings, t)
            state = kernel(move_key, state, batch(batch_key), size, temperature)
            tick(settings.progress_bar, t + 1, every, plan.total_steps, index * plan.total_steps)
            return state, None

        return batch, step

    def start_chain(key, position, X, y, index):
        batch, _ = sampler(X, y, index)
        init_key, run_key = jax.random.split(key)
        extra: Any = ()
        if settings.preconditioner == "rmsprop":
            psgld = rmsprop_sgld(estimator, settings.rmsprop_decay, settings.rmsprop_epsilon)
            extra = psgld.init(position, batch(init_key)).square_avg
        cycle_keys = jax.vmap(jax.random.split)(jax.random.split(run_key, plan.cycles))
        explore_keys = jax.vmap(lambda k: jax.random.split(k, plan.explore))(cycle_keys[:, 0])
        draw_keys = jax.vmap(lambda k: jax.random.split(k, plan.draws))(cycle_keys[:, 1])
        return (position, extra), explore_keys.reshape(-1), draw_keys.reshape(-1)

    def explore_chain(carry, keys, t, X, y, index):
        _, step = sampler(X, y, index)
        return jax.lax.scan(step, carry, (t, keys))[0]

    def draw_chain(carry, keys, t, X, y, index):
        _, step = sampler(X, y, index)

        def draw(state, inputs):
            first, k = inputs
            steps = first + jnp.arange(plan.thinning)
            state = jax.lax.scan(step, state, (steps, jax.random.split(k, plan.thinning)))[0]
            return state, state[0]

        return jax.lax.scan(draw, carry, (t, keys))

    return (
        jax.jit(run_items(start_chain, mesh, vectorized, 2)),
        jax.jit(run_items(explore_chain, mesh, vectorized, 2)),
        jax.jit(run_items(draw_chain, mesh, vectorized, 2)),
    )


def _units(plan: _Plan) -> list[tuple[str, int, int]]:
    """The run's units in order as ``(kind, index among that kind, first step)``."""
    units = []
    for c in range(plan.cycles):
        first = c * plan.cycle_length
        units += [("explore", c * plan.explore + e, first + e) for e in range(plan.explore)]
        units += [
            ("draw", c * plan.draws + i, first + plan.explore + i * plan.thinning)
            for i in range(plan.draws)
        ]
    return units


def _run(programs, rng_key, starts, data, settings, checkpoint, fingerprint, mesh=None):
    """Every unit through the sampling driver; the draws ``(chains, S, ...)``."""
    start, explore, draw = programs
    keys = jax.random.split(rng_key, settings.num_chains)
    if spans_processes(mesh):
        keys, starts = split_leading(mesh, (keys, starts))
    carry, explore_keys, draw_keys = start(keys, starts, *data)
    draws = jax.tree_util.tree_map(
        lambda a: np.zeros((a.shape[0], settings.num_samples, *a.shape[1:]), a.dtype), starts
    )
    units = [
        Unit(kind, index, np.int32(t), row=index if kind == "draw" else None)
        for kind, index, t in _units(_plan(settings))
    ]
    _, draws = drive(
        Programs({"explore": explore, "draw": draw}, frozenset({"draw"})),
        units,
        carry,
        {"explore": explore_keys, "draw": draw_keys},
        data,
        draws,
        mesh=mesh,
        checkpoint=checkpoint,
        fingerprint=fingerprint,
        where="sample_sgmcmc",
    )
    return draws


def sample_sgmcmc(
    rng_key: PRNGKey,
    logprior_fn: Callable[[ArrayTree], jax.Array],
    loglikelihood_fn: Callable[[ArrayTree, tuple[jax.Array, jax.Array]], jax.Array],
    initial_positions: ArrayTree,
    data: tuple[jax.Array, jax.Array],
    settings: SGMCMCSettings,
    devices: Any = None,
    checkpoint: Checkpointing | None = None,
) -> tuple[ArrayTree, dict[str, Any]]:
    """Run ``settings.num_chains`` SGLD / pSGLD / SGHMC chains (cyclical or not).

    Parameters
    ----------
    logprior_fn : callable
        ``log p(position)``.
    loglikelihood_fn : callable
        Log-likelihood of ONE example, ``loglikelihood_fn(position, (x, y))`` (BlackJAX's
        convention: minibatch gradients are averaged and scaled by the data size).
    initial_positions : pytree
        One start per chain (leading axis ``num_chains``).
    data : (X, y)
    settings : SGMCMCSettings
    devices : None, int or list of jax.Device
        Chains are split over these (default: all local devices).
    checkpoint : Checkpointing, optional
        Save the state every ``checkpoint.every`` iterations (a kept draw with its thinning
        steps counts as one); ``resume=True`` continues a killed run to the same draws.

    Returns
    -------
    Chains
        ``samples``: leaves ``(chains, num_samples, ...)``; ``seconds``; ``info["num_steps"]``
        (steps per chain).

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> X = jnp.zeros((100, 1)); y = jnp.ones(100)
    >>> lp = lambda m: -0.5 * m ** 2
    >>> ll = lambda m, xy: -0.5 * (xy[1] - m) ** 2  # posterior N(100/101, 1/101)
    >>> s = SGMCMCSettings(step_size=1e-3, num_burnin=500, num_samples=4000)
    >>> run = sample_sgmcmc(jax.random.key(0), lp, ll, jnp.zeros(1), (X, y), s)
    >>> round(float(run.samples.mean()), 1)
    1.0
    """
    check_settings(settings)
    mesh = mesh_for(settings.num_chains, resolve_devices(devices, where="sample_sgmcmc"))
    vectorized = vectorize_items()
    n_data = int(data[0].shape[0])
    programs = _compiled(logprior_fn, loglikelihood_fn, n_data, settings, mesh, vectorized)
    total = _plan(settings).total_steps
    per_device = items_per_device(settings.num_chains, mesh, vectorized)
    name = ("p" if settings.preconditioner else "") + settings.sampler.upper()
    if settings.schedule == "cyclical":
        name = "cyclical " + name
    start = time.perf_counter()
    fingerprint = {
        "sampler": "sgmcmc",
        "settings": settings_fingerprint(settings),
        "logprior": identity(logprior_fn),
        "loglik": identity(loglikelihood_fn),
        "data": data_fingerprint(data),
        "starts": data_fingerprint(initial_positions),
        "rng_key": key_fingerprint(rng_key),
    }
    across = spans_processes(mesh)
    with scan_progress(settings.progress_bar, per_device * total, name):
        positions = _run(
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
    return Chains(positions, {}, time.perf_counter() - start, {"num_steps": total})


__all__ = [
    "PRECONDITIONERS",
    "SAMPLERS",
    "PSGLDState",
    "SCHEDULES",
    "SGMCMCSettings",
    "check_settings",
    "rmsprop_sgld",
    "sample_sgmcmc",
    "schedule_at",
    "step_size_at",
]
