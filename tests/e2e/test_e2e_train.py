"""Train page in a real browser: a quick run to the end, then a longer run stopped by the user.

Both runs must show progress and curves, and each must become the session's active model (the sidebar says so).
A small model (seed-net) on a 1,000-image subset keeps the first run to seconds on a 2-core CPU.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.conftest import REPO_ROOT
from tests.e2e.streamlit_page import StreamlitTab

pytestmark = pytest.mark.browser

SMALL_MODEL = "seed-net"
TRAINING_TIMEOUT_MS = 120_000  # generous: two other processes may share the 2 CPU cores


def widget(tab: StreamlitTab, test_id: str, label: str) -> Locator:
    """The widget of kind `test_id` (stSelectbox, stSlider…) whose label is exactly `label`."""
    return tab.page.get_by_test_id(test_id).filter(
        has=tab.page.get_by_test_id("stWidgetLabel").get_by_text(label, exact=True))


def choose(tab: StreamlitTab, label: str, option: str | re.Pattern) -> None:
    """Pick `option` in the selectbox labelled `label`, as a user does: open it, click the option."""
    sent_before = tab.frames_sent
    listed_option = tab.page.get_by_role("option", name=option).first
    for _ in range(3):
        widget(tab, "stSelectbox", label).click()
        try:  # a click while a rerun redraws the box (just after a run ends, say) opens nothing: click again
            listed_option.wait_for(state="visible", timeout=5_000)
            break
        except PlaywrightTimeoutError:
            continue
    listed_option.click()
    tab.wait_idle(sent_before=sent_before)
    expect(widget(tab, "stSelectbox", label).get_by_role("combobox")).to_have_value(option)


def set_epochs(tab: StreamlitTab, epochs: float) -> None:
    """Arrow keys on the Epochs select-slider until it reads `epochs`, one key per rerun (a key pressed while the
    script reruns can be lost)."""
    slider = widget(tab, "stSlider", "Epochs")
    value = slider.get_by_test_id("stSliderThumbValue")
    for _ in range(60):
        current = float(value.inner_text())
        if current == epochs:
            return
        sent_before = tab.frames_sent
        slider.get_by_role("slider").press("ArrowLeft" if current > epochs else "ArrowRight")
        tab.wait_idle(sent_before=sent_before)
    raise AssertionError(f"the Epochs slider did not reach {epochs:g} (it shows {value.inner_text()})")


def active_model_text(tab: StreamlitTab) -> str:
    """The sidebar's "Active model" section (its name and where it came from)."""
    sidebar = tab.sidebar_text()
    assert "Active model" in sidebar, sidebar
    return sidebar.split("Active model", 1)[1].strip()


def start(tab: StreamlitTab) -> None:
    start_button = tab.page.locator(".st-key-train-start").get_by_role("button", name="Start training")
    expect(start_button).to_be_enabled()
    start_button.click()
    # the first Start in a server loads MNIST from disk before the run begins
    expect(tab.page.get_by_test_id("stProgress")).to_be_visible(timeout=TRAINING_TIMEOUT_MS)


def batches_done(tab: StreamlitTab) -> int:
    text = tab.page.get_by_test_id("stProgress").inner_text()
    found = re.search(r"batch ([\d,]+)/", text)
    return int(found.group(1).replace(",", "")) if found else 0


def expect_curves(tab: StreamlitTab) -> None:
    """The per-batch loss and learning-rate charts have drawn at least one line."""
    for key in ("batch-loss", "learning-rate"):
        expect(tab.page.locator(f".st-key-{key} .scatterlayer .trace").first).to_be_attached()


def test_train_a_quick_run_then_stop_a_second_one(train: StreamlitTab) -> None:
    page = train.page
    assert "default.pt" in active_model_text(train)

    # Run 1: small model, one epoch on the first 1,000 images, to the end.
    choose(train, "Model", re.compile(rf"^{re.escape(SMALL_MODEL)}\b"))
    set_epochs(train, 1)
    choose(train, "Training images", "first 1,000 (quick run)")
    start(train)
    expect(page.get_by_text(re.compile(r"Finished in .* test accuracy"))).to_be_visible(timeout=TRAINING_TIMEOUT_MS)
    train.wait_idle()
    train.assert_no_exception()
    expect_curves(train)
    expect(page.locator(".st-key-epoch-curves .scatterlayer .trace").first).to_be_attached()
    assert re.search(rf"{SMALL_MODEL}.*run 1", active_model_text(train)), active_model_text(train)

    # Run 2: ten epochs of all 60,000 images, stopped as soon as a few batches are done. One epoch is not enough:
    # on an idle 2-core CPU seed-net finishes it in about 4 s, before the test's Stop click lands.
    choose(train, "Training images", "all 60,000")
    set_epochs(train, 10)
    start(train)
    # The page's Stop (keyed "train-stop"), not the Stop of Streamlit's own "running" status widget.
    stop_button = page.locator(".st-key-train-stop").get_by_role("button", name="Stop")
    expect(stop_button).to_be_enabled(timeout=TRAINING_TIMEOUT_MS)
    page.wait_for_function(  # real progress first: a run stopped before its first batch has no model to keep
        """() => /batch [1-9][\\d,]*\\//.test(document.querySelector('[data-testid="stProgress"]')?.innerText ?? '')""",
        timeout=TRAINING_TIMEOUT_MS)
    expect_curves(train)
    speed = train.metric("Images/s").locator('[data-testid="stMetricValue"]').inner_text()
    assert re.fullmatch(r"[1-9][\d,]*|measuring…", speed), f"images/s shows {speed!r}"  # never 0 or nan
    stop_button.click()
    # One sentence with the real numbers ("(1 epoch)" when the Stop landed during the first epoch's test pass).
    expect(page.get_by_text(re.compile(r"^Stopped after [1-9][\d,]* of 4,690 batches \(\d[\d.]* epochs?\); the model "
                                       r"trained so far is kept\. It is now the active model\.$"))).to_be_visible(
        timeout=TRAINING_TIMEOUT_MS)
    train.wait_idle()
    train.assert_no_exception()
    assert batches_done(train) < 4690, "the run was not stopped: it finished all 4,690 batches"
    assert re.search(rf"{SMALL_MODEL}.*run 2 \(stopped early\)", active_model_text(train)), active_model_text(train)
    expect(page.locator(".st-key-train-start").get_by_role("button", name="Start training")).to_be_enabled()


