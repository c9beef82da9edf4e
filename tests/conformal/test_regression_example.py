"""The conformal regression example runs and shows what it says: with a calibration set of
your own, and from a network fit's own held-out rows, where the Gaussian predictive's 50%
intervals over-cover heavy-tailed noise."""

import math


def test_the_conformal_regression_example_shows_what_it_says():
    import conformal_regression as example  # examples/ is on sys.path via conftest

    out = example.main()
    assert abs(out["conformal_coverage"] - 0.9) < 0.04  # 1000 calibration and test rows

    held = example.held_out_rows()
    n, level = held["held_out_rows"], held["level"]
    # Split conformal coverage ~ Beta(k, n + 1 - k), k = ceil((n + 1) level), plus the
    # binomial error of the test rows: within four sds of k / (n + 1).
    k = math.ceil((n + 1) * level)
    mean = k / (n + 1)
    sd = math.sqrt(mean * (1 - mean) / (n + 2) + level * (1 - level) / held["test_rows"])
    assert abs(held["conformal_coverage"] - mean) < 4 * sd
    assert held["predictive_coverage"] > mean + 4 * sd  # t(3) noise under a Gaussian mixture
