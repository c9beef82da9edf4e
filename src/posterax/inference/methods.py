"""Method names as string Enums: estimators dispatch through a registry, not if-chains."""

from __future__ import annotations

from enum import StrEnum


class LinearMethod(StrEnum):
    """Posterior routes for :class:`posterax.BayesianLinearRegression`."""

    EXACT = "exact"
    NUTS = "nuts"
    MAP = "map"


class NetworkMethod(StrEnum):
    """Posterior routes for :class:`posterax.BayesianRegressor` / ``BayesianClassifier``."""

    NUTS = "nuts"
    NUTS_LAST_LAYER = "nuts_last_layer"
    MAP = "map"
    VI = "vi"
    VI_LOWRANK = "vi_lowrank"
    MC_DROPOUT = "mc_dropout"
    ENSEMBLE = "ensemble"
    MALA = "mala"
    SGLD = "sgld"
    SGHMC = "sghmc"
    CSGMCMC = "csgmcmc"
    SWAG = "swag"
    LAPLACE = "laplace"
    IVON = "ivon"


# Methods that train a network by minibatch optimisation (early stopping applies to them).
TRAINED_METHODS = (
    "map",
    "vi",
    "vi_lowrank",
    "mc_dropout",
    "ensemble",
    "swag",
    "laplace",
    "nuts_last_layer",
    "ivon",
)

__all__ = ["TRAINED_METHODS", "LinearMethod", "NetworkMethod"]
