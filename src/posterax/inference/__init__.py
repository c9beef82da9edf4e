"""Inference: one method per file; each turns a model and data into a Posterior."""

from posterax.inference.exact import NormalInverseGammaPosterior, fit_exact
from posterax.inference.map_linear import fit_map_linear
from posterax.inference.methods import LinearMethod, NetworkMethod
from posterax.inference.nuts import NUTSResult, run_nuts, sample_nuts

__all__ = [
    "LinearMethod",
    "NetworkMethod",
    "NUTSResult",
    "NormalInverseGammaPosterior",
    "fit_exact",
    "fit_map_linear",
    "run_nuts",
    "sample_nuts",
]
