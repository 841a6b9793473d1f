"""Issue 6, images: every odd file given to `predict` (or the Sketch upload) gives a prediction or one clear message,
in bounded memory and time."""

from __future__ import annotations

import gzip
import io
import json
import re
import struct
import time
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from cli_support import UNREACHABLE_CASES, assert_one_line_error, digit_image, png_bytes, unreachable_case
from mnist_core.checkpoints import checkpoint_bytes, checkpoint_payload, write_checkpoint
from mnist_core.cli import main
from mnist_core.errors import ImageError
from mnist_core.models import build_model
from mnist_core.sketch import MAX_FILE_BYTES, open_image, predict, to_mnist
from tests.e2e.strokes import DIGIT_STROKES, rasterise


def huge_blank_png(width: int, height: int, rows_of_pixels: int | None = None) -> bytes:
    """A PNG of width×height black pixels built row by row: a few hundred KB that decode to width×height bytes (a
    "decompression bomb"). With `rows_of_pixels`, only that many rows are stored: a file that merely claims the size."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = b"\0" * (width + 1)  # filter byte + one gray byte per pixel
    rows = height if rows_of_pixels is None else rows_of_pixels
    pixels = b"".join(compressor.compress(row) for _ in range(rows)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def ten_thousand_square() -> bytes:
    return huge_blank_png(10_000, 10_000)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_the_huge_png_is_a_real_image(ten_thousand_square: bytes) -> None:
    """Guards the guard: Pillow reads it as a 10000×10000 image, so refusing it below is our limit at work."""
    with Image.open(io.BytesIO(ten_thousand_square)) as image:
        assert image.size == (10_000, 10_000)
        assert image.crop((0, 0, 100, 100)).getextrema() == (0, 0)
    assert len(ten_thousand_square) < 1_000_000


def test_a_ten_thousand_pixel_square_is_refused_from_its_header(ten_thousand_square: bytes) -> None:
    with pytest.raises(ImageError, match="is 10000×10000 pixels; the limit is 40 megapixels.*crop or shrink it"):
        open_image(ten_thousand_square)


def test_an_image_beyond_pillows_own_bomb_limit_is_the_same_clear_message() -> None:
    with pytest.raises(ImageError, match="has too many pixels; the limit is 40 megapixels"):
        open_image(huge_blank_png(20_000, 20_000, rows_of_pixels=1))


# How an iPhone's HEIC photo begins (an ISO media file of brand "heic"); Pillow cannot decode HEIC without a plugin.
HEIC_START = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64


def _saved(image: Image.Image, kind: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, kind, **options)
    return buffer.getvalue()


SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>'
SVG_MESSAGE = "is an SVG drawing (vector graphics, which MNIST Studio does not draw): export it as PNG"


def _zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _checkpoint_file() -> bytes:
    return checkpoint_bytes(checkpoint_payload("seed-net", {}, build_model("seed-net"), {}, [], {}))


def _bad_images() -> dict[str, tuple[bytes, str]]:
    """name -> (file content, words the message must contain)."""
    whole = png_bytes(digit_image())
    return {
        "zero bytes": (b"", "is empty (0 bytes)"),
        "not an image": (b"MZ\x90\x00 a program\n", "is not an image MNIST Studio can read"),
        # These two were "not an image MNIST Studio can read: use PNG, JPEG, …", of a file named .png.
        "pdf": (_saved(digit_image(), "PDF"), "is a PDF document, not a picture: export the page with the digit as "
                                              "PNG or JPEG"),
        "heic photo": (HEIC_START, "is a HEIC/HEIF photo (the iPhone's own format), which MNIST Studio cannot read: "
                                   "export or share it as JPEG"),
        # It was "not an image MNIST Studio can read: use PNG, …", to someone who had sent their pictures as one zip.
        "a zip file": (_zipped({"digit.png": whole}), "is a zip archive (or a document packed as one), not a picture: "
                                                     "unzip it and give one picture from it"),
        # It said "… is not an image MNIST Studio can read: use PNG, …", and nothing of where a model file goes.
        "a model file": (_checkpoint_file(), "is a PyTorch model file, not a picture: upload it on the app's Evaluate "
                                             "page and make it the active model (on the command line, give it to "
                                             "--checkpoint)"),
        "truncated png": (whole[: len(whole) // 2], "is damaged or truncated"),
        # These three were read from their first frame only (a blank first frame: "empty image"), or called "not an
        # image MNIST Studio can read: use PNG, …" for a PNG or an SVG.
        **{f"animated {kind}": (_two_frames(kind), "has more than one frame (an animation or a multi-page file), and "
                                                   "which one holds the digit cannot be told: save that frame")
           for kind in ("GIF", "PNG", "WebP", "TIFF")},
        "png with a broken header checksum": (whole[:29] + bytes([whole[29] ^ 0xFF]) + whole[30:],
                                              "is a damaged PNG file: it could not be decoded; use a good copy"),
        "svg": (SVG, SVG_MESSAGE),
        "svg with a doctype": (b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "svg11.dtd" [ <!ENTITY ns "x"> ]>\n'
                               + SVG.split(b"\n")[1], SVG_MESSAGE),  # with entities, as Illustrator writes it
        # These were "not an image MNIST Studio can read": the <svg tag was looked for in the first 1 KB only, and never
        # in a gzipped file.
        "svg after a long comment": (SVG.replace(b"?>", b"?>\n<!-- " + b"licence text " * 200 + b"-->"), SVG_MESSAGE),
        "gzipped svg (.svgz)": (gzip.compress(SVG), SVG_MESSAGE),
        "gzipped text": (gzip.compress(b"not a drawing"), "is not an image MNIST Studio can read"),
        # It was `internal error (TypeError: Missing dimensions)`, and the other pictures of the call lost their result.
        "tiff whose second page lies past its end": (_tiff_with_a_lost_second_page(),
                                                     "is damaged or truncated: it could not be decoded"),
    }


def _tiff_of_tiny_pages(count: int) -> bytes:
    """A TIFF of `count` 2×2 gray pages (90 bytes each), all sharing one strip of pixels."""
    entries = 7
    page_size = 2 + 12 * entries + 4
    strip = 8 + count * page_size
    tiff = bytearray(b"II*\x00" + struct.pack("<I", 8))
    for page in range(count):
        tiff += struct.pack("<H", entries)
        for tag, value in ((256, 2), (257, 2), (258, 8), (262, 1), (278, 2)):  # width, height, bits, black is 0, rows
            tiff += struct.pack("<HHIHH", tag, 3, 1, value, 0)
        tiff += struct.pack("<HHII", 273, 4, 1, strip) + struct.pack("<HHII", 279, 4, 1, 4)  # the strip, its length
        tiff += struct.pack("<I", 8 + (page + 1) * page_size if page + 1 < count else 0)
    return bytes(tiff + b"\x00\xff\x80\x40")


@pytest.mark.parametrize("kind", ["TIFF", "GIF"])
def test_a_file_of_very_many_frames_is_refused_at_once(kind: str) -> None:
    """Counting the frames took 15 s for a 2.7-MB TIFF of 30,000 pages (time growing with the square of their number:
    25 MB holds 270,000) and 11 s for a 24-MB GIF of 1.6 million frames."""
    if kind == "TIFF":
        raw = _tiff_of_tiny_pages(30_000)
    else:
        frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 2, 2, 0) + b"\x02\x02\x44\x01\x00"  # 2×2, LZW
        raw = b"GIF89a" + struct.pack("<HHBBB", 2, 2, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff" + frame * 1_600_000 + b";"
    started = time.perf_counter()
    with pytest.raises(ImageError, match="has more than one frame"):
        open_image(raw, name="many.tif")
    assert time.perf_counter() - started < 2.0


def _tiff_with_a_lost_second_page() -> bytes:
    """An LZW TIFF of a digit whose header says a second page follows, at an offset past the end of the file."""
    buffer = io.BytesIO()
    digit_image().save(buffer, "TIFF", compression="tiff_lzw")
    tiff = bytearray(buffer.getvalue())
    first_page = struct.unpack("<I", tiff[4:8])[0]
    entries = struct.unpack("<H", tiff[first_page:first_page + 2])[0]
    next_page = first_page + 2 + 12 * entries  # where the first page's header says where the next one is
    tiff[next_page:next_page + 4] = struct.pack("<I", len(tiff) + 1000)
    return bytes(tiff)


def _two_frames(kind: str) -> bytes:
    """An animation (or a two-page TIFF) whose first frame is blank and whose second holds the digit."""
    buffer = io.BytesIO()
    digit = digit_image()
    Image.new("L", digit.size).save(buffer, kind, save_all=True, append_images=[digit])
    return buffer.getvalue()


def _seven() -> Image.Image:
    """A 7 in dark ink on light paper: not the same turned a quarter (the EXIF cases) or mirrored."""
    return rasterise(DIGIT_STROKES[7], 16).convert("L").point(lambda level: 235 - level * 215 // 255)


def _sideways(orientation: int) -> bytes:
    """A phone photo taken with the phone held sideways: the pixels stored turned a quarter, and the EXIF orientation
    tag (6 or 8) saying how to turn them upright."""
    turn = Image.Transpose.ROTATE_90 if orientation == 6 else Image.Transpose.ROTATE_270
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _saved(_seven().convert("RGB").transpose(turn), "JPEG", exif=exif.tobytes())


def _other_formats() -> dict[str, bytes]:
    """Files as phones, scanners and editors write them (name -> content), each of the same 7."""
    seven = _seven()
    alpha = Image.merge("LA", [Image.new("L", seven.size, 0), ImageOps.invert(seven)])  # black ink where opaque
    return {
        "cmyk.jpg": _saved(seven.convert("CMYK"), "JPEG"),  # as print software writes it
        "progressive.jpg": _saved(seven.convert("RGB"), "JPEG", progressive=True),
        "sideways-6.jpg": _sideways(6),
        "sideways-8.jpg": _sideways(8),
        "lossy.webp": _saved(seven.convert("RGB"), "WEBP", quality=80),
        "gray-alpha.png": _saved(alpha, "PNG"),
        "sixteen-bit.png": _saved(Image.fromarray(np.asarray(seven).astype(np.uint16) * 257), "PNG"),
        "float.tif": _saved(Image.fromarray(np.asarray(seven, dtype=np.float32) / 255, "F"), "TIFF"),
        "jpeg-named.png": _saved(seven.convert("RGB"), "JPEG"),  # a JPEG renamed .png
        "one-frame-animation.gif": _saved(seven.convert("P"), "GIF", save_all=True),
    }


@pytest.mark.parametrize("name", list(_other_formats()))
def test_other_formats_are_read_as_the_picture_they_show(name: str) -> None:
    """Each file reads as the 7 it shows, upright (what the model reads: `to_mnist`), within JPEG's loss."""
    expected = to_mnist(_seven())
    seen = to_mnist(open_image(_other_formats()[name], name=name))
    assert seen is not None and np.abs(seen - expected).mean() < 0.03, name
    if name.startswith("sideways"):  # the check can fail: the stored pixels, not turned, are another picture
        stored = Image.open(io.BytesIO(_other_formats()[name]))
        assert np.abs(to_mnist(stored) - expected).mean() > 0.1


