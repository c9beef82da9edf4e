"""`posterax benchmark uci --tune BUDGET`: tuned results beside the untuned ones, resumable."""

import json

import numpy as np
import pytest

from posterax.cli.benchmark_uci import parse_tune_budget, run_uci_benchmark, score_split
from posterax.cli.main import main
from uci_layout import write_tiny_uci


@pytest.fixture(scope="module")
def tiny_uci(tmp_path_factory):
    """A set in the UCI layout: 60 rows, 3 features + target, one fixed 50/10 split."""
    return write_tiny_uci(tmp_path_factory.mktemp("uci"), n_splits=1)


def test_tune_runs_beside_the_untuned_method_and_resumes(tiny_uci, tmp_path, capsys):
    out = tmp_path / "bench"
    argv = ["benchmark", "uci", "--datasets", "tiny", "--methods", "map", "--tune", "2"]
    argv += ["--data-dir", str(tiny_uci), "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| tiny | map" in printed and "map+tune2" in printed
    assert "budget 2 trials per split" in printed
    record = json.loads((out / "results" / "tiny" / "map+tune2" / "split_00.json").read_text())
    tuning = record["tuning"]
    assert tuning["n_trials"] == 2 and tuning["budget"] == "2"
    assert record["settings"]["tune"] == "2" and record["settings"]["method"] == "map"
    assert tuning["best_validation_nll"] <= tuning["default_validation_nll"]
    assert tuning["search_seconds"] > 0 and np.isfinite(record["test_ll"])
    summary = json.loads((out / "summary.json").read_text())["tiny"]["methods"]
    assert set(summary) == {"map", "map+tune2"}
    assert "tuning" not in summary["map"]
    assert summary["map+tune2"]["tuning"]["budget_per_split"] == "2 trials"
    # A re-run refits nothing: both keys are on disk with their settings.
    calls = []

    def count(method, folder, split, root):
        calls.append(method)
        return score_split(method, folder, split, root)

    run_uci_benchmark(
        ["tiny"], ["map"], out=out, data_dir=tiny_uci, progress_bar=False, score=count, tune="2"
    )
    assert calls == []


def test_a_bad_budget_is_refused_before_any_fit(tiny_uci, tmp_path, capsys):
    argv = ["benchmark", "uci", "--datasets", "tiny", "--methods", "map", "--tune", "lots"]
    assert main([*argv, "--data-dir", str(tiny_uci), "--out", str(tmp_path)]) == 1
    assert "--tune must be a number of trials >= 1 (e.g. 20)" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()
    assert (
        parse_tune_budget("300s").items()
        >= {"label": "300s", "n_trials": None, "timeout": 300.0, "search_method": None}.items()
    )
    assert parse_tune_budget("20")["n_trials"] == 20
    assert parse_tune_budget("20@map").items() >= {"n_trials": 20, "search_method": "map"}.items()
    with pytest.raises(ValueError, match=r"stand-in method 'mapp'"):
        parse_tune_budget("20@mapp")
    with pytest.raises(ValueError, match=r"Got '0'"):
        parse_tune_budget("0")


def test_an_ensemble_tuned_through_map_trials_is_stored_under_its_own_key(tiny_uci, tmp_path):
    out = tmp_path / "bench"
    summary = run_uci_benchmark(
        ["tiny"], ["ensemble"], out=out, data_dir=tiny_uci, progress_bar=False, tune="2@map"
    )
    record = json.loads(
        (out / "results" / "tiny" / "ensemble+tune2@map" / "split_00.json").read_text()
    )
    assert record["tuning"]["n_trials"] == 2 and record["settings"]["tune"] == "2@map"
    assert np.isfinite(record["test_ll"])
    tuning = summary["tiny"]["methods"]["ensemble+tune2@map"]["tuning"]
    assert tuning["search_method"] == "map" and tuning["budget_per_split"] == "2 trials"
