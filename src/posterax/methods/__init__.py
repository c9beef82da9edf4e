"""Methods as values: ``px.methods.NUTS(num_chains=4)``, ``px.methods.Laplace(structure="full")``,
``px.methods.Ensemble(num_members=5)``, ... Each holds its own settings and follows
scikit-learn's ``get_params`` / ``set_params``; ``method="nuts"`` (a string) means that class
with its defaults."""

from posterax.methods.base import Method, Training
from posterax.methods.registry import (
    NETWORK_METHODS,
    in_method_terms,
    method_from_settings,
    method_key,
    method_names,
    resolve_method,
)
from posterax.methods.samplers import MALA, NUTS, SGHMC, SGLD, CyclicalSGMCMC
from posterax.methods.trained import IVON, MAP, SWAG, VI, Ensemble, Laplace, MCDropout

__all__ = [
    "IVON",
    "MALA",
    "MAP",
    "NETWORK_METHODS",
    "NUTS",
    "SGHMC",
    "SGLD",
    "SWAG",
    "VI",
    "CyclicalSGMCMC",
    "Ensemble",
    "Laplace",
    "MCDropout",
    "Method",
    "Training",
    "in_method_terms",
    "method_from_settings",
    "method_key",
    "method_names",
    "resolve_method",
]
