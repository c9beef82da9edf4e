"""``px.Tuned(default_margin=k)``: the defaults (the first trial) are kept unless the best
trial's per-row validation loss is lower by more than ``k`` paired standard errors."""

import numpy as np
import pytest
from scipy.stats import ttest_rel
from sklearn.base import BaseEstimator, RegressorMixin

import posterax as px

DEFAULT, CANDIDATE = 0.3, 0.27


class Constant(RegressorMixin, BaseEstimator):
    """Predicts ``c`` everywhere: trials whose losses are known in closed form."""

    def __init__(self, c=DEFAULT):
        self.c = c

    def fit(self, X, y):
        self.c_ = self.c
        return self

    def predict(self, X):
        return np.full(len(X), self.c_)


def squared_error_rows(estimator, X, y):
    return (np.asarray(y) - estimator.predict(X)) ** 2


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(4)
    return np.zeros((200, 1)), rng.normal(size=200)


def _search(data, **kwargs):
    X, y = data
    return px.Tuned(
        Constant(), n_trials=2, space={"c": [CANDIDATE]}, loss=squared_error_rows, **kwargs
    ).fit(X, y)


def test_the_defaults_are_kept_unless_the_lead_exceeds_the_margin(data):
    _, y = data
    plain = _search(data, default_margin=0)  # the lowest loss wins
    val = plain.splits_[0][1]
    # The paired t statistic of the candidate's lead, from SciPy.
    t = ttest_rel((y[val] - DEFAULT) ** 2, (y[val] - CANDIDATE) ** 2)
    assert 0 < t.statistic < 2  # a lead, but a small one
    assert plain.best_params_ == {"c": CANDIDATE}
    assert plain.selection_["gain"] / plain.selection_["standard_error"] == pytest.approx(
        t.statistic
    )
    below, above = (
        _search(data, default_margin=t.statistic * 0.9),
        _search(data, default_margin=t.statistic * 1.1),
    )
    assert below.best_params_ == {"c": CANDIDATE} and not below.selection_["kept_default"]
    assert above.best_params_ == {} and above.selection_["kept_default"]
    assert above.best_loss_ == above.trials_["loss"][0]
    assert above.best_estimator_.c_ == DEFAULT


def test_a_loss_of_one_value_per_trial_cannot_use_a_margin(data):
    X, y = data

    def mean_loss(estimator, X_val, y_val):
        return float(np.mean(squared_error_rows(estimator, X_val, y_val)))

    search = px.Tuned(Constant(), n_trials=2, space={"c": [CANDIDATE]}, loss=mean_loss)
    assert search.fit(X, y).selection_ == {}  # "auto": no margin without per-row losses
    assert search.fit(X, y).best_params_ == {"c": CANDIDATE}  # the lowest mean loss
    calls = []

    def counted(estimator, X_val, y_val):
        calls.append(1)
        return mean_loss(estimator, X_val, y_val)

    search.set_params(default_margin=1.0, loss=counted, n_trials=5)
    with pytest.raises(ValueError, match="'default_margin' .* one value per validation row"):
        search.fit(X, y)
    assert len(calls) == 1  # refused after the first trial, not after the budget


def test_auto_is_one_standard_error_with_per_row_losses(data):
    auto = _search(data)  # the candidate leads by 1.4 standard errors: the defaults go
    assert auto.selection_["gain"] > auto.selection_["standard_error"]
    assert auto.best_params_ == {"c": CANDIDATE}
    assert _search(data, default_margin=1.0).best_params_ == auto.best_params_


@pytest.mark.parametrize("margin", [-1.0, float("nan"), True, "1", "automatic"])
def test_a_bad_margin_is_refused_before_any_fit(data, margin):
    with pytest.raises(ValueError, match="'default_margin' .* 'auto' or a finite float >= 0"):
        _search(data, default_margin=margin)
