"""`posterax benchmark uci`: the resumable grid on a tiny UCI-format directory."""

import json

import pytest

from browser import check_rendered
from posterax.cli.benchmark_uci import published_tables, run_uci_benchmark, score_split
from posterax.data.uci import find_uci_dir
from uci_layout import write_tiny_uci


@pytest.fixture(scope="module")
def tiny_uci(tmp_path_factory):
    """A set in the UCI layout: 60 rows, 3 features + target, 3 fixed 50/10 splits."""
    return write_tiny_uci(tmp_path_factory.mktemp("uci"), n_splits=3)


def _table(summary):
    return {
        (s, m): (row["splits"], row["rmse"], row["test_ll"])
        for s, entry in summary.items()
        for m, row in entry["methods"].items()
    }


def test_a_resumed_run_gives_the_same_table(tiny_uci, tmp_path):
    methods = ["map"]
    whole = run_uci_benchmark(
        ["tiny"], methods, out=tmp_path / "a", data_dir=tiny_uci, progress_bar=False
    )
    calls = []

    def crash_after_two(method, folder, split, root):
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed mid-grid
        calls.append((method, split))
        return score_split(method, folder, split, root)

    with pytest.raises(KeyboardInterrupt):
        run_uci_benchmark(
            ["tiny"],
            methods,
            out=tmp_path / "b",
            data_dir=tiny_uci,
            progress_bar=False,
            score=crash_after_two,
        )
    assert len(list((tmp_path / "b" / "results").rglob("split_*.json"))) == 2

    def count(method, folder, split, root):
        calls.append((method, split))
        return score_split(method, folder, split, root)

    calls.clear()
    resumed = run_uci_benchmark(
        ["tiny"], methods, out=tmp_path / "b", data_dir=tiny_uci, progress_bar=False, score=count
    )
    assert len(calls) == 1  # only the cell not yet on disk
    assert _table(resumed) == _table(whole)
    entry = whole["tiny"]
    assert set(entry["methods"]) == set(methods) and entry["best_method"] in methods
    assert all(row["splits"] == 3 for row in entry["methods"].values())
    stored = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert stored["tiny"]["methods"]["map"]["rmse"] == pytest.approx(
        entry["methods"]["map"]["rmse"]
    )
    assert "| tiny | " in (tmp_path / "a" / "summary.md").read_text()

    # A smaller grid over the same directory summarises only its own splits, refitting nothing;
    # a result made with other settings is redone.
    calls.clear()
    two = run_uci_benchmark(
        ["tiny"],
        methods,
        splits=2,
        out=tmp_path / "b",
        data_dir=tiny_uci,
        progress_bar=False,
        score=count,
    )
    assert calls == [] and two["tiny"]["methods"]["map"]["splits"] == 2
    stale = tmp_path / "b" / "results" / "tiny" / "map" / "split_01.json"
    record = json.loads(stale.read_text())
    record["settings"]["hidden"] = [7]
    stale.write_text(json.dumps(record))
    run_uci_benchmark(
        ["tiny"],
        methods,
        splits=2,
        out=tmp_path / "b",
        data_dir=tiny_uci,
        progress_bar=False,
        score=count,
    )
    assert calls == [("map", 1)]


def test_scores_are_in_original_units(tiny_uci):
    result = score_split("map", "tiny", 0, tiny_uci)
    # y has sd about 1.2 and noise 0.3: a fitted model's RMSE sits between the two.
    assert 0.2 < result["rmse"] < 1.0 and -2.0 < result["test_ll"] < 0.5
    # Nested central intervals: the 95% one covers at least what the 90% one does, and is wider.
    assert 0.5 < result["coverage_90"] <= result["coverage_95"] <= 1.0
    assert 0 < result["width_90"] < result["width_95"]


def test_unknown_set_and_method_fail_before_any_fit(tiny_uci, tmp_path):
    with pytest.raises(ValueError, match=r"no data set 'atlantis'.*Known: tiny"):
        run_uci_benchmark(["atlantis"], ["map"], out=tmp_path, data_dir=tiny_uci)
    with pytest.raises(ValueError, match=r"'method'.*'nuts'.*Got 'gp'"):
        run_uci_benchmark(["tiny"], ["gp"], out=tmp_path, data_dir=tiny_uci)
    with pytest.raises(ValueError, match=r"--splits must be an int >= 1.*Got 0"):
        run_uci_benchmark(["tiny"], ["map"], splits=0, out=tmp_path, data_dir=tiny_uci)


@pytest.mark.skipif(find_uci_dir() is None, reason="UCI data directory (../shared/data/uci) absent")
def test_published_tables_are_read_from_the_data_directory():
    tables = published_tables(find_uci_dir())
    gal = next(rows for title, rows in tables.items() if title.startswith("Gal"))
    assert gal["bostonHousing"]["LL MC dropout"].startswith("-2.46")
    assert len(gal) == 7


def test_report_of_a_benchmark_directory(tiny_uci, tmp_path, capsys):
    from posterax.cli.main import main

    run_uci_benchmark(
        ["tiny"], ["map"], splits=2, out=tmp_path, data_dir=tiny_uci, progress_bar=False
    )
    assert main(["report", str(tmp_path)]) == 0
    html = (tmp_path / "report.html").read_text()
    assert "UCI regression" in html and "<img" in html and "Versions" in html
    check_rendered(tmp_path / "report.html")
    assert main(["report", str(tmp_path / "results")]) == 1
    assert "holds no run to report" in capsys.readouterr().err
