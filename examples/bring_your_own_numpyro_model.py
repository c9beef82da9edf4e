"""Any NumPyro model through posterax's compile-once NUTS driver.

The compiled program is kept per (model, static arguments, data shapes, settings): a second fit
on new data of the same shape, or with another key, does not recompile.

Run: python examples/bring_your_own_numpyro_model.py
"""

import time

import jax
import numpy as np
import numpyro
import numpyro.distributions as dist

from posterax.inference import run_nuts


def robust_regression(x, y=None, df=4.0):
    """Student-t linear regression: heavier tails than a Gaussian."""
    slope = numpyro.sample("slope", dist.Normal(0.0, 10.0))
    intercept = numpyro.sample("intercept", dist.Normal(0.0, 10.0))
    scale = numpyro.sample("scale", dist.HalfNormal(5.0))
    numpyro.sample("obs", dist.StudentT(df, intercept + slope * x, scale), obs=y)


def main(num_warmup: int = 500, num_samples: int = 1000) -> dict:
    rng = np.random.default_rng(1)
    x = rng.normal(size=200)
    y = 1.0 + 2.0 * x + rng.standard_t(4, size=200)
    results = {}
    for seed in (0, 1):
        start = time.perf_counter()
        res = run_nuts(
            jax.random.key(seed),
            robust_regression,
            x,
            y,
            num_warmup=num_warmup,
            num_samples=num_samples,
            progress_bar=False,
        )
        slope = np.asarray(res.samples["slope"])
        print(
            f"fit {seed}: {time.perf_counter() - start:.2f} s, slope {slope.mean():.3f} "
            f"± {slope.std():.3f}, divergences {int(res.sample_stats['diverging'].sum())}"
        )
        results[seed] = res
    return results


if __name__ == "__main__":
    main()
