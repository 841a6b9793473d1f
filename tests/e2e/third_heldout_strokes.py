"""A third set of held-out drawings, written by a different hand for a later audit before measuring (not tuned on):
three hands per digit, none copied from strokes.py, heldout_strokes.py or more_heldout_strokes.py (a 7 with a
crossbar, a 1 with a flag and base, open-top and closed 4s, 9s with a straight stem, a 2 with a loop, 6s started from
the top and from the loop's left, an 8 as two circles and as one figure-eight stroke, a flat-topped 3, a 5 in one
stroke…). Each is drawn five ways (natural size off-centre with a wobbly hand, small ~80 px off-centre, large
~250 px, slanted +15° and −15°) and read at five brushes of the slider's range.

`python -m tests.e2e.third_heldout_strokes [CHECKPOINT]` prints how the model reads them (right and sure, right but
unsure, wrong and sure, wrong and unsure) per digit, hand, way and brush, and lists the readings not right and sure.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from tests.e2e.heldout_strokes import fitted, shaky, slanted
from tests.e2e.more_heldout_strokes import main as report, measure as measure_hands
from tests.e2e.strokes import Stroke, arc

if TYPE_CHECKING:  # torch and the app's library load only when something is measured
    from torch import nn

BRUSHES = (10, 16, 20, 26, 34)  # the slider's range (8–40) with its default (20); not the other sets' brushes


def _figure_eight(top: float, bottom: float, half_width: float, turns: float = 1.08) -> Stroke:
    """One stroke of an 8 started at the top right: down-left through the middle, round the bottom loop, back up
    through the middle and round the top loop, a little past the start (`turns` of a full loop)."""
    steps = 64
    middle = (top + bottom) / 2
    points = []
    for k in range(steps + 1):
        t = 0.45 + 2 * math.pi * turns * k / steps
        # y goes top -> bottom -> top once; x swings right/left twice (two loops) through the middle
        reach = (middle - top) if math.cos(t) > 0 else (bottom - middle)
        points.append((140 - half_width * math.sin(2 * t), middle - reach * math.cos(t)))
    return points


def _egg(cx: float, cy: float, rx_top: float, rx_bottom: float, ry: float, start_deg: float, end_deg: float) -> Stroke:
    """A 0 narrower at the top than at the bottom, like an egg standing up (0° = right, 90° = down)."""
    count = int(abs(end_deg - start_deg) / 8) + 1
    points = []
    for k in range(count):
        angle = math.radians(start_deg + (end_deg - start_deg) * k / (count - 1))
        rx = rx_top + (rx_bottom - rx_top) * (1 + math.sin(angle)) / 2  # widening smoothly downwards
        points.append((cx + rx * math.cos(angle), cy + ry * math.sin(angle)))
    return points


# name -> (digit, strokes); canvas coordinates, drawn about 170 px tall (the ways of drawing rescale and move them).
HANDS: dict[str, tuple[int, list[Stroke]]] = {
    # 0
    "0 tall oval, clockwise from the top right": (0, [arc(140, 140, 50, 84, -60, 305)]),
    "0 egg, narrow at the top, anticlockwise": (0, [_egg(140, 142, 40, 56, 82, -95, -455)]),
    "0 with its tail crossing inside at the top": (0, [arc(142, 140, 56, 80, -110, 250) + [(128, 76), (136, 88)]]),
    # 1
    "1 with a flag and a base": (1, [[(116, 84), (150, 56), (150, 224)], [(110, 226), (190, 226)]]),
    "1 plain, its stem bowing a little": (1, [[(146, 56), (142, 110), (141, 170), (144, 226)]]),
    "1 with a short flag only": (1, [[(126, 76), (152, 56), (149, 226)]]),
    # 2
    "2 with a loop at the base": (2, [arc(140, 100, 48, 44, 195, 375) + [(178, 126), (106, 204)]
                                      + arc(96, 212, 12, 12, -40, 280) + [(112, 220), (204, 218)]]),
    "2 with a round hook, flat base": (2, [arc(138, 98, 50, 42, 185, 395) + [(94, 222), (198, 222)]]),
    "2 like a swan, curved neck": (2, [arc(136, 96, 46, 40, 200, 360) + arc(86, 110, 100, 110, 0, 60)
                                       + [(200, 214)]]),
    # 3
    "3 flat-topped": (3, [[(90, 58), (186, 58), (132, 120)] + arc(134, 172, 54, 50, -95, 155)]),
    "3 round, one stroke": (3, [arc(138, 98, 48, 40, -165, 95) + arc(138, 178, 56, 46, -95, 165)]),
    "3 with a small top and a big bottom": (3, [arc(144, 82, 32, 26, -160, 90) + arc(140, 162, 60, 58, -90, 160)]),
    # 4
    "4 open-top, two strokes": (4, [[(110, 56), (98, 152), (206, 150)], [(172, 86), (170, 228)]]),
    "4 closed, stem first": (4, [[(158, 56), (158, 228)], [(158, 56), (88, 164), (204, 164)]]),
    "4 open-top, slanted arm, long stem": (4, [[(118, 58), (92, 140), (196, 140)], [(168, 58), (172, 228)]]),
    # 5
    "5 in one stroke": (5, [[(194, 58), (114, 58), (108, 126)] + arc(138, 170, 54, 50, -145, 150)]),
    "5 flag first, then stem and belly": (5, [[(190, 60), (112, 62)], [(112, 62), (104, 128)]
                                              + arc(136, 172, 52, 48, -150, 155)]),
    "5 with an angular belly": (5, [[(188, 58), (116, 58), (110, 124), (168, 122), (186, 168), (166, 218),
                                      (104, 212)]]),
    # 6
    "6 from the top, one stroke": (6, [[(182, 56), (144, 84), (114, 130)] + arc(142, 184, 42, 40, 200, 555)]),
    "6 started at the loop's left, back drawn up last": (6, [arc(140, 186, 44, 40, 180, 540)
                                                             + arc(210, 170, 114, 114, 180, 232)]),
    "6 with a big round loop": (6, [arc(196, 146, 86, 90, -115, -180) + arc(144, 170, 54, 56, 180, 530)]),
    # 7
    "7 with a crossbar": (7, [[(88, 62), (194, 60), (126, 226)], [(112, 146), (180, 144)]]),
    "7 plain, stem steepening as it falls": (7, [[(90, 60), (192, 58), (160, 120), (138, 172), (130, 226)]]),
    "7 with a hooked top-left": (7, [[(92, 84), (98, 60), (192, 62), (142, 150), (128, 226)]]),
    # 8
    "8 as two circles": (8, [arc(140, 98, 40, 40, -90, 270), arc(140, 180, 48, 44, -90, 270)]),
    "8 as one figure-eight stroke": (8, [_figure_eight(56, 224, 42)]),
    "8 as an S and a stroke back up": (8, [arc(140, 98, 40, 40, -30, -270) + arc(140, 180, 46, 42, -90, 160),
                                           [(100, 192), (140, 138), (176, 84)]]),
    # 9
    "9 with a straight stem": (9, [arc(134, 98, 44, 40, 0, 362), [(178, 96), (178, 226)]]),
    "9 in one stroke, loop anticlockwise": (9, [arc(136, 100, 44, 42, 0, -360) + [(178, 118), (174, 226)]]),
    "9 with a slanted stem": (9, [arc(144, 96, 42, 38, 10, 370), [(184, 104), (158, 228)]]),
}


def ways(index: int) -> dict[str, Callable[[list[Stroke]], list[Stroke]]]:
    """The five ways each hand is drawn; `index` (the hand's place in HANDS) picks where on the canvas it goes and
    seeds its wobble, so no two hands share a place or a wobble."""
    natural = ((120, 150), (160, 130), (132, 124), (150, 156))[index % 4]
    small = ((70, 80), (200, 90), (90, 200), (196, 190), (140, 70), (80, 150))[index % 6]
    return {
        "natural, off-centre, wobbly": lambda s: shaky(fitted(s, 170, natural), amplitude=2.0, seed=index),
        "small (80 px), off-centre": lambda s: shaky(fitted(s, 80, small), amplitude=1.0, seed=index + 100),
        "large (250 px)": lambda s: fitted(s, 250, (140, 140)),
        "slanted +15°": lambda s: shaky(slanted(fitted(s, 165, (138, 142)), 15), amplitude=1.5, seed=index + 200),
        "slanted -15°": lambda s: slanted(fitted(s, 165, (142, 138)), -15),
    }


def drawings() -> list[tuple[str, str, int, list[Stroke]]]:
    """(hand, way, digit, strokes): 15 stroke paths per digit."""
    return [(name, way, digit, draw(strokes))
            for index, (name, (digit, strokes)) in enumerate(HANDS.items())
            for way, draw in ways(index).items()]


def browser_sample() -> list[tuple[str, str, int, list[Stroke]]]:
    """One drawing per hand for the browser, picked by rule (not by how it is read): hand number i drawn the way
    i % 5, so each way is drawn six times and every digit three ways."""
    every, per_hand = drawings(), len(ways(0))
    return [every[hand * per_hand + hand % per_hand] for hand in range(len(HANDS))]


def browser_test_sample() -> list[tuple[str, str, int, list[Stroke]]]:
    """One drawing per digit of `browser_sample` (its hand `digit % 3`), for the browser test: every way is among
    them, and ten drawings keep the test within seconds."""
    sample = browser_sample()
    return [sample[3 * digit + digit % 3] for digit in range(10)]


def measure(model: nn.Module, unsure_below: float, brushes: tuple[int, ...] = BRUSHES) -> dict[str, Counter]:
    """Counts of each outcome, as for the second set (`more_heldout_strokes.measure`): overall ('digits'), per digit,
    hand, way and brush, and the readings not right and sure under 'wrong cases'."""
    return measure_hands(model, unsure_below, brushes, drawings)


def main(argv: list[str]) -> None:
    report(argv, drawings, BRUSHES)


if __name__ == "__main__":
    import sys

    from tests.e2e.strokes import run_script

    sys.exit(run_script(main, sys.argv[1:], "python -m tests.e2e.third_heldout_strokes [CHECKPOINT]"))
