"""Curvature of the negative log-likelihood at the MAP, over the selected weights.

Structures (all accumulated over minibatches in one ``lax.scan``, so memory does not grow with
N; padded rows carry zero weight):

- ``"diag"``: the exact diagonal of the GGN / empirical Fisher. For posterax MLP heads it comes
  from layer inputs and output gradients (``(x^2)^T (g^2)``, no per-example Jacobians; see
  :mod:`.kfac`); for any other ``apply_fn`` from per-example vjps of the factor ``L_n``.
- ``"full"``: ``sum_n (J_n^T L_n)(J_n^T L_n)^T`` from per-example vjps (``B x C x P`` per batch).
- ``"kron"``: KFAC blocks per dense layer (:mod:`.kfac`), diagonal blocks for everything else.
- ``"lowrank"``: top-k eigenpairs by a randomised Nyström approximation built from GGN-vector
  products (``jax.linearize`` + vjp), with ``n_power`` power iterations.

``curvature="hessian"`` (exact Hessian) is available for ``"full"`` and ``"diag"`` (small
models). For a homoscedastic Gaussian everything is at unit noise (see :mod:`.output_hessian`).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from posterax.inference.devices import constrain_rows
from posterax.inference.laplace.output_hessian import (
    log_lik_2d,
    output_factor,
    outputs_2d,
    unit_noise,
)

STRUCTURES = ("diag", "kron", "full", "lowrank")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class DiagCurvature:
    """Diagonal curvature ``h`` (P,) over the selected weights."""

    h: jax.Array

    def diagonal(self) -> jax.Array:
        return self.h

    def to_dense(self) -> jax.Array:
        return jnp.diag(self.h)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class FullCurvature:
    """Dense curvature ``H`` (P, P) and its eigenvalues (for fast scalar-prior evidence)."""

    H: jax.Array
    eigvals: jax.Array

    def diagonal(self) -> jax.Array:
        return jnp.diag(self.H)

    def to_dense(self) -> jax.Array:
        return self.H


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LowRankCurvature:
    """``H ~ U diag(lam) U^T`` with orthonormal ``U`` (P, k)."""

    U: jax.Array
    lam: jax.Array

    def diagonal(self) -> jax.Array:
        return jnp.sum(self.U**2 * self.lam, axis=1)

    def to_dense(self) -> jax.Array:
        return (self.U * self.lam) @ self.U.T


def data_batches(X: jax.Array, y: jax.Array, batch_size: int):
    """``(n_batches, B, ...)`` arrays of X, y and a 0/1 row weight (padding rows weigh 0)."""
    n = X.shape[0]
    size = min(batch_size, n)
    n_batches = math.ceil(n / size)
    pad = n_batches * size - n

    def split(a):
        a = jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1))
        return a.reshape(n_batches, size, *a.shape[1:])

    weight = (jnp.arange(n_batches * size) < n).astype(X.dtype).reshape(n_batches, size)
    return split(X), split(y), weight


def _problem(map_flat, index, extras, apply_fn, likelihood, unravel):
    """The MAP params at unit noise and ``f_sel(theta, X) -> (B, K)`` over selected weights."""
    params0 = unit_noise(likelihood, {"net": unravel(map_flat), **extras})

    def f_sel(theta, X):
        net = unravel(map_flat.at[index].set(theta))
        return outputs_2d(apply_fn, {**params0, "net": net}, X)

    return params0, f_sel


@functools.partial(
    jax.jit,
    static_argnames=(
        "apply_fn",
        "likelihood",
        "unravel",
        "curvature",
        "structure",
        "squeeze",
        "mesh",
    ),
)
def generic_curvature(
    map_flat,
    index,
    extras,
    Xb,
    yb,
    wb,
    *,
    apply_fn,
    likelihood,
    unravel,
    curvature,
    structure,
    squeeze,
    mesh=None,
):
    """Diagonal (``structure="diag"``) or dense (``"full"``) curvature over the selected weights
    by per-example vjps of ``L_n`` (or the exact Hessian for ``curvature="hessian"``)."""
    params0, f_sel = _problem(map_flat, index, extras, apply_fn, likelihood, unravel)
    theta = map_flat[index]
    P = theta.shape[0]

    def body(acc, batch):
        X, y, w = constrain_rows(mesh, batch)  # data parallel: rows over the devices
        if curvature == "hessian":

            def nll(th):
                return -jnp.sum(w * log_lik_2d(likelihood, params0, f_sel(th, X), y, squeeze))

            H = jax.hessian(nll)(theta)
            return acc + (jnp.diag(H) if structure == "diag" else H), None
        f = f_sel(theta, X)
        L = output_factor(likelihood, params0, f, y, curvature, squeeze) * w[:, None, None]

        def per_example(x, L_n):
            _, vjp = jax.vjp(lambda th: f_sel(th, x[None])[0], theta)
            return jax.vmap(lambda col: vjp(col)[0])(L_n.T)  # (C, P)

        G = jax.vmap(per_example)(X, L).reshape(-1, P)
        return acc + (jnp.sum(G**2, axis=0) if structure == "diag" else G.T @ G), None

    init = jnp.zeros((P,) if structure == "diag" else (P, P), map_flat.dtype)
    return jax.lax.scan(body, init, (Xb, yb, wb))[0]


@functools.partial(
    jax.jit, static_argnames=("apply_fn", "likelihood", "unravel", "curvature", "squeeze", "mesh")
)
def ggn_matmat(
    map_flat,
    index,
    extras,
    Xb,
    yb,
    wb,
    V,
    *,
    apply_fn,
    likelihood,
    unravel,
    curvature,
    squeeze,
    mesh=None,
):
    """``H V`` for a (P, m) matrix ``V``: jvp, multiply by ``L L^T``, vjp; summed over data."""
    params0, f_sel = _problem(map_flat, index, extras, apply_fn, likelihood, unravel)
    theta = map_flat[index]

    def body(acc, batch):
        X, y, w = constrain_rows(mesh, batch)
        f, jvp = jax.linearize(lambda th: f_sel(th, X), theta)
        L = output_factor(likelihood, params0, f, y, curvature, squeeze) * w[:, None, None]
        JV = jax.vmap(jvp, in_axes=1, out_axes=-1)(V)  # (B, K, m)
        LLJV = jnp.einsum("bkc,blc,blm->bkm", L, L, JV)
        _, vjp = jax.vjp(lambda th: f_sel(th, X), theta)
        return acc + jax.vmap(lambda c: vjp(c)[0], in_axes=-1, out_axes=1)(LLJV), None

    return jax.lax.scan(body, jnp.zeros_like(V), (Xb, yb, wb))[0]


def lowrank_from_matmat(matmat, n_params: int, rank: int, rng_key, n_power: int = 1):
    """Top-``rank`` eigenpairs of a PSD operator by a randomised Nyström approximation
    (Tropp et al., 2017), after ``n_power`` power iterations on the sketch."""
    width = min(n_params, rank + 10)
    omega = jnp.linalg.qr(jax.random.normal(rng_key, (n_params, width)))[0]
    for _ in range(n_power):
        omega = jnp.linalg.qr(matmat(omega))[0]
    Y = matmat(omega)
    shift = jnp.finfo(Y.dtype).eps * jnp.sqrt(n_params) * jnp.linalg.norm(Y)
    Y = Y + shift * omega
    core = omega.T @ Y
    chol = jnp.linalg.cholesky(0.5 * (core + core.T))
    B = jax.scipy.linalg.solve_triangular(chol, Y.T, lower=True).T
    U, s, _ = jnp.linalg.svd(B, full_matrices=False)
    lam = jnp.clip(s**2 - shift, 0.0)
    k = min(rank, n_params)
    return LowRankCurvature(U[:, :k], lam[:k])


def full_curvature(H: jax.Array) -> FullCurvature:
    H = 0.5 * (H + H.T)
    return FullCurvature(H, jnp.linalg.eigvalsh(H))


def positions_in(selected_of: np.ndarray, flat_positions: np.ndarray) -> np.ndarray | None:
    """Selected-order positions of ``flat_positions`` if all are selected, ``None`` if none,
    and an error (``ValueError``) if only part are."""
    pos = selected_of[np.asarray(flat_positions).ravel()]
    if np.all(pos >= 0):
        return pos
    if np.all(pos < 0):
        return None
    raise ValueError(
        "The 'hessian_structure' parameter of fit_laplace: 'kron' needs every selected layer to "
        "be selected whole (all of its w and b). The subnetwork mask selects part of a layer. "
        "Use hessian_structure='full' or 'diag' for a subnetwork."
    )


__all__ = [
    "STRUCTURES",
    "DiagCurvature",
    "FullCurvature",
    "LowRankCurvature",
    "data_batches",
    "full_curvature",
    "generic_curvature",
    "ggn_matmat",
    "lowrank_from_matmat",
    "positions_in",
]
