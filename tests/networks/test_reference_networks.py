"""The reference CNNs (posterax.networks.reference) as ordinary user networks: shapes through
the NNX adapter, the dropout variant, clear errors for bad images and labels through the
estimator, and (slow) the published accuracies with MAP."""

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import posterax as px
from posterax.estimators.network_inputs import encode_seen_labels
from posterax.networks import as_network
from posterax.networks.reference import MNIST1DCNN, DigitsCNN, reference_training

SHAPES = [(DigitsCNN, (8, 8, 1)), (MNIST1DCNN, (40, 1))]


def _n_params(net):
    return sum(leaf.size for leaf in jax.tree_util.tree_leaves(nnx.state(net, nnx.Param)))


def _adapter(net, shape):
    return as_network(net, np.zeros((2, *shape), np.float32), jax.random.key(0), where="test")


@pytest.mark.parametrize(
    ("cls", "shape", "n_params"),
    [(DigitsCNN, (8, 8, 1), 38_282), (MNIST1DCNN, (40, 1), 5_210)],
)
def test_shapes_through_the_adapter(cls, shape, n_params):
    adapter = _adapter(cls(num_classes=7, rngs=nnx.Rngs(0)), shape)
    assert adapter.kind == "nnx" and not adapter.has_dropout
    out = jax.eval_shape(adapter.apply, adapter.initial, np.zeros((3, *shape), np.float32))
    assert out.shape == (3, 7)
    assert _n_params(cls(rngs=nnx.Rngs(0))) == n_params  # 10 classes: the documented sizes


@pytest.mark.parametrize(("cls", "shape"), SHAPES)
def test_dropout_variant_has_dropout_layers(cls, shape):
    adapter = _adapter(cls(dropout_rate=0.5, rngs=nnx.Rngs(0)), shape)
    assert adapter.has_dropout
    x = jnp.ones((4, *shape))

    @jax.jit
    def both(key):
        on = adapter.apply(adapter.initial, x, key=key, train=True)
        return on, adapter.apply(adapter.initial, x)

    (on1, off1), (on2, off2) = both(jax.random.key(1)), both(jax.random.key(2))
    assert not np.allclose(on1, on2)  # a fresh dropout mask per key
    np.testing.assert_array_equal(off1, off2)  # evaluation mode: dropout off


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_classes": 1}, r"'num_classes' parameter of DigitsCNN must be an int >= 2"),
        ({"dropout_rate": 1.0}, r"'dropout_rate' parameter of DigitsCNN .* in \[0, 1\)"),
        ({"dropout_rate": -0.1}, r"'dropout_rate' .* Got -0.1"),
    ],
)
def test_bad_network_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DigitsCNN(rngs=nnx.Rngs(0), **kwargs)


def test_reference_training_settings():
    for name in ("digits", "mnist1d"):
        settings = reference_training(name)
        assert isinstance(settings["optimizer"], optax.GradientTransformation)
        px.methods.MAP(training=px.methods.Training(**settings))  # valid Training arguments
    assert reference_training("mnist1d")["num_epochs"] == 200
    with pytest.raises(ValueError, match=r"'dataset' .* 'digits', 'mnist1d'. Got 'mnist'"):
        reference_training("mnist")
    with pytest.raises(ValueError, match=r"'n_train' .* int >= 1"):
        reference_training("digits", n_train=0)


def test_reference_training_cuts_the_rate_for_the_last_tenth_of_the_steps():
    optimizer = reference_training("digits", n_train=64)["optimizer"]  # 30 epochs of 1 batch
    params = jnp.zeros(())
    state = optimizer.init(params)
    steps = []
    for _ in range(30):
        update, state = optimizer.update(jnp.ones(()), state, params)
        steps.append(-float(update))  # Adam on a constant gradient: the step is the rate
    np.testing.assert_allclose(steps[:27], 3e-3, rtol=1e-3)
    np.testing.assert_allclose(steps[27:], 3e-4, rtol=1e-3)


def test_lazy_import_from_posterax_networks():
    assert px.networks.DigitsCNN is DigitsCNN and px.networks.MNIST1DCNN is MNIST1DCNN
    with pytest.raises(AttributeError, match="no attribute 'DigitCNN'"):
        px.networks.DigitCNN  # noqa: B018


# Bad input through the estimator (errors come before any training; one tiny fit is shared).


@pytest.fixture(scope="module")
def digits():
    return px.data.digits()


def _classifier(method=None, **network_kwargs):
    training = px.methods.Training(num_epochs=1, batch_size=60)
    return px.BayesianClassifier(
        network=DigitsCNN(rngs=nnx.Rngs(0), **network_kwargs),
        method=method or px.methods.MAP(training=training),
        progress_bar=False,
        random_state=0,
    )


@pytest.fixture(scope="module")
def fitted(digits):
    keep = digits.y_train < 3
    return _classifier(num_classes=3).fit(digits.X_train[keep][:60], digits.y_train[keep][:60])


@pytest.mark.parametrize(
    ("reshape", "got"),
    [
        (lambda X: X[:, :, :4], "(2, 8, 4, 1)"),
        (lambda X: X.reshape(len(X), 64), "(2, 64)"),
        (lambda X: X[..., 0], "(2, 8, 8)"),
    ],
)
def test_fit_on_images_of_the_wrong_shape(digits, reshape, got):
    with pytest.raises(ValueError, match=r"'network' parameter of BayesianClassifier.fit") as info:
        _classifier().fit(reshape(digits.X_train[:40]), digits.y_train[:40])
    message = str(info.value)
    assert "must accept the inputs X" in message
    assert f"DigitsCNN takes inputs of shape (n, 8, 8, 1). Got a batch of shape {got}" in message
    assert "Reshape the inputs" in message and ".." not in message


