"""Public prior specifications: ``px.priors.Normal(0, 10)`` and friends."""

from posterax.models.priors import (
    Flat,
    HalfCauchy,
    HalfNormal,
    Laplace,
    LinearPrior,
    Normal,
    NormalInverseGamma,
)

__all__ = [
    "Flat",
    "HalfCauchy",
    "HalfNormal",
    "Laplace",
    "LinearPrior",
    "Normal",
    "NormalInverseGamma",
]
