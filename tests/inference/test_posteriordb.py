"""posteriordb conformance: ``run_nuts`` on Stan's reference posteriors.

Every parameter's posterior mean and sd must agree with the reference draws (Stan NUTS, 10,000
draws) within Monte Carlo error: |z| < 4, with z the difference over the combined Monte Carlo
standard error of both (ArviZ's ESS-based MCSE). About 60 parameters x 2 statistics are checked
in the full suite, so a correct sampler exceeds 4 with probability under 1% (and the keys are
fixed). A sampler off by a Jacobian, a dropped prior or a stuck chain fails by tens of sigmas.
"""

import jax
import numpy as np
import pytest
from numpyro.infer import init_to_uniform

from posterax.inference import run_nuts
from posteriordb_models import POSTERIORS, agreement, root

pytestmark = pytest.mark.skipif(
    root() is None, reason="posteriordb data (../shared/data/posteriordb) absent"
)

Z_LIMIT = 4.0

MIN_ESS = 400  # bulk ESS over 4 chains (Vehtari et al. 2021): a stuck chain inflates the
# Monte Carlo error and so hides from the z-scores, but not from the ESS.

# Named exception: arma11 starts uniformly in [-0.5, 0.5], not [-2, 2]. A start with
# |theta| > 1 (a non-invertible MA part) makes the recursion's errors grow like theta^T (log
# density about -1e23 in float32), and a chain started there stays stuck with a vanishing step
# size: 1 chain in 24 with [-2, 2] starts, 0 in 32 with [-0.5, 0.5]. NumPyro's NUTS from the
# same start stays stuck too (checked): this is the posterior, not the driver.
SETTINGS = {"arma-arma11": {"init_strategy": init_to_uniform(radius=0.5)}}

# Improper priors, numpyro.factor, an ordered vector, a support that depends on another site,
# a deterministic site, lax.scan recursions.
FAST = [
    "sblrc-blr",
    "eight_schools-eight_schools_noncentered",
    "garch-garch11",
    "arma-arma11",
    "low_dim_gauss_mix-low_dim_gauss_mix",
]


def check(name, num_warmup=1000, num_samples=1000, **settings):
    posterior = POSTERIORS[name]
    result = run_nuts(
        jax.random.key(0),
        posterior.model,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=4,
        progress_bar=False,
        **{**SETTINGS.get(name, {}), **settings},
        **posterior.data(),
    )
    rows = agreement(result.samples, posterior.reference())
    worst = max(rows, key=lambda r: max(abs(r.z_mean), abs(r.z_sd)))
    assert max(abs(worst.z_mean), abs(worst.z_sd)) < Z_LIMIT, worst
    assert min(r.ess_bulk for r in rows) > MIN_ESS, rows
    return result, rows


@pytest.mark.parametrize("name", FAST)
def test_fast_subset_matches_reference(name):
    check(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(POSTERIORS) - set(FAST)))
def test_every_posterior_matches_reference(name):
    check(name)


def test_dense_mass_matches_reference_and_mixes_better():
    # kidscore_interaction's four slopes are strongly correlated (an interaction of an
    # unscaled IQ): a dense mass matrix decorrelates them.
    name = "kidiq-kidscore_interaction"
    _, diagonal = check(name)
    _, dense = check(name, dense_mass=True)
    assert min(r.ess_bulk for r in dense) > 2 * min(r.ess_bulk for r in diagonal)


def test_reference_check_fails_on_a_wrong_posterior():
    # The comparison can fail: the blr model with its noise prior's scale changed from 10 to
    # 0.01 is a different posterior (sigma pinned near 0.01 * its posterior under the prior).
    import numpyro
    import numpyro.distributions as dist
    from numpyro.distributions import constraints

    def wrong(X, y):
        beta = numpyro.sample("beta", dist.ImproperUniform(constraints.real, (), (X.shape[1],)))
        sigma = numpyro.sample("sigma", dist.ImproperUniform(constraints.positive, (), ()))
        numpyro.factor("prior", dist.Normal(0, 10).log_prob(beta).sum())
        numpyro.factor("sigma_prior", dist.Normal(0, 0.01).log_prob(sigma))
        numpyro.factor("likelihood", dist.Normal(X @ beta, sigma).log_prob(y).sum())

    posterior = POSTERIORS["sblrc-blr"]
    result = run_nuts(
        jax.random.key(0),
        wrong,
        num_warmup=500,
        num_samples=500,
        num_chains=2,
        progress_bar=False,
        **posterior.data(),
    )
    rows = agreement(result.samples, posterior.reference())
    assert max(abs(r.z_sd) + abs(r.z_mean) for r in rows) > 10 * Z_LIMIT
    assert np.isfinite([r.z_mean for r in rows]).all()
