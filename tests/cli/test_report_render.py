"""The HTML report in a real browser (headless Chromium): a one-figure page, and a page whose
figure fails to decode, which the check must catch. The demo's and a benchmark's reports are
rendered in test_demo.py and test_benchmark_uci.py."""

import matplotlib.pyplot as plt
import pytest

from browser import check_rendered, external_requests, render, require_browser
from posterax.report import Section, write_html


def _page(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1], linewidth=8, color="black")
    return write_html(
        tmp_path / "report.html",
        "render check",
        [Section("S", tables=[(["a"], [[1.0]])], figures=[(fig, "line")])],
    )


def test_report_renders_with_its_figure(tmp_path):
    out = check_rendered(_page(tmp_path))
    assert len(out.images) == 1 and "render check" in out.text


def test_a_broken_figure_is_caught(tmp_path):
    require_browser()
    page = _page(tmp_path)
    html = page.read_text()
    start = html.index("base64,") + len("base64,")
    # Keep the PNG header (the expected size) and corrupt the image data after it.
    page.write_text(html[: start + 200] + "A" * 400 + html[start + 600 :])
    with pytest.raises(AssertionError):
        check_rendered(page)
    (image,) = render(page).images
    assert image["width"] == 0 or image["pixel_std"] < 0.02  # it really did not draw


def test_a_page_that_fetches_from_the_network_is_caught(tmp_path):
    require_browser()
    page = _page(tmp_path)
    page.write_text(
        page.read_text().replace(
            "</body>", '<script src="http://127.0.0.1:9/x.js"></script></body>'
        )
    )
    with pytest.raises(AssertionError, match=r"fetched \['http://127\.0\.0\.1:9/x\.js'\]"):
        check_rendered(page)
    assert external_requests(render(page), page) == ["http://127.0.0.1:9/x.js"]
