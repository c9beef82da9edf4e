"""Open a report in headless Chromium (Debian's, driven by Playwright) and say what rendered.

Where Chromium or Playwright is missing the browser tests skip, except under ``CI=true``, where
they fail: CI must show that the page users open was checked (``.ci/run`` installs Chromium).
"""

from __future__ import annotations

import base64
import dataclasses
import io
import os
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
    None,
)
# The flags this workplace's closed network needs (no background connections to Google).
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_browser() -> None:
    missing = []
    if CHROMIUM is None:
        missing.append("Chromium (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("Playwright (make install)")
    if not missing:
        return
    message = f"no browser to render the report: {', '.join(missing)} missing"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: the browser test must run in CI)")
    pytest.skip(message)


@dataclasses.dataclass
class Rendered:
    images: list[dict]  # per <img>: complete, natural and shown size, pixel spread on screen
    errors: list[str]  # console errors and uncaught page errors
    requests: list[str]  # every URL the page asked for, itself included
    text: str


def png_sizes(html: str) -> list[tuple[int, int]]:
    """(width, height) of every inline PNG, read from its header."""
    sizes = []
    for data in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html):
        header = base64.b64decode(data[:64])
        sizes.append(struct.unpack(">II", header[16:24]))
    return sizes


def render(page_path: Path) -> Rendered:
    from matplotlib import pyplot as plt
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_path.resolve().as_uri(), wait_until="load")
            images = page.evaluate(
                """() => Array.from(document.images, img => {
                    const box = img.getBoundingClientRect();
                    return {complete: img.complete, width: img.naturalWidth,
                            height: img.naturalHeight, shown_width: box.width,
                            shown_height: box.height};
                })"""
            )
            for i, info in enumerate(images):
                shot = page.locator("img").nth(i).screenshot()
                pixels = plt.imread(io.BytesIO(shot))
                info["pixel_std"] = float(np.std(pixels[..., :3]))
            text = page.inner_text("body")
        finally:
            browser.close()
    return Rendered(images, errors, requests, text)


def check_rendered(page_path: Path) -> Rendered:
    """Every figure rendered at its own size and not blank; no errors; nothing fetched."""
    require_browser()
    html = page_path.read_text()
    expected = png_sizes(html)
    out = render(page_path)
    assert expected, "the report has no inline figures"
    assert [(i["width"], i["height"]) for i in out.images] == expected
    for info in out.images:
        assert info["complete"] and info["shown_width"] > 100 and info["shown_height"] > 50, info
        assert info["pixel_std"] > 0.02, info  # drawn, not a blank box
    fetched = external_requests(out, page_path)
    assert fetched == [], f"the page fetched {fetched}"
    assert out.errors == [], out.errors
    return out


def external_requests(out: Rendered, page_path: Path) -> list[str]:
    """What the page asked for beyond itself and inline data."""
    page_uri = page_path.resolve().as_uri()
    return [u for u in out.requests if u != page_uri and not u.startswith("data:")]
