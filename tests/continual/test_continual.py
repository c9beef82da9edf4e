"""Continual learning: the Fisher against closed forms, the penalties, split-digits forgetting."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import softmax
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import posterax as px
from posterax.continual import (
    DiagonalFisher,
    DiagonalGaussian,
    PenalizedLoss,
    QuadraticPenalty,
    diagonal_fisher,
    run_continual,
)
from posterax.inference import NetworkModel
from posterax.models import MLP, CategoricalLikelihood, ClassificationHead


def _softmax_regression(seed=0, n=40, d=3, k=4):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = rng.integers(0, k, size=n)
    W, b = rng.normal(size=(d, k)).astype(np.float32), rng.normal(size=k).astype(np.float32)
    model = NetworkModel(ClassificationHead(MLP((), "relu", k)), CategoricalLikelihood())
    params = {"net": [{"w": jnp.asarray(W), "b": jnp.asarray(b)}]}
    return model, params, X, y, softmax(X @ W + b, axis=1)


def test_exact_and_empirical_fisher_match_closed_form():
    # Softmax regression: d log p_c / d b_k = 1[c = k] - p_k and d / d W_dk = x_d (1[c = k] - p_k).
    model, params, X, y, p = _softmax_regression()
    k = p.shape[1]
    F = diagonal_fisher(model, params, X, batch_size=16)  # 40 = 2.5 chunks: padding is exercised
    g_b = np.eye(k)[None, :, :] - p[:, None, :]  # (n, c, k)
    exact_b = np.mean(np.sum(p[:, :, None] * g_b**2, axis=1), axis=0)
    exact_w = np.mean(
        np.sum(p[:, None, :, None] * (X[:, :, None, None] * g_b[:, None]) ** 2, axis=2), axis=0
    )
    np.testing.assert_allclose(F.diagonal[0]["b"], exact_b, rtol=1e-4)
    np.testing.assert_allclose(F.diagonal[0]["w"], exact_w, rtol=1e-4)
    E = diagonal_fisher(model, params, X, y, kind="empirical")
    g_obs = np.eye(k)[y] - p
    np.testing.assert_allclose(E.diagonal[0]["b"], np.mean(g_obs**2, axis=0), rtol=1e-4)
    np.testing.assert_allclose(
        E.diagonal[0]["w"], np.mean((X[:, :, None] * g_obs[:, None]) ** 2, axis=0), rtol=1e-4
    )


def test_sampled_fisher_converges_to_exact():
    model, params, X, _, _ = _softmax_regression(1)
    exact = diagonal_fisher(model, params, X)
    sampled = diagonal_fisher(
        model, params, X, kind="sampled", rng_key=jax.random.key(0), n_samples=400
    )
    # 40 points x 400 labels: Monte Carlo error of a mean of squared gradients is a few %.
    np.testing.assert_allclose(sampled.diagonal[0]["b"], exact.diagonal[0]["b"], rtol=0.1)
    np.testing.assert_allclose(
        sampled.diagonal[0]["w"], exact.diagonal[0]["w"], rtol=0.15, atol=1e-3
    )


def test_penalties_and_online_laplace_update():
    anchor = {"w": jnp.array([1.0, -1.0])}
    F = DiagonalFisher({"w": jnp.array([2.0, 3.0])})
    pen = QuadraticPenalty(anchor, F, strength=10.0)
    w = {"w": jnp.array([2.0, 1.0])}
    assert float(pen(w)) == pytest.approx(0.5 * 10 * (2 * 1 + 3 * 4))
    loss = PenalizedLoss(lambda p, k, X, y: 1.5, (pen, pen))
    assert float(loss({"net": w}, None, None, None)) == pytest.approx(1.5 + 2 * 70.0)
    prior = DiagonalGaussian.prior(anchor, scale=0.5)
    np.testing.assert_allclose(prior.precision["w"], 4.0)
    post = prior.update(anchor, F, n_data=100)
    np.testing.assert_allclose(post.precision["w"], [4 + 200, 4 + 300])
    np.testing.assert_allclose(post.scale()["w"], 1 / np.sqrt([204, 304]), rtol=1e-6)
    # The prior as a penalty with strength 1/N is the Gaussian log prior per example.
    per_example = prior.loss(None, n_data=10).penalties[0]
    assert float(per_example(w)) == pytest.approx(0.5 * 4 * (1 + 4) / 10)


def _split_digits():
    """Two tasks: digits 0-4 then 5-9, both labelled 0-4 (one shared 5-way head)."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    tasks = []
    for lo in (0, 5):
        m = (y >= lo) & (y < lo + 5)
        X_tr, X_te, y_tr, y_te = train_test_split(
            X[m], y[m] - lo, test_size=0.3, random_state=0, stratify=y[m]
        )
        # Equal training-set sizes: fine-tuning then reuses one compiled training program.
        tasks.append((X_tr[:600], y_tr[:600], X_te, y_te))
    return tasks


