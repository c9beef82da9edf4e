"""Learn-then-test (Angelopoulos, Bates, Candès, Jordan, Lei 2021): risk control for any loss.

Each candidate ``lambda`` on a grid is a hypothesis test of ``H_j: R(lambda_j) > alpha`` with a
Hoeffding–Bentkus p-value from the calibration losses; a family-wise error rate (FWER) procedure
at level ``delta`` rejects some of them, and every rejected ``lambda`` controls the risk
simultaneously: ``P(R(lambda) <= alpha for every returned lambda) >= 1 - delta``. Unlike
conformal risk control the loss need not be monotone in ``lambda`` (precision is not).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from scipy.special import rel_entr
from scipy.stats import binom

from posterax.predictive.inputs import check_choice, check_positive_int, check_probability

FWER_PROCEDURES = ("holm", "bonferroni", "fixed_sequence")


class LearnThenTest(NamedTuple):
    """What :func:`learn_then_test` returns.

    Attributes
    ----------
    lambda_hat : float
        The smallest valid ``lambda`` (``nan`` when none is valid).
    index : int
        Its position in the grid (``-1`` when none is valid).
    valid : numpy.ndarray of bool, shape (m,)
        Which grid values the FWER procedure certifies.
    valid_lambdas : numpy.ndarray, shape (n_valid,)
        ``lambdas[valid]``.
    risk : numpy.ndarray, shape (m,)
        Empirical risk (mean calibration loss) at each ``lambda``.
    p_values : numpy.ndarray, shape (m,)
        Hoeffding–Bentkus p-values of ``H_j: R(lambda_j) > alpha``.
    """

    lambda_hat: float
    index: int
    valid: np.ndarray
    valid_lambdas: np.ndarray
    risk: np.ndarray
    p_values: np.ndarray


def hoeffding_bentkus_p_values(risk: Any, n: int, alpha: float, binary: bool = False) -> np.ndarray:
    """p-values of ``H: R > alpha`` from the mean ``risk`` of ``n`` losses in ``[0, 1]``.

    The smaller of Hoeffding's ``exp(-n h(min(risk, alpha), alpha))``, with ``h`` the Bernoulli
    relative entropy, and Bentkus's ``e * P(Binomial(n, alpha) <= ceil(n risk))`` (the factor
    ``e`` is dropped for ``binary`` 0/1 losses, where the binomial tail is exact), as in the
    learn-then-test paper (Sec. 3.1) and MAPIE.

    Parameters
    ----------
    risk : array, shape (m,)
        Empirical risks in ``[0, 1]``.
    n : int
        Number of calibration losses behind each risk.
    alpha : float in (0, 1)
        The risk level tested.
    binary : bool, default False
        Whether the losses take only the values 0 and 1.

    Returns
    -------
    numpy.ndarray, shape (m,)

    Examples
    --------
    >>> import numpy as np
    >>> p = hoeffding_bentkus_p_values(np.array([0.02, 0.1, 0.3]), n=500, alpha=0.1)
    >>> bool(p[0] < 1e-6), bool(p[2] == 1.0)
    (True, True)
    """
    alpha = check_probability(alpha, "alpha", "hoeffding_bentkus_p_values")
    n = check_positive_int(n, "n", "hoeffding_bentkus_p_values")
    risk = np.asarray(risk, dtype=float)
    hoeffding = np.exp(-n * _bernoulli_kl(np.minimum(risk, alpha), alpha))
    # No slack for rounding: n * risk = 37.00000000000001 counts as 38 (a slightly larger,
    # still valid p-value), exactly as MAPIE computes it, so both certify the same grid values.
    successes = np.ceil(n * risk)
    bentkus = (1.0 if binary else math.e) * binom.cdf(successes, n, alpha)
    return np.minimum(np.minimum(hoeffding, bentkus), 1.0)


def _bernoulli_kl(r: np.ndarray, alpha: float) -> np.ndarray:
    """``r log(r / alpha) + (1 - r) log((1 - r) / (1 - alpha))`` (0 log 0 = 0)."""
    return rel_entr(r, alpha) + rel_entr(1.0 - r, 1.0 - alpha)


def control_fwer(p_values: Any, delta: float, fwer: str = "holm") -> np.ndarray:
    """Which hypotheses an FWER procedure at level ``delta`` rejects, as a boolean mask.

    - ``"bonferroni"``: every ``p <= delta / m``.
    - ``"holm"``: Holm's step-down: the ``k``-th smallest p-value (1-based) is rejected while
      all of the first ``k`` satisfy ``p_(i) <= delta / (m - i + 1)``; never fewer than
      Bonferroni.
    - ``"fixed_sequence"``: test in the grid's reverse order (from the last ``lambda``, where the
      loss is lowest when it is non-increasing in ``lambda``) at the full level ``delta``, and
      stop at the first hypothesis not rejected. Powerful for monotone losses; the order must not
      be chosen from the calibration data.

    Parameters
    ----------
    p_values : array, shape (m,)
    delta : float in (0, 1)
    fwer : {"holm", "bonferroni", "fixed_sequence"}, default "holm"

    Returns
    -------
    numpy.ndarray of bool, shape (m,)

    Examples
    --------
    >>> import numpy as np
    >>> p = np.array([0.2, 0.02, 0.001, 0.0001])
    >>> control_fwer(p, 0.05, "bonferroni").tolist()
    [False, False, True, True]
    >>> control_fwer(p, 0.05, "holm").tolist()  # 0.02 <= 0.05 / 2
    [False, True, True, True]
    >>> control_fwer(p, 0.05, "fixed_sequence").tolist()
    [False, True, True, True]
    """
    where = "control_fwer"
    delta = check_probability(delta, "delta", where, kind="delta")
    fwer = check_choice(fwer, "fwer", where, FWER_PROCEDURES)
    p = np.asarray(p_values, dtype=float).ravel()
    m = p.shape[0]
    if fwer == "bonferroni":
        return p <= delta / m
    if fwer == "holm":
        order = np.argsort(p, kind="stable")
        passes = p[order] <= delta / (m - np.arange(m))
        n_rejected = m if passes.all() else int(np.argmin(passes))
        rejected = np.zeros(m, dtype=bool)
        rejected[order[:n_rejected]] = True
        return rejected
    failed = p[::-1] > delta
    n_rejected = m if not failed.any() else int(np.argmax(failed))
    rejected = np.zeros(m, dtype=bool)
    rejected[m - n_rejected :] = True
    return rejected


def learn_then_test(
    losses: Any,
    lambdas: Any,
    alpha: float,
    delta: float,
    fwer: str = "holm",
    binary: bool = False,
) -> LearnThenTest:
    """The grid values whose risk is at most ``alpha`` with probability ``1 - delta``.

    With ``valid`` the returned set, ``P(R(lambda) <= alpha for every lambda in valid) >= 1 -
    delta`` over the calibration draw, for any loss in ``[0, 1]``: the loss need not be monotone
    in ``lambda``. By convention the loss falls as ``lambda`` grows (larger sets), so
    ``lambda_hat`` is the smallest valid ``lambda`` and fixed-sequence testing starts from the
    largest.

    Parameters
    ----------
    losses : array, shape (n, m)
        Loss of each calibration example at each ``lambda``, in ``[0, 1]``.
    lambdas : array, shape (m,)
        The grid, strictly increasing.
    alpha : float in (0, 1)
        Risk level.
    delta : float in (0, 1)
        Allowed probability that a returned ``lambda`` has risk above ``alpha``.
    fwer : {"holm", "bonferroni", "fixed_sequence"}, default "holm"
        Multiple-testing procedure (see :func:`control_fwer`). Holm is MAPIE's default.
    binary : bool, default False
        Whether losses are 0/1 (a tighter Bentkus p-value).

    Returns
    -------
    LearnThenTest

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> lambdas = np.linspace(0.0, 1.0, 11)
    >>> losses = (rng.uniform(size=(1000, 1)) > lambdas).astype(float)  # risk 1 - lambda
    >>> out = learn_then_test(losses, lambdas, alpha=0.2, delta=0.1)
    >>> float(out.lambda_hat), out.valid_lambdas.round(1).tolist()
    (0.9, [0.9, 1.0])
    """
    where = "learn_then_test"
    alpha = check_probability(alpha, "alpha", where)
    delta = check_probability(delta, "delta", where, kind="delta")
    fwer = check_choice(fwer, "fwer", where, FWER_PROCEDURES)
    losses, lambdas = check_grid(losses, lambdas, where)
    check_loss_range(losses, 1.0, where, "learn-then-test's p-values need losses in [0, 1]")
    return ltt_on_grid(losses, lambdas, alpha, delta, fwer, binary)


def ltt_on_grid(
    losses: np.ndarray, lambdas: np.ndarray, alpha: float, delta: float, fwer: str, binary: bool
) -> LearnThenTest:
    """:func:`learn_then_test` on checked inputs (columns ordered as the loss falls)."""
    n = losses.shape[0]
    risk = mean_over_rows(losses)
    p_values = hoeffding_bentkus_p_values(risk, n, alpha, binary)
    valid = control_fwer(p_values, delta, fwer)
    index = int(np.argmax(valid)) if valid.any() else -1
    lambda_hat = float(lambdas[index]) if index >= 0 else math.nan
    return LearnThenTest(lambda_hat, index, valid, lambdas[valid], risk, p_values)


def mean_over_rows(losses: np.ndarray) -> np.ndarray:
    """Column means, summed row after row: the same rounding whatever the column order or the
    memory layout (a reordered view is not C-contiguous), and the same as MAPIE's."""
    return np.ascontiguousarray(losses).mean(axis=0)


