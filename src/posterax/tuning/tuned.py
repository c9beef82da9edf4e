"""``px.Tuned``: a budgeted hyperparameter search (optuna's TPE) around any posterax estimator,
scored on validation rows carved from the training data only, then refitted on all of it."""

from __future__ import annotations

import contextlib
import math
import numbers
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import optuna
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from posterax.compilation import free_compiled_programs_if_crowded
from posterax.data.validation import check_fraction, check_positive_float
from posterax.methods import Method, method_from_settings, method_names
from posterax.tuning.space import check_parameter, method_object, resolve_space
from posterax.tuning.validation import (
    check_cv,
    fold_rows,
    validation_nll_rows,
    validation_rows,
)


def _best_has(name: str) -> Callable[[Any], bool]:
    """``available_if`` check: the best estimator (or, before fit, the given one) has ``name``."""

    def check(self: Tuned) -> bool:
        inner = getattr(self, "best_estimator_", self.estimator)
        getattr(inner, name)  # raises AttributeError, which hides the method
        return True

    return check


@contextlib.contextmanager
def _optuna_verbosity(verbose: bool) -> Iterator[None]:
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO if verbose else optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


def _rows(data: Any, rows: np.ndarray) -> Any:
    """``data[rows]`` for arrays and for pandas frames / series (by position)."""
    if hasattr(data, "iloc"):
        return data.iloc[rows]
    return np.asarray(data)[rows]


# default_margin="auto" with per-row losses: one paired standard error (measured: see Tuned).
AUTO_MARGIN = 1.0


