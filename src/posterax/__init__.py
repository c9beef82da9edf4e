"""posterax: Bayesian machine learning and Bayesian deep learning in JAX."""

import warnings

# ArviZ 0.23 announces its 1.0 refactor on import; that is not actionable for posterax users.
warnings.filterwarnings("ignore", message=r"\s*ArviZ is undergoing", category=FutureWarning)

# ruff: noqa: E402

from posterax import (
    active,
    calibration,
    conformal,
    continual,
    data,
    diagnostics,
    inference,
    methods,
    metrics,
    networks,
    predictive,
    priors,
    tuning,
    uncertainty,
)
from posterax.base import Posterior, PredictiveSamples
from posterax.compilation import enable_compilation_cache
from posterax.estimators import (
    BayesianClassifier,
    BayesianLinearRegression,
    BayesianRegressor,
    load,
)
from posterax.tuning import Tuned

__version__ = "0.1.0"

__all__ = [
    "BayesianClassifier",
    "BayesianLinearRegression",
    "BayesianRegressor",
    "Posterior",
    "PredictiveSamples",
    "Tuned",
    "__version__",
    "active",
    "calibration",
    "conformal",
    "continual",
    "data",
    "diagnostics",
    "enable_compilation_cache",
    "inference",
    "load",
    "methods",
    "metrics",
    "networks",
    "predictive",
    "priors",
    "tuning",
    "uncertainty",
]
