"""posterax vs laplace-torch: KFAC over all layers of a small CNN, convolutions included.

scikit-learn's 8x8 digits ((N, 8, 8, 1) in [0, 1], the fixed stratified split of
``px.data.digits()``: 1,347 train / 450 test) and the CNN

    conv(1->16, 3x3, stride 1, pad 1) -> relu -> conv(16->32, 3x3, stride 2, pad 1) -> relu
    -> flatten -> dense(512->10)        (biases everywhere; 9,930 weights)

written in Flax NNX for posterax and in torch (NCHW) for laplace-torch. The MAP is trained once
by posterax (``fit_map``); its weights go to torch exactly (conv kernels HWIO -> OIHW; the dense
layer's rows from the NHWC to the NCHW flatten order), and the two networks' logits are checked
to agree before anything else. Then, on identical weights and data, KFAC over all weights
("kron", subset "all", exact GGN) is fitted by posterax and by laplace-torch with each of its
backends that factor convolutions (BackPACK, Curvlinops, ASDL; plus Curvlinops' KFAC-reduce as
a reference point), and compared on

* the Kronecker factors of every layer, after matching conventions (see ``CONVENTIONS``),
* the log marginal likelihood at fixed prior precisions 0.1, 1 and 10,
* the GLM predictive (probit link on both sides) at prior precision 1 and after tuning the
  prior precision by the marginal likelihood (Adam, lr 0.1, 100 steps from 1, both sides),
* time (curvature fit + tune + predict), cold (first call in a fresh process; posterax's
  includes JAX compilation) and warm (repeat), and the peak RSS of each side's process.

Each side runs in its own process (posterax in this interpreter, laplace-torch in its own
environment, one process per backend: ASDL cannot hook a module BackPACK has extended).

What the backends do (laplace-torch 0.3, all exact GGN here, no Monte Carlo): Curvlinops
(``KFACLinearOperator``, ``FisherType.TYPE2``, ``kfac_approx="expand"`` by default) and ASDL
(``fisher_exact``) compute KFAC-expand, posterax's KFC; BackPACK (``KFLR``) pairs KFC's ``A``
(not divided by T) with the exact bias GGN as ``G``, which its docs call |T| x KFC's factor. All
three put each layer's bias in its own block without weight-bias cross terms, where posterax
folds it into ``A`` (``W~ = [W; b]``): ``split_bias_lml`` rebuilds laplace-torch's block
structure from posterax's factors to separate that difference from the factors themselves.

    python -m venv /work/bench-venv-laplace
    /work/bench-venv-laplace/bin/pip install torch==2.13.0
    echo torch==2.13.0 > /tmp/c.txt
    /work/bench-venv-laplace/bin/pip install -c /tmp/c.txt laplace-torch
    /work/bench-venv-laplace/bin/pip uninstall -y torchvision   # see ../shared/PEERS.md

Run: python benchmarks/kfac_conv_vs_laplace_torch.py [--peer-python PATH]
Writes benchmarks/results/kfac_conv_vs_laplace_torch.{json,md}.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_PEER = "/work/bench-venv-laplace/bin/python"
PRIORS = (0.1, 1.0, 10.0)
BACKENDS = ("backpack", "curvlinops", "asdl", "curvlinops-reduce")
LAYERS = ("conv1", "conv2", "dense")
PEER_CHUNK = 50  # test images per laplace-torch predictive call (memory)
BATCH = 256  # curvature minibatch, both sides (factors are summed over batches either way)

CONVENTIONS = {
    "posterax": "W~ = [W; b] (d_in + 1, d_out) row-major, one block per layer with the bias as an "
    "extra input row; A = sum_{n,t} [x; 1][x; 1]^T over examples and output positions, G = "
    "(1/(N T)) sum_{n,t} g g^T (T = output positions of a conv, 1 for dense); conv patch order "
    "(kh, kw, c_in); dense input order NHWC (h, w, c).",
    "laplace-torch (Curvlinops, ASDL; KFAC-expand)": "per parameter: weight (d_out, d_in) "
    "row-major with block G (x) A, bias its own block G (no weight-bias cross terms); A = "
    "(1/(N T)) sum_{n,t} x x^T, G = sum_{n,t} g g^T; patch order (c_in, kh, kw); dense input "
    "order NCHW (c, h, w). So A_lt = A_px[:d_in, :d_in] / (N T) (permuted), G_lt = N T G_px, "
    "and the bias block G_lt equals posterax's bias-bias entry A_px[-1, -1] G_px = N T G_px.",
    "laplace-torch (BackPACK KFLR)": "weight block G (x) A with A = (1/N) sum_{n,t} x x^T and G "
    "= sum_n (sum_t g_nt)(sum_t g_nt)^T: the exact GGN of the bias (output gradients summed "
    "over positions before the outer product), documented in BackPACK as |T| x KFC's factor "
    "(equal only under spatially uncorrelated derivatives); bias block = that G.",
    "laplace-torch (Curvlinops reduce)": "KFAC-reduce: A = (1/N) sum_n xbar_n xbar_n^T with "
    "xbar_n = mean_t x_nt, G = sum_n (sum_t g_nt)(sum_t g_nt)^T.",
}


# --------------------------------------------------------------------------------------- data
def load_data():
    """The fixed stratified digits split: ``px.data.digits()`` where posterax has it."""
    try:
        import posterax as px

        split = px.data.digits()
        source = "posterax.data.digits()"
    except (ImportError, AttributeError):  # pragma: no cover - older posterax
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        data = load_digits()
        images = (data.images / 16.0).astype(np.float32)[..., None]
        labels = data.target.astype(np.int64)
        split = train_test_split(images, labels, test_size=450, stratify=labels, random_state=0)
        split = (split[0], split[2], split[1], split[3])
        source = "sklearn load_digits + train_test_split(test_size=450, stratify, seed 0)"
    X, y, X_test, y_test = (np.asarray(a) for a in split)
    return X.astype(np.float32), y.astype(np.int64), X_test.astype(np.float32), y_test, source


def metrics(probs, y, bins=15):
    probs = np.asarray(probs, dtype=np.float64)
    p = np.clip(probs[np.arange(len(y)), y], 1e-12, None)
    conf, pred = probs.max(1), probs.argmax(1)
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            ece += inside.mean() * abs((pred[inside] == y[inside]).mean() - conf[inside].mean())
    return {
        "nll": float(-np.mean(np.log(p))),
        "accuracy": float(np.mean(pred == y)),
        "ece": float(ece),
    }


def peak_rss_mb():
    """This process's peak RSS (VmHWM: unlike ru_maxrss it does not inherit the parent's)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------- posterax side
