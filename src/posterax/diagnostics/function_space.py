"""Convergence checks: R-hat/ESS on predictions (function space) and the warning rule.

For neural networks, weight-space R-hat and ESS mislead: hidden units can swap places, so
weights mix poorly while the function they compute mixes well. The same ArviZ statistics on the
network's outputs at a set of inputs say whether the *predictions* have converged.
"""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np


def split_single_chain(values: np.ndarray) -> np.ndarray:
    """(1, D, ...) -> (2, D//2, ...): ArviZ needs 2 chains for R-hat; split the one in halves."""
    if values.shape[0] > 1:
        return values
    half = values.shape[1] // 2
    return values[0, : 2 * half].reshape((2, half, *values.shape[2:]))


def function_space_diagnostics(values: np.ndarray) -> dict[str, float]:
    """Max R-hat and min bulk/tail ESS over predictions ``values`` of shape ``(C, D, M)``.

    ``values[c, d, m]`` is draw ``d`` of chain ``c`` of the ``m``-th predicted quantity (a mean
    at an input, or a class probability).
    """
    values = np.asarray(values, dtype=np.float64).reshape(values.shape[0], values.shape[1], -1)
    # Constant quantities (e.g. a saturated probability) have undefined R-hat: skip them.
    varying = np.std(values, axis=(0, 1)) > 1e-12
    if not varying.any():
        return {
            "max_r_hat": 1.0,
            "min_ess_bulk": float(values.shape[0] * values.shape[1]),
            "min_ess_tail": float(values.shape[0] * values.shape[1]),
            "n_quantities": 0,
        }
    values = values[..., varying]
    dataset = az.convert_to_dataset({"f": values})
    rhat = np.asarray(az.rhat(az.convert_to_dataset({"f": split_single_chain(values)}))["f"])
    bulk = np.asarray(az.ess(dataset, method="bulk")["f"])
    tail = np.asarray(az.ess(dataset, method="tail")["f"])
    return {
        "max_r_hat": float(np.nanmax(rhat)),
        "min_ess_bulk": float(np.nanmin(bulk)),
        "min_ess_tail": float(np.nanmin(tail)),
        "n_quantities": int(values.shape[-1]),
    }


def convergence_problems(
    max_r_hat: float, min_ess_bulk: float, divergences: int, *, where: str
) -> list[str]:
    """The rule: max R-hat > 1.01, min bulk ESS < 100 or any divergence is a problem."""
    problems = []
    if max_r_hat > 1.01:
        problems.append(f"max R-hat {max_r_hat:.3f} > 1.01 ({where})")
    if min_ess_bulk < 100:
        problems.append(f"min bulk ESS {min_ess_bulk:.0f} < 100 ({where})")
    if divergences:
        problems.append(f"{divergences} divergent transition(s)")
    return problems


def warn_if_not_converged(problems: list[str], stacklevel: int = 3, sampler: str = "NUTS") -> None:
    if problems:
        advice = (
            "raise target_accept_prob (e.g. 0.95)"
            if sampler == "NUTS"
            else "or use method='nuts', which mixes far better per gradient"
        )
        warnings.warn(
            f"{sampler} may not have converged: " + "; ".join(problems) + ". Increase "
            f"num_warmup and num_samples, {advice}, run more chains, or standardise the inputs.",
            UserWarning,
            stacklevel=stacklevel,
        )


__all__ = ["convergence_problems", "function_space_diagnostics", "warn_if_not_converged"]
