"""Models: network/regression functions, likelihoods and priors."""

from posterax.models import priors
from posterax.models.likelihoods import (
    CategoricalLikelihood,
    GaussianLikelihood,
    HeteroscedasticGaussianLikelihood,
)
from posterax.models.linear import linear_apply, linear_regression_model
from posterax.models.mlp import MLP, ClassificationHead, RegressionHead
from posterax.models.weight_prior import WeightPrior

__all__ = [
    "MLP",
    "CategoricalLikelihood",
    "ClassificationHead",
    "GaussianLikelihood",
    "HeteroscedasticGaussianLikelihood",
    "RegressionHead",
    "WeightPrior",
    "linear_apply",
    "linear_regression_model",
    "priors",
]
