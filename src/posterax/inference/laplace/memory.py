"""Predict the memory a Laplace structure needs *before* computing it, and refuse when it would
not fit (laplace-torch can try to allocate terabytes without a word).

The estimate counts the floats the curvature, its factorisation and one minibatch's working set
hold at once:

- ``"full"``: ``3 P^2`` (curvature, Cholesky/eigendecomposition, a transient copy) plus
  ``B C P`` per batch of per-example vjps;
- ``"kron"``: per dense layer ``4 ((d_in + 1)^2 + d_out^2)`` (factors and eigenbases) plus
  ``3 P`` and the batch's activations;
- ``"diag"``: ``4 P`` plus the batch's per-example vjps (``B C P``) for non-MLP networks;
- ``"lowrank"``: ``4 P (rank + 10)`` (sketch, QR, SVD) plus ``B K (rank + 10)``.
"""

from __future__ import annotations

import os

DEFAULT_FRACTION = 0.5  # of the RAM available now


def available_memory_bytes() -> int | None:
    """RAM available now (``os.sysconf``), or ``None`` where the platform does not say."""
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return None


def estimate_memory_bytes(
    hessian_structure: str,
    n_params: int,
    *,
    layer_shapes: list[tuple[int, int]] | None = None,
    batch_size: int = 256,
    n_outputs: int = 1,
    rank: int = 20,
    itemsize: int = 4,
    per_example_vjps: bool = True,
) -> int:
    """Bytes a structure needs for ``n_params`` selected weights.

    Parameters
    ----------
    hessian_structure : {"diag", "kron", "full", "lowrank"}
    n_params : int
        Selected weights ``P``.
    layer_shapes : list of (d_in, d_out), optional
        Dense layers covered by KFAC (``"kron"``).
    batch_size, n_outputs, rank, itemsize : int
    per_example_vjps : bool
        Whether the diagonal needs per-example vjps (non-MLP networks).

    Examples
    --------
    >>> estimate_memory_bytes("full", 100_000, batch_size=1) / 1e9  # 3 * P^2 float32
    120.0004
    """
    P, B, K = n_params, batch_size, n_outputs
    if hessian_structure == "full":
        floats = 3 * P * P + B * K * P
    elif hessian_structure == "kron":
        shapes = layer_shapes or []
        floats = sum(4 * ((a + 1) ** 2 + b**2) + B * (a + 1 + K * b) for a, b in shapes) + 3 * P
    elif hessian_structure == "diag":
        floats = 4 * P + (B * K * P if per_example_vjps else 0)
    elif hessian_structure == "lowrank":
        width = min(P, rank + 10)
        floats = 4 * P * width + B * K * width
    else:
        raise ValueError(f"unknown hessian_structure {hessian_structure!r}")
    return int(floats * itemsize)


def check_memory(
    hessian_structure: str,
    subset_of_weights: str,
    estimate: int,
    n_params: int,
    max_memory_bytes: int | None,
) -> int | None:
    """Raise ``ValueError`` when ``estimate`` exceeds the limit (``max_memory_bytes``, or half
    the available RAM); return the limit used."""
    limit = max_memory_bytes
    if limit is None:
        available = available_memory_bytes()
        limit = None if available is None else int(DEFAULT_FRACTION * available)
    if limit is None or estimate <= limit:
        return limit
    raise ValueError(
        f"The 'hessian_structure' parameter of fit_laplace: {hessian_structure!r} over "
        f"{n_params:,} weights (subset_of_weights={subset_of_weights!r}) needs about "
        f"{estimate / 1e9:.3g} GB, more than the limit of {limit / 1e9:.3g} GB "
        f"(max_memory_bytes={max_memory_bytes!r}; default half the available RAM). Use "
        "hessian_structure='kron' or 'diag', or subset_of_weights='last_layer', or raise "
        "max_memory_bytes if you know it fits."
    )


__all__ = ["DEFAULT_FRACTION", "available_memory_bytes", "check_memory", "estimate_memory_bytes"]
