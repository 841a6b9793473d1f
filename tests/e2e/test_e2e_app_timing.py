"""Measure, in a real browser, what training through the Train page costs compared with the CLI.

Skipped unless asked for (it is a measurement that takes a few minutes, not a check), and it asserts nothing about
speed: it prints the figures that the README quotes.

    MNIST_STUDIO_MEASURE=1 MNIST_DATA_ROOT=../shared/mnist python -m pytest tests/e2e -k app_timing -s
    MNIST_STUDIO_MEASURE=1 MNIST_STUDIO_MEASURE_EPOCHS=3 ...   # the same recipe, longer

The same recipe (the "fastest to 99 %" preset, full data, optionally with more epochs) runs RUNS times in the app (Start pressed in Chromium,
"Finished in X s of training" read off the page) and RUNS times as `python -m mnist_core train --preset ...`,
alternating. Two figures each: training seconds as `fit` measures them (evaluation excluded), and the wall time a
person waits: Start click -> result on the page, against the whole CLI command (Python start-up and data loading
included).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import REPO_ROOT
from tests.e2e.streamlit_page import StreamlitTab
from tests.e2e.test_e2e_train import choose, set_epochs, widget

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(os.environ.get("MNIST_STUDIO_MEASURE") != "1",
                                 reason="set MNIST_STUDIO_MEASURE=1 to measure app vs CLI training time")]

PRESET = "fastest to 99 %"
RUNS = 3
EPOCHS = os.environ.get("MNIST_STUDIO_MEASURE_EPOCHS")  # None: the preset's own 0.8 epoch
FINISHED = re.compile(r"Finished in ([\d.]+) s of training")


def train_in_app(tab: StreamlitTab, run: int) -> tuple[float, float]:
    """(training seconds shown on the page, seconds from the Start click until the result is on the page)."""
    tab.page.wait_for_timeout(3000)  # the spare worker process the page starts is ready (as for a person reading)
    start_button = tab.page.locator(".st-key-train-start").get_by_role("button", name="Start training")
    expect(start_button).to_be_enabled()
    clicked = time.perf_counter()
    start_button.click()
    finished = tab.page.get_by_text(FINISHED)
    tab.page.wait_for_function(  # this run's result: the sidebar's active model is "run N" (N < 10 here)
        "run => (document.querySelector('[data-testid=\"stSidebar\"]')?.innerText ?? '').includes(`run ${run}`)",
        arg=run, timeout=300_000)
    expect(finished).to_be_visible(timeout=300_000)
    waited = time.perf_counter() - clicked
    tab.wait_idle()
    tab.assert_no_exception()
    return float(FINISHED.search(finished.inner_text()).group(1)), waited


def train_in_cli(mnist_root, out: Path) -> tuple[float, float]:
    time.sleep(5)  # the app starts its next spare worker after a run: let that finish first
    started = time.perf_counter()
    epochs = ["--epochs", EPOCHS] if EPOCHS else []
    # --out: the measurement must not leave a checkpoint per run in the user's checkpoints/ folder
    completed = subprocess.run([sys.executable, "-m", "mnist_core", "train", "--preset", PRESET, *epochs, "--json",
                                "--out", str(out), "--overwrite"],
                               cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
                               env=dict(os.environ, MNIST_DATA_ROOT=str(mnist_root)))
    waited = time.perf_counter() - started
    assert completed.returncode == 0, completed.stderr[-2000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])["train_seconds"], waited


def test_app_timing(train: StreamlitTab, mnist_root, tmp_path: Path) -> None:
    preset = widget(train, "stSelectbox", "Preset").get_by_role("combobox")
    if preset.input_value() != PRESET:  # the page opens on it; choose it if that ever changes
        choose(train, "Preset", PRESET)
    if EPOCHS:
        set_epochs(train, float(EPOCHS))
    app_train, app_wait, cli_train, cli_wait = [], [], [], []
    for run in range(1, RUNS + 1):
        seconds, waited = train_in_cli(mnist_root, tmp_path / "cli-run.pt")
        cli_train.append(seconds)
        cli_wait.append(waited)
        seconds, waited = train_in_app(train, run)
        app_train.append(seconds)
        app_wait.append(waited)
    median = statistics.median
    print(f"\n{PRESET!r}{f' with {EPOCHS} epochs' if EPOCHS else ''}, {RUNS} runs each, alternating (median, all runs):")
    print(f"  training seconds: app {median(app_train):.2f} {app_train}  CLI {median(cli_train):.2f} {cli_train}"
          f"  -> app vs CLI {100 * (median(app_train) / median(cli_train) - 1):+.1f} %")
    print(f"  wall seconds:     app (Start -> result) {median(app_wait):.2f}  CLI command {median(cli_wait):.2f}")
    assert len(app_train) == len(cli_train) == RUNS
