"""IVON: natural-gradient variational learning at the cost of Adam (Shen et al. 2024,
"Variational Learning is Effective for Large Deep Networks", Algorithm 1).

q(theta) = N(m, diag(1 / (ess * (h + delta)))) over every parameter. Each step draws
``theta = m + sigma * eps`` (``eps`` standard normal, ``sigma = 1 / sqrt(ess * (h + delta))``),
takes the gradient ``g`` of the *average* loss (no prior term) at ``theta`` and updates::

    g_bar = beta1 * g_bar + (1 - beta1) * g
    h_hat = g * eps / sigma                                    (reparameterisation trick)
    h     = beta2 * h + (1 - beta2) * h_hat
            + 0.5 * (1 - beta2)^2 * (h - h_hat)^2 / (h + delta)   (keeps h + delta > 0)
    m     = m - lr_t * clip((g_bar / (1 - beta1^t) + delta * m) / (h + delta), radius)

with ``lr_t = learning_rate * (hess_init + delta)`` when ``rescale_lr`` (as the authors'
``ivon-opt``). ``delta`` is the weight decay: with the effective sample size ``ess`` the prior is
``N(0, 1 / (ess * delta))``, so a Normal(0, s) prior is ``delta = 1 / (ess * s^2)``.

It is an optax transformation whose state holds ``g_bar``, ``h`` and the step count, plus the
one thing optax has no slot for: drawing the weights at which the gradient is taken::

    opt = ivon(0.1, ess=len(X))
    state = opt.init(params)
    weights, noise = opt.sample_params(key, params, state)   # leading axis: mc_samples
    grads = jax.vmap(jax.grad(loss), in_axes=(0, None))(weights, batch)
    updates, state = opt.update(grads, state, params, noise=noise)
    params = optax.apply_updates(params, updates)

:func:`~posterax.inference.training.train` does exactly this for any optimiser with a
``sample_params`` method, so IVON trains through the one driver (minibatches, early stopping,
ensembles, checkpoints) like MAP and VI.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from posterax.base import Posterior
from posterax.inference.network_model import (
    NetworkModel,
    TrainingSettings,
    constrained_extras,
    train_model,
)
from posterax.inference.vi import MeanFieldGaussian
from posterax.types import ArrayTree, PRNGKey


class IVONState(NamedTuple):
    """``count``: steps taken; ``momentum``: the gradient average g_bar; ``hess``: h."""

    count: jax.Array
    momentum: ArrayTree
    hess: ArrayTree


def _broadcast(prefix: Any, tree: ArrayTree) -> ArrayTree:
    """``prefix`` (a float, or a pytree that is a prefix of ``tree``) as one value per leaf."""
    return jax.tree_util.tree_map(
        lambda value, sub: jax.tree_util.tree_map(lambda _: value, sub), prefix, tree
    )


def _hashable(value: Any) -> Any:
    leaves, treedef = jax.tree_util.tree_flatten(value)
    try:
        return treedef, tuple(float(leaf) for leaf in leaves)
    except TypeError:  # array leaves: compare by identity
        return treedef, tuple(id(leaf) for leaf in leaves)


@dataclasses.dataclass(frozen=True, eq=False)
class IVONHyperparams:
    """IVON's settings (see :func:`ivon`); equal and hashed by value, so compiled training
    programs are reused across fits with the same settings."""

    learning_rate: float | Callable[[jax.Array], jax.Array]
    ess: float
    hess_init: float
    beta1: float
    beta2: float
    weight_decay: Any
    mc_samples: int
    clip_radius: float
    rescale_lr: bool

    def _key(self) -> tuple[Any, ...]:
        lr = self.learning_rate
        return (
            lr if isinstance(lr, float) else id(lr),
            self.ess,
            self.hess_init,
            self.beta1,
            self.beta2,
            _hashable(self.weight_decay),
            self.mc_samples,
            self.clip_radius,
            self.rescale_lr,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IVONHyperparams) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


def _init(hp: IVONHyperparams, params: ArrayTree) -> IVONState:
    return IVONState(
        count=jnp.zeros((), jnp.int32),
        momentum=jax.tree_util.tree_map(jnp.zeros_like, params),
        hess=jax.tree_util.tree_map(lambda p: jnp.full_like(p, hp.hess_init), params),
    )


def _update(
    hp: IVONHyperparams,
    updates: ArrayTree,
    state: IVONState,
    params: ArrayTree | None = None,
    *,
    noise: ArrayTree | None = None,
    **extra_args: Any,
) -> tuple[ArrayTree, IVONState]:
    del extra_args
    if params is None or noise is None:
        missing = "params (the mean m)" if params is None else "noise (from sample_params)"
        raise ValueError(
            f"IVON's update needs {missing}: call update(grads, state, params, noise=noise) with "
            "the gradients taken at the weights sample_params(key, params, state) drew."
        )
    hess_leaves = jax.tree_util.tree_leaves(state.hess)
    grad_leaves = jax.tree_util.tree_leaves(updates)
    sampled = bool(grad_leaves) and grad_leaves[0].ndim == hess_leaves[0].ndim + 1

    def average(x):  # over the Monte Carlo axis that sample_params put first
        return jnp.mean(x, axis=0) if sampled else x

    grad = jax.tree_util.tree_map(average, updates)
    noise_times_grad = jax.tree_util.tree_map(lambda g, e: average(g * e), updates, noise)
    count = state.count + 1
    lr = hp.learning_rate(state.count) if callable(hp.learning_rate) else hp.learning_rate
    decay = _broadcast(hp.weight_decay, state.hess)
    b1, b2 = hp.beta1, hp.beta2

    def leaf(m, g, nxg, g_bar, h, d):
        debias = 1.0 - b1 ** count.astype(jnp.result_type(m, jnp.float32))
        h_hat = nxg * jnp.sqrt(hp.ess * (h + d))  # g * eps / sigma at the sampling sigma
        g_bar = b1 * g_bar + (1.0 - b1) * g
        h = b2 * h + (1.0 - b2) * h_hat + 0.5 * (1.0 - b2) ** 2 * (h - h_hat) ** 2 / (h + d)
        step = jnp.clip((g_bar / debias + d * m) / (h + d), -hp.clip_radius, hp.clip_radius)
        rate = lr * (hp.hess_init + d) if hp.rescale_lr else lr
        return (-rate * step).astype(m.dtype), g_bar, h

    out = jax.tree_util.tree_map(
        leaf, params, grad, noise_times_grad, state.momentum, state.hess, decay
    )
    treedef = jax.tree_util.tree_structure(params)
    step, momentum, hess = (
        jax.tree_util.tree_unflatten(treedef, list(parts))
        for parts in zip(*treedef.flatten_up_to(out), strict=True)
    )
    return step, IVONState(count, momentum, hess)


class IVON(optax.GradientTransformationExtraArgs):
    """An optax transformation (``init`` / ``update``; ``update`` takes ``noise=``) with
    :meth:`sample_params` and :meth:`posterior_scale`. Build it with :func:`ivon`."""

    hyperparams: IVONHyperparams

    def __new__(cls, hyperparams: IVONHyperparams) -> IVON:
        self = super().__new__(
            cls, functools.partial(_init, hyperparams), functools.partial(_update, hyperparams)
        )
        self.hyperparams = hyperparams
        return self

    def __getnewargs__(self) -> tuple[IVONHyperparams]:  # copy / pickle
        return (self.hyperparams,)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IVON) and self.hyperparams == other.hyperparams

    def __hash__(self) -> int:
        return hash((IVON, self.hyperparams))

    def __repr__(self) -> str:
        hp = self.hyperparams
        return f"IVON(learning_rate={hp.learning_rate!r}, ess={hp.ess!r}, hess_init={hp.hess_init})"

    def posterior_scale(self, state: IVONState) -> ArrayTree:
        """``sigma = 1 / sqrt(ess * (h + weight_decay))``, a pytree like the params."""
        hp = self.hyperparams
        decay = _broadcast(hp.weight_decay, state.hess)
        return jax.tree_util.tree_map(
            lambda h, d: jax.lax.rsqrt(hp.ess * (h + d)), state.hess, decay
        )

    def sample_params(
        self, rng_key: PRNGKey, params: ArrayTree, state: IVONState
    ) -> tuple[ArrayTree, ArrayTree]:
        """``(weights, noise)``: ``mc_samples`` draws ``params + sigma * noise`` from q and the
        standard-normal ``noise``, both pytrees like ``params`` with a leading axis of length
        ``mc_samples``. Take the gradients at ``weights`` (vmapped) and pass them with
        ``noise=noise`` to ``update``."""
        n = self.hyperparams.mc_samples
        leaves, treedef = jax.tree_util.tree_flatten(params)
        keys = jax.random.split(rng_key, max(len(leaves), 1))
        noise = jax.tree_util.tree_unflatten(
            treedef,
            [
                jax.random.normal(k, (n, *jnp.shape(p)), jnp.result_type(p))
                for k, p in zip(keys, leaves, strict=False)
            ],
        )
        scale = self.posterior_scale(state)
        weights = jax.tree_util.tree_map(lambda m, s, e: m + s * e, params, scale, noise)
        return weights, noise


def _real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_hyperparams(
    *,
    learning_rate: Any,
    ess: Any,
    hess_init: Any,
    beta1: Any,
    beta2: Any,
    weight_decay: Any = 0.0,
    mc_samples: Any = 1,
    clip_radius: Any = math.inf,
    where: str = "ivon",
) -> None:
    """Raise a ``ValueError`` naming the parameter, the rule, the value and the fix."""

    def fail(name: str, rule: str, value: Any, fix: str) -> None:
        raise ValueError(f"The '{name}' parameter of {where} must be {rule}. Got {value!r}. {fix}")

    if not callable(learning_rate) and not (
        _real(learning_rate) and math.isfinite(learning_rate) and learning_rate > 0
    ):
        fail(
            "learning_rate",
            "a float > 0 or an optax schedule",
            learning_rate,
            "Pass e.g. learning_rate=0.1 (IVON's steps are Newton-like: 0.05 to 0.5).",
        )
    if not (_real(ess) and math.isfinite(ess) and ess > 0):
        fail(
            "ess",
            "a float > 0 (the effective sample size, usually the number of training examples)",
            ess,
            "Pass e.g. ess=len(X_train).",
        )
    if not (_real(hess_init) and math.isfinite(hess_init) and hess_init > 0):
        fail("hess_init", "a float > 0", hess_init, "Pass e.g. hess_init=0.1.")
    if not (_real(beta1) and 0 <= beta1 < 1):
        fail("beta1", "a float in [0, 1)", beta1, "Pass e.g. beta1=0.9.")
    if not (_real(beta2) and 0 < beta2 < 1):
        fail(
            "beta2",
            "a float in (0, 1) (the Hessian's averaging weight)",
            beta2,
            "Pass e.g. beta2=0.99999 (0.999 for runs of a few thousand steps).",
        )
    for d in jax.tree_util.tree_leaves(weight_decay):
        if not (_real(d) and math.isfinite(d) and d >= 0) and not (
            hasattr(d, "shape") and bool(jnp.all(jnp.asarray(d) >= 0))
        ):
            fail(
                "weight_decay",
                "a float >= 0 (or a pytree of them)",
                d,
                "Pass e.g. weight_decay=1e-4.",
            )
    if (
        isinstance(mc_samples, bool)
        or not isinstance(mc_samples, numbers.Integral)
        or (mc_samples < 1)
    ):
        fail("mc_samples", "an int >= 1", mc_samples, "Pass e.g. mc_samples=1.")
    if not (_real(clip_radius) and clip_radius > 0):
        fail(
            "clip_radius",
            "a float > 0 (math.inf: no clipping)",
            clip_radius,
            "Pass e.g. clip_radius=1e-3, or math.inf.",
        )


def ivon(
    learning_rate: float | Callable[[jax.Array], jax.Array],
    ess: float,
    hess_init: float = 1.0,
    beta1: float = 0.9,
    beta2: float = 0.99999,
    weight_decay: Any = 1e-4,
    mc_samples: int = 1,
    clip_radius: float = math.inf,
    rescale_lr: bool = True,
) -> IVON:
    """The IVON optimiser as an optax transformation (defaults as the authors' ``ivon-opt``).

    Parameters
    ----------
    learning_rate : float or optax schedule
        alpha; with ``rescale_lr`` the step is ``alpha * (hess_init + weight_decay)`` times the
        Newton-like direction, so ``alpha`` near 0.1 suits most problems.
    ess : float
        Effective sample size lambda (usually the training-set size): q's precision is
        ``ess * (h + weight_decay)``.
    hess_init : float
        h at the start: q starts with sd ``1 / sqrt(ess * (hess_init + weight_decay))``.
    beta1, beta2 : float
        Averaging weights of the gradient and of the Hessian estimate.
    weight_decay : float or pytree
        delta, per leaf if a pytree (a prefix of the params' structure, e.g.
        ``{"net": 1e-3, "log_sigma": 0.0}``); the prior is ``N(0, 1 / (ess * delta))``.
    mc_samples : int
        Weight draws per step (gradients and Hessian estimates averaged over them).
    clip_radius : float
        Each coordinate of the step direction is clipped to ``[-clip_radius, clip_radius]``.
    rescale_lr : bool
        Multiply ``learning_rate`` by ``hess_init + weight_decay`` (as ``ivon-opt``).

    Returns
    -------
    IVON
        ``init(params) -> IVONState``; ``update(grads, state, params, noise=noise)`` with
        ``grads`` at the weights ``sample_params(key, params, state)`` drew;
        ``posterior_scale(state)``.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, optax
    >>> opt = ivon(0.1, ess=100.0, hess_init=1.0, beta2=0.99)
    >>> params = {"w": jnp.zeros(3)}
    >>> state = opt.init(params)
    >>> loss = lambda p: 0.5 * jnp.sum((p["w"] - 1.0) ** 2)   # curvature 1
    >>> for i in range(500):
    ...     weights, noise = opt.sample_params(jax.random.key(i), params, state)
    ...     grads = jax.vmap(jax.grad(loss))(weights)
    ...     updates, state = opt.update(grads, state, params, noise=noise)
    ...     params = optax.apply_updates(params, updates)
    >>> [round(float(v), 1) for v in params["w"]]
    [1.0, 1.0, 1.0]
    """
    check_hyperparams(
        learning_rate=learning_rate,
        ess=ess,
        hess_init=hess_init,
        beta1=beta1,
        beta2=beta2,
        weight_decay=weight_decay,
        mc_samples=mc_samples,
        clip_radius=clip_radius,
    )
    lr = learning_rate if callable(learning_rate) else float(learning_rate)
    decay = jax.tree_util.tree_map(lambda d: float(d) if _real(d) else d, weight_decay)
    return IVON(
        IVONHyperparams(
            lr,
            float(ess),
            float(hess_init),
            float(beta1),
            float(beta2),
            decay,
            int(mc_samples),
            float(clip_radius),
            bool(rescale_lr),
        )
    )


@dataclasses.dataclass(frozen=True)
class AverageNLL:
    """The per-example negative log-likelihood of a minibatch: IVON's loss (its prior enters
    through the weight decay). Hashable, so compiled training is reused."""

    model: NetworkModel

    def __call__(self, params: ArrayTree, rng_key: PRNGKey, X: jax.Array, y: jax.Array):
        return -jnp.mean(self.model.log_likelihood(params, X, y))


# Defaults of px.methods.IVON: see its docstring for why.
LEARNING_RATE = 0.1
HESS_INIT = 1.0
BETA2 = 0.999
CLIP_RADIUS = 0.1
OPTIONS = ("learning_rate", "ess", "hess_init", "beta1", "beta2", "mc_samples", "clip_radius")


def option_readers() -> dict[str, Callable[[Any, str], Any]]:
    """For a fit adapter: each of :func:`fit_ivon`'s options read by name from a settings
    object (``where`` too, so errors name the caller)."""
    readers: dict[str, Callable[[Any, str], Any]] = {
        name: (lambda est, where, name=name: getattr(est, name)) for name in OPTIONS
    }
    readers["where"] = lambda est, where: where
    return readers


def fit_ivon(
    rng_key: PRNGKey,
    model: NetworkModel,
    init_fn: Callable[[PRNGKey], ArrayTree],
    X: jax.Array,
    y: jax.Array,
    settings: TrainingSettings,
    *,
    learning_rate: float = LEARNING_RATE,
    ess: float | None = None,
    hess_init: float = HESS_INIT,
    beta1: float = 0.9,
    beta2: float = BETA2,
    mc_samples: int = 1,
    clip_radius: float | None = CLIP_RADIUS,
    where: str = "fit_ivon",
) -> Posterior:
    """Fit a mean-field Gaussian over the network weights with IVON.

    The weights' Normal(0, s) prior (on the standardised scale, as for VI) is IVON's weight
    decay ``delta = 1 / (ess * s^2)`` per weight, so the prior precision is ``1 / s^2`` whatever
    ``ess``. The Gaussian noise of regression (``log_sigma``) is one more IVON parameter under a
    flat prior (``delta = 0``); its variational mean gives the point estimate ``sigma =
    exp(m)`` the predictive uses (its posterior sd, about ``1 / sqrt(2 N)``, is dropped).

    Parameters
    ----------
    rng_key, model, init_fn, X, y, settings
        As in :func:`~posterax.inference.fit_map`; ``settings.optimizer`` is replaced by IVON
        (minibatches, epochs and early stopping on the NLL at the mean are as for MAP).
    learning_rate, hess_init, beta1, beta2, mc_samples
        See :func:`ivon`.
    ess : float, optional
        Effective sample size; ``None``: the number of training rows.
    clip_radius : float, optional
        ``None``: no clipping (0.1 by default: see ``px.methods.IVON``).
    where : str
        Named in errors.

    Returns
    -------
    Posterior
        ``distribution`` is a :class:`~posterax.inference.vi.MeanFieldGaussian` with sd
        ``1 / sqrt(ess * (h + delta))``; ``info`` holds the training record (its
        ``loss_history`` is the NLL per example at sampled weights) and ``ess``.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, optax
    >>> from posterax.models import MLP, RegressionHead, GaussianLikelihood
    >>> X = jnp.linspace(-2, 2, 100)[:, None]; y = 0.5 * X[:, 0]
    >>> net = MLP((), "tanh", 1)
    >>> model = NetworkModel(RegressionHead(net), GaussianLikelihood())
    >>> settings = TrainingSettings(optax.adam(1e-3), num_epochs=300, progress_bar=False)
    >>> post = fit_ivon(jax.random.key(0), model, lambda k: net.init(k, 1), X, y, settings)
    >>> round(float(post.mean()["net"][0]["w"][0, 0]), 1)
    0.5
    """
    clip = math.inf if clip_radius is None else clip_radius
    check_hyperparams(
        learning_rate=learning_rate,
        ess=1.0 if ess is None else ess,
        hess_init=hess_init,
        beta1=beta1,
        beta2=beta2,
        mc_samples=mc_samples,
        clip_radius=clip,
        where=where,
    )
    if model.prior.family != "normal":
        raise ValueError(
            f"The 'prior' parameter of {where} must be 'normal' for IVON (its weight decay is a "
            f"Gaussian prior's precision). Got {model.prior.family!r}. Use prior='normal', or "
            "method='vi' for a Laplace prior."
        )
    n_data = X.shape[0]
    fraction = settings.validation_fraction
    if getattr(settings, "validation_data", None) is not None or fraction is None:
        n_train = n_data
    else:  # the rows train_model keeps (as split_validation)
        n_train = n_data - max(1, round(fraction * n_data))
    ess = float(n_train if ess is None else ess)
    shapes = jax.eval_shape(lambda: model.init_params(init_fn(jax.random.key(0))))
    decay: dict[str, Any] = {k: 0.0 for k in shapes if k != "net"}
    decay["net"] = jax.tree_util.tree_map(
        lambda s: 1.0 / (ess * float(s) ** 2), model.prior.scale_tree(shapes["net"])
    )
    optimizer = ivon(
        learning_rate,
        ess,
        hess_init=hess_init,
        beta1=beta1,
        beta2=beta2,
        weight_decay=decay,
        mc_samples=mc_samples,
        clip_radius=clip,
    )
    settings = dataclasses.replace(settings, optimizer=optimizer)
    result = train_model(
        rng_key,
        X,
        y,
        settings,
        lambda n: AverageNLL(model),
        lambda k: model.init_params(init_fn(k)),
        "IVON",
    )
    mean, state = result.params, result.opt_state
    scale = optimizer.posterior_scale(state)
    extras = constrained_extras({k: v for k, v in mean.items() if k != "net"})
    dist = MeanFieldGaussian(mean["net"], scale["net"], extras)
    info = {**result.info, "ess": ess, "steps": int(state.count)}
    return Posterior(model.apply_fn, model.likelihood, distribution=dist, info=info)


__all__ = [
    "IVON",
    "AverageNLL",
    "IVONHyperparams",
    "IVONState",
    "check_hyperparams",
    "fit_ivon",
    "ivon",
    "option_readers",
]
