"""A hand-written JAX network: ``apply_fn(params, x)`` and its params."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass(frozen=True, eq=False)
class Functional:
    """``apply_fn(params, x) -> outputs`` over a batch ``x`` and a params pytree.

    Parameters
    ----------
    apply_fn : callable
        Pure JAX: ``(params, x of shape (N, ...)) -> (N, K)`` (or ``(N,)``) outputs.
    params : pytree of arrays
        The initial params (the structure every method works over).
    init : callable, optional
        ``init(rng_key) -> params`` for fresh starting points (ensemble members, chains).
        Without it, each matrix-shaped leaf is redrawn from a Normal with the sd of the given
        initial leaf and the other leaves keep their initial values.

    Examples
    --------
    >>> import jax.numpy as jnp, posterax as px
    >>> net = px.networks.Functional(lambda p, x: x @ p["w"] + p["b"],
    ...                              {"w": jnp.zeros((3, 1)), "b": jnp.zeros(1)})
    """

    apply_fn: Callable[[Any, Any], Any]
    params: Any
    init: Callable[[Any], Any] | None = None


__all__ = ["Functional"]
