"""posterax's IVON against the authors' PyTorch optimizer ``ivon-opt``, and IVON's test NLL
beside mean-field VI and MAP.

1. Trajectories. A 4-32-1 tanh MLP on a synthetic regression (256 rows, loss 0.5 * mean squared
   error), 300 steps of batch 32. Both sides start from the same weights, take the same
   minibatches and the same standard-normal noise (drawn here in numpy; the torch side's
   ``torch.randn`` is replaced by a feed of it), in float64. Reported: the largest relative
   difference of the mean m and of the Hessian estimate h over all steps (per step
   ``max|a - b| / max|b|``, and per coordinate ``|a - b| / (|b| + 1e-8)``), for two settings
   (ivon-opt's defaults with mc_samples=1; a short-horizon setting with mc_samples=2 and
   clipping; its hess_init is 0.125 because ivon-opt builds h from ``torch.as_tensor(hess_init)``,
   a float32 number, so 0.1 would differ by 1.5e-8 at the first step for that reason alone).
   Then seconds per step in float32: ivon-opt's eager loop, posterax's jitted step
   called once per step, and posterax's steps inside one ``lax.scan``.
2. Test NLL of ``method="ivon"`` (the defaults of px.methods.IVON), ``"vi"`` and ``"map"`` on
   the first 3 splits of boston, concrete and wine (the protocol of ``posterax benchmark uci``:
   50 ReLU units, early stopping on 10%; NLL in the original units), and on Iris (stratified
   70/30 splits, seeds 0-2, 50 ReLU units).

Run: .venv/bin/python benchmarks/ivon_vs_ivon_opt.py [--part trajectories|nll|all]
     (the torch side runs with --peer-python, default /work/bench-venv-laplace/bin/python,
     which needs torch and ivon-opt==0.1.3; never posterax's own environment).
Writes benchmarks/results/ivon_vs_ivon_opt.json and .md.
"""

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
N, D, H, STEPS, BATCH = 256, 4, 32, 300, 32
CONFIGS = [
    {
        "name": "defaults",
        "lr": 0.1,
        "ess": float(N),
        "hess_init": 1.0,
        "beta1": 0.9,
        "beta2": 0.99999,
        "weight_decay": 1e-4,
        "mc_samples": 1,
        "clip_radius": math.inf,
    },
    {
        "name": "short_mc2_clip",
        "lr": 0.2,
        "ess": float(N),
        "hess_init": 0.125,  # a float32 number: ivon-opt rounds hess_init to float32
        "beta1": 0.9,
        "beta2": 0.99,
        "weight_decay": 1e-2,
        "mc_samples": 2,
        "clip_radius": 0.05,
    },
]


def problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, D))
    y = np.sin(X @ np.array([1.0, -0.5, 0.3, 0.0])) + 0.1 * rng.normal(size=N)
    init = [
        rng.normal(size=(D, H)) / math.sqrt(D),
        np.zeros(H),
        rng.normal(size=(H, 1)) / math.sqrt(H),
        np.zeros(1),
    ]
    batches = np.stack([rng.choice(N, BATCH, replace=False) for _ in range(STEPS)])
    n_params = sum(p.size for p in init)
    noise = {c["name"]: rng.standard_normal((STEPS, c["mc_samples"], n_params)) for c in CONFIGS}
    return X, y, init, batches, noise


def loss_fn(params, xb, yb):
    w1, b1, w2, b2 = params
    out = jnp.tanh(xb @ w1 + b1) @ w2 + b2
    return 0.5 * jnp.mean((out[:, 0] - yb) ** 2)


def make_step(opt, shapes):
    sizes = [math.prod(s) for s in shapes]
    cuts = list(np.cumsum(sizes)[:-1])

    def unflat(flat):  # (mc, P) -> list of (mc, *shape), ravelled in torch's order
        parts = jnp.split(flat, cuts, axis=-1)
        return [p.reshape(flat.shape[0], *s) for p, s in zip(parts, shapes, strict=True)]

    def step(params, state, xb, yb, eps):
        noise = unflat(eps)
        scale = opt.posterior_scale(state)
        weights = [m + s * e for m, s, e in zip(params, scale, noise, strict=True)]
        grads = jax.vmap(jax.grad(loss_fn), (0, None, None))(weights, xb, yb)
        updates, state = opt.update(grads, state, params, noise=noise)
        return optax.apply_updates(params, updates), state

    return step


