"""What :mod:`posterax.estimators.persistence` stores for ``BayesianRegressor`` and
``BayesianClassifier``.

The posterior state is a small dict of pytrees: the draws, or the parameters of a variational
or MC-dropout distribution. It is flattened with its key paths into ``arrays.npz`` entries such
as ``posterior/draws/net/0/w`` and rebuilt by filling a template of the same structure
(``MLP.template(n_features)`` for the network weights), so a missing entry is caught by name.
``apply_fn`` and the likelihood are not stored: they are rebuilt from the fitted network's
description (hidden, activation, outputs, task, likelihood) in ``model.json``.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from posterax.base import Posterior
from posterax.estimators.network_fitters import network_model
from posterax.inference.laplace import LaplaceGaussian, LinearizedApply
from posterax.inference.laplace.posterior import DiagFactor, FullFactor, KronFactor, LowRankFactor
from posterax.inference.last_layer_nuts import LastLayerApply, selected
from posterax.inference.mc_dropout import DropoutDistribution
from posterax.inference.mc_dropout_network import (
    DropoutOn,
    NetworkDropoutDistribution,
    dropout_head,
)
from posterax.inference.swag import SWAGDistribution
from posterax.inference.vi import LowRankGaussian, MeanFieldGaussian, Unraveler
from posterax.methods import (
    NETWORK_METHODS,
    Method,
    Training,
    method_from_settings,
    method_names,
)
from posterax.models import MLP, HeteroscedasticGaussianLikelihood, WeightPrior
from posterax.models.likelihoods import NOISE_FACTOR
from posterax.networks import as_network
from posterax.networks.mlp import MLP as PublicMLP

NETWORK_ESTIMATORS = ("BayesianRegressor", "BayesianClassifier")
_SPECIAL_ATTRS = ("posterior_", "classes_", "feature_names_in_", "input_shape_")


def _key(path: tuple[Any, ...]) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


def _flatten(prefix: str, tree: Any) -> dict[str, np.ndarray]:
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {f"{prefix}/{_key(path)}": np.asarray(leaf) for path, leaf in leaves}


def _fill(prefix: str, template: Any, arrays: dict[str, np.ndarray]) -> Any:
    """``template`` with every leaf replaced by the stored array at its key path."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: jnp.asarray(arrays[f"{prefix}/{_key(path)}"]), template
    )


