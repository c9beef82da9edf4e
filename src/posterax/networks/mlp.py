"""The built-in network as a value: hidden sizes and an activation."""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

ACTIVATION_NAMES = ("auto", "tanh", "relu", "gelu")


@dataclasses.dataclass(frozen=True)
class MLP:
    """posterax's own multi-layer perceptron: ``hidden`` units per layer, ``activation``.

    Inputs are 2-D tables, standardised internally (and regression targets too); ``"auto"`` is
    tanh for NUTS and ReLU for the other methods.

    Examples
    --------
    >>> import posterax as px
    >>> px.networks.MLP(hidden=(50,), activation="relu")
    MLP(hidden=(50,), activation='relu')
    """

    hidden: tuple[int, ...] = (50,)
    activation: str = "auto"

    def __post_init__(self) -> None:
        hidden = self.hidden
        if not (
            isinstance(hidden, tuple | list)
            and all(
                isinstance(h, numbers.Integral) and not isinstance(h, bool) and h > 0
                for h in hidden
            )
        ):
            raise ValueError(
                "The 'hidden' parameter of px.networks.MLP must be a tuple of positive ints "
                f"(units per hidden layer). Got {hidden!r}. Pass e.g. hidden=(50,) or "
                "hidden=(32, 32); () means no hidden layer."
            )
        if self.activation not in ACTIVATION_NAMES:
            raise ValueError(
                "The 'activation' parameter of px.networks.MLP must be one of "
                f"{', '.join(map(repr, ACTIVATION_NAMES))}. Got {self.activation!r}."
            )
        object.__setattr__(self, "hidden", tuple(int(h) for h in hidden))


def builtin_mlp(network: Any) -> MLP | None:
    """The :class:`MLP` a ``network=`` value means, or ``None`` for a network of the user's."""
    if isinstance(network, MLP):
        return network
    if isinstance(network, tuple | list) and all(
        isinstance(h, numbers.Integral) and not isinstance(h, bool) for h in network
    ):
        return MLP(tuple(network))
    return None


__all__ = ["ACTIVATION_NAMES", "MLP", "builtin_mlp"]
