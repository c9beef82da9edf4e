"""NUTS: posterax's compile-once driver vs NumPyro 0.22 ``MCMC(NUTS(model)).run`` (issue 4, item 6).

Same model, same data, same settings (1 chain, target acceptance 0.8, max tree depth 10), in one
process, on three problems:

- ``linear``: the seed linear regression (``make_regression(100, 1, noise=12,
  random_state=42)``, slope/intercept ~ Normal(0, 10), sigma ~ HalfCauchy(5)):
  ``posterax.models.linear_regression_model`` with ``LinearPrior()`` for both libraries;
- ``bnn``: the seed 1-5-1 tanh BNN on 100 points of y = sin(x)·x + 0.3·eps, x ~ U(-3, 3)
  (weights ~ Normal(0, 1), sigma ~ HalfCauchy(1)): one NumPyro model run through both
  ``posterax.inference.run_nuts`` and NumPyro; plus ``px.BayesianRegressor`` (hand-written
  log-density, standardised data) as a third path;
- ``iris``: a 4-16-3 tanh BNN with a softmax likelihood on standardised Iris (all 150 rows),
  the same way (``px.BayesianClassifier`` as the third path).

For every path it reports

- first-fit wall time (the first fit of that model in the process: includes tracing/compiling;
  posterax runs first for each model, so shared JAX warm-up favours NumPyro, not posterax);
- repeat-fit wall time (new key, same shapes). NumPyro twice: ``progress_bar=False`` (re-traces
  and re-compiles on every ``run``) and ``progress_bar=True`` (no recompile; a Python loop);
- min bulk ESS (ArviZ) in function space — the regression function / class probabilities at 50
  training inputs — per second of repeat-fit wall time (linear regression: parameters too);
- microseconds per gradient evaluation: sampler wall time of the repeat fit divided by the exact
  number of log-density gradient evaluations of that fit (warmup + sampling). The count comes from
  an untimed re-run with the same key in which the log-density bumps a host counter through
  ``jax.debug.callback`` (it includes a handful of initialisation calls); the re-run's sampling
  ``n_steps`` are checked against the timed run's. Compared with a raw ``jax.jit(value_and_grad)``
  of the same log-density, timed both as a Python loop (one dispatch per call, as a Python-driven
  sampler pays) and as an in-XLA ``fori_loop`` (the pure gradient cost);
- a reference row "NumPyro kernel in one lax.scan": NumPyro's NUTS ``sample`` (warmup adaptation
  included) scanned inside one jitted program, i.e. NumPyro's sampler without ``MCMC``'s Python
  overhead or recompilation.

Run by hand (not in CI; several minutes on 2 cores, keep the machine otherwise idle)::

    .venv/bin/python benchmarks/nuts_vs_numpyro.py [--models linear bnn iris]
        [--num-warmup 1000 --num-samples 2000] [--bnn-warmup 1000 --bnn-samples 2000]
        [--out-dir benchmarks/results]

Writes ``nuts_vs_numpyro.json`` and ``nuts_vs_numpyro.md`` to ``--out-dir`` and prints the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import arviz as az
import blackjax
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.infer import MCMC, NUTS
from numpyro.infer.util import potential_energy
from sklearn.datasets import load_iris, make_regression

import posterax as px
from posterax.data.validation import rng_key_from
from posterax.diagnostics import function_space_diagnostics
from posterax.inference import NetworkModel, run_nuts, sample_nuts
from posterax.models import (
    MLP,
    CategoricalLikelihood,
    ClassificationHead,
    GaussianLikelihood,
    RegressionHead,
    WeightPrior,
    linear_regression_model,
)
from posterax.models.priors import LinearPrior

HERE = Path(__file__).resolve().parent
TARGET_ACCEPT = 0.8
N_FUNCTION_POINTS = 50
BNN_HIDDEN = 5
IRIS_HIDDEN = 16
IRIS_CLASSES = 3


# ---------------------------------------------------------------------------- models and data
def bnn_regression_model(X, y=None):
    """The seed 1-5-1 tanh BNN: weights/biases ~ Normal(0, 1), sigma ~ HalfCauchy(1)."""
    w1 = numpyro.sample("w1", dist.Normal(0.0, 1.0).expand([X.shape[1], BNN_HIDDEN]).to_event(2))
    b1 = numpyro.sample("b1", dist.Normal(0.0, 1.0).expand([BNN_HIDDEN]).to_event(1))
    w2 = numpyro.sample("w2", dist.Normal(0.0, 1.0).expand([BNN_HIDDEN, 1]).to_event(2))
    b2 = numpyro.sample("b2", dist.Normal(0.0, 1.0).expand([1]).to_event(1))
    sigma = numpyro.sample("sigma", dist.HalfCauchy(1.0))
    f = (jnp.tanh(X @ w1 + b1) @ w2 + b2)[:, 0]
    numpyro.sample("obs", dist.Normal(f, sigma), obs=y)


def bnn_classifier_model(X, y=None):
    """A 4-16-3 tanh BNN with a softmax likelihood: weights/biases ~ Normal(0, 1)."""
    w1 = numpyro.sample("w1", dist.Normal(0.0, 1.0).expand([X.shape[1], IRIS_HIDDEN]).to_event(2))
    b1 = numpyro.sample("b1", dist.Normal(0.0, 1.0).expand([IRIS_HIDDEN]).to_event(1))
    w2 = numpyro.sample("w2", dist.Normal(0.0, 1.0).expand([IRIS_HIDDEN, IRIS_CLASSES]).to_event(2))
    b2 = numpyro.sample("b2", dist.Normal(0.0, 1.0).expand([IRIS_CLASSES]).to_event(1))
    logits = jnp.tanh(X @ w1 + b1) @ w2 + b2
    numpyro.sample("obs", dist.Categorical(logits=logits), obs=y)


def _mlp_outputs(samples: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """Network outputs ``(chains, draws, n, out)`` for draws of w1, b1, w2, b2."""
    h = np.tanh(np.einsum("nk,cdkh->cdnh", X, samples["w1"]) + samples["b1"][:, :, None, :])
    return np.einsum("cdnh,cdho->cdno", h, samples["w2"]) + samples["b2"][:, :, None, :]


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@dataclasses.dataclass
class Problem:
    name: str
    model: Callable[..., None]
    X: np.ndarray  # float32, as the model sees it
    y: np.ndarray
    kwargs: dict[str, Any]  # static model kwargs
    num_warmup: int
    num_samples: int
    functions: Callable[[dict[str, np.ndarray]], np.ndarray]  # samples -> (C, D, M)
    estimator: Callable[[int], Any] | None = None  # random_state -> unfitted px estimator
    X_raw: np.ndarray | None = None
    y_raw: np.ndarray | None = None

    def __post_init__(self) -> None:
        # One device array per problem, passed to every fit: NumPyro caches its sampler by the
        # id() of array arguments, so this gives MCMC.run(progress_bar=True) its no-recompile path.
        self.Xj = jnp.asarray(self.X)
        self.yj = jnp.asarray(self.y)


def _diagnostic_idx(n: int) -> np.ndarray:
    return np.linspace(0, n - 1, min(N_FUNCTION_POINTS, n)).astype(int)


def linear_problem(num_warmup: int, num_samples: int) -> Problem:
    X, y = make_regression(n_samples=100, n_features=1, noise=12.0, random_state=42)
    X, y = X.astype(np.float32), y.astype(np.float32)
    Xd = X[_diagnostic_idx(len(X))]

    def functions(s):
        coef = np.asarray(s["coef"])
        return np.asarray(s["intercept"])[..., None] + np.einsum("cdk,nk->cdn", coef, Xd)

    return Problem(
        "linear", linear_regression_model, X, y, {"prior": LinearPrior()},
        num_warmup, num_samples, functions,
    )  # fmt: skip


def bnn_problem(num_warmup: int, num_samples: int) -> Problem:
    rng = np.random.default_rng(0)  # the seed data of the demo and the tests
    X = rng.uniform(-3.0, 3.0, (100, 1))
    y = np.sin(X[:, 0]) * X[:, 0] + 0.3 * rng.normal(size=100)
    Xd = X[_diagnostic_idx(len(X))].astype(np.float32)

    def estimator(seed):
        return px.BayesianRegressor(
            px.methods.NUTS(
                num_warmup=num_warmup, num_samples=num_samples, target_accept_prob=TARGET_ACCEPT
            ),
            network=px.networks.MLP(hidden=(BNN_HIDDEN,), activation="tanh"),
            progress_bar=False,
            random_state=seed,
        )

    return Problem(
        "bnn", bnn_regression_model, X.astype(np.float32), y.astype(np.float32), {},
        num_warmup, num_samples, lambda s: _mlp_outputs(s, Xd)[..., 0], estimator, X, y,
    )  # fmt: skip


def iris_problem(num_warmup: int, num_samples: int) -> Problem:
    X_raw, y = load_iris(return_X_y=True)
    X = ((X_raw - X_raw.mean(axis=0)) / X_raw.std(axis=0)).astype(np.float32)
    Xd = X[_diagnostic_idx(len(X))]

    def functions(s):
        probs = _softmax(_mlp_outputs(s, Xd))
        return probs.reshape(*probs.shape[:2], -1)

    def estimator(seed):
        return px.BayesianClassifier(
            px.methods.NUTS(
                num_warmup=num_warmup, num_samples=num_samples, target_accept_prob=TARGET_ACCEPT
            ),
            network=px.networks.MLP(hidden=(IRIS_HIDDEN,), activation="tanh"),
            progress_bar=False,
            random_state=seed,
        )

    return Problem(
        "iris", bnn_classifier_model, X, y.astype(np.int32), {}, num_warmup, num_samples,
        functions, estimator, X_raw, y,
    )  # fmt: skip


# ---------------------------------------------------------------------------- gradient counting
_GRADS = [0]


def _bump() -> None:
    _GRADS[0] += 1


@dataclasses.dataclass(frozen=True)
class CountingModel:
    """A NumPyro model that bumps a host counter each time it is evaluated (once per gradient)."""

    model: Callable[..., None]

    def __call__(self, *args, **kwargs):
        jax.debug.callback(_bump)
        return self.model(*args, **kwargs)


@dataclasses.dataclass(frozen=True)
class CountingLogDensity:
    """The same for a posterax ``logdensity_fn(position, *data)``."""

    logdensity: Callable[..., jax.Array]

    def __call__(self, position, *data):
        jax.debug.callback(_bump)
        return self.logdensity(position, *data)


def _count(fn: Callable[[], Any]) -> tuple[int, Any]:
    _GRADS[0] = 0
    out = fn()
    return _GRADS[0], out


# ---------------------------------------------------------------------------- measurements
def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _weight_ess(samples: dict[str, np.ndarray]) -> float:
    data = {k: np.asarray(v, dtype=np.float64) for k, v in samples.items()}
    ess = az.ess(az.convert_to_dataset(data), method="bulk")
    return float(min(np.nanmin(np.asarray(ess[k])) for k in data))


def raw_gradient_us(logdensity: Callable[[Any], jax.Array], z0: Any) -> dict[str, float]:
    """µs per ``value_and_grad`` of ``logdensity``: Python loop (with dispatch) and in-XLA loop."""
    value_and_grad = jax.jit(jax.value_and_grad(logdensity))
    jax.block_until_ready(value_and_grad(z0))
    best_python = np.inf
    for _ in range(3):
        n, start = 0, time.perf_counter()
        while n < 200 or time.perf_counter() - start < 0.3:
            jax.block_until_ready(value_and_grad(z0))
            n += 1
        best_python = min(best_python, (time.perf_counter() - start) / n)

    n_loop = 5000

    def body(_, carry):
        z, acc = carry
        value, grad = jax.value_and_grad(logdensity)(z)
        # Depend on the previous gradient (no hoisting) while staying at z0.
        z = jax.tree_util.tree_map(lambda a, g: a + 1e-9 * g, z0, grad)
        return z, acc + value

    loop = jax.jit(lambda z: jax.lax.fori_loop(0, n_loop, body, (z, jnp.zeros(()))))
    jax.block_until_ready(loop(z0))
    best_xla = min(_timed(lambda: jax.block_until_ready(loop(z0)))[0] for _ in range(3))
    return {"python_loop_us": best_python * 1e6, "xla_loop_us": best_xla / n_loop * 1e6}


def _numpyro_logdensity(problem: Problem) -> Callable[[Any], jax.Array]:
    args, kwargs = (problem.Xj,), {"y": problem.yj, **problem.kwargs}
    return lambda z: -potential_energy(problem.model, args, kwargs, z)


def _row(path: str, **fields: Any) -> dict[str, Any]:
    return {"path": path, **fields}


def bench_posterax_run_nuts(p: Problem) -> dict[str, Any]:
    def fit(model, seed):
        return run_nuts(
            jax.random.key(seed), model, p.Xj, y=p.yj, **p.kwargs,
            num_warmup=p.num_warmup, num_samples=p.num_samples,
            target_accept_prob=TARGET_ACCEPT, progress_bar=False,
        )  # fmt: skip

    first_s, first = _timed(lambda: fit(p.model, 0))
    repeat_s, res = _timed(lambda: fit(p.model, 1))
    grads, counted = _count(lambda: fit(CountingModel(p.model), 1))
    samples = {k: np.asarray(v) for k, v in res.samples.items()}
    steps = int(res.sample_stats["n_steps"].sum())
    return _row(
        "posterax run_nuts (NumPyro model)",
        first_fit_s=first_s, first_fit_sampler_s=first.seconds, repeat_fit_s=repeat_s,
        sampler_s=res.seconds, sampling_steps=steps,
        counted_run_sampling_steps=int(counted.sample_stats["n_steps"].sum()), gradients=grads,
        divergences=int(res.sample_stats["diverging"].sum()),
        fs=function_space_diagnostics(p.functions(samples)), weight_min_ess=_weight_ess(samples),
    )  # fmt: skip


def bench_numpyro_mcmc(p: Problem, progress_bar: bool) -> dict[str, Any]:
    def make(model):
        kernel = NUTS(model, target_accept_prob=TARGET_ACCEPT)
        return MCMC(kernel, num_warmup=p.num_warmup, num_samples=p.num_samples,
                    num_chains=1, progress_bar=progress_bar)  # fmt: skip

    def fit(mcmc, seed):
        mcmc.run(jax.random.PRNGKey(seed), p.Xj, y=p.yj, **p.kwargs,
                 extra_fields=("num_steps", "diverging"))  # fmt: skip
        jax.block_until_ready(mcmc.get_samples())
        return mcmc

    mcmc = make(p.model)
    first_s, _ = _timed(lambda: fit(mcmc, 0))
    repeat_s, _ = _timed(lambda: fit(mcmc, 1))
    extra = mcmc.get_extra_fields()
    samples = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
    row = _row(
        f"NumPyro MCMC.run progress_bar={progress_bar}",
        first_fit_s=first_s, repeat_fit_s=repeat_s,
        sampling_steps=int(np.sum(extra["num_steps"])),
        divergences=int(np.sum(extra["diverging"])),
        fs=function_space_diagnostics(p.functions(samples)), weight_min_ess=_weight_ess(samples),
        z_last=mcmc.last_state.z,
    )  # fmt: skip
    if progress_bar:  # no recompilation: the repeat fit is all sampler (plus the Python loop)
        row["sampler_s"] = repeat_s
    else:
        grads, counted = _count(lambda: fit(make(CountingModel(p.model)), 1))
        row["gradients"] = grads
        row["counted_run_sampling_steps"] = int(np.sum(counted.get_extra_fields()["num_steps"]))
    return row


def bench_numpyro_scan(p: Problem) -> dict[str, Any]:
    """NumPyro's NUTS kernel (warmup adaptation included) in one jitted ``lax.scan``."""
    kernel = NUTS(p.model, target_accept_prob=TARGET_ACCEPT)
    args, kwargs = (p.Xj,), {"y": p.yj, **p.kwargs}
    total = p.num_warmup + p.num_samples

    @jax.jit
    def program(state):
        def step(s, _):
            s = kernel.sample(s, args, kwargs)
            return s, (s.num_steps, s.z)

        return jax.lax.scan(step, state, None, length=total)[1]

    def init(seed):
        return kernel.init(jax.random.PRNGKey(seed), p.num_warmup, None, args, kwargs)

    first_s, _ = _timed(lambda: jax.block_until_ready(program(init(0))))
    state = init(1)
    sampler_s, (num_steps, z) = _timed(lambda: jax.block_until_ready(program(state)))
    num_steps = np.asarray(num_steps)
    samples = jax.tree_util.tree_map(lambda a: np.asarray(a)[None, p.num_warmup :], z)
    constrain = jax.vmap(jax.vmap(kernel.postprocess_fn(args, kwargs)))
    samples = {k: np.asarray(v) for k, v in constrain(samples).items()}
    return _row(
        "NumPyro kernel in one lax.scan (reference)",
        first_fit_s=first_s, repeat_fit_s=sampler_s, sampler_s=sampler_s,
        sampling_steps=int(num_steps[p.num_warmup :].sum()),
        warmup_steps=int(num_steps[: p.num_warmup].sum()), gradients=int(num_steps.sum()),
        fs=function_space_diagnostics(p.functions(samples)), weight_min_ess=_weight_ess(samples),
    )  # fmt: skip


