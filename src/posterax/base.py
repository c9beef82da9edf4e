"""The two objects every layer passes: :class:`Posterior` and :class:`PredictiveSamples`.

``Posterior`` is what inference produces; ``PredictiveSamples`` is the single hand-off from
inference to everything to its right (summaries, metrics, calibration, conformal, plots).
Both are JAX pytrees, so they pass through ``jit``/``vmap`` unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp

from posterax.types import ArrayTree, PRNGKey

Task = str  # "regression" or "classification"


@runtime_checkable
class ParameterDistribution(Protocol):
    """A sampleable distribution over a params pytree (VI, Laplace, conjugate posteriors)."""

    def sample(self, rng_key: PRNGKey, n: int) -> ArrayTree:
        """Return ``n`` draws as a pytree whose leaves have a leading axis of length ``n``."""
        ...

    def mean(self) -> ArrayTree:
        """Return the mean as a params pytree (no draw axis)."""
        ...


@runtime_checkable
class Likelihood(Protocol):
    """Maps a network's outputs to the per-draw entries of :class:`PredictiveSamples`."""

    task: Task

    def log_prob(self, params: ArrayTree, outputs: jax.Array, y: jax.Array) -> jax.Array:
        """Per-example log-likelihood, shape ``(N,)``."""
        ...

    def predictive(self, params: ArrayTree, outputs: jax.Array) -> dict[str, jax.Array]:
        """``{"mean", "scale"}`` (regression) or ``{"logits"}`` (classification) for one draw."""
        ...


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class PredictiveSamples:
    """Per-draw predictive distributions at ``N`` inputs; the draw axis ``S`` is always first.

    Regression: ``mean`` and ``scale`` of shape ``(S, N)`` — draw ``s`` says
    ``y_n ~ Normal(mean[s, n], scale[s, n])``, so the predictive is their equal-weight mixture.
    Classification: ``logits`` of shape ``(S, N, K)``.

    Build with :meth:`regression` or :meth:`classification`, which check shapes.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> pred = PredictiveSamples.regression(jnp.zeros((4, 3)), jnp.ones((4, 3)))
    >>> pred.task, pred.num_draws, pred.num_inputs
    ('regression', 4, 3)
    """

    mean: jax.Array | None = None
    scale: jax.Array | None = None
    logits: jax.Array | None = None

    @classmethod
    def regression(cls, mean: Any, scale: Any) -> PredictiveSamples:
        mean = jnp.asarray(mean)
        scale = jnp.broadcast_to(jnp.asarray(scale, dtype=mean.dtype), mean.shape)
        if mean.ndim != 2:
            raise ValueError(
                "PredictiveSamples.regression: 'mean' must have shape (S draws, N inputs). "
                f"Got shape {mean.shape}. Add a leading draw axis, e.g. mean[None]."
            )
        return cls(mean=mean, scale=scale)

    @classmethod
    def classification(cls, logits: Any) -> PredictiveSamples:
        logits = jnp.asarray(logits)
        if logits.ndim != 3:
            raise ValueError(
                "PredictiveSamples.classification: 'logits' must have shape "
                f"(S draws, N inputs, K classes). Got shape {logits.shape}. "
                "Add a leading draw axis, e.g. logits[None]."
            )
        return cls(logits=logits)

    @property
    def task(self) -> Task:
        return "classification" if self.logits is not None else "regression"

    @property
    def num_draws(self) -> int:
        ref = self.logits if self.logits is not None else self.mean
        return int(ref.shape[0])  # type: ignore[union-attr]

    @property
    def num_inputs(self) -> int:
        ref = self.logits if self.logits is not None else self.mean
        return int(ref.shape[1])  # type: ignore[union-attr]

    def probs(self) -> jax.Array:
        """Per-draw class probabilities ``(S, N, K)`` (classification only)."""
        if self.logits is None:
            raise ValueError("probs() is defined for classification predictions only.")
        return jax.nn.softmax(self.logits, axis=-1)


def _tree_num_draws(tree: ArrayTree) -> int:
    leaves = jax.tree_util.tree_leaves(tree)
    if not leaves:
        raise ValueError("Posterior.draws is an empty pytree.")
    return int(leaves[0].shape[0])


@dataclasses.dataclass(frozen=True)
class Posterior:
    """What inference produced.

    Either ``draws`` — a params pytree whose leaves carry a leading draw axis ``S`` (MCMC,
    ensembles, SWAG draws) — or ``distribution`` — a :class:`ParameterDistribution` that can be
    sampled (conjugate, VI, Laplace). ``apply_fn(params, X)`` gives the model's outputs for one
    params pytree and ``likelihood`` turns them into predictive entries. ``info`` holds diagnostics
    (R-hat, ESS, divergences, timings...). ``chain_shape`` is ``(chains, draws per chain)`` when
    ``draws`` came from MCMC chains stored chain-major.
    """

    apply_fn: Callable[[ArrayTree, jax.Array], jax.Array]
    likelihood: Likelihood
    draws: ArrayTree | None = None
    distribution: ParameterDistribution | None = None
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    chain_shape: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if (self.draws is None) == (self.distribution is None):
            raise ValueError(
                "Posterior needs exactly one of 'draws' (a pytree with a leading draw axis) or "
                "'distribution' (an object with sample(rng_key, n) and mean())."
            )

    @property
    def num_draws(self) -> int | None:
        """Number of stored draws, or ``None`` for a distribution."""
        return None if self.draws is None else _tree_num_draws(self.draws)

    def sample(self, rng_key: PRNGKey, n: int | None = None) -> ArrayTree:
        """Return ``n`` parameter draws (leading axis ``n``).

        For stored draws, ``n=None`` returns them all in order; otherwise ``n`` draws are taken
        at random (without replacement when ``n`` is at most the number stored).
        """
        if self.distribution is not None:
            if n is None:
                raise ValueError(
                    "Posterior.sample: 'n' is required when the posterior is a distribution. "
                    "Pass an int, e.g. n=1000."
                )
            return self.distribution.sample(rng_key, n)
        total = _tree_num_draws(self.draws)
        if n is None or n == total:
            return self.draws
        idx = jax.random.choice(rng_key, total, (n,), replace=n > total)
        return jax.tree_util.tree_map(lambda leaf: leaf[idx], self.draws)

    def mean(self) -> ArrayTree:
        """Posterior mean of every parameter."""
        if self.distribution is not None:
            return self.distribution.mean()
        return jax.tree_util.tree_map(lambda leaf: jnp.mean(leaf, axis=0), self.draws)


__all__ = ["Likelihood", "ParameterDistribution", "Posterior", "PredictiveSamples", "Task"]
