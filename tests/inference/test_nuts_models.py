"""``run_nuts`` takes what NumPyro's NUTS takes: improper priors, factors, deterministic sites,
plates, init strategies, a dense mass matrix; and refuses discrete latent sites by name."""

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.distributions import constraints
from numpyro.infer import init_to_median, init_to_uniform, init_to_value

from posterax.inference import nuts, run_nuts


def test_flat_prior_example_matches_exact_posterior_and_dense_mass_mixes_better():
    import numpyro_flat_priors as example  # examples/ is on sys.path via conftest

    out = example.main(num_warmup=1000, num_samples=1000)
    for key in ("diagonal", "dense"):
        beta = np.asarray(out[key].samples["beta"]).astype(np.float64)
        se = [float(az.mcse(beta[..., j])) for j in range(3)]
        z = (beta.mean((0, 1)) - out["exact_mean"]) / se
        assert np.all(np.abs(z) < 4), (key, z)
        # The sd of a t posterior: relative Monte Carlo error about 1/sqrt(2 ESS) < 3%.
        np.testing.assert_allclose(beta.std((0, 1)), out["exact_sd"], rtol=0.1)
        slope_sum = np.asarray(out[key].samples["slope_sum"])
        np.testing.assert_allclose(slope_sum, beta[..., 1:].sum(-1), rtol=1e-5, atol=1e-5)
    ess = {
        key: min(float(az.ess(np.asarray(out[key].samples["beta"])[..., j])) for j in range(3))
        for key in ("diagonal", "dense")
    }
    assert ess["dense"] > 2 * ess["diagonal"], ess


def _normal_model(y):
    mu = numpyro.sample("mu", dist.Normal(0, 10))
    with numpyro.plate("n", y.shape[0]):
        numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


def _two_modes():
    # Modes at -20 and +20, sd 1: no chain crosses the barrier at 0 (density e^-200), so where
    # a chain ends up says where it started.
    mu = numpyro.sample("mu", dist.Normal(0, 100))
    numpyro.factor("modes", jnp.logaddexp(-0.5 * (mu + 20) ** 2, -0.5 * (mu - 20) ** 2))


def _final_modes(**kwargs):
    res = run_nuts(
        jax.random.key(3),
        _two_modes,
        num_warmup=100,
        num_samples=50,
        num_chains=8,
        progress_bar=False,
        **kwargs,
    )
    return np.sign(np.asarray(res.samples["mu"]).mean(1))


@pytest.mark.parametrize(
    "strategy",
    [None, init_to_uniform, init_to_uniform(radius=2), init_to_median, init_to_value(values={})],
)
def test_init_strategies_run_and_agree(strategy):
    y = np.array([0.5, 1.5, 1.0], np.float32)
    res = run_nuts(
        jax.random.key(0),
        _normal_model,
        y=y,
        num_warmup=300,
        num_samples=600,
        num_chains=2,
        init_strategy=strategy,
        progress_bar=False,
    )
    mu = np.asarray(res.samples["mu"])
    # Posterior Normal(y.sum() / (3 + 1e-2), 1 / sqrt(3.01)); 1,200 draws.
    assert abs(mu.mean() - y.sum() / 3.01) < 4 * 0.58 / np.sqrt(300)


def test_default_and_explicit_init_to_uniform_are_the_same():
    y = np.array([0.5, 1.5, 1.0], np.float32)
    a, b = (
        run_nuts(
            jax.random.key(0),
            _normal_model,
            y=y,
            num_warmup=50,
            num_samples=50,
            progress_bar=False,
            **kw,
        ).samples["mu"]
        for kw in ({}, {"init_strategy": init_to_uniform})
    )
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_init_to_value_starts_chains_there():
    uniform = _final_modes()  # starts in [-2, 2]: chains go either way
    assert set(uniform.ravel()) == {-1.0, 1.0}
    at_value = _final_modes(init_strategy=init_to_value(values={"mu": 15.0}))
    assert np.all(at_value == 1.0)


def test_init_to_value_outside_support_is_refused():
    def model(y):
        s = numpyro.sample("s", dist.HalfNormal(1.0))
        numpyro.sample("y", dist.Normal(0, s), obs=y)

    with pytest.raises(ValueError, match=r"'init_strategy' .* (refuses|non-finite).* support"):
        run_nuts(
            jax.random.key(0),
            model,
            y=np.ones(3, np.float32),
            init_strategy=init_to_value(values={"s": -1.0}),
            progress_bar=False,
        )


