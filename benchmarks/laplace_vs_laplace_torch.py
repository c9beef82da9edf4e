"""posterax vs laplace-torch: KFAC all-weights Laplace on a 1-50-50-1 tanh MLP.

Both start from the same MAP weights (trained once by posterax on 1,000 points of
y = sin(x) x + 0.3 eps, x ~ U(-3, 3)), fit KFAC over all weights, tune the prior precision and the
noise jointly by the marginal likelihood (Adam, lr 0.1, from prior 1, sigma 1, same steps), and
predict with the closed-form GLM on 1,000 test points. Times are fit + tune + predict, cold (first
call, with JAX compilation) and warm (repeat).

laplace-torch runs in its own environment (never a dependency of posterax):

    python -m venv /work/bench-venv-laplace
    /work/bench-venv-laplace/bin/pip install torch==2.13.0 laplace-torch
    /work/bench-venv-laplace/bin/pip uninstall -y torchvision   # see ../shared/PEERS.md

Run: python benchmarks/laplace_vs_laplace_torch.py [--peer-python PATH] [--steps 100]
Writes benchmarks/results/laplace_vs_laplace_torch.json.
"""

import argparse
import json
import math
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_PEER = "/work/bench-venv-laplace/bin/python"


def make_data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, size=(n, 1)).astype(np.float32)
    y = (np.sin(x[:, 0]) * x[:, 0] + 0.3 * rng.normal(size=n)).astype(np.float32)
    return x, y


def gaussian_nll(y, mean, sd):
    return float(np.mean(0.5 * np.log(2 * math.pi * sd**2) + 0.5 * ((y - mean) / sd) ** 2))


def run_posterax(weights_path, steps):
    import jax
    import jax.numpy as jnp
    import optax

    from posterax.inference import NetworkModel, TrainingSettings, fit_map
    from posterax.inference.laplace import fit_laplace, glm_predictive
    from posterax.models import MLP, GaussianLikelihood, RegressionHead

    X, y = make_data(1000, 0)
    X_test, y_test = make_data(1000, 1)
    net = MLP((50, 50), "tanh", 1)
    model = NetworkModel(RegressionHead(net), GaussianLikelihood())
    settings = TrainingSettings(
        optax.adam(1e-2), num_epochs=1000, batch_size=100, progress_bar=False
    )
    map_post = fit_map(jax.random.key(0), model, lambda k: net.init(k, 1), X, y, settings)
    params = jax.tree_util.tree_map(lambda leaf: np.asarray(leaf[0]), map_post.draws)
    np.savez(
        weights_path,
        **{f"{name}{i}": params["net"][i][name] for i in range(3) for name in ("w", "b")},
    )

    def once():
        start = time.perf_counter()
        post = fit_laplace(
            model,
            {"net": params["net"], "sigma": jnp.float32(1.0)},
            X,
            y,
            hessian_structure="kron",
            prior_precision=1.0,
            tune="marglik",
            tune_steps=steps,
            tune_learning_rate=0.1,
            batch_size=1000,
        )
        pred = glm_predictive(post, X_test, batch_size=1000)
        mean = np.asarray(pred.mean[0])
        sd = np.asarray(pred.scale[0])
        seconds = time.perf_counter() - start
        return {
            "seconds": seconds,
            "test_nll": gaussian_nll(y_test, mean, sd),
            "prior_precision": float(np.asarray(post.info["prior_precision"])),
            "sigma": post.info["sigma"],
            "log_marginal_likelihood": post.info["log_marginal_likelihood"],
            "timing": post.info["timing"],
        }

    cold = once()
    warm = once()
    map_nll = gaussian_nll(
        y_test, np.asarray(model.apply_fn(params, X_test)), float(params["sigma"])
    )
    return {"cold": cold, "warm": warm, "map_test_nll": map_nll}


