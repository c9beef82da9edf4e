"""The covariate-shift example runs and shows what it prints: plain split conformal
under-covers the shifted test set, weighted split conformal (known or estimated likelihood
ratio) covers at the nominal 90%, with wider intervals."""

from pathlib import Path


def test_the_covariate_shift_example_shows_what_it_says(tmp_path: Path):
    import conformal_covariate_shift as example  # examples/ is on sys.path via conftest

    out = example.main(figure=str(tmp_path / "shift.png"))
    assert out["plain"] < 0.86  # calibrated on N(0, 1), tested on N(1, 1)
    assert 0.87 < out["weighted_true"] < 0.93 and 0.87 < out["weighted_estimated"] < 0.93
    for name in ("weighted_true", "weighted_estimated"):
        assert out[f"{name}_median_width"] > out["plain_median_width"]
        assert out[f"{name}_infinite"] < 0.01
    assert (tmp_path / "shift.png").stat().st_size > 10_000
