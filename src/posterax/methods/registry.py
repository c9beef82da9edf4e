"""Strings name a method's defaults through one registry; method objects pass through."""

from __future__ import annotations

import inspect
from typing import Any

from posterax.methods.base import Method, Training
from posterax.methods.samplers import MALA, NUTS, SGHMC, SGLD, CyclicalSGMCMC
from posterax.methods.trained import MAP, SWAG, VI, Ensemble, Laplace, MCDropout

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
    )
}
# Strings that mean a class with one setting fixed.
ALIASES: dict[str, tuple[type[Method], dict[str, Any]]] = {
    "vi_lowrank": (VI, {"family": "lowrank"}),
}
# Constructor parameters whose estimator parameter has another name.
_ESTIMATOR_NAMES = {
    "num_members": "n_members",
    "structure": "hessian_structure",
    "subset": "subset_of_weights",
}
VI_FAMILIES = ("meanfield", "lowrank")


def method_names() -> list[str]:
    """Every string ``method=`` takes, each alias right after its class's name."""
    names = []
    for name, cls in NETWORK_METHODS.items():
        names.append(name)
        names.extend(alias for alias, (target, _) in ALIASES.items() if target is cls)
    return names


def _from_estimator(cls: type[Method], fixed: dict[str, Any], estimator: Any) -> Method:
    """The method object a string means, with the estimator's own per-method parameters (the
    spelling before method objects; kept while callers move over)."""
    kwargs: dict[str, Any] = {}
    for name in inspect.signature(cls.__init__).parameters:
        if name == "self":
            continue
        if name == "training":
            kwargs[name] = Training(
                **{
                    p: getattr(estimator, p)
                    for p in inspect.signature(Training.__init__).parameters
                    if p != "self" and hasattr(estimator, p)
                }
            )
            continue
        source = _ESTIMATOR_NAMES.get(name, name)
        if hasattr(estimator, source):
            kwargs[name] = getattr(estimator, source)
    return cls(**{**kwargs, **fixed})


def resolve_method(method: Any, estimator: Any, where: str) -> Method:
    """A method object for ``method`` (a string, or a ``px.methods`` object as it is)."""
    if isinstance(method, Method):
        if type(method) not in NETWORK_METHODS.values():
            raise ValueError(
                f"The 'method' parameter of {where} must be a network method. Got "
                f"{type(method).__name__}, which {type(estimator).__name__} does not run."
            )
        if isinstance(method, VI) and method.family not in VI_FAMILIES:
            raise ValueError(
                f"The 'family' parameter of px.methods.VI must be one of "
                f"{', '.join(map(repr, VI_FAMILIES))}. Got {method.family!r}."
            )
        return method
    if isinstance(method, str) and method in NETWORK_METHODS:
        return _from_estimator(NETWORK_METHODS[method], {}, estimator)
    if isinstance(method, str) and method in ALIASES:
        cls, fixed = ALIASES[method]
        return _from_estimator(cls, fixed, estimator)
    allowed = ", ".join(repr(m) for m in method_names())
    raise ValueError(
        f"The 'method' parameter of {where} must be one of {allowed}, or a method object such "
        f"as px.methods.NUTS(num_chains=4). Got {method!r}."
    )


def estimator_parameter_names() -> tuple[str, ...]:
    """The estimator parameters that method objects replace (their names on the estimator)."""
    names: list[str] = []
    for cls in (*NETWORK_METHODS.values(), Training):
        for name in inspect.signature(cls.__init__).parameters:
            legacy = _ESTIMATOR_NAMES.get(name, name)
            if name not in ("self", "training", "family") and legacy not in names:
                names.append(legacy)
    return tuple(names)


def in_method_terms(message: str, method: Method, where: str) -> str:
    """An error about the settings of ``method`` (an object), raised by a fit function in the
    estimator's terms (``'n_members' parameter of BayesianRegressor.fit``), restated in the
    method's terms (``'num_members' parameter of px.methods.Ensemble``)."""
    owners: dict[str, str] = {name: type(method).__name__ for name in method.get_params(False)}
    owners.update({name: "Training" for name in Training().get_params(False)})
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
    return method.name


__all__ = [
    "NETWORK_METHODS",
    "estimator_parameter_names",
    "in_method_terms",
    "method_key",
    "method_names",
    "resolve_method",
]