def _posterax_network():
    import jax
    from flax import nnx

    class CNN(nnx.Module):
        def __init__(self, rngs):
            self.conv1 = nnx.Conv(1, 16, (3, 3), padding=((1, 1), (1, 1)), rngs=rngs)
            self.conv2 = nnx.Conv(16, 32, (3, 3), strides=2, padding=((1, 1), (1, 1)), rngs=rngs)
            self.dense = nnx.Linear(4 * 4 * 32, 10, rngs=rngs)

        def __call__(self, x):
            h = jax.nn.relu(self.conv1(x))
            h = jax.nn.relu(self.conv2(h))
            return self.dense(h.reshape(x.shape[0], -1))

    return CNN(nnx.Rngs(0))


def _posterax_model(X):
    import jax

    from posterax.inference import NetworkModel
    from posterax.models import CategoricalLikelihood, ClassificationHead
    from posterax.networks import as_network

    adapter = as_network(_posterax_network(), X[:2], jax.random.key(0), where="benchmark")
    return adapter, NetworkModel(ClassificationHead(adapter), CategoricalLikelihood())


def to_torch_layout(params):
    """Flax NNX (HWIO kernels, NHWC flatten) -> torch state dict arrays (OIHW, NCHW flatten).
    Applied to the weights and to their positions in posterax's flat vector alike."""
    dense = np.asarray(params["dense"]["kernel"])  # (h * w * c, 10), rows (h, w, c)
    return {
        "conv1.weight": np.asarray(params["conv1"]["kernel"]).transpose(3, 2, 0, 1),
        "conv1.bias": np.asarray(params["conv1"]["bias"]),
        "conv2.weight": np.asarray(params["conv2"]["kernel"]).transpose(3, 2, 0, 1),
        "conv2.bias": np.asarray(params["conv2"]["bias"]),
        "dense.weight": dense.reshape(4, 4, 32, 10).transpose(3, 2, 0, 1).reshape(10, 512),
        "dense.bias": np.asarray(params["dense"]["bias"]),
    }


