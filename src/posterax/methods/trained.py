"""Methods that train the network: MAP, deep ensembles, VI, MC dropout, SWAG, Laplace."""

from __future__ import annotations

from typing import Any

from posterax.methods.base import TrainedMethod, Training


class MAP(TrainedMethod):
    """The posterior mode: the network trained under its prior (weight decay for a Normal
    prior, L1 for a Laplace prior).

    Parameters
    ----------
    training : Training, optional
        Optimisation settings (default ``Training()``).
    """

    name = "map"

    def __init__(self, training: Training | None = None):
        self.training = training


class Ensemble(TrainedMethod):
    """A deep ensemble: ``num_members`` MAP networks from their own starts, trained together
    (vmapped, or split over the devices).

    Examples
    --------
    >>> import posterax as px
    >>> px.methods.Ensemble(num_members=3)
    Ensemble(num_members=3)
    """

    name = "ensemble"

    def __init__(self, num_members: int = 5, training: Training | None = None):
        self.num_members = num_members
        self.training = training

    def settings(self) -> dict[str, Any]:
        out = super().settings()
        out["n_members"] = out.pop("num_members")
        return out


class VI(TrainedMethod):
    """Variational inference, Bayes by backprop: a mean-field Gaussian, or a low-rank plus
    diagonal Gaussian (``family="lowrank"`` with ``rank`` columns).

    Parameters
    ----------
    family : {"meanfield", "lowrank"}
    rank : int
        Columns of the low-rank factor.
    num_samples : int
        Posterior draws used at prediction.
    training : Training, optional
    """

    name = "vi"

    def __init__(
        self,
        family: str = "meanfield",
        rank: int = 10,
        num_samples: int = 1000,
        training: Training | None = None,
    ):
        self.family = family
        self.rank = rank
        self.num_samples = num_samples
        self.training = training


class MCDropout(TrainedMethod):
    """MC dropout (Gal & Ghahramani 2016): dropout kept on at prediction. The built-in MLP
    drops its hidden units at ``dropout_rate``; a network of your own uses its own dropout
    layers (and their rates).

    Parameters
    ----------
    dropout_rate : float in [0, 1)
    num_samples : int
        Dropout draws used at prediction.
    training : Training, optional
    """

    name = "mc_dropout"

    def __init__(
        self, dropout_rate: float = 0.1, num_samples: int = 1000, training: Training | None = None
    ):
        self.dropout_rate = dropout_rate
        self.num_samples = num_samples
        self.training = training


class SWAG(TrainedMethod):
    """SWA-Gaussian (Maddox et al. 2019) from SGD snapshots after a MAP pretraining.

    Parameters
    ----------
    swa_learning_rate : float
    num_collections, collect_every, max_rank : int
    num_samples : int
        Posterior draws used at prediction.
    training : Training, optional
        Settings of the MAP pretraining.
    """

    name = "swag"

    def __init__(
        self,
        swa_learning_rate: float = 1e-2,
        num_collections: int = 20,
        collect_every: int = 1,
        max_rank: int = 20,
        num_samples: int = 1000,
        training: Training | None = None,
    ):
        self.swa_learning_rate = swa_learning_rate
        self.num_collections = num_collections
        self.collect_every = collect_every
        self.max_rank = max_rank
        self.num_samples = num_samples
        self.training = training


class Laplace(TrainedMethod):
    """A Gaussian around the MAP from the curvature of the log posterior, the prior precision
    (and noise) tuned by the marginal likelihood or on held-out rows.

    Parameters
    ----------
    structure : {"kron", "diag", "full", "lowrank"}
        KFAC, diagonal, full or low-rank generalised Gauss-Newton.
    subset : {"all", "last_layer"}
    pred_type : {"glm", "nn"}
        Predictions from the network linearised at the MAP, or from sampled networks.
    rank : int
        Rank of ``"lowrank"``.
    num_samples : int
        Posterior draws used at prediction.
    tune : {"marglik", "validation"}
        ``"marglik"``: the prior precision (and noise) that maximise the log marginal
        likelihood. ``"validation"``: 10% of the rows are held out from the MAP and the
        curvature, and the prior precision is the one of ``logspace(-4, 4, 41)`` whose
        predictive has the lowest NLL on them; its largest values give the MAP's own
        predictive, so the choice is not worse than the MAP on those rows. The evidence
        often prefers a broad prior that makes a network's predictive under-confident
        (see the README's images section).
    training : Training, optional
        Settings of the MAP training.

    Examples
    --------
    >>> import posterax as px
    >>> px.methods.Laplace(structure="full", subset="last_layer")
    Laplace(structure='full', subset='last_layer')
    """

    name = "laplace"

    def __init__(
        self,
        structure: str = "kron",
        subset: str = "all",
        pred_type: str = "glm",
        rank: int = 10,
        num_samples: int = 1000,
        tune: str = "marglik",
        training: Training | None = None,
    ):
        self.structure = structure
        self.subset = subset
        self.pred_type = pred_type
        self.rank = rank
        self.num_samples = num_samples
        self.tune = tune
        self.training = training

    def settings(self) -> dict[str, Any]:
        out = super().settings()
        out["hessian_structure"] = out.pop("structure")
        out["subset_of_weights"] = out.pop("subset")
        return out


__all__ = ["MAP", "SWAG", "VI", "Ensemble", "Laplace", "MCDropout"]
