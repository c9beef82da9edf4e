"""Strings name a method's defaults through one registry; method objects pass through."""

from __future__ import annotations

import inspect
from typing import Any

from posterax.methods.base import Method, Training
from posterax.methods.samplers import MALA, NUTS, SGHMC, SGLD, CyclicalSGMCMC
from posterax.methods.trained import IVON, MAP, SWAG, VI, Ensemble, Laplace, MCDropout

NETWORK_METHODS: dict[str, type[Method]] = {
    cls.name: cls
    for cls in (
        NUTS,
        MAP,
        VI,
        MCDropout,
        Ensemble,
        MALA,
        SGLD,
        SGHMC,
        CyclicalSGMCMC,
        SWAG,
        Laplace,
        IVON,
    )
}
# Strings that mean a class with one setting fixed.
ALIASES: dict[str, tuple[type[Method], dict[str, Any]]] = {
    "nuts_last_layer": (NUTS, {"subset": "last_layer"}),
    "vi_lowrank": (VI, {"family": "lowrank"}),
}
# Constructor parameters whose estimator parameter has another name.
_ESTIMATOR_NAMES = {
    "num_members": "n_members",
    "structure": "hessian_structure",
    "subset": "subset_of_weights",
}
VI_FAMILIES = ("meanfield", "lowrank")
NUTS_SUBSETS = ("all", "last_layer")


def method_names() -> list[str]:
    """Every string ``method=`` takes, each alias right after its class's name."""
    names = []
    for name, cls in NETWORK_METHODS.items():
        names.append(name)
        names.extend(alias for alias, (target, _) in ALIASES.items() if target is cls)
    return names


_TRAINING_NAMES = tuple(n for n in inspect.signature(Training.__init__).parameters if n != "self")


def _own_names(cls: type[Method]) -> tuple[str, ...]:
    return tuple(
        n for n in inspect.signature(cls.__init__).parameters if n not in ("self", "training")
    )


def method_from_settings(
    name: str, settings: dict[str, Any], *, ignore_unknown: bool = False, where: str = ""
) -> Method:
    """The method object ``name`` (a string ``method=`` takes) means, with ``settings`` given
    flat: the class's own parameters and :class:`Training`'s (for code that loops over method
    names with shared settings: the command line, benchmarks, parametrised tests). The
    estimator spellings of earlier versions (``n_members``, ``hessian_structure``,
    ``subset_of_weights``) are read too, so saved models from before method objects load.
    With ``ignore_unknown``, settings the class does not have are dropped; otherwise they are
    refused by name."""
    if name in NETWORK_METHODS:
        cls, fixed = NETWORK_METHODS[name], {}
    elif name in ALIASES:
        cls, fixed = ALIASES[name]
    else:
        allowed = ", ".join(repr(m) for m in method_names())
        raise ValueError(
            f"The 'method' parameter of {where or 'method_from_settings'} must be one of "
            f"{allowed}. Got {name!r}."
        )
    legacy = {v: k for k, v in _ESTIMATOR_NAMES.items()}
    own, training, unknown = dict(fixed), {}, []
    for given, value in settings.items():
        key = legacy.get(given, given)
        if key in _own_names(cls) and key not in fixed:
            own[key] = value
    trains = cls.trains(own)  # NUTS: only with subset="last_layer"
    for given, value in settings.items():
        key = legacy.get(given, given)
        if key in _own_names(cls):
            continue
        if key in _TRAINING_NAMES and trains:
            training[key] = value
        elif key not in fixed:
            unknown.append(given)
    if unknown and not ignore_unknown:
        raise ValueError(
            f"px.methods.{cls.__name__} (method={name!r}) has no setting "
            f"{', '.join(map(repr, unknown))}. Its settings: "
            f"{', '.join(_own_names(cls)) or '(none of its own)'}"
            + (f"; training: {', '.join(_TRAINING_NAMES)}" if trains else "")
            + ". Drop it, or pass ignore_unknown=True."
        )
    if training:
        own["training"] = Training(**training)
    return cls(**own)


def resolve_method(method: Any, where: str, owner: str = "the estimator") -> Method:
    """A method object for ``method``: a string means its class's defaults; a ``px.methods``
    object passes through as it is."""
    if isinstance(method, Method):
        if type(method) not in NETWORK_METHODS.values():
            raise ValueError(
                f"The 'method' parameter of {where} must be a network method. Got "
                f"{type(method).__name__}, which {owner} does not run."
            )
        if isinstance(method, VI) and method.family not in VI_FAMILIES:
            raise ValueError(
                f"The 'family' parameter of px.methods.VI must be one of "
                f"{', '.join(map(repr, VI_FAMILIES))}. Got {method.family!r}."
            )
        if isinstance(method, NUTS):
            _check_nuts(method)
        return method
    if isinstance(method, str) and (method in NETWORK_METHODS or method in ALIASES):
        return method_from_settings(method, {}, where=where)
    allowed = ", ".join(repr(m) for m in method_names())
    raise ValueError(
        f"The 'method' parameter of {where} must be one of {allowed}, or a method object such "
        f"as px.methods.NUTS(num_chains=4). Got {method!r}."
    )


def _check_nuts(method: NUTS) -> None:
    if method.subset not in NUTS_SUBSETS:
        raise ValueError(
            f"The 'subset' parameter of px.methods.NUTS must be one of "
            f"{', '.join(map(repr, NUTS_SUBSETS))}. Got {method.subset!r}."
        )
    if method.training is not None and method.subset != "last_layer":
        raise ValueError(
            "The 'training' parameter of px.methods.NUTS applies to subset='last_layer' (it "
            "trains the MAP network whose last layer is sampled). Got training="
            f"{method.training!r} with subset={method.subset!r}. Drop training, or pass "
            "subset='last_layer'."
        )


def in_method_terms(message: str, method: Method, where: str) -> str:
    """An error about the settings of ``method`` (an object), raised by a fit function in the
    estimator's terms (``'n_members' parameter of BayesianRegressor.fit``), restated in the
    method's terms (``'num_members' parameter of px.methods.Ensemble``)."""
    owners: dict[str, str] = {name: type(method).__name__ for name in method.get_params(False)}
    # A method's own setting wins over Training's of the same name (IVON's learning_rate).
    owners.update({n: "Training" for n in Training().get_params(False) if n not in owners})
    for own, owner in owners.items():
        legacy = _ESTIMATOR_NAMES.get(own, own)
        message = message.replace(
            f"The '{legacy}' parameter of {where}", f"The '{own}' parameter of px.methods.{owner}"
        )
        if legacy != own:
            message = message.replace(f"{legacy}=", f"{own}=")
    return message


def method_key(method: Method) -> str:
    """The string naming what ``method`` runs (``"vi_lowrank"`` for a low-rank VI)."""
    if isinstance(method, VI) and method.family == "lowrank":
        return "vi_lowrank"
    if isinstance(method, NUTS) and method.subset == "last_layer":
        return "nuts_last_layer"
    return method.name


__all__ = [
    "NETWORK_METHODS",
    "in_method_terms",
    "method_from_settings",
    "method_key",
    "method_names",
    "resolve_method",
]