def _plain(name: str, value: Any) -> Any:
    """A JSON-ready parameter value (tuples become lists; restored as tuples)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, tuple | list):
        return [_plain(name, v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(
        f"save: the {name!r} parameter ({type(value).__name__}) cannot be saved without pickle. "
        "Set it to a plain value (e.g. an int random_state) before fitting and saving."
    )


def plain_param(name: str, value: Any) -> Any:
    """A JSON-ready value of the constructor parameter ``name``.

    ``checkpoint_dir`` is stored as a str; ``devices`` keeps ``None`` or an int, and a sequence
    of ``jax.Device`` objects (which belong to one machine and one process) is stored as
    ``None``: every local device, which gives the same predictions up to float rounding.

    Examples
    --------
    >>> import pathlib, jax
    >>> plain_param("checkpoint_dir", pathlib.Path("runs"))
    'runs'
    >>> plain_param("devices", jax.devices()) is None, plain_param("devices", 2)
    (True, 2)
    >>> plain_param("hidden", (16, 16))
    [16, 16]
    """
    if name == "checkpoint_dir" and isinstance(value, os.PathLike):
        return os.fspath(value)
    if name == "devices" and isinstance(value, tuple | list) and value:
        if all(isinstance(d, jax.Device) for d in value):
            return None
    return _plain(name, value)


_OPTIMIZER_WARNING = (
    "save: a custom optax optimizer cannot be saved; it is stored as optimizer=None. The loaded "
    "model predicts identically, but refitting it uses Adam(learning_rate)."
)


def method_to_dict(method: Method) -> dict[str, Any]:
    """A method object as JSON: its class name and its parameters (nested ``Training`` too)."""
    params = {}
    for name, value in method.get_params(deep=False).items():
        if isinstance(value, Training):
            value = {"__training__": _training_dict(value)}
        params[name] = value if isinstance(value, dict) else _plain(name, value)
    return {"__method__": type(method).__name__, "params": params}


def _training_dict(training: Training) -> dict[str, Any]:
    params = training.get_params(deep=False)
    if params["optimizer"] is not None:
        warnings.warn(_OPTIMIZER_WARNING, UserWarning, stacklevel=5)
        params["optimizer"] = None
    return {name: _plain(name, value) for name, value in params.items()}


def method_from_dict(data: dict[str, Any]) -> Method:
    """The method object :func:`_method_dict` stored."""
    cls = {cls.__name__: cls for cls in NETWORK_METHODS.values()}[data["__method__"]]
    params = {
        name: Training(**value["__training__"])
        if isinstance(value, dict)
        else tuple(value)
        if isinstance(value, list)
        else value
        for name, value in data["params"].items()
    }
    return cls(**params)


def _params(estimator: Any, own_network: bool = False) -> dict[str, Any]:
    params = estimator.get_params(deep=False)
    if own_network:  # saved as weights; px.load(path, network=like) brings the structure
        params["network"] = None
    if isinstance(params.get("method"), Method):
        params["method"] = method_to_dict(params["method"])
    network = params.get("network")
    if isinstance(network, PublicMLP):  # hidden sizes alone are stored as they are
        params["network"] = {
            "__mlp__": {"hidden": list(network.hidden), "activation": network.activation}
        }
    return {
        name: value if isinstance(value, dict) else plain_param(name, value)
        for name, value in params.items()
    }


def _restored_params(cls: type, stored: dict[str, Any]) -> dict[str, Any]:
    """The constructor parameters of ``cls`` from what was saved."""
    params = {
        k: tuple(v)
        if isinstance(v, list)
        else method_from_dict(v)
        if isinstance(v, dict) and "__method__" in v
        else PublicMLP(tuple(v["__mlp__"]["hidden"]), v["__mlp__"]["activation"])
        if isinstance(v, dict) and "__mlp__" in v
        else v
        for k, v in stored.items()
    }
    return from_estimator_settings(cls, params)


def from_estimator_settings(cls: type, params: dict[str, Any]) -> dict[str, Any]:
    """Files saved before method objects hold a method's settings as estimator parameters
    (``num_warmup``, ``n_members``, ...) and the built-in MLP as ``hidden`` / ``activation``:
    they become a method object (for a method string; beside a method object they were
    ignored, and still are) and ``network=px.networks.MLP(...)``."""
    own = set(inspect.signature(cls.__init__).parameters)
    params = dict(params)
    legacy = {k: params.pop(k) for k in list(params) if k not in own}
    if "network" in own and ("hidden" in legacy or "activation" in legacy):
        hidden = legacy.pop("hidden", cls._default_hidden)
        params["network"] = PublicMLP(tuple(hidden), legacy.pop("activation", "auto"))
    method = params.get("method", "nuts")
    if legacy and isinstance(method, str) and method in method_names():
        translated = method_from_settings(method, legacy, ignore_unknown=True)
        if repr(translated) != repr(method_from_settings(method, {})):  # not just defaults
            params["method"] = translated
    return params


def _split_info(info: dict[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Scalars (and None) for the JSON; arrays and dicts of arrays for the npz."""
    scalars: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    for name, value in info.items():
        if isinstance(value, dict):
            arrays.update({f"info/{name}/{k}": np.asarray(v) for k, v in value.items()})
        elif value is None or isinstance(value, bool | int | float | str | np.generic):
            scalars[name] = value.item() if isinstance(value, np.generic) else value
        else:
            arrays[f"info/{name}"] = np.asarray(value)
    return scalars, arrays


