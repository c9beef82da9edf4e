"""Factorised priors over a params pytree: Normal (L2 / weight decay) or Laplace (L1).

MAP with a Normal(0, s) prior is L2-regularised training with weight decay ``1 / (2 s^2)`` per
example-sum; a Laplace(0, b) prior is L1 with strength ``1 / b``. The same object gives VI its
expected log-prior under a Gaussian q in closed form (folded-normal mean for Laplace).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import jax.scipy.stats as jstats

from posterax.types import ArrayTree

FAMILIES = ("normal", "laplace")


@dataclasses.dataclass(frozen=True)
class WeightPrior:
    """Independent ``family(0, scale)`` on every leaf; ``scales`` is one float per top-level
    entry of the params list/dict (e.g. one per MLP layer), or a single float for all."""

    family: str = "normal"
    scales: tuple[float, ...] = (1.0,)

    def scale_tree(self, params: ArrayTree) -> ArrayTree:
        """A pytree like ``params`` holding each leaf's prior scale (broadcastable)."""
        if len(self.scales) == 1:
            return jax.tree_util.tree_map(lambda _: self.scales[0], params)
        return [
            jax.tree_util.tree_map(lambda _, s=scale: s, part)
            for part, scale in zip(params, self.scales, strict=True)
        ]

    def leaf_log_probs(self, params: ArrayTree) -> ArrayTree:
        """A pytree like ``params`` holding ``log p`` summed within each leaf."""
        logpdf = jstats.norm.logpdf if self.family == "normal" else jstats.laplace.logpdf
        return jax.tree_util.tree_map(
            lambda w, s: jnp.sum(logpdf(w, 0.0, s)), params, self.scale_tree(params)
        )

    def log_prob(self, params: ArrayTree) -> jax.Array:
        """``log p(params)``, summed over every weight."""
        return sum(jax.tree_util.tree_leaves(self.leaf_log_probs(params)))

    def expected_log_prob(self, mean: ArrayTree, var: ArrayTree) -> jax.Array:
        """``E_q[log p(w)]`` for independent Gaussian marginals ``q(w_i) = N(mean_i, var_i)``."""

        def one(m, v, s):
            if self.family == "normal":
                return jnp.sum(-0.5 * math.log(2 * math.pi) - jnp.log(s) - (m**2 + v) / (2 * s**2))
            sd = jnp.sqrt(v)
            # Mean of the folded normal |w|, w ~ N(m, sd^2).
            abs_mean = sd * jnp.sqrt(2 / jnp.pi) * jnp.exp(-(m**2) / (2 * v)) + m * (
                1 - 2 * jax.scipy.stats.norm.cdf(-m / sd)
            )
            return jnp.sum(-jnp.log(2 * s) - abs_mean / s)

        terms = jax.tree_util.tree_map(one, mean, var, self.scale_tree(mean))
        return sum(jax.tree_util.tree_leaves(terms))


__all__ = ["FAMILIES", "WeightPrior"]
