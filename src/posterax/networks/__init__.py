"""The user's network, whatever it is written in, as one pure function posterax can use.

``network=`` on :class:`~posterax.BayesianRegressor` and :class:`~posterax.BayesianClassifier`
takes hidden sizes or :class:`MLP` (the built-in network), a Flax NNX module instance, a Flax
Linen module, an Equinox module, or :class:`Functional` (``apply_fn(params, x)`` plus params).
:func:`as_network` turns each into a :class:`NetworkAdapter`: ``apply(params, x, *, key, train)``
over a params pytree, which every method samples, trains or linearises. Flax and Equinox are
imported only when their networks are used.
"""

from posterax.networks.adapter import NetworkAdapter, as_network
from posterax.networks.functional import Functional
from posterax.networks.mlp import MLP

__all__ = [
    "MLP",
    "Functional",
    "NetworkAdapter",
    "as_network",
]
