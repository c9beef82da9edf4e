"""The one optimisation driver: minibatch epochs under ``lax.scan``, members under ``vmap``.

MAP, VI, MC dropout and deep ensembles all train through :func:`train`. It owns what they share:
key-driven shuffling, the optax update, validation-based early stopping, stopping on a non-finite
loss (keeping the last good parameters), and the progress bar. An ensemble is the same program
vmapped over members' params, optimiser states and keys: one compiled program, not a loop.
"""

from __future__ import annotations

import functools
import math
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from posterax.types import ArrayTree, PRNGKey

LossFn = Callable[[ArrayTree, PRNGKey, jax.Array, jax.Array], jax.Array]


class TrainingDivergedWarning(RuntimeWarning):
    """The training loss became NaN or infinite; training stopped at the last good params."""


class TrainResult(NamedTuple):
    """Trained ``params`` (leading member axis for ensembles) and the training record.

    ``info``: ``loss_history`` (epochs,) or (epochs, members), ``val_history`` (or None),
    ``epochs_run``, ``stopped_early``, ``diverged_at_epoch`` (or None), ``train_seconds``.
    """

    params: ArrayTree
    info: dict[str, Any]


@functools.lru_cache(maxsize=32)
def adam(learning_rate: float) -> optax.GradientTransformation:
    """``optax.adam``, one object per learning rate, so compiled training programs are reused."""
    return optax.adam(learning_rate)


def check_optimizer(
    optimizer: Any, learning_rate: float, where: str
) -> optax.GradientTransformation:
    """``None`` -> Adam(``learning_rate``); an optax transformation passes; else ``TypeError``."""
    if optimizer is None:
        return adam(float(learning_rate))
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(
            f"The 'optimizer' parameter of {where} must be an optax GradientTransformation "
            f"(e.g. optax.adam(1e-3)) or None for Adam. Got an object of type "
            f"{type(optimizer).__name__}."
        )
    return optimizer


def batch_plan(n_data: int, batch_size: int) -> tuple[int, int]:
    """``(batch_size, batches per epoch)``; the last batch is topped up with examples from the
    start of the epoch's permutation, so every batch has the same (static) shape."""
    batch_size = min(batch_size, n_data)
    return batch_size, math.ceil(n_data / batch_size)


@functools.lru_cache(maxsize=64)
def _compiled_epoch(
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    n_data: int,
    batch: int,
    members: bool,
):
    """One jitted epoch, cached by its (hashable) configuration: refitting the same model on
    data of the same size reuses the compiled program."""
    batch, n_batches = batch_plan(n_data, batch)
    pad = n_batches * batch - n_data

    def epoch(params, opt_state, key, index, X, y):
        perm_key, step_key = jax.random.split(jax.random.fold_in(key, index))
        perm = jax.random.permutation(perm_key, n_data)
        order = jnp.concatenate([perm, perm[:pad]]).reshape(n_batches, batch)

        def step(carry, inputs):
            params, opt_state = carry
            idx, k = inputs
            loss, grads = jax.value_and_grad(loss_fn)(params, k, X[idx], y[idx])
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        keys = jax.random.split(step_key, n_batches)
        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), (order, keys))
        return params, opt_state, jnp.mean(losses)

    if members:
        epoch = jax.vmap(epoch, in_axes=(0, 0, 0, None, None, None))
    return jax.jit(epoch)


def _progress(enabled: bool | None, total: int, desc: str):
    from tqdm.auto import tqdm

    if enabled is None:
        enabled = sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit="epoch", file=sys.stderr, disable=not enabled)


