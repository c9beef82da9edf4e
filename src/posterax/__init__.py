"""posterax: Bayesian machine learning and Bayesian deep learning in JAX."""

from posterax import data, diagnostics, predictive, priors
from posterax.base import Posterior, PredictiveSamples
from posterax.estimators import BayesianLinearRegression, load

__version__ = "0.1.0"

__all__ = [
    "BayesianLinearRegression",
    "Posterior",
    "PredictiveSamples",
    "__version__",
    "data",
    "diagnostics",
    "load",
    "predictive",
    "priors",
]