def train_map(work, epochs):
    """Trains the MAP once (posterax), saves it in both layouts, returns MAP test metrics."""
    import jax
    import optax

    from posterax.inference import TrainingSettings, fit_map

    X, y, X_test, y_test, _ = load_data()
    adapter, model = _posterax_model(X)
    settings = TrainingSettings(
        optax.adam(3e-3), num_epochs=epochs, batch_size=64, progress_bar=False
    )
    start = time.perf_counter()
    post = fit_map(jax.random.key(0), model, lambda k: adapter.initial, X, y, settings)
    seconds = time.perf_counter() - start
    params = jax.tree_util.tree_map(lambda leaf: np.asarray(leaf[0]), post.draws["net"])
    flat = {f"{k}/{n}": v for k, d in params.items() for n, v in d.items()}
    np.savez(work / "map_flax.npz", **flat)
    np.savez(work / "map_torch.npz", **to_torch_layout(params))
    logits = np.asarray(adapter.apply(params, X_test))
    np.save(work / "logits_posterax.npy", logits)
    probs = np.asarray(jax.nn.softmax(logits, axis=-1))
    return {"train_seconds": seconds, "epochs": epochs, "test": metrics(probs, y_test)}


def run_posterax(work, steps):
    """In its own process: KFAC Laplace fit + tune + GLM predictive, cold and warm."""
    import jax

    from posterax.inference.laplace import (
        fit_laplace,
        glm_predictive,
        laplace_state,
        log_marginal_likelihood,
    )

    base_rss = peak_rss_mb()
    X, y, X_test, _, _ = load_data()
    _, model = _posterax_model(X)
    loaded = np.load(work / "map_flax.npz")
    params = {}
    for key in loaded.files:
        layer, name = key.split("/")
        params.setdefault(layer, {})[name] = jax.numpy.asarray(loaded[key])

    def laplace(prior, tune):
        return fit_laplace(
            model, {"net": params}, X, y, hessian_structure="kron", subset_of_weights="all",
            prior_precision=prior, tune=tune, tune_steps=steps, tune_learning_rate=0.1,
            batch_size=BATCH, return_state=True,
        )  # fmt: skip

    def once():
        start = time.perf_counter()
        post, state = laplace(1.0, "marglik")
        fitted = time.perf_counter()
        probs = np.asarray(glm_predictive(post, X_test, link_approx="probit").probs()[0])
        end = time.perf_counter()
        timing = post.info["timing"]
        return (
            post,
            state,
            probs,
            {
                "seconds": end - start,
                "fit_s": timing["curvature_s"],
                "tune_s": timing["tune_s"],
                "predict_s": end - fitted,
                "prior_precision": float(np.asarray(post.info["prior_precision"])),
                "log_marginal_likelihood": post.info["log_marginal_likelihood"],
            },
        )

    _, _, _, cold = once()
    _, state, probs, warm = once()
    fixed, _ = laplace(1.0, None)
    peak = peak_rss_mb()  # before the referee below: the exact GGN diagonal is not timed
    diag, _ = laplace_state(
        model.apply_fn, model.likelihood, {"net": params}, X, y, hessian_structure="diag",
        batch_size=BATCH,
    )  # fmt: skip
    probs_fixed = np.asarray(glm_predictive(fixed, X_test, link_approx="probit").probs()[0])
    lml = {str(p): float(log_marginal_likelihood(state, p)) for p in PRIORS}
    out = {
        "cold": cold,
        "warm": warm,
        "log_marginal_likelihood": lml,
        "log_lik_map": float(state.log_lik_map),
        "n_params": int(state.subset.size),
        "kron_fallback": fixed.info["kron_fallback"],
        "peak_rss_mb": peak,
        "peak_rss_mb_with_exact_diagonal": peak_rss_mb(),
        "rss_after_imports_mb": base_rss,
        "devices": str(jax.devices()),
    }
    arrays = {"probs_tuned": probs, "probs_prior1": probs_fixed}
    arrays["theta"] = np.asarray(state.subset.map_selected)
    arrays["exact_ggn_diag"] = np.asarray(diag.curvature.h)
    positions = state.subset.positions()
    for layer in LAYERS:
        for name in ("kernel", "bias"):
            arrays[f"pos/{layer}/{name}"] = np.asarray(positions[layer][name])
    for i, block in enumerate(state.curvature.blocks):
        a = np.asarray(block.vec_a * block.eig_a) @ np.asarray(block.vec_a).T
        g = np.asarray(block.vec_g * block.eig_g) @ np.asarray(block.vec_g).T
        arrays[f"block{i}/A"], arrays[f"block{i}/G"] = a, g
        arrays[f"block{i}/pos"] = np.asarray(block.pos)
    out["n_blocks"] = len(state.curvature.blocks)
    out["n_rest"] = int(state.curvature.rest_pos.shape[0])
    np.savez(work / "posterax_out.npz", **arrays)
    return out