def bench_estimator(p: Problem) -> dict[str, Any]:
    first_s, _ = _timed(lambda: p.estimator(0).fit(p.X_raw, p.y_raw))
    repeat_s, est = _timed(lambda: p.estimator(1).fit(p.X_raw, p.y_raw))
    info = est.posterior_.info
    # Replay the estimator's sampling with a counting log-density (same key, data, settings).
    hidden = (BNN_HIDDEN,) if p.name == "bnn" else (IRIS_HIDDEN,)
    task = "regression" if p.name == "bnn" else "classification"
    n_out = 1 if task == "regression" else IRIS_CLASSES
    network = MLP(hidden, "tanh", n_out)
    head, likelihood = (
        (RegressionHead(network), GaussianLikelihood())
        if task == "regression"
        else (ClassificationHead(network), CategoricalLikelihood())
    )
    logdensity = NetworkModel(head, likelihood, WeightPrior("normal", (1.0, 1.0)), 1.0)
    Xs = jnp.asarray((p.X_raw - est.x_mean_) / est.x_scale_)
    if task == "regression":
        target = jnp.asarray((p.y_raw - est.y_mean_) / est.y_scale_)
    else:
        target = jnp.asarray(np.searchsorted(est.classes_, p.y_raw).astype(np.int32))
    grads, counted = _count(
        lambda: sample_nuts(
            rng_key_from(1, where="benchmark"), CountingLogDensity(logdensity),
            logdensity.init_params(network.template(p.X_raw.shape[1])), (Xs, target),
            num_warmup=p.num_warmup, num_samples=p.num_samples, target_accept_prob=TARGET_ACCEPT, progress_bar=False,
        )
    )  # fmt: skip
    draws = est.posterior_.draws
    position = jax.tree_util.tree_map(lambda a: a[-1], {"net": draws["net"]})
    if task == "regression":
        position["log_sigma"] = jnp.log(draws["sigma"][-1])
    diag = est.diagnostics()
    return _row(
        f"posterax {type(est).__name__} (own log-density)",
        first_fit_s=first_s, repeat_fit_s=repeat_s, sampler_s=info["sampling_seconds"],
        fit_seconds=est.fit_seconds_, sampling_steps=int(info["sample_stats"]["n_steps"].sum()),
        counted_run_sampling_steps=int(counted.sample_stats["n_steps"].sum()), gradients=grads,
        divergences=diag["divergences"], fs=diag["function_space"],
        weight_min_ess=diag["weight_space"]["min_ess_bulk"],
        raw=raw_gradient_us(lambda z: logdensity(z, Xs, target), position),
    )  # fmt: skip


