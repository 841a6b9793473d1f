"""A second set of held-out drawings: four more hands per digit, none of them among the shapes of strokes.py or
heldout_strokes.py, each drawn five ways (fast and sloppy, small in a corner, large to the canvas's edges,
off-centre, squeezed or stretched), so 20 stroke paths per digit, read at thin to thick brushes. Written for an
audit of the Sketch page's preprocessing before measuring (the acceptance check draws digits not in the issue).

`python -m tests.e2e.more_heldout_strokes [CHECKPOINT]` prints how the model reads them (right and sure, right but
unsure, wrong and sure, wrong and unsure), per hand, per way of drawing and per brush, and lists the wrong ones.
The browser test (test_e2e_sketch.py) draws a sample of them with the mouse.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from tests.e2e.heldout_strokes import fitted, outcome, print_counts
from tests.e2e.strokes import Stroke, arc, densify, rasterise

if TYPE_CHECKING:  # torch and the app's library load only when something is measured
    from torch import nn

BRUSHES = (8, 14, 20, 28, 36)  # the slider's range, thin to thick (8–40)


def _line(*points: tuple[float, float]) -> Stroke:
    return list(points)


# name -> (digit, strokes); canvas coordinates, drawn about 170 px tall (the ways of drawing rescale them).
HANDS: dict[str, tuple[int, list[Stroke]]] = {
    # 0
    "0 round as a coin": (0, [arc(140, 140, 70, 72, -80, 285)]),
    "0 narrow, drawn anticlockwise with a gap at the top": (0, [arc(140, 140, 38, 85, -60, -420)]),
    "0 with its end looping over the start": (0, [arc(140, 145, 55, 78, -90, 270) + arc(150, 78, 18, 14, 90, -120)]),
    "0 squarish": (0, [_line((110, 60), (170, 58), (188, 80), (190, 200), (170, 222), (110, 224), (90, 200),
                             (88, 82), (112, 58))]),
    # 1
    "1 with a short flag and a wide base": (1, [_line((125, 75), (145, 56), (145, 224)), _line((100, 225),
                                                                                         (190, 225))]),
    "1 leaning left": (1, [_line((170, 56), (150, 140), (118, 226))]),
    "1 with a long flag, no base": (1, [_line((95, 110), (160, 55), (158, 226))]),
    "1 with a curved stem": (1, [_line((150, 56), (144, 100)) + arc(200, 150, 62, 75, 185, 135)]),
    # 2
    "2 like a Z": (2, [_line((92, 62), (186, 60), (96, 222), (196, 222))]),
    "2 with a round hook and a wavy base": (2, [arc(140, 100, 50, 42, 185, 380) + _line((178, 130), (96, 218))
                                                + arc(122, 218, 26, 10, 180, 360) + arc(174, 218, 26, 10, 180, 0)]),
    "2 with a small loop low on the left": (2, [arc(138, 102, 44, 42, 200, 370) + _line((176, 135), (118, 196))
                                                + arc(108, 208, 14, 14, -45, 300) + _line((120, 214), (200, 208))]),
    "2 with a tail curling up": (2, [arc(138, 98, 46, 40, 190, 370) + _line((176, 125), (98, 220), (170, 220))
                                     + arc(170, 205, 15, 15, 90, -20)]),
    # 3
    "3 with a pointed middle": (3, [arc(132, 96, 48, 38, -150, 90) + arc(132, 180, 56, 46, -90, 150)]),
    "3 with a big lower bowl": (3, [arc(140, 80, 34, 24, -160, 90) + arc(140, 164, 62, 60, -90, 155)]),
    "3 drawn as two separate bumps": (3, [arc(136, 98, 44, 38, -165, 95), arc(136, 182, 52, 44, -95, 160)]),
    "3 with curled ends": (3, [arc(104, 78, 10, 10, 90, -90) + arc(138, 98, 42, 38, -140, 90)
                               + arc(138, 180, 52, 44, -90, 140) + arc(90, 208, 12, 10, 10, 250)]),
    # 4
    "4 closed, bar running on past the stem": (4, [_line((160, 58), (92, 168), (212, 168)), _line((160, 58),
                                                                                              (160, 228))]),
    "4 open, stem crossing the bar": (4, [_line((104, 58), (100, 150), (190, 150)), _line((172, 92), (170, 226))]),
    "4 printed, slanted arm from the stem's top": (4, [_line((170, 58), (94, 170), (206, 170)),
                                                       _line((170, 58), (172, 226))]),
    "4 with a curved arm": (4, [arc(150, 100, 50, 58, 200, 100) + _line((104, 158), (202, 156)),
                                _line((168, 70), (166, 228))]),
    # 5
    "5 with a boxy belly": (5, [_line((190, 58), (108, 58), (104, 128), (176, 126), (186, 178), (170, 216),
                                      (100, 218))]),
    "5 with a short flag and a round, nearly closed belly": (5, [_line((162, 60), (118, 60), (110, 118))
                                                                 + arc(140, 168, 50, 50, -140, 165)]),
    "5 in one stroke with a round shoulder": (5, [_line((188, 58), (118, 58)) + arc(118, 88, 10, 30, -90, -180)
                                                  + arc(142, 168, 50, 50, -150, 150)]),
    "5 with a long flag": (5, [_line((112, 62), (106, 130)) + arc(140, 170, 46, 48, -145, 150),
                               _line((108, 60), (214, 56))]),
    # 6
    "6 with a small loop and a straight back": (6, [_line((176, 56), (122, 150)) + arc(142, 192, 32, 32, 210, 570)]),
    "6 with a curved back and a big open loop": (6, [arc(190, 150, 92, 94, -110, -180) + arc(142, 172, 50, 52, 180,
                                                                                            500)]),
    "6 curling inside its loop": (6, [arc(180, 150, 80, 92, -115, -180) + arc(140, 170, 46, 50, 180, 540)
                                      + arc(140, 165, 18, 18, 180, 300)]),
    "6 leaning right": (6, [_line((196, 60), (150, 96), (110, 150)) + arc(136, 180, 44, 44, 200, 560)]),
    # 7
    "7 crossed, the bar short": (7, [_line((92, 60), (180, 62), (112, 226)), _line((126, 146), (172, 144))]),
    "7 with a curved stem": (7, [_line((86, 62), (196, 60)) + arc(60, 80, 136, 150, -5, 60)]),
    "7 nearly upright": (7, [_line((110, 60), (182, 60), (170, 140), (164, 226))]),
    "7 with a wavy top": (7, [arc(111, 70, 25, 10, 180, 360) + arc(161, 70, 25, 10, 180, 0) + _line((186, 70),
                                                                                                 (124, 226))]),
    # 8
    "8 as two circles, the top one larger": (8, [arc(140, 100, 46, 44, 0, 365), arc(140, 184, 36, 38, 0, 365)]),
    "8 as an hourglass": (8, [_line((100, 58), (180, 58), (100, 226), (180, 226), (100, 58))]),
    "8 in one stroke from the top right": (8, [arc(140, 98, 40, 40, -30, -270) + arc(140, 180, 48, 42, -90, 270)
                                               + arc(140, 98, 40, 40, 90, -30)]),
    "8 slanted, loops offset": (8, [arc(156, 96, 38, 38, 90, 450), arc(126, 180, 46, 44, -90, 270)]),
    # 9
    "9 with its stem starting at the loop's top": (9, [arc(128, 100, 44, 40, -20, -380) + _line((170, 86),
                                                                                             (168, 228))]),
    "9 with a tail curling left": (9, [arc(140, 98, 44, 40, 0, 365) + arc(120, 196, 64, 34, -5, 140)]),
    "9 with a small loop and a long stem": (9, [arc(144, 86, 30, 28, 0, 365) + _line((174, 86), (170, 228))]),
    "9 like a q, with a flick": (9, [arc(134, 104, 42, 42, -60, -420), _line((176, 70), (176, 226), (192, 212))]),
}


def sloppy(strokes: list[Stroke], seed: int) -> list[Stroke]:
    """Drawn fast: the whole digit turned a few degrees, each stroke running past its end (overshoot) and every
    point off by a few pixels."""
    rng = random.Random(seed)
    turn = math.radians(rng.uniform(-10, 10))
    cos, sin = math.cos(turn), math.sin(turn)
    result = []
    for stroke in strokes:
        points = densify(stroke, spacing=8.0)
        if len(points) >= 2:
            (x0, y0), (x1, y1) = points[-2], points[-1]
            length = math.hypot(x1 - x0, y1 - y0) or 1.0
            overshoot = rng.uniform(4, 14)
            points.append((x1 + (x1 - x0) / length * overshoot, y1 + (y1 - y0) / length * overshoot))
        dx = dy = 0.0
        drawn = []
        for x, y in points:
            dx = max(-5.0, min(5.0, dx + rng.uniform(-2, 2)))
            dy = max(-5.0, min(5.0, dy + rng.uniform(-2, 2)))
            x, y = x - 140, y - 140
            drawn.append((140 + x * cos - y * sin + dx, 140 + x * sin + y * cos + dy))
        result.append(drawn)
    return result


def stretched(strokes: list[Stroke], across: float) -> list[Stroke]:
    """Made `across` times as wide (a narrow or a broad hand), about the canvas's centre."""
    return [[(140 + (x - 140) * across, y) for x, y in stroke] for stroke in strokes]


