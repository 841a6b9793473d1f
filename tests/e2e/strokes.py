"""Hand-drawn digits as data: pen strokes in the Sketch page's 280×280 canvas coordinates.

Each digit is a list of strokes; each stroke is a polyline (a list of (x, y) points, y pointing down) that the
browser test replays with real mouse events (press, move along the points, release), the way a person draws.
The same strokes are rasterised offline with PIL (`rasterise`) so the shapes can be checked against the model in
milliseconds, without a browser (tests/e2e/test_e2e_strokes_offline.py).

`on_desk` puts a drawing on a sheet of paper in a phone photo of a desk (`DESK_PHOTOS`: as a QA tester took them).

The shapes are deliberately plain — what a person draws with a mouse at a natural size (about 160 px tall, a bit
off-centre), not idealised MNIST glyphs — so a model that reads them is reading handwriting, not a template.
"""

from __future__ import annotations

import io
import math
import random
import sys
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw

Point = tuple[float, float]
Stroke = list[Point]

CANVAS_SIDE = 280
DEFAULT_STROKE_WIDTH = 20  # streamlit-drawable-canvas's default brush; the page may set its own (see the test)
PEN_WIDTHS = (4, 10)  # fine pens on a 1000-px sheet (`on_paper`)


def arc(cx: float, cy: float, rx: float, ry: float, start_deg: float, end_deg: float, step_deg: float = 10) -> Stroke:
    """Points on an ellipse from `start_deg` to `end_deg` (0° = right, 90° = down, as on screen)."""
    count = max(2, int(abs(end_deg - start_deg) / step_deg) + 1)
    return [(cx + rx * math.cos(math.radians(start_deg + (end_deg - start_deg) * i / (count - 1))),
             cy + ry * math.sin(math.radians(start_deg + (end_deg - start_deg) * i / (count - 1))))
            for i in range(count)]


# One entry per digit. Coordinates are canvas pixels; digits span roughly y 55..225 and x 80..205.
DIGIT_STROKES: dict[int, list[Stroke]] = {
    # An upright oval, started at the top and closed with a little overlap, as people draw it.
    0: [arc(140, 140, 52, 80, -100, 270)],
    # A single, slightly slanted down-stroke.
    1: [[(152, 58), (146, 110), (138, 170), (132, 222)]],
    # Hook over the top, diagonal down to the left, flat base.
    2: [arc(140, 105, 48, 45, 200, 360) + arc(140, 105, 48, 45, 0, 40) + [(90, 220), (200, 220)]],
    # Two bumps open to the left, drawn in one go.
    3: [arc(135, 100, 45, 40, -160, 90) + arc(135, 180, 52, 42, -90, 150)],
    # Open four: down-left stroke and cross bar, then the tall right stem.
    4: [[(118, 58), (100, 150), (200, 150)], [(172, 65), (170, 225)]],
    # Flag, short stem, then a big belly open to the left.
    5: [[(195, 60), (115, 60), (108, 125)] + arc(140, 170, 55, 48, -145, 150)],
    # A long curve down the left into a closed loop at the bottom.
    6: [arc(205, 150, 95, 95, -120, -180) + arc(140, 178, 48, 45, 180, 540)],
    # Top bar and a long diagonal.
    7: [[(85, 62), (198, 62), (128, 225)]],
    # Small loop on top of a larger one, each drawn as a closed circle.
    8: [arc(140, 98, 38, 40, 90, 450), arc(140, 178, 46, 45, -90, 270)],
    # A loop on top and a straight tail on its right.
    9: [arc(138, 100, 44, 42, 0, 365), [(182, 100), (176, 225)]],
}

