"""Acquisition functions: which unlabelled points to label next, from a :class:`PredictiveSamples`
over the pool.

Every acquisition is called as ``acquire(pred, batch_size, rng_key)`` and returns the indices
(into the pool) of ``batch_size`` distinct points, most wanted first. Look them up by name in
:data:`ACQUISITIONS`:

=================  ==============  =================================================================
name               task            picks the points with the highest
=================  ==============  =================================================================
``"entropy"``      both            predictive entropy (max-entropy sampling)
``"bald"``         both            mutual information between label and weights (Houlsby et
                                   al., 2011); regression: ``0.5 log(total / aleatoric var)``
``"batchbald"``    classification  joint mutual information of the batch, chosen greedily
                                   (Kirsch et al., 2019): avoids picking near-duplicates
``"variance"``     both            predictive variance (classification: summed over classes)
``"random"``       both            (uniform at random; the baseline)
=================  ==============  =================================================================
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np

from posterax.active._scores import check_predictive, scores
from posterax.base import PredictiveSamples
from posterax.data.validation import check_positive_int
from posterax.types import PRNGKey

Acquisition = Callable[[PredictiveSamples, int, PRNGKey], np.ndarray]


def _check(pred: PredictiveSamples, batch_size: int, where: str) -> int:
    check_predictive(pred, where)
    batch_size = check_positive_int(batch_size, name="batch_size", where=where)
    if batch_size > pred.num_inputs:
        raise ValueError(
            f"The 'batch_size' parameter of {where} must be at most the pool size "
            f"({pred.num_inputs}). Got {batch_size}. Label fewer points per round or pass a "
            "larger pool."
        )
    return batch_size


def _top(scores: np.ndarray, batch_size: int, rng_key: PRNGKey) -> np.ndarray:
    # Ties (e.g. a MAP posterior's zero mutual information) are broken at random, not by index.
    jitter = np.asarray(jax.random.uniform(rng_key, scores.shape))
    order = np.lexsort((jitter, -np.asarray(scores, dtype=np.float64)))
    return order[:batch_size]


def _by_score(score: str, name: str, what: str) -> Acquisition:
    def acquire(pred: PredictiveSamples, batch_size: int, rng_key: PRNGKey) -> np.ndarray:
        batch_size = _check(pred, batch_size, name)
        return _top(np.asarray(scores(pred)[score]), batch_size, rng_key)

    acquire.__name__ = name
    acquire.__doc__ = f"The ``batch_size`` pool points with the highest {what}."
    return acquire


max_entropy = _by_score("entropy", "max_entropy", "predictive entropy")
bald = _by_score("bald", "bald", "mutual information between label and weights (BALD)")
max_variance = _by_score("variance", "max_variance", "predictive variance")


def random_acquisition(pred: PredictiveSamples, batch_size: int, rng_key: PRNGKey) -> np.ndarray:
    """``batch_size`` distinct pool points uniformly at random (ignores the predictions)."""
    batch_size = _check(pred, batch_size, "random_acquisition")
    return np.asarray(jax.random.permutation(rng_key, pred.num_inputs))[:batch_size]


def _log_entropy_terms(joint: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``-sum_m w_m sum_k J[m, n, k] log J[m, n, k]`` for each candidate ``n``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(joint > 0, joint * np.log(joint), 0.0).sum(axis=-1)  # (M, N)
    return -(weights @ terms)


def batchbald(
    pred: PredictiveSamples,
    batch_size: int,
    rng_key: PRNGKey,
    *,
    num_configurations: int = 1000,
) -> np.ndarray:
    """Greedy BatchBALD: add, one at a time, the point that most increases the joint mutual
    information ``I(y_1, ..., y_b; w)`` of the batch.

    The joint entropy of the labels of the batch so far is exact while the number of label
    configurations ``K^b`` is at most ``num_configurations``, and estimated from
    ``num_configurations`` sampled configurations beyond (the sample budget). Cost per step:
    ``pool x configurations x draws x classes``.

    Parameters
    ----------
    pred : PredictiveSamples
        Classification predictions over the pool, ``(S, N, K)``.
    batch_size : int
    rng_key : PRNGKey
        Tie-breaking and the sampled configurations.
    num_configurations : int, default 1000
        Budget of label configurations for the joint entropy.

    Returns
    -------
    numpy.ndarray of int, shape (batch_size,)

    Examples
    --------
    Three pool points, two of them identical: BALD would take both copies, BatchBALD takes one
    copy and the other informative point.

    >>> import jax, jax.numpy as jnp
    >>> hi, lo = [6.0, -6.0], [-6.0, 6.0]
    >>> a = jnp.array([hi, hi, lo, lo])  # four draws: split 2-2 on point a
    >>> c = jnp.array([hi, lo, hi, lo]) / 2  # split differently (less sharply) on point c
    >>> logits = jnp.stack([a, a, c], axis=1)  # (S=4, N=3, K=2): points 0 and 1 are copies
    >>> pred = PredictiveSamples.classification(logits)
    >>> sorted(bald(pred, 2, jax.random.key(0)).tolist())
    [0, 1]
    >>> chosen = batchbald(pred, 2, jax.random.key(0)).tolist()
    >>> 2 in chosen, len({0, 1} & set(chosen))
    (True, 1)
    """
    where = "batchbald"
    check_predictive(pred, where, task="classification")
    batch_size = _check(pred, batch_size, where)
    budget = check_positive_int(num_configurations, name="num_configurations", where=where)
    probs = np.asarray(pred.probs(), dtype=np.float64)  # (S, N, K)
    n_draws, n_pool, n_classes = probs.shape
    with np.errstate(divide="ignore", invalid="ignore"):
        cond_entropy = -np.where(probs > 0, probs * np.log(probs), 0.0).sum(-1).mean(0)  # (N,)
    sample_key, tie_key = jax.random.split(rng_key)
    rng = np.random.default_rng(np.asarray(jax.random.key_data(sample_key)).ravel())
    jitter = 1e-12 * np.asarray(jax.random.uniform(tie_key, (n_pool,)))

    chosen: list[int] = []
    # prev[s, m]: probability under draw s of label configuration m of the chosen points.
    prev = np.ones((n_draws, 1))
    weights = np.ones(1)  # exact: each configuration counts once; sampled: importance weights
    sampled_draws: np.ndarray | None = None  # per sampled configuration, the draw it came from
    available = np.ones(n_pool, dtype=bool)
    for _ in range(batch_size):
        joint = np.tensordot(prev, probs, axes=(0, 0)) / n_draws  # (M, N, K), one BLAS call
        scores = _log_entropy_terms(joint, weights) - cond_entropy + jitter
        scores[~available] = -np.inf
        best = int(np.argmax(scores))
        chosen.append(best)
        available[best] = False
        p_best = probs[:, best, :]  # (S, K)
        if sampled_draws is None and prev.shape[1] * n_classes <= budget:
            prev = (prev[:, :, None] * p_best[:, None, :]).reshape(n_draws, -1)
            weights = np.ones(prev.shape[1])
            continue
        if sampled_draws is None:
            # Switch to sampling: draw configurations of the chosen points from the joint.
            sampled_draws = rng.integers(0, n_draws, size=budget)
            prev = np.ones((n_draws, budget))
            for idx in chosen:
                labels = _sample_labels(rng, probs[sampled_draws, idx, :])
                prev *= probs[:, idx, labels]
        else:
            labels = _sample_labels(rng, p_best[sampled_draws])
            prev = prev * p_best[:, labels]
        # Monte Carlo over configurations y ~ p(y): weight 1 / (M p(y)) per sample.
        weights = 1.0 / (budget * prev.mean(axis=0))
    return np.asarray(chosen)


def _sample_labels(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """One label per row of ``p`` (M, K)."""
    u = rng.uniform(size=(p.shape[0], 1))
    return np.minimum((np.cumsum(p, axis=1) < u).sum(axis=1), p.shape[1] - 1)


ACQUISITIONS: dict[str, Acquisition] = {
    "entropy": max_entropy,
    "bald": bald,
    "batchbald": batchbald,
    "variance": max_variance,
    "random": random_acquisition,
}


def get_acquisition(acquisition: str | Acquisition, where: str = "get_acquisition") -> Acquisition:
    """A name from :data:`ACQUISITIONS`, or a callable ``(pred, batch_size, rng_key)`` as is."""
    if callable(acquisition):
        return acquisition
    if acquisition not in ACQUISITIONS:
        raise ValueError(
            f"The 'acquisition' parameter of {where} must be one of "
            f"{', '.join(map(repr, ACQUISITIONS))} or a callable (pred, batch_size, rng_key) -> "
            f"indices. Got {acquisition!r}."
        )
    return ACQUISITIONS[acquisition]


__all__ = [
    "ACQUISITIONS",
    "Acquisition",
    "bald",
    "batchbald",
    "get_acquisition",
    "max_entropy",
    "max_variance",
    "random_acquisition",
]
