"""Diagnostics: ArviZ InferenceData export; R-hat / ESS come from ArviZ, not re-written."""

from posterax.diagnostics.inference_data import (
    count_divergences,
    parameter_diagnostics,
    to_inference_data,
)

__all__ = ["count_divergences", "parameter_diagnostics", "to_inference_data"]
