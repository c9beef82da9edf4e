"""Inference: one method per file; each turns a model and data into a Posterior."""

from posterax.inference.exact import NormalInverseGammaPosterior, fit_exact
from posterax.inference.map_linear import fit_map_linear
from posterax.inference.methods import LinearMethod, NetworkMethod
from posterax.inference.nuts import NUTSResult, run_nuts, sample_nuts
from posterax.inference.nuts_apply import nuts_posterior

__all__ = [
    "LinearMethod",
    "NetworkMethod",
    "NUTSResult",
    "NormalInverseGammaPosterior",
    "fit_exact",
    "fit_map_linear",
    "nuts_posterior",
    "run_nuts",
    "sample_nuts",
]