# Other common ways to write some digits (same canvas coordinates): the offline test reads these too, at several
# sizes and brushes, so the model is checked on more than one hand.
DIGIT_VARIANTS: dict[str, tuple[int, list[Stroke]]] = {
    "1 with a flag and a base": (1, [[(115, 85), (148, 55), (148, 222)], [(112, 222), (182, 222)]]),
    "closed 4 in one stroke": (4, [[(170, 225), (170, 58), (92, 160), (205, 160)]]),
    "7 with a crossbar": (7, [[(85, 62), (198, 62), (128, 225)], [(120, 145), (190, 145)]]),
    "9 with a curved tail": (9, [arc(140, 100, 44, 42, 0, 365) + arc(50, 100, 134, 118, 0, 75)]),
    "2 with a loop": (2, [arc(140, 105, 48, 45, 200, 360) + arc(140, 105, 48, 45, 0, 50) + [(100, 208)]
                          + arc(112, 208, 14, 12, 180, 540) + [(200, 208)]]),
    "flat-topped 3": (3, [[(92, 60), (188, 60), (138, 120)] + arc(138, 172, 52, 50, -90, 150)]),
    "6 with a straight back": (6, [[(172, 58), (102, 165)] + arc(140, 180, 42, 40, 180, 540)]),
    # Held-out styles from a QA pass (each also read right at 80-250 px, slanted ±15° and with a wobbly hand):
    "8 in one stroke (figure eight)": (8, [[(140 + 43 * math.sin(2 * t), 140 - 82 * math.cos(t))
                                            for t in (-0.35 + k * (2 * math.pi + 0.6) / 60 for k in range(61))]]),
    "8 with a small top loop": (8, [arc(140, 90, 26, 33, 90, 450), arc(140, 170, 50, 53, -90, 270)]),
    "open-top 4 (parallel uprights)": (4, [[(97, 58), (94, 153), (190, 153)], [(170, 58), (170, 223)]]),
    "5 in two strokes, flag last": (5, [[(104, 61), (97, 133)] + arc(140, 170, 50, 50, -135, 155),
                                        [(104, 61), (186, 58)]]),
    "3 in two strokes": (3, [arc(140, 100, 43, 43, -160, 90), arc(140, 180, 50, 43, -90, 160)]),
    "7 with a serif": (7, [[(90, 81), (90, 58), (190, 58), (133, 223)]]),
}


def scaled(strokes: list[Stroke], factor: float, centre: Point = (140.0, 140.0)) -> list[Stroke]:
    """The drawing made `factor` times as large about `centre` (a smaller or larger hand)."""
    return [[(centre[0] + (x - centre[0]) * factor, centre[1] + (y - centre[1]) * factor) for x, y in stroke]
            for stroke in strokes]


def hand_scribbles(count: int, seed: int = 0) -> list[list[Stroke]]:
    """Zig-zags through 5–12 random points, as a person scribbles to test the app (none of them is a digit)."""
    rng = random.Random(seed)
    scribbles = []
    for _ in range(count):
        centre_x, centre_y, reach = rng.uniform(100, 180), rng.uniform(100, 180), rng.uniform(50, 90)
        scribbles.append([[(centre_x + rng.uniform(-reach, reach), centre_y + rng.uniform(-reach, reach))
                           for _ in range(rng.randint(5, 12))]])
    return scribbles


# Deliberately no digit: one fast zig-zag back and forth across the middle of the canvas, the kind of scribble a
# person makes to test the app. Picked (and re-checked for every new default model by test_e2e_strokes_offline.py)
# so the model stays unsure at every brush width and under small shifts: the page's low-confidence note.
SCRIBBLE: list[Stroke] = [[(74, 71), (153, 56), (171, 166), (190, 98), (181, 167), (146, 57), (153, 176), (96, 122),
                           (100, 97)]]


def densify(stroke: Stroke, spacing: float = 6.0) -> Stroke:
    """Insert points every `spacing` px so a replayed mouse path moves in small steps like a real hand."""
    if len(stroke) < 2:
        return list(stroke)
    points: Stroke = [stroke[0]]
    for (x0, y0), (x1, y1) in zip(stroke, stroke[1:]):
        steps = max(1, int(math.hypot(x1 - x0, y1 - y0) / spacing))
        points.extend((x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps) for i in range(1, steps + 1))
    return points


def rasterise(strokes: list[Stroke], stroke_width: int = DEFAULT_STROKE_WIDTH, side: int = CANVAS_SIDE) -> Image.Image:
    """White ink on black, round caps and joins — what the canvas renders for these strokes."""
    image = Image.new("RGB", (side, side), "black")
    draw = ImageDraw.Draw(image)
    radius = stroke_width / 2
    for stroke in strokes:
        points = densify(stroke, spacing=2.0)
        draw.line(points, fill="white", width=stroke_width, joint="curve")
        for x, y in points:  # round caps and joins everywhere along the path, like the canvas brush
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill="white")
    return image