def test_predict_on_images_of_the_wrong_shape(fitted, digits):
    for X in (digits.X_test[:5, :, :4], digits.X_test[:5].reshape(5, 64)):
        with pytest.raises(
            ValueError, match=r"'X' .* input shape seen at fit time: \(n, 8, 8, 1\)"
        ):
            fitted.predict(X)


def test_labels_outside_the_networks_classes(digits):
    X, y = digits.X_train[:60], digits.y_train[:60]
    assert len(np.unique(y)) == 10
    with pytest.raises(ValueError, match=r"must output 10 value\(s\) .* \(2, 5\).* to 10 output"):
        _classifier(num_classes=5).fit(X, y)
    few = y < 5
    with pytest.raises(ValueError, match=r"must output 5 value\(s\) .* shape \(2, 10\)"):
        _classifier().fit(X[few], y[few])


def test_nan_pixels_at_fit_and_predict(fitted, digits):
    X = digits.X_train[:40].copy()
    X[3, 2, 5, 0] = np.nan
    with pytest.raises(
        ValueError, match=r"'X' .*fit must not contain NaN.* 1 NaN .*\(3, 2, 5, 0\)"
    ):
        _classifier().fit(X, digits.y_train[:40])
    Xt = digits.X_test[:10].copy()
    Xt[7, 0, 1, 0] = np.nan
    for predict in (fitted.predict, fitted.predict_proba, fitted.predict_samples):
        with pytest.raises(
            ValueError, match=r"'X' .* must not contain NaN .* at index \(7, 0, 1, 0\)"
        ):
            predict(Xt)


def test_labels_never_seen_in_fit_are_named(fitted, digits):
    X, y = digits.X_test[:30], digits.y_test[:30]
    seen = y < 3
    idata = fitted.to_inference_data(X[seen], y[seen])
    np.testing.assert_array_equal(idata.observed_data["obs"], y[seen])  # classes_ are 0, 1, 2
    assert np.isfinite(np.asarray(idata.log_likelihood["obs"])).all()
    with pytest.raises(ValueError, match=r"'y' .* classes seen at fit time \(0, 1, 2\)\. Got \d+"):
        fitted.to_inference_data(X, y)
    with pytest.raises(ValueError, match=r"'y' .* one label per row"):
        fitted.to_inference_data(X, y[:-1])


def test_encode_seen_labels():
    classes = np.array(["ant", "bee", "cat"])
    np.testing.assert_array_equal(encode_seen_labels(classes, ["cat", "ant"], 2, "f"), [2, 0])
    with pytest.raises(ValueError, match=r"never seen in fit \('dog'\), the first at index 1"):
        encode_seen_labels(classes, ["cat", "dog"], 2, "f")
    with pytest.raises(ValueError, match=r"never seen in fit \(0, 1\)"):
        encode_seen_labels(classes, [0, 1], 2, "f")
    ints = np.array([0, 3, 7])
    np.testing.assert_array_equal(encode_seen_labels(ints, np.array([7.0, 0.0]), 2, "f"), [2, 0])
    with pytest.raises(ValueError, match=r"never seen in fit \(2.5\)"):
        encode_seen_labels(ints, [2.5, 3.0], 2, "f")


def test_mc_dropout_needs_the_dropout_variant(digits):
    method = px.methods.MCDropout(training=px.methods.Training(num_epochs=1))
    with pytest.raises(ValueError, match=r"must contain dropout layers"):
        _classifier(method).fit(digits.X_train[:40], digits.y_train[:40])


# Slow: an MC dropout fit, and the published accuracies with MAP (minutes on 2 CPU cores).


@pytest.mark.slow
def test_mc_dropout_uses_the_dropout_variant(digits):
    method = px.methods.MCDropout(
        num_samples=8, training=px.methods.Training(num_epochs=1, batch_size=60)
    )
    clf = _classifier(method, dropout_rate=0.3).fit(digits.X_train[:60], digits.y_train[:60])
    logits = np.asarray(clf.predict_samples(digits.X_test[:4]).logits)
    assert logits.shape == (8, 4, 10) and logits.std(axis=0).min() > 0  # the draws differ


def _map_accuracy(network, split, training):
    clf = px.BayesianClassifier(
        network=network,
        method=px.methods.MAP(training=px.methods.Training(**training)),
        progress_bar=False,
        random_state=0,
    )
    start = time.perf_counter()
    clf.fit(split.X_train, split.y_train)
    seconds = time.perf_counter() - start
    accuracy = clf.score(split.X_test, split.y_test)
    print(f"{type(network).__name__} MAP: test accuracy {accuracy:.4f}, fit {seconds:.1f} s")
    return accuracy


@pytest.mark.slow
def test_digits_cnn_map_reaches_098(digits):
    accuracy = _map_accuracy(DigitsCNN(rngs=nnx.Rngs(0)), digits, reference_training("digits"))
    assert accuracy >= 0.98


@pytest.mark.slow
def test_mnist1d_cnn_map_reaches_the_published_094():
    split = px.data.mnist1d()
    training = reference_training("mnist1d", n_train=len(split.y_train))
    assert _map_accuracy(MNIST1DCNN(rngs=nnx.Rngs(0)), split, training) >= 0.94