def run_jax(config, X, y, init, batches, eps, dtype):
    from posterax.inference.ivon import ivon

    opt = ivon(
        config["lr"],
        config["ess"],
        hess_init=config["hess_init"],
        beta1=config["beta1"],
        beta2=config["beta2"],
        weight_decay=config["weight_decay"],
        mc_samples=config["mc_samples"],
        clip_radius=config["clip_radius"],
    )
    params = [jnp.asarray(p, dtype) for p in init]
    Xj, yj, epsj = jnp.asarray(X, dtype), jnp.asarray(y, dtype), jnp.asarray(eps, dtype)
    step = jax.jit(make_step(opt, [p.shape for p in init]))
    state = opt.init(params)
    means, hess = [], []
    step(params, state, Xj[batches[0]], yj[batches[0]], epsj[0])  # compile
    start = time.perf_counter()
    for t, idx in enumerate(batches):
        params, state = step(params, state, Xj[idx], yj[idx], epsj[t])
        if dtype == jnp.float64:
            means.append(np.concatenate([np.asarray(p).ravel() for p in params]))
            hess.append(np.concatenate([np.asarray(h).ravel() for h in state.hess]))
    jax.block_until_ready(params)
    per_step = (time.perf_counter() - start) / len(batches)

    def scanned(params, state):
        def body(carry, inputs):
            idx, e = inputs
            return step(*carry, Xj[idx], yj[idx], e), None

        return jax.lax.scan(body, (params, state), (jnp.asarray(batches), epsj))[0]

    scanned = jax.jit(scanned)
    fresh = [jnp.asarray(p, dtype) for p in init]
    jax.block_until_ready(scanned(fresh, opt.init(fresh)))  # compile
    start = time.perf_counter()
    jax.block_until_ready(scanned(fresh, opt.init(fresh)))
    per_step_scan = (time.perf_counter() - start) / len(batches)
    return np.array(means), np.array(hess), per_step, per_step_scan


def rel_diffs(a, b):
    per_step = np.max(np.abs(a - b), axis=1) / np.max(np.abs(b), axis=1)
    per_coord = np.abs(a - b) / (np.abs(b) + 1e-8)
    return float(per_step.max()), float(per_coord.max())


def trajectories(peer_python):
    X, y, init, batches, noise = problem()
    with tempfile.TemporaryDirectory() as tmp:
        inputs, outputs = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(
            inputs,
            X=X,
            y=y,
            batches=batches,
            configs=np.array(json.dumps(CONFIGS)),
            **{f"init_{i}": p for i, p in enumerate(init)},
            **{f"noise_{k}": v for k, v in noise.items()},
        )
        subprocess.run(
            [peer_python, str(HERE / "ivon_vs_ivon_opt_torch.py"), str(inputs), str(outputs)],
            check=True,
        )
        torch_out = dict(np.load(outputs))
    results = {
        "problem": f"{D}-{H}-1 tanh MLP, {N} rows, batch {BATCH}, {STEPS} steps, float64",
        "torch": str(torch_out["torch_version"]),
        "ivon_opt": str(torch_out["ivon_version"]),
        "torch_threads": int(torch_out["threads"]),
        "configs": {},
    }
    for config in CONFIGS:
        name = config["name"]
        m, h, _, _ = run_jax(config, X, y, init, batches, noise[name], jnp.float64)
        _, _, jit_step, scan_step = run_jax(config, X, y, init, batches, noise[name], jnp.float32)
        torch_step = float(torch_out[f"seconds_{name}"])
        m_step, m_coord = rel_diffs(m, torch_out[f"m_{name}"])
        h_step, h_coord = rel_diffs(h, torch_out[f"h_{name}"])
        results["configs"][name] = {
            "settings": {k: v for k, v in config.items() if k != "name"},
            "m_max_rel_diff_per_step": m_step,
            "m_max_rel_diff_per_coordinate": m_coord,
            "h_max_rel_diff_per_step": h_step,
            "h_max_rel_diff_per_coordinate": h_coord,
            "h_range": [float(h[-1].min()), float(h[-1].max())],
            "seconds_per_step_float32": {
                "ivon_opt_eager": torch_step,
                "posterax_jit_step": jit_step,
                "posterax_scan": scan_step,
            },
            "ratio_ivon_opt_over_posterax_jit_step": torch_step / jit_step,
            "ratio_ivon_opt_over_posterax_scan": torch_step / scan_step,
        }
    return results


