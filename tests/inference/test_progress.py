"""The compiled samplers (NUTS, MALA, SG-MCMC) report progress from inside the program."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from posterax.inference import SGMCMCSettings, progress, sample_sgmcmc
from posterax.inference.devices import vectorize_items
from posterax.inference.mala import MALASettings, sample_mala


@pytest.fixture
def reports(monkeypatch):
    """Steps reported to the bar (tqdm throttles what it draws, so read the reports)."""
    seen = []
    original = progress._Bar.update.__func__

    def record(cls, step):
        seen.append(int(np.max(step)))
        original(cls, step)

    monkeypatch.setattr(progress._Bar, "update", classmethod(record))
    return seen


def _log_prior(theta):
    return -0.5 * jnp.sum(theta**2)


def _log_lik_one(theta, xy):
    return -0.5 * jnp.sum((xy[1] - theta) ** 2)


def _log_density(theta, X, y):
    return -0.5 * jnp.sum(theta**2)


def test_sgmcmc_bar_counts_every_step(capsys, reports):
    settings = SGMCMCSettings(
        num_burnin=100, num_samples=50, thinning=2, num_chains=2, progress_bar=True
    )
    data = (jnp.zeros((20, 1)), jnp.zeros(20))
    sample_sgmcmc(
        jax.random.key(0), _log_prior, _log_lik_one, jnp.zeros((2, 1)), data, settings, devices=1
    )
    # 200 steps per chain; on CPU the two chains run one after the other and the bar counts both.
    total = 200 if vectorize_items() else 400
    err = capsys.readouterr().err
    assert "SGLD" in err and f"/{total}" in err, err[-300:]
    assert max(reports) == total and len(set(reports)) >= 50


def test_mala_bar_counts_warmup_and_thinned_draws(capsys, reports):
    # 1000 + 70 * 3 = 1210 steps, reported every 12: the last report lands on no multiple.
    settings = MALASettings(num_warmup=1000, num_samples=70, thinning=3, progress_bar=True)
    data = (jnp.zeros(1), jnp.zeros(1))
    sample_mala(jax.random.key(0), _log_density, jnp.zeros((1, 2)), data, settings)
    err = capsys.readouterr().err
    assert "MALA" in err and "/1210" in err, err[-300:]
    assert max(reports) == 1210


def test_no_bar_means_no_output(capsys):
    settings = SGMCMCSettings(num_burnin=10, num_samples=10)
    data = (jnp.zeros((20, 1)), jnp.zeros(20))
    sample_sgmcmc(jax.random.key(0), _log_prior, _log_lik_one, jnp.zeros((1, 1)), data, settings)
    assert capsys.readouterr().err == ""
