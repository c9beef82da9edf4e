"""Models: network/regression functions, likelihoods and priors."""

from posterax.models import priors
from posterax.models.likelihoods import GaussianLikelihood
from posterax.models.linear import linear_apply, linear_regression_model

__all__ = ["GaussianLikelihood", "linear_apply", "linear_regression_model", "priors"]