def nll_uci(datasets, splits, methods):
    from posterax.cli.benchmark_uci import score_split
    from posterax.data.uci import find_uci_dir

    root = find_uci_dir("/work/shared/data/uci")
    out = {}
    for folder in datasets:
        for method in methods:
            rows = []
            for split in range(splits):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    r = score_split(method, folder, split, root)
                rows.append({k: r[k] for k in ("test_ll", "rmse", "fit_seconds")})
                print(folder, method, split, rows[-1], flush=True)
            out.setdefault(folder, {})[method] = rows
    return out


def nll_iris(methods, seeds=3):
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split

    import posterax as px

    X, y = load_iris(return_X_y=True)
    out = {}
    for method in methods:
        rows = []
        for seed in range(seeds):
            X_tr, X_te, y_tr, y_te = train_test_split(
                X, y, test_size=0.3, random_state=seed, stratify=y
            )
            clf = px.BayesianClassifier(
                method,
                network=px.networks.MLP((50,), "relu"),
                random_state=seed,
                progress_bar=False,
            )
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                clf.fit(X_tr, y_tr)
            seconds = time.perf_counter() - start
            p = np.asarray(clf.predict_proba(X_te), np.float64)
            nll = float(-np.mean(np.log(np.clip(p[np.arange(len(y_te)), y_te], 1e-300, None))))
            rows.append(
                {
                    "nll": nll,
                    "accuracy": float(np.mean(p.argmax(1) == y_te)),
                    "fit_seconds": seconds,
                }
            )
            print("iris", method, seed, rows[-1], flush=True)
        out[method] = rows
    return out


def markdown(results):
    lines = ["# IVON: posterax vs ivon-opt, and test NLL beside VI and MAP", ""]
    traj = results.get("trajectories")
    if traj:
        lines += [
            f"Problem: {traj['problem']}; ivon-opt {traj['ivon_opt']}, torch {traj['torch']} "
            f"({traj['torch_threads']} threads); same initial weights, minibatches and noise.",
            "",
            "| setting | max rel diff m (per step) | m (per coord) | h (per step) | h (per coord)"
            " | s/step ivon-opt | s/step posterax jit | s/step posterax scan |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, r in traj["configs"].items():
            s = r["seconds_per_step_float32"]
            lines.append(
                f"| {name} | {r['m_max_rel_diff_per_step']:.1e} | "
                f"{r['m_max_rel_diff_per_coordinate']:.1e} | {r['h_max_rel_diff_per_step']:.1e} | "
                f"{r['h_max_rel_diff_per_coordinate']:.1e} | {s['ivon_opt_eager'] * 1e3:.3f} ms | "
                f"{s['posterax_jit_step'] * 1e3:.3f} ms | {s['posterax_scan'] * 1e3:.4f} ms |"
            )
        lines.append("")
    for key, label, metric, sign in (
        ("uci", "UCI (first 3 splits), test NLL in original units", "test_ll", -1),
        ("iris", "Iris (3 stratified 70/30 splits), test NLL", "nll", 1),
    ):
        table = results.get(key)
        if not table:
            continue
        lines += [f"## {label}: mean ± se (lower is better)", ""]
        if key == "iris":
            table = {"iris": table}
        methods = list(next(iter(table.values())))
        lines += ["| data | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
        for data, by_method in table.items():
            cells = []
            for method in methods:
                vals = sign * np.array([r[metric] for r in by_method[method]])
                se = vals.std(ddof=1) / math.sqrt(len(vals)) if len(vals) > 1 else 0.0
                cells.append(f"{vals.mean():.3f} ± {se:.3f}")
            lines.append(f"| {data} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", choices=("trajectories", "nll", "all"), default="all")
    parser.add_argument("--peer-python", default="/work/bench-venv-laplace/bin/python")
    parser.add_argument("--splits", type=int, default=3)
    parser.add_argument("--methods", default="ivon,vi,map", help="refit these; keep the rest")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "ivon_vs_ivon_opt.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    if args.part in ("trajectories", "all"):
        results["trajectories"] = trajectories(args.peer_python)
    if args.part in ("nll", "all"):
        jax.config.update("jax_enable_x64", False)  # the estimators' usual float32
        methods = tuple(args.methods.split(","))
        uci = nll_uci(("bostonHousing", "concrete", "wine-quality-red"), args.splits, methods)
        for data, by_method in uci.items():
            results.setdefault("uci", {}).setdefault(data, {}).update(by_method)
        results.setdefault("iris", {}).update(nll_iris(methods))
    results["machine"] = {"python": sys.version.split()[0], "jax": jax.__version__}
    path.write_text(json.dumps(results, indent=2))
    (RESULTS / "ivon_vs_ivon_opt.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
