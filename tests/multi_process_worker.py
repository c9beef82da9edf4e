"""One process of a multi-process run (JAX's multi-controller runtime on this machine's CPUs),
or, imported, the same computation in one process: ``tests/devices/test_multi_process.py``
compares the two.

Run as ``python tests/multi_process_worker.py PROCESS_ID NUM_PROCESSES PORT OUT.npz`` with
``XLA_FLAGS=--xla_force_host_platform_device_count=2``: every process runs the same script on
the same data, as JAX's multi-process model asks.
"""

from __future__ import annotations

import sys


def compute() -> dict:
    """NUTS chains (a NumPyro model and the BNN estimator), a deep ensemble, SG-MCMC and MALA chains,
    each spread over every device of every process; MAP, VI, MC dropout, SWAG and the Laplace
    curvature with each minibatch's rows spread so."""
    import jax
    import numpy as np
    import numpyro
    import numpyro.distributions as dist

    import posterax as px
    from posterax.inference import run_nuts

    def model(y):
        mu = numpyro.sample("mu", dist.Normal(0, 10))
        s = numpyro.sample("s", dist.HalfNormal(2))
        numpyro.sample("y", dist.Normal(mu, s), obs=y)

    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, size=(48, 1)).astype(np.float32)
    y = (np.sin(X[:, 0]) + 0.2 * rng.normal(size=48)).astype(np.float32)
    out = {}
    res = run_nuts(
        jax.random.key(0),
        model,
        y=y,
        num_warmup=150,
        num_samples=200,
        num_chains=4,
        progress_bar=False,
    )
    out["nuts_mu"] = np.asarray(res.samples["mu"])
    out["nuts_diverging"] = res.sample_stats["diverging"]
    # Chains that do not split over both processes: 1 (each process runs it whole) and 2
    # (one device of each process).
    for chains in (1, 2):
        res = run_nuts(
            jax.random.key(chains), model, y=y, num_warmup=100, num_samples=100,
            num_chains=chains, progress_bar=False,
        )  # fmt: skip
        out[f"nuts_{chains}_chains"] = np.asarray(res.samples["mu"])
    methods = {
        "bnn_nuts": px.methods.NUTS(num_warmup=100, num_samples=100, num_chains=4),
        "ensemble": px.methods.Ensemble(num_members=4, training=px.methods.Training(num_epochs=40)),
        "sgld": px.methods.SGLD(num_warmup=200, num_samples=100, num_chains=4),
        "mala": px.methods.MALA(num_warmup=100, num_samples=100, num_chains=4),
    }
    # Data parallel: each minibatch's rows over all devices (equal to float rounding only:
    # the gradient's sum is reduced in another order across processes).
    short = px.methods.Training(num_epochs=30)
    methods |= {
        "rows_map": px.methods.MAP(training=short),
        "rows_vi": px.methods.VI(num_samples=50, training=short),
        "rows_mc_dropout": px.methods.MCDropout(num_samples=50, training=short),
        "rows_swag": px.methods.SWAG(num_collections=5, num_samples=50, training=short),
    }
    for name, method in methods.items():
        reg = px.BayesianRegressor(
            method=method, network=(8,), random_state=1, progress_bar=False
        ).fit(X, y)
        out[name] = np.asarray(reg.predict_samples(X[:12]).mean)  # (draws, 12)
        out[name + "_predict"] = np.asarray(reg.predict(X[:12]))
    # The Laplace curvature: each batch's rows over all devices, then the GLM predictive.
    for structure in ("kron", "full"):
        method = px.methods.Laplace(structure=structure, training=short)
        reg = px.BayesianRegressor(method=method, network=(8,), random_state=1, progress_bar=False)
        bounds = reg.fit(X, y).predict_interval(X[:12], level=0.9)
        out[f"laplace_{structure}"] = np.stack([np.asarray(b) for b in bounds])
    return out


def main(argv: list[str]) -> None:
    process_id, num_processes, port, path = int(argv[1]), int(argv[2]), argv[3], argv[4]
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{port}",
        num_processes=num_processes,
        process_id=process_id,
    )
    assert jax.process_count() == num_processes, jax.process_count()
    import numpy as np

    out = compute()
    out["global_devices"] = np.asarray(jax.device_count())
    np.savez(path, **out)


if __name__ == "__main__":
    main(sys.argv)
