"""Conformal risk control (Angelopoulos, Bates, Fisch, Lei, Schuster 2022) and multilabel sets
that control the false-negative rate or the precision.

Split conformal bounds one loss, miscoverage. Conformal risk control bounds the expected value of
any loss ``L(lambda)`` in ``[0, B]`` that does not rise as ``lambda`` grows (the sets grow):
with ``Rhat`` the mean calibration loss of ``n`` examples,
``lambda_hat = inf{lambda : n / (n + 1) * Rhat(lambda) + B / (n + 1) <= alpha}`` gives
``E[L_test(lambda_hat)] <= alpha``. For a loss that is not monotone (1 - precision) use
learn-then-test (:mod:`posterax.conformal.ltt`), which bounds the risk itself with probability
``1 - delta``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from sklearn.utils.validation import check_is_fitted

from posterax.conformal.ltt import (
    FWER_PROCEDURES,
    check_grid,
    check_loss_range,
    ltt_on_grid,
    mean_over_rows,
)
from posterax.conformal.quantile import ceil_level
from posterax.conformal.wrappers import _Wrapper
from posterax.predictive.inputs import check_choice, check_probability

_LOSSES = ("fnr", "fdr")
_METHODS = ("crc", "ltt")


class RiskControl(NamedTuple):
    """What :func:`conformal_risk_control` returns.

    Attributes
    ----------
    lambda_hat : float
        The smallest grid ``lambda`` whose bound is at most ``alpha``.
    index : int
        Its position in the grid.
    risk : numpy.ndarray, shape (m,)
        Empirical risk ``Rhat(lambda)`` (mean calibration loss).
    upper_bound : numpy.ndarray, shape (m,)
        ``n / (n + 1) * Rhat(lambda) + B / (n + 1)``.
    """

    lambda_hat: float
    index: int
    risk: np.ndarray
    upper_bound: np.ndarray


def conformal_risk_control(
    losses: Any, lambdas: Any, alpha: float, bound: float = 1.0
) -> RiskControl:
    """Choose ``lambda`` so that the expected test loss is at most ``alpha``.

    ``lambda_hat = min{lambda in grid : n / (n + 1) * Rhat(lambda) + bound / (n + 1) <= alpha}``.
    With exchangeable calibration and test data and each example's loss non-increasing in
    ``lambda`` and in ``[0, bound]``, ``E[L_test(lambda_hat)] <= alpha`` (and, for losses without
    ties, ``>= alpha - 2 bound / (n + 1)`` on a fine grid).

    Parameters
    ----------
    losses : array, shape (n, m)
        Loss of each calibration example at each ``lambda``; non-increasing along each row.
    lambdas : array, shape (m,)
        The grid, strictly increasing (larger ``lambda``: larger sets, smaller loss).
    alpha : float in (0, 1)
        Risk level.
    bound : float, default 1.0
        ``B``, the largest value the loss can take (known in advance, not the calibration
        maximum).

    Returns
    -------
    RiskControl

    Raises
    ------
    ValueError
        If a row of ``losses`` rises with ``lambda`` (use :func:`learn_then_test`), if
        ``bound / (n + 1) > alpha`` (too few calibration examples), or if no ``lambda`` in the
        grid reaches ``alpha``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> lambdas = np.linspace(0.0, 1.0, 101)
    >>> losses = (rng.uniform(size=(999, 1)) > lambdas).astype(float)  # risk 1 - lambda
    >>> out = conformal_risk_control(losses, lambdas, alpha=0.1)
    >>> round(out.lambda_hat, 2), bool(out.upper_bound[out.index] <= 0.1)
    (0.9, True)
    """
    where = "conformal_risk_control"
    alpha = check_probability(alpha, "alpha", where)
    if isinstance(bound, bool) or not isinstance(bound, (int, float, np.integer, np.floating)):
        raise TypeError(
            f"The 'bound' parameter of {where} must be a positive float (the largest value the "
            f"loss can take). Got {bound!r} of type {type(bound).__name__}. Pass a number, e.g. "
            "bound=1.0 for losses in [0, 1]."
        )
    bound = float(bound)
    if not (0.0 < bound < math.inf):
        raise ValueError(
            f"The 'bound' parameter of {where} must be a positive, finite float (the largest "
            f"value the loss can take). Got {bound}."
        )
    losses, lambdas = check_grid(losses, lambdas, where)
    check_loss_range(losses, bound, where, "'bound' is the largest value the loss can take")
    index, risk, upper = crc_on_grid(losses, lambdas, alpha, bound, where, "lambda")
    return RiskControl(float(lambdas[index]), index, risk, upper)


def crc_on_grid(
    losses: np.ndarray,
    values: np.ndarray,
    alpha: float,
    bound: float,
    where: str,
    name: str,
) -> tuple[int, np.ndarray, np.ndarray]:
    """Index of the CRC choice on checked inputs whose columns are ordered as the sets grow.

    ``values`` (the grid in the same column order) and ``name`` only word the errors.
    """
    n = losses.shape[0]
    need = ceil_level(bound / alpha) - 1  # bound / (n + 1) <= alpha, up to rounding
    if n < need:
        raise ValueError(
            f"{where}: {n} calibration example{'s' if n != 1 else ''} are too few for "
            f"alpha={alpha:g} with a loss bounded by {bound:g}; conformal risk control needs "
            f"bound / (n + 1) <= alpha, i.e. at least n = {need}. Use more calibration data or "
            f"a larger alpha (alpha >= {bound / (n + 1):.3g} for n={n})."
        )
    rises = np.diff(losses, axis=1) > 1e-12 * bound
    if rises.any():
        rows, cols = np.nonzero(rises)
        i, j = int(rows[0]), int(cols[0])
        raise ValueError(
            f"{where}: conformal risk control needs every example's loss to be monotone: "
            f"non-increasing as the sets grow ({name} from {values[0]:g} to {values[-1]:g}). "
            f"Example {i}'s loss rises from {losses[i, j]:g} at {name}={values[j]:g} to "
            f"{losses[i, j + 1]:g} at {name}={values[j + 1]:g} ({np.unique(rows).size} of {n} "
            "examples rise somewhere). Use learn-then-test, which does not need monotonicity "
            "(posterax.conformal.learn_then_test, or method='ltt'), or a monotone loss."
        )
    risk = mean_over_rows(losses)
    upper = n / (n + 1) * risk + bound / (n + 1)
    ok = upper <= alpha
    if not ok.any():
        raise ValueError(
            f"{where}: no {name} in the grid controls the risk at alpha={alpha:g}: the smallest "
            f"bound n/(n+1) Rhat + B/(n+1), at {name}={values[-1]:g} (the largest sets), is "
            f"{upper[-1]:.4g}. Extend the grid to where the loss is 0 (the full sets), or use a "
            "larger alpha."
        )
    return int(np.argmax(ok)), risk, upper


# ----------------------------------------------------------------------------------------------
# Multilabel losses: y_true and sets are boolean (n, L); one loss per example.


def false_negative_rate(y_true: Any, sets: Any) -> np.ndarray:
    """Per-example false-negative rate ``1 - |set & labels| / |labels|`` (1 - recall).

    An example without positive labels has nothing to miss: loss 0. Non-increasing as the sets
    grow, so conformal risk control applies.

    Parameters
    ----------
    y_true, sets : array of bool, shape (n, L)

    Returns
    -------
    numpy.ndarray, shape (n,)

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([[1, 1, 0], [0, 0, 1]], bool)
    >>> false_negative_rate(y, np.array([[1, 0, 1], [0, 0, 1]], bool)).tolist()
    [0.5, 0.0]
    """
    y_true, sets = np.asarray(y_true, bool), np.asarray(sets, bool)
    positives = y_true.sum(axis=1)
    found = (y_true & sets).sum(axis=1)
    return np.where(positives > 0, 1.0 - found / np.maximum(positives, 1), 0.0)


def false_discovery_rate(y_true: Any, sets: Any) -> np.ndarray:
    """Per-example false-discovery rate ``1 - |set & labels| / |set|`` (1 - precision).

    An empty set counts as loss 1 (as in MAPIE), so an empty prediction never passes for a
    precise one. Not monotone in the set size: control it with learn-then-test.

    Parameters
    ----------
    y_true, sets : array of bool, shape (n, L)

    Returns
    -------
    numpy.ndarray, shape (n,)

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([[1, 1, 0], [0, 0, 1]], bool)
    >>> false_discovery_rate(y, np.array([[1, 0, 1], [0, 0, 0]], bool)).tolist()
    [0.5, 1.0]
    """
    y_true, sets = np.asarray(y_true, bool), np.asarray(sets, bool)
    size = sets.sum(axis=1)
    hits = (y_true & sets).sum(axis=1)
    return np.where(size > 0, 1.0 - hits / np.maximum(size, 1), 1.0)


_LOSS_FUNCTIONS = {"fnr": false_negative_rate, "fdr": false_discovery_rate}


class MultiLabelRiskController(_Wrapper):
    """Multilabel prediction sets ``{labels with probability > threshold}`` with a controlled risk.

    ``conformalize(X_cal, y_cal)`` picks the threshold on a grid; ``predict_set(X)`` returns the
    sets. Two guarantees, by ``method``:

    - ``"crc"`` (conformal risk control): ``E[loss] <= alpha`` on a new example, for a loss that
      does not rise as the sets grow (``"fnr"``, or yours). The threshold is the largest whose
      bound ``n / (n + 1) Rhat + 1 / (n + 1)`` is at most ``alpha``.
    - ``"ltt"`` (learn-then-test): ``P(risk <= alpha) >= 1 - delta`` over the calibration draw,
      for any loss (``"fdr"``: precision ``>= 1 - alpha``). ``valid_thresholds_`` all hold
      simultaneously; the chosen one gives the largest sets for ``"fdr"`` and the smallest sets
      otherwise.

    Matches MAPIE 1.6's ``MultiLabelClassificationController`` (``risk="recall"`` with
    ``"crc"``, ``risk="precision"`` with ``"ltt"``, ``target_level = 1 - alpha``,
    ``confidence_level = 1 - delta``) on the same grid, except that a bound exactly equal to
    ``alpha`` counts as controlled here (as in the paper), an impossible target raises (MAPIE
    warns and returns an extreme or NaN threshold), and an example without labels has
    false-negative rate 0 (MAPIE refuses it).

    Parameters
    ----------
    estimator : object
        Has ``predict_proba(X)`` giving each label's probability: an array ``(N, L)``, an array
        ``(N, L, 2)`` or a list of ``L`` arrays ``(N, 2)`` (as sklearn's ``MultiOutputClassifier``:
        the column of class 1 in each label's ``classes_``, the last column without them).
    loss : {"fnr", "fdr"} or callable, default "fnr"
        ``"fnr"``: false-negative rate, 1 - recall (:func:`false_negative_rate`). ``"fdr"``:
        false-discovery rate, 1 - precision (:func:`false_discovery_rate`). A callable
        ``loss(y_true, sets) -> (n,)`` takes boolean ``(n, L)`` arrays and returns per-example
        losses in ``[0, 1]`` that do not rise as the sets grow (checked for ``"crc"``).
    alpha : float in (0, 1), default 0.1
        Risk level: the bound on the expected loss.
    delta : float in (0, 1), default 0.1
        For ``"ltt"``: allowed probability that the risk exceeds ``alpha``. Unused by ``"crc"``.
    method : {"crc", "ltt"} or None, default None
        None: ``"ltt"`` for ``"fdr"``, ``"crc"`` otherwise.
    thresholds : array or None, default None
        Strictly increasing grid; None: ``numpy.arange(0, 1, 0.01)`` (MAPIE's).
    fwer : {"holm", "bonferroni", "fixed_sequence"}, default "holm"
        Multiple-testing procedure of ``"ltt"`` (see :func:`posterax.conformal.ltt.control_fwer`).
        ``"fixed_sequence"`` starts from the smallest sets for ``"fdr"`` (the largest threshold),
        where empty sets count as loss 1: with few labels per example prefer ``"holm"``.
    prefit : bool, default True
        Whether ``estimator`` is already fitted.

    Attributes
    ----------
    threshold_ : float
        The chosen threshold.
    thresholds_ : numpy.ndarray, shape (m,)
        The grid.
    risk_ : numpy.ndarray, shape (m,)
        Empirical risk at each threshold.
    upper_bound_ : numpy.ndarray, shape (m,)
        ``"crc"``: the conformal bound at each threshold.
    p_values_ : numpy.ndarray, shape (m,)
        ``"ltt"``: Hoeffding–Bentkus p-values at each threshold.
    valid_thresholds_ : numpy.ndarray
        ``"ltt"``: every certified threshold (increasing).
    method_ : str
    n_conformalize_ : int
    n_labels_ : int

    Examples
    --------
    >>> import numpy as np
    >>> class Oracle:  # X holds the label probabilities themselves
    ...     def predict_proba(self, X):
    ...         return X
    >>> rng = np.random.default_rng(0)
    >>> P = rng.beta(0.5, 0.5, size=(3000, 5)); Y = rng.uniform(size=P.shape) < P
    >>> crc = MultiLabelRiskController(Oracle(), loss="fnr", alpha=0.1)
    >>> sets = crc.conformalize(P[:1000], Y[:1000]).predict_set(P[1000:])
    >>> bool(np.mean(false_negative_rate(Y[1000:], sets)) < 0.12)
    True
    """

    def __init__(
        self,
        estimator: Any = None,
        loss: str | Callable[[np.ndarray, np.ndarray], Any] = "fnr",
        alpha: float = 0.1,
        delta: float = 0.1,
        method: str | None = None,
        thresholds: Any = None,
        fwer: str = "holm",
        prefit: bool = True,
    ):
        self.estimator = estimator
        self.loss = loss
        self.alpha = alpha
        self.delta = delta
        self.method = method
        self.thresholds = thresholds
        self.fwer = fwer
        self.prefit = prefit

    def _loss_and_method(self, where: str) -> tuple[Callable[..., Any], str, bool]:
        """(loss function, method, whether the loss falls as the threshold grows)."""
        loss = self.loss
        if not callable(loss):
            loss = check_choice(loss, "loss", where, _LOSSES)
        method = self.method
        if method is None:
            method = "ltt" if loss == "fdr" else "crc"
        method = check_choice(method, "method", where, _METHODS)
        if loss == "fdr" and method == "crc":
            raise ValueError(
                f"The 'method' parameter of {where} cannot be 'crc' with loss='fdr': 1 - precision "
                "is not monotone in the set size, which conformal risk control needs. Use "
                "method='ltt' (learn-then-test), which does not need monotonicity."
            )
        if callable(loss):
            return loss, method, False
        return _LOSS_FUNCTIONS[loss], method, loss == "fdr"

    def _grid(self, where: str) -> np.ndarray:
        if self.thresholds is None:
            return np.arange(0.0, 1.0, 0.01)
        grid = np.asarray(self.thresholds, dtype=float)
        check_grid(np.zeros((1, grid.size)), grid, where, "thresholds")
        return grid

    def _probs(self, X: Any, where: str) -> np.ndarray:
        model = self._model()
        out = model.predict_proba(X)
        if isinstance(out, (list, tuple)):
            out = np.stack(_positive_columns(out, model, where), axis=1)
        probs = np.asarray(out, dtype=float)
        if probs.ndim == 3 and probs.shape[2] == 2:
            probs = probs[..., 1]
        if probs.ndim != 2:
            raise ValueError(
                f"{where}: predict_proba(X) must give label probabilities of shape (N, L), "
                f"(N, L, 2) or a list of L arrays (N, 2). Got shape {probs.shape}."
            )
        if probs.size and not (np.all(np.isfinite(probs)) and 0 <= probs.min() <= probs.max() <= 1):
            raise ValueError(
                f"{where}: predict_proba(X) must give probabilities in [0, 1]. Got values in "
                f"[{np.nanmin(probs):g}, {np.nanmax(probs):g}]. Pass probabilities (e.g. "
                "scipy.special.expit of the logits), not scores."
            )
        return probs

    def conformalize(self, X: Any, y: Any) -> MultiLabelRiskController:
        """Choose the threshold on calibration data (not used for training).

        Parameters
        ----------
        X : array-like, shape (n, ...)
        y : array-like of bool or 0/1, shape (n, L)
            Which labels each example has.

        Returns
        -------
        self
        """
        where = "MultiLabelRiskController.conformalize"
        alpha = check_probability(self.alpha, "alpha", where)
        loss_fn, method, falls_with_threshold = self._loss_and_method(where)
        if method == "ltt":
            delta = check_probability(self.delta, "delta", where, kind="delta")
            fwer = check_choice(self.fwer, "fwer", where, FWER_PROCEDURES)
        for stale in ("upper_bound_", "p_values_", "valid_thresholds_"):
            self.__dict__.pop(stale, None)  # from an earlier conformalize with the other method
        grid = self._grid(where)
        probs = self._probs(X, where)
        labels = _as_label_matrix(y, probs.shape, where)
        losses = np.empty((probs.shape[0], grid.size))
        for j, t in enumerate(grid):
            losses[:, j] = _per_example(loss_fn(labels, probs > t), probs.shape[0], where)
        check_loss_range(losses, 1.0, where, "per-example losses of sets must be in [0, 1]")
        # Columns in the order the loss falls: threshold down (sets grow) unless it is "fdr".
        order = np.arange(grid.size) if falls_with_threshold else np.arange(grid.size)[::-1]
        if method == "crc":
            index, risk, upper = crc_on_grid(
                losses[:, order], grid[order], alpha, 1.0, where, "threshold"
            )
            self.upper_bound_ = upper[np.argsort(order)]
        else:
            out = ltt_on_grid(losses[:, order], grid[order], alpha, delta, fwer, False)
            if out.index < 0:
                smallest = float(out.risk.min())
                fix = (
                    "No calibration set can certify a level below the risk itself: use a larger "
                    "alpha or a better model."
                    if smallest > alpha
                    else "Use more calibration data, or a larger alpha or delta."
                )
                if fwer == "fixed_sequence" and np.any(out.p_values <= delta):
                    fix = (
                        "fwer='fixed_sequence' starts at threshold "
                        f"{grid[order][-1]:g} (empirical risk {out.risk[-1]:.4g} there) and "
                        "stops at the first threshold it cannot certify; others would pass. Use "
                        "fwer='holm', which tests every threshold."
                    )
                raise ValueError(
                    f"{where}: no threshold is certified at alpha={alpha:g}, delta={delta:g} "
                    f"(smallest empirical risk {smallest:.4g}, {losses.shape[0]} calibration "
                    f"examples). {fix}"
                )
            index, risk = out.index, out.risk
            self.p_values_ = out.p_values[np.argsort(order)]
            self.valid_thresholds_ = np.sort(out.valid_lambdas)
        self.threshold_ = float(grid[order][index])
        self.thresholds_ = grid
        self.risk_ = risk[np.argsort(order)]
        self.method_ = method
        self.n_conformalize_ = int(probs.shape[0])
        self.n_labels_ = int(probs.shape[1])
        return self

    def predict_set(self, X: Any) -> np.ndarray:
        """Label sets ``probability > threshold_``.

        Parameters
        ----------
        X : array-like, shape (N, ...)

        Returns
        -------
        numpy.ndarray of bool, shape (N, L)
        """
        check_is_fitted(self, "threshold_")
        where = "MultiLabelRiskController.predict_set"
        probs = self._probs(X, where)
        if probs.shape[1] != self.n_labels_:
            raise ValueError(
                f"{where}: predict_proba(X) gives {probs.shape[1]} labels but the controller was "
                f"conformalized with {self.n_labels_}. Use the same model and label set."
            )
        return probs > self.threshold_


def _positive_columns(out: list, model: Any, where: str) -> list[np.ndarray]:
    """P(label present) from one ``(N, C)`` array per label (``MultiOutputClassifier``): the
    column of class 1 in that label's ``classes_``; 0 where a label never occurred in training
    (``classes_ == [0]``, one column); the last column without ``classes_``."""
    classes = getattr(model, "classes_", None)
    columns = []
    for j, p in enumerate(out):
        p = np.asarray(p)
        if classes is None:
            columns.append(p[:, -1])
            continue
        labels = np.asarray(classes[j])
        positive = np.flatnonzero(labels == 1)
        if positive.size:
            columns.append(p[:, positive[0]])
        elif np.all(np.isin(labels, (0, 1))):  # classes_ == [0]: never present in training
            columns.append(np.zeros(p.shape[0]))
        else:
            raise ValueError(
                f"{where}: predict_proba(X) of label {j} has classes {labels.tolist()}; label "
                "indicators must be 0/1 (or bool). Fit the model on a 0/1 label matrix (e.g. "
                "from sklearn.preprocessing.MultiLabelBinarizer)."
            )
    return columns


def _as_label_matrix(y: Any, shape: tuple[int, ...], where: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.shape != tuple(shape):
        raise ValueError(
            f"The 'y' parameter of {where} must have the shape of predict_proba(X), (n, L) = "
            f"{tuple(shape)}: one 0/1 column per label. Got shape {arr.shape}. Binarise "
            "label lists with sklearn.preprocessing.MultiLabelBinarizer."
        )
    if arr.dtype != bool and not np.isin(arr, (0, 1)).all():
        raise ValueError(
            f"The 'y' parameter of {where} must hold 0/1 (or bool) label indicators. Got values "
            f"{np.unique(arr)[:5].tolist()}. Binarise them with "
            "sklearn.preprocessing.MultiLabelBinarizer."
        )
    return arr.astype(bool)


def _per_example(values: Any, n: int, where: str) -> np.ndarray:
    out = np.asarray(values, dtype=float)
    if out.shape != (n,):
        raise ValueError(
            f"The 'loss' parameter of {where}: a callable loss must return one loss per example, "
            f"shape ({n},). Got shape {out.shape}. Reduce over labels, not over examples."
        )
    bad = ~np.isfinite(out)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"The 'loss' parameter of {where} must return finite losses. Got {int(bad.sum())} "
            f"NaN or inf of {n}, e.g. {out[i]} for example {i}. Guard divisions by zero (an "
            "empty set, an example without labels), e.g. with numpy.where(size > 0, ..., 1.0)."
        )
    return out


__all__ = [
    "MultiLabelRiskController",
    "RiskControl",
    "conformal_risk_control",
    "false_discovery_rate",
    "false_negative_rate",
]
