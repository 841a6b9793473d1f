"""The browser test's hand-drawn digits, checked without a browser (milliseconds, no server).

If a new `checkpoints/default.pt` stops reading one of the stroke paths, this test says which one and how
confidently, long before the slow browser test fails with a less specific message.
"""

from __future__ import annotations

import pytest

from mnist_core.sketch import LOW_CONFIDENCE, predict
from tests.e2e.strokes import CANVAS_SIDE, DEFAULT_STROKE_WIDTH, DIGIT_STROKES, SCRIBBLE, bounds_ok, rasterise

# The page's stroke-width slider may move; the shapes must be read at thin, default and thick brushes.
STROKE_WIDTHS = (14, DEFAULT_STROKE_WIDTH, 26)
MIN_CONFIDENCE = 0.9  # margin: a digit read at 55 % would be a coin toss after the browser's own smoothing


@pytest.fixture(scope="module")
def default_model():
    from mnist_core.checkpoints import DEFAULT_CHECKPOINT, load_checkpoint
    from tests.conftest import missing

    if not DEFAULT_CHECKPOINT.exists():
        missing(f"{DEFAULT_CHECKPOINT} is missing: it ships with the repository")
    return load_checkpoint(DEFAULT_CHECKPOINT).model


def test_every_digit_has_strokes_inside_the_canvas() -> None:
    assert sorted(DIGIT_STROKES) == list(range(10))
    for digit, strokes in DIGIT_STROKES.items():
        assert strokes and all(len(stroke) >= 2 for stroke in strokes), digit
        assert bounds_ok(strokes), f"digit {digit} leaves the {CANVAS_SIDE}px canvas"
    assert bounds_ok(SCRIBBLE)


@pytest.mark.parametrize("stroke_width", STROKE_WIDTHS)
def test_default_model_reads_every_drawn_digit(default_model, stroke_width: int) -> None:
    readings = {digit: predict(default_model, rasterise(strokes, stroke_width))
                for digit, strokes in DIGIT_STROKES.items()}
    wrong = {digit: (reading.digit, round(reading.confidence, 3)) for digit, reading in readings.items()
             if reading.digit != digit or reading.confidence < MIN_CONFIDENCE}
    assert not wrong, f"digit -> (read as, confidence) below {MIN_CONFIDENCE} at width {stroke_width}: {wrong}"


def test_scribble_is_low_confidence(default_model) -> None:
    reading = predict(default_model, rasterise(SCRIBBLE))
    assert not reading.empty
    assert reading.confidence < LOW_CONFIDENCE, (reading.digit, reading.confidence)


def test_blank_canvas_is_empty(default_model) -> None:
    assert predict(default_model, rasterise([])).empty
