"""The sampling driver: one loop that advances any MCMC method's compiled programs through a run.

A sampler (NUTS, MALA, SG-MCMC) supplies its compiled programs and describes its run as a list of
*units*, each of one *kind* (NUTS: warmup and draw steps; MALA: warmup steps and thinned draws;
SG-MCMC: exploration steps and thinned draws). The driver alone owns what every sampler needs
around them: consecutive units of one kind run as one call of that kind's program, cut into
segments with a checkpoint after each (resuming a killed run gives exactly the uninterrupted
run's draws), the kept draws are written into host buffers ``(chains, draws, ...)``, and under
JAX's multi-process runtime the per-step inputs are made global and the draws gathered to every
process.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from posterax.inference.devices import gathered, replicated, spans_processes
from posterax.inference.resumable import Checkpointing, open_store, segments, write_rows


@dataclasses.dataclass(frozen=True)
class Unit:
    """One unit of a run: its ``kind`` (which program advances it), the index of its key in that
    kind's keys, its per-step input ``step`` (a number or a tuple of numbers, numpy-typed) and,
    for a unit that ends in a kept draw, the draw's ``row``."""

    kind: str
    key: int
    step: Any
    row: int | None = None


@dataclasses.dataclass(frozen=True)
class Programs:
    """``advance[kind](carry, keys, steps, *data)`` returns the carry, or ``(carry, out)`` for a
    kind in ``draws`` (``out``: per unit, with a leading chain axis)."""

    advance: dict[str, Callable[..., Any]]
    draws: frozenset[str]


def drive(
    programs: Programs,
    units: Sequence[Unit],
    carry: Any,
    keys: dict[str, Any],
    data: tuple[Any, ...],
    buffers: Any,
    *,
    mesh: Any = None,
    checkpoint: Checkpointing | None = None,
    fingerprint: dict[str, Any] | None = None,
    where: str = "the sampler",
) -> tuple[Any, Any]:
    """Run ``units`` from ``carry``; ``keys[kind]`` are that kind's keys ``(chains, n, ...)``.
    Draws land in ``buffers`` (host arrays ``(chains, draws, ...)``, the structure of a draw
    program's ``out``). Returns the final carry and the buffers."""
    across = spans_processes(mesh)
    if across and checkpoint is not None:
        raise ValueError(
            f"The 'checkpoint' parameter of {where} is not supported under JAX's multi-process "
            "runtime yet (every process would write the same files). Run without "
            "checkpoint_dir there."
        )
    done, store = 0, None
    if checkpoint is not None:
        store = open_store(checkpoint, fingerprint or {}, where=where)
        loaded = store.load({"carry": carry, "draws": buffers})
        if loaded is not None:
            done, tree = loaded
            carry, buffers = tree["carry"], tree["draws"]
    kind_changes = [i for i in range(1, len(units)) if units[i].kind != units[i - 1].kind]
    every = checkpoint.every if checkpoint is not None else len(units)
    for first, last in segments(done, len(units), every, kind_changes):
        part = units[first:last]
        kind = part[0].kind
        steps = jax.tree_util.tree_map(lambda *s: np.asarray(s), *(u.step for u in part))
        steps = replicated(mesh, steps) if across else steps
        unit_keys = keys[kind][:, part[0].key : part[-1].key + 1]
        result = programs.advance[kind](carry, unit_keys, steps, *data)
        if kind in programs.draws:
            carry, out = result
            rows = slice(part[0].row, part[-1].row + 1)
            write_rows(buffers, gathered(out) if across else out, rows)
        else:
            carry = result
        if store is not None:
            store.save(last, {"carry": carry, "draws": buffers})
    return carry, buffers


__all__ = ["Programs", "Unit", "drive"]
