"""Prior specifications.

Small frozen dataclasses that say *what* the prior is; each turns itself into a NumPyro
distribution for sampling and into a plain dict for saving (no pickle). A Gaussian prior on
weights is L2 regularisation and a Laplace prior is L1: MAP is the bridge.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import numpyro.distributions as dist

from posterax.data.validation import check_positive_float


def _check_scale(name: str, value: float, owner: str) -> float:
    return check_positive_float(value, name=name, where=owner)


def _check_loc(value: float, owner: str) -> float:
    if not (isinstance(value, int | float) and math.isfinite(value)):
        raise ValueError(f"The 'loc' parameter of {owner} must be a finite float. Got {value!r}.")
    return float(value)


@dataclasses.dataclass(frozen=True)
class Prior:
    """Base class: a univariate prior applied element-wise to a parameter."""

    kind: ClassVar[str] = "prior"

    def to_numpyro(self) -> dist.Distribution:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **dataclasses.asdict(self)}


@dataclasses.dataclass(frozen=True)
class Normal(Prior):
    """Normal(loc, scale): L2 regularisation when used for MAP."""

    loc: float = 0.0
    scale: float = 1.0
    kind: ClassVar[str] = "normal"

    def __post_init__(self) -> None:
        _check_loc(self.loc, "Normal")
        _check_scale("scale", self.scale, "Normal")

    def to_numpyro(self) -> dist.Distribution:
        return dist.Normal(self.loc, self.scale)


@dataclasses.dataclass(frozen=True)
class Laplace(Prior):
    """Laplace(loc, scale): L1 regularisation (lasso) when used for MAP."""

    loc: float = 0.0
    scale: float = 1.0
    kind: ClassVar[str] = "laplace"

    def __post_init__(self) -> None:
        _check_loc(self.loc, "Laplace")
        _check_scale("scale", self.scale, "Laplace")

    def to_numpyro(self) -> dist.Distribution:
        return dist.Laplace(self.loc, self.scale)


@dataclasses.dataclass(frozen=True)
class Flat(Prior):
    """Improper uniform prior on the real line (no regularisation)."""

    kind: ClassVar[str] = "flat"

    def to_numpyro(self) -> dist.Distribution:
        return dist.ImproperUniform(dist.constraints.real, (), ())


@dataclasses.dataclass(frozen=True)
class HalfCauchy(Prior):
    """HalfCauchy(scale) on a positive parameter such as the noise standard deviation."""

    scale: float = 1.0
    kind: ClassVar[str] = "half_cauchy"

    def __post_init__(self) -> None:
        _check_scale("scale", self.scale, "HalfCauchy")

    def to_numpyro(self) -> dist.Distribution:
        return dist.HalfCauchy(self.scale)


@dataclasses.dataclass(frozen=True)
class HalfNormal(Prior):
    """HalfNormal(scale) on a positive parameter such as the noise standard deviation."""

    scale: float = 1.0
    kind: ClassVar[str] = "half_normal"

    def __post_init__(self) -> None:
        _check_scale("scale", self.scale, "HalfNormal")

    def to_numpyro(self) -> dist.Distribution:
        return dist.HalfNormal(self.scale)


@dataclasses.dataclass(frozen=True)
class LinearPrior:
    """Independent priors for a linear model: ``y ~ Normal(intercept + X @ coef, sigma)``.

    The defaults are the seed example's: coefficients and intercept ~ Normal(0, 10),
    noise sigma ~ HalfCauchy(5).
    """

    coef: Prior = Normal(0.0, 10.0)
    intercept: Prior = Normal(0.0, 10.0)
    noise: Prior = HalfCauchy(5.0)
    kind: ClassVar[str] = "linear"

    def __post_init__(self) -> None:
        for name, allowed in (
            ("coef", (Normal, Laplace, Flat)),
            ("intercept", (Normal, Laplace, Flat)),
            ("noise", (HalfCauchy, HalfNormal)),
        ):
            value = getattr(self, name)
            if not isinstance(value, allowed):
                names = ", ".join(f"px.priors.{cls.__name__}" for cls in allowed)
                raise TypeError(
                    f"The '{name}' prior of LinearPrior must be one of {names}. Got {value!r}."
                )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "coef": self.coef.to_dict(),
            "intercept": self.intercept.to_dict(),
            "noise": self.noise.to_dict(),
        }


@dataclasses.dataclass(frozen=True)
class NormalInverseGamma:
    """The conjugate prior of linear regression with unknown noise.

    ``sigma**2 ~ InverseGamma(concentration, rate)`` and, given sigma, the intercept and every
    coefficient ~ ``Normal(loc, (scale * sigma)**2)`` independently — ``scale`` is measured in
    units of the noise standard deviation. The defaults (scale 10, concentration = rate = 1e-3)
    are weak: the posterior sits close to least squares with Student-t uncertainty.
    """

    loc: float = 0.0
    scale: float = 10.0
    concentration: float = 1e-3
    rate: float = 1e-3
    kind: ClassVar[str] = "normal_inverse_gamma"

    def __post_init__(self) -> None:
        _check_loc(self.loc, "NormalInverseGamma")
        for name in ("scale", "concentration", "rate"):
            _check_scale(name, getattr(self, name), "NormalInverseGamma")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **dataclasses.asdict(self)}


_UNIVARIATE = {cls.kind: cls for cls in (Normal, Laplace, Flat, HalfCauchy, HalfNormal)}


def prior_from_dict(data: dict[str, Any]) -> Any:
    """Rebuild a prior from :meth:`to_dict` output (used by ``px.load``)."""
    data = dict(data)
    kind = data.pop("kind")
    if kind == LinearPrior.kind:
        return LinearPrior(**{key: prior_from_dict(value) for key, value in data.items()})
    if kind == NormalInverseGamma.kind:
        return NormalInverseGamma(**data)
    if kind in _UNIVARIATE:
        return _UNIVARIATE[kind](**data)
    raise ValueError(f"Unknown prior kind {kind!r} in a saved file; known: {sorted(_UNIVARIATE)}.")


__all__ = [
    "Flat",
    "HalfCauchy",
    "HalfNormal",
    "Laplace",
    "LinearPrior",
    "Normal",
    "NormalInverseGamma",
    "Prior",
    "prior_from_dict",
]