def ways(index: int) -> dict[str, Callable[[list[Stroke]], list[Stroke]]]:
    """The five ways each hand is drawn; `index` (the hand's place) picks its corner, side and stretch, so the hands
    of one digit are not all drawn in the same corner."""
    corner = ((52, 52), (228, 52), (52, 228), (228, 228))[index % 4]
    side = ((90, 150), (190, 130), (140, 95), (150, 190))[index % 4]
    across = (0.6, 1.35, 0.75, 1.2)[index % 4]
    return {
        "fast and sloppy": lambda s: sloppy(fitted(s, 165, (140, 140)), seed=index),
        "small in a corner": lambda s: fitted(s, 72, corner),
        "large, to the edges": lambda s: fitted(s, 262, (140, 140)),
        "off-centre": lambda s: fitted(s, 140, side),
        "narrow or broad": lambda s: fitted(stretched(fitted(s, 160, (140, 140)), across), 160, (140, 140)),
    }


def drawings() -> list[tuple[str, str, int, list[Stroke]]]:
    """(hand, way, digit, strokes): 20 stroke paths per digit."""
    result = []
    per_digit: Counter = Counter()
    for name, (digit, strokes) in HANDS.items():
        for way, draw in ways(per_digit[digit]).items():
            result.append((name, way, digit, draw(strokes)))
        per_digit[digit] += 1
    return result


