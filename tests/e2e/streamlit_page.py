"""Small helpers to drive a Streamlit app in Playwright without sleeping blindly.

Streamlit marks the app root with `data-test-script-state` ("running", "notRunning", ...). A widget change is sent
to the server over the websocket, and only then does a rerun start, so "notRunning" right after a click can still
be the state *before* the rerun. `StreamlitTab` counts websocket frames so a wait can insist on "something was sent,
the server answered, the script is idle and nothing has arrived for a moment".
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Callable

from playwright.sync_api import Locator, Page, expect

from tests.e2e.strokes import Stroke, densify

IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
EXCEPTION = '[data-testid="stException"]'
QUIET_S = 0.3  # no websocket traffic for this long after "notRunning" = the rerun's output has all arrived

# URL paths of the pages (Streamlit derives them from pages/N_Title.py -> /Title).
PAGE_PATHS = {"home": "/", "dataset": "/Dataset_Explorer", "train": "/Train", "evaluate": "/Evaluate",
              "sketch": "/Sketch"}


@dataclass
class StreamlitTab:
    page: Page
    frames_sent: int = 0
    frames_received: int = 0
    last_frame_at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.page.on("websocket", self._watch)

    def _watch(self, socket) -> None:
        socket.on("framesent", self._sent)
        socket.on("framereceived", self._received)

    def _sent(self, _payload) -> None:
        self.frames_sent += 1
        self.last_frame_at = time.monotonic()

    def _received(self, _payload) -> None:
        self.frames_received += 1
        self.last_frame_at = time.monotonic()

    # -- waiting -------------------------------------------------------------------------------------------
    def wait_idle(self, timeout_s: float = 60.0, sent_before: int | None = None) -> None:
        """Wait until the script is idle and the websocket has been quiet for QUIET_S.

        With `sent_before`, first wait until the browser has sent a frame after that count (the widget
        change reached the server), so an idle state from before the rerun is not mistaken for the result.
        """
        deadline = time.monotonic() + timeout_s
        if sent_before is not None:
            while self.frames_sent <= sent_before:
                if time.monotonic() > deadline:
                    raise AssertionError("the browser never sent the change to the Streamlit server")
                self.page.wait_for_timeout(50)
        while True:
            remaining_ms = max(1.0, (deadline - time.monotonic()) * 1000)
            self.page.wait_for_selector(IDLE, timeout=remaining_ms)
            if time.monotonic() - self.last_frame_at >= QUIET_S and self.page.locator(IDLE).count() == 1:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the app did not settle within {timeout_s:.0f} s")
            self.page.wait_for_timeout(100)

    def open(self, name: str, timeout_s: float = 90.0) -> None:
        """Load a page by its short name and wait until its first run is complete."""
        self.load(lambda: self.page.goto(PAGE_PATHS[name]), timeout_s)

    def reload(self, timeout_s: float = 90.0) -> None:
        """Reload the tab (a new Streamlit session) and wait until its first run is complete."""
        self.load(self.page.reload, timeout_s)

    def load(self, navigate: Callable[[], object], timeout_s: float = 90.0) -> None:
        """Run `navigate` (a goto, a reload) and wait for the new page's first script run to finish.

        A freshly loaded page reads "notRunning" before its websocket is even open, so idle alone could be the
        state before the first run (on a busy 2-core machine that lasted seconds, and the page was checked half
        drawn): wait for the server's first frame on the new connection, then for idle."""
        received_before = self.frames_received
        navigate()
        deadline = time.monotonic() + timeout_s
        self.page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_s * 1000)
        while self.frames_received <= received_before:
            if time.monotonic() > deadline:
                raise AssertionError(f"the Streamlit server sent nothing within {timeout_s:.0f} s of loading the page")
            self.page.wait_for_timeout(50)
        self.wait_idle(max(1.0, deadline - time.monotonic()))

    # -- checks --------------------------------------------------------------------------------------------
    def assert_no_exception(self) -> None:
        """No Streamlit exception box and no Python traceback text anywhere on the page."""
        expect(self.page.locator(EXCEPTION)).to_have_count(0)
        body = self.page.locator("body").inner_text()
        assert "Traceback" not in body, body[:3000]

    def assert_fully_visible(self, element: Locator, what: str) -> None:
        """`element` lies wholly inside the window from left to right and right of the sidebar: nothing of it is cut
        off by the window's edge, hidden under the sidebar or drawn past the page's main area."""
        expect(element).to_be_visible()
        box = element.bounding_box()
        main = self.page.locator('[data-testid="stMain"]').bounding_box()
        assert box is not None and main is not None, f"{what} is not on the page"
        window = self.page.viewport_size["width"]
        left, right = box["x"], box["x"] + box["width"]
        assert left >= main["x"] - 0.5 and right <= min(window, main["x"] + main["width"]) + 0.5, (
            f"{what} spans x = {left:.0f}…{right:.0f} px; the page shows x = {main['x']:.0f}…"
            f"{min(window, main['x'] + main['width']):.0f} in a {window}-px window")

    def clipped_texts(self) -> list[str]:
        """Texts in the main area drawn cut short: ending in "…" or wider than their box (a CSS ellipsis or a hidden
        overflow shows only part of them, though the DOM holds the whole text)."""
        return self.page.evaluate("""() => {
            const clipped = [];
            for (const element of document.querySelectorAll('[data-testid="stMain"] *')) {
                if (element.closest('.js-plotly-plot, [data-testid="stDataFrame"]')) continue;
                const text = (element.innerText || '').trim();
                const style = getComputedStyle(element);
                const hides = style.textOverflow === 'ellipsis' || ['hidden', 'clip'].includes(style.overflowX);
                const own = [...element.childNodes].some(n => n.nodeType === Node.TEXT_NODE
                                                          && n.textContent.trim().endsWith('…'));
                if (text && ((hides && element.scrollWidth > element.clientWidth + 1) || own)) clipped.push(text);
            }
            return clipped;
        }""")

    def blurred_digit_images(self, images: Locator) -> list[str]:
        """Of `images` (enlarged 28×28 digits), those drawn smeared, each as "caption: N rows and M columns in W px".
        A sharp image of a 28×28 digit is made of at most 28 different rows and 28 different columns; one shrunk
        bilinearly or sent as JPEG (ringing) has a new row or column at almost every pixel."""
        self.page.wait_for_function("""() => [...document.querySelectorAll("[data-testid='stImage'] img")]
                                         .every(image => image.complete && image.naturalWidth > 0)""")
        return images.evaluate_all("""images => images.map(image => {
            const canvas = document.createElement('canvas');
            canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
            const context = canvas.getContext('2d');
            context.drawImage(image, 0, 0);
            const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
            const rows = new Set(), columns = new Set();
            for (let y = 0; y < canvas.height; y++) {
                let row = '';
                for (let x = 0; x < canvas.width; x++) row += pixels[(y * canvas.width + x) * 4] + ',';
                rows.add(row);
            }
            for (let x = 0; x < canvas.width; x++) {
                let column = '';
                for (let y = 0; y < canvas.height; y++) column += pixels[(y * canvas.width + x) * 4] + ',';
                columns.add(column);
            }
            const caption = image.closest('[data-testid="stImage"]').innerText.trim();
            return rows.size > 28 || columns.size > 28
                ? `${caption}: ${rows.size} rows and ${columns.size} columns in ${canvas.width} px` : null;
        }).filter(Boolean)""")

    def metric(self, label: str) -> Locator:
        """The `st.metric` whose label is exactly `label`."""
        return self.page.locator('[data-testid="stMetric"]').filter(
            has=self.page.locator('[data-testid="stMetricLabel"]', has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")))

    def sidebar_text(self) -> str:
        return self.page.locator('[data-testid="stSidebar"]').inner_text()

    # -- drawing -------------------------------------------------------------------------------------------
    def draw(self, canvas: Locator, strokes: list[Stroke]) -> None:
        """Replay strokes as real mouse drags on `canvas` (press, move in small steps, release), then wait
        for the rerun the release triggers. A stroke the canvas did not take (nothing sent within a few seconds,
        e.g. on a canvas still being mounted) is drawn once more, as a person would."""
        for stroke in strokes:
            sent_before = self.frames_sent
            for _attempt in (1, 2):
                self._drag(canvas, stroke)
                if self._wait_sent(sent_before, timeout_s=8.0):
                    break
            # Each stroke ends in its own rerun; waiting for it keeps strokes from racing the reruns.
            self.wait_idle(sent_before=sent_before)

    def _drag(self, canvas: Locator, stroke: Stroke) -> None:
        box = canvas.bounding_box()
        assert box is not None, "the canvas is not visible"
        points = densify(stroke, spacing=12.0)
        self.page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
        self.page.mouse.down()
        for x, y in points[1:]:
            self.page.mouse.move(box["x"] + x, box["y"] + y)
        self.page.mouse.up()

    def _wait_sent(self, sent_before: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self.frames_sent <= sent_before and time.monotonic() < deadline:
            self.page.wait_for_timeout(50)
        return self.frames_sent > sent_before
