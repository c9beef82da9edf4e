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

from posterax.inference.devices import (
    constrain_rows,
    gathered,
    mesh_for,
    replicated,
    resolve_devices,
    run_items,
    spans_processes,
    split_leading,
    vectorize_items,
)
from posterax.inference.resumable import (
    Checkpointing,
    data_fingerprint,
    identity,
    key_fingerprint,
    open_store,
)
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
    opt_state: Any = None  # at ``params``, for optimisers that draw weights (IVON's Hessian)


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


def perturbs(optimizer: Any) -> Callable[..., Any] | None:
    """``optimizer.sample_params`` of an optimiser that takes its gradients at weights it draws
    from its state (IVON): ``sample_params(key, params, opt_state) -> (weights, noise)``, both
    with a leading axis of draws; its ``update`` takes ``noise=``. ``None`` for the others."""
    return getattr(optimizer, "sample_params", None)


_STEPS_PER_CALL = 256  # epochs are grouped so one compiled call runs about this many steps


def _epoch_fn(
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    n_data: int,
    batch: int,
    data_mesh: Any = None,
):
    batch, n_batches = batch_plan(n_data, batch)
    pad = n_batches * batch - n_data
    sample = perturbs(optimizer)

    def epoch(params, opt_state, key, index, X, y):
        perm_key, step_key = jax.random.split(jax.random.fold_in(key, index))
        perm = jax.random.permutation(perm_key, n_data)
        order = jnp.concatenate([perm, perm[:pad]]).reshape(n_batches, batch)

        def step(carry, inputs):
            params, opt_state = carry
            idx, k = inputs
            X_batch, y_batch = constrain_rows(data_mesh, (X[idx], y[idx]))
            if sample is None:
                loss, grads = jax.value_and_grad(loss_fn)(params, k, X_batch, y_batch)
                updates, opt_state = optimizer.update(grads, opt_state, params)
            else:  # gradients at weights the optimiser draws (IVON), averaged by its update
                noise_key, k = jax.random.split(k)
                weights, noise = sample(noise_key, params, opt_state)
                draws = jax.tree_util.tree_leaves(noise)[0].shape[0]
                losses, grads = jax.vmap(jax.value_and_grad(loss_fn), (0, 0, None, None))(
                    weights, jax.random.split(k, draws), X_batch, y_batch
                )
                loss = jnp.mean(losses)
                updates, opt_state = optimizer.update(grads, opt_state, params, noise=noise)
            return (optax.apply_updates(params, updates), opt_state), loss

        keys = jax.random.split(step_key, n_batches)
        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), (order, keys))
        return params, opt_state, jnp.mean(losses)

    return epoch


def _where(flag: jax.Array, new: ArrayTree, old: ArrayTree) -> ArrayTree:
    return jax.tree_util.tree_map(lambda a, b: jnp.where(flag, a, b), new, old)


class _State(NamedTuple):
    """One member's training state; ``done`` freezes it (diverged or early-stopped)."""

    params: ArrayTree
    opt_state: ArrayTree
    best: ArrayTree
    best_val: jax.Array
    since_best: jax.Array
    done: jax.Array