def on_paper(strokes: list[Stroke], pen_width: int, side: int = 1000) -> Image.Image:
    """The drawing made with a fine pen on a sheet photographed at `side` px: dark ink on light grey paper, the pen
    far thinner relative to the digit than MNIST's (4 px on a 600-px digit is a 0.13-px line once shrunk to 20×20)."""
    white_on_black = rasterise(scaled(strokes, side / CANVAS_SIDE, centre=(0.0, 0.0)), pen_width, side).convert("L")
    return white_on_black.point(lambda level: 235 - level * 215 // 255)  # paper 235, ink 20


def on_desk(strokes: list[Stroke], sheet: tuple[float, float, float, float], turn: float = 0.0,
            pen_width: int = 12, size: tuple[int, int] = (1200, 900)) -> Image.Image:
    """A phone photo of the drawing written with a pen (ink 40) on a sheet of grey paper (225) lying on a dark desk
    (50). `sheet` is the paper's box (left, top, right, bottom): running off the picture on three sides, it leaves
    the desk as a strip along the fourth. The paper is turned `turn` degrees about its centre, the digit with it; the
    drawing's 280-px canvas is 500 px wide, centred on the sheet."""
    left, top, right, bottom = sheet
    centre = ((left + right) / 2, (top + bottom) / 2)
    cos, sin = math.cos(math.radians(turn)), math.sin(math.radians(turn))

    def placed(x: float, y: float) -> Point:  # a point of the sheet (or the canvas, centred on it), turned with it
        dx, dy = x - centre[0], y - centre[1]
        return centre[0] + dx * cos - dy * sin, centre[1] + dx * sin + dy * cos

    factor = 500 / CANVAS_SIDE
    on_sheet = [[placed(centre[0] + (x - CANVAS_SIDE / 2) * factor, centre[1] + (y - CANVAS_SIDE / 2) * factor)
                 for x, y in stroke] for stroke in strokes]
    paper = Image.new("L", size, 0)
    ImageDraw.Draw(paper).polygon([placed(x, y) for x, y in ((left, top), (right, top), (right, bottom),
                                                              (left, bottom))], fill=255)
    pen = rasterise(on_sheet, pen_width, max(size)).convert("L").crop((0, 0, *size))
    photo = Image.new("L", size, 50)
    photo.paste(225, mask=paper)
    photo.paste(40, mask=pen)
    return photo


# `on_desk` photos as a QA tester took them: the sheet's box and its turn in degrees.
DESK_PHOTOS: dict[str, tuple[tuple[float, float, float, float], float]] = {
    "200-px desk strip on the right": ((-100, -100, 1000, 1000), 0),
    "110-px desk strip at the bottom": ((-100, -100, 1300, 790), 0),
    "sheet on a desk": ((290, 130, 990, 730), 0),
    "sheet on a desk, turned 8°": ((290, 130, 990, 730), 8),
}


def as_jpeg(image: Image.Image) -> bytes:
    """The picture as a phone sends it: a JPEG file (its edges ring and blur)."""
    jpeg = io.BytesIO()
    image.convert("RGB").save(jpeg, "JPEG", quality=85)
    return jpeg.getvalue()


def bounds_ok(strokes: list[Stroke], margin: float = 10.0, side: int = CANVAS_SIDE) -> bool:
    """True when every point lies inside the canvas with `margin` px to spare (a stroke off the canvas is lost)."""
    return all(margin <= x <= side - margin and margin <= y <= side - margin for stroke in strokes for x, y in stroke)


USAGE = "python -m tests.e2e.strokes [CHECKPOINT] | --examples FOLDER"


def main(argv: list[str]) -> None:
    """`python -m tests.e2e.strokes [CHECKPOINT]`: how a model reads these drawings (the README's figures);
    `--examples FOLDER` writes the README's pictures for `predict` instead."""
    from mnist_core.checkpoints import DEFAULT_CHECKPOINT, load_checkpoint
    from mnist_core.errors import StudioError
    from mnist_core.sketch import open_image, predict, unsure_threshold

    if "--examples" in argv:
        folders = [arg for arg in argv if arg != "--examples"]
        if len(folders) != 1:
            raise StudioError(f"--examples needs one folder to write the pictures into: {USAGE}")
        write_examples(folders[0])
        return
    checkpoint = load_checkpoint(argv[0] if argv else DEFAULT_CHECKPOINT)
    unsure_below = unsure_threshold(checkpoint.metrics)
    drawings = [*DIGIT_STROKES.items(), *DIGIT_VARIANTS.values()]
    digits = [(predict(checkpoint.model, rasterise(scaled(strokes, size), width), unsure_below), digit)
              for digit, strokes in drawings for size in (0.6, 1.0, 1.25) for width in (14, 20, 26)]
    on_paper_digits = [(predict(checkpoint.model, on_paper(strokes, width), unsure_below), digit)
                       for digit, strokes in drawings for width in PEN_WIDTHS]
    scribbles = [predict(checkpoint.model, rasterise(scribble, width), unsure_below)
                 for scribble in hand_scribbles(100, seed=1) for width in (14, 28)]
    photos = [(predict(checkpoint.model, open_image(as_jpeg(on_desk(strokes, sheet, turn))), unsure_below), digit)
              for digit, strokes in DIGIT_STROKES.items() for sheet, turn in DESK_PHOTOS.values()]
    print(f"{checkpoint.source}: unsure below {unsure_below:.3f}; digits read right and sure: "
          f"{sum(r.digit == d and not r.unsure for r, d in digits)} of {len(digits)}; fine-pen digits on paper: "
          f"{sum(r.digit == d and not r.unsure for r, d in on_paper_digits)} of {len(on_paper_digits)}; "
          f"scribbles called unsure: {sum(r.unsure for r in scribbles)} of {len(scribbles)}; photos of paper on a "
          f"desk: {sum(r.digit == d and not r.unsure for r, d in photos)} of {len(photos)}")


def write_examples(folder: str) -> None:
    """`python -m tests.e2e.strokes --examples examples`: the README's pictures for `predict` — a 3 drawn as on the
    Sketch canvas, a 7 in a phone photo of paper on a desk, and test image #1 of MNIST (a 2)."""
    from mnist_core.data import load_mnist
    from mnist_core.errors import StudioError

    target = Path(folder)
    if target.exists() and not target.is_dir():
        raise StudioError(f"{folder} is a file, not a folder: give --examples a folder to write the pictures into")
    target.mkdir(exist_ok=True)
    rasterise(DIGIT_STROKES[3]).save(target / "drawn-3.png", optimize=True)
    sheet, turn = DESK_PHOTOS["sheet on a desk, turned 8°"]
    (target / "photo-7.jpg").write_bytes(as_jpeg(on_desk(DIGIT_STROKES[7], sheet, turn)))
    test_image = load_mnist(download=False, with_train=False).test.images[1]
    Image.fromarray(test_image.numpy()).save(target / "mnist-test-1.png")


def run_script(main: Callable[[list[str]], None], argv: list[str], usage: str, options: tuple[str, ...] = ()) -> int:
    """Run a measurement script's `main(argv)` as a command and return its exit code, as `python -m mnist_core`
    does: `-h`/`--help` prints `usage` (0); an unknown option, a second path, a checkpoint that does not load or
    MNIST missing is one line on stderr (2), never a traceback; Ctrl-C prints `interrupted` (130). `options` are
    the flags `main` takes besides one path."""
    if any(arg in ("-h", "--help") for arg in argv):
        print(f"usage: {usage}")
        return 0
    unknown = [arg for arg in argv if arg.startswith("-") and arg not in options]
    paths = [arg for arg in argv if arg not in options]
    if unknown or len(paths) > 1:
        problem = (f"unknown option {unknown[0]!r} (a file whose name starts with '-': write it as ./NAME)" if unknown
                   else f"one path at most, got {len(paths)}")
        print(f"error: {problem}; usage: {usage}", file=sys.stderr)
        return 2
    from mnist_core.errors import StudioError, os_reason

    try:
        main(argv)
    except StudioError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: {error.filename or 'a file'}: {os_reason(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main, sys.argv[1:], USAGE, options=("--examples",)))
