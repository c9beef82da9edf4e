"""Deep ensembles (Lakshminarayanan et al., 2017): M MAP members from different random starts
and shuffles, trained together under ``jax.vmap`` in one compiled program.

With a heteroscedastic Gaussian likelihood each member predicts a mean and a variance and is
trained on the Gaussian NLL; the predictive is the equal-weight mixture of the members, which is
exactly what :class:`~posterax.PredictiveSamples` with one draw per member represents. (The
paper's optional adversarial-training term is not included.)
"""

from __future__ import annotations

from collections.abc import Callable

import jax

from posterax.base import Posterior
from posterax.inference.network_model import NetworkModel, TrainingSettings, train_model
from posterax.types import ArrayTree, PRNGKey


def fit_ensemble(
    rng_key: PRNGKey,
    model: NetworkModel,
    init_fn: Callable[[PRNGKey], ArrayTree],
    X: jax.Array,
    y: jax.Array,
    settings: TrainingSettings,
    num_members: int = 5,
) -> Posterior:
    """Train ``num_members`` MAP networks at once; one posterior draw per member.

    Parameters are as in :func:`~posterax.inference.fit_map`; every member gets its own initial
    weights and its own minibatch order. Early stopping (``validation_fraction``) is tracked per
    member on one shared held-out split.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, optax
    >>> from posterax.models import MLP, ClassificationHead
    >>> from posterax.models.likelihoods import HeteroscedasticGaussianLikelihood
    >>> X = jnp.linspace(-2, 2, 64)[:, None]; y = jnp.sin(X[:, 0])
    >>> net = MLP((8,), "tanh", 2)
    >>> model = NetworkModel(ClassificationHead(net), HeteroscedasticGaussianLikelihood())
    >>> settings = TrainingSettings(optax.adam(1e-2), num_epochs=20, progress_bar=False)
    >>> post = fit_ensemble(jax.random.key(0), model, lambda k: net.init(k, 1), X, y, settings, 3)
    >>> post.num_draws
    3
    """

    def members(key):
        return jax.vmap(lambda k: model.init_params(init_fn(k)))(jax.random.split(key, num_members))

    result = train_model(
        rng_key, X, y, settings, model.map_loss, members, f"ensemble x{num_members}", num_members
    )
    params = model.with_population_state(result.params, X, members=True)  # per member
    return model.point_posterior(params, {**result.info, "members": num_members})


__all__ = ["fit_ensemble"]
