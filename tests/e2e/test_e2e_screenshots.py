"""Refresh the README's screenshots: docs/screenshots/<page>.png, each page as a user first sees it in Chromium.

Skipped unless asked for, so an ordinary test run never rewrites tracked images:

    MNIST_STUDIO_SCREENSHOTS=1 MNIST_DATA_ROOT=../shared/mnist python -m pytest tests/e2e -k screenshots

The Sketch shot has a digit drawn with the same mouse strokes as the Sketch test, so it shows a prediction.
"""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from tests.conftest import REPO_ROOT
from tests.e2e.streamlit_page import StreamlitTab
from tests.e2e.strokes import DIGIT_STROKES

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(os.environ.get("MNIST_STUDIO_SCREENSHOTS") != "1",
                                 reason="set MNIST_STUDIO_SCREENSHOTS=1 to refresh docs/screenshots/")]

SCREENSHOT_DIR = REPO_ROOT / "docs" / "screenshots"
SHOT_WIDTH = 1400
MAX_SHOT_HEIGHT = 4000  # the longest page (Evaluate) is about 3,000 px; a cap keeps a runaway page readable
# What must be on screen before the picture is taken (charts and images arrive after the script run ends).
READY = {
    "home": "h1",
    "dataset": ".st-key-sample-grid [data-testid='stImage']",
    "train": ".st-key-train-start",
    "evaluate": ".st-key-confusion-matrix .heatmaplayer",
    "sketch": "canvas.upper-canvas",
}


def settled_height(tab: StreamlitTab, checks: int = 20) -> int:
    """The main area's height once it stops growing: galleries and charts arrive after the script run ends, and
    a height read too early cuts them off the picture."""
    read = "() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight"
    height = -1
    for _ in range(checks):
        tab.wait_idle()
        tab.page.wait_for_timeout(500)
        latest = int(tab.page.evaluate(read))
        if latest == height:
            break
        height = latest
    return height


def full_height_shot(tab: StreamlitTab, name: str) -> None:
    """Streamlit scrolls inside its main area, not the document, so `full_page=True` would cut the page off:
    grow the viewport to the content's height instead, then take an ordinary screenshot."""
    height = settled_height(tab)
    tab.page.set_viewport_size({"width": SHOT_WIDTH, "height": min(int(height) + 40, MAX_SHOT_HEIGHT)})
    tab.wait_idle()
    tab.page.wait_for_timeout(1000)  # plotly re-lays out its charts for the new size
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    tab.page.screenshot(path=str(SCREENSHOT_DIR / f"{name}.png"))


@pytest.mark.parametrize("name", list(READY))
def test_screenshots(page, name: str) -> None:
    tab = StreamlitTab(page)
    tab.open(name)
    expect(page.locator(READY[name]).first).to_be_visible(timeout=60_000)
    if name == "sketch":
        tab.draw(page.locator("canvas.upper-canvas"), DIGIT_STROKES[3])
        expect(tab.metric("Prediction")).to_be_visible()
    tab.assert_no_exception()
    full_height_shot(tab, name)
    assert (SCREENSHOT_DIR / f"{name}.png").stat().st_size > 10_000
