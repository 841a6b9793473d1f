"""The Dataset explorer in a real browser: what its sections' own reruns (fragments) must not lose."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.streamlit_page import StreamlitTab
from tests.e2e.test_e2e_train import choose, widget

pytestmark = pytest.mark.browser


def test_a_reload_keeps_the_grid_and_look_up_chosen_in_the_sections(page) -> None:
    """A click in a section reruns that section only, and parked nothing: a reload right after it went back to the
    digit, page and index from before."""
    tab = StreamlitTab(page)
    tab.open("dataset")
    choose(tab, "Digit", "3")
    sent_before = tab.frames_sent
    widget(tab, "stNumberInput", "Page (of 154)").get_by_test_id("stNumberInputStepUp").click()
    tab.wait_idle(sent_before=sent_before)
    index = widget(tab, "stNumberInput", "Index (0–9,999)").locator("input")
    sent_before = tab.frames_sent
    index.fill("1234")
    index.press("Enter")
    tab.wait_idle(sent_before=sent_before)
    expect(page.get_by_text("test #1234 · ")).to_be_visible()
    tab.reload()
    tab.assert_no_exception()
    expect(page.get_by_text("6,131 train images of digit 3 · showing 40 from #")).to_be_visible()
    expect(widget(tab, "stNumberInput", "Page (of 154)").locator("input")).to_have_value("2")
    expect(page.get_by_text("test #1234 · ")).to_be_visible()


def test_a_choice_made_in_a_section_survives_a_visit_to_another_page(page) -> None:
    """Streamlit drops the values of widgets a run does not draw; the kept settings must include those changed by a
    section's own rerun, which runs no `page_setup`."""
    tab = StreamlitTab(page)
    tab.open("dataset")
    choose(tab, "Digit", "3")
    sent_before = tab.frames_sent
    page.get_by_role("link", name="Train").click()
    tab.wait_idle(sent_before=sent_before)
    expect(page.get_by_role("button", name="Start training")).to_be_visible()
    sent_before = tab.frames_sent
    page.get_by_role("link", name="Dataset explorer").click()
    tab.wait_idle(sent_before=sent_before)
    tab.assert_no_exception()
    expect(page.get_by_text("6,131 train images of digit 3 · showing 40 from #")).to_be_visible()


def test_typed_numbers_are_read_as_the_browser_shows_them_and_an_empty_box_is_said_empty(page) -> None:
    """The boxes held whole numbers, which Streamlit's browser code reads with parseInt: "1e3" showed test #1 and
    "2.7" page 2, and an emptied Page box sent its default: "Page 0 is outside 1–1,500"."""
    tab = StreamlitTab(page)
    tab.open("dataset")

    def type_in(label: str, text: str) -> None:
        box = widget(tab, "stNumberInput", label).locator("input")
        sent_before = tab.frames_sent
        box.fill(text)
        box.press("Enter")
        tab.wait_idle(sent_before=sent_before)

    type_in("Index (0–9,999)", "1e3")
    expect(page.get_by_text("test #1000 · ")).to_be_visible()
    type_in("Page (of 1,500)", "2.7")
    expect(page.get_by_text("Page 2.7 is not a whole number: type one from 1 to 1,500.")).to_be_visible()
    type_in("Page (of 1,500)", "")
    expect(page.get_by_text("The page box is empty: type a number from 1 to 1,500.")).to_be_visible()
    expect(page.get_by_text("Page 0 is outside")).to_have_count(0)
    tab.assert_no_exception()
