"""SG-MCMC on Bayesian linear regression with known noise: not exact, but its error shrinks
with the step size (we test that, and claim no more)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from posterax.inference import SGMCMCSettings, sample_sgmcmc

SIGMA = 0.5


def log_prior(theta):
    return -0.5 * jnp.sum(theta**2)


def log_lik_one(theta, xy):
    x, y = xy
    return -0.5 * (y - x @ theta[:-1] - theta[-1]) ** 2 / SIGMA**2


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2)).astype(np.float32)
    y = (X @ np.array([1.0, -2.0]) + 0.5 + SIGMA * rng.normal(size=200)).astype(np.float32)
    phi = np.hstack([X, np.ones((200, 1))]).astype(np.float64)
    cov = np.linalg.inv(phi.T @ phi / SIGMA**2 + np.eye(3))
    return (jnp.asarray(X), jnp.asarray(y)), cov @ phi.T @ y / SIGMA**2, np.sqrt(np.diag(cov))


def _errors(problem, sampler, step_size, thinning):
    data, exact_mean, exact_sd = problem
    settings = SGMCMCSettings(
        sampler=sampler,
        step_size=step_size,
        num_burnin=2000,
        num_samples=2000,
        thinning=thinning,
        num_chains=2,
        batch_size=50,
    )
    start = jnp.tile(
        jnp.asarray(exact_mean, dtype=jnp.float32), (2, 1)
    )  # burn-in is tested elsewhere
    draws = sample_sgmcmc(jax.random.key(0), log_prior, log_lik_one, start, data, settings).samples
    flat = np.asarray(draws).reshape(-1, 3)
    mean_error = np.max(np.abs(flat.mean(axis=0) - exact_mean) / exact_sd)
    sd_error = np.max(np.abs(flat.std(axis=0) / exact_sd - 1))
    return mean_error, sd_error


@pytest.mark.parametrize(
    ("sampler", "large", "small"), [("sgld", 1e-3, 5e-5), ("sghmc", 5e-3, 5e-4)]
)
def test_error_shrinks_with_the_step_size(problem, sampler, large, small):
    _, sd_large = _errors(problem, sampler, large, thinning=2)
    mean_small, sd_small = _errors(problem, sampler, small, thinning=10)
    assert sd_small < 0.5 * sd_large, (sd_small, sd_large)
    assert mean_small < 0.5, mean_small  # in posterior sds


def test_psgld_error_shrinks_with_the_step_size(problem):
    # pSGLD's step is on an RMSprop scale: the preconditioner divides by the gradient's size.
    data, exact_mean, exact_sd = problem
    errors = []
    for step, thinning in ((1e-1, 2), (5e-3, 10)):
        settings = SGMCMCSettings(
            step_size=step,
            num_burnin=2000,
            num_samples=2000,
            thinning=thinning,
            num_chains=2,
            batch_size=50,
            preconditioner="rmsprop",
        )
        start = jnp.zeros((2, 3))  # far from the mode: the preconditioned burn-in gets there
        run = sample_sgmcmc(jax.random.key(1), log_prior, log_lik_one, start, data, settings)
        draws = run.samples
        flat = np.asarray(draws).reshape(-1, 3)
        errors.append(
            (
                np.max(np.abs(flat.mean(axis=0) - exact_mean) / exact_sd),
                np.max(np.abs(flat.std(axis=0) / exact_sd - 1)),
            )
        )
    (_, sd_large), (mean_small, sd_small) = errors
    assert sd_small < 0.5 * sd_large, errors
    assert mean_small < 0.5, errors


@pytest.mark.parametrize("sampler", ["sgld", pytest.param("sghmc", marks=pytest.mark.slow)])
def test_cyclical_collects_draws_near_the_posterior_in_every_cycle(problem, sampler):
    data, exact_mean, exact_sd = problem
    cycles, per_cycle = 4, 250
    settings = SGMCMCSettings(
        sampler=sampler,
        step_size=2e-3 if sampler == "sgld" else 1e-2,
        num_burnin=cycles * 500,
        num_samples=cycles * per_cycle,
        thinning=2,
        num_chains=1,
        batch_size=50,
        schedule="cyclical",
        num_cycles=cycles,
    )
    run = sample_sgmcmc(
        jax.random.key(2), log_prior, log_lik_one, jnp.zeros((1, 3)), data, settings
    )
    draws = run.samples
    assert run.info["num_steps"] == cycles * (500 + per_cycle * 2)
    flat = np.asarray(draws).reshape(cycles, per_cycle, 3)
    # Every cycle's draws sit on the posterior (each cycle restarts from a large step).
    for cycle in flat:
        assert np.all(np.abs(cycle.mean(axis=0) - exact_mean) / exact_sd < 1.5), cycle.mean(0)
    pooled = flat.reshape(-1, 3)
    assert np.max(np.abs(pooled.mean(axis=0) - exact_mean) / exact_sd) < 0.6
    ratio = pooled.std(axis=0) / exact_sd
    assert np.all((ratio > 0.5) & (ratio < 1.5)), ratio


def test_cyclical_step_size_and_temperature_follow_the_cycle():
    from posterax.inference.sgmcmc import schedule_at

    settings = SGMCMCSettings(
        step_size=0.1, num_burnin=80, num_samples=40, thinning=2, schedule="cyclical", num_cycles=4
    )
    cycle = 80 // 4 + 40 // 4 * 2  # 20 exploration + 20 sampling steps
    t = jnp.arange(4 * cycle)
    step, temperature = schedule_at(settings, t)
    step, temperature = (
        np.asarray(step).reshape(4, cycle),
        np.asarray(temperature).reshape(4, cycle),
    )
    np.testing.assert_allclose(step[:, 0], 0.1, rtol=1e-6)  # each cycle restarts at the peak
    assert np.all(np.diff(step, axis=1) < 0)  # and decays within the cycle
    assert np.all(temperature[:, :20] == 0) and np.all(temperature[:, 20:] == 1)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"preconditioner": "rmsprop", "sampler": "sghmc"}, "preconditioner"),
        ({"preconditioner": "adam"}, "preconditioner"),
        ({"schedule": "cyclical", "num_cycles": 3, "num_samples": 100}, "multiple of num_cycles"),
        ({"schedule": "cosine"}, "schedule"),
        ({"thinning": 0}, "'thinning' must be an int >= 1"),
        ({"schedule": "polynomial", "decay_steps": 0}, "'decay_steps'"),
        ({"step_size": -1e-3}, "'step_size' must be a finite float > 0"),
        ({"batch_size": 0}, "'batch_size'"),
        (
            {"schedule": "cyclical", "num_cycles": 4, "num_burnin": 10, "num_samples": 8},
            r"num_burnin \(10\) must be a multiple of num_cycles \(4\)",
        ),
    ],
)
def test_bad_settings_are_refused_by_name(problem, change, match):
    settings = SGMCMCSettings(num_burnin=10, num_samples=10)._replace(**change)
    with pytest.raises(ValueError, match=match):
        sample_sgmcmc(
            jax.random.key(0), log_prior, log_lik_one, jnp.zeros((1, 3)), problem[0], settings
        )