def test_other_formats_are_read_by_predict(checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    paths = []
    for name, content in _other_formats().items():
        paths.append(tmp_path / name)
        paths[-1].write_bytes(content)
    assert main(["predict", "--checkpoint", str(checkpoint), *map(str, paths), "--json"]) == 0
    results = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert [r["digit"] in range(10) for r in results] == [True] * len(paths), results
    assert len({r["digit"] for r in results}) == 1, results  # the same picture to the model, whatever the file


def test_a_phone_photo_with_its_preview_frames_is_still_read(tmp_path: Path) -> None:
    """A phone's MPO JPEG holds the photo again at other sizes: its first frame is the photo, so it is not refused
    as an animation."""
    path = tmp_path / "photo.jpg"
    digit = digit_image().convert("RGB")
    digit.save(path, "MPO", save_all=True, append_images=[digit.resize((40, 40))])
    image = open_image(path)
    assert image.format == "MPO" and image.n_frames == 2


@pytest.mark.parametrize("case", list(_bad_images()))
def test_a_bad_image_is_one_clear_message(case: str, tmp_path: Path) -> None:
    raw, words = _bad_images()[case]
    path = tmp_path / "digit.png"
    path.write_bytes(raw)
    with pytest.raises(ImageError, match=re.escape(words)):
        open_image(path)
    with pytest.raises(ImageError, match=re.escape(f"upload.png {words}")):
        open_image(raw, name="upload.png")


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_a_float_picture_with_non_finite_pixels_is_one_clear_message(value: float, tmp_path: Path, checkpoint: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    """A float TIFF drawn in ±inf or NaN: it read as "no ink" after a RuntimeWarning on stderr (a second line)."""
    pixels = np.zeros((28, 28), np.float32)
    pixels[5:22, 12:16] = value  # a "1" in non-finite ink
    path = tmp_path / "scan.tiff"
    Image.fromarray(pixels, "F").save(path)
    code = main(["predict", "--checkpoint", str(checkpoint), str(path)])
    assert_one_line_error(code, capsys.readouterr().err, f"{path} has NaN or infinite pixel values")


def test_a_picture_with_a_corrupt_exif_tag_is_read_without_warnings_on_stderr(
        tmp_path: Path, checkpoint: Path, capsys: pytest.CaptureFixture) -> None:
    """Pillow skips a tag whose data runs past the EXIF block with a UserWarning: two lines naming
    PIL/TiffImagePlugin.py on stderr, beside a good reading."""
    picture = digit_image().convert("RGB")
    exif = picture.getexif()
    exif[0x010E] = "a description " * 20  # ImageDescription, stored after the tag table
    path = tmp_path / "photo.jpg"
    picture.save(path, exif=exif.tobytes()[:-150])  # the description's data cut short
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pytest would otherwise collect the warning and hide it
        code = main(["predict", "--checkpoint", str(checkpoint), "--json", str(path)])
    captured = capsys.readouterr()
    assert code == 0 and captured.err == ""
    assert json.loads(captured.out)[0]["digit"] is not None


def test_a_file_over_the_size_limit_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "scan.png"
    with open(path, "wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(ImageError, match="larger than 25 MB: use a smaller image"):
        open_image(path)


def test_a_folder_or_missing_path_is_a_clear_message(tmp_path: Path) -> None:
    """A folder of pictures given whole (`predict scans/`) was told to "check the path", which was right."""
    with pytest.raises(ImageError, match=re.escape(f"{tmp_path} is a folder, not a file: give the pictures in it "
                                                   f"instead, such as {tmp_path}/*.png")):
        open_image(tmp_path)
    with pytest.raises(ImageError, match=re.escape(f"{tmp_path / 'nope.png'} does not exist: check the path")):
        open_image(tmp_path / "nope.png")


@pytest.mark.parametrize("case", UNREACHABLE_CASES)
def test_a_picture_that_cannot_be_reached_names_the_path_and_the_reason(case: str, checkpoint: Path, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture) -> None:
    path, words = unreachable_case(tmp_path, "digit.png", case)
    with pytest.raises(ImageError, match=re.escape(f"{path} {words}")):
        open_image(path)
    assert_one_line_error(main(["predict", "--checkpoint", str(checkpoint), str(path)]), capsys.readouterr().err,
                          str(path), words)


def test_postscript_is_refused_without_running_ghostscript(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An EPS is a program: Pillow would hand it to Ghostscript, where `{} loop` never ends (and worse exists).
    from PIL import EpsImagePlugin

    ran = []
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *args, **kwargs: ran.append(args))
    path = tmp_path / "digit.eps"
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\n{} loop\n%%EOF\n")
    for source in (path, path.read_bytes()):
        with pytest.raises(ImageError, match="is PostScript \\(EPS\\), which would have to be run as a program"):
            open_image(source)
    assert not ran


# --- The CLI: `predict` on a mix of good and bad files ---

@pytest.fixture()
def checkpoint(tmp_path: Path) -> Path:
    return write_checkpoint(checkpoint_payload("seed-net", {}, build_model("seed-net"), {}, [], {}),
                            tmp_path / "model.pt")


def _odd_but_readable_images() -> dict[str, Image.Image]:
    ring = digit_image("ring")
    rgba = Image.new("RGBA", ring.size, (0, 0, 0, 0))
    rgba.paste(Image.new("RGBA", ring.size, (255, 255, 255, 255)), mask=ring)
    return {
        "16-bit.png": Image.fromarray(np.asarray(ring).astype(np.uint16) * 257),
        "palette.png": ring.convert("P"),
        "transparent.png": rgba,
        "dark-on-light.png": digit_image("ring", ink=0, background=255),
        "light-on-dark.jpg": ring.convert("RGB"),
        "tiny-8x8.png": Image.fromarray(np.pad(np.full((6, 1), 255, dtype=np.uint8), ((1, 1), (3, 4)))),
    }


def test_predict_reads_every_format_and_polarity(checkpoint: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    paths = []
    for name, image in _odd_but_readable_images().items():
        paths.append(tmp_path / name)
        image.save(paths[-1])
    assert main(["predict", "--checkpoint", str(checkpoint), *map(str, paths), "--json"]) == 0
    results = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert [r["path"] for r in results] == list(map(str, paths))
    for result in results:
        assert result["digit"] in range(10), result
        assert sum(result["probabilities"]) == pytest.approx(1, abs=1e-4)
    # The same drawing in any format or polarity is the same picture to the model.
    ring_results = [r for r in results if "tiny" not in r["path"]]
    assert len({r["digit"] for r in ring_results}) == 1


@pytest.mark.parametrize("image", [Image.new("L", (280, 280), 255), Image.new("L", (280, 280), 0),
                                   Image.new("L", (1, 1), 0), Image.new("RGBA", (64, 64), (0, 0, 0, 0))],
                         ids=["all white", "all black", "1x1", "fully transparent"])
def test_predict_reports_an_empty_image_as_empty(image: Image.Image, checkpoint: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "blank.png"
    image.save(path)
    assert main(["predict", "--checkpoint", str(checkpoint), str(path), "--json"]) == 0
    [result] = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert result["digit"] is None and result["probabilities"] is None
    assert result["note"] == "empty image: no ink found, nothing to classify"


@pytest.mark.parametrize("case", list(_bad_images()))
def test_predict_reports_a_bad_image_on_one_line(case: str, checkpoint: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    raw, words = _bad_images()[case]
    path = tmp_path / "bad.png"
    path.write_bytes(raw)
    assert_one_line_error(main(["predict", "--checkpoint", str(checkpoint), str(path)]), capsys.readouterr().err,
                          str(path), words)


def test_predict_refuses_the_huge_image_and_still_reads_the_good_one(checkpoint: Path, tmp_path: Path,
                                                                    ten_thousand_square: bytes,
                                                                    capsys: pytest.CaptureFixture) -> None:
    huge, good = tmp_path / "huge.png", tmp_path / "good.png"
    huge.write_bytes(ten_thousand_square)
    digit_image().save(good)
    code = main(["predict", "--checkpoint", str(checkpoint), str(huge), str(good), "--json"])
    captured = capsys.readouterr()
    assert_one_line_error(code, captured.err, "10000×10000 pixels")
    huge_result, good_result = json.loads(captured.out.splitlines()[-1])
    assert huge_result["digit"] is None and "10000×10000" in huge_result["error"]
    assert good_result["digit"] in range(10)


def test_predict_reads_the_good_pictures_beside_a_damaged_tiff(checkpoint: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    """The damaged TIFF was an internal error (exit 1) that took the results of the call's other pictures with it,
    as did the 600-px 16-bit PNG ("image has wrong mode")."""
    good, damaged, deep = tmp_path / "good.png", tmp_path / "damaged.tif", tmp_path / "deep.png"
    digit_image().save(good)
    damaged.write_bytes(_tiff_with_a_lost_second_page())
    Image.fromarray(np.asarray(digit_image("ring", size=600)).astype(np.uint16) * 257).save(deep)
    code = main(["predict", "--checkpoint", str(checkpoint), str(good), str(damaged), str(deep), "--json"])
    captured = capsys.readouterr()
    assert_one_line_error(code, captured.err, f"{damaged} is damaged or truncated: it could not be decoded")
    good_result, damaged_result, deep_result = json.loads(captured.out.splitlines()[-1])
    assert good_result["digit"] in range(10) and deep_result["digit"] in range(10)
    assert damaged_result["digit"] is None and "could not be decoded" in damaged_result["error"]


def test_an_empty_canvas_array_is_empty_not_classified() -> None:
    """What the Sketch page passes before anything is drawn: a transparent 280×280 RGBA array."""
    assert predict(build_model("seed-net"), np.zeros((280, 280, 4), dtype=np.uint8)).empty


@pytest.mark.parametrize("pixels", [[[128, 127], [142, 190]], [[255, 0, 255]] * 6, [[0, 255], [255, 255]]])
def test_a_picture_a_few_pixels_across_is_read_not_a_traceback(pixels: list[list[int]]) -> None:
    """Pictures a few pixels across that look like a sheet on a desk have no inside once eroded: 15 % of random ones up
    to 15 px (a 6×6 PNG of a 1 among them) raised an IndexError from a NaN level."""
    reading = predict(build_model("seed-net"), Image.fromarray(np.array(pixels, dtype=np.uint8), "L"))
    assert reading.empty or reading.digit in range(10)
