"""The PyTorch half of ``ivon_vs_ivon_opt.py``: the authors' ``ivon-opt`` optimizer on the
inputs that script wrote (initial weights, minibatch indices, the standard-normal noise of every
step), its ``torch.randn`` replaced by a feed of that noise. Writes the trajectories of the mean
and the Hessian estimate, and the seconds per step.

Run by ``ivon_vs_ivon_opt.py`` with the peer venv's python (torch 2.13 CPU, ivon-opt 0.1.3):
    /work/bench-venv-laplace/bin/python benchmarks/ivon_vs_ivon_opt_torch.py IN.npz OUT.npz
"""

import json
import sys
import time

import ivon
import numpy as np
import torch


def run(inputs, config, dtype):
    X = torch.tensor(inputs["X"], dtype=dtype)
    y = torch.tensor(inputs["y"], dtype=dtype)
    params = [torch.nn.Parameter(torch.tensor(inputs[f"init_{i}"], dtype=dtype)) for i in range(4)]
    batches = inputs["batches"]
    noise = inputs[f"noise_{config['name']}"]  # (steps, mc_samples, n_params)
    feed = iter(noise.reshape(-1, noise.shape[-1]))
    real_randn = torch.randn

    def randn(*shape, **kwargs):  # the optimizer's only call: randn(numel, device, dtype)
        return torch.tensor(next(feed), dtype=kwargs.get("dtype", dtype))

    opt = ivon.IVON(
        params,
        lr=config["lr"],
        ess=config["ess"],
        hess_init=config["hess_init"],
        beta1=config["beta1"],
        beta2=config["beta2"],
        weight_decay=config["weight_decay"],
        mc_samples=config["mc_samples"],
        clip_radius=config["clip_radius"],
    )

    def loss_fn(xb, yb):
        w1, b1, w2, b2 = params
        out = torch.tanh(xb @ w1 + b1) @ w2 + b2
        return 0.5 * torch.mean((out[:, 0] - yb) ** 2)

    means, hess = [], []
    torch.randn = randn
    try:
        start = time.perf_counter()
        for idx in batches:
            xb, yb = X[idx], y[idx]
            for _ in range(config["mc_samples"]):
                with opt.sampled_params(train=True):
                    opt.zero_grad()
                    loss_fn(xb, yb).backward()
            opt.step()
            if dtype == torch.float64:
                means.append(torch.cat([p.detach().flatten() for p in params]).numpy().copy())
                hess.append(opt.param_groups[0]["hess"].numpy().copy())
        seconds = time.perf_counter() - start
    finally:
        torch.randn = real_randn
    return np.array(means), np.array(hess), seconds / len(batches)


def main():
    inputs = dict(np.load(sys.argv[1]))
    configs = json.loads(str(inputs.pop("configs")))
    out = {}
    for config in configs:
        means, hess, _ = run(inputs, config, torch.float64)
        out[f"m_{config['name']}"], out[f"h_{config['name']}"] = means, hess
        run(inputs, config, torch.float32)  # warm-up
        out[f"seconds_{config['name']}"] = np.array(run(inputs, config, torch.float32)[2])
    out["torch_version"] = np.array(torch.__version__)
    out["ivon_version"] = np.array(getattr(ivon, "__version__", "0.1.3"))
    out["threads"] = np.array(torch.get_num_threads())
    np.savez(sys.argv[2], **out)


if __name__ == "__main__":
    main()
