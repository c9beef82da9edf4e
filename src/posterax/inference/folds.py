"""MAP networks or deep ensembles on several training sets at once (cross-validation folds,
bootstrap samples): one compiled program trains every set's members side by side under
``jax.vmap`` (split over devices), instead of one refit after another."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from posterax.base import Posterior
from posterax.inference.network_model import NetworkModel, TrainingSettings
from posterax.inference.training import train
from posterax.types import ArrayTree, PRNGKey


def fit_on_folds(
    rng_key: PRNGKey,
    model: NetworkModel,
    init_fn: Callable[[PRNGKey], ArrayTree],
    X: jax.Array,
    y: jax.Array,
    settings: TrainingSettings,
    num_members: int | None = None,
) -> list[Posterior]:
    """One posterior per training set: MAP (``num_members=None``, as
    :func:`~posterax.inference.fit_map`) or a deep ensemble of ``num_members`` (as
    :func:`~posterax.inference.fit_ensemble`).

    Parameters
    ----------
    rng_key : PRNGKey
    model : NetworkModel
        Without BatchNorm (its statistics would be of one set's inputs).
    init_fn : callable
        ``init_fn(key)`` returns starting network weights.
    X, y : arrays (K, N, ...) and (K, N, ...)
        ``K`` training sets of ``N`` rows each.
    settings : TrainingSettings
        Without ``validation_fraction``: a held-out split of its own for every set is not
        supported.
    num_members : int, optional

    Returns
    -------
    list of K Posterior

    Examples
    --------
    >>> import jax, jax.numpy as jnp, optax
    >>> from posterax.models import MLP, RegressionHead, GaussianLikelihood
    >>> X = jnp.linspace(-2, 2, 64)[:, None]
    >>> Xs = jnp.stack([X, X]); ys = jnp.stack([X[:, 0], -X[:, 0]])  # two training sets
    >>> net = MLP((8,), "tanh", 1)
    >>> model = NetworkModel(RegressionHead(net), GaussianLikelihood())
    >>> settings = TrainingSettings(optax.adam(1e-2), num_epochs=300, progress_bar=False)
    >>> init = lambda k: net.init(k, 1)
    >>> up, down = fit_on_folds(jax.random.key(0), model, init, Xs, ys, settings)
    >>> [bool(p.draws["sigma"][0] < 0.1) for p in (up, down)]  # each fits its own set
    [True, True]
    """
    if model.state is not None:
        raise ValueError(
            "fit_on_folds: the network has BatchNorm; fit each training set on its own "
            "(its statistics are of that set's inputs)."
        )
    if settings.validation_fraction is not None:
        raise ValueError(
            "fit_on_folds: validation_fraction is not supported when several training sets "
            f"train together. Got {settings.validation_fraction}; pass validation_fraction=None."
        )
    n_sets, per_set = int(X.shape[0]), num_members or 1
    total = n_sets * per_set
    init_key, train_key = jax.random.split(rng_key)
    starts = jax.vmap(lambda k: model.init_params(init_fn(k)))(jax.random.split(init_key, total))
    result = train(
        train_key,
        model.map_loss(int(X.shape[1])),
        starts,
        (jnp.repeat(X, per_set, axis=0), jnp.repeat(y, per_set, axis=0)),
        settings.optimizer,
        num_members=total,
        member_data=True,
        desc=f"{n_sets} training sets x {per_set}",
        **settings.train_kwargs(),
    )
    posteriors = []
    for k in range(n_sets):
        rows = slice(k * per_set, (k + 1) * per_set)
        info = {**result.info, "loss_history": result.info["loss_history"][:, rows]}
        take = k if num_members is None else rows  # MAP: no member axis
        params = jax.tree_util.tree_map(lambda leaf, take=take: leaf[take], result.params)
        if num_members is None:
            info["loss_history"] = info["loss_history"][:, 0]
        else:
            info["members"] = num_members
        posteriors.append(model.point_posterior(params, info))
    return posteriors


__all__ = ["fit_on_folds"]
