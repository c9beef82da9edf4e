"""The prediction methods every Bayesian regressor shares.

A subclass provides ``_check_predict_input(X, where)`` (validated model inputs) and
``_samples(inputs, n_samples, rng_key)`` (a :class:`PredictiveSamples` in the units of ``y``);
one with a closed-form predictive also overrides ``_closed_form(inputs, kind)`` to return a
frozen SciPy distribution, which is then used instead of samples.

A subclass fitted on a standardised target (fitted ``y_mean_`` and ``y_scale_``, and
``_raw_samples(inputs, n_samples, rng_key)`` in standardised units) is summarised in those units
and the summaries mapped to the units of ``y`` in float64: float32 samples in the units of a
``y`` of size 1e30 overflow when squared (an infinite sd), and those of ``y = 1e30 + small
noise`` lose the noise.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from posterax.base import PredictiveSamples
from posterax.data.validation import check_choice, check_level, check_positive_int
from posterax.estimators.held_out import INTERVAL_SCORES, conformal_level
from posterax.predictive import (
    predictive_mean,
    predictive_quantiles,
    predictive_std,
)
from posterax.predictive.chunking import (
    DEFAULT_BUDGET_BYTES,
    MOMENTS,
    Summary,
    in_chunks,
    quantiles,
    rows_per_chunk,
)

KINDS = ("predictive", "mean")


def _as_float64(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def _check_finite_predictions(summaries: tuple, inputs: np.ndarray, where: str) -> None:
    """Non-finite summaries of finite inputs come from float32 overflow far from the data: say
    so instead of returning NaN or inf."""
    bad = np.zeros(inputs.shape[0], dtype=bool)
    for values in summaries:
        bad |= ~np.isfinite(values).reshape(-1, inputs.shape[0]).all(axis=0)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"The 'X' parameter of {where} must lie near enough the training data for the "
            f"predictions to be finite. Row(s) {rows[:5].tolist()} of {inputs.shape[0]} give "
            "non-finite predictions (float32 overflow far outside the training inputs). Predict "
            "at inputs within the range of the training data."
        )


class PredictiveRegressorMixin:
    """``predict``, ``predict_interval``, ``predict_quantiles`` and ``predict_samples``."""

    # Memory for one chunk of sample-based predictions in bytes (see posterax.predictive.chunking);
    # None: the estimator's max_memory, or DEFAULT_BUDGET_BYTES for one without that parameter.
    _prediction_budget_bytes = None

    def _closed_form(self, inputs: np.ndarray, kind: str) -> Any:
        return None

    def _target_standardisation(self) -> tuple[float, float] | None:
        """``(y_mean_, y_scale_)`` when the samples can be drawn in standardised units."""
        if not hasattr(self, "_raw_samples"):
            return None
        shift, unit = getattr(self, "y_mean_", None), getattr(self, "y_scale_", None)
        return None if shift is None or unit is None else (float(shift), float(unit))

    def _summarise(
        self,
        inputs: np.ndarray,
        summarise,
        where: str,
        shift_by: tuple,
        summary: Summary | None = None,
    ) -> Any:
        """``summarise(samples of a chunk)`` over row chunks that fit the memory budget; the
        same draws serve every chunk, so the result equals the unchunked one. A subclass whose
        ``_raw_samples`` takes ``summary=`` (the networks) computes ``summary`` (the same numbers
        as ``summarise``) in one compiled program per chunk instead, within ``max_memory``.

        ``shift_by`` says, per returned array, whether it is a location (mapped to ``shift +
        unit * value``) or a spread (``unit * value``) under the target standardisation."""
        standard = self._target_standardisation()
        if summary is not None and standard is not None:
            out = self._raw_samples(inputs, None, None, summary=summary, where=where)
        else:
            # A subclass that knows its model's size provides _prediction_bytes_per_row().
            per_row = getattr(self, "_prediction_bytes_per_row", lambda: None)()
            budget = self._prediction_budget_bytes or DEFAULT_BUDGET_BYTES
            chunk = rows_per_chunk(inputs.shape[0], per_row, budget)
            draw = self._samples if standard is None else self._raw_samples
            out = in_chunks(lambda rows: summarise(draw(rows, None, None)), inputs, chunk)
        shift, unit = standard or (0.0, 1.0)
        out = tuple(
            _as_float64(v) * unit + (shift if located else 0.0)
            for v, located in zip(out, shift_by, strict=True)
        )
        _check_finite_predictions(out, inputs, where)
        return out

    def _where_in(self, method: str) -> str:
        return f"{type(self).__name__}.{method}"

    def predict(self, X: Any, return_std: bool = False):
        """Posterior predictive mean ``(n,)``; with ``return_std``, also the predictive sd."""
        inputs = self._check_predict_input(X, self._where_in("predict"))
        closed = self._closed_form(inputs, "predictive")
        if closed is not None:
            mean, std = closed.mean(), closed.std()
        else:
            mean, std = self._summarise(
                inputs,
                lambda pred: (predictive_mean(pred), predictive_std(pred)),
                self._where_in("predict"),
                (True, False),
                MOMENTS,
            )
        return (_as_float64(mean), _as_float64(std)) if return_std else _as_float64(mean)

    def predict_interval(self, X: Any, level: float = 0.95, kind: str = "predictive"):
        """Central interval ``(lower, upper)`` of a new ``y`` (``kind="predictive"``, noise
        included), of the regression function (``kind="mean"``: the credible band), or the
        central predictive interval whose level is set on the rows the fit held out so that it
        covers ``level`` of new rows (``kind="conformal"``: split conformal prediction, for
        the network methods that hold rows out, see :func:`~posterax.estimators.held_out.
        interval_scores`)."""
        where = self._where_in("predict_interval")
        inputs = self._check_predict_input(X, where)
        level = check_level(level, where=where)
        check_choice(kind, name="kind", where=where, allowed=(*KINDS, "conformal"))
        if kind == "conformal":
            level, kind = conformal_level(self._interval_scores(where), level, where), KINDS[0]
        closed = self._closed_form(inputs, kind)
        if closed is not None:
            tails = ((1 - level) / 2, (1 + level) / 2)
            return _as_float64(closed.ppf(tails[0])), _as_float64(closed.ppf(tails[1]))
        tails = [(1 - level) / 2, (1 + level) / 2]  # predictive_interval's quantiles
        (bounds,) = self._summarise(
            inputs,
            lambda pred: (predictive_quantiles(pred, tails, kind),),
            where,
            (True,),
            quantiles(tails, kind),
        )
        return _as_float64(bounds[0]), _as_float64(bounds[1])

    def _interval_scores(self, where: str) -> np.ndarray:
        info = getattr(getattr(self, "posterior_", None), "info", None) or {}
        if INTERVAL_SCORES not in info:
            raise ValueError(
                f"The 'kind' parameter of {where} can be 'conformal' only after a fit that held "
                "rows out of training (the network methods trained by optimisation or Laplace, "
                "with validation_fraction set, as by default). This fit held out none. Use "
                "kind='predictive', or px.conformal.SplitConformalRegressor with rows of your own."
            )
        return np.asarray(info[INTERVAL_SCORES], np.float64)

    def predict_quantiles(self, X: Any, q: Any, kind: str = "predictive") -> np.ndarray:
        """Predictive quantiles, shape ``(len(q), n)``."""
        where = self._where_in("predict_quantiles")
        inputs = self._check_predict_input(X, where)
        check_choice(kind, name="kind", where=where, allowed=KINDS)
        levels = [check_level(float(v), name="q", where=where) for v in np.atleast_1d(q)]
        closed = self._closed_form(inputs, kind)
        if closed is not None:
            return np.stack([_as_float64(closed.ppf(v)) for v in levels])
        (values,) = self._summarise(
            inputs,
            lambda pred: (predictive_quantiles(pred, levels, kind),),
            where,
            (True,),
            quantiles(levels, kind),
        )
        return values

    def predict_samples(
        self, X: Any, n_samples: int | None = None, rng_key: Any = None
    ) -> PredictiveSamples:
        """Per-draw predictive ``mean``/``scale`` of shape ``(S, n)`` in the units of ``y``.

        ``n_samples`` defaults to all stored draws (1000 for a closed-form posterior);
        ``rng_key`` defaults to one derived from ``random_state``, so repeated calls agree.
        """
        where = self._where_in("predict_samples")
        inputs = self._check_predict_input(X, where)
        if n_samples is not None:
            n_samples = check_positive_int(n_samples, name="n_samples", where=where)
        return self._samples(inputs, n_samples, rng_key)


__all__ = ["PredictiveRegressorMixin"]
