"""Sketch preprocessing: any picture of a digit -> the 28×28 MNIST-style image the model sees."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from cli_support import PILLOW_MODES, SIXTEEN_BIT_MODES, digit_image, in_mode, png_bytes
from mnist_core.data import normalize
from mnist_core.models import build_model
from mnist_core.sketch import (FILLED_INK, LOW_CONFIDENCE, MNIST_STROKE_WIDTH, THICK_STROKES, THIN_STROKES,
                               UNSURE_LIMITS, SketchPrediction, background_levels, canvas_has_strokes, filled_ink,
                               gray_levels, ink_map, open_image, percentages_apart, predict, stroke_width,
                               thicken_strokes, thin_strokes, to_mnist, to_model_input, unsure_threshold)
from tests.e2e.strokes import (DIGIT_STROKES, DIGIT_VARIANTS, as_jpeg, hand_scribbles, on_desk, on_paper, rasterise,
                              scaled)


def _centre_of_mass(image28: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(image28.shape)
    return float((ys * image28).sum() / image28.sum()), float((xs * image28).sum() / image28.sum())


def test_a_drawn_digit_becomes_an_mnist_style_image() -> None:
    image28 = to_mnist(digit_image("ring", size=200))
    assert image28.shape == (28, 28) and image28.dtype == np.float32
    assert image28.min() >= 0 and image28.max() <= 1 and image28.max() > 0.9
    rows, cols = np.nonzero(image28 > 0.05)
    assert max(np.ptp(rows), np.ptp(cols)) + 1 in (20, 21, 22)  # fitted into 20×20 (+ resampling fringe)
    centre_y, centre_x = _centre_of_mass(image28)
    assert abs(centre_y - 14) <= 1 and abs(centre_x - 14) <= 1  # centred on the centre of mass, like MNIST


def test_a_thin_digit_keeps_its_aspect_ratio() -> None:
    image28 = to_mnist(digit_image("bar", size=200))
    rows, cols = np.nonzero(image28 > 0.05)
    assert np.ptp(rows) + 1 >= 19 and np.ptp(cols) + 1 <= 6  # a "1" stays tall and thin, not stretched to a square


def test_either_polarity_gives_the_same_image() -> None:
    light_on_dark = to_mnist(digit_image("ring", ink=255, background=0))
    dark_on_light = to_mnist(digit_image("ring", ink=0, background=255))
    np.testing.assert_allclose(light_on_dark, dark_on_light, atol=1e-5)


def _rgba(ink: tuple[int, int, int, int], invisible: tuple[int, int, int, int]) -> Image.Image:
    mask = digit_image("ring")
    image = Image.new("RGBA", mask.size, invisible)
    image.paste(Image.new("RGBA", mask.size, ink), mask=mask)
    return image


@pytest.mark.parametrize("ink, invisible", [
    ((255, 255, 255, 255), (0, 0, 0, 0)),        # the canvas: white strokes on a transparent black
    ((0, 0, 0, 255), (255, 255, 255, 0)),         # dark ink on a transparent white
    ((0, 0, 0, 255), (0, 0, 0, 0)),               # dark ink on a transparent black: only alpha tells them apart
    ((255, 255, 255, 255), (255, 255, 255, 0)),   # white ink on a transparent white
    ((200, 30, 30, 255), (0, 0, 0, 0)),            # coloured ink
])
def test_transparent_pictures_read_the_opaque_strokes_as_ink(ink: tuple, invisible: tuple) -> None:
    expected = to_mnist(digit_image("ring"))
    image28 = to_mnist(_rgba(ink, invisible))
    assert image28 is not None
    np.testing.assert_allclose(image28, expected, atol=0.02)


def test_canvas_arrays_are_read_like_images() -> None:
    """The Sketch page passes the canvas as a uint8 RGBA array [H, W, 4]."""
    canvas = np.asarray(_rgba((255, 255, 255, 255), (0, 0, 0, 0)))
    np.testing.assert_allclose(to_mnist(canvas), to_mnist(digit_image("ring")), atol=0.02)
    gray = np.asarray(digit_image("ring"), dtype=np.float32) / 255.0
    np.testing.assert_allclose(to_mnist(gray), to_mnist(digit_image("ring")), atol=0.02)


@pytest.mark.parametrize("convert", [
    lambda image: image.convert("P"),
    lambda image: image.convert("LA"),
    lambda image: image.convert("RGB"),
    lambda image: image.convert("1"),
    lambda image: Image.fromarray(np.asarray(image).astype(np.uint16) * 257),  # 16-bit
    lambda image: Image.fromarray(np.asarray(image).astype(np.uint16) * 16),   # 16-bit file, 12-bit scanner range
], ids=["palette", "gray+alpha", "rgb", "bilevel", "16-bit", "12-bit"])
def test_every_pixel_format_reads_the_same_digit(convert) -> None:
    original = digit_image("ring")
    reopened = open_image(png_bytes(convert(original)))
    np.testing.assert_allclose(to_mnist(reopened), to_mnist(original), atol=0.05)


@pytest.mark.parametrize("mode", PILLOW_MODES)
def test_every_pillow_mode_reads_the_same_digit(mode: str) -> None:
    """A CIELab TIFF and a palette+alpha one read as "no ink" (LAB's a band was taken for alpha, PA's palette indices
    were averaged while shrinking); a big-endian 16-bit one was shrunk with its bytes swapped; bilevel and palette
    ones were shrunk by picking pixels."""
    original = digit_image("ring", size=300)  # larger than the working size: shrunk, as most pictures are
    picture = in_mode(original, mode)
    assert picture.mode == mode
    np.testing.assert_allclose(to_mnist(picture), to_mnist(original), atol=0.05)


@pytest.mark.parametrize("mode", ["RGBA", "PA", "RGBa", "LA", "La"])
def test_transparency_reads_alike_in_every_mode_with_alpha(mode: str) -> None:
    """Dark ink on a transparent white: only alpha says where the ink is, so a mode read without it finds none."""
    transparent = _rgba((0, 0, 0, 255), (255, 255, 255, 0))
    picture = transparent.convert("LA" if mode == "La" else mode).convert(mode)
    np.testing.assert_allclose(to_mnist(picture), to_mnist(digit_image("ring")), atol=0.05)


def _wide_range(gray: Image.Image, kind: str) -> Image.Image:
    """`gray` as 32-bit whole numbers just above -2**31, or as floats spanning -3e38…3e38."""
    levels = np.asarray(gray, dtype=np.int64)
    if kind == "32-bit far from zero":
        return Image.fromarray((levels - 2**31 + 5).astype(np.int32), "I")
    return Image.fromarray(((levels - 127.5) * 2.6e36).astype(np.float32), "F")


@pytest.mark.parametrize("kind, file_format", [("I;16", "PNG"), ("I;16B", "TIFF"), ("I;16L", "TIFF"),
                                               ("32-bit far from zero", "TIFF"), ("float -3e38…3e38", "TIFF")])
def test_16_and_32_bit_and_float_files_of_any_size_read_like_8_bit_ones(kind: str, file_format: str) -> None:
    """Pillow's quick shrinking step failed on 16-bit pictures from ~560 px up ("image has wrong mode", an internal
    error), and summed 32-bit ones past -2**31 (from ~1000 px) and float ones past 3.4e38: garbage, NaN."""
    original = digit_image("ring", size=1000)
    picture = in_mode(original, kind) if kind in SIXTEEN_BIT_MODES else _wide_range(original, kind)
    buffer = io.BytesIO()
    picture.save(buffer, file_format)
    reopened = open_image(buffer.getvalue())
    assert reopened.mode == ("I;16" if kind == "I;16L" else picture.mode)  # a TIFF keeps big-endian pixels
    np.testing.assert_allclose(to_mnist(reopened), to_mnist(original), atol=0.05)


@pytest.mark.parametrize("image", [
    Image.new("L", (280, 280), 0), Image.new("L", (280, 280), 255), Image.new("RGBA", (280, 280), (0, 0, 0, 0)),
    Image.new("L", (1, 1), 0), Image.new("L", (1, 1), 255), Image.new("RGB", (50, 50), (128, 128, 128)),
], ids=["black", "white", "transparent", "1x1-black", "1x1-white", "gray"])
def test_pictures_without_ink_are_empty_not_classified(image: Image.Image) -> None:
    assert to_mnist(image) is None
    prediction = predict(build_model("seed-net"), image)
    assert prediction.empty and prediction.digit is None and prediction.probabilities is None


def test_a_speck_of_dust_is_empty() -> None:
    image = Image.new("L", (280, 280), 0)
    image.putpixel((140, 140), 255)
    assert to_mnist(image) is None


def test_predict_gives_a_digit_and_probabilities_summing_to_one() -> None:
    torch.manual_seed(0)
    model = build_model("seed-net")
    prediction = predict(model, digit_image("ring"))
    assert isinstance(prediction, SketchPrediction) and not prediction.empty
    assert len(prediction.probabilities) == 10 and sum(prediction.probabilities) == pytest.approx(1, abs=1e-5)
    assert prediction.digit == int(np.argmax(prediction.probabilities))
    assert prediction.confidence == max(prediction.probabilities)
    assert prediction.low_confidence == (prediction.confidence < LOW_CONFIDENCE)
    assert prediction.image28.shape == (28, 28)


def test_stroke_width_of_a_bar_is_its_width() -> None:
    bar = np.zeros((60, 60), dtype=np.float32)
    bar[10:50, 20:26] = 1.0  # 6 wide, 40 long
    assert stroke_width(bar) == pytest.approx(6 * 40 * 2 / (2 * 40 + 2 * 6))  # 2·area/outline, ends included
    assert stroke_width(np.zeros((5, 5), dtype=np.float32)) == 0.0


@pytest.mark.parametrize("brush", [24, 30])
def test_thick_brush_strokes_are_thinned_towards_mnist_s_pen(brush: int) -> None:
    small_eight = [[(x * 0.45 + 77, y * 0.45 + 77) for x, y in stroke] for stroke in DIGIT_STROKES[8]]  # ~75 px tall
    drawn = np.asarray(rasterise(small_eight, brush).convert("L"), dtype=np.float32) / 255
    rows, cols = np.nonzero(drawn > 0.5)
    as_drawn = stroke_width(drawn) * 20 / max(np.ptp(rows) + 1, np.ptp(cols) + 1)  # in the 20-px box, unthinned
    assert stroke_width(to_mnist(rasterise(small_eight, brush))) < as_drawn - 1  # noticeably thinner than drawn
    assert stroke_width(to_mnist(rasterise(small_eight, brush))) < 2.5 * MNIST_STROKE_WIDTH


def test_thinning_leaves_mnist_sized_strokes_and_coarse_images_alone() -> None:
    crop = np.zeros((20, 14), dtype=np.float32)
    crop[:, 5:8] = 1.0  # a 3-px "1" at MNIST's own resolution: eroding it would break it
    assert thin_strokes(crop) is crop
    thin_pen = to_mnist(rasterise(DIGIT_STROKES[3], 10))  # a thin brush on a large digit: already MNIST-like
    assert stroke_width(thin_pen) < 2 * MNIST_STROKE_WIDTH


@pytest.mark.parametrize("pen_width", [3, 8])
def test_a_fine_pen_on_a_large_sheet_is_redrawn_with_mnist_s_pen(pen_width: int) -> None:
    image28 = to_mnist(on_paper(DIGIT_STROKES[4], pen_width))  # shrunk as it is, a faint line 0.1–0.3 px wide
    assert THIN_STROKES * MNIST_STROKE_WIDTH <= stroke_width(image28) <= 1.5 * MNIST_STROKE_WIDTH
    assert image28.max() == pytest.approx(1.0, abs=0.05)  # full-strength ink, not a faint hairline


def test_thickening_leaves_mnist_like_strokes_alone_and_widens_a_hairline_both_ways() -> None:
    normal = np.zeros((100, 60), dtype=np.float32)
    normal[:, 25:35] = 1.0  # 10 px on a 100-px digit: MNIST's 2 px in the 20-px box
    assert thicken_strokes(normal) is normal
    hairline = np.zeros((100, 3), dtype=np.float32)
    hairline[:, 1] = 0.5  # a "1" drawn with a fine pen: one faint column
    widened = thicken_strokes(hairline)
    assert stroke_width(widened) == pytest.approx(10, abs=2)  # to MNIST's pen at this size, on both sides
    assert widened.shape[1] > hairline.shape[1] and widened.max() == 1.0
    pencil_and_pen = np.zeros((100, 60), dtype=np.float32)
    pencil_and_pen[:, 10], pencil_and_pen[:, 50] = 1.0, 0.25  # a dark stroke and a light pencil one
    redrawn = thicken_strokes(pencil_and_pen)
    assert redrawn[:, 50 + 4].min() == redrawn[:, 10 + 4].min() == 1.0  # both redrawn with the same full-strength pen


def test_noise_textures_and_gradients_are_not_read_as_digits() -> None:
    model = build_model("seed-net")
    rng = np.random.default_rng(0)
    pictures = {"noise": rng.integers(0, 256, (280, 280), dtype=np.uint8),
                "gradient": np.tile(np.linspace(0, 255, 280).astype(np.uint8), (280, 1)),
                "checkerboard": ((np.indices((280, 280)).sum(0) // 20) % 2 * 255).astype(np.uint8)}
    for name, pixels in pictures.items():
        reading = predict(model, Image.fromarray(pixels), unsure_below=0.0)  # however sure the model may be
        assert reading.empty or (reading.mostly_ink and reading.unsure), name
    assert predict(model, Image.fromarray(pictures["gradient"])).empty  # shading, taken for uneven paper
    digit = predict(model, rasterise(DIGIT_STROKES[8], 26), unsure_below=0.0)  # a bold 8 is still a digit
    assert not digit.mostly_ink and not digit.unsure


@pytest.mark.parametrize("lighting", ["gradient", "corner shadow"])
def test_a_phone_photo_with_uneven_lighting_reads_like_a_scan(lighting: str) -> None:
    """Paper lit unevenly: against one background level, its brighter or darker part would count as ink."""
    height, width = 900, 1200
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    paper = 185 + 40 * xs / width - 25 * ys / height
    if lighting == "corner shadow":
        paper -= 70 * np.clip(1 - np.hypot(xs, ys - height) / (0.7 * width), 0, 1)
    pen = np.asarray(on_paper(DIGIT_STROKES[4], 14, side=900).convert("L"), dtype=np.float32)
    pen = np.pad(pen, ((0, 0), (150, 150)), constant_values=235)  # 900×1200, the digit in the middle
    photo = Image.fromarray((paper * pen / 235).clip(0, 255).astype(np.uint8))
    image28 = to_mnist(photo)
    flat = to_mnist(on_paper(DIGIT_STROKES[4], 14, side=900))
    assert np.abs(image28 - flat).mean() < 0.03  # the same digit as on evenly lit paper, no paper taken for ink


def test_a_small_digit_on_paper_shaded_from_one_side_reads_as_on_even_paper() -> None:
    """A phone photo (3000×2250, with paper grain) of a 400-px digit written with a fine pen, the paper lit 24 levels
    brighter on one side: too gentle to count as uneven lighting, but the faint shrunk strokes were no darker than
    the paper's darker side, which became ink (a 0 and a 7 read as a 4 or a 7 from the paper's edges)."""
    width, height = 3000, 2250
    grain = np.random.default_rng(0).normal(0, 4, (height, width))

    def photo(digit: int, shading: float) -> Image.Image:
        pen = rasterise(scaled(DIGIT_STROKES[digit], 400 / 170, centre=(0, 0)), 8, 700).convert("L")
        paper = 215 + shading * (np.arange(width) / width - 0.5)[None, :] + grain
        picture = Image.fromarray(paper.clip(0, 255).astype(np.uint8))
        picture.paste(45, (1150, 800), mask=pen)
        return open_image(as_jpeg(picture))

    for digit in (0, 7):
        assert np.abs(to_mnist(photo(digit, 24)) - to_mnist(photo(digit, 0))).mean() < 0.03, digit


@pytest.mark.parametrize("lighting", ["vignette", "soft shadow"])
def test_paper_darker_towards_the_corners_than_its_edge_shows_is_not_ink(lighting: str) -> None:
    """A phone photo (3000×2250, with paper grain) darkened 40 levels towards its corners (a lens's vignette) or by
    a soft shadow in a corner: along the picture's edge the paper looked evenly lit, so it was measured against one
    level (or a plane), and its lighter middle or the shadow became ink: a 350-px fine-pen digit was read as a 0, an
    8 or a 6 (0 of 10 right). The paper is now measured block by block, from each block's lighter quarter, so a
    marker's thick strokes are not taken for paper either."""
    width, height = 3000, 2250
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    shading = {"flat": 0 * xs, "vignette": -80 * ((xs / width - 0.5) ** 2 + (ys / height - 0.5) ** 2),
               "soft shadow": -35 * np.clip(1 - np.hypot(xs - width, ys - height) / 1800, 0, 1)}
    grain = np.random.default_rng(0).normal(0, 4, (height, width)).astype(np.float32)

    def photo(digit: int, light: str, side: int, pen: int) -> Image.Image:
        ink = rasterise(scaled(DIGIT_STROKES[digit], side / 170, centre=(0, 0)), pen, int(side * 1.65)).convert("L")
        picture = Image.fromarray((215 + shading[light] + grain).clip(0, 255).astype(np.uint8))
        picture.paste(45, ((width - ink.width) // 2, (height - ink.height) // 2), mask=ink)
        return open_image(as_jpeg(picture))

    for digit in (0, 3, 7):
        fine_pen = to_mnist(photo(digit, lighting, 350, 7))
        assert np.abs(fine_pen - to_mnist(photo(digit, "flat", 350, 7))).mean() < 0.03, digit
        marker = to_mnist(photo(digit, lighting, 1300, 150))  # strokes a third of the shading's block wide
        assert np.abs(marker - to_mnist(photo(digit, "flat", 1300, 150))).mean() < 0.008, digit


def test_a_blob_of_ink_is_flagged_as_thick_strokes() -> None:
    model = build_model("seed-net")
    tiny_zero = [[(x * 0.3 + 98, y * 0.3 + 98) for x, y in stroke] for stroke in DIGIT_STROKES[0]]  # ~50 px tall
    blob = predict(model, rasterise(tiny_zero, 40), unsure_below=0.0)
    assert blob.thick_strokes and blob.unsure  # its hole is filled in: whatever it reads, not to be trusted
    assert not predict(model, rasterise(DIGIT_STROKES[0], 20)).thick_strokes


def test_gaps_filled_by_a_wide_brush_are_flagged_even_when_thinning_narrows_the_strokes() -> None:
    """A small 5 (about 85 px tall) with the widest brush: thinning brings its mean stroke width under THICK_STROKES,
    but the opening of its belly was filled with ink and stays a solid patch (it was read as an 8 at 98 %)."""
    model = build_model("seed-net")
    small_five = predict(model, rasterise(scaled(DIGIT_STROKES[5], 0.5), 40), unsure_below=0.0)
    assert small_five.stroke_width < THICK_STROKES  # the old rule alone missed it
    assert small_five.filled_ink > FILLED_INK and small_five.thick_strokes and small_five.unsure
    for digit, strokes in DIGIT_STROKES.items():  # natural sizes and brushes: strokes only, no solid patches
        for size, width in ((0.6, 20), (1.0, 26), (1.25, 14)):
            reading = predict(model, rasterise(scaled(strokes, size), width))
            assert reading.filled_ink < FILLED_INK / 2 and not reading.thick_strokes, (digit, size, width)
    assert filled_ink(np.ones((60, 12), dtype=np.float32)) == 0.0  # a bar two pens wide (at 60 px) has no core
    assert filled_ink(np.ones((60, 60), dtype=np.float32)) > 0.5  # a filled square is all core


@pytest.mark.parametrize("metrics, expected", [
    ({"confidence_floor": 0.83}, 0.83),
    ({}, LOW_CONFIDENCE),  # a checkpoint from before the floor was measured
    ({"confidence_floor": float("nan")}, LOW_CONFIDENCE),
    ({"confidence_floor": "0.9"}, LOW_CONFIDENCE),  # a foreign file's odd value is ignored, not trusted
    ({"confidence_floor": 1.0}, UNSURE_LIMITS[1]),
    ({"confidence_floor": 0.01}, UNSURE_LIMITS[0]),
])
def test_each_model_has_its_own_unsure_threshold(metrics: dict, expected: float) -> None:
    assert unsure_threshold(metrics) == pytest.approx(expected)


def test_low_confidence_follows_the_threshold_given() -> None:
    torch.manual_seed(0)
    model = build_model("seed-net")
    reading = predict(model, digit_image("ring"))
    assert predict(model, digit_image("ring"), unsure_below=reading.confidence + 0.01).low_confidence
    assert not predict(model, digit_image("ring"), unsure_below=reading.confidence - 0.01).low_confidence
    assert not predict(model, Image.new("L", (50, 50)), unsure_below=0.99).low_confidence  # empty: not "unsure"


def test_model_input_is_normalised_exactly_like_training() -> None:
    image28 = to_mnist(digit_image("ring"))
    as_uint8 = torch.from_numpy(np.round(image28 * 255).astype(np.uint8))
    torch.testing.assert_close(to_model_input(np.round(image28 * 255) / 255), normalize(as_uint8[None]))


def test_large_jpeg_photos_are_shrunk_while_decoding() -> None:
    photo = digit_image("ring", size=3000, ink=20, background=235).convert("RGB")
    jpeg = io.BytesIO()
    photo.save(jpeg, "JPEG", quality=90)
    opened = open_image(jpeg.getvalue())
    assert max(opened.size) <= 1024  # decoded at a fraction of the size: bounded memory and time
    np.testing.assert_allclose(to_mnist(opened), to_mnist(digit_image("ring")), atol=0.15)


def test_a_sideways_phone_photo_is_turned_upright() -> None:
    upright = digit_image("bar", size=200).convert("RGB")
    sideways = upright.rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: "rotate 90° clockwise to display"
    jpeg = io.BytesIO()
    sideways.save(jpeg, "JPEG", exif=exif)
    image28 = to_mnist(open_image(jpeg.getvalue()))
    rows, cols = np.nonzero(image28 > 0.2)
    assert np.ptp(rows) > 3 * np.ptp(cols)  # a tall bar again, not a lying one


def test_strokes_cut_off_by_the_canvas_edge_are_not_taken_for_uneven_lighting() -> None:
    """A 0 drawn nearly canvas-tall with the widest brush runs off the top and bottom: that edge ink once made the
    canvas look unevenly lit, and the per-block paper levels took its thick strokes for paper."""
    large_zero = rasterise(scaled(DIGIT_STROKES[0], 1.6), 40)
    assert np.all(background_levels(np.asarray(large_zero.convert("L"), dtype=np.float32) / 255) == 0.0)  # black
    image28 = to_mnist(large_zero)
    assert image28 is not None and 1.0 < stroke_width(image28) < 2.5 * MNIST_STROKE_WIDTH  # a ring, not hollowed
    assert image28[12:16, 12:16].max() < 0.2  # its hole is still empty


def test_strokes_running_along_the_canvas_edge_leave_it_one_level() -> None:
    """A stroke along an edge of the canvas, just inside it, leaves its blurred edge on the picture's edge: a few
    edge pixels a little above black. The canvas is not lit, so that must not count as paper shaded from block to
    block, which took the strokes for paper: a 7 with its bar along the top edge, widest brush, read as an 8."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        brush, inset = int(rng.choice([8, 14, 20, 30, 40])), rng.uniform(0, 25)
        start, end = rng.uniform(0, 280, 2)
        stroke = [(start, inset), (end, inset), (140, 200)]  # a bar along the top, then a stem: a 7, say
        for turns in range(4):  # along each of the four edges
            canvas = rasterise([stroke], brush).rotate(90 * turns)
            canvas.thumbnail((140, 140), Image.Resampling.BILINEAR)  # the working size
            assert background_levels(gray_levels(canvas)) == 0.0, (brush, inset, start, end, turns)


def test_a_canvas_painted_all_over_has_strokes_though_it_reads_as_no_ink() -> None:
    transparent = np.zeros((280, 280, 4), dtype=np.uint8)
    painted = np.full((280, 280, 4), 255, dtype=np.uint8)
    emptied = np.zeros((280, 280, 4), dtype=np.uint8)
    emptied[:, :, 3] = 255  # the canvas sends its black background along, opaque: after its bin or an undo to nothing
    assert not canvas_has_strokes(transparent) and not canvas_has_strokes(None) and not canvas_has_strokes(emptied)
    assert canvas_has_strokes(painted)
    assert predict(build_model("seed-net"), painted).empty  # one flat colour: nothing to classify


def _uploaded_photo(digit: int, sheet: tuple, turn: float = 0.0) -> Image.Image:
    """`on_desk`'s photo of the digit, as the Sketch page opens it from a phone's JPEG."""
    return open_image(as_jpeg(on_desk(DIGIT_STROKES[digit], sheet, turn)))


def _paper_only(sheet: tuple) -> tuple:
    """A sheet with the same centre (so the digit lies where it lies on `sheet`), too large for any desk to show."""
    centre_x, centre_y = (sheet[0] + sheet[2]) / 2, (sheet[1] + sheet[3]) / 2
    return centre_x - 3000, centre_y - 3000, centre_x + 3000, centre_y + 3000


@pytest.mark.parametrize("sheet", [(-100, -100, 1000, 1000), (-100, -100, 1160, 1000), (-100, -100, 1300, 750),
                                   (-100, -100, 1050, 780)],
                         ids=["200-px strip right", "40-px strip right", "150-px strip at the bottom", "right and bottom"])
def test_a_desk_strip_along_the_photo_s_edge_is_not_ink(sheet: tuple) -> None:
    """A dark strip of desk along a side was ink (against the paper at the edge) and the largest shape: a 200-px
    strip made every digit a 1 at 100 %, narrower ones or one along the bottom wrong readings."""
    for digit in (3, 7):
        image28 = to_mnist(_uploaded_photo(digit, sheet))
        on_paper_only = to_mnist(_uploaded_photo(digit, _paper_only(sheet)))
        assert np.abs(image28 - on_paper_only).mean() < 0.03, digit


@pytest.mark.parametrize("turn", [0, 8])
def test_a_sheet_lying_on_a_desk_is_read_from_what_is_written_on_it(turn: float) -> None:
    """Desk all round the sheet: the edge's level was the desk's, so the sheet was ink and the digit holes in it."""
    sheet = (290, 130, 990, 730)  # 40 % of the picture
    for digit in (3, 7, 9):
        on_the_desk = to_mnist(_uploaded_photo(digit, sheet, turn))
        on_paper_only = to_mnist(_uploaded_photo(digit, _paper_only(sheet), turn))
        assert np.abs(on_the_desk - on_paper_only).mean() < 0.03, digit


def _distance_from_background(image: Image.Image) -> np.ndarray:
    """The ink map as it was before desks and sheets were looked for (for a picture not larger than the working
    size): each pixel's distance from the background level, of the largest."""
    gray = gray_levels(image)
    ink = np.abs(gray - background_levels(gray))
    return ink / ink.max()


def test_canvas_drawings_are_neither_a_desk_strip_nor_a_sheet() -> None:
    """Canvas drawings touch its edges, fill squares and scribble heavily: none of it may be taken for a desk strip
    (a 1 from top to bottom, a 7 with its bar along the top edge) or a sheet (a filled square holds no marks)."""
    side = 140  # the working size: the canvas as the preprocessing sees it
    drawings = {"1 from top to bottom": [[(140, -20), (140, 300)]],
                "7 along the top edge": [[(10, 10), (270, 10), (140, 270)]],
                "filled square": [[(40, 40 + 4 * row), (240, 40 + 4 * row)] for row in range(51)],
                **{f"scribble {index}": scribble for index, scribble in enumerate(hand_scribbles(5, seed=3))}}
    for name, strokes in drawings.items():
        for brush in (8, 20, 40):
            canvas = rasterise(scaled(strokes, side / 280, centre=(0, 0)), brush * side // 280, side)
            np.testing.assert_allclose(ink_map(canvas), _distance_from_background(canvas), atol=1e-6,
                                       err_msg=f"{name}, brush {brush}")


@pytest.mark.parametrize("size, box", [((8000, 200), (3920, 15, 4080, 185)), ((200, 6000), (20, 2910, 180, 3090))],
                         ids=["8000x200", "200x6000"])
def test_a_digit_on_a_long_strip_keeps_its_detail(size: tuple, box: tuple) -> None:
    """Shrunk by its long side to 140×4 (or 5×140), the strip left the 7 a few pixels: an 8 at 100 %."""
    strip = Image.new("L", size, 255)
    left, top, right, bottom = box
    seven = rasterise(DIGIT_STROKES[7], 16).convert("L").resize((right - left, bottom - top))
    strip.paste(0, (left, top), mask=seven)
    alone = Image.new("L", (280, 280), 255)
    alone.paste(0, (60, 60), mask=seven)
    assert np.abs(to_mnist(strip) - to_mnist(alone)).mean() < 0.03


def test_a_stroke_on_a_very_long_strip_is_not_shrunk_away() -> None:
    """A 20000×200 strip shrunk to 140×1: each pixel the mean of 143×200, and a 160-px stroke faded to under the
    ink threshold ("no ink")."""
    strip = Image.new("L", (20000, 200), 255)
    ImageDraw.Draw(strip).line([(10000, 20), (10000, 180)], fill=0, width=16)
    image28 = to_mnist(strip)
    assert image28 is not None
    rows, cols = np.nonzero(image28 > 0.2)
    assert np.ptp(rows) > 3 * np.ptp(cols)  # a tall bar, as drawn


@pytest.mark.parametrize("brush", [8, 20, 40])
def test_a_dot_is_too_small_to_be_a_digit(brush: int) -> None:
    """One click on the canvas was an 8 or a 0 at 100 %: a dot, and a dash not much longer than the pen is wide,
    are flagged (and unsure, however sure the model is); a short 1, several pens long, and a small digit drawn with
    a wide brush (a blob as round as a dot, but a third of the canvas wide) are not."""
    model = build_model("seed-net")
    for stroke in ([(140, 140), (141, 140)], [(70, 50), (70, 50)], [(140, 140), (140 + brush // 4, 140)]):
        mark = predict(model, rasterise([stroke], brush), unsure_below=0.0)
        assert mark.tiny_mark and mark.unsure, stroke
    short_one = predict(model, rasterise([[(140, 140 - 1.5 * brush), (140, 140 + 1.5 * brush)]], brush), 0.0)
    assert not short_one.tiny_mark
    small_eight = predict(model, rasterise(scaled(DIGIT_STROKES[8], 60 / 170), brush), unsure_below=0.0)
    assert not small_eight.tiny_mark


@pytest.mark.parametrize(("confidence", "threshold", "shown"), [
    (0.926, 0.929, ("92.6 %", "92.9 %")),  # unsure: it read "93 %" and "unsure below 93 %"
    (0.9289, 0.9291, ("92.89 %", "92.91 %")),
    (0.196, 0.2, ("19.6 %", "20.0 %")),
    (0.31, 0.929, ("31 %", "93 %")),  # apart already: as before
    (0.9295, 0.929, ("93 %", "93 %")),  # sure, and 93 is not below 93
    (1.0, 0.929, ("100 %", "93 %")),
])
def test_a_confidence_under_the_threshold_never_reads_as_equal_to_it(confidence: float, threshold: float,
                                                                      shown: tuple[str, str]) -> None:
    assert percentages_apart(confidence, threshold) == shown


def side_by_side(first: int, second: int) -> list:
    """The two digits written as a number, each at 45 % of the canvas's digit, 110 px apart."""
    return ([[(x - 55, y) for x, y in stroke] for stroke in scaled(DIGIT_STROKES[first], 0.45)]
            + [[(x + 55, y) for x, y in stroke] for stroke in scaled(DIGIT_STROKES[second], 0.45)])


@pytest.mark.parametrize("brush", [12, 20])
def test_several_digits_side_by_side_are_unsure_and_one_digit_in_pieces_is_not(brush: int) -> None:
    """A number was read as one digit, and sure: "10" and "50" as a 6 at 99–100 % (25 of the 100 two-digit numbers,
    at these two brushes, with the default model)."""
    model = build_model("seed-net")
    for first, second in [(1, 0), (5, 0), (4, 2), (1, 1), (6, 8)]:
        number = predict(model, rasterise(side_by_side(first, second), brush), unsure_below=0.0)
        assert number.several_digits and number.unsure, (first, second)
    # Digits drawn in several strokes (a 4 whose parts meet only at the bar, a 5 with its flag apart), slanted or not.
    for strokes in [*DIGIT_STROKES.values(), *(strokes for _, strokes in DIGIT_VARIANTS.values())]:
        for factor in (0.5, 1.0):
            reading = predict(model, rasterise(scaled(strokes, factor), brush), unsure_below=0.0)
            assert not reading.several_digits, strokes

