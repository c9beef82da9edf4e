"""Pool-based active learning: refit, score the unlabelled pool, label a batch, repeat.

:class:`ActiveLearner` takes any estimator with the scikit-learn contract plus
``predict_samples(X, n_samples=...)`` returning a :class:`~posterax.PredictiveSamples`
(``px.BayesianClassifier``, ``px.BayesianRegressor`` or your own); it is cloned and refitted
from scratch every round and scored on a test set, giving the learning curve.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import jax
import numpy as np
from sklearn.base import clone, is_classifier

from posterax.active.acquisition import Acquisition, get_acquisition
from posterax.compilation import free_compiled_programs_if_crowded
from posterax.data.validation import check_features, check_positive_int, rng_key_from


@dataclasses.dataclass
class LearningCurve:
    """Test score after each round of :meth:`ActiveLearner.run`.

    ``n_labelled[r]`` labelled points gave test ``scores[r]`` (accuracy for classifiers, RMSE
    for regressors); ``queried[r]`` are the pool indices labelled after round ``r``.
    """

    acquisition: str
    metric: str
    n_labelled: np.ndarray
    scores: np.ndarray
    queried: list[np.ndarray]
    labelled: np.ndarray
    fit_seconds: list[float]

    def area(self) -> float:
        """Area under the curve divided by its width: the score averaged over label budgets
        (trapezoid rule; higher is better for accuracy, lower for RMSE)."""
        x, s = self.n_labelled.astype(float), self.scores
        if len(x) < 2:
            return float(s[0])
        return float(np.sum((s[1:] + s[:-1]) / 2 * np.diff(x)) / (x[-1] - x[0]))

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly summary."""
        return {
            "acquisition": self.acquisition,
            "metric": self.metric,
            "n_labelled": self.n_labelled.tolist(),
            "scores": self.scores.tolist(),
            "area": self.area(),
        }


