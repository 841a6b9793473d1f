"""A reload (or a tab closed and the URL opened again) keeps the session: runs, active model, a running job.

Streamlit starts a new session on every page load; the app parks each session's state under a token in the URL
(`?session=…`) and a new session arriving with the token of a tab that is gone takes it over.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.streamlit_page import StreamlitTab
from tests.e2e.test_e2e_train import (SMALL_MODEL, TRAINING_TIMEOUT_MS, active_model_text, batches_done, choose,
                                      set_epochs, start)

pytestmark = pytest.mark.browser


def test_a_reload_during_training_keeps_the_job_and_the_runs(train: StreamlitTab) -> None:
    page = train.page
    token = re.search(r"[?&]session=(\w+)", page.url).group(1)
    choose(train, "Model", re.compile(rf"^{re.escape(SMALL_MODEL)}\b"))
    set_epochs(train, 1)
    expect(widget_value(train, "Training images")).to_have_value("all 60,000")  # long enough to reload mid-run
    start(train)
    page.wait_for_function(
        """() => /batch [1-9][\\d,]*\\//.test(document.querySelector('[data-testid="stProgress"]')?.innerText ?? '')""",
        timeout=TRAINING_TIMEOUT_MS)
    before = batches_done(train)

    train.reload()  # a new Streamlit session: it takes the job over and shows its progress going on
    assert f"session={token}" in page.url
    expect(page.get_by_test_id("stProgress")).to_be_visible(timeout=30_000)  # the server shares 2 cores with the run
    page.wait_for_function(
        f"""() => {{ const m = /batch ([\\d,]+)\\//.exec(document.querySelector('[data-testid="stProgress"]')
                      ?.innerText ?? ''); return m && parseInt(m[1].replace(/,/g, '')) > {before}; }}""",
        timeout=TRAINING_TIMEOUT_MS)
    expect(widget_value(train, "Model")).to_have_value(re.compile(rf"^{re.escape(SMALL_MODEL)}\b"))  # settings too
    stop_button = page.locator(".st-key-train-stop").get_by_role("button", name="Stop")
    expect(stop_button).to_be_enabled()
    stop_button.click()  # the new tab controls the job
    expect(page.get_by_text(re.compile(r"^Stopped"))).to_be_visible(timeout=TRAINING_TIMEOUT_MS)
    train.wait_idle()
    assert re.search(rf"{SMALL_MODEL}.*run 1 \(stopped early\)", active_model_text(train)), active_model_text(train)

    train.reload()  # and once more, with the run finished: it is still the active model and in the history
    train.assert_no_exception()
    assert re.search(rf"{SMALL_MODEL}.*run 1 \(stopped early\)", active_model_text(train)), active_model_text(train)
    expect(page.get_by_test_id("stDataFrame").filter(has_text="seed-net")).to_have_count(1)


def test_a_second_tab_on_the_same_url_is_a_session_of_its_own(train: StreamlitTab) -> None:
    """A duplicated tab (or a link shared while the first tab is open) must not take the first tab's session."""
    url = train.page.url
    token = re.search(r"[?&]session=(\w+)", url).group(1)
    second = StreamlitTab(train.page.context.new_page())
    try:
        second.load(lambda: second.page.goto(url))
        other = re.search(r"[?&]session=(\w+)", second.page.url)
        assert other is not None and other.group(1) != token
    finally:
        second.page.close()


def widget_value(tab: StreamlitTab, label: str):
    from tests.e2e.test_e2e_train import widget

    return widget(tab, "stSelectbox", label).get_by_role("combobox")
