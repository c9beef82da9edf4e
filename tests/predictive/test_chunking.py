"""Sample-based predictions computed over row chunks equal the unchunked ones (same draws)."""

import numpy as np
import pytest

import posterax as px
from posterax.predictive.chunking import in_chunks, rows_per_chunk


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, (60, 1))
    y = np.sin(X[:, 0]) + 0.2 * rng.normal(size=60)
    reg = px.BayesianRegressor(
        method=px.methods.VI(num_samples=40, training=px.methods.Training(num_epochs=20)),
        network=(8,),
        progress_bar=False,
        random_state=0,
    ).fit(X, y)
    labels = (X[:, 0] > 0).astype(int) + (X[:, 0] > 1.5)
    clf = px.BayesianClassifier(
        method=px.methods.Ensemble(num_members=3, training=px.methods.Training(num_epochs=20)),
        network=(8,),
        progress_bar=False,
        random_state=0,
    ).fit(X, labels)
    return reg, clf, rng.uniform(-4, 4, (103, 1))


def _tiny_budget(est):
    # 103 rows per 40 draws of an 8-unit network: this budget forces chunks of a few rows.
    est._prediction_budget_bytes = 4 * est._prediction_bytes_per_row() * 7  # 4: the safety factor
    return est


def test_regression_summaries_do_not_depend_on_the_chunks(fitted):
    reg, _, X_new = fitted
    whole = (
        reg.predict(X_new, return_std=True),
        reg.predict_interval(X_new, 0.9),
        reg.predict_quantiles(X_new, [0.1, 0.5]),
    )
    _tiny_budget(reg)
    assert rows_per_chunk(103, reg._prediction_bytes_per_row(), reg._prediction_budget_bytes) == 7
    chunked = (
        reg.predict(X_new, return_std=True),
        reg.predict_interval(X_new, 0.9),
        reg.predict_quantiles(X_new, [0.1, 0.5]),
    )
    del reg._prediction_budget_bytes
    for a, b in zip(
        np.concatenate([np.ravel(w) for w in whole[0] + whole[1]]),
        np.concatenate([np.ravel(c) for c in chunked[0] + chunked[1]]),
        strict=True,
    ):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-6)
    np.testing.assert_allclose(chunked[2], whole[2], rtol=1e-5, atol=1e-6)


def test_class_probabilities_do_not_depend_on_the_chunks(fitted):
    _, clf, X_new = fitted
    whole = clf.predict_proba(X_new)
    _tiny_budget(clf)
    chunked = clf.predict_proba(X_new)
    del clf._prediction_budget_bytes
    assert chunked.shape == (103, 3)
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-7)


def test_chunk_size_follows_the_budget():
    assert rows_per_chunk(1000, None, 10) == 1000  # unknown cost: no chunking
    assert rows_per_chunk(1000, 100, 4 * 100 * 25) == 25
    assert rows_per_chunk(1000, 10**9, 1) == 1  # never below one row
    out = in_chunks(lambda r: r.sum(axis=1), np.ones((10, 3)), 3)
    np.testing.assert_array_equal(out, np.full(10, 3.0))
