"""scikit-learn's own estimator checks.

NUTS is left out of ``parametrize_with_checks``: its ~40 checks would each compile and run a
sampler (minutes). Its contract (fit returns self, learned attributes end in ``_``, clone and
get_params round trip) is checked by the shorter test below.
"""

import numpy as np
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

import posterax as px


@parametrize_with_checks(
    [
        px.BayesianLinearRegression(method="exact"),
        px.BayesianLinearRegression(method="map"),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_nuts_follows_the_contract(seed_data):
    X, y, _ = seed_data
    est = px.BayesianLinearRegression(
        method="nuts", num_warmup=200, num_samples=200, random_state=3
    )
    twin = clone(est)
    assert twin.get_params() == est.get_params()
    assert est.fit(X, y) is est
    assert est.n_features_in_ == 1 and est.coef_.shape == (1,)
    assert not hasattr(twin, "posterior_")
    assert np.isfinite(est.predict(X)).all()
