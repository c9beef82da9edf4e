"""Coverage by bins of uncertainty: against a direct per-bin count, edges that bound their
bins, clear errors."""

import numpy as np
import pytest

from posterax.metrics import coverage_by_uncertainty


@pytest.mark.parametrize(("n", "n_bins"), [(10, 3), (1000, 7), (12, 4)])
def test_bins_against_a_direct_count(n, n_bins):
    rng = np.random.default_rng(n)
    spread = rng.exponential(size=n)
    y = rng.normal(size=n)
    lower, upper = -spread * 1.5, spread * 1.5
    table = coverage_by_uncertainty(y, {"a": (lower, upper)}, spread, n_bins)
    assert table.count.sum() == n and table.count.max() - table.count.min() <= 1
    order = np.argsort(spread)
    start = 0
    for b, size in enumerate(table.count):
        members = order[start : start + size]
        start += size
        # the edges bound the bin's values: its smallest value is its lower edge
        assert spread[members].min() == table.edges[b]
        assert spread[members].max() <= table.edges[b + 1]
        hit = (lower[members] <= y[members]) & (y[members] <= upper[members])
        assert table.coverage["a"][b] == pytest.approx(hit.mean())
        assert table.width["a"][b] == pytest.approx(np.mean(upper[members] - lower[members]))


def test_bad_input_names_the_parameter():
    y = np.zeros(5)
    with pytest.raises(ValueError, match="'uncertainty'"):
        coverage_by_uncertainty(y, {"a": (y, y)}, np.zeros(4))
    with pytest.raises(ValueError, match="'n_bins'"):
        coverage_by_uncertainty(y, {"a": (y, y)}, y, n_bins=6)
    with pytest.raises(ValueError, match="'intervals'"):
        coverage_by_uncertainty(y, {}, y)
    with pytest.raises(ValueError, match="'intervals'"):
        coverage_by_uncertainty(y, {"a": (y[:3], y)}, y)