def finish_a_quick_run(tab: StreamlitTab) -> None:
    """The small model for one epoch on the first 1,000 images: a run to save within seconds."""
    choose(tab, "Model", re.compile(rf"^{re.escape(SMALL_MODEL)}\b"))
    set_epochs(tab, 1)
    choose(tab, "Training images", "first 1,000 (quick run)")
    start(tab)
    expect(tab.page.get_by_text(re.compile(r"Finished in .* test accuracy"))).to_be_visible(
        timeout=TRAINING_TIMEOUT_MS)
    tab.wait_idle()


@pytest.mark.parametrize("page", [800], indirect=True)
def test_the_save_row_is_not_cut_short_in_a_narrow_window(train: StreamlitTab) -> None:
    """In st.columns an 800-px window cut the Download button to "Downloa…"; the row now wraps."""
    finish_a_quick_run(train)
    save_row = train.page.locator(".st-key-save-row")
    for name in ("Save", "Download .pt"):
        train.assert_fully_visible(save_row.get_by_role("button", name=name), f"the {name} button")
    train.assert_fully_visible(save_row.get_by_test_id("stTextInput"), "the file name")
    assert train.clipped_texts() == []


def test_a_pasted_name_too_long_is_refused_not_dropped(train: StreamlitTab) -> None:
    """With max_chars=64 Streamlit dropped a longer paste whole: the box kept the suggested name and Save wrote the
    run under it, not under anything the user had typed."""
    finish_a_quick_run(train)
    save_row = train.page.locator(".st-key-save-row")
    name_box = save_row.get_by_role("textbox")
    suggested = name_box.input_value()
    long_name = "my-best-run-" + "x" * 68  # 80 characters
    name_box.click()
    name_box.press("Control+A")
    train.page.keyboard.insert_text(long_name)  # what a paste does
    assert name_box.input_value() == long_name, "the pasted name was dropped"
    sent_before = train.frames_sent
    name_box.press("Enter")
    train.wait_idle(sent_before=sent_before)
    sent_before = train.frames_sent
    save_row.get_by_role("button", name="Save").click()
    train.wait_idle(sent_before=sent_before)
    train.assert_no_exception()
    expect(train.page.get_by_test_id("stAlert").filter(has_text=f"'{long_name}' is not a usable name: use 1–64")
           ).to_be_visible()
    assert not (REPO_ROOT / "checkpoints" / f"{suggested}.pt").exists(), "the run was saved under the suggested name"


def go_to(tab: StreamlitTab, title: str) -> None:
    """Another page through the sidebar's link: the same session, as a user goes."""
    sent_before = tab.frames_sent
    tab.page.locator('[data-testid="stSidebar"]').get_by_role("link", name=title).click()
    tab.wait_idle(sent_before=sent_before)


def test_settings_and_the_cell_pick_stay_across_pages_while_a_run_trains(train: StreamlitTab) -> None:
    """While a run trained (its progress polled by a fragment), a visit to another page dropped every setting of the
    page left: back on Train they read the default preset (the next Start would train it), and the second visit to
    Evaluate ended in a KeyError traceback (its cell picker was gone)."""
    page = train.page
    choose(train, "Model", re.compile(rf"^{re.escape(SMALL_MODEL)}\b"))
    set_epochs(train, 10)
    choose(train, "Training images", "first 5,000 (quick run)")
    start(train)
    expect(page.locator(".st-key-train-stop").get_by_role("button", name="Stop")).to_be_enabled(
        timeout=TRAINING_TIMEOUT_MS)
    for _ in range(2):
        go_to(train, "Evaluate")
        train.assert_no_exception()
        expect(page.get_by_text(re.compile(r"test images? of an? \d read as \d"))).to_be_visible()
        go_to(train, "Train")
        train.assert_no_exception()
        expect(widget(train, "stSelectbox", "Model").get_by_role("combobox")).to_have_value(
            re.compile(rf"^{re.escape(SMALL_MODEL)}\b"))
        expect(widget(train, "stSelectbox", "Training images").get_by_role("combobox")).to_have_value(
            "first 5,000 (quick run)")
        expect(widget(train, "stSelectbox", "Preset").get_by_role("combobox")).to_have_value("custom")
        expect(widget(train, "stSlider", "Epochs").get_by_test_id("stSliderThumbValue")).to_have_text("10")
    stop_button = page.locator(".st-key-train-stop").get_by_role("button", name="Stop")
    if stop_button.is_enabled():
        stop_button.click()
    expect(page.locator(".st-key-train-start").get_by_role("button", name="Start training")).to_be_enabled(
        timeout=TRAINING_TIMEOUT_MS)
