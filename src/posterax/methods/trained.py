"""Methods that train the network: MAP, deep ensembles, VI, MC dropout, SWAG, Laplace, IVON."""

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
    regression_likelihood = "heteroscedastic"  # Lakshminarayanan et al.'s: see BayesianRegressor

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

    The defaults are what makes mean-field VI work on networks: q's mean starts at a MAP
    fit (``init="map"``, a quarter of the epochs, run first) with a small standard deviation
    (``init_scale``); the KL term is weighted 0.3 (a tempered posterior: under N(0, 1) weight
    priors the mean-field ELBO optimum itself underfits, test NLL 1.05 on the seed 1-D data
    against NUTS's 0.41; 0.40 at weight 0.3); the expected log-likelihood averages 8 draws
    per step. ``kl_weight=1.0`` is the proper (untempered) posterior. See
    :func:`posterax.inference.fit_vi` for the measurements behind each choice.

    Parameters
    ----------
    family : {"meanfield", "lowrank"}
    rank : int
        Columns of the low-rank factor.
    num_samples : int
        Posterior draws used at prediction.
    init : {"map", "random"}
        Start q's mean (and the noise) at a MAP fit, or at the network's random weights.
    init_scale : float
        q's initial standard deviation of every weight.
    kl_weight : float
        Weight of the KL to the prior: 1 is the ELBO (a proper posterior); below 1 a tempered
        posterior that trusts the data more than the prior.
    kl_warmup : float in [0, 1]
        Share of the optimiser steps over which the KL weight grows linearly from 0 to
        ``kl_weight`` (0: no warm-up).
    num_mc_samples : int
        Monte Carlo draws of the expected log-likelihood per optimiser step.
    training : Training, optional

    Examples
    --------
    >>> import posterax as px
    >>> px.methods.VI(kl_warmup=0.2)
    VI(kl_warmup=0.2)
    """

    name = "vi"
    regression_likelihood = "heteroscedastic"  # measured on UCI: see BayesianRegressor

    def __init__(
        self,
        family: str = "meanfield",
        rank: int = 10,
        num_samples: int = 1000,
        init: str = "map",
        init_scale: float = 1e-2,
        kl_weight: float = 0.3,
        kl_warmup: float = 0.0,
        num_mc_samples: int = 8,
        training: Training | None = None,
    ):
        self.family = family
        self.rank = rank
        self.num_samples = num_samples
        self.init = init
        self.init_scale = init_scale
        self.kl_weight = kl_weight
        self.kl_warmup = kl_warmup
        self.num_mc_samples = num_mc_samples
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
    regression_likelihood = "heteroscedastic"  # measured on UCI: see BayesianRegressor

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
    swa_learning_rate : float or "auto"
        SGD's constant step while collecting. ``"auto"`` (default): ``1e-2``, lowered to one
        over the largest eigenvalue of the loss's Hessian at the MAP where the loss is sharper
        than that step can follow (a fixed ``1e-2`` diverged on half of the Boston splits: a
        regression loss's curvature grows as the learned noise shrinks).
    num_collections, collect_every, max_rank : int
    num_samples : int
        Posterior draws used at prediction.
    training : Training, optional
        Settings of the MAP pretraining.
    """

    name = "swag"

    def __init__(
        self,
        swa_learning_rate: float | str = "auto",
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
        ``validation_fraction``; 10% from 100 rows on): the evidence's choice is kept
        unless the best of ``logspace(-4, 4, 41)`` and the MAP limit (the MAP's own
        predictive) has a lower validation NLL by more than one standard error (paired over
        the rows), so the predictive is not worse than the MAP's on those rows beyond their
        noise, and the evidence's uncertainty away from the data (which rows drawn like the
        training data cannot value) is kept where they do not refute it. With no rows held
        out it is
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


class IVON(TrainedMethod):
    """IVON (Shen et al. 2024): a mean-field Gaussian over the weights learned by natural-
    gradient variational inference at the cost of Adam. Each step takes the gradient at
    weights drawn from q and estimates the diagonal Hessian ``h`` from the same draw, so q =
    N(m, 1 / (ess * (h + delta))) with ``delta`` the Normal prior's precision per example.

    IVON is its own optimiser: its ``learning_rate`` replaces Adam's, and ``training`` sets
    epochs, batches and early stopping only (``Training.optimizer`` and
    ``Training.learning_rate`` are refused).

    Parameters
    ----------
    learning_rate : float
        Step size of the Newton-like update, rescaled by ``hess_init + delta`` (as the
        authors' ``ivon-opt``). 0.1 with ``hess_init=1`` trains the UCI sets and Iris in the
        steps of ``num_epochs="auto"``.
    ess : float, optional
        Effective sample size; ``None`` (default): the number of training rows (the Bayesian
        posterior). Larger values shrink q (a tempered posterior).
    hess_init : float
        Starting Hessian estimate: q starts with sd ``1 / sqrt(ess * (hess_init + delta))``.
    beta1, beta2 : float
        Averaging weights of the gradient and the Hessian. ``beta2=0.999`` (not the paper's
        0.99999, meant for runs of 10^5 steps and more) lets ``h`` settle within the few
        thousand steps small data sets train for.
    mc_samples : int
        Weight draws per step.
    clip_radius : float, optional
        Each coordinate of the update direction ``(g_bar + delta m) / (h + delta)`` is clipped
        to ``[-clip_radius, clip_radius]``; ``None``: no clipping. IVON's first steps are
        plain momentum SGD (``h`` is still ``hess_init``), so a large early gradient (a
        heteroscedastic head's, say) throws the mean far away without it. On the first
        three UCI splits of boston, concrete and wine 0.1 moved IVON's test NLL by less than
        its standard error.
    num_samples : int
        Posterior draws used at prediction.
    training : Training, optional

    Examples
    --------
    >>> import posterax as px
    >>> px.methods.IVON(learning_rate=0.2, mc_samples=2)
    IVON(learning_rate=0.2, mc_samples=2)
    """

    name = "ivon"

    def __init__(
        self,
        learning_rate: float = 0.1,
        ess: float | None = None,
        hess_init: float = 1.0,
        beta1: float = 0.9,
        beta2: float = 0.999,
        mc_samples: int = 1,
        clip_radius: float | None = 0.1,
        num_samples: int = 1000,
        training: Training | None = None,
    ):
        self.learning_rate = learning_rate
        self.ess = ess
        self.hess_init = hess_init
        self.beta1 = beta1
        self.beta2 = beta2
        self.mc_samples = mc_samples
        self.clip_radius = clip_radius
        self.num_samples = num_samples
        self.training = training

    def settings(self) -> dict[str, Any]:
        training = self.training
        if isinstance(training, Training):
            default = Training().learning_rate
            if training.optimizer is not None or training.learning_rate != default:
                name = "optimizer" if training.optimizer is not None else "learning_rate"
                value = getattr(training, name)
                raise ValueError(
                    f"The '{name}' parameter of px.methods.Training must be left at its default "
                    f"({Training().get_params()[name]!r}) for px.methods.IVON, which is its own "
                    f"optimiser. Got {value!r}. Set px.methods.IVON(learning_rate=...) instead."
                )
        return super().settings()


__all__ = ["IVON", "MAP", "SWAG", "VI", "Ensemble", "Laplace", "MCDropout"]
