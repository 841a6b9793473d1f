"""Narrow and wide windows: the Evaluate page's confusion matrix and cell picker, and the Sketch page's canvas and
result, are wholly on screen and apart at 800, 1000 and 1400 px; no label or button text is cut short ("…") at
800 px (the sidebar takes 300 px of it, leaving the page 468)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Locator, expect

from tests.e2e.streamlit_page import StreamlitTab
from tests.e2e.strokes import DIGIT_STROKES
from tests.e2e.test_e2e_pages import overlapping

pytestmark = pytest.mark.browser

WINDOW_WIDTHS = [800, 1000, 1400]


def boxes(*elements: Locator) -> list[dict]:
    return [element.bounding_box() for element in elements]


@pytest.mark.parametrize("page", WINDOW_WIDTHS, indirect=True)
def test_the_confusion_matrix_and_its_cell_picker_fit_the_window(page) -> None:
    tab = StreamlitTab(page)
    tab.open("evaluate")
    matrix = page.locator(".st-key-confusion-matrix")
    expect(matrix.locator(".heatmaplayer")).to_be_visible(timeout=60_000)  # plotly.js loads lazily
    tab.assert_no_exception()
    cell_panel = page.locator(".st-key-cell-panel")
    tab.assert_fully_visible(page.locator(".st-key-matrix-panel"), "the confusion matrix's panel")
    tab.assert_fully_visible(matrix.locator(".main-svg").first, "the confusion matrix")
    tab.assert_fully_visible(page.get_by_text("Row-normalised (share of each true digit)"), "the toggle's label")
    tab.assert_fully_visible(cell_panel, "the cell picker's panel")
    for number, selectbox in enumerate(cell_panel.locator('[data-testid="stSelectbox"]').all()):
        tab.assert_fully_visible(selectbox, f"cell picker select {number + 1}")
    images = page.locator(".st-key-cell-images [data-testid='stImage'] img")
    expect(images.first).to_be_visible()
    for number in range(images.count()):
        tab.assert_fully_visible(images.nth(number), f"cell image {number + 1}")
    assert not overlapping(boxes(page.locator(".st-key-matrix-panel"), cell_panel)), "the panels overlap"
    assert not overlapping([images.nth(i).bounding_box() for i in range(images.count())]), "cell images overlap"


@pytest.mark.parametrize("page", [1280], indirect=True)
def test_the_cell_picker_is_beside_the_matrix_in_a_1280_px_window(page) -> None:
    """A laptop's 1280-px window (820 px of page): the cell's panel went below the matrix, so its images appeared
    530 px under the click that picked them, out of sight. Beside it with 15 px to spare, for a scroll bar."""
    tab = StreamlitTab(page)
    tab.open("evaluate")
    expect(page.locator(".st-key-confusion-matrix .heatmaplayer")).to_be_visible(timeout=60_000)
    matrix_panel, cell_panel = boxes(page.locator(".st-key-matrix-panel"), page.locator(".st-key-cell-panel"))
    assert cell_panel["y"] == matrix_panel["y"] and cell_panel["x"] >= matrix_panel["x"] + matrix_panel["width"], (
        matrix_panel, cell_panel)
    main = page.locator('[data-testid="stMainBlockContainer"]').bounding_box()
    assert cell_panel["x"] + cell_panel["width"] <= main["x"] + main["width"] - 80 - 15, "no room left for a scroll bar"


@pytest.mark.parametrize("page", WINDOW_WIDTHS, indirect=True)
def test_the_sketch_canvas_and_its_reading_fit_the_window(page) -> None:
    tab = StreamlitTab(page)
    tab.open("sketch")
    canvas = page.locator("canvas.upper-canvas")
    expect(canvas).to_be_visible(timeout=60_000)
    box = canvas.bounding_box()
    assert round(box["width"]) == 280 and round(box["height"]) == 280, f"the canvas is squeezed: {box}"
    tab.draw(canvas, DIGIT_STROKES[3])
    expect(tab.metric("Prediction")).to_be_visible()
    tab.assert_no_exception()
    # The prediction is beside the canvas at every width, so it is in sight while drawing: in an 800- or 1000-px
    # window it was below the canvas, its top 800 px down the page.
    prediction = tab.metric("Prediction").bounding_box()
    assert prediction["x"] >= box["x"] + box["width"], f"the prediction is not beside the canvas: {prediction}"
    assert prediction["y"] + prediction["height"] <= box["y"] + box["height"], (
        f"the prediction ends below the canvas: {prediction}, canvas {box}")
    chart = page.locator(".st-key-probabilities .main-svg").first
    expect(chart).to_be_visible(timeout=60_000)
    drawing, reading, details = (page.locator(f".st-key-sketch-{name}-panel") for name in ("drawing", "reading",
                                                                                            "details"))
    tab.assert_fully_visible(drawing, "the drawing panel")
    tab.assert_fully_visible(canvas, "the canvas")
    tab.assert_fully_visible(reading, "the reading panel")
    tab.assert_fully_visible(details, "the details panel")
    tab.assert_fully_visible(tab.metric("Prediction"), "the prediction")
    tab.assert_fully_visible(reading.locator("[data-testid='stImage'] img"), "the model's input")
    tab.assert_fully_visible(chart, "the probability chart")
    assert not overlapping(boxes(drawing, reading, details)), "the canvas and the result overlap"


@pytest.mark.parametrize("page", [800], indirect=True)
@pytest.mark.parametrize("name", ["train", "dataset", "evaluate"])
def test_no_label_is_cut_short_in_a_narrow_window(page, name: str) -> None:
    tab = StreamlitTab(page)
    tab.open(name)
    page.wait_for_timeout(1000)  # images and charts settle after the run; they move the labels below them
    tab.assert_no_exception()
    assert tab.clipped_texts() == []
    if name == "train":
        tab.assert_fully_visible(page.get_by_text("Augment training images", exact=True), "the augmentation label")
    if name == "dataset":
        redraw = page.get_by_role("button", name="Redraw")
        tab.assert_fully_visible(redraw, "the Redraw button")


@pytest.mark.parametrize("page", [800], indirect=True)
def test_the_home_page_keeps_headings_and_the_data_folder_whole_in_a_narrow_window(page) -> None:
    """Three st.columns in 468 px broke "Active model" over two lines and the data folder mid-word ("…/MNIST/r aw")."""
    tab = StreamlitTab(page)
    tab.open("home")
    tab.assert_no_exception()
    main = page.get_by_test_id("stMainBlockContainer")  # the sidebar has headings of the same names
    heights = {name: main.get_by_role("heading", name=name, exact=True).bounding_box()["height"]
               for name in ("Device", "Dataset", "Active model")}
    assert heights["Active model"] < 1.5 * heights["Device"], heights
    folder = main.locator("[data-testid='stCaptionContainer']", has_text="MNIST found in")
    lines_of_folder = folder.evaluate("""element => {
        const text = element.querySelector('p') || element;
        const node = [...text.childNodes].find(child => child.textContent.includes('/MNIST/raw'));
        const range = document.createRange();
        range.setStart(node, node.textContent.indexOf('found in ') + 'found in '.length);  // the folder only
        range.setEnd(node, node.textContent.indexOf('/MNIST/raw') + '/MNIST/raw'.length);
        return new Set([...range.getClientRects()].map(rect => Math.round(rect.top))).size;
    }""")
    assert lines_of_folder == 1, "the data folder is broken over lines"


@pytest.mark.parametrize("page", [800], indirect=True)
def test_the_dataset_charts_keep_their_labels_whole_in_a_narrow_window(page) -> None:
    """In two st.columns of a 468-px page the digits under the bars ran into each other and the histogram's title was
    cut off at its chart's edge."""
    tab = StreamlitTab(page)
    tab.open("dataset")
    digits = page.locator(".st-key-class-distribution .xtick text")
    expect(digits.nth(9)).to_be_visible(timeout=60_000)  # plotly.js loads lazily
    assert not overlapping(boxes(*digits.all())), "the digits under the bars overlap"
    for key in ("class-distribution", "pixel-histogram"):
        chart, title = (page.locator(f".st-key-{key} {part}").first for part in (".main-svg", ".gtitle"))
        chart_box, title_box = chart.bounding_box(), title.bounding_box()
        assert title_box["x"] + title_box["width"] <= chart_box["x"] + chart_box["width"], f"{key}: title cut short"


