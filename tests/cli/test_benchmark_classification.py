"""`posterax benchmark classification` on Iris: scores before/after temperature scaling, resume."""

import json

import pytest

from posterax.cli import benchmark_classification as bench
from posterax.cli.main import main


def test_iris_scores_and_resume(tmp_path, monkeypatch, capsys):
    assert (
        main(
            [
                "benchmark",
                "classification",
                "--datasets",
                "iris",
                "--methods",
                "map",
                "--seeds",
                "1",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert "| iris | map |" in capsys.readouterr().out
    result = json.loads((tmp_path / "results" / "iris" / "map" / "seed_00.json").read_text())
    before, after = result["before"], result["after_temperature_scaling"]
    assert before["accuracy"] >= 0.9
    assert 0 < before["ece"] < 1 and 0 <= before["brier"] < 2 and before["nll"] > 0
    assert result["temperature"] > 0
    assert after["accuracy"] == pytest.approx(before["accuracy"])  # scaling keeps the argmax

    def refit(*args):
        raise AssertionError("a finished cell was fitted again")

    monkeypatch.setattr(bench, "score_classification", refit)
    summary = bench.run_classification_benchmark(
        ["iris"], ["map"], seeds=1, out=tmp_path, progress_bar=False
    )
    assert summary["iris"]["map"]["before/accuracy"]["mean"] == pytest.approx(before["accuracy"])


def test_unknown_set_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"unknown data sets \['mnist'\].*iris, wine"):
        bench.run_classification_benchmark(["mnist"], ["map"], out=tmp_path)
