"""The prediction methods every Bayesian regressor shares.

A subclass provides ``_check_predict_input(X, where)`` (validated model inputs) and
``_samples(inputs, n_samples, rng_key)`` (a :class:`PredictiveSamples` in the units of ``y``);
one with a closed-form predictive also overrides ``_closed_form(inputs, kind)`` to return a
frozen SciPy distribution, which is then used instead of samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from posterax.base import PredictiveSamples
from posterax.data.validation import check_choice, check_level, check_positive_int
from posterax.predictive import (
    predictive_interval,
    predictive_mean,
    predictive_quantiles,
    predictive_std,
)
from posterax.predictive.chunking import DEFAULT_BUDGET_BYTES, in_chunks, rows_per_chunk

KINDS = ("predictive", "mean")


def _as_float64(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


class PredictiveRegressorMixin:
    """``predict``, ``predict_interval``, ``predict_quantiles`` and ``predict_samples``."""

    # Memory for one chunk of sample-based predictions (see posterax.predictive.chunking).
    _prediction_budget_bytes = DEFAULT_BUDGET_BYTES

    def _closed_form(self, inputs: np.ndarray, kind: str) -> Any:
        return None

    def _summarise(self, inputs: np.ndarray, summarise) -> Any:
        """``summarise(samples of a chunk)`` over row chunks that fit the memory budget; the
        same draws serve every chunk, so the result equals the unchunked one."""
        # A subclass that knows its model's size provides _prediction_bytes_per_row().
        per_row = getattr(self, "_prediction_bytes_per_row", lambda: None)()
        chunk = rows_per_chunk(inputs.shape[0], per_row, self._prediction_budget_bytes)
        return in_chunks(lambda rows: summarise(self._samples(rows, None, None)), inputs, chunk)

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
                inputs, lambda pred: (predictive_mean(pred), predictive_std(pred))
            )
        return (_as_float64(mean), _as_float64(std)) if return_std else _as_float64(mean)

    def predict_interval(self, X: Any, level: float = 0.95, kind: str = "predictive"):
        """Central interval ``(lower, upper)`` of a new ``y`` (``kind="predictive"``, noise
        included) or of the regression function (``kind="mean"``: the credible band)."""
        where = self._where_in("predict_interval")
        inputs = self._check_predict_input(X, where)
        level = check_level(level, where=where)
        check_choice(kind, name="kind", where=where, allowed=KINDS)
        closed = self._closed_form(inputs, kind)
        if closed is not None:
            tails = ((1 - level) / 2, (1 + level) / 2)
            return _as_float64(closed.ppf(tails[0])), _as_float64(closed.ppf(tails[1]))
        lower, upper = self._summarise(
            inputs, lambda pred: tuple(predictive_interval(pred, level, kind))
        )
        return _as_float64(lower), _as_float64(upper)

    def predict_quantiles(self, X: Any, q: Any, kind: str = "predictive") -> np.ndarray:
        """Predictive quantiles, shape ``(len(q), n)``."""
        where = self._where_in("predict_quantiles")
        inputs = self._check_predict_input(X, where)
        check_choice(kind, name="kind", where=where, allowed=KINDS)
        levels = [check_level(float(v), name="q", where=where) for v in np.atleast_1d(q)]
        closed = self._closed_form(inputs, kind)
        if closed is not None:
            return np.stack([_as_float64(closed.ppf(v)) for v in levels])
        return _as_float64(
            self._summarise(inputs, lambda pred: predictive_quantiles(pred, levels, kind))
        )

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
