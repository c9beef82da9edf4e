"""``max_memory``: parsing, the free-memory default, the one-row error, and predictions that do not
depend on the budget (many small chunks with a ragged last one == one chunk)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import ndtr

import posterax as px
from posterax.predictive import chunking, memory
from posterax.predictive.inputs import mixture_quantile

N_NEW = 103  # prediction rows: a prime, so every chunk size below it leaves a ragged last chunk
# On a CPU chunks change nothing beyond float32 rounding. On a GPU float32 matmuls run in TF32 by
# default and the kernel (so the rounding) depends on the chunk's shape: about 1e-3 relative.
CLOSE = (
    {"rtol": 1e-5, "atol": 1e-6} if jax.default_backend() == "cpu" else {"rtol": 1e-2, "atol": 1e-3}
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (4096, 4096),
        ("4096", 4096),
        ("512MB", 512 * 10**6),
        ("2GB", 2 * 10**9),
        ("1.5GiB", 3 * 2**29),
        (" 64 kib ", 64 * 1024),
        ("1e3KB", 10**6),
        (2.0**20, 2**20),
        (None, None),
    ],
)
def test_max_memory_parses(value, expected):
    assert memory.parse_memory(value, where="f") == expected


@pytest.mark.parametrize(
    "value", [0, -5, True, 1.5, float("nan"), "", "abc", "5 parsecs", "-1GB", "0MB", [1], "0.1B"]
)
def test_max_memory_rejects_with_a_clear_message(value):
    with pytest.raises(ValueError, match=r"'max_memory' parameter of f must be .*Got .*'2GB'"):
        memory.parse_memory(value, where="f")


def test_default_budget_is_a_quarter_of_the_free_memory(monkeypatch):
    monkeypatch.setattr(memory, "free_memory_bytes", lambda device=None: 8 * 10**9)
    assert memory.resolve_budget(None, where="f") == 2 * 10**9
    assert memory.resolve_budget("1GB", where="f") == 10**9
    monkeypatch.setattr(memory, "free_memory_bytes", lambda device=None: None)
    assert memory.resolve_budget(None, where="f") == memory.FALLBACK_BUDGET_BYTES


def test_free_memory_of_cpu_and_accelerator():
    cpu = memory.free_memory_bytes(jax.devices("cpu")[0])
    assert cpu is None or cpu > 0

    class FakeGPU:
        platform = "gpu"

        def memory_stats(self):
            return {"bytes_limit": 10_000, "bytes_in_use": 2_500}

    assert memory.free_memory_bytes(FakeGPU()) == 7_500


def test_plan_rows_follows_the_budget_and_the_ladder():
    per_row = 1000
    rows = chunking.plan_rows(10**6, per_row, 2 * per_row * 100 + 7, n_draws=10)
    assert rows == 96  # 100 rows fit; 96 is on the ladder 1, 2, 3, 4, 6, 8, 12, ... 64, 96
    assert chunking.plan_rows(5, per_row, 10**12, n_draws=10) == 6  # padded up, not chunked
    assert chunking.plan_rows(10**6, 1, 10**12, n_draws=1000) == 4096  # the CPU speed cap
    with pytest.raises(ValueError, match=r"too small for even one input row.*2000 bytes"):
        chunking.plan_rows(10, per_row, 1999, n_draws=10)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, (60, 1))
    y = np.sin(X[:, 0]) + 0.2 * rng.normal(size=60)
    settings = dict(network=(8,), progress_bar=False, random_state=0)
    training = px.methods.Training(num_epochs=5)
    vi = px.methods.VI(num_samples=40, training=training)
    reg = px.BayesianRegressor(method=vi, **settings).fit(X, y)
    labels = (X[:, 0] > 0).astype(int) + (X[:, 0] > 1.5)
    ensemble = px.methods.Ensemble(num_members=3, training=training)
    clf = px.BayesianClassifier(method=ensemble, **settings).fit(X, labels)
    return reg, clf, rng.uniform(-4, 4, (N_NEW, 1))


def _regression_predictions(reg, X):
    return {
        "moments": reg.predict(X, return_std=True),
        "interval": reg.predict_interval(X, 0.9),  # mixture quantiles
        "quantiles": (reg.predict_quantiles(X, [0.1, 0.5, 0.97], kind="mean"),),  # sorted draws
    }


def _tiny(est, summaries):
    """A max_memory that leaves room for a handful of rows of the costliest summary."""
    params_bytes = 4 * sum(leaf.size for leaf in jax.tree_util.tree_leaves(est.posterior_.mean()))
    draws = est.posterior_.num_draws or est._prediction_draws()
    per_row = max(est._prediction_bytes_per_row(s) for s in summaries)  # this platform's
    return draws * params_bytes + 2 * per_row * 7


def _spy_rows(monkeypatch):
    used = []
    plan = chunking.plan_rows

    def spy(*args, **kwargs):
        used.append(plan(*args, **kwargs))
        return used[-1]

    monkeypatch.setattr(chunking, "plan_rows", spy)
    return used


def test_regression_predictions_do_not_depend_on_max_memory(fitted, monkeypatch):
    reg, _, X_new = fitted
    big = _regression_predictions(reg.set_params(max_memory="10GB"), X_new)
    summaries = [chunking.MOMENTS, chunking.quantiles([0.1, 0.5, 0.97], "mean")]
    used = _spy_rows(monkeypatch)
    small = _regression_predictions(reg.set_params(max_memory=_tiny(reg, summaries)), X_new)
    reg.set_params(max_memory=None)
    assert used and all(1 < rows < 20 and N_NEW % rows for rows in used), used
    for key in big:
        for a, b in zip(big[key], small[key], strict=True):
            np.testing.assert_allclose(b, a, err_msg=key, **CLOSE)


def test_class_probabilities_do_not_depend_on_max_memory(fitted, monkeypatch):
    _, clf, X_new = fitted
    whole = clf.set_params(max_memory="1GiB").predict_proba(X_new)
    used = _spy_rows(monkeypatch)
    chunked = clf.set_params(max_memory=_tiny(clf, [chunking.PROBS])).predict_proba(X_new)
    clf.set_params(max_memory=None)
    assert used and 1 < used[0] < 20 and N_NEW % used[0]
    np.testing.assert_allclose(chunked, whole, **CLOSE)
    assert chunked.shape == (N_NEW, 3)


def test_one_row_that_does_not_fit_is_a_clear_error(fitted):
    reg, clf, X_new = fitted
    with pytest.raises(ValueError, match=r"predict_interval: .*max_memory=100\).*even one input"):
        reg.set_params(max_memory=100).predict_interval(X_new)
    with pytest.raises(ValueError, match=r"predict_proba: .*max_memory='200B'.*needs about"):
        clf.set_params(max_memory="200B").predict_proba(X_new)
    with pytest.raises(ValueError, match=r"'max_memory' parameter of BayesianRegressor"):
        reg.set_params(max_memory="lots").predict(X_new)
    reg.set_params(max_memory=None)
    clf.set_params(max_memory=None)


def test_draws_at_once_and_one_by_one_agree(fitted):
    """The accelerator's program (every draw at once) gives the CPU's (one draw at a time)."""
    reg, _, X_new = fitted
    post = reg.posterior_
    params = post.distribution.mean()
    factors = jnp.linspace(0.8, 1.2, 12)  # 12 different draws around the mean
    params = jax.tree_util.tree_map(
        lambda leaf: leaf * factors.reshape((12,) + (1,) * leaf.ndim), params
    )
    common = dict(apply_fn=post.apply_fn, likelihood=post.likelihood, rows=16)
    a = chunking.chunked_summary(params, X_new, summary=chunking.MOMENTS, all_draws=True, **common)
    b = chunking.chunked_summary(params, X_new, summary=chunking.MOMENTS, all_draws=False, **common)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, **CLOSE)


def _float64_mixture_quantiles(mean, scale, levels):
    """Bisection on the float64 mixture CDF, both tails from their own side (the reference)."""
    out = []
    for q in levels:
        lo, hi = (mean - 40 * scale).min(axis=0), (mean + 40 * scale).max(axis=0)
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            z = (mid - mean) / scale
            below = (ndtr(z).mean(axis=0) < q) if q < 0.5 else (ndtr(-z).mean(axis=0) > 1 - q)
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        out.append(0.5 * (lo + hi))
    return np.stack(out)


def test_newton_mixture_quantiles_are_exact_to_float32():
    rng = np.random.default_rng(3)
    S, N = 200, 40
    mean = rng.normal(size=(S, N)) * rng.uniform(0.01, 5, N)
    mean[: S // 2, :10] += 8.0  # well-separated bimodal mixtures
    scale = rng.uniform(0.05, 2.0, (S, N)) * np.exp(rng.normal(size=N))
    mean, scale = mean.astype(np.float32), scale.astype(np.float32)
    levels = [0.001, 0.025, 0.3, 0.7, 0.975, 0.999]
    expected = _float64_mixture_quantiles(mean.astype(float), scale.astype(float), levels)
    got = jax.jit(chunking._mixture_quantiles)(mean, scale, jnp.asarray(levels))
    bisection = mixture_quantile(mean, scale, jnp.asarray(levels, jnp.float32)).T
    spread = np.sqrt(np.mean(scale.astype(float) ** 2, axis=0) + np.var(mean, axis=0))
    error, bisection_error = np.abs(got - expected) / spread, np.abs(bisection - expected) / spread
    assert error.max() < 1e-5
    assert error.max() <= bisection_error.max()  # as close as float32 bisection, or closer
