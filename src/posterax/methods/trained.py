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
    tune : {"auto", "marglik", "validation"}
        ``"auto"`` (the default): the prior precision and noise that maximise the log
        marginal likelihood, checked on the rows early stopping holds out (``Training``'s
        ``validation_fraction``; 10% from 100 rows on): the evidence's choice, each prior
        precision of ``logspace(-4, 4, 41)`` and the MAP limit compete on the validation
        NLL of the predictive, so the evidence is kept where those rows agree with it and
        the predictive is never worse than the MAP's on them. With no rows held out it is
        ``"marglik"``. ``"marglik"``: the evidence alone (on networks it often prefers a
        broad prior that makes the predictive under-confident; see the README's images
        section). ``"validation"``: the grid and the MAP limit alone on held-out rows (10%
        when early stopping is off). ``posterior_.info["tune_choice"]`` says which won.
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
        tune: str = "auto",
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