def run_peer(weights_path, steps):
    """Runs inside the laplace-torch environment."""
    import torch
    from laplace import Laplace

    torch.set_num_threads(2)
    weights = np.load(weights_path)
    model = torch.nn.Sequential(
        torch.nn.Linear(1, 50),
        torch.nn.Tanh(),
        torch.nn.Linear(50, 50),
        torch.nn.Tanh(),
        torch.nn.Linear(50, 1),
    )
    with torch.no_grad():
        for i, layer in enumerate([model[0], model[2], model[4]]):
            layer.weight.copy_(torch.from_numpy(weights[f"w{i}"].T.copy()))
            layer.bias.copy_(torch.from_numpy(weights[f"b{i}"]))
    X, y = make_data(1000, 0)
    X_test, y_test = make_data(1000, 1)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y)[:, None]),
        batch_size=1000,
    )
    X_test_t = torch.from_numpy(X_test)

    def once():
        start = time.perf_counter()
        la = Laplace(model, "regression", subset_of_weights="all", hessian_structure="kron")
        la.fit(loader)
        log_prior = torch.zeros(1, requires_grad=True)
        log_sigma = torch.zeros(1, requires_grad=True)
        optimizer = torch.optim.Adam([log_prior, log_sigma], lr=0.1)
        for _ in range(steps):
            optimizer.zero_grad()
            neg = -la.log_marginal_likelihood(log_prior.exp(), log_sigma.exp())
            neg.backward()
            optimizer.step()
        f_mu, f_var = la(X_test_t, pred_type="glm")
        mean = f_mu.squeeze().detach().numpy()
        sd = np.sqrt(f_var.squeeze().detach().numpy() + la.sigma_noise.item() ** 2)
        seconds = time.perf_counter() - start
        return {
            "seconds": seconds,
            "test_nll": gaussian_nll(y_test, mean, sd),
            "prior_precision": float(log_prior.exp().item()),
            "sigma": float(log_sigma.exp().item()),
            "log_marginal_likelihood": float(-neg.item()),
        }

    return {"cold": once(), "warm": once(), "torch": torch.__version__}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--peer-python", default=DEFAULT_PEER)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--peer-only", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer_only:
        print(json.dumps(run_peer(args.peer_only, args.steps)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        weights = str(Path(tmp) / "map_weights.npz")
        ours = run_posterax(weights, args.steps)
        try:
            out = subprocess.run(
                [args.peer_python, __file__, "--peer-only", weights, "--steps", str(args.steps)],
                capture_output=True,
                text=True,
                check=True,
            )
            peer = json.loads(out.stdout.strip().splitlines()[-1])
        except (OSError, subprocess.CalledProcessError) as err:
            peer = {"error": f"{err}: {getattr(err, 'stderr', '')[-2000:]}"}
    result = {"posterax": ours, "laplace_torch": peer, "steps": args.steps}
    if "error" not in peer:
        result["time_ratio_warm"] = ours["warm"]["seconds"] / peer["warm"]["seconds"]
        result["time_ratio_cold"] = ours["cold"]["seconds"] / peer["cold"]["seconds"]
        result["nll_difference"] = ours["warm"]["test_nll"] - peer["warm"]["test_nll"]
    path = HERE / "results" / "laplace_vs_laplace_torch.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print(
        f"{'':14}{'seconds cold':>14}{'seconds warm':>14}{'test NLL':>10}{'sigma':>8}{'prior':>8}"
    )
    for name, res in (("posterax", ours), ("laplace-torch", peer)):
        if "error" in res:
            print(f"{name:14} failed: {res['error'][:300]}")
            continue
        w = res["warm"]
        print(
            f"{name:14}{res['cold']['seconds']:14.3f}{w['seconds']:14.3f}{w['test_nll']:10.3f}"
            f"{w['sigma']:8.3f}{w['prior_precision']:8.3g}"
        )
    print(f"MAP test NLL {ours['map_test_nll']:.3f}; wrote {path}")


if __name__ == "__main__":
    main()
