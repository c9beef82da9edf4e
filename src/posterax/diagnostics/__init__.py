"""Diagnostics: ArviZ InferenceData export; R-hat / ESS come from ArviZ, not re-written."""

from posterax.diagnostics.function_space import (
    convergence_problems,
    function_space_diagnostics,
    warn_if_not_converged,
)
from posterax.diagnostics.inference_data import (
    count_divergences,
    parameter_diagnostics,
    to_inference_data,
)

__all__ = [
    "convergence_problems",
    "count_divergences",
    "function_space_diagnostics",
    "parameter_diagnostics",
    "to_inference_data",
    "warn_if_not_converged",
]
