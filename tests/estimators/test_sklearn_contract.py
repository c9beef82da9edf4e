"""scikit-learn's own estimator checks.

NUTS is left out of ``parametrize_with_checks``: its ~40 checks would each compile and run a
sampler (minutes). Its contract (fit returns self, learned attributes end in ``_``, clone and
get_params round trip) is checked by the shorter test below. The network estimators are checked
with ``method="map"`` and a tiny network; the other network methods share that estimator code
(tests/estimators/test_network_conformance.py runs each of them). ``learning_rate=0.05`` lets
five epochs reach the scores that ``check_regressors_train`` / ``check_classifiers_train`` ask
for.
"""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

import posterax as px

_SMALL_NETWORK = {
    "method": px.methods.MAP(
        training=px.methods.Training(num_epochs=5, batch_size=32, learning_rate=0.05)
    ),
    "network": (4,),
    "progress_bar": False,
    "random_state": 0,
}


@parametrize_with_checks(
    [
        px.BayesianLinearRegression(method="exact"),
        px.BayesianLinearRegression(method="map"),
        px.BayesianRegressor(**_SMALL_NETWORK),
        px.BayesianClassifier(**_SMALL_NETWORK),
    ]
)
@pytest.mark.filterwarnings("ignore:The 'batch_size' parameter:UserWarning")  # tiny check data
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_nuts_follows_the_contract(seed_data):
    X, y, _ = seed_data
    est = px.BayesianLinearRegression(
        method=px.methods.NUTS(num_warmup=200, num_samples=200), random_state=3
    )
    twin = clone(est)
    assert twin.get_params() == est.get_params()
    assert est.fit(X, y) is est
    assert est.n_features_in_ == 1 and est.coef_.shape == (1,)
    assert not hasattr(twin, "posterior_")
    assert np.isfinite(est.predict(X)).all()
