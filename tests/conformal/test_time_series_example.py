"""The time-series example runs and shows what it prints: EnbPI on the training residuals
under-covers once the noise triples, updating its residuals recovers only slowly, and ACI (alone
or on top of EnbPI) keeps 90% coverage before and after the change by lowering its level alpha_t
after it."""

from pathlib import Path


def test_the_time_series_example_shows_what_it_says(tmp_path: Path):
    import conformal_time_series as example  # examples/ is on sys.path via conftest

    out = example.main(figure=str(tmp_path / "time_series.png"))
    for name in ("enbpi_fixed", "enbpi", "enbpi_aci", "aci"):
        assert 0.86 < out[f"{name}_before"] < 0.94, name  # before the change, all calibrated
    assert out["enbpi_fixed_after"] < 0.6  # training residuals only: far too narrow
    assert 0.6 < out["enbpi_after"] < 0.85 and out["enbpi_first_week_after"] < 0.7  # lags
    for name in ("enbpi_aci", "aci"):
        assert 0.86 < out[f"{name}_after"] < 0.94 and 0.87 < out[f"{name}_overall"] < 0.93
        assert out[f"{name}_width_after"] > 2.5 * out["enbpi_fixed_width_after"]
        # ACI's level: near the nominal 0.1 before the change, well below it (wider intervals)
        # while the residual window still holds the old noise
        assert abs(out[f"{name}_alpha_before"] - 0.1) < 0.03
        assert out[f"{name}_alpha_first_week_after"] < 0.06
    assert (tmp_path / "time_series.png").stat().st_size > 10_000