def bench_problem(p: Problem) -> dict[str, Any]:
    print(f"== {p.name}: warmup {p.num_warmup}, samples {p.num_samples}", flush=True)
    rows = [bench_posterax_run_nuts(p)]
    print("   posterax run_nuts done", flush=True)
    rows.append(bench_numpyro_mcmc(p, progress_bar=False))
    rows.append(bench_numpyro_mcmc(p, progress_bar=True))
    print("   NumPyro MCMC done", flush=True)
    rows.append(bench_numpyro_scan(p))
    z0 = rows[1].pop("z_last")
    rows[2].pop("z_last")
    raw = raw_gradient_us(_numpyro_logdensity(p), z0)
    for row in rows:
        row["raw"] = raw
    # The timed progress_bar=True fit uses the same key as the counted progress_bar=False one.
    rows[2]["gradients"] = rows[1]["gradients"]
    rows[2]["counted_run_sampling_steps"] = rows[1]["counted_run_sampling_steps"]
    if p.estimator is not None:
        rows.append(bench_estimator(p))
        print("   estimator done", flush=True)
    for row in rows:
        row["fs_ess_per_s"] = row["fs"]["min_ess_bulk"] / row["repeat_fit_s"]
        if "sampler_s" in row and row.get("gradients"):
            us = row["sampler_s"] / row["gradients"] * 1e6
            row["us_per_gradient"] = us
            row["ratio_to_raw_gradient_xla"] = us / row["raw"]["xla_loop_us"]
            row["ratio_to_raw_gradient_python"] = us / row["raw"]["python_loop_us"]
    return {"problem": p.name, "num_warmup": p.num_warmup, "num_samples": p.num_samples,
            "rows": rows, "targets": targets(rows)}  # fmt: skip


