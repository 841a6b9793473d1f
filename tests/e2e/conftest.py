"""Browser test fixtures: one real `streamlit run app.py` server and one headless Chromium for the whole session.

Both are expensive to start (the server imports torch and Streamlit; the browser is a full Chromium), so they are
session-scoped and every test opens its own tab (= its own Streamlit session, with fresh `st.session_state`).
Chromium comes from Debian (`/usr/bin/chromium`) and is driven by PyPI's Playwright; Playwright's own browser
download does not work offline, so it is never used. Missing browser or data: skip locally, fail in CI
(`missing()` in tests/conftest.py).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import REPO_ROOT, missing

if TYPE_CHECKING:  # Playwright is imported only once a browser test runs (a missing one is reported there)
    from tests.e2e.streamlit_page import StreamlitTab

CHROMIUM = Path(os.environ.get("MNIST_STUDIO_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SERVER_START_TIMEOUT_S = 90.0  # cold start on the 2-core CI machine: python + torch + streamlit imports
VIEWPORT = {"width": 1400, "height": 1000}  # wide enough that the sidebar and two-column layouts are open


def free_loopback_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it; it is released before Streamlit binds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _log_tail(log_path: Path, limit: int = 6000) -> str:
    text = log_path.read_text(errors="replace") if log_path.exists() else "(no log written)"
    return text[-limit:]


def _stop(process: subprocess.Popen) -> None:
    """terminate → wait → kill: Streamlit shuts down cleanly on SIGTERM; a hung one is killed."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _wait_until_healthy(base_url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {process.returncode} before answering.\n"
                               f"--- server log ---\n{_log_tail(log_path)}")
        try:
            with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"streamlit did not answer {base_url}/_stcore/health within {SERVER_START_TIMEOUT_S:.0f} s."
                       f"\n--- server log ---\n{_log_tail(log_path)}")


@pytest.fixture(scope="session")
def app_server(mnist_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start `streamlit run app.py` on a free loopback port; yield its base URL; always stop it.

    MNIST_STUDIO_E2E_URL=http://127.0.0.1:8501 points the tests at an app you already run instead (handy while
    working on a page: no server start per test run).
    """
    external_url = os.environ.get("MNIST_STUDIO_E2E_URL")
    if external_url:
        yield external_url.rstrip("/")
        return
    port = free_loopback_port()
    log_path = tmp_path_factory.mktemp("streamlit") / "server.log"
    env = dict(os.environ, MNIST_DATA_ROOT=str(Path(mnist_root).resolve()), PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "streamlit", "run", "app.py",
               "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
               "--browser.gatherUsageStats", "false",
               # No file watcher: nothing is edited during a test run, and watching costs CPU on 2 cores.
               "--server.fileWatcherType", "none"]
    with open(log_path, "wb") as log:  # a file, not a pipe: a full pipe would block the server
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(base_url, process, log_path)
        yield base_url
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def browser():
    """One headless Debian Chromium for the whole session."""
    if not CHROMIUM.exists() and not shutil.which(str(CHROMIUM)):
        missing(f"{CHROMIUM} not found: install Debian's chromium package (apt-get install chromium), or set "
                "MNIST_STUDIO_CHROMIUM to the path of a Chromium installed elsewhere")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        missing("playwright is not installed: pip install -r requirements-dev.txt")
    # expect()'s 5-s default failed in CI when a check right after a reload met a server sharing its 2 cores with a
    # training run; a check that passes returns as soon as it holds, so a longer limit only slows real failures.
    expect.set_options(timeout=15_000)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@contextmanager
def browser_tab(browser, app_server: str, window_width: int = VIEWPORT["width"]):
    """A fresh browser tab (its own Streamlit session) on the running app, always closed afterwards; its window
    `window_width` px wide (layout tests try narrow ones)."""
    context = browser.new_context(viewport={**VIEWPORT, "width": window_width}, base_url=app_server)
    context.set_default_timeout(30_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture()
def page(browser, app_server: str, request: pytest.FixtureRequest):
    """A fresh tab for one test; `@pytest.mark.parametrize("page", [800, 1400], indirect=True)` sets its window
    width."""
    with browser_tab(browser, app_server, getattr(request, "param", VIEWPORT["width"])) as tab:
        yield tab


@pytest.fixture()
def train(page) -> Iterator[StreamlitTab]:
    """A fresh tab on the Train page, its first run complete."""
    from tests.e2e.streamlit_page import StreamlitTab

    tab = StreamlitTab(page)
    tab.open("train")
    yield tab
