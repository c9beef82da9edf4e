"""Past one device and past one run: devices, checkpoints and a memory budget.

Run on one CPU as it is, or pretend to have four devices (JAX's forced host devices):

    XLA_FLAGS=--xla_force_host_platform_device_count=4 .venv/bin/python examples/scaling.py

Chains and ensemble members are split over the devices (``devices=None`` uses all of them) and
give the draws a one-device run gives; a killed run resumes from ``checkpoint_dir``; predictions
run in row chunks that fit ``max_memory``.
"""

import tempfile

import jax
import numpy as np

import posterax as px

rng = np.random.default_rng(0)
X = rng.uniform(-3, 3, (300, 2))
y = np.sin(X[:, 0]) * X[:, 1] + 0.2 * rng.normal(size=300)
print(f"{jax.device_count()} device(s): {jax.devices()}")

# An ensemble of 4 members, split over every local device (devices=None).
ensemble = px.BayesianRegressor(
    method=px.methods.Ensemble(num_members=4), network=(32, 32), progress_bar=False, random_state=0
).fit(X, y)
one_device = px.BayesianRegressor(
    method=px.methods.Ensemble(num_members=4),
    network=(32, 32),
    progress_bar=False,
    random_state=0,
    devices=1,
).fit(X, y)
gap = np.max(np.abs(ensemble.predict(X) - one_device.predict(X)))
print(f"ensemble on all devices vs one device: largest difference {gap:.1e}")

# NUTS with 4 chains and a checkpoint every 250 steps. After a kill (or Ctrl-C),
# fit(X, y, resume=True) with the same settings continues to the same draws.
with tempfile.TemporaryDirectory() as directory:
    nuts = px.BayesianRegressor(
        px.methods.NUTS(num_warmup=500, num_samples=500, num_chains=4),
        network=(5,),
        checkpoint_dir=directory,
        checkpoint_every=250,
        progress_bar=False,
        random_state=0,
    ).fit(X, y)
    again = nuts.fit(X, y, resume=True)  # the checkpoint is of the finished run: nothing to do
    print(
        f"NUTS: {nuts.posterior_.num_draws} draws; resumed run equal: "
        f"{np.array_equal(again.predict(X), nuts.predict(X))}"
    )

# Predictions in chunks that fit a 64 MB budget (the default is a share of free memory).
big = rng.uniform(-3, 3, (200_000, 2))
ensemble.set_params(max_memory="64MB")
lo, hi = ensemble.predict_interval(big, level=0.9)
print(f"90% intervals for {len(big):,} rows within 64 MB: mean width {np.mean(hi - lo):.2f}")