# ------------------------------------------------------------------------------- peer side
def run_peer(work, backend, steps):
    """Inside the laplace-torch environment: one backend, cold and warm."""
    import copy

    import torch
    from laplace import Laplace
    from laplace.curvature import AsdlGGN, BackPackGGN, CurvlinopsGGN

    torch.set_num_threads(2)
    base_rss = peak_rss_mb()
    data = np.load(work / "data.npz")
    X = torch.from_numpy(data["X"].transpose(0, 3, 1, 2).copy())
    X_test = torch.from_numpy(data["X_test"].transpose(0, 3, 1, 2).copy())
    y = torch.from_numpy(data["y"])
    model = torch.nn.Sequential()
    model.add_module("conv1", torch.nn.Conv2d(1, 16, 3, padding=1))
    model.add_module("relu1", torch.nn.ReLU())
    model.add_module("conv2", torch.nn.Conv2d(16, 32, 3, stride=2, padding=1))
    model.add_module("relu2", torch.nn.ReLU())
    model.add_module("flatten", torch.nn.Flatten())
    model.add_module("dense", torch.nn.Linear(512, 10))
    weights = np.load(work / "map_torch.npz")
    model.load_state_dict({k: torch.from_numpy(weights[k].copy()) for k in weights.files})
    model.eval()
    with torch.no_grad():
        logits = model(X_test).numpy()
    if backend == "none":  # the logits check only
        np.save(work / "logits_torch.npy", logits)
        return {"torch": torch.__version__}
    cls = {"backpack": BackPackGGN, "curvlinops": CurvlinopsGGN, "asdl": AsdlGGN}
    kwargs = {"backend": cls[backend.split("-")[0]]}
    if backend == "curvlinops-reduce":
        kwargs["asdl_fisher_kwargs"] = {"kfac_approx": "reduce"}  # passed on to Curvlinops
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=BATCH)

    def predict(la):
        # in chunks: Curvlinops' (torch.func) Jacobians of 150 test images at once took 4.4 GB
        with torch.no_grad():
            chunks = [
                la(X_test[i : i + PEER_CHUNK], pred_type="glm", link_approx="probit").numpy()
                for i in range(0, X_test.shape[0], PEER_CHUNK)
            ]
        return np.concatenate(chunks)

    def once(with_predict=True):
        start = time.perf_counter()
        la = Laplace(
            copy.deepcopy(model), "classification", subset_of_weights="all",
            hessian_structure="kron", prior_precision=1.0, **kwargs,
        )  # fmt: skip
        la.fit(loader)
        fitted = time.perf_counter()
        la.optimize_prior_precision(
            pred_type="glm", method="marglik", n_steps=steps, lr=0.1, init_prior_prec=1.0,
            prior_structure="scalar", link_approx="probit",
        )  # fmt: skip
        tuned = time.perf_counter()
        probs = predict(la) if with_predict else None
        end = time.perf_counter()
        return (
            la,
            probs,
            {
                "seconds": end - start,
                "fit_s": fitted - start,
                "tune_s": tuned - fitted,
                "predict_s": end - tuned,
                "prior_precision": float(la.prior_precision.item()),
                "log_marginal_likelihood": float(la.log_marginal_likelihood().item()),
            },
        )

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = backend != "curvlinops-reduce"  # a reference point: curvature and evidence only
        la, probs, cold = once(full)
        warm = None
        if full:
            la, probs, warm = once()
        lml = {}
        for p in PRIORS:
            lml[str(p)] = float(la.log_marginal_likelihood(torch.tensor([p])).item())
        if full:
            la.prior_precision = 1.0
            arrays = {"probs_tuned": probs, "probs_prior1": predict(la)}
        else:
            arrays = {}
    names = [n for n, _ in la.model.named_parameters()]
    for name, factors in zip(names, la.H_facs.kfacs, strict=True):
        for i, factor in enumerate(factors):
            arrays[f"{name}/{i}"] = factor.detach().numpy()
    np.savez(work / f"peer_{backend}.npz", **arrays)
    return {
        "cold": cold,
        "warm": warm,
        "log_marginal_likelihood": lml,
        "log_lik_map": float(la.log_likelihood.item()),
        "kfac_approx": "reduce" if backend == "curvlinops-reduce" else "expand",
        "n_params": int(la.n_params),
        "peak_rss_mb": peak_rss_mb(),
        "rss_after_imports_mb": base_rss,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


# ------------------------------------------------------------------------------ comparison
def _rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _kron_rel(A1, G1, A2, G2):
    """||G1 (x) A1 - G2 (x) A2||_F / ||G2 (x) A2||_F without forming either product."""

    A1, G1, A2, G2 = (np.asarray(m, np.float64) for m in (A1, G1, A2, G2))

    def inner(a, g, b, h):
        return float(np.sum(a * b) * np.sum(g * h))

    diff = inner(A1, G1, A1, G1) + inner(A2, G2, A2, G2) - 2 * inner(A1, G1, A2, G2)
    return math.sqrt(max(diff, 0.0) / inner(A2, G2, A2, G2))


def _logdet_kron(A, G, prior):
    ea, eg = np.linalg.eigvalsh(A.astype(np.float64)), np.linalg.eigvalsh(G.astype(np.float64))
    return float(np.sum(np.log(np.clip(np.outer(ea, eg), 0, None) + prior)))


def posterax_layers(px, n_data):
    """Posterax's factors per layer in torch's order and laplace-torch's (expand) scale."""
    pos_t = to_torch_layout(
        {layer: {n: px[f"pos/{layer}/{n}"] for n in ("kernel", "bias")} for layer in LAYERS}
    )
    blocks = [k[: -len("/pos")] for k in px.files if k.endswith("/pos")]
    out = {}
    for layer in LAYERS:
        w_pos, b_pos = pos_t[f"{layer}.weight"], pos_t[f"{layer}.bias"]
        d_out = b_pos.shape[0]
        w_pos = w_pos.reshape(d_out, -1)
        wanted = set(w_pos.ravel()) | set(b_pos.ravel())
        (name,) = [b for b in blocks if set(px[f"{b}/pos"].ravel()) == wanted]
        pos = px[f"{name}/pos"].reshape(-1, d_out)  # (d_in + 1, d_out) row-major W~
        row_of = {int(v): r for r, v in enumerate(pos[:, 0])}
        rows = np.array([row_of[int(v)] for v in w_pos[0]])
        # the same permutation must hold for every output column, and the bias is the last row
        assert np.array_equal(pos[rows], w_pos.T) and np.array_equal(pos[-1], b_pos)
        A, G = px[f"{name}/A"], px[f"{name}/G"]
        T = round(float(A[-1, -1]) / n_data)  # the bias entry of A counts N * T ones
        out[layer] = {
            "A": A[np.ix_(rows, rows)] / (n_data * T),
            "G": G * n_data * T,
            "A_wb": A[rows, -1],
            "A_bb": A[-1, -1],
            "G_raw": G,
            "positions": float(T),
            "joint_A": A,
            "exact_trace_weight": float(np.sum(px["exact_ggn_diag"][w_pos])),
            "exact_trace_bias": float(np.sum(px["exact_ggn_diag"][b_pos])),
        }
    return out


def compare_factors(ours, peer_npz, backend):
    """Per layer: posterax's factors (laplace-torch's order and expand scale) against the
    backend's; traces of the weight and bias blocks against the exact GGN's (posterax's
    exact GGN diagonal, a referee independent of any Kronecker factorisation)."""
    rows = {}
    for layer in LAYERS:
        o = ours[layer]
        G_w, A_w = peer_npz[f"{layer}.weight/0"], peer_npz[f"{layer}.weight/1"]
        G_b = peer_npz[f"{layer}.bias/0"]
        bias_px = o["A_bb"] * o["G_raw"]
        row = {
            "weight_block_rel_frobenius": _kron_rel(o["A"], o["G"], A_w, G_w),
            "bias_block_rel_max": _rel(bias_px, G_b),
            "logdet_weight_block_plus_I": {
                "posterax": _logdet_kron(o["A"], o["G"], 1.0),
                "peer": _logdet_kron(A_w, G_w, 1.0),
            },
            "trace_weight_block": {
                "exact_ggn": o["exact_trace_weight"],
                "posterax": float(np.trace(o["A"]) * np.trace(o["G"])),
                "peer": float(np.trace(A_w) * np.trace(G_w)),
            },
            "trace_bias_block": {
                "exact_ggn": o["exact_trace_bias"],
                "posterax": float(np.trace(bias_px)),
                "peer": float(np.trace(G_b)),
            },
        }
        if backend in ("curvlinops", "asdl"):  # same scale split: compare the factors too
            row["A_rel_max"] = _rel(o["A"], A_w)
            row["G_rel_max"] = _rel(o["G"], G_w)
        elif backend == "backpack":  # A = sum x x^T / N (no 1/T); G summed over positions
            row["A_rel_max"] = _rel(o["A"] * o["positions"], A_w)
            # 1 if output gradients were uncorrelated across positions (KFC's assumption)
            row["G_trace_ratio_to_expand"] = float(np.trace(G_w) / np.trace(o["G"]))
        rows[layer] = row
    return rows


def split_bias_lml(ours, px, log_lik, prior):
    """Posterax's factors with laplace-torch's block structure (weight and bias blocks apart,
    no cross terms): the log marginal likelihood laplace-torch's expand backends would give."""
    theta = px["theta"].astype(np.float64)
    logdet = 0.0
    for layer in LAYERS:
        o = ours[layer]
        logdet += _logdet_kron(o["A"], o["G"], prior)
        logdet += _logdet_kron(np.array([[o["A_bb"]]]), o["G_raw"], prior)
    P = theta.size
    return log_lik - 0.5 * (logdet - P * math.log(prior) + prior * theta @ theta)


def joint_lml(ours, px, log_lik, prior):
    """Posterax's own blocks (bias folded in): a check of the evidence formula used above."""
    theta = px["theta"].astype(np.float64)
    logdet = sum(_logdet_kron(ours[ly]["joint_A"], ours[ly]["G_raw"], prior) for ly in LAYERS)
    P = theta.size
    return log_lik - 0.5 * (logdet - P * math.log(prior) + prior * theta @ theta)


def _sub(args, work, extra, python=sys.executable):
    cmd = [python, __file__, *extra, str(work), "--steps", str(args.steps)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.CalledProcessError, json.JSONDecodeError, IndexError) as err:
        return {"error": f"{err}: {(getattr(err, 'stderr', '') or '')[-3000:]}"}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--peer-python", default=DEFAULT_PEER)
    parser.add_argument("--steps", type=int, default=100, help="marglik tuning steps")
    parser.add_argument("--epochs", type=int, default=30, help="MAP training epochs")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--peer-only", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--posterax-only", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer_only:
        print(json.dumps(run_peer(Path(args.peer_only[1]), args.peer_only[0], args.steps)))
        return
    if args.posterax_only:
        print(json.dumps(run_posterax(Path(args.posterax_only), args.steps)))
        return

    total = time.perf_counter()
    result = {"conventions": CONVENTIONS, "steps": args.steps, "batch_size": BATCH}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        X, y, X_test, y_test, source = load_data()
        np.savez(work / "data.npz", X=X, y=y, X_test=X_test, y_test=y_test)
        n = X.shape[0]
        result["data"] = {"source": source, "n_train": n, "n_test": int(X_test.shape[0])}
        print(f"data: {source}, {n} train / {X_test.shape[0]} test; training the MAP ...")
        result["map"] = train_map(work, args.epochs)
        check = _sub(args, work, ["--peer-only", "none"], args.peer_python)
        if "error" in check:
            raise SystemExit(f"laplace-torch environment failed: {check['error']}")
        ref, torch_logits = (
            np.load(work / "logits_posterax.npy"),
            np.load(work / "logits_torch.npy"),
        )
        diff = float(np.max(np.abs(ref - torch_logits)))
        result["logits_max_abs_diff"] = diff
        print(f"MAP test {result['map']['test']}; posterax vs torch logits max |diff| {diff:.2e}")
        if diff > 1e-3:
            raise SystemExit("the torch network does not reproduce posterax's logits")

        ours = _sub(args, work, ["--posterax-only"])
        if "error" in ours:
            raise SystemExit(f"posterax run failed: {ours['error']}")
        px = np.load(work / "posterax_out.npz")
        layers = posterax_layers(px, n)
        ours["positions_T"] = {ly: layers[ly]["positions"] for ly in LAYERS}
        ours["lml_check_recomputed"] = {
            str(p): joint_lml(layers, px, ours["log_lik_map"], p) for p in PRIORS
        }
        ours["lml_with_separate_bias_blocks"] = {
            str(p): split_bias_lml(layers, px, ours["log_lik_map"], p) for p in PRIORS
        }
        ours["test_tuned"] = metrics(px["probs_tuned"], y_test)
        ours["test_prior1"] = metrics(px["probs_prior1"], y_test)
        result["posterax"] = ours
        for backend in args.backends.split(","):
            print(f"laplace-torch backend {backend} ...")
            peer = _sub(args, work, ["--peer-only", backend], args.peer_python)
            if "error" not in peer:
                peer_npz = np.load(work / f"peer_{backend}.npz")
                peer["factors"] = compare_factors(layers, peer_npz, backend)
                for which in ("tuned", "prior1") if "probs_tuned" in peer_npz.files else ():
                    probs = peer_npz[f"probs_{which}"]
                    peer[f"test_{which}"] = metrics(probs, y_test)
                    diff = np.max(np.abs(probs - px[f"probs_{which}"]))
                    peer[f"max_abs_prob_diff_vs_posterax_{which}"] = float(diff)
                split = ours["lml_with_separate_bias_blocks"]
                peer["lml_rel_diff_vs_posterax_bias_apart"] = {
                    str(p): abs(split[str(p)] - v) / abs(v)
                    for p, v in zip(PRIORS, peer["log_marginal_likelihood"].values(), strict=True)
                }
                if peer["warm"] is not None:
                    peer["seconds_ratio_posterax_over_peer"] = {
                        k: ours[k]["seconds"] / peer[k]["seconds"] for k in ("cold", "warm")
                    }
            result[f"laplace_torch_{backend}"] = peer
    result["total_seconds"] = time.perf_counter() - total
    (HERE / "results").mkdir(exist_ok=True)
    path = HERE / "results" / "kfac_conv_vs_laplace_torch.json"
    path.write_text(json.dumps(result, indent=2, default=float))
    md = markdown(result, args.backends.split(","))
    (HERE / "results" / "kfac_conv_vs_laplace_torch.md").write_text(md)
    print(md)
    print(f"wrote {path} ({result['total_seconds']:.0f} s)")


def markdown(result, backends):
    ours = result["posterax"]
    test = result["map"]["test"]
    runs = [("posterax", ours)] + [
        (f"laplace-torch {b}", result[f"laplace_torch_{b}"]) for b in backends
    ]
    lines = [
        "# KFAC over all layers (convolutions included) vs laplace-torch, digits 8x8 CNN",
        "",
        f"conv16-conv32-dense10, {ours['n_params']} weights; MAP trained by posterax (test acc "
        f"{test['accuracy']:.3f}, NLL {test['nll']:.3f}); the torch copy's logits match to "
        f"{result['logits_max_abs_diff']:.1e}. Exact GGN, GLM predictive with the probit link "
        f"on both sides; prior precision tuned by the marginal likelihood (Adam, lr 0.1, "
        f"{result['steps']} steps from 1). Seconds: fit + tune + predict on 2 shared CPU cores.",
        "",
        "| run | logML p=0.1 | p=1 | p=10 | tuned p | test NLL | acc | ECE | NLL at p=1 "
        "| s cold | s warm (fit/tune/predict) | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in runs:
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error'][:80]} |" + " |" * 10)
            continue
        lml = r["log_marginal_likelihood"]
        cells = [name, *(f"{lml[str(p)]:.2f}" for p in PRIORS)]
        w = r["warm"] or r["cold"]
        cells.append(f"{w['prior_precision']:.3f}")
        if "test_tuned" in r:
            t = r["test_tuned"]
            cells += [f"{t['nll']:.4f}", f"{t['accuracy']:.3f}", f"{t['ece']:.4f}"]
            cells.append(f"{r['test_prior1']['nll']:.4f}")
        else:
            cells += [""] * 4
        if r["warm"] is not None:
            cells.append(f"{r['cold']['seconds']:.1f}")
            cells.append(
                f"{w['seconds']:.1f} ({w['fit_s']:.1f}/{w['tune_s']:.1f}/{w['predict_s']:.1f})"
            )
        else:
            cells += [f"(fit {r['cold']['fit_s']:.1f})", ""]
        cells.append(f"{r['peak_rss_mb']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    split = ours["lml_with_separate_bias_blocks"]
    lines.append(
        "| posterax's factors, bias blocks apart as laplace-torch does | "
        + " | ".join(f"{split[str(p)]:.2f}" for p in PRIORS)
        + " |"
        + " |" * 9
    )
    lines += [
        "",
        "Agreement with posterax (relative log-ML difference at p = 0.1 / 1 / 10, against "
        "posterax itself and against posterax's factors with the bias blocks apart; max "
        "|difference| of the predictive probabilities) and posterax's seconds over the "
        "backend's:",
        "",
        "| backend | logML vs posterax | logML vs posterax, bias apart | max dprob p=1 "
        "| max dprob tuned | time ratio cold | time ratio warm |",
        "|---|---|---|---|---|---|---|",
    ]
    for b in backends:
        r = result[f"laplace_torch_{b}"]
        if "error" in r:
            continue
        theirs, mine = r["log_marginal_likelihood"], ours["log_marginal_likelihood"]
        own = " / ".join(
            f"{abs(theirs[k] - mine[k]) / abs(theirs[k]):.1e}" for k in map(str, PRIORS)
        )
        apart = " / ".join(
            f"{r['lml_rel_diff_vs_posterax_bias_apart'][str(p)]:.1e}" for p in PRIORS
        )
        cells = [b, own, apart]
        for which in ("prior1", "tuned"):
            diff = r.get(f"max_abs_prob_diff_vs_posterax_{which}")
            cells.append("" if diff is None else f"{diff:.1e}")
        ratio = r.get("seconds_ratio_posterax_over_peer", {})
        cells += [f"{ratio[k]:.2f}" if k in ratio else "" for k in ("cold", "warm")]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Per layer: relative error of posterax's factors against each backend's (weight block "
        "G (x) A: Frobenius; bias block, A, G: max entry), and the traces of the weight block "
        "against the exact GGN's (from posterax's exact GGN diagonal):",
        "",
        "| backend | layer | T | weight block | bias block | A | G | tr exact | tr posterax "
        "| tr backend |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for b in backends:
        r = result[f"laplace_torch_{b}"]
        if "error" in r:
            continue
        for layer, f in r["factors"].items():
            a, g = f.get("A_rel_max"), f.get("G_rel_max")
            tr = f["trace_weight_block"]
            lines.append(
                f"| {b} | {layer} | {ours['positions_T'][layer]} "
                f"| {f['weight_block_rel_frobenius']:.1e} | {f['bias_block_rel_max']:.1e} "
                f"| {'' if a is None else f'{a:.1e}'} | {'' if g is None else f'{g:.1e}'} "
                f"| {tr['exact_ggn']:.4g} | {tr['posterax']:.4g} | {tr['peer']:.4g} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
