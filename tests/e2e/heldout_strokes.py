"""Held-out drawings: handwriting styles, sizes, slants and brushes that tests/e2e/strokes.py does not use, plus
things that are not digits. Written for an audit of the Sketch page's preprocessing (drawn blind, before measuring),
so they check how the default model reads a hand it was never tuned on.

`python -m tests.e2e.heldout_strokes [CHECKPOINT] [--mnist]` prints how the model reads them (right and sure, right
but unsure, wrong and sure, wrong and unsure; non-digits: called unsure or not), per style and per variation, and
with `--mnist` how it reads MNIST's test digits through the same preprocessing (MNIST_DATA_ROOT).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from tests.e2e.strokes import CANVAS_SIDE, Point, Stroke, arc, densify, rasterise

if TYPE_CHECKING:  # torch and the app's library load only when something is measured
    from torch import nn

    from mnist_core.sketch import SketchPrediction

SLIDER_WIDTHS = tuple(range(8, 41))  # every value of the Sketch page's "Stroke width" slider (8–40, step 1)

HELD_OUT_DIGITS: dict[str, tuple[int, list[Stroke]]] = {
    "1 with a long flag and a base": (1, [[(112, 92), (152, 52), (150, 226)], [(108, 228), (192, 226)]]),
    "7 with a bent top and a crossbar": (7, [[(84, 70), (120, 58), (196, 60), (150, 140), (118, 226)],
                                             [(112, 142), (186, 138)]]),
    "open-top 4 (short stem)": (4, [[(108, 60), (92, 158), (202, 156)], [(176, 104), (174, 228)]]),
    "9 with a straight stem": (9, [arc(132, 98, 46, 40, -10, 350), [(178, 88), (178, 228)]]),
    "2 with a loop at the base": (2, [arc(138, 98, 46, 40, 190, 360) + [(180, 120), (110, 200)]
                                      + arc(104, 212, 16, 14, -60, 300) + [(125, 216), (205, 216)]]),
    "curly 3": (3, [[(98, 82)] + arc(136, 94, 40, 36, -170, 80) + [(128, 134), (122, 140)]
                    + arc(138, 182, 48, 44, -110, 150) + arc(86, 216, 14, 12, 0, 240)]),
    "6 in one stroke from the top": (6, [[(188, 56), (150, 80), (118, 120), (100, 170)]
                                         + arc(142, 186, 44, 38, 180, 530)]),
    "0 as a slanted ellipse": (0, [[(140 + 44 * math.cos(t) * math.cos(-0.5) - 80 * math.sin(t) * math.sin(-0.5),
                                     140 + 44 * math.cos(t) * math.sin(-0.5) + 80 * math.sin(t) * math.cos(-0.5))
                                    for t in (-1.7 + k * 2 * math.pi * 1.05 / 48 for k in range(49))]]),
    "5 with a round belly in one stroke": (5, [[(192, 60), (112, 62), (104, 128)] + arc(140, 172, 52, 50, -140, 140)]),
    "8 as two touching circles": (8, [arc(140, 96, 34, 38, 0, 365), arc(140, 176, 44, 42, 0, 365)]),
}

NOT_DIGITS: dict[str, list[Stroke]] = {
    "letter A": [[(90, 225), (140, 55), (190, 225)], [(110, 160), (170, 160)]],
    "X": [[(85, 60), (195, 220)], [(195, 60), (85, 220)]],
    "smiley": [arc(140, 140, 85, 85, 0, 365), [(110, 110), (111, 113)], [(170, 110), (171, 113)],
               arc(140, 150, 45, 35, 20, 160)],
    "horizontal line": [[(60, 140), (220, 141)]],
    "dot": [[(140, 140), (141, 140)]],
    "filled square": [[(80, 80 + 6 * row), (200, 80 + 6 * row)] for row in range(21)],
}


def _box(strokes: list[Stroke]) -> tuple[float, float, float, float]:
    xs = [x for stroke in strokes for x, _ in stroke]
    ys = [y for stroke in strokes for _, y in stroke]
    return min(xs), min(ys), max(xs), max(ys)


def fitted(strokes: list[Stroke], side: float, centre: Point) -> list[Stroke]:
    """The drawing scaled so its path's long side is `side` px, its box centred on `centre`. A dot (under 10 px)
    is only moved: a dot drawn large is a dot still."""
    left, top, right, bottom = _box(strokes)
    long_side = max(right - left, bottom - top)
    factor = side / long_side if long_side >= 10 else 1.0
    middle = ((left + right) / 2, (top + bottom) / 2)
    return [[(centre[0] + (x - middle[0]) * factor, centre[1] + (y - middle[1]) * factor) for x, y in stroke]
            for stroke in strokes]


def slanted(strokes: list[Stroke], degrees: float) -> list[Stroke]:
    """Turned by `degrees` about the canvas centre (positive: clockwise on screen, the top leans right)."""
    angle = math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    c = CANVAS_SIDE / 2
    return [[(c + (x - c) * cos - (y - c) * sin, c + (x - c) * sin + (y - c) * cos) for x, y in stroke]
            for stroke in strokes]


def shaky(strokes: list[Stroke], amplitude: float = 2.5, seed: int = 0) -> list[Stroke]:
    """A slightly unsteady hand: every point, 6 px apart, off by up to `amplitude` px, drifting smoothly."""
    rng = random.Random(seed)
    result = []
    for stroke in strokes:
        dx = dy = 0.0
        points = []
        for x, y in densify(stroke, spacing=6.0):
            dx = max(-amplitude, min(amplitude, dx + rng.uniform(-1.2, 1.2)))
            dy = max(-amplitude, min(amplitude, dy + rng.uniform(-1.2, 1.2)))
            points.append((x + dx, y + dy))
        result.append(points)
    return result


# How each drawing is varied (natural size 170 px, centred a little off the middle, as in strokes.py).
VARIATIONS: dict[str, Callable[[list[Stroke]], list[Stroke]]] = {
    "as drawn": lambda s: fitted(s, 170, (142, 140)),
    "slanted +20°": lambda s: slanted(fitted(s, 165, (140, 140)), 20),
    "slanted -20°": lambda s: slanted(fitted(s, 165, (140, 140)), -20),
    "60 px, top-left corner": lambda s: fitted(s, 60, (50, 50)),
    "60 px, bottom-right corner": lambda s: fitted(s, 60, (228, 228)),
    "260 px": lambda s: fitted(s, 260, (140, 140)),
    "shaky": lambda s: shaky(fitted(s, 170, (142, 140))),
}


def outcome(reading: SketchPrediction, digit: int | None) -> str:
    """One of the audit's four boxes (for a non-digit, `digit` is None: only sure or unsure counts), or "empty"
    (no ink found: the page shows no reading)."""
    if reading.empty:
        return "empty"
    sure = "unsure" if reading.unsure else "sure"
    if digit is None:
        return sure
    return f"{'right' if reading.digit == digit else 'wrong'} & {sure}"


def measure(model: nn.Module, unsure_below: float, widths: tuple[int, ...] = SLIDER_WIDTHS) -> dict[str, Counter]:
    """Counts of each outcome: per style, per variation and per brush width (keys 'style:…', 'variation:…',
    'width:…', 'digits', 'not digits'), plus the confidently wrong cases listed under 'wrong & sure cases'."""
    from mnist_core.sketch import predict

    counts: dict[str, Counter] = {"digits": Counter(), "not digits": Counter(), "wrong & sure cases": Counter()}
    for name, (digit, strokes) in [*HELD_OUT_DIGITS.items(), *((n, (None, s)) for n, s in NOT_DIGITS.items())]:
        for variation, vary in VARIATIONS.items():
            drawn = vary(strokes)
            for width in widths:
                reading = predict(model, rasterise(drawn, width), unsure_below)
                box = outcome(reading, digit)
                counts["digits" if digit is not None else "not digits"][box] += 1
                counts.setdefault(f"style:{name}", Counter())[box] += 1
                if digit is not None:
                    counts.setdefault(f"variation:{variation}", Counter())[box] += 1
                    counts.setdefault(f"width:{width}", Counter())[box] += 1
                if box == "wrong & sure" or (digit is None and box == "sure"):
                    counts["wrong & sure cases"][f"{name}, {variation}, width {width} -> {reading.digit} "
                                                 f"{reading.confidence:.2f}"] += 1
    return counts


def mnist_through_preprocessing(model: nn.Module, unsure_below: float,
                                data_root: str | None = None) -> dict[str, Counter]:
    """MNIST's 10,000 test digits as pictures through `predict`: at their own 28 px and drawn canvas-size (280 px,
    white on black like the canvas)."""
    from PIL import Image

    from mnist_core.data import load_mnist
    from mnist_core.sketch import predict

    test = load_mnist(data_root, download=False, with_train=False).test
    counts = {"28 px": Counter(), "280 px": Counter()}
    for image, label in zip(test.images.numpy(), test.labels.tolist()):
        picture = Image.fromarray(image, "L")
        counts["28 px"][outcome(predict(model, picture, unsure_below), label)] += 1
        large = picture.resize((CANVAS_SIDE, CANVAS_SIDE), Image.Resampling.BILINEAR)
        counts["280 px"][outcome(predict(model, large, unsure_below), label)] += 1
    return counts


def count_line(label: str, counter: Counter, width: int = 48) -> str:
    """One printed row of a measurement: the label, then each outcome's count, then the total."""
    counts = "  ".join(f"{box}: {count}" for box, count in sorted(counter.items()))
    return f"{label:{width}s} {counts}  (of {sum(counter.values())})"


