"""The parameter documentation the two network estimators share (appended to their docstrings
by :mod:`posterax.estimators.neural`), kept apart from the estimator code it describes."""

SHARED_PARAMS_DOC = """
    Parameters
    ----------
    method : str or px.methods object
        One of "nuts", "mala", "sgld", "sghmc", "csgmcmc", "map", "laplace", "vi",
        "vi_lowrank", "mc_dropout", "ensemble", "swag", or a method object holding its own
        settings (``px.methods.NUTS(num_chains=4)``, ``px.methods.Ensemble(num_members=5)``,
        ...; the estimator's per-method parameters below are then ignored).
        Posterior route. ``"nuts"`` and ``"mala"`` (Metropolis-adjusted Langevin, full batch)
        sample the exact posterior (small networks); ``"sgld"``, ``"sghmc"`` and ``"csgmcmc"``
        (cyclical SGLD) sample approximately from minibatches; the others train by minibatch
        optimisation (optax): the mode (``"map"``), a mean-field or low-rank + diagonal
        Gaussian (Bayes by backprop), dropout masks kept on at prediction, ``n_members`` MAP
        networks trained together under ``jax.vmap``, SWA-Gaussian (``"swag"``), or a
        Laplace approximation around the MAP (``"laplace"``).
    network : optional
        The network: ``None`` (the built-in MLP of ``hidden`` and ``activation``), hidden
        sizes such as ``(50,)``, ``px.networks.MLP(...)``, or a network of your own: a Flax NNX
        module instance, a Flax Linen module, an Equinox module or
        ``px.networks.Functional(apply_fn, params)``. Your network's inputs pass through
        untouched (any shape ``(N, ...)``: images, sequences); its outputs must be one mean per
        example (regression; two for ``likelihood="heteroscedastic"``) or one logit per class.
        Regression targets are standardised internally either way.
    hidden, activation
        Units per hidden layer of the built-in MLP, and ``"tanh"``, ``"relu"``, ``"gelu"`` or
        ``"auto"`` (tanh for NUTS, ReLU otherwise, so optimisation methods' uncertainty grows
        away from the data).
    prior : {"normal", "laplace"}
        Family of the prior on every weight and bias: Normal is L2 (weight decay), Laplace L1.
    prior_scale : float or one float per layer
        Scale of that prior on standardised inputs.
    num_warmup, num_samples, num_chains : int
        MCMC (``"nuts"``, ``"mala"``) warmup steps, draws per chain and chains; ``num_samples`` is
        also the number of posterior draws used at prediction by ``"vi"``, ``"vi_lowrank"`` and
        ``"mc_dropout"``.
    target_accept_prob : float, optional
        Target acceptance rate of the step-size adaptation; default the method's optimum
        (NUTS 0.8, MALA 0.574).
    optimizer : optax.GradientTransformation, optional
        Default ``optax.adam(learning_rate)``.
    num_epochs : int or "auto"
        ``"auto"`` aims at about 5000 optimiser steps (20 to 2000 epochs).
    batch_size, validation_fraction, patience
        Minibatch size (clipped to the data with a warning); with ``validation_fraction`` that
        share of the rows is held out and training stops after ``patience`` epochs without
        improvement, keeping the best parameters.
    n_members, dropout_rate, rank
        Ensemble size, MC-dropout rate in [0, 1), columns of the low-rank VI factor.
    step_size, thinning
        SG-MCMC (``"sgld"``, ``"sghmc"``, ``"csgmcmc"``): step size (default from the data size
        N: 0.1 / N for SGLD and cyclical SGLD, where it is the peak of each cycle,
        0.05 / sqrt(N) for SGHMC, 5e-3 with the RMSprop preconditioner) and steps per kept
        draw; ``num_warmup`` is the burn-in and ``batch_size`` the minibatch. SG-MCMC is
        approximate (no Metropolis step): its bias shrinks with the step size. MALA thins too.
    hessian_structure, subset_of_weights, pred_type
        ``"laplace"``: a Laplace approximation around the MAP network with curvature
        ``"kron"`` (KFAC), ``"diag"``, ``"full"`` or ``"lowrank"`` (``rank`` eigenpairs) of the
        generalised Gauss-Newton, over ``"all"`` weights or the ``"last_layer"``; the prior
        precision (and the noise) tuned by the marginal likelihood; predictions from the
        network linearised at the MAP (``"glm"``) or the network itself (``"nn"``). The
        functional :func:`posterax.inference.laplace.fit_laplace` has more (subnetworks,
        empirical Fisher, grid search).
    preconditioner : {None, "rmsprop"}
        ``"rmsprop"`` makes ``"sgld"`` / ``"csgmcmc"`` preconditioned SGLD (pSGLD, Li et al.
        2016): per-weight steps scaled by a running RMS of the gradient.
    num_cycles : int
        ``"csgmcmc"`` (Zhang et al. 2020): cosine step-size cycles; each explores for
        ``num_warmup / num_cycles`` steps at zero temperature, then collects
        ``num_samples / num_cycles`` draws (``num_samples`` must be a multiple).
    progress_bar : bool, optional
        Show sampling / training progress (the verbose switch); default: only in a terminal.
    devices : None, int or sequence of jax.Device
        Where to run: ``None`` uses every local device (``jax.local_devices()``), an int the
        first that many. Chains (``"nuts"``, ``"mala"``, SG-MCMC) and ensemble members are split
        across them (the largest number of devices that divides them evenly); the minibatch of
        the other trained methods is split across them (data parallel). Results equal the
        one-device run with the same ``random_state`` up to float rounding.
    max_memory : None, int or str
        Memory budget of one chunk of sample-based prediction (``predict``, ``predict_interval``,
        ``predict_quantiles``, ``predict_proba``), in bytes or as a string such as ``"512MB"``,
        ``"2GB"`` or ``"1.5GiB"``; ``None``: a quarter of the memory free on the device that
        predicts (available RAM on a CPU). Predictions are computed in row chunks that fit it,
        with the same draws for every chunk, so they do not depend on it (beyond float rounding);
        a budget too small for even one row raises a ``ValueError`` naming the bytes one row
        needs.
    checkpoint_dir : None or path
        Write a checkpoint there every ``checkpoint_every`` steps (MCMC and SG-MCMC steps, or
        epochs of ensembles / trained methods); ``fit(X, y, resume=True)`` continues a killed run
        from its last checkpoint and gives the draws an uninterrupted run gives.
    checkpoint_every : int
        Steps (or epochs) between checkpoints.
"""

__all__ = ["SHARED_PARAMS_DOC"]
