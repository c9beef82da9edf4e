"""Cross-check posterax's post-hoc Laplace on the Iris seed problem against laplace-torch.

Problem: Iris, stratified split ``train_test_split(X, y, test_size=30, stratify=y,
random_state=42)``, 4-16-3 tanh MLP, Normal(0, 1) prior on every weight and bias, inputs
standardised with the training mean/std, MAP by Adam (``px.BayesianClassifier(method="map")``).

For kron / full / diag over all weights (GGN), this script fits posterax's Laplace with the prior
precision tuned by the marginal likelihood (and, separately, fixed at 1) and records the tuned
prior precision, the log marginal likelihood and the test NLL of the MAP, the closed-form GLM
probit predictive and the Monte Carlo GLM predictive. It saves the MAP weights and the
standardised data to an .npz that ``laplace_iris_crosscheck_torch.py`` (run with the
laplace-torch venv) loads to do the same on the same weights.

Run: .venv/bin/python benchmarks/laplace_iris_crosscheck.py [--npz /tmp/laplace_iris.npz]
     /work/bench-venv-laplace/bin/python benchmarks/laplace_iris_crosscheck_torch.py
"""

import argparse
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

import posterax as px
from posterax.inference.laplace import fit_laplace, glm_predictive
from posterax.predictive.sampling import predictive_samples

HERE = Path(__file__).resolve().parent
STRUCTURES = ("kron", "full", "diag")


def nll(probs, y):
    probs = np.asarray(probs, dtype=np.float64)
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-300, None))))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--npz", default="/tmp/laplace_iris.npz")
    parser.add_argument("--mc-samples", type=int, default=2000)
    args = parser.parse_args()

    X, y = load_iris(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=30, stratify=y, random_state=42)

    clf = px.BayesianClassifier(
        method="map",
        network=px.networks.MLP(hidden=(16,), activation="tanh"),
        random_state=0,
        progress_bar=False,
    )
    clf.fit(X_tr, y_tr)
    assert list(clf.classes_) == [0, 1, 2]
    Xs_tr = ((X_tr - clf.x_mean_) / clf.x_scale_).astype(np.float32)
    Xs_te = ((X_te - clf.x_mean_) / clf.x_scale_).astype(np.float32)
    y_tr = y_tr.astype(np.int32)
    y_te = y_te.astype(np.int32)

    # The fitted estimator's model (apply_fn + likelihood + Normal(0, 1) weight prior).
    from posterax.estimators.network_fitters import network_model
    from posterax.models import MLP, WeightPrior

    net = MLP((16,), "tanh", 3)
    model = network_model(net, "classification", "homoscedastic", WeightPrior("normal", (1.0, 1.0)))
    map_net = [
        {k: np.asarray(v[0]) for k, v in layer.items()} for layer in clf.posterior_.draws["net"]
    ]
    params = {"net": [{k: jnp.asarray(v) for k, v in layer.items()} for layer in map_net]}

    map_logits_te = np.asarray(model.apply_fn(params, jnp.asarray(Xs_te)))
    map_probs_te = np.asarray(jax.nn.softmax(map_logits_te, -1))
    map_logits_tr = np.asarray(model.apply_fn(params, jnp.asarray(Xs_tr)))
    map_nll_te = nll(map_probs_te, y_te)
    map_nll_tr = nll(np.asarray(jax.nn.softmax(map_logits_tr, -1)), y_tr)
    clf_nll = nll(clf.predict_proba(X_te), y_te)
    theta_sq = float(sum(np.sum(v**2) for layer in map_net for v in layer.values()))
    n_params = int(sum(v.size for layer in map_net for v in layer.values()))

    np.savez(
        args.npz,
        **{f"{name}{i}": map_net[i][name] for i in range(2) for name in ("w", "b")},
        X_train=Xs_tr,
        y_train=y_tr,
        X_test=Xs_te,
        y_test=y_te,
    )

    # MAP gradient norm of the full-batch negative log posterior (sum form): how well converged.
    def neg_log_post(net_params):
        lp = model.likelihood.log_prob(None, model.apply_fn({"net": net_params}, Xs_tr), y_tr)
        return -jnp.sum(lp) + 0.5 * sum(jnp.sum(v**2) for l in net_params for v in l.values())

    grad = jax.grad(neg_log_post)(params["net"])
    grad_norm = float(jnp.sqrt(sum(jnp.sum(g**2) for l in grad for g in l.values())))

    results = {
        "map": {
            "test_nll": map_nll_te,
            "train_nll": map_nll_tr,
            "classifier_predict_proba_test_nll": clf_nll,
            "theta_sq_norm": theta_sq,
            "n_params": n_params,
            "grad_norm_neg_log_posterior_sum": grad_norm,
            "test_accuracy": float(np.mean(map_probs_te.argmax(-1) == y_te)),
        }
    }
    for structure in STRUCTURES:
        for tune, label in (("marglik", "tuned"), (None, "prior1")):
            post = fit_laplace(
                model,
                params,
                jnp.asarray(Xs_tr),
                jnp.asarray(y_tr),
                hessian_structure=structure,
                prior_precision=1.0,
                tune=tune,
                batch_size=256,
            )
            probit = np.asarray(glm_predictive(post, jnp.asarray(Xs_te)).probs()[0])
            mc = (
                predictive_samples(post, jnp.asarray(Xs_te), jax.random.key(1), args.mc_samples)
                .probs()
                .mean(0)
            )
            results[f"{structure}_{label}"] = {
                "prior_precision": float(np.asarray(post.info["prior_precision"])),
                "log_marginal_likelihood": post.info["log_marginal_likelihood"],
                "test_nll_glm_probit": nll(probit, y_te),
                "test_nll_glm_mc": nll(np.asarray(mc), y_te),
            }
            print(structure, label, json.dumps(results[f"{structure}_{label}"]), flush=True)

    # The estimator route as the seed problem uses it (its own MAP; key split differs).
    lap = px.BayesianClassifier(
        method="laplace",
        network=px.networks.MLP(hidden=(16,), activation="tanh"),
        random_state=0,
        progress_bar=False,
    )
    lap.fit(X_tr, y_tr.astype(int))
    results["estimator_laplace_kron"] = {
        "prior_precision": float(np.asarray(lap.posterior_.info["prior_precision"])),
        "log_marginal_likelihood": lap.posterior_.info["log_marginal_likelihood"],
        "test_nll_predict_proba_mc": nll(lap.predict_proba(X_te), y_te),
    }
    print(json.dumps(results, indent=2))
    out = HERE / "results" / "laplace_iris_crosscheck_posterax.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out} and {args.npz}")


if __name__ == "__main__":
    main()