def test_every_digit_on_the_dataset_page_keeps_sharp_pixels(page) -> None:
    """The galleries sent 112-px images (28 × 4) for 72- and 84-px places: Streamlit shrank each one bilinearly, and
    every sample, mean image and augmentation draw showed its pixels smeared into a blur (only the look-up's 224 px in
    224 stayed sharp)."""
    tab = StreamlitTab(page)
    tab.open("dataset")
    images = page.locator("[data-testid='stMain'] [data-testid='stImage'] img")
    expect(images.nth(64)).to_be_visible()  # 40 samples, 10 means, 9 draws, 5 scribbles, the look-up
    blurred = tab.blurred_digit_images(images)
    assert images.count() >= 65 and blurred == [], blurred[:5]


@pytest.mark.parametrize("page", WINDOW_WIDTHS, indirect=True)
def test_the_home_page_cards_never_leave_one_alone_on_a_row(page) -> None:
    """In a 1400-px window the four page cards wrapped as three and one, Sketch alone on its row (and at 800 px one a
    row); they are one row in a wide window and two of two below that."""
    tab = StreamlitTab(page)
    tab.open("home")
    links = page.locator(".st-key-page-cards [data-testid='stPageLink']")
    expect(links.nth(3)).to_be_visible()
    tops = [round(box["y"]) for box in boxes(*links.all())]
    per_row = sorted(tops.count(top) for top in set(tops))
    expected = [4] if page.viewport_size["width"] >= 1400 else [2, 2]
    assert per_row == expected, f"cards per row: {per_row} (tops {tops})"
    for number in range(4):
        tab.assert_fully_visible(links.nth(number), f"page link {number + 1}")
