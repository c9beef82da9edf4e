"""Inference: one method per file; each turns a model and data into a Posterior."""

from posterax.inference.chains import Chains
from posterax.inference.ensemble import fit_ensemble
from posterax.inference.exact import NormalInverseGammaPosterior, fit_exact
from posterax.inference.folds import fit_on_folds
from posterax.inference.ivon import fit_ivon
from posterax.inference.laplace import LaplaceGaussian, fit_laplace
from posterax.inference.last_layer_nuts import LastLayerApply, sample_last_layer_nuts
from posterax.inference.mala import MALASettings, sample_mala
from posterax.inference.map import fit_map
from posterax.inference.map_linear import fit_map_linear
from posterax.inference.mc_dropout import DropoutDistribution, fit_mc_dropout
from posterax.inference.methods import LinearMethod, NetworkMethod
from posterax.inference.network_model import NetworkModel, TrainingSettings
from posterax.inference.nuts import sample_nuts
from posterax.inference.nuts_apply import nuts_posterior
from posterax.inference.nuts_numpyro import run_nuts
from posterax.inference.sgmcmc import SGMCMCSettings, rmsprop_sgld, sample_sgmcmc
from posterax.inference.swag import SWAGDistribution, fit_swag
from posterax.inference.training import TrainingDivergedWarning, TrainResult, train
from posterax.inference.vi import LowRankGaussian, MeanFieldGaussian, fit_vi

__all__ = [
    "Chains",
    "DropoutDistribution",
    "LaplaceGaussian",
    "LastLayerApply",
    "LinearMethod",
    "LowRankGaussian",
    "MALASettings",
    "MeanFieldGaussian",
    "NetworkMethod",
    "NetworkModel",
    "NormalInverseGammaPosterior",
    "SGMCMCSettings",
    "SWAGDistribution",
    "TrainResult",
    "TrainingDivergedWarning",
    "TrainingSettings",
    "fit_ensemble",
    "fit_on_folds",
    "fit_exact",
    "fit_laplace",
    "fit_map",
    "fit_map_linear",
    "fit_ivon",
    "fit_mc_dropout",
    "fit_swag",
    "fit_vi",
    "nuts_posterior",
    "rmsprop_sgld",
    "run_nuts",
    "sample_last_layer_nuts",
    "sample_mala",
    "sample_nuts",
    "sample_sgmcmc",
    "train",
]