SETTINGS = {"hidden": (32,), "num_epochs": 30, "learning_rate": 3e-3}


def test_ewc_forgets_less_than_finetuning_on_split_digits():
    tasks = _split_digits()
    plain = run_continual(tasks, strategy="finetune", random_state=0, **SETTINGS)
    ewc = run_continual(tasks, strategy="ewc", strength=100.0, random_state=0, **SETTINGS)
    print("task-1 accuracy after task 2: finetune", plain.accuracy[1, 0], "ewc", ewc.accuracy[1, 0])
    assert plain.accuracy[0, 0] > 0.95 and ewc.accuracy[0, 0] > 0.95  # task 1 was learnt
    # Over seeds 0-2, EWC kept 0.62-0.91 of task 1 vs 0.40-0.45 for fine-tuning.
    assert ewc.accuracy[1, 0] > plain.accuracy[1, 0] + 0.1
    assert ewc.forgetting[0] < plain.forgetting[0]
    assert ewc.accuracy[1, 1] > 0.8  # ...and still learnt task 2
    assert np.isnan(ewc.accuracy[0, 1])


@pytest.mark.slow
def test_ewc_and_online_laplace_beat_finetuning_over_seeds():
    tasks = _split_digits()
    kept = {s: [] for s in ("finetune", "ewc", "online_laplace")}
    for seed in range(5):
        for strategy in kept:
            res = run_continual(
                tasks, strategy=strategy, strength=100.0, random_state=seed, **SETTINGS
            )
            kept[strategy].append(res.accuracy[1, 0])
    print({s: np.round(v, 3).tolist() for s, v in kept.items()})
    diff_ewc = np.array(kept["ewc"]) - np.array(kept["finetune"])
    diff_ol = np.array(kept["online_laplace"]) - np.array(kept["finetune"])
    assert diff_ewc.min() > 0.05
    assert diff_ol.mean() > 2 * diff_ol.std(ddof=1) / np.sqrt(5)  # mean gain > 2 standard errors


@pytest.mark.slow
def test_online_laplace_posterior_gives_predictive_samples():
    tasks = _split_digits()
    small = [(X[:100], y[:100], Xt[:50], yt[:50]) for X, y, Xt, yt in tasks]
    res = run_continual(small, strategy="online_laplace", hidden=(8,), num_epochs=2)
    X0 = jnp.asarray(small[0][2], jnp.float32)
    pred = px.predictive.predictive_samples(res.posteriors[-1], X0, jax.random.key(0), 16)
    d = px.uncertainty.decompose(pred)
    assert pred.logits.shape == (16, 50, 5) and float(d.epistemic.mean()) > 0


def test_bad_input_names_parameter_and_fix():
    task = (np.zeros((4, 2)), np.array([0, 1, 0, 1]), np.zeros((2, 2)), np.array([0, 1]))
    with pytest.raises(
        ValueError, match=r"'strategy' parameter of run_continual must be one of 'finetune'"
    ):
        run_continual([task], strategy="replay")
    with pytest.raises(ValueError, match=r"'tasks' parameter of run_continual must hold \(X_train"):
        run_continual([task[:3]])
    with pytest.raises(ValueError, match=r"task 0's y_train must be 1-D integer class indices"):
        run_continual([(task[0], np.array([0.5, 1, 0, 1]), task[2], task[3])])
    with pytest.raises(
        ValueError, match=r"'n_classes' parameter of run_continual must exceed every label"
    ):
        run_continual([(task[0], np.array([0, 1, 2, 1]), task[2], task[3])], n_classes=2)
    model, params, X, _, _ = _softmax_regression()
    with pytest.raises(
        ValueError, match=r"'y' parameter of diagonal_fisher is required for kind='empirical'"
    ):
        diagonal_fisher(model, params, X, kind="empirical")
    with pytest.raises(ValueError, match=r"'rng_key' parameter of diagonal_fisher is required"):
        diagonal_fisher(model, params, X, kind="sampled")
    with pytest.raises(ValueError, match=r"'kind' parameter of diagonal_fisher must be one of"):
        diagonal_fisher(model, params, X, kind="kfac")
