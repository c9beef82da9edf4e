"""``px.methods.Laplace(tune="validation")``: the prior precision chosen on held-out rows.
On digits the evidence picks a broad prior whose predictive is under-confident (test NLL about
5x the MAP's); the held-out rows pick one whose predictive is its own MAP's or better."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import posterax as px


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.3, stratify=y, random_state=0)


def _fit(method, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return px.BayesianClassifier(
            network=(32,), method=method, random_state=0, progress_bar=False
        ).fit(X, y)


@pytest.mark.slow  # ~10-18 s: two Laplace fits and a 41-point grid
def test_validation_tuning_is_not_worse_than_its_map_and_beats_the_evidence(digits):
    X_train, X_test, y_train, y_test = digits
    training = px.methods.Training(num_epochs=15, learning_rate=5e-3, batch_size=64)
    nll = {}
    for tune in ("marglik", "validation"):
        clf = _fit(
            px.methods.Laplace(structure="kron", tune=tune, training=training), X_train, y_train
        )
        assert clf.posterior_.info["tune"] == tune
        nll[tune] = float(px.metrics.log_loss(y_test, clf.predict_proba(X_test)))
    post = clf.posterior_  # the validation-tuned one: its own MAP (trained on 90% of the rows)
    scaled = clf._check_predict_input(X_test, "test")
    logits = post.apply_fn(post.distribution.mean(), jnp.asarray(scaled))
    own_map = float(px.metrics.log_loss(y_test, np.asarray(jax.nn.softmax(logits, -1))))
    assert nll["validation"] < 0.5 * nll["marglik"], nll
    assert nll["validation"] <= own_map + 0.01, (nll, own_map)
    assert float(np.ravel(post.info["prior_precision"])[0]) >= 1.0  # narrower than the evidence's


def test_an_unknown_tuning_is_named(digits):
    X_train, _, y_train, _ = digits
    method = px.methods.Laplace(tune="cv", training=px.methods.Training(num_epochs=1))
    with pytest.raises(ValueError, match=r"'tune' parameter.*'marglik', 'validation'.*'cv'"):
        _fit(method, X_train[:50], y_train[:50])