def _join_info(scalars: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    info = dict(scalars)
    for key, value in arrays.items():
        if key.startswith("info/"):
            *parents, name = key.split("/")[1:]
            node = info
            for parent in parents:
                node = node.setdefault(parent, {})
            node[name] = value
    return info


def _posterior_state(post: Posterior) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``(kind, pytrees to store, JSON extras)`` of a network posterior."""
    dist = post.distribution
    if dist is None:
        chains = list(post.chain_shape) if post.chain_shape else None
        if isinstance(post.apply_fn, LastLayerApply):  # the MAP beside the last layer's draws
            mask = [bool(m) for m in jax.tree_util.tree_leaves(post.apply_fn.mask)]
            state = {"draws": post.draws, "map": post.apply_fn.frozen}
            return "last_layer", state, {"chain_shape": chains, "last_layer_mask": mask}
        return "draws", {"draws": post.draws}, {"chain_shape": chains}
    if isinstance(dist, MeanFieldGaussian):
        return "meanfield", {"loc": dist.loc, "scale": dist.scale, "extras": dist.extras}, {}
    if isinstance(dist, LowRankGaussian):
        state = {"loc": dist.loc, "diag": dist.diag, "factor": dist.factor, "extras": dist.extras}
        return "lowrank", state, {}
    if isinstance(dist, SWAGDistribution):
        state = {
            "loc": dist.loc,
            "diag_var": dist.diag_var,
            "deviations": dist.deviations,
            "extras": dist.extras,
        }
        return "swag", state, {}
    if isinstance(dist, LaplaceGaussian):
        state = {"laplace": dataclasses.replace(dist, unravel=None)}
        factor = dist.factor
        extra = {
            "structure": dist.structure,
            "kron_layers": len(factor.vec_a) if isinstance(factor, KronFactor) else 0,
            "kron_size": factor.size if isinstance(factor, KronFactor) else 0,
            "linearized": isinstance(post.apply_fn, LinearizedApply),
        }
        return "laplace", state, extra
    if isinstance(dist, NetworkDropoutDistribution):
        return "network_dropout", {"net": dist.net, "extras": dist.extras}, {}
    if isinstance(dist, DropoutDistribution):
        return "dropout", {"net": dist.net, "extras": dist.extras}, {"rate": float(dist.rate)}
    raise TypeError(f"save: cannot store a posterior distribution of type {type(dist).__name__}.")


def _laplace_template(spec: dict[str, Any], net: Any, extras: dict[str, Any]) -> LaplaceGaussian:
    """A LaplaceGaussian of the stored structure with placeholder leaves (filled on load)."""
    layers = spec.get("kron_layers", 0)
    factors = {
        "diag": lambda: DiagFactor(0),
        "full": lambda: FullFactor(0),
        "lowrank": lambda: LowRankFactor(0, 0, 0),
        "kron": lambda: KronFactor(
            (0,) * layers, (0,) * layers, (0,) * layers, (0,) * layers, 0, 0, spec["kron_size"]
        ),
    }
    structure = spec["structure"]
    return LaplaceGaussian(0, 0, factors[structure](), extras, Unraveler.of(net), structure)


def _state_template(
    kind: str, net: Any, extras: dict[str, Any], spec: dict[str, Any]
) -> dict[str, Any]:
    if kind == "last_layer":  # draws of the last layer (+ sigma); the MAP (+ BatchNorm state)
        mask = jax.tree_util.tree_unflatten(
            jax.tree_util.tree_structure(net), spec["last_layer_mask"]
        )
        noise = {k: v for k, v in extras.items() if k != "state"}
        state = {k: v for k, v in extras.items() if k == "state"}
        return {
            "draws": {"net": selected(mask, net), **noise},
            "map": {"net": net, **state},
            "mask": mask,
        }
    if kind == "laplace":
        return {"laplace": dataclasses.replace(_laplace_template(spec, net, extras), unravel=None)}
    return {
        "draws": {"draws": {"net": net, **extras}},
        "meanfield": {"loc": net, "scale": net, "extras": extras},
        "lowrank": {"loc": 0, "diag": 0, "factor": 0, "extras": extras},
        "dropout": {"net": net, "extras": extras},
        "network_dropout": {"net": net, "extras": extras},
        "swag": {"loc": 0, "diag_var": 0, "deviations": 0, "extras": extras},
    }[kind]


def _is_fitted_attribute(name: str) -> bool:
    return name.endswith("_") and not name.startswith("_") and name not in _SPECIAL_ATTRS


def _fitted_attributes(estimator: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Every learned ``*_`` attribute (and the diagnostic inputs): scalars for the JSON, arrays
    for the npz. ``posterior_``, ``classes_`` and ``feature_names_in_`` are stored apart."""
    scalars: dict[str, Any] = {}
    arrays = {"fitted/_diagnostic_inputs": np.asarray(estimator._diagnostic_inputs)}
    for name, value in vars(estimator).items():
        if not _is_fitted_attribute(name):
            continue
        if isinstance(value, np.generic):
            value = value.item()
        if value is None or isinstance(value, bool | int | float | str):
            scalars[name] = value
        elif isinstance(value, np.ndarray | jax.Array) and value.dtype != object:
            arrays[f"fitted/{name}"] = np.asarray(value)
        else:
            raise TypeError(f"save: cannot store the fitted attribute {name} ({type(value)}).")
    return scalars, arrays


def network_state(
    estimator: Any,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, np.ndarray]]:
    """``(params, fitted, posterior, arrays)`` of a fitted network estimator for the files."""
    post = estimator.posterior_
    network = post.apply_fn.network  # the fitted network, whatever set_params did since
    if isinstance(network, DropoutOn):  # MC dropout through the user's dropout layers
        network = network.network
    kind, state, extra = _posterior_state(post)
    heteroscedastic = isinstance(post.likelihood, HeteroscedasticGaussianLikelihood)
    info, info_arrays = _split_info(post.info)
    posterior = {
        "kind": kind,
        "task": estimator._task,
        "likelihood": "heteroscedastic" if heteroscedastic else "homoscedastic",
        **_network_spec(estimator, network),
        "info": info,
        **extra,
    }
    fitted, arrays = _fitted_attributes(estimator)
    if hasattr(estimator, "feature_names_in_"):
        fitted["feature_names_in_"] = [str(n) for n in estimator.feature_names_in_]
    if hasattr(estimator, "classes_"):
        classes = estimator.classes_
        fitted["classes_"] = [c.item() if isinstance(c, np.generic) else c for c in classes]
        fitted["classes_dtype"] = classes.dtype.str if classes.dtype != object else "object"
    arrays.update(_flatten("posterior", state))
    arrays.update(info_arrays)
    params = _params(estimator, own_network=not isinstance(network, MLP))
    return params, fitted, posterior, arrays


