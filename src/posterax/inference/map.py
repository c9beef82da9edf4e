"""MAP training of a network: the posterior mode by minibatch optax optimisation.

A Normal(0, s) prior is weight decay, a Laplace(0, b) prior is L1; the result is a
:class:`~posterax.Posterior` with one draw (a point mass), so every predictive summary works.
"""

from __future__ import annotations

from collections.abc import Callable

import jax

from posterax.base import Posterior
from posterax.inference.network_model import NetworkModel, TrainingSettings, train_model
from posterax.types import ArrayTree, PRNGKey


def fit_map(
    rng_key: PRNGKey,
    model: NetworkModel,
    init_fn: Callable[[PRNGKey], ArrayTree],
    X: jax.Array,
    y: jax.Array,
    settings: TrainingSettings,
) -> Posterior:
    """Train ``model`` to its posterior mode.

    Parameters
    ----------
    rng_key : PRNGKey
        Initial weights, shuffling and the validation split.
    model : NetworkModel
    init_fn : callable
        ``init_fn(key)`` returns starting network weights (e.g. ``MLP.init``).
    X, y : arrays
        Training inputs (N, D) and targets (N,) (class indices for classification).
    settings : TrainingSettings

    Returns
    -------
    Posterior
        One draw: the trained params (``sigma`` for a homoscedastic Gaussian); ``info`` holds
        the training record (see :func:`train`).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, optax, posterax as px
    >>> from posterax.models import MLP, RegressionHead, GaussianLikelihood
    >>> X = jnp.linspace(-2, 2, 100)[:, None]; y = jnp.sin(X[:, 0])
    >>> net = MLP((16,), "tanh", 1)
    >>> model = NetworkModel(RegressionHead(net), GaussianLikelihood())
    >>> settings = TrainingSettings(optax.adam(1e-2), num_epochs=300, progress_bar=False)
    >>> post = fit_map(jax.random.key(0), model, lambda k: net.init(k, 1), X, y, settings)
    >>> bool(post.draws["sigma"][0] < 0.1)
    True
    """
    result = train_model(
        rng_key, X, y, settings, model.map_loss, lambda k: model.init_params(init_fn(k)), "MAP"
    )
    params = model.with_population_state(result.params, X)  # BatchNorm: statistics of all X
    return model.point_posterior(params, result.info)


__all__ = ["fit_map"]
