import base64
import json
import re

import numpy as np
import pytest

from browser import check_rendered
from posterax.cli.main import main


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    # No disk cache here: the test process has compiled before, and ~/.cache is not ours to fill.
    assert main(["demo", "--quick", "--no-compile-cache", "--out", str(out)]) == 0
    return out


def test_demo_writes_report_pngs_and_metrics(demo_dir):
    for name in (
        "report.html",
        "metrics.json",
        "regression_band.png",
        "posterior_nuts.png",
        "posterior_exact.png",
        "methods_bands.png",
        "uncertainty_decomposition.png",
        "conformal_by_uncertainty.png",
    ):
        assert (demo_dir / name).stat().st_size > 1000, name


def test_report_is_self_contained(demo_dir):
    html = (demo_dir / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) >= 3
    assert all(base64.b64decode(img)[:8] == b"\x89PNG\r\n\x1a\n" for img in images)
    assert "http://" not in html and "https://" not in html  # opens offline


def test_demo_report_renders_in_a_browser(demo_dir):
    out = check_rendered(demo_dir / "report.html")
    assert len(out.images) >= 5  # every figure the demo wrote, each drawn at its own size


def test_metrics_json(demo_dir, seed_data):
    metrics = json.loads((demo_dir / "metrics.json").read_text())
    assert set(metrics["methods"]) == {"exact", "nuts", "map"}
    assert metrics["data"]["true_coef"] == pytest.approx(seed_data[2])
    nuts = metrics["methods"]["nuts"]["parameters"]["coef[0]"]
    assert nuts["lower"] < nuts["mean"] < nuts["upper"]
    assert 41.0 < nuts["mean"] < 47.0
    diag = metrics["nuts"]["parameters"]["coef[0]"]
    assert {"r_hat", "ess_bulk", "ess_tail"} <= set(diag)
    assert all(m["fit_seconds"] > 0 for m in metrics["methods"].values())


def test_network_methods_section(demo_dir):
    from posterax.cli.demo_methods import QUICK_METHODS

    methods = json.loads((demo_dir / "metrics.json").read_text())["network_methods"]
    assert tuple(methods) == QUICK_METHODS  # nuts reused from the BNN section
    for name, m in methods.items():
        assert m["fit_seconds"] > 0, name
        assert 0.25 < m["test_rmse"] < 0.8, name
        assert 0.8 < m["test_coverage_95"] <= 1.0, name
        assert m["mean_std_outside"] > m["mean_std_inside"] > 0, name
    assert "Posterior methods compared" in (demo_dir / "report.html").read_text()


def test_cli_without_command_prints_help(capsys):
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


def test_uncertainty_decomposition_section(demo_dir):
    """Epistemic uncertainty rises outside the training range; aleatoric stays flat."""
    section = json.loads((demo_dir / "metrics.json").read_text())["uncertainty_decomposition"]
    assert section  # the quick demo fits nuts and the ensemble
    for name, m in section.items():
        assert m["epistemic_outside"] > 5 * m["epistemic_inside"], name
        assert m["aleatoric_outside"] == pytest.approx(m["aleatoric_inside"], rel=0.25), name


def test_conformal_by_uncertainty_section(demo_dir):
    """4000 test points in 5 equal-count bins of epistemic sd. One conformal threshold covers
    90% on average (Monte Carlo sd 0.005); one threshold per bin (Mondrian) brings every bin
    near 90% (sd about 0.025 per bin, from 200 calibration and 800 test points), closer than
    the single threshold manages in its worst bin."""
    m = json.loads((demo_dir / "metrics.json").read_text())["conformal_by_uncertainty"]
    single, per_bin = (np.array(m["coverage"][k]) for k in ("conformal", "conformal per bin"))
    assert abs(single.mean() - 0.9) < 0.02, single
    assert np.all(np.abs(per_bin - 0.9) < 0.075), per_bin
    assert np.abs(per_bin - 0.9).max() < np.abs(single - 0.9).max(), (per_bin, single)