def targets(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """posterax (``run_nuts``) relative to NumPyro ``MCMC.run``, against the issue's targets."""
    px_row, np_nopb, np_pb = rows[0], rows[1], rows[2]
    best_np_ess_s = max(np_nopb["fs_ess_per_s"], np_pb["fs_ess_per_s"])
    out = {
        "first_fit_ratio": px_row["first_fit_s"] / np_nopb["first_fit_s"],
        "repeat_speedup_vs_no_progress_bar": np_nopb["repeat_fit_s"] / px_row["repeat_fit_s"],
        "repeat_speedup_vs_progress_bar": np_pb["repeat_fit_s"] / px_row["repeat_fit_s"],
        "fs_ess_per_s_ratio_vs_best_numpyro": px_row["fs_ess_per_s"] / best_np_ess_s,
        "gradient_ratio_xla": px_row["ratio_to_raw_gradient_xla"],
        "gradient_ratio_python": px_row["ratio_to_raw_gradient_python"],
        "us_per_gradient_vs_numpyro_scan": px_row["us_per_gradient"] / rows[3]["us_per_gradient"],
    }
    out["met"] = {
        "first_fit <= 0.5x NumPyro": out["first_fit_ratio"] <= 0.5,
        "repeat fit >= 10x faster (both NumPyro modes)": min(
            out["repeat_speedup_vs_no_progress_bar"], out["repeat_speedup_vs_progress_bar"]
        )
        >= 10,
        "function-space ESS/s >= NumPyro": out["fs_ess_per_s_ratio_vs_best_numpyro"] >= 1,
        "sampler cost/gradient <= 1.5x raw (in-XLA loop)": out["gradient_ratio_xla"] <= 1.5,
        "sampler cost/gradient <= 1.5x raw (Python loop)": out["gradient_ratio_python"] <= 1.5,
    }
    return out


# ---------------------------------------------------------------------------- report
def _f(value: Any, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def markdown(results: list[dict[str, Any]], env: dict[str, Any]) -> str:
    lines = [
        "# NUTS: posterax vs NumPyro",
        "",
        f"jax {env['jax']}, numpyro {env['numpyro']}, blackjax {env['blackjax']}, "
        f"{env['cpu_count']} CPU cores, float32, 1 chain, target acceptance {TARGET_ACCEPT}. "
        "Times in seconds; ESS = min bulk ESS (ArviZ); fs = function space (predictions at 50 "
        "training inputs); µs/grad = sampler seconds of the repeat fit / gradient evaluations; "
        "raw = jitted value_and_grad in an in-XLA loop (Python loop in brackets).",
        "",
    ]
    for res in results:
        lines += [
            f"## {res['problem']} (warmup {res['num_warmup']}, samples {res['num_samples']})",
            "",
            "| path | first fit | repeat fit | sampler | grads | fs ESS | fs ESS/s | "
            "weight ESS | div | µs/grad | raw µs/grad | ×raw |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in res["rows"]:
            raw = r["raw"]
            lines.append(
                f"| {r['path']} | {r['first_fit_s']:.2f} | {r['repeat_fit_s']:.3f} | "
                f"{_f(r.get('sampler_s'), '.3f')} | {_f(r.get('gradients'), 'd')} | "
                f"{r['fs']['min_ess_bulk']:.0f} | {r['fs_ess_per_s']:.0f} | "
                f"{r['weight_min_ess']:.0f} | {_f(r.get('divergences'), 'd')} | "
                f"{_f(r.get('us_per_gradient'), '.2f')} | {raw['xla_loop_us']:.2f} "
                f"({raw['python_loop_us']:.1f}) | {_f(r.get('ratio_to_raw_gradient_xla'), '.2f')} |"
            )
        t = res["targets"]
        replayed = all(
            r["counted_run_sampling_steps"] == r["sampling_steps"]
            for r in res["rows"]
            if "counted_run_sampling_steps" in r
        )
        lines += [
            "",
            "Gradient counts: counted re-runs (same key) reproduced the timed runs' sampling "
            f"n_steps {'exactly' if replayed else 'NOT exactly (counts are approximate)'}.",
            "",
            f"posterax run_nuts / NumPyro: first fit ×{t['first_fit_ratio']:.2f}; repeat fit "
            f"{t['repeat_speedup_vs_no_progress_bar']:.1f}× faster than progress_bar=False, "
            f"{t['repeat_speedup_vs_progress_bar']:.1f}× faster than progress_bar=True; fs ESS/s "
            f"×{t['fs_ess_per_s_ratio_vs_best_numpyro']:.2f} of NumPyro's best; sampler cost "
            f"{t['gradient_ratio_xla']:.2f}× raw gradient (in-XLA), "
            f"{t['gradient_ratio_python']:.2f}× (Python loop); µs/grad "
            f"×{t['us_per_gradient_vs_numpyro_scan']:.2f} of NumPyro's kernel in a scan.",
            "",
            "Targets: "
            + "; ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in t["met"].items())
            + ".",
            "",
        ]
    return "\n".join(lines)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["linear", "bnn", "iris"],
                        choices=["linear", "bnn", "iris"])  # fmt: skip
    parser.add_argument("--num-warmup", type=int, default=1000)
    parser.add_argument("--num-samples", type=int, default=2000)
    parser.add_argument("--bnn-warmup", type=int, default=1000)
    parser.add_argument("--bnn-samples", type=int, default=2000)
    parser.add_argument("--out-dir", type=Path, default=HERE / "results")
    args = parser.parse_args()

    # Start the JAX backend and NumPyro's distributions once, outside every timed fit.
    jax.block_until_ready(jax.jit(lambda x: jnp.tanh(x) + 1.0)(jnp.ones(3)))
    dist.Normal(0.0, 1.0).log_prob(jnp.ones(3)).block_until_ready()

    builders = {
        "linear": lambda: linear_problem(args.num_warmup, args.num_samples),
        "bnn": lambda: bnn_problem(args.bnn_warmup, args.bnn_samples),
        "iris": lambda: iris_problem(args.bnn_warmup, args.bnn_samples),
    }
    env = {
        "jax": jax.__version__, "numpyro": numpyro.__version__,
        "blackjax": blackjax.__version__, "arviz": az.__version__,
        "posterax": getattr(px, "__version__", "dev"), "python": platform.python_version(),
        "cpu_count": os.cpu_count(), "platform": platform.platform(),
        "device": str(jax.devices()[0]),
    }  # fmt: skip
    results = [bench_problem(builders[name]()) for name in args.models]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "nuts_vs_numpyro.json").write_text(
        json.dumps(_jsonable({"environment": env, "results": results}), indent=2) + "\n"
    )
    table = markdown(results, env)
    (args.out_dir / "nuts_vs_numpyro.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