@functools.lru_cache(maxsize=64)
def _compiled_chunk(
    loss_fn: LossFn,
    validation_loss: LossFn,
    optimizer: optax.GradientTransformation,
    n_data: int,
    batch: int,
    chunk: int,
    members: bool,
    validate: bool,
    mesh: Any = None,
    vectorized: bool = True,
    member_data: bool = False,
):
    """``chunk`` epochs in one jitted call, cached by the (hashable) configuration, so
    refitting the same model on data of the same size reuses the compiled program.

    Divergence and early stopping are decided inside the program, per epoch and per member,
    so grouping epochs changes nothing in the result.

    With ``members`` the mesh splits the members over devices; without, it splits each
    minibatch's rows (data parallel)."""
    epoch = _epoch_fn(loss_fn, optimizer, n_data, batch, None if members else mesh)
    track = perturbs(optimizer) is not None  # its state is part of the result: kept with the best

    def run(state, key, val_key, start, num_epochs, patience, X, y, X_val, y_val):
        def body(state: _State, i):
            index = start + i
            params, opt_state, loss = epoch(state.params, state.opt_state, key, index, X, y)
            active = ~state.done & (index < num_epochs)
            finite = jnp.isfinite(loss)
            diverged = active & ~finite
            active = active & finite
            params = _where(active, params, state.params)
            opt_state = _where(active, opt_state, state.opt_state)
            best, best_val, since, stopped = state.best, state.best_val, state.since_best, False
            val = jnp.nan
            if validate:
                val = validation_loss(params, val_key, X_val, y_val)
                improved = active & (val < best_val)
                best = _where(improved, (params, opt_state) if track else params, best)
                # float32 in and out: a weak-typed or float64 record would change the input
                # types of the next call and compile this program a second time.
                best_val = jnp.where(improved, val, best_val).astype(jnp.float32)
                since = jnp.where(active, jnp.where(improved, 0, since + 1), since)
                stopped = active & (since >= patience)
            done = state.done | diverged | stopped
            out = (jnp.where(active, loss, jnp.nan), jnp.where(active, val, jnp.nan))
            return _State(params, opt_state, best, best_val, since, done), (*out, diverged, stopped)

        return jax.lax.scan(body, state, jnp.arange(chunk))

    if members and member_data:  # every member its own (X, y): folds, bootstrap samples

        def own_data(state, key, X, y, val_key, start, num_epochs, patience, X_val, y_val, _):
            return run(state, key, val_key, start, num_epochs, patience, X, y, X_val, y_val)

        return jax.jit(run_items(own_data, mesh, vectorized, 4))
    if members:

        def member(*args):  # run_items appends the member's index; training has no use for it
            return run(*args[:-1])

        return jax.jit(run_items(member, mesh, vectorized, 2))
    return jax.jit(run)


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
    validation_loss: LossFn | None = None,
    patience: int = 20,
    progress_bar: bool | None = None,
    desc: str = "train",
    devices: Any = None,
    checkpoint: Checkpointing | None = None,
    member_data: bool = False,
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
        One with a ``sample_params`` method (IVON, see :func:`perturbs`) has each step's
        gradients taken at weights it draws; ``TrainResult.opt_state`` then holds its state at
        the returned params.
    num_epochs, batch_size : int
        Passes over the data and examples per step (capped at N).
    num_members : int, optional
        Train this many independent members together under ``jax.vmap`` (deep ensembles).
    validation : (X_val, y_val), optional
        ``loss_fn`` on these (with a fixed key) is evaluated after each epoch; the best params
        are kept and training stops after ``patience`` epochs without improvement (per member).
    validation_loss : callable, optional
        What the held-out rows are judged by, if not ``loss_fn`` (same signature; hashable).
    progress_bar : bool, optional
        Show epochs and loss; default only when stderr is a terminal.
    devices : None, int or list of jax.Device
        Ensemble members are split over these devices; a single network's minibatch rows are
        (data parallel). Default: all local devices.
    checkpoint : Checkpointing, optional
        Save the training state about every ``checkpoint.every`` epochs; with
        ``resume=True`` continue a killed run to the parameters an uninterrupted run gives.
    member_data : bool, default False
        With ``num_members``: ``X`` and ``y`` have a leading member axis, each member training
        on its own rows (cross-validation folds, bootstrap samples), all of the same size.

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
    if member_data and (num_members is None or X.shape[0] != num_members):
        raise ValueError(
            "train: member_data=True needs num_members and data with a leading axis of that "
            f"size. Got num_members={num_members} and X of shape {X.shape}."
        )
    if member_data and validation is not None:
        raise ValueError(
            "train: member_data=True takes no shared validation set (it would not be held out "
            "from every member's data). Pass validation=None."
        )
    n_data = int(X.shape[1] if member_data else X.shape[0])
    batch_size, n_batches = batch_plan(n_data, batch_size)
    # Epochs per compiled call: at most _STEPS_PER_CALL steps, in groups of equal size so the
    # last group computes few epochs past num_epochs (they are masked, but cost time).
    most = max(1, min(num_epochs, _STEPS_PER_CALL // n_batches))
    chunk = -(-num_epochs // -(-num_epochs // most))
    members = num_members is not None
    mesh = mesh_for(num_members or batch_size, resolve_devices(devices, where="train"))
    vectorized = vectorize_items()
    run = _compiled_chunk(
        loss_fn,
        loss_fn if validation_loss is None else validation_loss,
        optimizer,
        n_data,
        batch_size,
        chunk,
        members,
        validation is not None,
        mesh,
        vectorized,
        member_data,
    )
    first_rows = (X[0, :1], y[0, :1]) if member_data else (X[:1], y[:1])
    X_val, y_val = validation if validation is not None else first_rows
    init_opt = jax.vmap(optimizer.init) if members else optimizer.init
    keys = jax.random.split(rng_key, num_members) if members else rng_key
    shape = (num_members,) if members else ()
    track = perturbs(optimizer) is not None
    opt_state = init_opt(params)
    state = _State(
        params,
        opt_state,
        (params, opt_state) if track else params,
        jnp.full(shape, jnp.inf, dtype=jnp.float32),  # not weak-typed: see best_val below
        jnp.zeros(shape, dtype=jnp.int32),
        jnp.zeros(shape, dtype=bool),
    )
    if members:
        state, keys = split_leading(mesh, (state, keys))
    else:
        state = replicated(mesh, state)
    if member_data:
        X, y = split_leading(mesh, (X, y))
        X_val, y_val = replicated(mesh, (X_val, y_val))
    else:
        X, y, X_val, y_val = replicated(mesh, (X, y, X_val, y_val))
    val_key = jax.random.fold_in(rng_key, 2**31 - 1)  # a stream no epoch uses
    across = spans_processes(mesh)  # JAX's multi-process runtime: results gathered to all
    if across:
        if checkpoint is not None:
            raise ValueError(
                "The 'checkpoint' parameter of train is not supported under JAX's multi-process "
                "runtime yet (every process would write the same files). Run without "
                "checkpoint_dir there."
            )
        val_key = replicated(mesh, val_key)
    # Per-epoch records (epochs first): loss, validation loss, diverged, stopped.
    padded = -(-num_epochs // chunk) * chunk
    history = tuple(
        np.full((padded, *shape), fill, dtype)
        for fill, dtype in (
            (np.nan, np.float32),
            (np.nan, np.float32),
            (False, bool),
            (False, bool),
        )
    )
    first_epoch, store = 0, None
    if checkpoint is not None:
        store = open_store(
            checkpoint,
            {
                "trainer": "train",
                "loss": identity(loss_fn),
                "settings": [n_data, batch_size, chunk, num_epochs, patience, num_members],
                "validation": validation is not None,
                "data": data_fingerprint((X, y, X_val, y_val)),
                "rng_key": key_fingerprint(rng_key),
            },
            where="train",
        )
        loaded = store.load({"state": state, "history": history})
        if loaded is not None:
            first_epoch, tree = loaded
            state, history = tree["state"], tree["history"]
    start = time.perf_counter()
    with _progress(progress_bar, num_epochs, desc) as bar:
        bar.update(min(first_epoch, num_epochs))
        for first in range(first_epoch, num_epochs, chunk):
            if member_data:
                args = (state, keys, X, y, val_key, first, num_epochs, patience, X_val, y_val)
            else:
                args = (state, keys, val_key, first, num_epochs, patience, X, y, X_val, y_val)
            state, out = run(*args)
            out = gathered(out) if across else out
            for record, o in zip(history, out, strict=True):  # (members, chunk) -> epochs first
                record[first : first + chunk] = np.moveaxis(np.asarray(o), -1, 0)
            rows = history[0][first : first + chunk].reshape(chunk, -1)
            rows = rows[np.isfinite(rows).any(axis=1)]
            if len(rows):
                bar.set_postfix(loss=f"{float(np.nanmean(rows[-1])):.4g}", refresh=False)
            bar.update(min(chunk, num_epochs - first))
            finished = bool(np.all(np.asarray(gathered(state.done) if across else state.done)))
            last = first + chunk
            if store is not None and (
                finished
                or last >= num_epochs
                or last // checkpoint.every > first // checkpoint.every
            ):
                store.save(last, {"state": state, "history": history})
            if finished:
                break
    losses, vals, diverged, stopped = (record[:num_epochs] for record in history)
    ran = np.isfinite(losses).reshape(len(losses), -1).any(axis=1)
    epochs_run = int(ran.sum())
    diverged_epochs = np.flatnonzero(diverged.reshape(len(diverged), -1).any(axis=1))
    diverged_at = int(diverged_epochs[0]) + 1 if diverged_epochs.size else None
    if diverged_at is not None:
        warnings.warn(
            f"Training stopped at epoch {diverged_at} of {num_epochs}: the loss became NaN or "
            "infinite. The parameters from the last epoch with a finite loss are kept. Try a "
            "smaller learning_rate (or optimizer), or standardised inputs.",
            TrainingDivergedWarning,
            stacklevel=3,
        )
    info = {
        "loss_history": losses[:epochs_run],
        "val_history": vals[:epochs_run] if validation is not None else None,
        "epochs_run": epochs_run,
        "stopped_early": bool(np.any(stopped)),
        "diverged_at_epoch": diverged_at,
        "train_seconds": time.perf_counter() - start,
    }
    if validation is None:
        final = (state.params, state.opt_state) if track else state.params
    else:
        final = state.best
    final = gathered(final) if across else final
    if track:
        return TrainResult(final[0], info, final[1])
    return TrainResult(final, info)


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


__all__ = [
    "TrainResult",
    "TrainingDivergedWarning",
    "batch_plan",
    "check_optimizer",
    "perturbs",
    "split_validation",
    "train",
]
