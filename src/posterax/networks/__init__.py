"""The user's network, whatever it is written in, as one pure function posterax can use.

``network=`` on :class:`~posterax.BayesianRegressor` and :class:`~posterax.BayesianClassifier`
takes hidden sizes or :class:`MLP` (the built-in network), a Flax NNX module instance, a Flax
Linen module, an Equinox module, or :class:`Functional` (``apply_fn(params, x)`` plus params).
:func:`as_network` turns each into a :class:`NetworkAdapter`: ``apply(params, x, *, key, train)``
over a params pytree, which every method samples, trains or linearises. Flax and Equinox are
imported only when their networks are used.

The reference CNNs for the image data sets, ``DigitsCNN`` and ``MNIST1DCNN``, and their
``reference_training`` settings are Flax NNX networks in :mod:`posterax.networks.reference`;
``px.networks.DigitsCNN`` (and the others) import it, and Flax, on first use.
"""

from typing import Any

from posterax.networks.adapter import NetworkAdapter, as_network
from posterax.networks.functional import Functional
from posterax.networks.mlp import MLP

_REFERENCE = ("DigitsCNN", "MNIST1DCNN", "reference_training")


def __getattr__(name: str) -> Any:
    """The reference CNNs, from :mod:`posterax.networks.reference` (which needs Flax)."""
    if name in _REFERENCE:
        from posterax.networks import reference

        return getattr(reference, name)
    raise AttributeError(f"module 'posterax.networks' has no attribute {name!r}")


__all__ = [
    "MLP",
    "Functional",
    "NetworkAdapter",
    "as_network",
]
