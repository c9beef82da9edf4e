"""Type aliases shared by every layer.

Shapes are written in the jaxtyping convention: ``Float[Array, "S N"]`` is a float array with a
draw axis ``S`` and an input axis ``N``.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import jax
import numpy as np
from jaxtyping import Array, Float

PRNGKey: TypeAlias = jax.Array
"""A JAX random key (``jax.random.key(0)`` or ``jax.random.PRNGKey(0)``)."""

ArrayTree: TypeAlias = Any
"""A pytree of arrays: a dict, list, tuple or NamedTuple whose leaves are arrays."""

ArrayLike: TypeAlias = np.ndarray | jax.Array | list | tuple
"""Anything ``numpy.asarray`` accepts as numeric data."""

DrawsByInputs: TypeAlias = Float[Array, "S N"]  # noqa: F722 (jaxtyping shape string)
DrawsByInputsByClasses: TypeAlias = Float[Array, "S N K"]  # noqa: F722

__all__ = [
    "Array",
    "ArrayLike",
    "ArrayTree",
    "DrawsByInputs",
    "DrawsByInputsByClasses",
    "Float",
    "PRNGKey",
]
