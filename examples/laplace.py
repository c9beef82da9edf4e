"""Laplace approximations around a MAP network: KFAC / diag / full / last-layer, the linearised
(GLM) predictive, and the prior precision and noise tuned by the marginal likelihood.

The estimators will do this with ``method="laplace"``; this example shows the functional layer:
``fit_map`` then ``fit_laplace`` on any ``NetworkModel``.

Run: python examples/laplace.py
"""

import time

import jax
import jax.numpy as jnp
import jax.scipy.stats as jstats
import numpy as np
import optax

from posterax.inference import NetworkModel, TrainingSettings, fit_map
from posterax.inference.laplace import fit_laplace, glm_predictive
from posterax.models import MLP, GaussianLikelihood, RegressionHead


def data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, size=(n, 1)).astype(np.float32)
    y = (np.sin(x[:, 0]) * x[:, 0] + 0.3 * rng.normal(size=n)).astype(np.float32)
    return x, y


def main(num_epochs: int = 1500) -> dict:
    X, y = data()
    X_test, y_test = data(500, seed=1)
    X_far = np.linspace(-6, 6, 7, dtype=np.float32)[:, None]  # beyond the data at |x| > 3
    net = MLP((50,), "tanh", 1)
    model = NetworkModel(RegressionHead(net), GaussianLikelihood())
    settings = TrainingSettings(
        optax.adam(1e-2), num_epochs=num_epochs, batch_size=200, progress_bar=False
    )
    map_post = fit_map(jax.random.key(0), model, lambda k: net.init(k, 1), X, y, settings)
    map_params = jax.tree_util.tree_map(lambda leaf: leaf[0], map_post.draws)
    sigma_map = float(map_params["sigma"])
    map_nll = float(
        -jnp.mean(jstats.norm.logpdf(y_test, model.apply_fn(map_params, X_test), sigma_map))
    )
    scores = {"map": {"test_nll": map_nll, "sigma": sigma_map}}
    print(f"MAP                     test NLL {map_nll:.3f}  sigma {sigma_map:.3f}")
    for structure, subset in [
        ("kron", "all"),
        ("diag", "all"),
        ("full", "all"),
        ("full", "last_layer"),
    ]:
        start = time.perf_counter()
        post = fit_laplace(
            model,
            map_post,
            X,
            y,
            hessian_structure=structure,
            subset_of_weights=subset,
            tune="marglik",
        )
        pred = glm_predictive(post, X_test)
        nll = float(-jnp.mean(jstats.norm.logpdf(y_test, pred.mean[0], pred.scale[0])))
        far = glm_predictive(post, X_far).scale[0]
        seconds = time.perf_counter() - start
        info = post.info
        scores[f"{structure}/{subset}"] = {
            "test_nll": nll,
            "prior_precision": float(np.mean(info["prior_precision"])),
            "sigma": info["sigma"],
            "log_marginal_likelihood": info["log_marginal_likelihood"],
            "seconds": seconds,
        }
        print(
            f"{structure:>5} / {subset:<10}  test NLL {nll:.3f}  sigma {info['sigma']:.3f}  "
            f"prior {float(np.mean(info['prior_precision'])):.3g}  "
            f"log evidence {info['log_marginal_likelihood']:.1f}  ({seconds:.1f} s)"
        )
        print(
            "      predictive sd at x = -6..6:", np.round(np.asarray(far, dtype=float), 2).tolist()
        )
    return scores


if __name__ == "__main__":
    main()