def test_init_strategy_must_be_callable():
    with pytest.raises(TypeError, match=r"'init_strategy' .* NumPyro init strategy .* got str"):
        run_nuts(
            jax.random.key(0),
            _normal_model,
            y=np.ones(3, np.float32),
            init_strategy="median",
            progress_bar=False,
        )


def test_discrete_latent_sites_are_refused_by_name():
    def mixture(y):
        z = numpyro.sample("z", dist.Bernoulli(0.5).expand([y.shape[0]]))
        numpyro.sample("y", dist.Normal(3.0 * z, 1.0), obs=y)

    with pytest.raises(ValueError, match=r"discrete latent sites \['z'\].*logsumexp"):
        run_nuts(jax.random.key(0), mixture, y=np.ones(3, np.float32), progress_bar=False)


def test_support_that_depends_on_another_site():
    # b ~ flat on (0, a), a ~ Uniform(0, 1): p(a, b) ∝ 1 on the triangle 0 < b < a < 1, so
    # E[a] = 2/3, E[b] = 1/3 (the Jacobian of the moving bound must be counted).
    def triangle():
        a = numpyro.sample("a", dist.Uniform(0.0, 1.0))
        numpyro.sample("b", dist.ImproperUniform(constraints.interval(0.0, a), (), ()))

    res = run_nuts(
        jax.random.key(0),
        triangle,
        num_warmup=500,
        num_samples=2000,
        num_chains=2,
        progress_bar=False,
    )
    a, b = (np.asarray(res.samples[k]).astype(np.float64) for k in ("a", "b"))
    assert np.all(b < a)
    for draws, expected in ((a, 2 / 3), (b, 1 / 3)):
        assert abs(draws.mean() - expected) < 4 * float(az.mcse(draws))


def test_first_start_kept_when_finite_redrawn_when_not():
    template = {"x": np.zeros(())}
    key = jax.random.key(0)
    first = nuts._uniform_draw(template, 2.0, key)
    kept = nuts._finite_start(lambda p: -(p["x"] ** 2), template, 2.0, key).position
    assert float(kept["x"]) == float(first["x"])
    # Infinite unless x > 1.5: the start must be redrawn into that region.
    start = nuts._finite_start(
        lambda p: jax.numpy.where(p["x"] > 1.5, -(p["x"] ** 2), -jax.numpy.inf), template, 2.0, key
    )
    assert float(start.position["x"]) > 1.5


def test_a_chain_with_no_finite_start_is_refused():
    # Finite only for x > 5: no uniform start in [-2, 2] reaches it (NumPyro raises too).
    def logdensity(p):
        return jnp.where(p[0] > 5, -jnp.sum(p**2), -jnp.inf)

    with pytest.raises(ValueError, match=r"NUTS chains \[0, 1\] found no start .* finite"):
        nuts.sample_nuts(
            jax.random.key(0), logdensity, jnp.zeros(2), num_warmup=5, num_samples=5,
            num_chains=2, progress_bar=False,
        )  # fmt: skip

    def bounded(y):
        a = numpyro.sample("a", dist.HalfNormal(3.0))
        numpyro.sample("y", dist.Uniform(0.0, a), obs=y)

    # A given start outside the likelihood's support (a = 1 < y = 5): refused, not stuck.
    with pytest.raises(ValueError, match=r"NUTS chains \[0\] found no start"):
        run_nuts(
            jax.random.key(0), bounded, y=np.array([5.0], np.float32), num_warmup=5,
            num_samples=5, init_strategy=init_to_value(values={"a": 1.0}), progress_bar=False,
        )  # fmt: skip


def test_initial_positions_need_a_chain_axis():
    with pytest.raises(ValueError, match=r"'initial_positions' .* leaf shapes \[\(2, 2\)\]\. Got"):
        nuts.sample_nuts(
            jax.random.key(0), lambda p: -jnp.sum(p**2), jnp.zeros(2),
            initial_positions=jnp.zeros(2), num_warmup=5, num_samples=5, num_chains=2,
            progress_bar=False,
        )  # fmt: skip
