"""``posterax benchmark images``: the grid resumes, the summary is the mean and standard error
of the stored runs, the report shows them; one real (quick) run end to end (slow)."""

import json

import numpy as np
import pytest

import posterax.cli.benchmark_images as bench
from posterax.cli.main import main
from posterax.cli.report_command import run_report


def _fake_result(dataset, method, seed):
    rng = np.random.default_rng(hash((dataset, method, seed)) % 2**32)

    def scores():
        return {m: float(rng.uniform()) for m in ("accuracy", "nll", "brier", "ece")}

    shift = {
        kind: {str(k): {"raw": scores(), "temperature_scaled": scores()} for k in range(1, 6)}
        for kind in ("noise", "rotation")
    }
    return {
        "dataset": dataset,
        "method": method,
        "seed": seed,
        "fit_seconds": float(rng.uniform(1, 2)),
        "predict_seconds": 0.1,
        "n_test": 10,
        "temperature": 1.5,
        "clean": {"raw": scores(), "temperature_scaled": scores()},
        "shift": shift,
        "ood_auroc": {"noise images": {s: float(rng.uniform()) for s in bench.OOD_SCORES}},
    }


@pytest.fixture
def fake_fits(monkeypatch):
    calls = []

    class FakeData:
        def __init__(self, dataset, quick):
            self.dataset = dataset

    def fake_score(data, method, seed, quick=False):
        calls.append((data.dataset, method, seed))
        return _fake_result(data.dataset, method, seed)

    monkeypatch.setattr(bench, "_Data", FakeData)
    monkeypatch.setattr(bench, "score_images", fake_score)
    return calls


def test_the_grid_resumes_and_the_summary_is_mean_and_se_over_seeds(tmp_path, fake_fits):
    args = (["digits"], ["map", "ensemble"])
    summary = bench.run_images_benchmark(*args, seeds=3, out=tmp_path, progress_bar=False)
    assert len(fake_fits) == 6
    bench.run_images_benchmark(*args, seeds=3, out=tmp_path, progress_bar=False)
    assert len(fake_fits) == 6  # nothing refitted
    (tmp_path / "results_images/digits/map/seed_01.json").write_text("{broken")
    bench.run_images_benchmark(*args, seeds=3, out=tmp_path, progress_bar=False)
    assert fake_fits[6:] == [("digits", "map", 1)]  # only the damaged cell is redone
    runs = [_fake_result("digits", "ensemble", s) for s in range(3)]
    for path, metric in ((("clean/raw",), "nll"), (("shift", "noise", "4", "raw"), "ece")):
        values = []
        for run in runs:
            node = (
                run["clean"]["raw"] if path[0] == "clean/raw" else run["shift"]["noise"]["4"]["raw"]
            )
            values.append(node[metric])
        got = summary["digits"]["ensemble"]
        for key in path:
            got = got[key]
        assert got[metric]["mean"] == pytest.approx(np.mean(values))
        assert got[metric]["se"] == pytest.approx(np.std(values, ddof=1) / np.sqrt(3))
    stored = json.loads((tmp_path / "summary_images.json").read_text())
    assert stored["digits"]["map"]["seeds"] == 3
    html = run_report(tmp_path).read_text()
    assert "Images: CNNs on 8x8 digits and MNIST-1D" in html and "CNN 94%" in html
    assert html.count("data:image/png;base64") == 1  # the shift figure


def test_quick_results_are_not_mistaken_for_full_ones(tmp_path, fake_fits):
    bench.run_images_benchmark(
        ["digits"], ["map"], seeds=1, out=tmp_path, quick=True, progress_bar=False
    )
    bench.run_images_benchmark(["digits"], ["map"], seeds=1, out=tmp_path, progress_bar=False)
    assert len(fake_fits) == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--datasets", "cifar10"], "unknown data sets ['cifar10']"),
        (["--methods", "hmc"], "unknown methods ['hmc']"),
        (["--seeds", "0"], "--seeds must be an int >= 1"),
    ],
)
def test_bad_arguments_are_named(tmp_path, capsys, argv, message):
    assert main(["benchmark", "images", "--out", str(tmp_path), *argv]) == 1
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_a_quick_run_end_to_end(tmp_path):
    summary = bench.run_images_benchmark(
        ["digits", "digits_0to4"], ["map"], seeds=1, out=tmp_path, quick=True, progress_bar=False
    )
    row = summary["digits"]["map"]
    assert set(row["shift"]) == {"rotation", "noise", "pixel_dropout"}
    assert set(row["shift"]["noise"]) == {"1", "2", "3", "4", "5"}
    assert 0.2 < row["clean/raw"]["accuracy"]["mean"] <= 1.0  # 10 classes: chance is 0.1
    assert set(summary["digits_0to4"]["map"]["ood_auroc"]) == {"digits 5-9"}
    assert summary["digits_0to4"]["map"]["shift"] == {}