class Tuned(MetaEstimatorMixin, BaseEstimator):
    """A search over an estimator's settings within a budget of trials or seconds (optuna's
    seeded TPE sampler), each trial scored on a validation split carved from the training data
    only; the best settings are refitted on all the training data.

    A search compiles new programs for most settings; once they crowd the process's memory
    maps (half of what Linux allows), they are freed between trials (``jax.clear_caches()``,
    see :func:`free_compiled_programs_if_crowded`), so a search of hundreds of trials does not
    crash XLA. Other JAX functions of the process then recompile on their next call.

    Parameters
    ----------
    estimator : estimator
        A posterax estimator (``px.BayesianRegressor``, ``px.BayesianClassifier``, or any
        scikit-learn estimator with ``predict_proba`` or ``predict_samples`` /
        ``predict(return_std=True)``). Each trial fits a clone with
        ``set_params(**sampled)``; its ``random_state`` is kept, so trials differ only in the
        settings searched.
    n_trials : int >= 1 or None
        At most this many trials (the first is the estimator as given, with
        ``include_default``).
    timeout : float > 0 or None
        Start no trial after this many seconds of search (optuna's ``timeout``: the trial
        running then finishes). At least one of ``n_trials`` and ``timeout`` is required; with
        both, whichever comes first stops the search. The refit is not counted.
    space : None, dict or callable
        ``None``: :func:`posterax.tuning.default_space` for the estimator's method (learning
        rate, epochs, prior scale, width and depth of the built-in MLP, dropout rate, the
        likelihood). A dict ``{set_params name: optuna distribution or list of values}``, e.g.
        ``{"method__training__learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
        "likelihood": ["homoscedastic", "heteroscedastic"]}``, or a callable
        ``space(trial) -> {set_params name: value}`` that asks the ``optuna.Trial``.
    validation_fraction : float in (0, 1)
        Share of the training rows held out to score the trials (stratified by class for a
        classifier). A method's own early stopping (``Training(validation_fraction=...)``)
        holds its rows out of the remaining part.
    cv : int >= 2 or None
        Score each trial by K-fold cross-validation on the training rows instead (mean loss
        over the folds; ``validation_fraction`` unused): K fits per trial, but folds of one size
        reuse one compiled training program, so on small data (where compiling dominates) a
        trial costs little more than with one split, and the choice is far less noisy.
    loss : callable, optional
        ``loss(fitted_estimator, X_val, y_val)`` to minimise: a float, or one value per
        validation row (its mean is the trial's loss, and ``default_margin`` can compare two
        trials row by row). Default: :func:`~posterax.tuning.validation_nll_rows`, the
        negative log-likelihood of each row (log loss for classifiers, the predictive
        mixture's NLL for regressors).
    search_method : str, method object or None
        The method each trial fits in place of the estimator's own (e.g. ``"map"`` for a deep
        ensemble: a trial trains one network instead of five), its training settings taken
        from the estimator's method unless it has its own; the best settings are refitted
        with the estimator's own method, and ``likelihood="auto"`` means the own method's
        likelihood in the trials too. A cheaper stand-in, on the assumption that it ranks the
        settings as the real method would (an ensemble's members are MAP networks with the same
        settings; on UCI Boston it ranked them less well, see the README); it must accept
        every sampled parameter (MAP has no ``dropout_rate``). ``None`` (the default): the
        trials fit the estimator's own method.
    include_default : bool
        Make the first trial the estimator as given, so the search reports how the defaults do
        and keeps them when nothing sampled beats them on the validation rows.
    default_margin : float >= 0 or "auto"
        Keep the estimator as given (the first trial) unless the best trial's per-row
        validation loss is lower by more than this many paired standard errors (a one-standard-
        error rule with the defaults as the reference, Hastie et al. 2009, 7.10; with 45-145
        validation rows, as on UCI, the best of 20 trials often wins by noise: tuned MAP on
        20 Wine splits lost 0.011 test LL to its defaults with ``0`` and gained 0.007 with
        ``1``, Boston +0.053 and +0.045). ``0``: the best trial, however small its lead.
        A margin above 0 needs per-row losses (the default ``loss``); ``"auto"`` (the
        default) is 1 with them and 0 with a ``loss`` of one value per trial.
    random_state : int or None
        Seeds the validation split and the sampler: the same seed gives the same trials and the
        same best settings (with an ``n_trials`` budget; a ``timeout`` makes the number of
        trials depend on the machine).
    verbose : bool
        Show optuna's log of each trial (silenced by default).

    Attributes
    ----------
    best_estimator_ : estimator
        The best settings refitted on all the training rows; ``predict*``, ``score`` and
        ``classes_`` delegate to it.
    best_params_ : dict
        The ``set_params`` arguments of the best trial (``{}``: the estimator as given).
    best_loss_ : float
        Its validation loss.
    best_index_ : int
        Its row in ``trials_``.
    selection_ : dict
        How the best trial compared with the first (the defaults), row by row: ``gain`` (mean
        loss decrease), ``standard_error`` (of the paired differences), ``kept_default`` and
        ``lowest_index`` (the trial with the lowest loss). Empty without per-row losses or a
        default trial.
    trials_ : dict of lists
        One entry per trial (``pandas.DataFrame(tuned.trials_)`` makes a table): ``number``,
        ``params`` (set_params arguments), ``search_params`` (what optuna sampled), ``loss``,
        ``seconds`` (fit and score), ``state``.
    n_trials_ : int
        Trials run.
    splits_ : list of (fit_rows, validation_rows)
        Indices into the training rows: one pair, or one per fold with ``cv``.
    search_seconds_, refit_seconds_ : float
    study_ : optuna.Study

    Examples
    --------
    >>> import numpy as np, posterax as px
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-2, 2, (120, 1)); y = X[:, 0] + 0.1 * rng.normal(size=120)
    >>> reg = px.BayesianRegressor(px.methods.MAP(px.methods.Training(num_epochs=50)),
    ...                            network=(8,), progress_bar=False, random_state=0)
    >>> tuned = px.Tuned(reg, n_trials=2, space={"prior_scale": [0.001, 0.3]},
    ...                  random_state=0).fit(X, y)
    >>> tuned.n_trials_, tuned.trials_["params"][0]   # the first trial: the estimator as given
    (2, {})
    >>> lo, hi = tuned.predict_interval(X, level=0.9)  # from the best settings, refitted
    """

    def __init__(
        self,
        estimator: Any,
        n_trials: int | None = 20,
        timeout: float | None = None,
        space: Any = None,
        validation_fraction: float = 0.1,
        cv: int | None = None,
        loss: Callable[..., float] | None = None,
        search_method: Any = None,
        include_default: bool = True,
        default_margin: float | str = "auto",
        random_state: int | None = 0,
        verbose: bool = False,
    ):
        self.estimator = estimator
        self.n_trials = n_trials
        self.timeout = timeout
        self.space = space
        self.validation_fraction = validation_fraction
        self.cv = cv
        self.loss = loss
        self.search_method = search_method
        self.include_default = include_default
        self.default_margin = default_margin
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ checks
    def _check_budget(self) -> tuple[int | None, float | None]:
        n_trials, timeout = self.n_trials, self.timeout
        if n_trials is None and timeout is None:
            raise ValueError(
                "px.tuning.Tuned needs a budget: 'n_trials' and 'timeout' are both None. Pass "
                "n_trials=20 (trials), timeout=300 (seconds), or both."
            )
        if n_trials is not None and (
            not isinstance(n_trials, numbers.Integral) or isinstance(n_trials, bool) or n_trials < 1
        ):
            raise ValueError(
                f"The 'n_trials' parameter of px.tuning.Tuned must be an int >= 1 or None. Got "
                f"{n_trials!r}. Pass e.g. n_trials=20."
            )
        if timeout is not None:
            check_positive_float(
                timeout,
                name="timeout",
                where="px.tuning.Tuned",
                also="None or ",
                example="300 (seconds)",
            )
        return (None if n_trials is None else int(n_trials)), (
            None if timeout is None else float(timeout)
        )

    def _base(self) -> BaseEstimator:
        """A clone of ``estimator`` with a method string made its object, so nested names
        (``method__training__learning_rate``) can be set."""
        if not hasattr(self.estimator, "get_params") or not hasattr(self.estimator, "fit"):
            raise ValueError(
                "The 'estimator' parameter of px.tuning.Tuned must be a scikit-learn style "
                f"estimator (get_params, set_params, fit). Got {self.estimator!r}."
            )
        base = clone(self.estimator)
        method = base.get_params(deep=False).get("method")
        if isinstance(method, str) and method_object(base) is not None:
            base.set_params(method=method_object(base))
        return base

    def _search_base(self, base: BaseEstimator) -> BaseEstimator:
        """The estimator the trials fit: ``base``, or with ``search_method`` in its method's
        place (its training settings those of ``base``'s method unless it has its own)."""
        if self.search_method is None:
            return base
        own = method_object(base)
        if isinstance(self.search_method, str) and self.search_method in method_names():
            stand_in = method_from_settings(self.search_method, {})
        elif isinstance(self.search_method, Method):
            stand_in = clone(self.search_method)
        else:
            raise ValueError(
                "The 'search_method' parameter of px.tuning.Tuned must be None, a method name "
                f"({', '.join(repr(m) for m in method_names())}) or a method object such as "
                f"px.methods.MAP(). Got {self.search_method!r}."
            )
        if own is None:
            raise ValueError(
                "The 'search_method' parameter of px.tuning.Tuned replaces the estimator's "
                f"network method, but {type(base).__name__} has none (method="
                f"{base.get_params(deep=False).get('method')!r}). Use search_method=None."
            )
        stand_in_params = stand_in.get_params(deep=False)
        if "training" in stand_in_params and stand_in_params["training"] is None:
            training = own.get_params(deep=False).get("training")
            if training is not None:
                stand_in.set_params(training=clone(training))
        searched = clone(base).set_params(method=stand_in)
        if getattr(base, "likelihood", None) == "auto" and hasattr(base, "resolved_likelihood"):
            # The stand-in fits the model the refit will: "auto" as the own method means it
            # (an ensemble's heteroscedastic outputs, not MAP's one noise sd).
            searched.set_params(likelihood=base.resolved_likelihood(own))
        return searched

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any) -> Tuned:
        """Search on a validation split of (``X``, ``y``), then refit the best on all of it."""
        n_trials, timeout = self._check_budget()
        fraction = check_fraction(
            self.validation_fraction,
            name="validation_fraction",
            where="px.tuning.Tuned",
            meaning="the share of the training rows each trial is scored on",
        )
        base = self._base()
        searched = self._search_base(base)
        space = resolve_space(self.space, base)
        if searched is not base and not callable(self.space):
            # The names a default or dict space sets are known: refuse a stand-in that lacks
            # one before any fit (a callable space is checked trial by trial).
            with _optuna_verbosity(False):
                probe = optuna.create_study().ask()
            for name in space(probe):
                check_parameter(searched, name, role="search_method")
        loss = self.loss if self.loss is not None else validation_nll_rows
        margin = self._check_margin()
        if y is None:
            raise ValueError("The 'y' parameter of px.tuning.Tuned.fit is required. Got None.")
        y_arr = np.asarray(y)
        if len(y_arr) != len(X):
            raise ValueError(
                f"px.tuning.Tuned.fit: X has {len(X)} rows and y {len(y_arr)}. Pass one target "
                "per row."
            )
        n_folds = check_cv(self.cv)
        if n_folds is None:
            splits = [validation_rows(y_arr, fraction, is_classifier(base), self.random_state)]
        else:
            splits = fold_rows(y_arr, n_folds, is_classifier(base), self.random_state)
        parts = [(_rows(X, a), _rows(y, a), _rows(X, b), _rows(y, b)) for a, b in splits]
        self.splits_ = splits

        records: list[dict[str, Any]] = []
        row_losses: list[np.ndarray | None] = []  # per trial: each validation row's loss

        def objective(trial: optuna.Trial) -> float:
            default = self.include_default and trial.number == 0
            params = {} if default else dict(space(trial))
            for name in params:
                check_parameter(base, name)
                if searched is not base:
                    check_parameter(searched, name, role="search_method")
            start = time.perf_counter()
            losses, rows = [], []
            for X_fit, y_fit, X_val, y_val in parts:
                candidate = clone(searched).set_params(**params).fit(X_fit, y_fit)
                values = np.asarray(loss(candidate, X_val, y_val), np.float64)
                losses.append(float(np.mean(values)))
                rows.append(values if values.ndim == 1 and len(values) == len(y_val) else None)
            del candidate
            free_compiled_programs_if_crowded()
            value = float(np.mean(losses))
            row_losses.append(None if any(r is None for r in rows) else np.concatenate(rows))
            if row_losses[-1] is None and margin and self.include_default:
                # found on the first trial, not after the whole budget is spent
                raise ValueError(
                    "The 'default_margin' parameter of px.tuning.Tuned compares trials row by "
                    f"row (default_margin={margin:g}), but the 'loss' returned one value per "
                    "trial. Return one value per validation row, or pass default_margin=0."
                )
            seconds = time.perf_counter() - start
            trial.set_user_attr("default", default)
            records.append(
                {
                    "number": trial.number,
                    "params": params,
                    "search_params": dict(trial.params),
                    "loss": value,
                    "seconds": seconds,
                    "state": "complete" if math.isfinite(value) else "failed",
                }
            )
            return value if math.isfinite(value) else float("nan")  # NaN: optuna marks failed

        start = time.perf_counter()
        with _optuna_verbosity(self.verbose):
            sampler = optuna.samplers.TPESampler(seed=self.random_state)
            study = optuna.create_study(direction="minimize", sampler=sampler)
            study.optimize(objective, n_trials=n_trials, timeout=timeout)
        self.search_seconds_ = time.perf_counter() - start
        complete = [r for r in records if r["state"] == "complete"]
        if not complete:
            raise ValueError(
                f"px.tuning.Tuned: none of the {len(records)} trial(s) gave a finite validation "
                "loss (every fit diverged or predicted NaN). Narrow the space (e.g. lower "
                "learning rates) or raise the budget."
            )
        best = min(complete, key=lambda r: r["loss"])
        self.selection_ = self._compare_with_default(records, row_losses, best, margin)
        if self.selection_.get("kept_default"):
            best = records[0]
        self.best_index_ = records.index(best)
        self.study_ = study
        self.trials_ = {key: [r[key] for r in records] for key in records[0]}
        self.n_trials_ = len(records)
        self.best_params_ = dict(best["params"])
        self.best_loss_ = best["loss"]
        start = time.perf_counter()
        self.best_estimator_ = clone(base).set_params(**self.best_params_).fit(X, y)
        self.refit_seconds_ = time.perf_counter() - start
        if hasattr(self.best_estimator_, "n_features_in_"):
            self.n_features_in_ = self.best_estimator_.n_features_in_
        return self

    def _check_margin(self) -> float | None:
        """The margin in standard errors; ``None`` for ``"auto"``."""
        margin = self.default_margin
        if isinstance(margin, str) and margin == "auto":
            return None
        return check_positive_float(
            margin,
            name="default_margin",
            where="px.tuning.Tuned",
            zero_allowed=True,
            also="'auto' or ",
            example="1.0 (standard errors; 0 for the best trial)",
        )

    def _compare_with_default(
        self,
        records: list[dict[str, Any]],
        row_losses: list[np.ndarray | None],
        best: dict[str, Any],
        margin: float | None,
    ) -> dict[str, Any]:
        """The best trial against the first (the defaults), row by row: the mean loss gain,
        its standard error, and whether the defaults are kept (gain <= margin * SE)."""
        if not self.include_default or records[0]["state"] != "complete":
            return {}
        lowest = records.index(best)
        ours, theirs = row_losses[lowest], row_losses[0]
        if ours is None or theirs is None:  # a loss of one value per trial: no rows to pair
            return {}
        differences = theirs - ours
        n = len(differences)
        standard_error = float(np.std(differences, ddof=1) / np.sqrt(n)) if n > 1 else math.inf
        gain = float(np.mean(differences))
        margin = AUTO_MARGIN if margin is None else margin
        return {
            "gain": gain,
            "standard_error": standard_error,
            "kept_default": lowest != 0 and not gain > margin * standard_error,
            "lowest_index": lowest,
        }

    # ------------------------------------------------------------------ delegation
    @property
    def classes_(self) -> np.ndarray:
        check_is_fitted(self)
        return self.best_estimator_.classes_

    @available_if(_best_has("predict"))
    def predict(self, X: Any, *args: Any, **kwargs: Any) -> Any:
        """The best estimator's ``predict``."""
        check_is_fitted(self)
        return self.best_estimator_.predict(X, *args, **kwargs)

    @available_if(_best_has("predict_proba"))
    def predict_proba(self, X: Any) -> Any:
        """The best estimator's ``predict_proba``."""
        check_is_fitted(self)
        return self.best_estimator_.predict_proba(X)

    @available_if(_best_has("predict_interval"))
    def predict_interval(self, X: Any, *args: Any, **kwargs: Any) -> Any:
        """The best estimator's ``predict_interval``."""
        check_is_fitted(self)
        return self.best_estimator_.predict_interval(X, *args, **kwargs)

    @available_if(_best_has("predict_quantiles"))
    def predict_quantiles(self, X: Any, *args: Any, **kwargs: Any) -> Any:
        """The best estimator's ``predict_quantiles``."""
        check_is_fitted(self)
        return self.best_estimator_.predict_quantiles(X, *args, **kwargs)

    @available_if(_best_has("predict_samples"))
    def predict_samples(self, X: Any, *args: Any, **kwargs: Any) -> Any:
        """The best estimator's ``predict_samples``."""
        check_is_fitted(self)
        return self.best_estimator_.predict_samples(X, *args, **kwargs)

    @available_if(_best_has("score"))
    def score(self, X: Any, y: Any, *args: Any, **kwargs: Any) -> float:
        """The best estimator's ``score`` (R² for regressors, accuracy for classifiers)."""
        check_is_fitted(self)
        return self.best_estimator_.score(X, y, *args, **kwargs)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "best_estimator_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = self.estimator.__sklearn_tags__()
        tags.estimator_type = inner.estimator_type
        tags.target_tags.required = True
        if inner.classifier_tags is not None:
            tags.classifier_tags = inner.classifier_tags
        if inner.regressor_tags is not None:
            tags.regressor_tags = inner.regressor_tags
        return tags


__all__ = ["Tuned"]
