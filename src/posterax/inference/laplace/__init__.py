"""Laplace approximations around MAP weights: diag / KFAC / full / low-rank curvature over all
weights, the last layer or a subnetwork; GGN, empirical Fisher or exact Hessian; linearised
(GLM) or sampled-network predictions; evidence-based tuning of the prior precision and noise.

Entry point: :func:`fit_laplace`. The steps underneath (:func:`laplace_state`,
:func:`tune_marglik`, :func:`laplace_posterior`, :func:`glm_predictive`) are pure functions over
``apply_fn(params, X)`` and a params pytree.
"""

from posterax.inference.laplace.curvature import (
    STRUCTURES,
    DiagCurvature,
    FullCurvature,
    LowRankCurvature,
)
from posterax.inference.laplace.evidence import LaplaceState, log_marginal_likelihood, tune_marglik
from posterax.inference.laplace.fit import (
    fit_laplace,
    laplace_posterior,
    laplace_state,
    map_params_of,
)
from posterax.inference.laplace.gridsearch import MAP_LIMIT, tune_gridsearch, validation_nll
from posterax.inference.laplace.kfac import KronBlock, KronCurvature
from posterax.inference.laplace.memory import estimate_memory_bytes
from posterax.inference.laplace.posterior import LaplaceGaussian
from posterax.inference.laplace.predictive import (
    LinearizedApply,
    function_space,
    glm_predictive,
    linearized_apply,
)
from posterax.inference.laplace.subset import SUBSETS, WeightSubset, make_subset

__all__ = [
    "MAP_LIMIT",
    "STRUCTURES",
    "SUBSETS",
    "DiagCurvature",
    "FullCurvature",
    "KronBlock",
    "KronCurvature",
    "LaplaceGaussian",
    "LaplaceState",
    "LinearizedApply",
    "LowRankCurvature",
    "WeightSubset",
    "estimate_memory_bytes",
    "fit_laplace",
    "function_space",
    "glm_predictive",
    "laplace_posterior",
    "laplace_state",
    "linearized_apply",
    "log_marginal_likelihood",
    "make_subset",
    "map_params_of",
    "tune_gridsearch",
    "tune_marglik",
    "validation_nll",
]
