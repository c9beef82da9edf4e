"""The parameter documentation the two network estimators share (appended to their docstrings
by :mod:`posterax.estimators.neural`), kept apart from the estimator code it describes."""

SHARED_PARAMS_DOC = """
    Parameters
    ----------
    method : str or px.methods object
        The posterior route and its settings: a method object such as
        ``px.methods.NUTS(num_warmup=500, num_chains=4)``, ``px.methods.Ensemble(num_members=5)``,
        ``px.methods.Laplace(structure="kron", subset="last_layer")`` or
        ``px.methods.MAP(training=px.methods.Training(num_epochs=200))``, or one of the strings
        "nuts", "nuts_last_layer", "mala", "sgld", "sghmc", "csgmcmc", "map", "laplace", "vi",
        "vi_lowrank", "ivon", "mc_dropout", "ensemble", "swag" for that method with its
        defaults.
        ``NUTS`` and ``MALA`` (full batch) sample the exact posterior (small networks);
        ``NUTS(subset="last_layer")`` samples the last layer exactly on the features of the
        MAP network (any size of network: the reference posterior on the last layer); ``SGLD``,
        ``SGHMC`` and ``CyclicalSGMCMC`` sample approximately from minibatches; the others
        train by minibatch optimisation (optax, ``px.methods.Training``): the mode (``MAP``), a
        mean-field or low-rank + diagonal Gaussian (``VI``, Bayes by backprop), dropout kept on
        at prediction (``MCDropout``), networks trained together under ``jax.vmap``
        (``Ensemble``), SWA-Gaussian (``SWAG``), or a Laplace approximation around the MAP
        (``Laplace``). Each class documents its settings; nested ones work with
        ``set_params(method__num_members=3)`` and ``GridSearchCV``.
    network : optional
        ``None`` (the built-in MLP with the default hidden sizes), hidden sizes such as ``(50,)``,
        ``px.networks.MLP(hidden=(50,), activation="relu")`` (``activation="auto"``: tanh for
        NUTS on all weights, ReLU otherwise, so optimisation methods' uncertainty grows away
        from the data), or a network of your own: a Flax NNX module instance, a Flax Linen
        module, an Equinox module or ``px.networks.Functional(apply_fn, params)``. Your
        network's inputs pass through untouched (any shape ``(N, ...)``: images, sequences);
        its outputs must be one mean per example (regression; two for
        ``likelihood="heteroscedastic"``) or one logit per class. Regression targets are
        standardised internally either way.
    prior : {"normal", "laplace"}
        Family of the prior on every weight and bias: Normal is L2 (weight decay), Laplace L1.
    prior_scale : float or one float per layer
        Scale of that prior on standardised inputs.
    noise_prior_scale : float
        Regression with NUTS / MALA: ``sigma ~ HalfCauchy(noise_prior_scale)`` on the
        standardised targets.
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
