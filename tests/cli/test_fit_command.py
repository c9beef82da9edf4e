"""`posterax fit` / `posterax predict` on tables written by the tests."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_wine

from posterax.cli.fit_command import choose_method, infer_task
from posterax.cli.main import main


@pytest.fixture(scope="module")
def diabetes_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("diabetes")
    frame = load_diabetes(as_frame=True).frame
    frame["sex"] = np.where(frame["sex"] > 0, "m", "f")  # a categorical column
    frame.to_csv(root / "diabetes.csv", index=False)
    code = main(
        [
            "fit",
            str(root / "diabetes.csv"),
            "--target",
            "target",
            "--method",
            "map",
            "--out",
            str(root / "run"),
        ]
    )
    assert code == 0
    return root, frame


def test_fit_writes_model_metrics_predictions_and_report(diabetes_run):
    root, frame = diabetes_run
    run = root / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["data"]["task"] == "regression"
    assert "sex=m" in metrics["data"]["features"] and "sex=f" in metrics["data"]["features"]
    # A linear-ish problem: a 50-unit MAP network beats predicting the mean (sd of y = 77).
    assert metrics["test"]["rmse"] < 0.85 * frame["target"].std()
    assert 0.8 < metrics["test"]["coverage_95%"] <= 1.0
    predictions = pd.read_csv(run / "predictions.csv")
    assert (
        len(predictions) == metrics["data"]["test_rows"] == int(np.ceil(0.2 * len(frame)))
    )  # sklearn rounds up
    assert {"row", "y_true", "mean", "std", "lower_95%", "upper_95%"} <= set(predictions)
    assert np.all(predictions["lower_95%"] < predictions["mean"])
    # The MAP held out 35 rows: enough for a conformal 95% interval (the level set on them).
    assert {"conformal_lower_95%", "conformal_upper_95%"} <= set(predictions)
    assert np.all(predictions["conformal_lower_95%"] < predictions["conformal_upper_95%"])
    assert 0.8 < metrics["test"]["conformal_coverage_95%"] <= 1.0
    np.testing.assert_allclose(predictions["y_true"], frame["target"].iloc[predictions["row"]])
    assert "<img" in (run / "report.html").read_text()
    unc = metrics["uncertainty"]  # a MAP network has no weight uncertainty: all aleatoric
    assert unc["units"] == "variance" and unc["mean_epistemic"] == pytest.approx(0, abs=1e-6)
    assert unc["mean_total"] == pytest.approx(unc["mean_aleatoric"], rel=1e-5)
    assert metrics["mcmc"] is None


@pytest.mark.slow
def test_auto_method_on_small_data_reports_mcmc_diagnostics(tmp_path):
    frame = load_diabetes(as_frame=True).frame.iloc[:150]
    frame.to_csv(tmp_path / "small.csv", index=False)
    assert (
        main(
            [
                "fit",
                str(tmp_path / "small.csv"),
                "--target",
                "target",
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 0
    )
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["method"]["name"] == "nuts"
    assert {"max_r_hat", "min_ess_bulk", "divergences"} <= set(metrics["mcmc"])
    unc = metrics["uncertainty"]
    assert unc["mean_epistemic"] > 0
    assert unc["mean_total"] == pytest.approx(unc["mean_aleatoric"] + unc["mean_epistemic"])
    assert "MCMC (function space)" in (tmp_path / "run" / "report.html").read_text()


def test_predict_reproduces_the_held_out_predictions(diabetes_run, tmp_path):
    root, frame = diabetes_run
    held_out = pd.read_csv(root / "run" / "predictions.csv")
    new = frame.iloc[held_out["row"]].drop(columns=["target"])  # a table without the target
    new.to_csv(tmp_path / "new.csv", index=False)
    assert (
        main(
            [
                "predict",
                str(root / "run"),
                str(tmp_path / "new.csv"),
                "--out",
                str(tmp_path / "out.csv"),
            ]
        )
        == 0
    )
    again = pd.read_csv(tmp_path / "out.csv")
    np.testing.assert_allclose(again["mean"], held_out["mean"], rtol=1e-5)
    np.testing.assert_allclose(again["std"], held_out["std"], rtol=1e-5)


def test_fit_classification_on_wine(tmp_path):
    frame = load_wine(as_frame=True).frame
    frame["target"] = np.array(["barolo", "grignolino", "barbera"])[frame["target"]]
    path = tmp_path / "wine.parquet"  # Parquet through pyarrow (the dev extra installs it)
    frame.to_parquet(path)
    assert (
        main(
            [
                "fit",
                str(path),
                "--target",
                "target",
                "--method",
                "map",
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 0
    )
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["data"]["task"] == "classification"
    assert metrics["test"]["accuracy"] >= 0.9
    predictions = pd.read_csv(tmp_path / "run" / "predictions.csv")
    probs = predictions[["prob_barbera", "prob_barolo", "prob_grignolino"]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert np.all(predictions["entropy"] >= 0)


def _table(tmp_path, frame, name="t.csv"):
    frame.to_csv(tmp_path / name, index=False)
    return str(tmp_path / name)


def _small_frame(n=30):
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "y": rng.normal(size=n)})


@pytest.mark.parametrize(
    ("change", "args", "message"),
    [
        (lambda f: f, ["--target", "price"], r"'--target'.*'price'.*columns are \['a', 'b', 'y'\]"),
        (lambda f: f.assign(b=np.nan), ["--target", "y"], r"\['b'\] hold no values"),
        (lambda f: f.iloc[:1], ["--target", "y"], r"1 row\(s\); at least 10"),
        (
            lambda f: f.assign(a=np.where(np.arange(30) % 7 == 3, np.nan, f["a"])),
            ["--target", "y"],
            r"missing values in the columns \['a'\] \(rows 3, 10, 17, 24\).*--impute",
        ),
        (
            lambda f: f.assign(y=np.where(np.arange(30) == 5, np.nan, f["y"])),
            ["--target", "y"],
            r"target column 'y'.*1 missing values \(rows 5\)",
        ),
    ],
    ids=["no-target-column", "all-nan-column", "single-row", "missing-values", "missing-target"],
)
def test_bad_tables_fail_clearly(tmp_path, capsys, change, args, message):
    path = _table(tmp_path, change(_small_frame()))
    assert main(["fit", path, *args, "--method", "map", "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert pytest.importorskip("re").search(message, err), err


def test_impute_fills_missing_features_from_the_training_rows_only(tmp_path):
    from sklearn.model_selection import train_test_split

    frame = _small_frame(60)
    train_rows, test_rows = train_test_split(np.arange(60), test_size=0.2, random_state=0)
    frame.loc[test_rows, "a"] = 1e6  # a leak of the test rows would move the median
    frame.loc[train_rows[:2], "a"] = np.nan
    frame["c"] = np.where(np.arange(60) % 2, "x", "z").astype(object)
    frame.loc[train_rows[2], "c"] = np.nan
    path = _table(tmp_path, frame)
    code = main(
        ["fit", path, "--target", "y", "--method", "map", "--impute", "--out", str(tmp_path / "o")]
    )
    assert code == 0
    encoder = json.loads((tmp_path / "o" / "encoder.json").read_text())
    assert encoder["fill"]["a"] == pytest.approx(frame["a"].iloc[train_rows].median())
    assert encoder["categorical"] == {"c": ["x", "z"]}


def test_auto_method_follows_the_data_size():
    assert choose_method(150, "regression")[0] == "nuts"
    method, _, why = choose_method(5000, "classification")
    assert method == "ensemble" and "5000 training rows" in why
    assert infer_task(pd.Series(np.arange(50.0))) == "regression"
    assert infer_task(pd.Series([0, 1, 2] * 10)) == "classification"
    assert infer_task(pd.Series(["a", "b"] * 10)) == "classification"


def test_report_rebuilds_the_fit_report(diabetes_run):
    root, _ = diabetes_run
    (root / "run" / "report.html").unlink()
    assert main(["report", str(root / "run")]) == 0
    html = (root / "run" / "report.html").read_text()
    assert "held-out score" in html and html.count("<img") == 1
