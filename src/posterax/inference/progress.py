"""A progress bar for samplers that run as one compiled program (NUTS, MALA, SG-MCMC).

The scan body reports its step number through ``jax.debug.callback`` about a hundred times per
run; a tqdm bar on the host follows the furthest chain (vmapped chains report separately).
Training, which runs in Python-level chunks, updates its bar between chunks instead.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np


class _Bar:
    """The one active bar (compiled programs run one at a time in this process)."""

    bar: Any = None

    @classmethod
    def update(cls, step: Any) -> None:
        if cls.bar is not None:
            cls.bar.update(max(0, int(np.max(step)) - cls.bar.n))


def resolve(progress_bar: bool | None) -> bool:
    """``None`` means: show a bar when stderr is a terminal."""
    return sys.stderr.isatty() if progress_bar is None else bool(progress_bar)


@contextlib.contextmanager
def scan_progress(enabled: bool, total: int, desc: str) -> Iterator[None]:
    """Show a bar of ``total`` steps while the compiled program inside the block runs."""
    if not enabled:
        yield
        return
    from tqdm.auto import tqdm

    _Bar.bar = tqdm(total=total, desc=desc, unit="step", file=sys.stderr, leave=False)
    try:
        yield
    finally:
        _Bar.bar.close()
        _Bar.bar = None


def report_every(total: int) -> int:
    """Steps between two reports: about a hundred per run."""
    return max(1, total // 100)


def tick(enabled: bool, step: jax.Array, every: int, total: int, offset: Any = 0) -> None:
    """Inside a scan body: report ``offset + step`` (``step`` 1-based, steps done) every
    ``every`` steps and at the last step, ``total``. ``offset`` counts the steps of the chains
    a device ran before this one (chains mapped one at a time).

    ``enabled`` is static, so a run without a bar compiles no callback at all.
    """
    if enabled:
        jax.lax.cond(
            (step % every == 0) | (step == total),
            lambda: jax.debug.callback(_Bar.update, offset + step),
            lambda: None,
        )


__all__ = ["report_every", "resolve", "scan_progress", "tick"]
