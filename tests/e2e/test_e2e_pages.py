"""Every page of the real app, opened in headless Chromium: no exception, and its main element is on screen."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.streamlit_page import StreamlitTab

pytestmark = pytest.mark.browser

SAMPLES_PER_PAGE = 40  # the explorer's grid shows 40 digits per page
GALLERY_SIZE = 24  # Evaluate's galleries of mistakes and correct predictions

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


NARROW = {"width": 800, "height": 1000}  # a half-screen window: the sidebar stays open, columns do not stack yet


def overlapping(boxes: list[dict]) -> list[tuple[int, int]]:
    """Pairs of boxes (by index) whose areas intersect."""
    return [(i, j) for i, a in enumerate(boxes) for j, b in enumerate(boxes[:i])
            if min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"]) > 1
            and min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"]) > 1]


def test_a_narrow_window_keeps_gallery_images_apart_and_on_the_page(page) -> None:
    page.set_viewport_size(NARROW)
    tab = StreamlitTab(page)
    tab.open("dataset")
    images = page.locator(".st-key-sample-grid [data-testid='stImage'] img")
    expect(images.nth(SAMPLES_PER_PAGE - 1)).to_be_visible(timeout=60_000)
    boxes = [images.nth(i).bounding_box() for i in range(SAMPLES_PER_PAGE)]
    grid = page.locator(".st-key-sample-grid").bounding_box()
    assert not overlapping(boxes), "digit images drawn over each other"
    assert max(box["x"] + box["width"] for box in boxes) <= grid["x"] + grid["width"] + 1, "images run off the page"


def test_a_narrow_window_draws_the_confusion_matrix_with_only_its_ten_rows(page) -> None:
    page.set_viewport_size(NARROW)
    tab = StreamlitTab(page)
    tab.open("evaluate")
    expect(MAIN_ELEMENTS["evaluate"](page)).to_be_visible(timeout=60_000)
    rows = [text.text_content() for text in page.locator(".st-key-confusion-matrix .ytick text").all()]
    assert sorted(rows, key=int) == [str(digit) for digit in range(10)], rows


def test_a_narrow_window_wraps_a_gallery_into_full_rows(page) -> None:
    """Each row of eight mistakes wrapped on its own in a 468-px page, as 5 + 3, 5 + 3…: holes in the grid."""
    page.set_viewport_size(NARROW)
    tab = StreamlitTab(page)
    tab.open("evaluate")
    images = page.get_by_role("tabpanel").first.locator("[data-testid='stImage'] img")
    expect(images.nth(GALLERY_SIZE - 1)).to_be_visible(timeout=60_000)
    tops = Counter(round(images.nth(i).bounding_box()["y"]) for i in range(GALLERY_SIZE))
    per_row = [tops[top] for top in sorted(tops)]
    assert len(per_row) > 1 and len(set(per_row[:-1])) == 1 and per_row[-1] <= per_row[0], per_row


def test_back_goes_to_the_page_before_in_one_press(page) -> None:
    """Each page visited through the sidebar left two history entries (the page, then the page with `?session=…` put
    back by the app): the first Back only dropped the token from the URL, and the screen stayed the same."""
    tab = StreamlitTab(page)
    tab.open("home")
    visited = [("Train", "/Train"), ("Sketch", "/Sketch")]
    for title, path in visited:
        sent_before = tab.frames_sent
        page.locator('[data-testid="stSidebar"]').get_by_role("link", name=title).click()
        tab.wait_idle(sent_before=sent_before)
        # As a person would, the next click comes once the page is there, its URL included (in one CI run of ten
        # a click seemingly landed before it was, and the first Back went two pages back, to Home).
        expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()
        expect(page).to_have_url(re.compile(re.escape(path) + r"\?session="))
    page.go_back()
    expect(page.get_by_role("heading", name="Train", exact=True)).to_be_visible()
    assert "/Train?session=" in page.url, page.url
    page.go_back()
    expect(page.get_by_role("heading", name="MNIST Studio")).to_be_visible()
    tab.wait_idle()
    tab.assert_no_exception()