class ActiveLearner:
    """Pool-based active learning with a Bayesian estimator.

    Parameters
    ----------
    estimator : estimator
        Unfitted; cloned (``sklearn.base.clone``) and fitted on the labelled set each round.
        Needs ``fit``, ``predict`` and ``predict_samples(X, n_samples=...)``.
    acquisition : str or callable, default "bald"
        A name from :data:`~posterax.active.ACQUISITIONS` or ``f(pred, batch_size, rng_key)``
        returning pool indices.
    batch_size : int, default 10
        Points labelled per round.
    n_rounds : int, default 10
        Rounds of acquisition; the estimator is fitted ``n_rounds + 1`` times.
    n_initial : int, default 20
        Size of the random starting set (for classifiers it holds every class when
        ``n_initial`` allows).
    n_samples : int, optional
        Posterior draws for ``predict_samples`` on the pool; default the estimator's own.
    random_state : int, optional
        Seed of the starting set, tie-breaking and random/sampled acquisitions.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_classification
    >>> import posterax as px
    >>> X, y = make_classification(300, 4, random_state=0)
    >>> ensemble = px.methods.Ensemble(3, training=px.methods.Training(num_epochs=5))
    >>> clf = px.BayesianClassifier(ensemble, network=(8,), progress_bar=False, random_state=0)
    >>> learner = ActiveLearner(clf, "bald", batch_size=5, n_rounds=2, n_initial=10,
    ...                         random_state=0)
    >>> curve = learner.run(X[:200], y[:200], X[200:], y[200:])  # doctest: +SKIP
    >>> curve.n_labelled.tolist()  # doctest: +SKIP
    [10, 15, 20]
    """

    def __init__(
        self,
        estimator: Any,
        acquisition: str | Acquisition = "bald",
        batch_size: int = 10,
        n_rounds: int = 10,
        n_initial: int = 20,
        n_samples: int | None = None,
        random_state: int | None = None,
    ):
        self.estimator = estimator
        self.acquisition = acquisition
        self.batch_size = batch_size
        self.n_rounds = n_rounds
        self.n_initial = n_initial
        self.n_samples = n_samples
        self.random_state = random_state

    def _initial(self, y: np.ndarray, rng: np.random.Generator, classify: bool) -> np.ndarray:
        n = self._n_initial
        if not classify:
            return rng.choice(len(y), size=n, replace=False)
        classes = np.unique(y)
        first = [rng.choice(np.flatnonzero(y == c)) for c in classes] if n >= len(classes) else []
        rest = np.setdiff1d(np.arange(len(y)), first)
        more = rng.choice(rest, size=n - len(first), replace=False)
        return np.r_[np.asarray(first, dtype=int), more]

    def _check(self, X_pool, y_pool, X_test, y_test):
        where = "ActiveLearner.run"
        for name in ("fit", "predict", "predict_samples"):
            if not callable(getattr(self.estimator, name, None)):
                raise TypeError(
                    f"The 'estimator' parameter of ActiveLearner must have a '{name}' method "
                    f"(scikit-learn contract plus predict_samples). Got "
                    f"{type(self.estimator).__name__}. Use px.BayesianClassifier or "
                    "px.BayesianRegressor."
                )
        # Validated copies: the constructor's arguments stay as given (scikit-learn style).
        self._batch = check_positive_int(self.batch_size, name="batch_size", where="ActiveLearner")
        self._rounds = check_positive_int(
            self.n_rounds, name="n_rounds", where="ActiveLearner", minimum=0
        )
        self._n_initial = check_positive_int(
            self.n_initial, name="n_initial", where="ActiveLearner", minimum=2
        )
        X_pool = check_features(X_pool, where=where, name="X_pool")
        X_test = check_features(X_test, where=where, name="X_test")
        y_pool, y_test = np.asarray(y_pool), np.asarray(y_test)
        for name, y, X in (("y_pool", y_pool, X_pool), ("y_test", y_test, X_test)):
            if y.ndim != 1 or y.shape[0] != X.shape[0]:
                raise ValueError(
                    f"The '{name}' parameter of {where} must be 1-D with one target per row. Got "
                    f"shape {y.shape} for {X.shape[0]} rows."
                )
        needed = self._n_initial + self._rounds * self._batch
        if needed > X_pool.shape[0]:
            raise ValueError(
                f"The 'X_pool' parameter of {where} must hold at least n_initial + n_rounds * "
                f"batch_size = {needed} points. Got {X_pool.shape[0]}. Lower n_rounds or "
                "batch_size, or pass a larger pool."
            )
        return X_pool, y_pool, X_test, y_test

    def run(self, X_pool: Any, y_pool: Any, X_test: Any, y_test: Any) -> LearningCurve:
        """Run the loop; ``y_pool`` plays the oracle that labels the chosen points.

        Returns
        -------
        LearningCurve
            Also stored as ``curve_``; the last fitted estimator is ``estimator_``.
        """
        acquire = get_acquisition(self.acquisition, "ActiveLearner")
        X_pool, y_pool, X_test, y_test = self._check(X_pool, y_pool, X_test, y_test)
        classify = is_classifier(self.estimator)
        key = rng_key_from(self.random_state, where="ActiveLearner")
        rng = np.random.default_rng(self.random_state)
        labelled = self._initial(y_pool, rng, classify)
        n_labelled, scores, queried, seconds = [], [], [], []
        for r in range(self._rounds + 1):
            est = clone(self.estimator)
            start = time.perf_counter()
            est.fit(X_pool[labelled], y_pool[labelled])
            seconds.append(time.perf_counter() - start)
            pred_test = np.asarray(est.predict(X_test))
            if classify:
                scores.append(float(np.mean(pred_test == y_test)))
            else:
                scores.append(float(np.sqrt(np.mean((pred_test - y_test) ** 2))))
            n_labelled.append(len(labelled))
            if r == self._rounds:
                break
            unlabelled = np.setdiff1d(np.arange(X_pool.shape[0]), labelled)
            kwargs = {} if self.n_samples is None else {"n_samples": self.n_samples}
            pred = est.predict_samples(X_pool[unlabelled], **kwargs)
            picked = unlabelled[np.asarray(acquire(pred, self._batch, jax.random.fold_in(key, r)))]
            queried.append(picked)
            labelled = np.r_[labelled, picked]
            free_compiled_programs_if_crowded()  # every round's row count compiles anew
        self.estimator_ = est
        name = (
            self.acquisition
            if isinstance(self.acquisition, str)
            else getattr(self.acquisition, "__name__", "custom")
        )
        self.curve_ = LearningCurve(
            acquisition=name,
            metric="accuracy" if classify else "rmse",
            n_labelled=np.asarray(n_labelled),
            scores=np.asarray(scores),
            queried=queried,
            labelled=labelled,
            fit_seconds=seconds,
        )
        return self.curve_


__all__ = ["ActiveLearner", "LearningCurve"]
