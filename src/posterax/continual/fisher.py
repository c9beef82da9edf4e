"""Curvature of a network's log-likelihood for continual learning: the diagonal Fisher.

Everything downstream (EWC, online Laplace) uses a curvature only through
``quadratic(delta) = delta^T C delta`` over the network weights ``params["net"]``, so any object
with that method plugs in — e.g. a Kronecker-factored (KFAC) Fisher from a Laplace
approximation, whose ``quadratic`` is ``sum_l vec(dW_l)^T (A_l kron G_l) vec(dW_l)``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

from posterax.data.validation import check_positive_int
from posterax.inference.network_model import NetworkModel
from posterax.types import ArrayTree, PRNGKey

FISHER_KINDS = ("exact", "empirical", "sampled")


@runtime_checkable
class Curvature(Protocol):
    """A positive semi-definite quadratic form over network weights."""

    def quadratic(self, delta: ArrayTree) -> jax.Array:
        """``delta^T C delta`` for a weights-shaped pytree ``delta``."""
        ...


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class DiagonalFisher:
    """Diagonal curvature: ``diagonal`` has the structure of the network weights.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> F = DiagonalFisher({"w": jnp.array([1.0, 2.0])})
    >>> float(F.quadratic({"w": jnp.array([1.0, 1.0])}))
    3.0
    >>> float((F.scaled(2.0) + F).quadratic({"w": jnp.array([1.0, 0.0])}))
    3.0
    """

    diagonal: ArrayTree

    def quadratic(self, delta: ArrayTree) -> jax.Array:
        terms = jax.tree_util.tree_map(lambda f, d: jnp.sum(f * d**2), self.diagonal, delta)
        return sum(jax.tree_util.tree_leaves(terms))

    def scaled(self, factor: float | jax.Array) -> DiagonalFisher:
        """``factor * C``."""
        return DiagonalFisher(jax.tree_util.tree_map(lambda f: factor * f, self.diagonal))

    def __add__(self, other: DiagonalFisher) -> DiagonalFisher:
        return DiagonalFisher(jax.tree_util.tree_map(jnp.add, self.diagonal, other.diagonal))


def _squared_grads(model: NetworkModel, params: ArrayTree, kind: str):
    """``(X_chunk, y_chunk, key, weights) -> sum_n w_n E[(d log p(y_n) / d net)^2]``."""

    def log_lik(net, x, y):
        return model.log_likelihood({**params, "net": net}, x[None], y[None])[0]

    grad = jax.grad(log_lik)

    def one(x, y, key, n_samples):
        if kind == "exact":  # E over y ~ p(y | x): sum_k p_k grad_k^2
            outputs = model.apply_fn(params, x[None])[0]
            probs = jax.nn.softmax(outputs)
            ks = jnp.arange(outputs.shape[-1])
            g2 = jax.vmap(lambda k: jax.tree_util.tree_map(jnp.square, grad(params["net"], x, k)))(
                ks
            )
            return jax.tree_util.tree_map(lambda g: jnp.tensordot(probs, g, axes=1), g2)
        if kind == "empirical":
            return jax.tree_util.tree_map(jnp.square, grad(params["net"], x, y))
        # "sampled": labels drawn from the model's own predictive, the true Fisher in expectation.
        entries = model.likelihood.predictive(params, model.apply_fn(params, x[None]))
        keys = jax.random.split(key, n_samples)
        if "logits" in entries:
            ys = jax.vmap(lambda k: jax.random.categorical(k, entries["logits"][0]))(keys)
        else:
            ys = jax.vmap(
                lambda k: entries["mean"][0] + entries["scale"][0] * jax.random.normal(k)
            )(keys)
        g2 = jax.vmap(lambda yy: jax.tree_util.tree_map(jnp.square, grad(params["net"], x, yy)))(ys)
        return jax.tree_util.tree_map(lambda g: jnp.mean(g, axis=0), g2)

    return one


@functools.partial(jax.jit, static_argnames=("model", "kind", "n_samples"))
def _chunk_sum(model, params, X, y, keys, weights, kind, n_samples):
    one = _squared_grads(model, params, kind)
    per = jax.vmap(lambda x, yy, k: one(x, yy, k, n_samples))(X, y, keys)
    return jax.tree_util.tree_map(lambda g: jnp.tensordot(weights, g, axes=1), per)


def diagonal_fisher(
    model: NetworkModel,
    params: ArrayTree,
    X: Any,
    y: Any = None,
    *,
    kind: str = "exact",
    rng_key: PRNGKey | None = None,
    n_samples: int = 1,
    batch_size: int = 256,
) -> DiagonalFisher:
    """Per-example diagonal Fisher of the log-likelihood w.r.t. the weights, at ``params``.

    ``F_i = mean_n E[(d log p(y | x_n, w) / d w_i)^2]``; multiply by the number of examples for
    the Fisher of the whole data set (the Laplace precision contributed by the data).

    Parameters
    ----------
    model : NetworkModel
    params : pytree
        ``{"net": weights, ...}`` as trained (unconstrained, e.g. ``log_sigma``).
    X : array (N, D)
    y : array (N,), optional
        Observed targets; needed for ``kind="empirical"``.
    kind : {"exact", "empirical", "sampled"}
        ``"exact"``: expectation over classes in closed form (classification); ``"sampled"``:
        ``n_samples`` targets drawn from the model's predictive (any likelihood);
        ``"empirical"``: the observed targets (cheap, biased away from the optimum).
    rng_key : PRNGKey, optional
        Required for ``kind="sampled"``.
    n_samples : int
        Targets drawn per example for ``"sampled"``.
    batch_size : int
        Examples per compiled chunk (memory: ``batch_size x K x weights`` for ``"exact"``).

    Returns
    -------
    DiagonalFisher

    Examples
    --------
    A softmax regression's exact Fisher for the bias is ``mean_n p_n (1 - p_n)`` (binary case).

    >>> import jax, jax.numpy as jnp
    >>> from posterax.models import MLP, ClassificationHead, CategoricalLikelihood
    >>> net = MLP((), "relu", 2)
    >>> model = NetworkModel(ClassificationHead(net), CategoricalLikelihood())
    >>> params = {"net": [{"w": jnp.zeros((1, 2)), "b": jnp.zeros(2)}]}
    >>> F = diagonal_fisher(model, params, jnp.ones((4, 1)))
    >>> [round(float(v), 3) for v in F.diagonal[0]["b"]]  # p = 1/2: p (1 - p) = 0.25
    [0.25, 0.25]
    """
    where = "diagonal_fisher"
    if kind not in FISHER_KINDS:
        raise ValueError(
            f"The 'kind' parameter of {where} must be one of {', '.join(map(repr, FISHER_KINDS))}. "
            f"Got {kind!r}."
        )
    if kind == "exact" and model.likelihood.task != "classification":
        raise ValueError(
            f"The 'kind' parameter of {where} is 'exact', which needs a classification "
            f"likelihood; got a {model.likelihood.task} model. Use kind='sampled' (with "
            "rng_key) or kind='empirical'."
        )
    if kind == "empirical" and y is None:
        raise ValueError(
            f"The 'y' parameter of {where} is required for kind='empirical' (the gradients use "
            "the observed targets). Pass y, or use kind='exact' / 'sampled'."
        )
    if kind == "sampled" and rng_key is None:
        raise ValueError(
            f"The 'rng_key' parameter of {where} is required for kind='sampled'. Pass e.g. "
            "rng_key=jax.random.key(0)."
        )
    n_samples = check_positive_int(n_samples, name="n_samples", where=where)
    batch_size = check_positive_int(batch_size, name="batch_size", where=where)
    X = jnp.asarray(X)
    n = int(X.shape[0])
    if n == 0:
        raise ValueError(f"The 'X' parameter of {where} must hold at least one example. Got 0.")
    y_arr = jnp.zeros(n, jnp.int32) if y is None else jnp.asarray(y)
    batch = min(batch_size, n)
    n_chunks = -(-n // batch)
    pad = n_chunks * batch - n
    # Pad to whole chunks with zero weight, so every chunk reuses one compiled program.
    Xp = jnp.concatenate([X, X[:pad]]) if pad else X
    yp = jnp.concatenate([y_arr, y_arr[:pad]]) if pad else y_arr
    weights = np.r_[np.ones(n), np.zeros(pad)] / n
    keys = jax.random.split(jax.random.key(0) if rng_key is None else rng_key, n_chunks * batch)
    total = None
    for c in range(n_chunks):
        sl = slice(c * batch, (c + 1) * batch)
        part = _chunk_sum(
            model, params, Xp[sl], yp[sl], keys[sl], jnp.asarray(weights[sl]), kind, n_samples
        )
        total = part if total is None else jax.tree_util.tree_map(jnp.add, total, part)
    return DiagonalFisher(total)


__all__ = ["FISHER_KINDS", "Curvature", "DiagonalFisher", "diagonal_fisher"]
