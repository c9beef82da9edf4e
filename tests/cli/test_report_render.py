"""The HTML report renders in a real browser (headless Chromium; skipped where absent)."""

import shutil
import subprocess

import matplotlib.pyplot as plt
import numpy as np
import pytest

from posterax.report import Section, write_html

CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
    None,
)


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium on this machine")
def test_report_renders_with_its_figure(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1], linewidth=8, color="black")
    page = write_html(
        tmp_path / "report.html",
        "render check",
        [Section("S", tables=[(["a"], [[1.0]])], figures=[(fig, "line")])],
    )
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--screenshot={shot}",
            "--window-size=1000,900",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    pixels = plt.imread(shot)
    assert pixels.shape[0] > 100 and np.std(pixels) > 0.05  # not a blank page
