"""laplace-torch half of the Iris Laplace cross-check (see laplace_iris_crosscheck.py).

Loads the posterax MAP weights and standardised data from the .npz, builds the identical
``Linear(4, 16) - Tanh - Linear(16, 3)`` (torch weights are (out, in): transposed), and for
kron / full / diag over all weights runs laplace-torch with the GGN, tunes the prior precision
by the marginal likelihood (from 1, as posterax does), and records the tuned prior precision,
``log_marginal_likelihood()`` and the test NLL of the GLM predictive (probit and MC), plus the
same at prior precision 1. Conventions: CrossEntropyLoss(reduction="sum"), temperature 1,
sigma_noise 1 for classification, prior precision starting at 1.

Run: /work/bench-venv-laplace/bin/python benchmarks/laplace_iris_crosscheck_torch.py
"""

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from laplace import Laplace

HERE = Path(__file__).resolve().parent
STRUCTURES = ("kron", "full", "diag")


def nll(probs, y):
    probs = np.asarray(probs, dtype=np.float64)
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-300, None))))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--npz", default="/tmp/laplace_iris.npz")
    parser.add_argument("--mc-samples", type=int, default=2000)
    parser.add_argument("--dtype", default="float64", choices=("float32", "float64"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(2)
    dtype = getattr(torch, args.dtype)
    torch.set_default_dtype(dtype)
    data = np.load(args.npz)

    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    with torch.no_grad():
        for i, layer in enumerate([model[0], model[2]]):
            layer.weight.copy_(torch.from_numpy(data[f"w{i}"].T.astype(np.float64)))
            layer.bias.copy_(torch.from_numpy(data[f"b{i}"].astype(np.float64)))
    model = model.to(dtype)
    X_tr = torch.from_numpy(data["X_train"]).to(dtype)
    y_tr = torch.from_numpy(data["y_train"]).long()
    X_te = torch.from_numpy(data["X_test"]).to(dtype)
    y_te = data["y_test"].astype(int)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(X_tr, y_tr), batch_size=len(y_tr)
    )
    with torch.no_grad():
        map_probs = torch.softmax(model(X_te), -1).numpy()
        train_loss = torch.nn.functional.cross_entropy(model(X_tr), y_tr, reduction="sum")
    results = {
        "map": {"test_nll": nll(map_probs, y_te), "train_log_lik": -float(train_loss)},
        "torch": torch.__version__,
        "dtype": args.dtype,
    }

    def predict(la):
        probit = la(X_te, pred_type="glm", link_approx="probit").detach().numpy()
        torch.manual_seed(1)
        mc = la(X_te, pred_type="glm", link_approx="mc", n_samples=args.mc_samples)
        return nll(probit, y_te), nll(mc.detach().numpy(), y_te)

    for structure in STRUCTURES:
        la = Laplace(
            model, "classification", subset_of_weights="all", hessian_structure=structure
        )
        la.fit(loader)
        assert la.temperature == 1.0 and float(la.sigma_noise) == 1.0
        # Fixed prior precision 1 (no tuning).
        la.prior_precision = 1.0
        probit, mc = predict(la)
        entry = {
            "prior1": {
                "prior_precision": 1.0,
                "log_marginal_likelihood": float(la.log_marginal_likelihood()),
                "log_likelihood": float(la.log_likelihood),
                "log_det_ratio": float(la.log_det_ratio),
                "scatter": float(la.scatter),
                "test_nll_glm_probit": probit,
                "test_nll_glm_mc": mc,
            }
        }
        # Evidence on a grid (the exact maximiser, independent of the optimiser).
        grid = np.logspace(-3, 2, 501)
        lml = []
        with torch.no_grad():
            for p in grid:
                lml.append(float(la.log_marginal_likelihood(torch.tensor(p, dtype=dtype))))
        entry["grid_argmax_prior_precision"] = float(grid[int(np.argmax(lml))])
        entry["grid_max_log_marginal_likelihood"] = float(np.max(lml))
        # laplace-torch's own tuning: defaults (100 Adam steps, lr 0.1, from 1) and 300 steps
        # (posterax's default count).
        for steps in (100, 300):
            la.optimize_prior_precision(
                pred_type="glm",
                method="marglik",
                n_steps=steps,
                lr=0.1,
                init_prior_prec=1.0,
                link_approx="probit",
            )
            probit, mc = predict(la)
            entry[f"tuned_{steps}"] = {
                "prior_precision": float(la.prior_precision),
                "log_marginal_likelihood": float(la.log_marginal_likelihood()),
                "log_det_ratio": float(la.log_det_ratio),
                "scatter": float(la.scatter),
                "test_nll_glm_probit": probit,
                "test_nll_glm_mc": mc,
            }
        results[structure] = entry
        print(structure, json.dumps(entry), flush=True)

    print(json.dumps(results, indent=2))
    out = HERE / "results" / "laplace_iris_crosscheck_torch.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
