"""Memory-bounded prediction: summaries computed over chunks of input rows.

Pushing ``S`` posterior draws through a network at ``N`` inputs holds ``S × N`` outputs (and, with
every draw at once, ``S × N`` activations per hidden unit); for 10⁶ inputs and 1,000 draws of a
2×50 MLP that is hundreds of GB. A summary (mean, sd, interval, class probabilities) needs only
``O(N)`` memory, so it is computed chunk by chunk with the same parameter draws for every chunk
(the draws depend on the key, not on the inputs): the result equals the unchunked one (on a GPU,
up to the TF32 rounding of its default float32 matmuls, whose kernel depends on the chunk's shape:
about 1e-3 relative).

:func:`chunked_summary` runs one compiled program per chunk that goes from the inputs to the
summaries (the per-draw outputs never leave it): draws one after another on a CPU (one GEMM per
draw and layer, with the rows as the long side), all at once on an accelerator; every chunk has
the same shape (the last one is padded), so the program is compiled once. Mixture quantiles use a
safeguarded Newton iteration on the exact mixture CDF (a few passes over the draws instead of the
40 of bisection) and agree with :func:`posterax.predictive.inputs.mixture_quantile` to float
precision (closer to the exact quantile in the upper tail, whose CDF they take from that side).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri

from posterax.predictive.memory import format_bytes
from posterax.predictive.sampling import _draw

DEFAULT_BUDGET_BYTES = 512 * 2**20  # per chunk, for the draws' activations and outputs
_SAFETY = 4  # temporaries beside the activations (XLA buffers, the summaries themselves)
# Chunks computing at once: one runs while the next is dispatched (dispatch is asynchronous).
_IN_FLIGHT = 2
# plan_rows: summary_bytes_per_row is at or above XLA's own count of a chunk program's buffers
# (compiled.memory_analysis(), CPU and GPU); each of the chunks in flight holds that much.
_PLAN_SAFETY = _IN_FLIGHT
# Draw-by-row elements per chunk beyond which bigger chunks stop paying on a CPU (caches) and
# on an accelerator (it is busy already); the memory budget can only make chunks smaller.
_CPU_CHUNK_ELEMENTS = 2**22
_ACCELERATOR_CHUNK_ELEMENTS = 2**27
_NEWTON_MAX_ITERATIONS = 60  # bisection steps when Newton fails: enough for any float bracket


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


# ----------------------------------------------------------------------------------------------
# What is computed per chunk.


@dataclasses.dataclass(frozen=True)
class Summary:
    """A summary of the predictive at each row (hashable: a static argument of the program).

    ``"moments"``: predictive mean and sd ``(N,)`` each; ``"quantiles"``: ``(Q, N)`` at
    ``levels`` of the predictive (``kind="predictive"``) or of the regression function
    (``kind="mean"``); ``"probs"``: posterior-averaged class probabilities ``(N, K)``.
    """

    name: str
    levels: tuple[float, ...] = ()
    kind: str = "predictive"

    @property
    def row_axis(self) -> int:
        return 1 if self.name == "quantiles" else 0


MOMENTS = Summary("moments")
PROBS = Summary("probs")


def quantiles(levels: Any, kind: str = "predictive") -> Summary:
    return Summary("quantiles", tuple(float(v) for v in np.atleast_1d(levels)), kind)


def summary_bytes_per_row(
    summary: Summary, n_draws: int, n_entries: int, hidden: tuple[int, ...], *, all_draws: bool
) -> int:
    """float32 bytes one row costs in the chunk program (before the safety factor).

    The per-draw entries (``n_entries``: 2 for regression, ``K`` logits for classification) of
    every draw, a transformed copy of them (class probabilities: two) and a quantile iteration's
    temporaries; plus the activations of the draws in flight (one at a time on a CPU,
    ``all_draws`` on an accelerator). It agrees with XLA's count of the chunk program's buffers
    (``compiled.memory_analysis()``) within about 10% for the 2x50 MLP of the benchmark.
    """
    in_flight = n_draws if all_draws else 1
    widest = 2 * max(hidden, default=1) + n_entries  # a layer's input and output, and the head
    copies = {"moments": 2 * n_entries, "quantiles": 2 * n_entries + 2, "probs": 3 * n_entries}
    return 4 * (n_draws * copies[summary.name] + in_flight * widest)


# ----------------------------------------------------------------------------------------------
# Mixture quantiles by safeguarded Newton.

_INV_SQRT2 = 1 / math.sqrt(2.0)
_INV_SQRT_2PI = 1 / math.sqrt(2.0 * math.pi)


def _mixture_quantiles(mean: jax.Array, scale: jax.Array, levels: jax.Array) -> jax.Array:
    """Quantiles ``(Q, N)`` at ``levels`` ``(Q,)`` of the equal-weight Gaussian mixtures given by
    draws ``(S, N)``.

    Newton's method on the exact mixture CDF from the moment-matched Normal quantile, kept
    inside a bracket that every step shrinks (a step that leaves it is replaced by bisection);
    the CDF is taken from the tail the level is in, so upper quantiles keep their precision.
    Each row stops, and keeps its value, when its step falls below 4 ulp of its scale, so a
    row's result does not depend on the other rows of its chunk. One level at a time: XLA on a
    CPU reduces ``(S, N)`` arrays over draws about three times faster than ``(S, Q, N)`` ones.
    """
    centre = jnp.mean(mean, axis=0)
    sd = jnp.sqrt(jnp.mean(jnp.square(scale), axis=0) + jnp.var(mean, axis=0))
    return jax.lax.map(lambda q: _mixture_quantile(mean, scale, centre, sd, q), levels)


def _mixture_quantile(mean, scale, centre, sd, q):
    """One level of :func:`_mixture_quantiles`: ``(N,)``."""
    dtype = mean.dtype
    q = q.astype(dtype)
    z_q = ndtri(q)
    comp = mean + scale * z_q  # component quantiles: the mixture's lies between their extremes
    lo, hi = jnp.min(comp, axis=0), jnp.max(comp, axis=0)
    if mean.shape[0] == 1:
        return comp[0]
    x = jnp.clip(centre + sd * z_q, lo, hi)
    tol = 4 * jnp.finfo(dtype).eps * (jnp.abs(x) + sd)
    sign = jnp.where(q > 0.5, 1, -1).astype(dtype)  # CDF - q from the level's own tail: the
    tail = jnp.where(q > 0.5, 1 - q, q)  # upper tail's 1 - CDF keeps its precision

    def body(state):
        it, x, lo, hi, done = state
        z = (x - mean) / scale
        gap = sign * (tail - jnp.mean(0.5 * jax.lax.erfc(sign * z * _INV_SQRT2), axis=0))
        dens = jnp.mean(jnp.exp(-0.5 * jnp.square(z)) / scale, axis=0) * _INV_SQRT_2PI
        below = gap < 0
        lo, hi = jnp.where(below, x, lo), jnp.where(below, hi, x)
        newton = x - gap / dens
        ok = (newton >= lo) & (newton <= hi)  # False for NaN (zero density)
        step = jnp.where(ok, newton, 0.5 * (lo + hi))
        converged = (jnp.abs(step - x) <= tol) | (hi - lo <= tol)
        return it + 1, jnp.where(done, x, step), lo, hi, done | converged

    def cond(state):
        it, _, _, _, done = state
        return (it < _NEWTON_MAX_ITERATIONS) & ~jnp.all(done)

    state = (0, x, lo, hi, jnp.zeros(x.shape, bool))
    return jax.lax.while_loop(cond, body, state)[1]


def _regression_summary(mean: jax.Array, scale: jax.Array, summary: Summary):
    if summary.name == "moments":  # the formulas of predictive_mean / predictive_std
        var_of_means = jnp.var(mean, axis=0)
        return jnp.mean(mean, axis=0), jnp.sqrt(jnp.mean(scale**2, axis=0) + var_of_means)
    levels = jnp.asarray(summary.levels, dtype=mean.dtype)
    if summary.kind == "mean":
        return (jnp.quantile(mean, levels, axis=0),)
    return (_mixture_quantiles(mean, scale, levels),)


@functools.partial(jax.jit, static_argnames=("apply_fn", "likelihood", "summary", "draws_at_once"))
def _chunk_program(params, X, shift, unit, *, apply_fn, likelihood, summary, draws_at_once):
    """Inputs ``(C, D)`` -> the summaries of one chunk; the draws never leave the program."""

    def one_draw(p):
        return likelihood.predictive(p, apply_fn(p, X))

    entries = jax.vmap(one_draw)(params) if draws_at_once else jax.lax.map(one_draw, params)
    if summary.name == "probs":
        return (jnp.mean(jax.nn.softmax(entries["logits"], axis=-1), axis=0),)
    return _regression_summary(entries["mean"] * unit + shift, entries["scale"] * unit, summary)


def draws_at_once(device: Any = None) -> bool:
    """Push every draw at once (an accelerator) or one draw after another (a CPU)?"""
    device = device if device is not None else jax.devices()[0]
    return getattr(device, "platform", "cpu") != "cpu"


def _ladder(n: int) -> int:
    """The smallest of 1, 2, 3, 4, 6, 8, 12, 16, 24... that is >= ``n``: chunk shapes come from
    a short list (few compilations) and padding wastes at most a third."""
    power = 1 << max(0, (n - 1).bit_length() - 1)  # largest power of two below n (n >= 2)
    if n <= power:
        return n
    return power + power // 2 if n <= power + power // 2 else 2 * power


def _ladder_floor(n: int) -> int:
    """The largest ladder value <= ``n`` (``n >= 1``)."""
    power = 1 << (n.bit_length() - 1)
    return power + power // 2 if power >= 2 and n >= power + power // 2 else power


def plan_rows(
    n_rows: int,
    bytes_per_row: int,
    budget_bytes: int,
    *,
    n_draws: int,
    fixed_bytes: int = 0,
    all_draws: bool = False,
    where: str = "predict",
    budget_source: str = "",
) -> int:
    """Rows per chunk: what fits ``budget_bytes`` (after ``fixed_bytes``, the parameter draws)
    with the safety factor, at most the rows beyond which chunks stop getting faster, on the
    ladder of shapes; raises ``ValueError`` when not even one row fits."""
    room = budget_bytes - fixed_bytes
    need = _PLAN_SAFETY * bytes_per_row
    if room < need:
        raise ValueError(
            f"{where}: the memory budget of {format_bytes(budget_bytes)}{budget_source} is too "
            f"small for even one input row: one row with {n_draws} posterior draw(s) needs about "
            f"{format_bytes(need)} ({need} bytes), plus {format_bytes(fixed_bytes)} for the "
            "parameter draws. Raise max_memory (e.g. max_memory='1GB'; None uses a quarter of "
            "the free memory) or predict with fewer draws."
        )
    elements = _ACCELERATOR_CHUNK_ELEMENTS if all_draws else _CPU_CHUNK_ELEMENTS
    fastest = max(1, elements // max(1, n_draws))
    cap = _ladder_floor(max(1, min(room // need, fastest)))
    if n_rows <= cap:
        return min(_ladder(max(1, n_rows)), cap)
    chunks = -(-n_rows // cap)
    return min(_ladder(-(-n_rows // chunks)), cap)


def chunked_summary(
    params: Any,
    X: np.ndarray,
    *,
    apply_fn: Any,
    likelihood: Any,
    summary: Summary,
    rows: int,
    shift: float = 0.0,
    unit: float = 1.0,
    all_draws: bool = False,
) -> tuple[np.ndarray, ...]:
    """The ``summary`` of the predictive at every row of ``X`` ``(N, D)`` from parameter draws
    ``params`` (leading axis ``S``), computed ``rows`` rows at a time.

    Regression entries are mapped to ``mean * unit + shift`` and ``scale * unit`` first (the
    estimators' target standardisation). Returns a tuple of NumPy arrays whose row axis is
    ``summary.row_axis``.
    """
    X = np.asarray(X)
    n = X.shape[0]
    run = functools.partial(
        _chunk_program,
        apply_fn=apply_fn,
        likelihood=likelihood,
        summary=summary,
        draws_at_once=all_draws,
    )
    shift, unit = jnp.float32(shift), jnp.float32(unit)
    parts: list = []
    for start in range(0, max(n, 1), rows):
        block = X[start : start + rows]
        if block.shape[0] < rows:  # pad the last chunk: one shape, one compilation
            block = np.concatenate([block, np.zeros((rows - block.shape[0], *X.shape[1:]))])
        if len(parts) >= _IN_FLIGHT:  # dispatch is asynchronous: bound the chunks in memory
            jax.block_until_ready(parts[-_IN_FLIGHT])
        parts.append(run(params, jnp.asarray(block), shift, unit))
    axis = summary.row_axis
    out = []
    for k in range(len(parts[0])):
        joined = np.concatenate([np.asarray(p[k]) for p in parts], axis=axis)
        out.append(np.take(joined, np.arange(n), axis=axis) if joined.shape[axis] != n else joined)
    return tuple(out)


def _device_of(params: Any) -> Any:
    """The device the draws live on (where the prediction runs), else JAX's first device."""
    for leaf in jax.tree_util.tree_leaves(params):
        devices = getattr(leaf, "devices", None)
        if devices is not None:
            return sorted(devices(), key=lambda d: d.id)[0]
    return jax.devices()[0]


def summarise_posterior(
    posterior: Any,
    X: np.ndarray,
    summary: Summary,
    *,
    rng_key: Any,
    n_samples: int | None,
    budget_bytes: int,
    bytes_per_row: Callable[[int, bool], int],
    where: str = "predict",
    budget_source: str = "",
) -> tuple[np.ndarray, ...]:
    """The ``summary`` of the posterior predictive at the rows of ``X`` ``(N, D)``, in chunks that
    fit ``budget_bytes``.

    The parameter draws (``n_samples`` of them, or all stored draws, picked with ``rng_key`` as
    :func:`posterax.predictive.predictive_samples` picks them) are made once and serve every
    chunk. ``bytes_per_row(n_draws, all_draws)`` is what one row costs the chunk program;
    ``ValueError`` when not even one row fits. ``budget_source`` is appended to the budget in that
    error (e.g. ``" (max_memory='1KB')"``).
    """
    params = _draw(posterior, rng_key, n_samples)
    leaves = jax.tree_util.tree_leaves(params)
    n_draws = int(leaves[0].shape[0])
    device = _device_of(params)
    all_draws = draws_at_once(device)
    rows = plan_rows(
        X.shape[0],
        bytes_per_row(n_draws, all_draws),
        budget_bytes,
        n_draws=n_draws,
        fixed_bytes=sum(int(np.prod(leaf.shape)) * leaf.dtype.itemsize for leaf in leaves),
        all_draws=all_draws,
        where=where,
        budget_source=budget_source,
    )
    return chunked_summary(
        params,
        X,
        apply_fn=posterior.apply_fn,
        likelihood=posterior.likelihood,
        summary=summary,
        rows=rows,
        all_draws=all_draws,
    )


__all__ = [
    "DEFAULT_BUDGET_BYTES",
    "MOMENTS",
    "PROBS",
    "Summary",
    "chunked_summary",
    "draws_at_once",
    "in_chunks",
    "plan_rows",
    "quantiles",
    "rows_per_chunk",
    "summarise_posterior",
    "summary_bytes_per_row",
]
