"""MCMC methods: NUTS, MALA (full batch, exact) and the SG-MCMC samplers (minibatch,
approximate)."""

from __future__ import annotations

from typing import Any

from posterax.methods.base import Method, TrainedMethod, Training


class NUTS(TrainedMethod):
    """The No-U-Turn Sampler (BlackJAX kernel, Stan-style window adaptation), compiled once.

    Parameters
    ----------
    num_warmup, num_samples, num_chains : int
        Warmup steps, draws per chain, chains (split over the devices).
    target_accept_prob : float, optional
        Step-size adaptation target (default 0.8).
    max_tree_depth : int
    subset : {"all", "last_layer"}
        ``"all"`` samples every weight. ``"last_layer"`` trains the MAP network (``training``),
        freezes everything but its last layer and samples the last layer's weights and bias (and
        the noise sd) exactly under the model's prior and likelihood, given the MAP's features:
        the reference posterior on the last layer. Each gradient then costs the last layer
        alone (the features are computed once).
    training : Training, optional
        Settings of the MAP training (``subset="last_layer"`` only).

    Examples
    --------
    >>> import posterax as px
    >>> px.methods.NUTS(num_warmup=500, num_chains=4)
    NUTS(num_chains=4, num_warmup=500)
    >>> px.methods.NUTS(subset="last_layer", training=px.methods.Training(num_epochs=100))
    NUTS(subset='last_layer', training=Training(num_epochs=100))
    """

    name = "nuts"
    sampled = True

    def __init__(
        self,
        num_warmup: int = 1000,
        num_samples: int = 1000,
        num_chains: int = 1,
        target_accept_prob: float | None = None,
        max_tree_depth: int = 10,
        subset: str = "all",
        training: Training | None = None,
    ):
        self.num_warmup = num_warmup
        self.num_samples = num_samples
        self.num_chains = num_chains
        self.target_accept_prob = target_accept_prob
        self.max_tree_depth = max_tree_depth
        self.subset = subset
        self.training = training

    @classmethod
    def trains(cls, own: dict[str, Any]) -> bool:
        """Only the last-layer variant trains a network (the MAP whose features it uses)."""
        return own.get("subset", "all") == "last_layer"

    def settings(self) -> dict[str, Any]:
        out = super().settings()
        out["subset_of_weights"] = out.pop("subset")
        return out


class MALA(Method):
    """Metropolis-adjusted Langevin (BlackJAX), step size tuned to acceptance 0.574 in warmup.

    Parameters
    ----------
    num_warmup, num_samples, num_chains, thinning : int
    target_accept_prob : float, optional
        Default 0.574 (the optimum for MALA).
    """

    name = "mala"
    sampled = True

    def __init__(
        self,
        num_warmup: int = 1000,
        num_samples: int = 1000,
        num_chains: int = 1,
        target_accept_prob: float | None = None,
        thinning: int = 1,
    ):
        self.num_warmup = num_warmup
        self.num_samples = num_samples
        self.num_chains = num_chains
        self.target_accept_prob = target_accept_prob
        self.thinning = thinning


class _SGMCMC(Method):
    sampled = True

    def __init__(
        self,
        step_size: float | None = None,
        num_warmup: int = 1000,
        num_samples: int = 1000,
        num_chains: int = 1,
        thinning: int = 1,
        batch_size: int = 32,
        preconditioner: str | None = None,
    ):
        self.step_size = step_size
        self.num_warmup = num_warmup
        self.num_samples = num_samples
        self.num_chains = num_chains
        self.thinning = thinning
        self.batch_size = batch_size
        self.preconditioner = preconditioner

    def settings(self) -> dict[str, Any]:
        return {"num_cycles": 1, **super().settings()}


class SGLD(_SGMCMC):
    """Stochastic-gradient Langevin dynamics (BlackJAX), minibatch gradients scaled to the data.

    Parameters
    ----------
    step_size : float, optional
        Default from the data size N: 0.1 / N for SGLD and cyclical SGLD (where it is the peak
        of each cycle), 0.05 / sqrt(N) for SGHMC, 5e-3 with the RMSprop preconditioner.
    num_warmup : int
        Burn-in steps.
    num_samples, num_chains, thinning, batch_size : int
        Draws per chain, chains, steps per kept draw, minibatch size.
    preconditioner : {None, "rmsprop"}
        ``"rmsprop"`` is pSGLD (Li et al. 2016): per-weight steps scaled by a running RMS of
        the gradient.

    SG-MCMC is approximate (no Metropolis step): its bias shrinks with the step size.

    Examples
    --------
    >>> import posterax as px
    >>> px.methods.SGLD(num_warmup=2000, num_samples=500, thinning=5)
    SGLD(num_samples=500, num_warmup=2000, thinning=5)
    """

    name = "sgld"


class SGHMC(_SGMCMC):
    """Stochastic-gradient Hamiltonian Monte Carlo (BlackJAX); settings as :class:`SGLD`
    (``preconditioner`` must stay ``None``: RMSprop preconditioning is pSGLD's)."""

    name = "sghmc"


class CyclicalSGMCMC(_SGMCMC):
    """Cyclical SGLD (Zhang et al. 2020): ``num_cycles`` cosine step-size cycles, each exploring
    and then collecting ``num_samples / num_cycles`` draws (multimodal posteriors).

    Parameters
    ----------
    num_cycles : int
        Each cycle explores for ``num_warmup / num_cycles`` steps at zero temperature, then
        collects ``num_samples / num_cycles`` draws (``num_samples`` must be a multiple).
    step_size, num_warmup, num_samples, num_chains, thinning, batch_size, preconditioner
        As for :class:`SGLD`.
    """

    name = "csgmcmc"

    def __init__(
        self,
        num_cycles: int = 4,
        step_size: float | None = None,
        num_warmup: int = 1000,
        num_samples: int = 1000,
        num_chains: int = 1,
        thinning: int = 1,
        batch_size: int = 32,
        preconditioner: str | None = None,
    ):
        super().__init__(
            step_size, num_warmup, num_samples, num_chains, thinning, batch_size, preconditioner
        )
        self.num_cycles = num_cycles

    def settings(self) -> dict[str, Any]:
        return Method.settings(self)


__all__ = ["MALA", "NUTS", "SGHMC", "SGLD", "CyclicalSGMCMC"]
