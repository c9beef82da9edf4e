"""A sequence of classification tasks learnt one after another by one network, with the accuracy
on every task seen so far recorded after each task.

Strategies (:data:`STRATEGIES`): ``"finetune"`` (keep training; the baseline that forgets),
``"ewc"`` and ``"online_laplace"`` (see :mod:`posterax.continual.ewc`). All tasks share one
softmax head over ``n_classes`` outputs: relabel the classes of each task to share outputs
(domain-incremental) or keep them distinct (class-incremental).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from posterax.base import Posterior
from posterax.continual.ewc import DiagonalGaussian, ewc_loss
from posterax.continual.fisher import FISHER_KINDS, Curvature, DiagonalFisher, diagonal_fisher
from posterax.data.validation import (
    check_features,
    check_positive_float,
    check_positive_int,
    rng_key_from,
)
from posterax.inference.network_model import NetworkModel
from posterax.inference.training import adam, check_optimizer, train
from posterax.inference.vi import MeanFieldGaussian
from posterax.models import MLP, CategoricalLikelihood, ClassificationHead, WeightPrior
from posterax.types import ArrayTree

STRATEGIES = ("finetune", "ewc", "online_laplace")

FisherFn = Callable[[NetworkModel, ArrayTree, jax.Array, jax.Array], Curvature]


@dataclasses.dataclass
class ContinualResult:
    """What :func:`run_continual` learnt.

    ``accuracy[i, j]`` is the test accuracy on task ``j`` after training on tasks ``0..i``
    (``nan`` for ``j > i``). ``params[i]`` are the network weights after task ``i``;
    ``posteriors[i]`` a :class:`~posterax.Posterior` of them (a diagonal Gaussian for online
    Laplace, a point mass otherwise), so ``predictive_samples`` and the uncertainty tools apply.
    """

    strategy: str
    accuracy: np.ndarray
    params: list[ArrayTree]
    posteriors: list[Posterior]
    model: NetworkModel
    info: dict[str, Any]

    @property
    def final_accuracy(self) -> np.ndarray:
        """Accuracy on every task after the last one, shape ``(T,)``."""
        return self.accuracy[-1]

    @property
    def average_accuracy(self) -> float:
        """Mean of :attr:`final_accuracy`."""
        return float(np.mean(self.final_accuracy))

    @property
    def forgetting(self) -> np.ndarray:
        """Accuracy lost on each earlier task by the end, ``acc[j, j] - acc[T-1, j]``; (T-1,)."""
        return np.diag(self.accuracy)[:-1] - self.accuracy[-1, :-1]


def _check_tasks(tasks: Any, where: str) -> list[tuple[np.ndarray, ...]]:
    if not isinstance(tasks, Sequence) or len(tasks) == 0:
        raise ValueError(
            f"The 'tasks' parameter of {where} must be a non-empty sequence of "
            "(X_train, y_train, X_test, y_test) tuples. Got "
            f"{type(tasks).__name__}{'' if not isinstance(tasks, Sequence) else ' of length 0'}."
        )
    out = []
    for i, task in enumerate(tasks):
        if not isinstance(task, Sequence) or len(task) != 4:
            raise ValueError(
                f"The 'tasks' parameter of {where} must hold (X_train, y_train, X_test, y_test) "
                f"tuples. Task {i} is a {type(task).__name__}"
                + (f" of length {len(task)}" if isinstance(task, Sequence) else "")
                + ". Split each task into train and test arrays."
            )
        X_tr = check_features(task[0], where=where, name=f"tasks[{i}][0] (X_train)")
        X_te = check_features(task[2], where=where, name=f"tasks[{i}][2] (X_test)")
        y_tr, y_te = np.asarray(task[1]), np.asarray(task[3])
        for name, y, X in (("y_train", y_tr, X_tr), ("y_test", y_te, X_te)):
            if y.ndim != 1 or y.shape[0] != X.shape[0] or y.dtype.kind not in "iu":
                raise ValueError(
                    f"The 'tasks' parameter of {where}: task {i}'s {name} must be 1-D integer "
                    f"class indices, one per row. Got shape {y.shape} and dtype {y.dtype} for "
                    f"{X.shape[0]} rows. Encode labels with sklearn.preprocessing.LabelEncoder."
                )
        out.append((X_tr, y_tr, X_te, y_te))
    n_features = {t[0].shape[1] for t in out} | {t[2].shape[1] for t in out}
    if len(n_features) > 1:
        raise ValueError(
            f"The 'tasks' parameter of {where} must share one feature space. Got feature counts "
            f"{sorted(n_features)}. Pad or project the inputs to a common width."
        )
    return out


def _accuracy(model: NetworkModel, params: ArrayTree, X: np.ndarray, y: np.ndarray) -> float:
    logits = model.apply_fn(params, jnp.asarray(X, dtype=jnp.float32))
    return float(np.mean(np.asarray(jnp.argmax(logits, axis=-1)) == y))


def run_continual(
    tasks: Sequence[tuple[Any, Any, Any, Any]],
    *,
    strategy: str = "ewc",
    hidden: tuple[int, ...] = (64,),
    n_classes: int | None = None,
    strength: float = 100.0,
    prior_scale: float = 1.0,
    fisher: str | FisherFn = "exact",
    num_epochs: int = 30,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    optimizer: Any = None,
    random_state: int | None = 0,
) -> ContinualResult:
    """Learn classification tasks in order with one MLP and record accuracy on all past tasks.

    Parameters
    ----------
    tasks : sequence of (X_train, y_train, X_test, y_test)
        Integer labels in ``[0, n_classes)``; inputs on a common, roughly standardised scale.
    strategy : {"finetune", "ewc", "online_laplace"}
    hidden : tuple of int
        Hidden units of the ReLU MLP.
    n_classes : int, optional
        Outputs of the shared softmax head; default ``1 + max label`` over all tasks.
    strength : float
        EWC's ``lambda`` (ignored by the other strategies).
    prior_scale : float
        ``N(0, prior_scale^2)`` weight prior (weight decay for finetune/EWC; the first
        task's prior for online Laplace).
    fisher : {"exact", "empirical", "sampled"} or callable
        Curvature after each task: a :func:`~posterax.continual.diagonal_fisher` kind, or
        ``fisher(model, params, X, y)`` returning any object with ``quadratic(delta)`` (e.g.
        a KFAC Fisher). Online Laplace needs the diagonal (a kind, or a callable returning a
        :class:`~posterax.continual.DiagonalFisher`).
    num_epochs, batch_size, learning_rate, optimizer
        Training of each task (Adam(``learning_rate``) unless an optax ``optimizer`` is given).
    random_state : int, optional
        Seed of initial weights, shuffling and sampled Fishers.

    Returns
    -------
    ContinualResult
    """
    where = "run_continual"
    data = _check_tasks(tasks, where)
    if strategy not in STRATEGIES:
        raise ValueError(
            f"The 'strategy' parameter of {where} must be one of "
            f"{', '.join(map(repr, STRATEGIES))}. Got {strategy!r}."
        )
    if not callable(fisher) and fisher not in FISHER_KINDS:
        raise ValueError(
            f"The 'fisher' parameter of {where} must be one of "
            f"{', '.join(map(repr, FISHER_KINDS))} or a callable fisher(model, params, X, y). "
            f"Got {fisher!r}."
        )
    for name, value in (("strength", strength), ("prior_scale", prior_scale)):
        check_positive_float(value, name=name, where=where)
    num_epochs = check_positive_int(num_epochs, name="num_epochs", where=where)
    batch_size = check_positive_int(batch_size, name="batch_size", where=where)
    max_label = max(int(max(t[1].max(), t[3].max())) for t in data)
    k = (
        max_label + 1
        if n_classes is None
        else check_positive_int(n_classes, name="n_classes", where=where, minimum=2)
    )
    if max_label >= k:
        raise ValueError(
            f"The 'n_classes' parameter of {where} must exceed every label. Got n_classes={k} "
            f"but a label {max_label}. Pass n_classes={max_label + 1} or leave it None."
        )
    opt = adam(float(learning_rate)) if optimizer is None else check_optimizer(optimizer, 0, where)
    key = rng_key_from(random_state, where=where)

    network = MLP(tuple(hidden), "relu", k)
    model = NetworkModel(
        ClassificationHead(network), CategoricalLikelihood(), WeightPrior("normal", (prior_scale,))
    )
    init_key, key = jax.random.split(key)
    params = model.init_params(network.init(init_key, data[0][0].shape[1]))
    anchors: list[tuple[ArrayTree, Curvature]] = []
    gaussian = DiagonalGaussian.prior(params["net"], prior_scale)
    accuracy = np.full((len(data), len(data)), np.nan)
    all_params, posteriors, seconds = [], [], []
    for i, (X_tr, y_tr, _, _) in enumerate(data):
        X, y = jnp.asarray(X_tr, jnp.float32), jnp.asarray(y_tr, jnp.int32)
        n = int(X.shape[0])
        if strategy == "finetune":
            loss = model.map_loss(n)
        elif strategy == "ewc":
            loss = ewc_loss(model, n, anchors, float(strength))
        else:
            loss = gaussian.loss(model, n)
        train_key, fisher_key, key = jax.random.split(key, 3)
        result = train(
            train_key,
            loss,
            params,
            (X, y),
            opt,
            num_epochs=num_epochs,
            batch_size=batch_size,
            progress_bar=False,
            desc=f"task {i} ({strategy})",
        )
        params = result.params
        seconds.append(result.info["train_seconds"])
        # EWC needs each earlier task's curvature; online Laplace updates its posterior after
        # every task (the last one included, so ``posteriors[-1]`` is the full posterior).
        if strategy == "online_laplace" or (strategy == "ewc" and i < len(data) - 1):
            if callable(fisher):
                curvature = fisher(model, params, X, y)
            else:
                curvature = diagonal_fisher(model, params, X, y, kind=fisher, rng_key=fisher_key)
            if strategy == "ewc":
                anchors.append((params["net"], curvature))
            elif not isinstance(curvature, DiagonalFisher):
                raise TypeError(
                    f"The 'fisher' parameter of {where} returned a {type(curvature).__name__}; "
                    "strategy='online_laplace' keeps a diagonal Gaussian posterior and needs a "
                    "DiagonalFisher. Use strategy='ewc' for other curvatures."
                )
            else:
                gaussian = gaussian.update(params["net"], curvature, n)
        for j in range(i + 1):
            accuracy[i, j] = _accuracy(model, params, data[j][2], data[j][3])
        all_params.append(params)
        if strategy == "online_laplace":
            dist = MeanFieldGaussian(gaussian.mean, gaussian.scale())
            posteriors.append(Posterior(model.apply_fn, model.likelihood, distribution=dist))
        else:
            posteriors.append(model.point_posterior(params, {}))
    return ContinualResult(
        strategy=strategy,
        accuracy=accuracy,
        params=all_params,
        posteriors=posteriors,
        model=model,
        info={"train_seconds": seconds, "n_classes": k, "strength": strength},
    )


__all__ = ["STRATEGIES", "ContinualResult", "run_continual"]
