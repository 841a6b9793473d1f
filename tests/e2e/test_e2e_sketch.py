"""Sketch page in a real browser: draw digits with the mouse and read the model's `Prediction` metric.

The strokes come from tests/e2e/strokes.py (checked offline against the same model by
test_e2e_strokes_offline.py), so a failure here points at the page or the canvas, not at the drawings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Locator, expect

from tests.e2e.streamlit_page import StreamlitTab
from tests.e2e.strokes import DIGIT_STROKES, SCRIBBLE

pytestmark = pytest.mark.browser

CANVAS = "canvas.upper-canvas"  # fabric.js's event layer of streamlit-drawable-canvas: mouse events go here
LOW_CONFIDENCE_NOTE = re.compile(r"does not look (much )?like a digit|low confidence", re.IGNORECASE)
REQUIRED_CORRECT = 9  # of 10 (issue 4)


@pytest.fixture(scope="module")
def sketch(browser, app_server: str) -> Iterator[StreamlitTab]:
    """One Sketch tab shared by this module's tests: the page is cleared between drawings, not reloaded."""
    from tests.e2e.conftest import browser_tab

    with browser_tab(browser, app_server) as page:
        tab = StreamlitTab(page)
        tab.open("sketch")
        yield tab


def canvas_of(tab: StreamlitTab) -> Locator:
    canvas = tab.page.locator(CANVAS)
    expect(canvas).to_have_count(1)
    box = canvas.bounding_box()
    assert box is not None and round(box["width"]) == 280 and round(box["height"]) == 280, box
    return canvas


def predicted_digit(tab: StreamlitTab) -> int | None:
    """The digit shown by the `Prediction` metric, or None when the page shows no prediction."""
    metric = tab.metric("Prediction")
    if metric.count() == 0:
        return None
    value = metric.locator('[data-testid="stMetricValue"]').inner_text().strip()
    found = re.fullmatch(r"\D*(\d)\D*", value)  # tolerate decoration such as "7" or "Digit 7"
    return int(found.group(1)) if found else None


def clear(tab: StreamlitTab) -> None:
    """Empty the canvas with the page's own clear button (a reload would also work, but is slower)."""
    button = tab.page.get_by_role("button", name=re.compile(r"clear", re.IGNORECASE))
    expect(button.first).to_be_visible()
    # Clear mounts a new canvas; tag the old one so the next stroke cannot land on it while it is torn down.
    tab.page.locator(CANVAS).evaluate_all("canvases => canvases.forEach(c => c.dataset.e2eOld = '1')")
    sent_before = tab.frames_sent
    button.first.click()
    # Clearing takes more than one rerun (the button's, then the new empty canvas's), so wait for the outcome.
    expect(tab.metric("Prediction"), "the prediction is still shown after clearing the canvas").to_have_count(
        0, timeout=20_000)
    tab.wait_idle(sent_before=sent_before)
    expect(tab.page.locator(f"{CANVAS}:not([data-e2e-old])")).to_have_count(1)
    expect(canvas_of(tab)).to_be_visible()


def test_sketch_empty_canvas_shows_no_prediction(sketch: StreamlitTab) -> None:
    canvas_of(sketch)
    sketch.assert_no_exception()
    assert predicted_digit(sketch) is None


def test_sketch_reads_digits_drawn_with_the_mouse(sketch: StreamlitTab) -> None:
    readings: dict[int, int | None] = {}
    for digit, strokes in DIGIT_STROKES.items():
        clear(sketch)
        sketch.draw(canvas_of(sketch), strokes)
        sketch.assert_no_exception()
        readings[digit] = predicted_digit(sketch)
    correct = sum(read == digit for digit, read in readings.items())
    print(f"browser sketch: {correct}/10 read correctly; drawn -> read: {readings}")  # shown with -rA / -s
    assert correct >= REQUIRED_CORRECT, f"only {correct}/10 read correctly; drawn -> read: {readings}"


def test_sketch_scribble_gets_the_low_confidence_note(sketch: StreamlitTab) -> None:
    clear(sketch)
    expect(sketch.page.get_by_text(LOW_CONFIDENCE_NOTE)).to_have_count(0)
    sketch.draw(canvas_of(sketch), SCRIBBLE)
    sketch.assert_no_exception()
    expect(sketch.page.get_by_text(LOW_CONFIDENCE_NOTE).first).to_be_visible()


def test_sketch_a_canvas_painted_all_over_is_not_called_empty(sketch: StreamlitTab) -> None:
    """One serpentine stroke of the default 20-px brush, rows 9 px apart, covers the whole canvas: that is no digit,
    but the page must not say the canvas is empty."""
    clear(sketch)
    serpentine = [(x, y) for row, y in enumerate(range(2, 280, 9)) for x in ((2, 278) if row % 2 == 0 else (278, 2))]
    sketch.draw(canvas_of(sketch), [serpentine])
    sketch.assert_no_exception()
    assert predicted_digit(sketch) is None
    expect(sketch.page.get_by_text("The strokes cover the whole canvas", exact=False)).to_be_visible()
    expect(sketch.page.get_by_text("The canvas is empty", exact=False)).to_have_count(0)