def check_grid(
    losses: Any, lambdas: Any, where: str, name: str = "lambdas"
) -> tuple[np.ndarray, np.ndarray]:
    """``losses`` (n, m) and a strictly increasing grid (m,), as float NumPy arrays."""
    losses = _float_array(losses, "losses", where)
    lambdas = _float_array(lambdas, name, where)
    if lambdas.ndim != 1 or lambdas.shape[0] < 1:
        raise ValueError(
            f"The '{name}' parameter of {where} must be a non-empty 1-D grid. Got shape "
            f"{lambdas.shape}."
        )
    if losses.ndim != 2 or losses.shape[1] != lambdas.shape[0] or losses.shape[0] < 1:
        raise ValueError(
            f"The 'losses' parameter of {where} must have shape (n, m) = (n_calibration, "
            f"len({name})) = (n, {lambdas.shape[0]}). Got shape {losses.shape}. Row i holds "
            "example i's loss at every value of the grid."
        )
    for label, values in (("losses", losses), (name, lambdas)):
        bad = ~np.isfinite(values)
        if bad.any():
            at = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"The '{label}' parameter of {where} must be finite. Got {int(bad.sum())} NaN "
                f"or inf, e.g. {values[at]} at index {at if len(at) > 1 else at[0]}. Replace "
                "them (a loss that divides by zero needs a guard, e.g. numpy.where) or drop "
                "those rows / grid values."
            )
    if lambdas.shape[0] > 1 and not np.all(np.diff(lambdas) > 0):
        raise ValueError(
            f"The '{name}' parameter of {where} must be strictly increasing. Got "
            f"{np.array2string(lambdas[:6], precision=4)}.... Sort the grid (and the columns "
            "of 'losses' with it) and drop duplicates."
        )
    return losses, lambdas


def check_loss_range(losses: np.ndarray, bound: float, where: str, why: str) -> None:
    lo, hi = float(losses.min()), float(losses.max())
    if lo < 0.0 or hi > bound:
        raise ValueError(
            f"The 'losses' parameter of {where} must lie in [0, {bound:g}] ({why}). Got values "
            f"in [{lo:g}, {hi:g}]. Rescale the loss by its largest possible value"
            + (", or pass that value as 'bound'." if where == "conformal_risk_control" else ".")
        )


def _float_array(x: Any, name: str, where: str) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"The '{name}' parameter of {where} must be a numeric array. Got "
            f"{type(x).__name__}. Convert it with numpy.asarray first."
        ) from err
    return arr


__all__ = [
    "FWER_PROCEDURES",
    "LearnThenTest",
    "control_fwer",
    "hoeffding_bentkus_p_values",
    "learn_then_test",
]
