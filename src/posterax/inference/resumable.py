"""Long runs in segments with a checkpoint after each: what samplers and trainers share.

A run with ``Checkpointing`` advances ``every`` steps per compiled call and saves its state
(the carry and the draws kept so far) after each call through
:class:`~posterax.inference.checkpoint.CheckpointStore` (atomic, checksummed, no pickle).
With ``resume=True`` it continues from the last checkpoint; the segments are the same as in an
uninterrupted run, so the draws are too.
"""

from __future__ import annotations

import dataclasses
import itertools
import numbers
import os
from typing import Any

import jax
import numpy as np

from posterax.inference.checkpoint import CheckpointStore, data_digest


@dataclasses.dataclass(frozen=True)
class Checkpointing:
    """Where and how often a run saves its state, and whether to continue a saved one."""

    directory: Any
    every: int = 500
    resume: bool = False
    where: str | None = None  # the user-facing caller named in messages (e.g. an estimator's fit)


def checkpointing(directory: Any, every: Any, resume: Any, *, where: str) -> Checkpointing | None:
    """Validated settings (``None`` when ``directory`` is ``None``: no checkpoints)."""
    if not isinstance(resume, bool):
        raise TypeError(f"The 'resume' parameter of {where} must be True or False. Got {resume!r}.")
    if directory is None:
        if resume:
            raise ValueError(
                f"The 'resume' parameter of {where} needs a checkpoint to resume from, but "
                "checkpoint_dir is None. Set checkpoint_dir to the directory of the killed run."
            )
        return None
    if not isinstance(directory, str | os.PathLike) or not os.fspath(directory):
        raise TypeError(
            f"The 'checkpoint_dir' parameter of {where} must be None or a directory path (str "
            f"or pathlib.Path). Got {directory!r}."
        )
    if isinstance(every, bool) or not isinstance(every, numbers.Integral) or every < 1:
        raise ValueError(
            f"The 'checkpoint_every' parameter of {where} must be an int >= 1 (steps, or epochs, "
            f"between checkpoints). Got {every!r}."
        )
    return Checkpointing(directory, int(every), resume, where)


def open_store(settings: Checkpointing, fingerprint: dict[str, Any], *, where: str):
    """The run's store; refuses to start over a checkpoint unless resuming, so a saved run is
    never overwritten by accident."""
    where = settings.where or where
    store = CheckpointStore(
        settings.directory, {**fingerprint, "every": settings.every}, where=where
    )
    if store.exists() and not settings.resume:
        raise FileExistsError(
            f"The 'checkpoint_dir' parameter of {where} names {str(store.directory)!r}, which "
            "already holds a checkpoint. Pass resume=True to continue that run, or another "
            f"checkpoint_dir, or delete {str(store.path)!r} to start over."
        )
    return store


def identity(fn: Any) -> str:
    """A name for a log density / loss that is the same in every process (no addresses)."""
    text = repr(fn)
    if dataclasses.is_dataclass(fn) and " at 0x" not in text:
        return text
    kind = fn if callable(fn) and hasattr(fn, "__qualname__") else type(fn)
    return f"{kind.__module__}.{kind.__qualname__}"


def key_fingerprint(rng_key: Any) -> list[int]:
    """The key's raw bits (typed or legacy uint32 keys)."""
    if jax.dtypes.issubdtype(getattr(rng_key, "dtype", None), jax.dtypes.prng_key):
        rng_key = jax.random.key_data(rng_key)
    return np.asarray(rng_key).ravel().tolist()


def settings_fingerprint(settings: Any) -> dict[str, Any]:
    """A settings dataclass or NamedTuple as a dict, without the progress bar (which changes
    nothing in the result)."""
    fields = settings._asdict() if hasattr(settings, "_asdict") else dataclasses.asdict(settings)
    return {k: v for k, v in fields.items() if k != "progress_bar"}


def data_fingerprint(data: Any) -> str:
    return data_digest(*(np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(data)))


def write_rows(buffers: Any, outputs: Any, rows: slice, skip: int = 0) -> None:
    """Copy a segment's per-step outputs ``(chains, steps, ...)``, from step ``skip`` on, into
    ``rows`` of the host draw buffers ``(chains, draws, ...)`` (the same pytree structure)."""
    for buffer, out in zip(
        jax.tree_util.tree_leaves(buffers), jax.tree_util.tree_leaves(outputs), strict=True
    ):
        buffer[:, rows] = np.asarray(out)[:, skip:]


def segments(start: int, total: int, every: int, cuts: Any = ()) -> list[tuple[int, int]]:
    """``[start, total)`` cut at multiples of ``every`` and at ``cuts`` (the same cuts whatever
    ``start``)."""
    inner = {c for c in cuts if start < c < total}
    cuts = sorted({start, total, *inner, *range(every * (start // every + 1), total, every)})
    return list(itertools.pairwise(cuts))


__all__ = [
    "Checkpointing",
    "checkpointing",
    "data_fingerprint",
    "identity",
    "key_fingerprint",
    "open_store",
    "segments",
    "settings_fingerprint",
    "write_rows",
]
