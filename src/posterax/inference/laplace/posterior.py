"""The Laplace posterior ``N(theta*, (s H + diag(prior))^-1)`` over the selected weights.

``s`` is the noise scaling of the curvature (``sigma^-2`` for a Gaussian GGN, 1 otherwise) and
``prior`` the prior precision per selected weight. Each structure has a *factor* (a pytree)
that samples, multiplies by the covariance and gives ``log det`` of the precision:

- :class:`DiagFactor`: the precision's diagonal;
- :class:`FullFactor`: the precision's Cholesky factor;
- :class:`KronFactor`: per layer the eigenbases of ``A`` and ``G`` and the precision's
  eigenvalues ``s * a_i g_j + delta_layer`` (so ``delta`` must be constant within a layer);
- :class:`LowRankFactor`: ``D^1/2 (I + Q diag(t) Q^T) D^1/2`` with ``D = diag(prior)`` and
  orthonormal ``Q`` (a thin SVD of ``D^-1/2 U (s lam)^1/2``).

:class:`LaplaceGaussian` wraps a factor into a :class:`~posterax.base.ParameterDistribution`
over the full params (fixed weights at the MAP, plus point ``extras`` such as ``sigma``).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jax.scipy.linalg import cho_solve, solve_triangular

from posterax.inference.laplace.curvature import DiagCurvature, FullCurvature, LowRankCurvature
from posterax.inference.laplace.kfac import KronCurvature
from posterax.inference.network_model import draws_with_extras
from posterax.inference.vi import Unraveler
from posterax.types import ArrayTree, PRNGKey


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class DiagFactor:
    precision: jax.Array

    def noise(self, rng_key: PRNGKey, n: int) -> jax.Array:
        eps = jax.random.normal(rng_key, (n, self.precision.shape[0]), self.precision.dtype)
        return eps / jnp.sqrt(self.precision)

    def cov_matmat(self, V: jax.Array) -> jax.Array:
        return V / self.precision[:, None]

    def log_det_precision(self) -> jax.Array:
        return jnp.sum(jnp.log(self.precision))

    def variance(self) -> jax.Array:
        return 1 / self.precision


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class FullFactor:
    chol: jax.Array  # lower Cholesky factor of the precision

    def noise(self, rng_key: PRNGKey, n: int) -> jax.Array:
        eps = jax.random.normal(rng_key, (self.chol.shape[0], n), self.chol.dtype)
        return solve_triangular(self.chol.T, eps, lower=False).T  # cov = (L L^T)^-1

    def cov_matmat(self, V: jax.Array) -> jax.Array:
        return cho_solve((self.chol, True), V)

    def log_det_precision(self) -> jax.Array:
        return 2 * jnp.sum(jnp.log(jnp.diag(self.chol)))

    def variance(self) -> jax.Array:
        inv = solve_triangular(
            self.chol, jnp.eye(self.chol.shape[0], dtype=self.chol.dtype), lower=True
        )
        return jnp.sum(inv**2, axis=0)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class KronFactor:
    """Per layer ``(vec_a, vec_g, eig, pos)`` with ``eig`` the ``(d_in + 1, d_out)`` precision
    eigenvalues; a diagonal precision ``rest`` at positions ``rest_pos``."""

    vec_a: tuple[jax.Array, ...]
    vec_g: tuple[jax.Array, ...]
    eig: tuple[jax.Array, ...]
    pos: tuple[jax.Array, ...]
    rest: jax.Array
    rest_pos: jax.Array
    size: int = dataclasses.field(metadata={"static": True}, default=0)

    def noise(self, rng_key: PRNGKey, n: int) -> jax.Array:
        keys = jax.random.split(rng_key, len(self.eig) + 1)
        out = jnp.zeros((n, self.size), self.rest.dtype)
        for k, qa, qg, eig, pos in zip(
            keys, self.vec_a, self.vec_g, self.eig, self.pos, strict=False
        ):
            Z = jax.random.normal(k, (n, *eig.shape), eig.dtype) / jnp.sqrt(eig)
            out = out.at[:, pos].set((qa @ Z @ qg.T).reshape(n, -1))
        eps = jax.random.normal(keys[-1], (n, self.rest.shape[0]), self.rest.dtype)
        return out.at[:, self.rest_pos].set(eps / jnp.sqrt(self.rest))

    def cov_matmat(self, V: jax.Array) -> jax.Array:
        out = jnp.zeros_like(V)
        for qa, qg, eig, pos in zip(self.vec_a, self.vec_g, self.eig, self.pos, strict=True):
            M = V[pos].reshape(*eig.shape, -1)
            rot = jnp.einsum("ia,ijm,jb->abm", qa, M, qg) / eig[..., None]
            back = jnp.einsum("ia,abm,jb->ijm", qa, rot, qg)
            out = out.at[pos].set(back.reshape(pos.shape[0], -1))
        return out.at[self.rest_pos].set(V[self.rest_pos] / self.rest[:, None])

    def log_det_precision(self) -> jax.Array:
        return sum(jnp.sum(jnp.log(e)) for e in self.eig) + jnp.sum(jnp.log(self.rest))

    def variance(self) -> jax.Array:
        out = jnp.zeros(self.size, self.rest.dtype)
        for qa, qg, eig, pos in zip(self.vec_a, self.vec_g, self.eig, self.pos, strict=True):
            out = out.at[pos].set(((qa**2) @ (1 / eig) @ (qg**2).T).ravel())
        return out.at[self.rest_pos].set(1 / self.rest)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LowRankFactor:
    prior: jax.Array  # D, (P,)
    Q: jax.Array  # (P, k), orthonormal
    t: jax.Array  # (k,)

    def noise(self, rng_key: PRNGKey, n: int) -> jax.Array:
        eps = jax.random.normal(rng_key, (n, self.prior.shape[0]), self.prior.dtype)
        shrink = 1 / jnp.sqrt(1 + self.t) - 1
        white = eps + ((eps @ self.Q) * shrink) @ self.Q.T
        return white / jnp.sqrt(self.prior)

    def cov_matmat(self, V: jax.Array) -> jax.Array:
        W = V / jnp.sqrt(self.prior)[:, None]
        W = W + self.Q @ ((1 / (1 + self.t) - 1)[:, None] * (self.Q.T @ W))
        return W / jnp.sqrt(self.prior)[:, None]

    def log_det_precision(self) -> jax.Array:
        return jnp.sum(jnp.log(self.prior)) + jnp.sum(jnp.log1p(self.t))

    def variance(self) -> jax.Array:
        return (1 + (self.Q**2) @ (1 / (1 + self.t) - 1)) / self.prior


def _block_delta(prior: jax.Array, pos: jax.Array) -> jax.Array:
    return prior if prior.ndim == 0 else prior[pos[0]]


def posterior_factor(curv, prior: jax.Array, scale: jax.Array):
    """The factor of ``scale * H + diag(prior)`` (``prior`` scalar or one per selected
    weight; for ``"kron"`` constant within each layer)."""
    if isinstance(curv, DiagCurvature):
        return DiagFactor(scale * curv.h + prior)
    if isinstance(curv, FullCurvature):
        P = curv.H.shape[0]
        precision = scale * curv.H + jnp.broadcast_to(prior, (P,)) * jnp.eye(P, dtype=curv.H.dtype)
        return FullFactor(jnp.linalg.cholesky(precision))
    if isinstance(curv, KronCurvature):
        size = sum(int(b.pos.shape[0]) for b in curv.blocks) + int(curv.rest_pos.shape[0])
        rest = scale * curv.rest_h + (prior if prior.ndim == 0 else prior[curv.rest_pos])
        return KronFactor(
            tuple(b.vec_a for b in curv.blocks),
            tuple(b.vec_g for b in curv.blocks),
            tuple(scale * b.eig_outer() + _block_delta(prior, b.pos) for b in curv.blocks),
            tuple(b.pos for b in curv.blocks),
            rest,
            curv.rest_pos,
            size,
        )
    if isinstance(curv, LowRankCurvature):
        D = jnp.broadcast_to(prior, (curv.U.shape[0],))
        W = curv.U * (jnp.sqrt(curv.lam) * jnp.sqrt(scale)) / jnp.sqrt(D)[:, None]
        Q, s, _ = jnp.linalg.svd(W, full_matrices=False)
        return LowRankFactor(D, Q, s**2)
    raise TypeError(f"unknown curvature {type(curv).__name__}")  # pragma: no cover


def log_det_precision(curv, prior: jax.Array, scale: jax.Array) -> jax.Array:
    """``log det(scale * H + diag(prior))``, differentiable in ``prior`` and ``scale``; a scalar
    ``prior`` with ``"full"`` uses the stored eigenvalues (no Cholesky per call)."""
    if isinstance(curv, FullCurvature) and prior.ndim == 0:
        return jnp.sum(jnp.log(scale * jnp.clip(curv.eigvals, 0.0) + prior))
    if isinstance(curv, KronCurvature):
        total = jnp.sum(
            jnp.log(scale * curv.rest_h + (prior if prior.ndim == 0 else prior[curv.rest_pos]))
        )
        for b in curv.blocks:
            total = total + jnp.sum(jnp.log(scale * b.eig_outer() + _block_delta(prior, b.pos)))
        return total
    if isinstance(curv, LowRankCurvature):
        D = jnp.broadcast_to(prior, (curv.U.shape[0],))
        # sqrt(lam) apart from sqrt(scale): a zero eigenvalue (operator of lower rank than
        # requested) would otherwise give a NaN gradient in the noise scale, d sqrt(0 * s) / ds.
        W = curv.U * (jnp.sqrt(curv.lam) * jnp.sqrt(scale)) / jnp.sqrt(D)[:, None]
        inner = jnp.eye(W.shape[1], dtype=W.dtype) + W.T @ W
        return jnp.sum(jnp.log(D)) + jnp.linalg.slogdet(inner)[1]
    return posterior_factor(curv, prior, scale).log_det_precision()


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LaplaceGaussian:
    """Gaussian over the selected weights (others fixed at the MAP), plus point ``extras``.

    A :class:`~posterax.base.ParameterDistribution`: ``sample(key, n)`` returns
    ``{"net": draws, **extras}`` with a leading draw axis and ``mean()`` the MAP params.

    Attributes
    ----------
    map_flat : array (P_all,)
        MAP weights, flattened.
    index : int array (P,)
        Flat positions of the selected weights.
    factor : DiagFactor | FullFactor | KronFactor | LowRankFactor
    extras : dict
        Point params beside the weights (``sigma``), constrained.
    unravel : Unraveler
        Flat -> weights pytree (static).
    structure : str
        ``"diag"``, ``"kron"``, ``"full"`` or ``"lowrank"`` (static).
    """

    map_flat: jax.Array
    index: jax.Array
    factor: DiagFactor | FullFactor | KronFactor | LowRankFactor
    extras: dict[str, jax.Array]
    unravel: Unraveler = dataclasses.field(metadata={"static": True})
    structure: str = dataclasses.field(metadata={"static": True}, default="full")

    @property
    def map_selected(self) -> jax.Array:
        return self.map_flat[self.index]

    def embed(self, theta: jax.Array) -> ArrayTree:
        """Weights pytree with the selected weights set to ``theta`` (P,)."""
        return self.unravel(self.map_flat.at[self.index].set(theta))

    def sample_selected(self, rng_key: PRNGKey, n: int) -> jax.Array:
        """``(n, P)`` draws of the selected weights."""
        return self.map_selected + self.factor.noise(rng_key, n)

    def sample(self, rng_key: PRNGKey, n: int) -> ArrayTree:
        flat = jnp.broadcast_to(self.map_flat, (n, self.map_flat.shape[0]))
        flat = flat.at[:, self.index].set(self.sample_selected(rng_key, n))
        return draws_with_extras(jax.vmap(self.unravel)(flat), self.extras, n)

    def mean(self) -> ArrayTree:
        return {"net": self.unravel(self.map_flat), **self.extras}

    def variance(self) -> jax.Array:
        """Marginal posterior variances of the selected weights (P,)."""
        return self.factor.variance()

    def covariance(self) -> jax.Array:
        """Dense ``(P, P)`` covariance of the selected weights (small models only)."""
        return self.factor.cov_matmat(jnp.eye(self.index.shape[0], dtype=self.map_flat.dtype))

    def log_det_precision(self) -> jax.Array:
        return self.factor.log_det_precision()


__all__ = [
    "DiagFactor",
    "FullFactor",
    "KronFactor",
    "LaplaceGaussian",
    "LowRankFactor",
    "log_det_precision",
    "posterior_factor",
]