# Styles the default model reads poorly whatever the preprocessing (README, Known limits; docs/reading-drawings.md,
# "A second held-out set"): a 1 whose long flag makes it a 7 without its crossbar, a 2 drawn as a Z, a 6 whose loop is
# drawn from the left up over its top (a 5 at up to 100 %), an 8 drawn as an hourglass. The others are checked by
# test_e2e_strokes_offline.py.
HARD_HANDS = ("1 with a long flag, no base", "2 like a Z", "6 with a curved back and a big open loop",
              "8 as an hourglass")


def browser_sample() -> list[tuple[str, str, int, list[Stroke]]]:
    """One drawing per digit for the browser test, picked by rule (not by how it is read): the digit's hand
    `digit % 4` drawn the way `digit % 5`."""
    by_digit: dict[int, list[tuple[str, str, int, list[Stroke]]]] = {}
    for drawing in drawings():
        by_digit.setdefault(drawing[2], []).append(drawing)
    return [by_digit[digit][(digit % 4) * 5 + digit % 5] for digit in range(10)]


Drawings = Callable[[], list[tuple[str, str, int, list[Stroke]]]]  # (hand, way, digit, strokes) of a held-out set


def measure(model: nn.Module, unsure_below: float, brushes: tuple[int, ...] = BRUSHES,
            drawn: Drawings = drawings) -> dict[str, Counter]:
    """Counts of each outcome (`heldout_strokes.outcome`): overall ('digits'), per hand, way, brush and digit, and
    the readings not right and sure under 'wrong cases'. `drawn` gives the set's drawings (the third set's too)."""
    from mnist_core.sketch import predict

    counts: dict[str, Counter] = {"digits": Counter(), "wrong cases": Counter()}
    for name, way, digit, strokes in drawn():
        for brush in brushes:
            reading = predict(model, rasterise(strokes, brush), unsure_below)
            box = outcome(reading, digit)
            for key in ("digits", f"digit:{digit}", f"hand:{name}", f"way:{way}", f"brush:{brush}"):
                counts.setdefault(key, Counter())[box] += 1
            if not box.startswith("right & sure"):
                # "thick": the page's thick-strokes note, which tells a brush too wide from a shape misread
                counts["wrong cases"][f"{name}, {way}, brush {brush} -> {box} {reading.digit} "
                                      f"{reading.confidence:.2f}{' thick' if reading.thick_strokes else ''}"] += 1
    return counts


def main(argv: list[str], drawn: Drawings = drawings, brushes: tuple[int, ...] = BRUSHES) -> None:
    """Print how a checkpoint (argv[0], else the default model) reads the set `drawn` at `brushes`."""
    from mnist_core.checkpoints import DEFAULT_CHECKPOINT, load_checkpoint
    from mnist_core.sketch import unsure_threshold

    checkpoint = load_checkpoint(argv[0] if argv else DEFAULT_CHECKPOINT)
    unsure_below = unsure_threshold(checkpoint.metrics)
    print(f"{checkpoint.source}: unsure below {unsure_below:.3f}; {len(drawn())} drawings, brushes {brushes}")
    print_counts(measure(checkpoint.model, unsure_below, brushes, drawn), "wrong cases", "not right and sure:",
                 width=64)


if __name__ == "__main__":
    import sys

    from tests.e2e.strokes import run_script

    sys.exit(run_script(main, sys.argv[1:], "python -m tests.e2e.more_heldout_strokes [CHECKPOINT]"))
