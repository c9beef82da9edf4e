"""Memory-bounded prediction: summaries computed over chunks of input rows.

Pushing ``S`` posterior draws through a network at ``N`` inputs holds ``S × N`` activations per
hidden unit at once; for 10⁶ inputs and 1,000 draws of a 2×50 MLP that is hundreds of GB. A
summary (mean, sd, interval, class probabilities) needs only ``O(N)`` memory, so it is computed
chunk by chunk with the same parameter draws for every chunk (the draws depend on the key, not on
the inputs): the result equals the unchunked one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

DEFAULT_BUDGET_BYTES = 512 * 2**20  # per chunk, for the draws' activations and outputs
_SAFETY = 4  # temporaries beside the activations (XLA buffers, the summaries themselves)


def rows_per_chunk(n_rows: int, bytes_per_row: int | None, budget_bytes: int) -> int:
    """How many input rows fit in ``budget_bytes`` (all rows when the cost is unknown)."""
    if bytes_per_row is None or bytes_per_row <= 0:
        return max(1, n_rows)
    return int(max(1, min(n_rows, budget_bytes // (_SAFETY * bytes_per_row))))


def in_chunks(
    summarise: Callable[[np.ndarray], Any], inputs: np.ndarray, chunk: int, axis: int = -1
) -> Any:
    """``summarise(inputs)`` computed over row chunks and joined along the row axis ``axis`` of
    every returned array (a tuple of arrays is joined element by element).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(10.0)[:, None]
    >>> in_chunks(lambda rows: (rows[:, 0], 2 * rows[:, 0]), x, chunk=4)[1].tolist()
    [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 18.0]
    """
    if chunk >= inputs.shape[0]:
        return summarise(inputs)
    parts = [summarise(inputs[i : i + chunk]) for i in range(0, inputs.shape[0], chunk)]
    if isinstance(parts[0], tuple):
        return tuple(
            np.concatenate([np.asarray(p[k]) for p in parts], axis=axis)
            for k in range(len(parts[0]))
        )
    return np.concatenate([np.asarray(p) for p in parts], axis=axis)


__all__ = ["DEFAULT_BUDGET_BYTES", "in_chunks", "rows_per_chunk"]