def train(
    rng_key: PRNGKey,
    loss_fn: LossFn,
    params: ArrayTree,
    data: tuple[jax.Array, jax.Array],
    optimizer: optax.GradientTransformation,
    *,
    num_epochs: int,
    batch_size: int,
    num_members: int | None = None,
    validation: tuple[jax.Array, jax.Array] | None = None,
    patience: int = 20,
    progress_bar: bool | None = None,
    desc: str = "train",
) -> TrainResult:
    """Minimise ``loss_fn(params, key, X_batch, y_batch)`` by minibatch optimisation.

    Parameters
    ----------
    rng_key : PRNGKey
        Drives shuffling and the keys handed to ``loss_fn`` (dropout masks, VI noise).
    loss_fn : callable
        Scalar loss for one minibatch, e.g. a per-example mean of negative log-likelihood plus
        the prior / KL term divided by the dataset size. Make it hashable by value (a frozen
        dataclass) to reuse the compiled program across calls.
    params : pytree
        Starting values; with ``num_members`` every leaf has a leading member axis.
    data : (X, y)
        Full training arrays, ``X`` of shape (N, D) and ``y`` of shape (N, ...).
    optimizer : optax.GradientTransformation
    num_epochs, batch_size : int
        Passes over the data and examples per step (capped at N).
    num_members : int, optional
        Train this many independent members together under ``jax.vmap`` (deep ensembles).
    validation : (X_val, y_val), optional
        ``loss_fn`` on these (with a fixed key) is evaluated after each epoch; the best params
        are kept and training stops after ``patience`` epochs without improvement (per member).
    progress_bar : bool, optional
        Show epochs and loss; default only when stderr is a terminal.

    Returns
    -------
    TrainResult

    Examples
    --------
    >>> import jax, jax.numpy as jnp, optax
    >>> X = jnp.linspace(-1, 1, 64)[:, None]; y = 3.0 * X[:, 0]
    >>> loss = lambda p, k, xb, yb: jnp.mean((xb[:, 0] * p - yb) ** 2)
    >>> res = train(jax.random.key(0), loss, jnp.zeros(()), (X, y), optax.adam(0.1),
    ...             num_epochs=100, batch_size=16, progress_bar=False)
    >>> round(float(res.params), 2)
    3.0
    """
    X, y = data
    n_data = int(X.shape[0])
    epoch = _compiled_epoch(loss_fn, optimizer, n_data, batch_size, num_members is not None)
    init_opt = optimizer.init if num_members is None else jax.vmap(optimizer.init)
    keys = rng_key if num_members is None else jax.random.split(rng_key, num_members)
    opt_state = init_opt(params)

    val_fn = None
    if validation is not None:
        X_val, y_val = validation
        val_key = jax.random.fold_in(rng_key, -1)

        def fn(p, X_val, y_val):
            return loss_fn(p, val_key, X_val, y_val)

        val_fn = jax.jit(jax.vmap(fn, in_axes=(0, None, None)) if num_members else fn)
        best_val = np.full(num_members or (), np.inf)
        best_params, since_best = params, np.zeros(num_members or (), dtype=int)

    losses, val_losses = [], []
    diverged_at, stopped_early = None, False
    start = time.perf_counter()
    with _progress(progress_bar, num_epochs, desc) as bar:
        for i in range(num_epochs):
            new_params, new_opt_state, loss = epoch(params, opt_state, keys, i, X, y)
            loss = np.asarray(loss)
            if not np.all(np.isfinite(loss)):
                diverged_at = i + 1
                break
            params, opt_state = new_params, new_opt_state
            losses.append(loss)
            postfix = {"loss": f"{float(np.mean(loss)):.4g}"}
            if val_fn is not None:
                val = np.asarray(val_fn(params, X_val, y_val))
                val_losses.append(val)
                improved = val < best_val
                best_val = np.where(improved, val, best_val)
                since_best = np.where(improved, 0, since_best + 1)
                best_params = _select(improved, params, best_params)
                postfix["val"] = f"{float(np.mean(val)):.4g}"
                if np.all(since_best >= patience):
                    stopped_early = True
                    bar.update(1)
                    break
            bar.set_postfix(postfix, refresh=False)
            bar.update(1)
    if diverged_at is not None:
        warnings.warn(
            f"Training stopped at epoch {diverged_at} of {num_epochs}: the loss became NaN or "
            "infinite. The parameters from the last finite epoch are kept. Try a smaller "
            "learning_rate (or optimizer), or standardised inputs.",
            TrainingDivergedWarning,
            stacklevel=3,
        )
    if val_fn is not None:
        params = best_params
    info = {
        "loss_history": np.asarray(losses),
        "val_history": np.asarray(val_losses) if val_fn is not None else None,
        "epochs_run": len(losses),
        "stopped_early": stopped_early,
        "diverged_at_epoch": diverged_at,
        "train_seconds": time.perf_counter() - start,
    }
    return TrainResult(params, info)


def split_validation(
    rng_key: PRNGKey, X: jax.Array, y: jax.Array, fraction: float | None
) -> tuple[tuple[jax.Array, jax.Array], tuple[jax.Array, jax.Array] | None]:
    """Hold out a random ``fraction`` of the rows for early stopping (none when ``None``)."""
    if fraction is None:
        return (X, y), None
    n_val = max(1, round(fraction * X.shape[0]))
    perm = jax.random.permutation(rng_key, X.shape[0])
    val, tr = perm[:n_val], perm[n_val:]
    return (X[tr], y[tr]), (X[val], y[val])


def _select(mask: np.ndarray, new: ArrayTree, old: ArrayTree) -> ArrayTree:
    """Per-member choice between two param trees (``mask`` has shape () or (members,))."""
    mask = jnp.asarray(mask)

    def pick(a, b):
        return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - mask.ndim)), a, b)

    return jax.tree_util.tree_map(pick, new, old)


__all__ = [
    "TrainResult",
    "TrainingDivergedWarning",
    "batch_plan",
    "check_optimizer",
    "split_validation",
    "train",
]
