"""Measure, in a real browser, how long the Dataset explorer takes in a new tab: to show its grid, and from a click on
its controls to the changed grid (the first click of the tab and later ones).

Skipped unless asked for (a measurement, not a check), and it asserts nothing about speed: it prints the figures.

    MNIST_STUDIO_MEASURE=1 MNIST_DATA_ROOT=../shared/mnist python -m pytest tests/e2e -k explorer_timing -s -p no:cacheprovider

Each round is a new tab (a new browser context: a new Streamlit session, like a tab a person opens). It clicks as a
person does, as soon as the control is on screen, without waiting for the rest of the page. A click counts as done
when the grid's caption says the new selection and all 40 of the grid's images have loaded.
"""

from __future__ import annotations

import os
import statistics
import time

import pytest
from playwright.sync_api import Page

from tests.e2e.streamlit_page import StreamlitTab

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(os.environ.get("MNIST_STUDIO_MEASURE") != "1",
                                 reason="set MNIST_STUDIO_MEASURE=1 to measure the explorer's clicks in a new tab")]

ROUNDS = int(os.environ.get("MNIST_STUDIO_MEASURE_ROUNDS", "5"))
GRID_IMAGES = ".st-key-sample-grid [data-testid='stImage'] img"
GRID_READY = """([text, first]) => {
    const captions = [...document.querySelectorAll('[data-testid="stCaptionContainer"]')];
    const images = [...document.querySelectorAll(".st-key-sample-grid [data-testid='stImage'] img")];
    return captions.some(caption => caption.innerText.includes(text)) && images.length === 40
        && images.every(image => image.complete && image.naturalWidth > 0)
        && images[0].closest('[data-testid="stImage"]').innerText.startsWith(first);
}"""


def widget(page: Page, test_id: str, label: str):
    return page.get_by_test_id(test_id).filter(has=page.get_by_test_id("stWidgetLabel").get_by_text(label,
                                                                                                     exact=True))


def timed(page: Page, click, caption: str, first: str) -> float:
    """Seconds from `click()` to the grid showing `caption` with its first image captioned `first`."""
    started = time.perf_counter()
    click()
    page.wait_for_function(GRID_READY, arg=[caption, first], timeout=120_000)
    return time.perf_counter() - started


def pick_digit(page: Page, digit: int):
    box = widget(page, "stSelectbox", "Digit")
    option = page.get_by_role("option", name=str(digit), exact=True)
    for _ in range(5):  # a click while the page is still being drawn can open nothing: click again, as a person would
        box.click()
        try:
            option.wait_for(state="visible", timeout=3_000)
            break
        except Exception:  # noqa: BLE001 (Playwright's timeout)
            continue
    return option.click


def first_index(split, digit: int, page: int = 0) -> str:
    """The caption's start of the grid's first image: "#<index> ·"."""
    return f"#{int((split.labels == digit).nonzero()[page * 40])} ·"


def test_explorer_timing(browser, app_server: str, mnist) -> None:
    from tests.e2e.conftest import browser_tab

    with browser_tab(browser, app_server) as page:  # a first tab: the server loads MNIST and its statistics
        StreamlitTab(page).open("dataset")
    figures: dict[str, list[float]] = {name: [] for name in (
        "grid shown", "1st click (digit 3)", "2nd click (digit 7)", "split → test", "next page")}
    for _ in range(ROUNDS):
        with browser_tab(browser, app_server) as page:
            started = time.perf_counter()
            page.goto("/Dataset_Explorer")
            page.wait_for_function(GRID_READY, arg=["60,000 train images", "#0 ·"], timeout=120_000)
            figures["grid shown"].append(time.perf_counter() - started)
            figures["1st click (digit 3)"].append(timed(page, pick_digit(page, 3), "of digit 3", first_index(mnist.train, 3)))
            figures["2nd click (digit 7)"].append(timed(page, pick_digit(page, 7), "of digit 7", first_index(mnist.train, 7)))
            radio = widget(page, "stRadio", "Split").get_by_text("test", exact=True)
            figures["split → test"].append(timed(page, radio.click, "test images of digit 7", first_index(mnist.test, 7)))
            step_up = page.get_by_test_id("stNumberInput").filter(has_text="Page (of").get_by_test_id(
                "stNumberInputStepUp")
            figures["next page"].append(timed(page, step_up.click, "test images of digit 7",
                                                first_index(mnist.test, 7, page=1)))
            StreamlitTab(page).assert_no_exception()
    print(f"\nDataset explorer in a new tab, {ROUNDS} tabs (median, min–max, all in s):")
    for name, values in figures.items():
        print(f"  {name:22s} {statistics.median(values):5.2f}  {min(values):.2f}–{max(values):.2f}  "
              f"{[round(value, 2) for value in values]}")
    assert all(len(values) == ROUNDS for values in figures.values())
