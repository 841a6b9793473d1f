"""Every page of the real app, opened in headless Chromium: no exception, and its main element is on screen."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.streamlit_page import StreamlitTab

pytestmark = pytest.mark.browser

SAMPLES_PER_PAGE = 40  # the explorer's grid shows 40 digits per page

# Page -> how to find the one element that page exists for.
MAIN_ELEMENTS: dict[str, Callable[[Page], object]] = {
    "home": lambda page: page.get_by_role("heading", name="MNIST Studio"),
    # the sample grid (a keyed container: Streamlit gives it the class st-key-<key>) full of digit images
    "dataset": lambda page: page.locator(".st-key-sample-grid [data-testid='stImage']").nth(SAMPLES_PER_PAGE - 1),
    "train": lambda page: page.get_by_role("button", name="Start training"),
    # a plotly heatmap (Plotly draws heatmaps into a "heatmaplayer" group)
    "evaluate": lambda page: page.locator(".st-key-confusion-matrix .heatmaplayer"),
    "sketch": lambda page: page.locator("canvas.upper-canvas"),
}


@pytest.fixture(scope="module")
def tab(browser, app_server: str) -> Iterator[StreamlitTab]:
    """One tab for all pages: each `goto` is a new Streamlit session, but the browser tab is reused."""
    from tests.e2e.conftest import browser_tab

    with browser_tab(browser, app_server) as page:
        yield StreamlitTab(page)


@pytest.mark.parametrize("name", list(MAIN_ELEMENTS))
def test_page_loads_with_its_main_element(tab: StreamlitTab, name: str) -> None:
    tab.open(name)
    expect(MAIN_ELEMENTS[name](tab.page)).to_be_visible(timeout=60_000)  # charts and images render after the run
    tab.assert_no_exception()
    # The sidebar always names the active model; on a fresh session that is the shipped default.
    assert "default.pt" in tab.sidebar_text()