def network_structure(params: Any) -> list[list[Any]]:
    """Key path, shape and dtype of every leaf: what a network given to ``px.load`` must match
    (no addresses or reprs, so it compares across processes)."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(params)
    return [
        [jax.tree_util.keystr(path), list(np.shape(leaf)), str(np.asarray(leaf).dtype)]
        for path, leaf in leaves
    ]


def _network_spec(estimator: Any, network: Any) -> dict[str, Any]:
    if isinstance(network, MLP):
        return {
            "hidden": list(network.hidden),
            "activation": network.activation,
            "n_outputs": network.n_outputs,
        }
    return {
        "own_network": {
            "kind": network.kind,
            "class": type(network.source).__qualname__,
            "structure": network_structure(network.initial),
            "constants": network.constants_digest,
            "input_shape": list(estimator.input_shape_),
        }
    }


def _own_network(spec: dict[str, Any], like: Any, where: str = "px.load") -> Any:
    """The adapter of ``like``, checked against the network the model was saved with."""
    stored = spec["own_network"]
    if like is None:
        raise ValueError(
            f"The 'network' parameter of {where} is required for this model: it was fitted on a "
            f"{stored['kind']} network of your own ({stored['class']}), which is saved as its "
            "weights only. Pass a network of the same structure, e.g. "
            f"px.load(path, network={stored['class']}(...)), built as for the fit."
        )
    example = np.zeros((2, *stored["input_shape"]), dtype=np.float32)
    adapter = as_network(like, example, jax.random.key(0), where=where)
    found = network_structure(adapter.initial)
    if adapter.kind != stored["kind"] or found != stored["structure"]:
        differ = [
            f"{a[0]} {a[1]} vs {b[1]}"
            for a, b in zip(stored["structure"], found, strict=False)
            if a != b
        ][:3]
        raise ValueError(
            f"The 'network' parameter of {where} must have the structure of the saved network "
            f"({stored['kind']} {stored['class']}, {len(stored['structure'])} arrays). Got a "
            f"{adapter.kind} {type(like).__qualname__} with {len(found)} arrays"
            + (f"; first differences (saved vs given): {'; '.join(differ)}" if differ else "")
            + ". Build it exactly as for the fit."
        )
    if adapter.constants_digest != stored.get("constants", ""):
        raise ValueError(
            f"The 'network' parameter of {where} must hold the non-trainable variables the saved "
            f"network had (constants such as nnx.Variable values, which are part of the "
            f"function and not saved as weights). Got a {type(like).__qualname__} whose "
            "constants differ. Build it exactly as for the fit, with the same constants."
        )
    return adapter


def restore_network(
    cls: type, meta: dict[str, Any], arrays: dict[str, np.ndarray], network_like: Any = None
) -> Any:
    """A fitted ``cls`` from what :func:`network_state` stored (``network_like``: a network of
    the user's, of the saved structure, when the model was fitted on one)."""
    estimator = cls(**_restored_params(cls, meta["params"]))
    fitted, spec = meta["fitted"], meta["posterior"]
    stored_arrays = {k[len("fitted/") :]: v for k, v in arrays.items() if k.startswith("fitted/")}
    stored = {**fitted, **stored_arrays}
    for name, value in stored.items():
        if _is_fitted_attribute(name):
            setattr(estimator, name, value)
    if "feature_names_in_" in fitted:
        estimator.feature_names_in_ = np.asarray(fitted["feature_names_in_"], dtype=object)
    if "classes_" in fitted:
        estimator.classes_ = np.asarray(fitted["classes_"], dtype=np.dtype(fitted["classes_dtype"]))
    estimator._diagnostic_inputs = jnp.asarray(arrays["fitted/_diagnostic_inputs"])
    estimator._diagnostics = None

    if "own_network" in spec:
        network = _own_network(spec, network_like)
        estimator.network = network_like
        estimator.input_shape_ = tuple(spec["own_network"]["input_shape"])
        net = network.template()
    else:
        if network_like is not None:
            raise ValueError(
                "The 'network' parameter of px.load is only for models fitted on a network of "
                "your own; this model uses the built-in MLP. Got "
                f"{type(network_like).__qualname__}. Call px.load(path) without network=."
            )
        network = MLP(tuple(spec["hidden"]), spec["activation"], int(spec["n_outputs"]))
        net = network.template(estimator.n_features_in_)
    # The weight prior only shapes training, not prediction: a default stands in for it.
    model = network_model(network, spec["task"], spec["likelihood"], WeightPrior())
    noise = spec["task"] == "regression" and spec["likelihood"] == "homoscedastic"
    extras: dict[str, Any] = {"sigma": 0} if noise else {}
    if any(k.startswith("posterior/") and k.endswith(f"/{NOISE_FACTOR}") for k in arrays):
        extras[NOISE_FACTOR] = 0  # a heteroscedastic model's held-out noise calibration
    if getattr(network, "state", None) is not None:  # BatchNorm statistics
        extras["state"] = network.state
    kind = spec["kind"]
    template = _state_template(kind, net, extras, spec)
    mask = template.pop("mask", None)
    state = _fill("posterior", template, arrays)
    info = _join_info(spec["info"], arrays)
    if kind == "last_layer":
        chains = tuple(spec["chain_shape"]) if spec["chain_shape"] else None
        apply_fn = LastLayerApply(model.apply_fn, state["map"], mask)
        estimator.posterior_ = Posterior(
            apply_fn, model.likelihood, draws=state["draws"], info=info, chain_shape=chains
        )
        return estimator
    if kind == "draws":
        chains = tuple(spec["chain_shape"]) if spec["chain_shape"] else None
        estimator.posterior_ = Posterior(
            model.apply_fn, model.likelihood, draws=state["draws"], info=info, chain_shape=chains
        )
        return estimator
    apply_fn = model.apply_fn
    if kind == "laplace":
        dist: Any = dataclasses.replace(state["laplace"], unravel=Unraveler.of(net))
        if spec["linearized"]:
            apply_fn = LinearizedApply(model.apply_fn, dist.unravel(dist.map_flat))
    elif kind == "network_dropout":
        dist = NetworkDropoutDistribution(state["net"], state["extras"])
        apply_fn = dropout_head(model.apply_fn)
    elif kind == "meanfield":
        dist = MeanFieldGaussian(state["loc"], state["scale"], state["extras"])
    elif kind == "lowrank":
        dist = LowRankGaussian(state["loc"], state["diag"], state["factor"], net, state["extras"])
    elif kind == "swag":
        dist = SWAGDistribution(
            state["loc"], state["diag_var"], state["deviations"], net, state["extras"]
        )
    else:
        dist = DropoutDistribution(state["net"], spec["rate"], state["extras"])
    estimator.posterior_ = Posterior(apply_fn, model.likelihood, distribution=dist, info=info)
    return estimator


__all__ = [
    "NETWORK_ESTIMATORS",
    "method_from_dict",
    "method_to_dict",
    "network_state",
    "plain_param",
    "restore_network",
]
