"""NUTS via NumPyro: run chains of any NumPyro model and return draws plus sample stats.

Chains are vectorised (one compiled program for all chains). The progress bar is shown only when
stderr is a terminal, so logs and CI stay clean.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer import MCMC, NUTS

from posterax.types import PRNGKey


@dataclasses.dataclass(frozen=True)
class NUTSResult:
    """Draws with shape ``(chains, draws, ...)`` per site, and per-draw sample statistics."""

    samples: dict[str, jax.Array]
    sample_stats: dict[str, np.ndarray]  # each (chains, draws)
    seconds: float

    def flat(self, names: tuple[str, ...] | None = None) -> dict[str, jax.Array]:
        """Draws with chains concatenated (chain-major): ``(chains * draws, ...)``."""
        keep = names if names is not None else tuple(self.samples)
        return {k: self.samples[k].reshape((-1, *self.samples[k].shape[2:])) for k in keep}

    @property
    def chain_shape(self) -> tuple[int, int]:
        first = next(iter(self.samples.values()))
        return int(first.shape[0]), int(first.shape[1])


def run_nuts(
    rng_key: PRNGKey,
    model: Callable[..., Any],
    *model_args: Any,
    num_warmup: int = 1000,
    num_samples: int = 2000,
    num_chains: int = 1,
    target_accept_prob: float = 0.8,
    progress_bar: bool | None = None,
    **model_kwargs: Any,
) -> NUTSResult:
    """Sample a NumPyro model with NUTS.

    Parameters
    ----------
    rng_key : PRNGKey
    model : callable
        A NumPyro model function; ``model_args``/``model_kwargs`` are passed to it.
    num_warmup, num_samples, num_chains : int
    target_accept_prob : float
        Step-size adaptation target.
    progress_bar : bool, optional
        Default: shown only when stderr is a terminal.

    Returns
    -------
    NUTSResult
        ``samples[name]`` has shape ``(num_chains, num_samples, ...)``.
    """
    if progress_bar is None:
        progress_bar = sys.stderr.isatty()
    kernel = NUTS(model, target_accept_prob=target_accept_prob)
    mcmc = MCMC(
        kernel,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        chain_method="vectorized",
        progress_bar=progress_bar,
    )
    start = time.perf_counter()
    mcmc.run(
        rng_key,
        *model_args,
        extra_fields=("diverging", "num_steps", "accept_prob", "adapt_state.step_size", "energy"),
        **model_kwargs,
    )
    samples = mcmc.get_samples(group_by_chain=True)
    jax.block_until_ready(samples)
    seconds = time.perf_counter() - start
    extra = mcmc.get_extra_fields(group_by_chain=True)
    num_steps = np.asarray(extra["num_steps"])
    sample_stats = {
        "diverging": np.asarray(extra["diverging"]).astype(bool),
        "acceptance_rate": np.asarray(extra["accept_prob"]),
        "step_size": np.asarray(extra["adapt_state.step_size"]),
        "n_steps": num_steps,
        # NUTS doubles the trajectory each tree level: depth = log2(leapfrog steps + 1).
        "tree_depth": np.floor(np.log2(num_steps + 1)).astype(np.int64),
        "energy": np.asarray(extra["energy"]),
    }
    return NUTSResult({k: jnp.asarray(v) for k, v in samples.items()}, sample_stats, seconds)


__all__ = ["NUTSResult", "run_nuts"]
