"""Selective prediction: answer only when the uncertainty is at most a threshold, else abstain.

:func:`fit_abstention` chooses the threshold on held-out calibration data: the largest threshold
(most answers) whose selective risk — the error rate among answered points — is at most a target.
With ``delta`` the risk is replaced by an upper confidence bound (Clopper–Pearson for 0/1 errors,
Hoeffding for losses in [0, 1]) at level ``1 - delta`` with a Bonferroni correction over a grid of
``n_candidates`` thresholds (quantiles of the calibration uncertainties), so that with probability
at least ``1 - delta`` over the calibration draw the chosen rule's risk on new data is at most the
target (Geifman & El-Yaniv, 2017, in spirit).

The risk–coverage curve and AURC live in :mod:`posterax.metrics` (``risk_coverage_curve``,
``aurc``); the plot is ``posterax.plots.uncertainty.plot_risk_coverage``.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import numpy as np
from scipy import stats

from posterax.base import PredictiveSamples
from posterax.data.validation import check_fraction
from posterax.predictive.inputs import as_labels, class_probs
from posterax.uncertainty._checks import (
    check_int,
    check_predictive,
    check_scores,
)


def prediction_errors(pred: PredictiveSamples, y: Any) -> np.ndarray:
    """0/1 errors ``(N,)`` of the posterior-predictive argmax (classification).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> pred = PredictiveSamples.classification(jnp.log(jnp.array([[[0.9, 0.1], [0.2, 0.8]]])))
    >>> prediction_errors(pred, [0, 0]).tolist()
    [0.0, 1.0]
    """
    check_predictive(pred, "prediction_errors", task="classification")
    probs = class_probs(pred, "pred", "prediction_errors")
    labels = as_labels(y, "y", "prediction_errors", probs.shape[1])
    if labels.shape[0] != probs.shape[0]:
        raise ValueError(
            "prediction_errors: 'y' must have one label per predicted point. Got "
            f"{labels.shape[0]} "
            f"labels for {probs.shape[0]} points. Pass labels for the same points."
        )
    return np.asarray(np.argmax(np.asarray(probs), axis=1) != np.asarray(labels), dtype=float)


def _check_errors(errors: Any, n: int, where: str) -> np.ndarray:
    e = check_scores(errors, "errors", where)
    if e.shape[0] != n:
        raise ValueError(
            f"{where}: 'uncertainty' and 'errors' must have one entry per point. Got {n} and "
            f"{e.shape[0]}. Pass both for the same calibration points."
        )
    if e.min() < 0 or e.max() > 1:
        raise ValueError(
            f"The 'errors' parameter of {where} must hold losses in [0, 1] (1 = wrong). Got "
            f"values in [{e.min():g}, {e.max():g}]. Use prediction_errors(pred, y) for 0/1 "
            "errors, or rescale a bounded loss."
        )
    return e


def _answered_groups(u: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, ...]:
    """Distinct thresholds (ascending), answered counts and error sums at each (ties together)."""
    order = np.argsort(u, kind="stable")
    u_sorted, cum = u[order], np.cumsum(e[order])
    ends = np.flatnonzero(np.r_[u_sorted[1:] != u_sorted[:-1], True])  # last index of each group
    return u_sorted[ends], ends + 1, cum[ends]


def _upper_bound(n: np.ndarray, err: np.ndarray, alpha: float, binary: bool) -> np.ndarray:
    if binary:
        k = np.rint(err)
        bound = stats.beta.ppf(1 - alpha, k + 1, np.maximum(n - k, 1))
        return np.where(k >= n, 1.0, bound)
    return err / n + np.sqrt(math.log(1 / alpha) / (2 * n))


@dataclasses.dataclass(frozen=True)
class AbstentionRule:
    """Answer a point when its uncertainty is ``<= threshold``; abstain otherwise.

    ``coverage`` and ``risk`` are measured on the calibration data; ``risk_bound`` is the upper
    confidence bound used when ``delta`` was given.
    """

    threshold: float
    target_risk: float
    coverage: float
    risk: float
    n_calibration: int
    delta: float | None = None
    risk_bound: float | None = None

    def abstain(self, uncertainty: Any) -> np.ndarray:
        """Boolean mask ``(N,)``: ``True`` where the rule abstains."""
        return check_scores(uncertainty, "uncertainty", "AbstentionRule.abstain") > self.threshold

    def evaluate(self, uncertainty: Any, errors: Any) -> dict[str, float]:
        """Coverage and selective risk (``nan`` when nothing is answered) on new points."""
        u = check_scores(uncertainty, "uncertainty", "AbstentionRule.evaluate")
        e = _check_errors(errors, u.shape[0], "AbstentionRule.evaluate")
        answered = u <= self.threshold
        risk = float(e[answered].mean()) if answered.any() else float("nan")
        return {"coverage": float(answered.mean()), "risk": risk}


def fit_abstention(
    uncertainty: Any,
    errors: Any,
    target_risk: float,
    *,
    delta: float | None = None,
    n_candidates: int = 20,
) -> AbstentionRule:
    """Choose the abstention threshold for a target selective risk on calibration data.

    Parameters
    ----------
    uncertainty : array (N,)
        Uncertainty of each calibration point (higher = less sure), e.g. the predictive entropy
        from :func:`~posterax.uncertainty.decompose` or any OOD score.
    errors : array (N,)
        Loss of each calibration prediction in [0, 1]: 0/1 errors from
        :func:`prediction_errors`, or a bounded regression loss.
    target_risk : float in (0, 1)
        Largest acceptable error rate among answered points.
    delta : float in (0, 1), optional
        With ``delta`` the risk must hold with probability ``1 - delta`` (upper confidence
        bound); without, the empirical risk on the calibration data must meet the target.
        Picking the largest feasible threshold overshoots a little (the empirical risk is noisy
        where it crosses the target), so use ``delta`` when the target is a requirement.
    n_candidates : int, default 20
        With ``delta``: thresholds tried (at coverages ``1/n, ..., 1``); the bound is corrected
        for this many tries, so fewer candidates give a tighter bound on a coarser grid.

    Returns
    -------
    AbstentionRule
        The largest threshold meeting the target. If none does, the threshold is ``-inf``
        (always abstain) and a warning says so.

    Examples
    --------
    >>> rule = fit_abstention([0.1, 0.2, 0.3, 0.9], [0, 0, 1, 1], target_risk=0.4)
    >>> rule.threshold, rule.coverage, round(rule.risk, 3)
    (0.3, 0.75, 0.333)
    >>> rule.abstain([0.05, 0.5]).tolist()
    [False, True]
    """
    where = "fit_abstention"
    u = check_scores(uncertainty, "uncertainty", where)
    e = _check_errors(errors, u.shape[0], where)
    target = check_fraction(target_risk, name="target_risk", where=where, example=0.05)
    if delta is not None:
        delta = check_fraction(delta, name="delta", where=where, example=0.05)
    n_candidates = check_int(n_candidates, "n_candidates", where)
    thresholds, answered, err = _answered_groups(u, e)
    if delta is not None and len(thresholds) > n_candidates:
        # The group reaching each coverage k / n_candidates: a fixed grid, so the Bonferroni
        # correction pays for n_candidates tries rather than for every distinct value.
        want = np.ceil(np.arange(1, n_candidates + 1) / n_candidates * u.shape[0])
        keep = np.unique(np.searchsorted(answered, want))
        thresholds, answered, err = thresholds[keep], answered[keep], err[keep]
    risk = err / answered
    if delta is None:
        check = risk
        bound = None
    else:
        binary = bool(np.all((e == 0) | (e == 1)))
        check = _upper_bound(answered, err, delta / len(thresholds), binary)
        bound = check
    ok = np.flatnonzero(check <= target)
    n = int(u.shape[0])
    if ok.size == 0:
        warnings.warn(
            f"fit_abstention: no threshold reaches selective risk <= {target} on the {n} "
            "calibration points (even the most certain point fails"
            + (" the confidence bound" if delta is not None else "")
            + "); the rule abstains on everything. Raise target_risk, add calibration data or "
            "use a better uncertainty score.",
            RuntimeWarning,
            stacklevel=2,
        )
        return AbstentionRule(-math.inf, target, 0.0, math.nan, n, delta, None)
    j = int(ok[-1])
    return AbstentionRule(
        threshold=float(thresholds[j]),
        target_risk=target,
        coverage=float(answered[j] / n),
        risk=float(risk[j]),
        n_calibration=n,
        delta=delta,
        risk_bound=None if bound is None else float(bound[j]),
    )


__all__ = ["AbstentionRule", "fit_abstention", "prediction_errors"]
