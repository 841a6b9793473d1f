"""Evaluate page in a real browser: the confusion matrix renders and clicking one of its cells shows that cell's
test images (the page's plotly `on_select`)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, expect

from tests.e2e.streamlit_page import StreamlitTab

pytestmark = pytest.mark.browser

HEATMAP = ".st-key-confusion-matrix"  # the plotly chart keyed "confusion-matrix"


def cell_centre(tab: StreamlitTab, true_digit: int, predicted_digit: int) -> tuple[float, float]:
    """Screen position of a cell: Plotly's drag layer covers the plot area; columns = predicted 0..9 left to
    right, rows = true 0..9 top to bottom (the page reverses the y axis, as confusion matrices are read)."""
    area = tab.page.locator(f"{HEATMAP} .nsewdrag").first.bounding_box()
    assert area is not None, "the confusion matrix has no plot area"
    return (area["x"] + (predicted_digit + 0.5) / 10 * area["width"],
            area["y"] + (true_digit + 0.5) / 10 * area["height"])


def test_evaluate_confusion_matrix_cell_shows_its_images(page) -> None:
    tab = StreamlitTab(page)
    tab.open("evaluate")
    expect(page.locator(f"{HEATMAP} .heatmaplayer")).to_be_visible(timeout=60_000)  # plotly.js loads lazily
    tab.assert_no_exception()
    # Ten rows of ten numbers: the matrix drew its counts, and they add up to the 10,000 test images.
    counts = [int(text.replace(",", "")) for text in page.locator(f"{HEATMAP} .heatmaplayer text").all_text_contents()]
    assert len(counts) == 100 and sum(counts) == 10_000, counts

    true_digit = predicted_digit = 3  # a diagonal cell: always hundreds of images
    sent_before = tab.frames_sent
    page.mouse.click(*cell_centre(tab, true_digit, predicted_digit))
    tab.wait_idle(sent_before=sent_before)
    tab.assert_no_exception()

    summary = page.get_by_text(re.compile(rf"([\d,]+) test images of a {true_digit} read as {predicted_digit}"))
    expect(summary).to_be_visible()
    shown = int(re.search(r"[\d,]+", summary.inner_text()).group().replace(",", ""))
    assert 500 < shown < 1500, summary.inner_text()
    images = page.locator(".st-key-cell-images [data-testid='stImage']")
    expect(images.first).to_be_visible()
    assert images.count() >= 4
    captions = page.locator(".st-key-cell-images [data-testid='stImageCaption']").all_inner_texts()
    assert all(re.match(r"#\d+", caption) for caption in captions), captions


def test_a_cell_clicked_again_after_another_was_picked_shows_its_images(page) -> None:
    """The browser sends a click on the heatmap only when it differs from the last one it sent for that chart: after a
    click on a cell, the first cell picked again in the selectboxes brought back the first chart, and a click on the
    same cell did nothing."""
    tab = StreamlitTab(page)
    tab.open("evaluate")
    expect(page.locator(f"{HEATMAP} .heatmaplayer")).to_be_visible(timeout=60_000)
    picker = {label: page.get_by_test_id("stSelectbox").filter(
        has=page.get_by_test_id("stWidgetLabel").get_by_text(label, exact=True)) for label in ("True digit",
                                                                                              "Predicted digit")}
    first = tuple(picker[label].get_by_role("combobox").input_value() for label in picker)  # the commonest mistake
    clicked = (3, 3)  # a diagonal cell: never the commonest mistake

    def summary(true_digit, predicted_digit) -> Locator:
        return page.get_by_text(re.compile(rf"test images? of an? {true_digit} read as {predicted_digit}\b"))

    for _ in range(2):  # the second time round is the click that did nothing
        sent_before = tab.frames_sent
        page.mouse.click(*cell_centre(tab, *clicked))
        tab.wait_idle(sent_before=sent_before)
        expect(summary(*clicked)).to_be_visible()
        for label, digit in zip(picker, first):  # back to the first cell through the page's chooser
            if picker[label].get_by_role("combobox").input_value() == digit:
                continue
            sent_before = tab.frames_sent
            picker[label].click()
            page.get_by_role("option", name=digit, exact=True).click()
            tab.wait_idle(sent_before=sent_before)
        expect(summary(*first)).to_be_visible()
    tab.assert_no_exception()


def test_back_on_upload_a_bad_file_s_error_does_not_return_under_an_empty_uploader(page, tmp_path) -> None:
    """Upload a bad file, pick another model, come back to Upload: the uploader showed no file, but the browser still
    sent the old one and its error came back."""
    tab = StreamlitTab(page)
    tab.open("evaluate")
    source = page.get_by_test_id("stRadio").filter(has_text="Model to evaluate")

    def choose(option: str) -> None:
        sent_before = tab.frames_sent
        source.get_by_text(option, exact=True).click()
        tab.wait_idle(sent_before=sent_before)

    choose("Upload")
    bad = tmp_path / "notes.pt"
    bad.write_bytes(b"my notes, not a model")
    sent_before = tab.frames_sent
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(bad))
    tab.wait_idle(sent_before=sent_before)
    expect(page.get_by_test_id("stAlert").filter(has_text="notes.pt")).to_have_count(1)
    # (Streamlit 1.67 names a file's chip stFileChip: the check below for none looked for a name that no longer exists)
    expect(page.get_by_test_id("stFileChip").filter(has_text="notes.pt")).to_have_count(1)

    choose("Active model")
    choose("Upload")
    tab.assert_no_exception()
    expect(page.get_by_test_id("stFileChip")).to_have_count(0)  # the box is empty…
    expect(page.get_by_test_id("stAlert").filter(has_text="notes.pt")).to_have_count(0)  # …and so is the page