def print_counts(counts: dict[str, Counter], cases_key: str, cases_heading: str, width: int = 48) -> None:
    """A measurement's rows, then the cases listed under `cases_key` (the readings worth a look), one per line."""
    for key, counter in counts.items():
        if key != cases_key:
            print(count_line(key, counter, width))
    print(cases_heading)
    for case in counts[cases_key]:
        print("  ", case)


def main(argv: list[str]) -> None:
    from mnist_core.checkpoints import DEFAULT_CHECKPOINT, load_checkpoint
    from mnist_core.sketch import unsure_threshold

    from mnist_core.data import ensure_mnist

    paths = [arg for arg in argv if not arg.startswith("--")]
    checkpoint = load_checkpoint(paths[0] if paths else DEFAULT_CHECKPOINT)
    if "--mnist" in argv:
        ensure_mnist(download=False, with_train=False)  # MNIST missing: said now, not after a minute of drawings
    unsure_below = unsure_threshold(checkpoint.metrics)
    print(f"{checkpoint.source}: unsure below {unsure_below:.3f}; brush widths {SLIDER_WIDTHS[0]}–{SLIDER_WIDTHS[-1]}")
    counts = measure(checkpoint.model, unsure_below)
    print_counts(counts, "wrong & sure cases", "wrong & sure (non-digits: called sure):")
    if "--mnist" in argv:
        for key, counter in mnist_through_preprocessing(checkpoint.model, unsure_below).items():
            print(count_line(f"MNIST test, {key}", counter))


if __name__ == "__main__":
    import sys

    from tests.e2e.strokes import run_script

    sys.exit(run_script(main, sys.argv[1:], "python -m tests.e2e.heldout_strokes [CHECKPOINT] [--mnist]",
                        options=("--mnist",)))
