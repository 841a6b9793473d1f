"""Turn any picture of a digit into what the model was trained on, the way MNIST itself was made:
ink bounding box -> fit into 20×20 keeping the aspect ratio -> paste into 28×28 so the centre of mass is centred.
One step MNIST did not need: strokes are brought to the width of MNIST's pen relative to the digit's size. Much
wider strokes (a wide brush, a small digit) are thinned, because a model trained on MNIST reads a blob of thick ink
as an 8 or a 0; much thinner ones (a fine pen on a large sheet) are thickened, because shrunk to 20×20 they would
fade to faint hairlines that it reads as a 1.

Accepts RGBA/RGB/gray/palette/16-bit images of any polarity (white-on-black like the canvas, or dark ink on paper).
Used by the Sketch page and the CLI's `predict` command. An image without ink is reported as empty, never classified.
"""

from __future__ import annotations

import io
import math
import os
import re
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import nn

from mnist_core.data import MEAN, STD
from mnist_core.errors import FOLDER_NOT_FILE, MB, ImageError, path_status

MAX_IMAGE_PIXELS = 40_000_000  # ~6300×6300; decoding more would cost hundreds of MB
MAX_FILE_BYTES = 25 * MB
WORK_SIDE = 140  # pictures are shrunk to this before any per-pixel work: bounded time and memory, and the
#                  sketch latency target (the result is 20×20, so 140 px still leaves 7× detail)
INK_THRESHOLD = 0.2  # of full contrast: below this a pixel is background/noise
# Uneven lighting (photos): when the picture's edge spans more than UNEVEN_LIGHT (10th to 90th percentile, of full
# range), or the paper's level from block to block more than UNEVEN_PAPER, the background is estimated per block of
# LIGHT_BLOCK working-size pixels instead of as one level. Flat paper with grain and JPEG noise spans ~0.06 along
# the edge; the canvas 0. A lens's vignette or a soft shadow darkens the paper's corners or middle more than its
# edge shows (blocks of 28 px followed a vignette too coarsely: its corners became ink).
UNEVEN_LIGHT = 0.1
UNEVEN_PAPER = 0.04
LIGHT_BLOCK = 14
# A block's paper level is its PAPER_SHARE percentile on the paper's side (dark ink on light paper: the lighter
# quarter), which is paper while ink covers less than three quarters of the block: with blocks this small, the median
# took a marker's thick strokes for paper. Which side is the paper's: the side of the fewer pixels further than
# INK_GAP from the edge's level.
PAPER_SHARE = 75
INK_GAP = 0.25
# Edge pixels further than this (of full range) from the edge's median are ink running off the picture (a large
# digit drawn to the canvas's edge), not paper: they do not count as uneven lighting. A shadow darkens paper less.
EDGE_INK_GAP = 0.5
FLAT_PAPER = 0.01  # of full range, across the picture: a paper shading less than this is taken as one level
MIN_INK_PIXELS = 4  # fewer inked pixels (at the working size) than this = empty
MNIST_BOX = 20  # px: MNIST fitted each digit into 20×20 of its 28×28 frame
STRIP_SIDE = 4000  # a long strip's working size keeps more of its length (see `_working_side`): at most 80,000 px
LOW_CONFIDENCE = 0.6  # below this top probability a reading is unsure, for a model that does not say its own
UNSURE_LIMITS = (0.2, 0.99)  # a model's own threshold (its `confidence_floor`) is kept inside these
# Stroke widths in pixels of the 28×28 frame. MNIST's test digits: median 2.0, 1 % below 1.06, 99.9 % below 4.5.
MNIST_STROKE_WIDTH = 2.0  # drawings with wider strokes are thinned towards this, much thinner ones thickened to it
THICK_STROKES = 4.5  # still wider after thinning (loops filled with ink; wider than 99.9 % of MNIST): the app says so
# A brush wide for the digit's size fills every gap narrower than itself (a 5's opening, a 9's hook, an 8's small
# loop); thinning narrows the strokes but cannot reopen those gaps, which stay as solid patches that the mean width
# hardly shows (a small 5 with the widest brush: 2.8 px after thinning, read as an 8 at 98 %). Share of the thinned
# digit's solid ink lying deeper than one MNIST pen inside the ink, which no stroke up to two pens wide has: above
# this, the loops are filled. Measured with the digit's long side at FILLED_INK_SIDE px, so a 28-px scan and a large
# drawing are judged alike. Of MNIST's 10,000 test digits, 0.14 % are above it drawn canvas-size (280 px), 0.6 % at
# their own 28 px.
FILLED_INK = 0.12
FILLED_INK_SIDE = 60
THIN_STROKES = 0.6  # of MNIST_STROKE_WIDTH: thinner strokes (1.2 px; 1 % of MNIST's are below 1.06) are thickened
MIN_ERODABLE_WIDTH = 6.0  # working-size pixels: a narrower stroke is too coarse to thin (1 px is a third of it)
SOLID_INK = 0.5  # thinning keeps count of the pixels at least this inked: it stops before most of them are gone
# Erosions/dilations at most. A crop at the working size (≤ WORK_SIDE px) needs ≤ 7 to reach MNIST's pen; the cap
# bounds time and memory for a caller that passes a larger one.
MAX_PEN_STEPS = 8
# A digit is ink on a plain background. Share of the 28×28 frame covered by ink: at most 0.36 for MNIST's test
# digits (0.32 once through `to_mnist`); share of the picture's edge that is ink: small for a digit on paper or on
# the canvas. A picture well above either (noise, a texture, a radial glow) is not one digit, whatever the model
# answers.
MAX_INK_COVERAGE = 0.45
MAX_EDGE_INK = 0.5
# A phone photo shows more than the paper. Ink along this much of one side of the picture is a desk strip or a frame,
# not the digit: canvas drawings reach 0.63 (a 260-px 7's top bar with the widest brush).
DESK_SIDE = 0.8
# A sheet lying on a desk shows as ink (against the desk at the picture's edge) with the digit as holes in it. It is
# one when it covers SHEET_AREA of the picture and SHEET_SHAPE of the smallest rectangle around it (paper, even
# turned; canvas drawings with loops reach 0.87, a disc fills 0.79), and what is written on it covers at most
# SHEET_MARKS of it.
SHEET_AREA = 0.1
SHEET_SHAPE = 0.9
SHEET_MARKS = 0.25
SHEET_WRITING = 0.2  # what is written on a sheet spans at least this share of its shorter side: not a speck
# A dot or a short dash is no digit (one click on the canvas was read as an 8 or a 0 at 100 %). Measured as the ink's
# long side in its stroke widths (`stroke_width`, whose outline counts pixel steps): a dot of any size measures 2.55
# (8/π), a dash two pens long 3.4, a short 1 three pens long 4.3, MNIST's digits about 10. It must also be small in
# the picture (its long side at most TINY_MARK_SHARE of the picture's): a 60-px digit drawn with the widest brush is
# a blob measuring 2.9, a third of the canvas wide; a dot made with that brush is a seventh.
TINY_MARK = 3.0
TINY_MARK_SHARE = 0.2
# Several digits side by side (a number, "10"): the ink splits at empty columns into marks that each span at least
# SEPARATE_MARK_HEIGHT of the ink's height and hold SEPARATE_MARK_INK of it. The model reads one digit: "10" and "50"
# were a 6 at 99–100 % (25 of 100 two-digit numbers read as one digit and sure, at two brush widths). With these
# limits all 200 are flagged, and none of the 438 single-digit drawings of tests/e2e (two sizes, three brushes) nor
# 1 of MNIST's 10,000 test digits (a 4 broken in two).
SEPARATE_MARK_HEIGHT = 0.75
SEPARATE_MARK_INK = 0.15


@dataclass
class SketchPrediction:
    digit: int | None  # None when the image is empty
    probabilities: list[float] | None  # 10 floats summing to 1
    image28: np.ndarray | None  # float32 [28, 28] in [0, 1]: what the model sees (white ink on black)
    stroke_width: float = 0.0  # of image28's strokes, in its pixels (MNIST: about 2)
    unsure_below: float = LOW_CONFIDENCE  # the model's threshold (see `unsure_threshold`)
    ink_coverage: float = 0.0  # share of image28 that is ink (MNIST through `to_mnist`: at most 0.32)
    edge_ink: float = 0.0  # share of the picture's edge that is ink
    filled_ink: float = 0.0  # share of the thinned digit's ink in solid patches (see FILLED_INK)
    mark_length: float = math.inf  # the ink's long side in its own stroke widths, as drawn (see TINY_MARK)
    mark_share: float = 1.0  # the ink's long side, of the picture's
    digit_like_marks: int = 1  # marks side by side, each tall enough to be a digit (see SEPARATE_MARK_HEIGHT)

    @property
    def empty(self) -> bool:
        return self.digit is None

    @property
    def confidence(self) -> float:
        return max(self.probabilities) if self.probabilities else 0.0

    @property
    def low_confidence(self) -> bool:
        return not self.empty and self.confidence < self.unsure_below

    @property
    def mostly_ink(self) -> bool:
        """Ink covers more of the frame than in any MNIST digit, or much of the picture's edge: no plain background
        around one digit (noise, a texture)."""
        return not self.empty and (self.ink_coverage > MAX_INK_COVERAGE or self.edge_ink > MAX_EDGE_INK)

    @property
    def tiny_mark(self) -> bool:
        """The ink is only a dot or a short dash: not much longer than its pen is wide, and small in the picture."""
        return not self.empty and self.mark_length <= TINY_MARK and self.mark_share <= TINY_MARK_SHARE

    @property
    def several_digits(self) -> bool:
        """The ink is several digit-sized marks side by side, as a number is written."""
        return not self.empty and self.digit_like_marks >= 2

    @property
    def unsure(self) -> bool:
        """The reading should not be trusted: the model is unsure, the picture is not shaped like a digit, its
        loops are filled with ink (of the canvas drawings flagged thick, 2 of 5 were read wrong at 100 %), it is
        only a dot, or it is several digits."""
        return self.low_confidence or self.mostly_ink or self.thick_strokes or self.tiny_mark or self.several_digits

    @property
    def thick_strokes(self) -> bool:
        """The strokes are too wide for the digit's size even after thinning, or thinning left solid patches of ink:
        its loops or gaps are probably filled in."""
        return not self.empty and (self.stroke_width > THICK_STROKES or self.filled_ink > FILLED_INK)


_PIXEL_LIMIT = (f"the limit is {MAX_IMAGE_PIXELS // 10**6} megapixels, about {math.isqrt(MAX_IMAGE_PIXELS)} pixels "
                f"square")


def open_image(source: str | os.PathLike | bytes, name: str | None = None) -> Image.Image:
    """Open an image file or bytes with size limits; every failure is an ImageError naming the file.

    The pixel limit is checked on the header, before anything is decoded, so a 10000×10000 picture (or a tiny
    "decompression bomb" file that claims to be huge) costs neither memory nor time.
    """
    label = name or (str(source) if not isinstance(source, (bytes, bytearray)) else "uploaded file")
    if isinstance(source, (bytes, bytearray)):
        size = len(source)
        stream: io.BytesIO | Path = io.BytesIO(bytes(source))
    else:
        if not str(source).strip():  # Path("") is ".", which would be named instead
            raise ImageError("the picture's path is empty: give the path of an image file")
        stream = Path(source)
        problem = path_status(stream)
        if problem == FOLDER_NOT_FILE:  # (a folder of pictures, given whole: "check the path" of a right path)
            raise ImageError(f"{label} {problem}: give the pictures in it instead, such as "
                             f"{os.path.join(label, '*.png')}")
        if problem:
            raise ImageError(f"{label} {problem}: check the path")
        size = stream.stat().st_size
    if size == 0:
        raise ImageError(f"{label} is empty (0 bytes): choose an image file (PNG, JPEG…)")
    if size > MAX_FILE_BYTES:
        raise ImageError(f"{label} is {size / MB:.0f} MB, larger than {MAX_FILE_BYTES // MB} MB: use a smaller image")
    with _pillow_reading(label, stream):
        image = Image.open(stream)
        # More than one frame, not how many: counting them (`n_frames`) read every page's header, in time growing with
        # the square of their number (a 2.7-MB TIFF of 30,000 tiny pages took 15 s; 25 MB holds 270,000), and every
        # frame of a GIF (a 24-MB one of 1.6 million: 11 s). `is_animated` looks at the second frame only.
        animated = bool(getattr(image, "is_animated", False))
        if animated and image.format == "TIFF":
            image.seek(1)  # the second page's header, without its pixels: a damaged one raises here (a TypeError)
            image.seek(0)
    if image.format == "EPS":
        # Pillow draws EPS by running Ghostscript on it: the file's PostScript is a program (it can loop forever),
        # and an upload must never be run.
        raise ImageError(f"{label} is PostScript (EPS), which would have to be run as a program to be drawn: export "
                         f"it as PNG or JPEG")
    if animated and image.format != "MPO":
        # Only the first frame would be read, silently (often a blank one); a phone's MPO JPEG holds the same photo
        # again at other sizes, so its first frame is the photo.
        raise ImageError(f"{label} has more than one frame (an animation or a multi-page file), and which one holds "
                         f"the digit cannot be told: save that frame as a picture of its own")
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageError(f"{label} is {width}×{height} pixels; {_PIXEL_LIMIT}: crop or shrink it")
    with _pillow_reading(label, stream):
        image.draft("L", (WORK_SIDE, WORK_SIDE))  # JPEG decodes at reduced size: cheap for huge photos
        image.load()
        ImageOps.exif_transpose(image, in_place=True)  # phone photos: turn the digit upright as the camera saw it
    if image.mode == "F" and not np.isfinite(np.asarray(image)).all():
        # A float TIFF has no gray level for NaN or ±inf: stretching them gave a RuntimeWarning on stderr and "no
        # ink" (or a NaN picture) instead of a reading.
        raise ImageError(f"{label} has NaN or infinite pixel values (a floating-point image): save it with finite "
                         f"values, or as an 8- or 16-bit PNG")
    return image


@contextmanager
def _pillow_reading(label: str, stream: io.BytesIO | Path) -> Iterator[None]:
    """Around Pillow's own calls on a file: whatever they raise becomes one ImageError naming the file.

    Pillow's decoders raise many kinds of exception for a damaged file (OSError, ValueError, SyntaxError, EOFError,
    struct.error, a TypeError for a TIFF page without a size, …), so any exception counts; only Pillow's calls go
    in the block, so a bug in ours is never blamed on the file. Pillow's warnings are silenced: it warns (and, above
    twice its own limit, raises) for huge images, where our own, lower limit decides, and about damage it reads past
    (a corrupt EXIF tag, skipped): the picture is read or refused with one sentence, never with a warning naming
    Pillow's source on stderr.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    except Image.DecompressionBombError:
        raise ImageError(f"{label} has too many pixels; {_PIXEL_LIMIT}: crop or shrink it") from None
    except UnidentifiedImageError:
        head = _head(stream)
        kind = file_kind(head)
        if kind == "SVG":
            raise ImageError(f"{label} is an SVG drawing (vector graphics, which MNIST Studio does not draw): export it as "
                             f"PNG") from None
        if kind == "PDF":  # (a page saved as PDF and renamed .png read as "not an image … use PNG")
            raise ImageError(f"{label} is a PDF document, not a picture: export the page with the digit as PNG or "
                             f"JPEG") from None
        if kind == "HEIF":  # an iPhone's photos, which Pillow cannot decode without a plugin
            raise ImageError(f"{label} is a HEIC/HEIF photo (the iPhone's own format), which MNIST Studio cannot read: "
                             f"export or share it as JPEG") from None
        if kind == "model":  # (a checkpoint uploaded where pictures go: "not an image" said nothing of where it goes)
            raise ImageError(f"{label} is a PyTorch model file, not a picture: upload it on the app's Evaluate page "
                             f"and make it the active model (on the command line, give it to --checkpoint)") from None
        if kind:  # Pillow gives up on a broken header (a bad CRC) without saying so: "not an image" would puzzle
            raise ImageError(f"{label} is a damaged {kind} file: it could not be decoded; use a good copy") from None
        if head.startswith(_ZIP_START):  # pictures sent as one .zip (or a .docx, itself a zip): "not an image" alone
            raise ImageError(f"{label} is a zip archive (or a document packed as one), not a picture: unzip it and "
                             f"give one picture from it") from None
        raise ImageError(f"{label} is not an image MNIST Studio can read: use PNG, JPEG, BMP, GIF, WebP or TIFF") from None
    except Exception:
        raise ImageError(f"{label} is damaged or truncated: it could not be decoded") from None


# How each format this app reads begins (its "magic number"), to tell a damaged picture from a file of another kind
# (and a PDF, which it does not read, from just any file).
_IMAGE_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF87a": "GIF", b"GIF89a": "GIF",
                     b"BM": "BMP", b"II*\x00": "TIFF", b"MM\x00*": "TIFF", b"%PDF-": "PDF"}
# An ISO media file (…ftyp<brand>) of these brands is a HEIC/HEIF picture; AVIF ("avif"), which Pillow reads, is not
# among them.
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"}
# How far into a file (or into a gzipped one, once inflated) its kind is looked for: an SVG's <svg tag may follow a
# long comment (a licence) or doctype.
SNIFF_BYTES = 64 * 1024
# A PyTorch file: torch.save's zip (whose first entry is the pickle, "<name>/data.pkl") or its legacy pickle format.
_ZIP_START = b"PK\x03\x04"
_PICKLE_STARTS = {b"\x80" + bytes([protocol]) for protocol in range(2, 6)}  # PROTO 2…5
_GZIP_MAGIC = b"\x1f\x8b"
# An SVG document: <svg as its first element, after an optional byte-order mark, XML declaration, comments,
# processing instructions and doctype (possibly with an internal subset, as Illustrator writes). Its repeats are
# possessive and cannot overlap: nothing to backtrack into, so a hostile 64 KB prefix is scanned in linear time.
_SVG_START = re.compile(rb"(?:\xef\xbb\xbf)?(?:\s|<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^\[>]*+(?:\[[^\]]*+\])?[^>]*+>)*+"
                        rb"<svg[\s>/:]", re.DOTALL | re.IGNORECASE)


def _head(stream: io.BytesIO | Path) -> bytes:
    """The first SNIFF_BYTES of `stream` (b"" when it cannot be read)."""
    try:
        if isinstance(stream, Path):
            with open(stream, "rb") as handle:
                return handle.read(SNIFF_BYTES)
        return stream.getvalue()[:SNIFF_BYTES]
    except OSError:
        return b""


def _first_zip_entry(head: bytes) -> bytes:
    """The name in the zip's first local header (its length at byte 26, the name from byte 30)."""
    name_length = int.from_bytes(head[26:28], "little")
    return head[30:30 + name_length]


def file_kind(head: bytes) -> str | None:
    """The format a file claims by its first bytes `head` ("PNG", …, "SVG", also for a gzipped .svgz, "PDF", "HEIF",
    and "model" for a PyTorch file), or None. The checkpoint loader asks too, to call a picture a picture."""
    if head[:2] in _PICKLE_STARTS or (head.startswith(_ZIP_START) and _first_zip_entry(head).endswith(b"/data.pkl")):
        return "model"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "HEIF"
    kind = next((name for signature, name in _IMAGE_SIGNATURES.items() if head.startswith(signature)), None)
    if kind is None and head.startswith(_GZIP_MAGIC):
        try:  # at most SNIFF_BYTES inflated: a gzip bomb costs nothing
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, SNIFF_BYTES)
        except zlib.error:
            return None
    if kind is None and _SVG_START.match(head):
        return "SVG"
    return kind


# Pillow modes that it shrinks wrongly or that `gray_levels` would misread, and what each becomes first. Bilevel and
# palette pictures: Pillow shrinks them by picking pixels (thin lines vanish), and a palette one with alpha by
# averaging palette indices (no ink found). Premultiplied alpha ("La", "RGBa"): its band is "a", not "A".
_PLAIN_MODES = {"1": "L", "P": "RGBA", "PA": "RGBA", "La": "LA", "RGBa": "RGBA", "RGBX": "RGB", "CMYK": "RGB",
                "YCbCr": "RGB", "HSV": "RGB"}
# Pixels that are numbers, of 16 or 32 bits or floats, in any range (12-bit scans, 0…1 or 0…255 floats, a 32-bit
# scan's -2147483643…-2147483388). Pillow shrinks big-endian 16-bit ones with their bytes swapped (a 4 read as an
# 8 at 99.8 %) and fails on any 16-bit one over ~4× the working size ("image has wrong mode"); its quick first step
# for large reductions sums 32-bit and float ones without headroom (near -2**31 they wrapped, 1e38 became inf).
# Stretched to floats in 0…1 first, they shrink as 8-bit pictures do.
_NUMBER_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N", "F")
_BAND_ROWS = 256  # rows stretched at a time: float64 for a whole 40-megapixel picture would be 320 MB


def plain_image(image: Image.Image) -> Image.Image:
    """`image` in a mode that Pillow resizes correctly and `gray_levels` reads as it is: L, LA, RGB, RGBA, or F
    stretched to 0…1 (the same image when it is one of the first four)."""
    if image.mode == "LAB":  # CIELab: L is the lightness, the picture in gray (Pillow converts LAB only to RGB)
        return image.getchannel("L")
    if image.mode in _NUMBER_MODES:
        return Image.fromarray(_stretched(np.asarray(image)), "F")
    return image.convert(_PLAIN_MODES[image.mode]) if image.mode in _PLAIN_MODES else image


def _stretched(values: np.ndarray) -> np.ndarray:
    """float32 [H, W]: `values` stretched from their own lowest to highest to 0…1 (all 0 when they are all equal).
    Worked out in float64, which can subtract -2147483643 from -2147483388 and span -3e38…3e38 (float32 cannot)."""
    low, high = float(values.min()), float(values.max())
    stretched = np.zeros(values.shape, dtype=np.float32)
    if high > low:
        for top in range(0, values.shape[0], _BAND_ROWS):
            stretched[top:top + _BAND_ROWS] = (values[top:top + _BAND_ROWS].astype(np.float64) - low) / (high - low)
    return stretched


def gray_levels(image: Image.Image) -> np.ndarray:
    """float32 [H, W] in [0, 1] for any mode: palette, 16/32-bit, float, RGB(A), with or without transparency."""
    image = plain_image(image)
    if image.mode in ("LA", "RGBA"):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
        alpha, gray = rgba[:, :, 3], rgba[:, :, :3].mean(2)
        if alpha.min() >= 0.99:
            return gray
        # Real transparency: the ink is what is opaque, whatever colour the invisible pixels happen to hold.
        # Lay the picture on a backdrop that contrasts with its opaque part, then read it like any other.
        opaque = alpha > 0.5
        backdrop = 1.0 if opaque.any() and np.median(gray[opaque]) < 0.5 else 0.0
        return alpha * gray + (1.0 - alpha) * backdrop
    if image.mode == "F":  # numbers, already stretched to 0…1
        return np.asarray(image, dtype=np.float32)
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def ink_map(image: Image.Image | np.ndarray) -> np.ndarray:
    """float32 [H, W] in [0, 1]: 1 = ink, 0 = background, whatever the colours, alpha or bit depth."""
    if isinstance(image, np.ndarray):
        array = image
        if array.ndim == 3 and array.shape[2] == 4:
            image = Image.fromarray(array.astype(np.uint8), "RGBA")
        elif array.ndim == 3:
            image = Image.fromarray(array.astype(np.uint8)[:, :, :3], "RGB")
        else:
            image = Image.fromarray(array.astype(np.float32), "F")
    image = plain_image(image)  # first: Pillow shrinks some modes wrongly (see _PLAIN_MODES, _NUMBER_MODES)
    side = _working_side(*image.size)
    if max(image.size) > side:
        image = image.copy()
        image.thumbnail((side, side), Image.Resampling.BILINEAR)
    gray = gray_levels(image)
    return _ink_on_the_paper(gray)


def _working_side(width: int, height: int) -> int:
    """The long side a picture is shrunk to: WORK_SIDE, or for a long strip as much more as keeps MNIST_BOX pixels
    across it (up to STRIP_SIDE). Shrunk to 140 px long, an 8000×200 strip was 140×4, its 7 a blob of 3 px (an 8 at
    100 %); a 20000×200 one was 140×1, each pixel the mean of 143×200, and a 160-px stroke faded below the ink
    threshold ("no ink")."""
    return min(max(WORK_SIDE, math.ceil(max(width, height) * MNIST_BOX / min(width, height))), STRIP_SIDE)


def _ink_against_background(gray: np.ndarray) -> np.ndarray:
    """float32 [H, W] in [0, 1]: each pixel's distance from the background level, of the largest such distance."""
    ink = np.abs(gray - background_levels(gray))  # polarity-free: distance from the background level
    peak = ink.max()
    return (ink / peak).astype(np.float32) if peak > 0.1 else np.zeros_like(gray)


def _ink_on_the_paper(gray: np.ndarray) -> np.ndarray:
    """The ink map of a picture in which what lies around the paper is not ink: a strip of desk along a side of a
    phone photo, or the whole desk around a sheet lying on it.

    Against the picture's edge, a dark desk strip is ink (and the largest shape: read as a 1), and a sheet lying on a
    desk is ink with the digit as holes in it. The strip becomes paper; of a sheet, only the marks on it are ink.
    """
    ink = _ink_against_background(gray)
    inked = ink >= INK_THRESHOLD
    desk = _desk_along_the_sides(inked)
    if desk is not None:
        return _ink_against_background(np.where(desk, background_levels(gray), gray))
    sheet = _sheet_on_a_desk(inked)
    if sheet is not None:
        marks = _ink_against_background(np.where(sheet, gray, np.median(gray[sheet & inked])))
        if _written_on(marks, sheet):
            return marks
    return ink


def _desk_along_the_sides(inked: np.ndarray) -> np.ndarray | None:
    """The inked shapes that cover most of a side of the picture (a desk strip or a frame: DESK_SIDE), widened by a
    pixel for their blurred edge; None when there are none, or unless what is left is ink clear of the picture's
    edge, as a digit on the paper is (a canvas painted nearly all over leaves slivers along its edges)."""
    sides = [(slice(0, 1), slice(None)), (slice(-1, None), slice(None)), (slice(None), slice(0, 1)),
             (slice(None), slice(-1, None))]
    seeds = np.zeros_like(inked)
    for side in sides:
        if inked[side].mean() >= DESK_SIDE:
            seeds[side] = inked[side]
    if not seeds.any():
        return None
    desk = _dilate(_connected(seeds, inked).astype(np.float32)) > 0
    rest = inked & ~desk
    return desk if np.count_nonzero(rest) >= MIN_INK_PIXELS and edge_ink(rest) == 0 else None


def _sheet_on_a_desk(inked: np.ndarray) -> np.ndarray | None:
    """Where a sheet of paper lying on a desk is, two pixels in from its edge (which blurs into the desk), when the
    ink against the picture's edge (the desk) is one: a large (SHEET_AREA) and rectangular shape (SHEET_SHAPE)
    with a few holes in it (what is written on it: SHEET_MARKS). None otherwise."""
    if not inked.any():
        return None
    # The ink and the ink with its holes filled have the same smallest rectangle: first the checks that need only
    # that one (quick, and they rule out strokes), then the holes are filled.
    rectangle = _smallest_rectangle(inked)
    if rectangle < SHEET_AREA * inked.size or np.count_nonzero(inked) < (1 - SHEET_MARKS) * SHEET_SHAPE * rectangle:
        return None
    edge = np.ones_like(inked)
    edge[1:-1, 1:-1] = False
    sheet = ~_connected(edge, ~inked)  # the ink with the holes in it filled
    area = np.count_nonzero(sheet)
    if area < SHEET_AREA * inked.size or area < SHEET_SHAPE * rectangle or \
            np.count_nonzero(inked) < (1 - SHEET_MARKS) * area:
        return None  # small, not shaped like paper, or mostly holes (a frame drawn round nothing)
    inside = _erode(_erode(sheet.astype(np.float32))) > 0
    # A picture a few pixels across has no inside left: its marks' median level was NaN, and a 6×6 PNG of a 1 was a
    # traceback on the Sketch page.
    return inside if (inside & inked).any() else None


def _written_on(marks: np.ndarray, sheet: np.ndarray) -> bool:
    """Whether the marks on a sheet look like something written on it: they cover little of the sheet (SHEET_MARKS)
    but span a good part of it (SHEET_WRITING), with at least a line's worth of ink across that span (not specks)."""
    inked = marks >= INK_THRESHOLD
    if not inked.any():
        return False
    span = max(_extent(inked))
    return span <= np.count_nonzero(inked) <= SHEET_MARKS * np.count_nonzero(sheet) and \
        span >= SHEET_WRITING * min(_extent(sheet))


def _extent(region: np.ndarray) -> tuple[int, int]:
    """Height and width of the box around `region` (bool, not empty)."""
    rows, cols = np.nonzero(region)
    return int(np.ptp(rows)) + 1, int(np.ptp(cols)) + 1


def _connected(seeds: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """The pixels of `allowed` (bool) joined to a pixel of `seeds` through `allowed` ones (4-neighbours)."""
    reached = seeds & allowed
    count = -1
    while np.count_nonzero(reached) != count:
        count = np.count_nonzero(reached)
        reached = _spread_along_rows(_spread_along_rows(reached.T, allowed.T).T, allowed)
    return reached


def _spread_along_rows(reached: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Every run of `allowed` pixels along a row that holds a reached pixel, reached."""
    height, width = allowed.shape
    gap = np.zeros((height, 1), dtype=bool)  # after each row: runs do not wrap around
    allowed = np.hstack([allowed, gap]).ravel()
    starts = allowed.copy()
    starts[1:] &= ~allowed[:-1]
    count = np.cumsum(starts)
    run = count * allowed  # each run's number, from 1; 0 outside them
    hit = np.zeros(count[-1] + 1, dtype=bool)
    hit[run[np.hstack([reached, gap]).ravel() & allowed]] = True
    hit[0] = False
    return hit[run].reshape(height, width + 1)[:, :width]


def _smallest_rectangle(region: np.ndarray) -> float:
    """The area of the smallest rectangle around `region` (bool, not empty; turned in 3° steps). A rectangle at any
    angle fills it, a disc π/4 of it."""
    height, width = region.shape
    rows, cols = np.nonzero(region.any(axis=1))[0], np.nonzero(region.any(axis=0))[0]
    # The first and last pixel of each row and column: every corner of the region's convex hull is among them.
    ys = np.concatenate([rows, rows, region[:, cols].argmax(axis=0), height - 1 - region[::-1, cols].argmax(axis=0)])
    xs = np.concatenate([region[rows].argmax(axis=1), width - 1 - region[rows, ::-1].argmax(axis=1), cols, cols])
    angles = np.radians(np.arange(0, 90, 3))
    along = np.outer(xs, np.cos(angles)) + np.outer(ys, np.sin(angles))
    across = np.outer(ys, np.cos(angles)) - np.outer(xs, np.sin(angles))
    return float(np.min((np.ptp(along, axis=0) + 1) * (np.ptp(across, axis=0) + 1)))


def background_levels(gray: np.ndarray) -> float | np.ndarray:
    """The paper's (or canvas's) level: one value for the canvas or evenly lit paper, else a level per pixel: a
    plane for paper shaded gently from one side (`_paper_plane`), or block by block where it is lit unevenly.

    A phone photo is lit unevenly (a gradient across the sheet, a shadow in a corner): measured against one level,
    the brighter or darker half of the paper would count as ink. There the paper is estimated block by block (each
    block's level on the paper's side of the ink, PAPER_SHARE, is paper as long as ink covers less than three
    quarters of it) and smoothed between blocks, which follows lighting that changes slowly and leaves the strokes.
    """
    height, width = gray.shape
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    level = float(np.median(border))
    paper = border[np.abs(border - level) <= EDGE_INK_GAP]
    # Why not the whole edge: strokes cut off by the canvas's edge made it look unevenly lit, and the per-block
    # levels then took the thick strokes of a 260-px digit for paper (a 0 read as "no digit").
    low, high = np.percentile(paper, [10, 90])
    if np.median(np.abs(paper - level)) == 0:
        # The canvas, or a picture drawn on a computer: not lit at all, one level but for the blurred edge of a stroke
        # just inside the picture's edge (the block levels took such strokes for paper: a 7 along the top, an 8).
        return level
    rows, cols = max(1, round(height / LIGHT_BLOCK)), max(1, round(width / LIGHT_BLOCK))
    dark_ink = np.count_nonzero(gray < level - INK_GAP) >= np.count_nonzero(gray > level + INK_GAP)
    share = PAPER_SHARE if dark_ink else 100 - PAPER_SHARE
    blocks = np.array([[np.percentile(block, share) for block in np.array_split(band, cols, axis=1)]
                       for band in np.array_split(gray, rows, axis=0)], dtype=np.float32)
    paper_blocks = blocks[np.abs(blocks - level) <= EDGE_INK_GAP]  # (not those of ink, or of a sheet on a desk)
    if high - low < UNEVEN_LIGHT and (paper_blocks.size == 0 or np.ptp(paper_blocks) < UNEVEN_PAPER):
        # The plane is fitted to the paper's middle levels: the blurred edge of a stroke cut off by the picture's
        # edge, or a speck, would tilt it.
        return _paper_plane(gray.shape, border, (border >= low) & (border <= high), level)
    return np.asarray(Image.fromarray(blocks, "F").resize((width, height), Image.Resampling.BILINEAR))


def _paper_plane(shape: tuple[int, int], border: np.ndarray, on_paper: np.ndarray, level: float) -> float | np.ndarray:
    """The paper's level as a plane fitted to the edge pixels (`border`, in `background_levels`' order) that are
    `on_paper`, or `level` when the plane is flat. Why: light falling from one side shades the paper by a few
    percent from side to side, too little to count as uneven lighting, but a small digit's thin strokes, faint once
    shrunk to the working size, are not much darker than that: against one level, the paper's darker side was ink (a
    400-px digit in a 12-MP photo lit 24 levels brighter on one side than the other was read as a 4 or a 7 from the
    paper's edges)."""
    height, width = shape
    columns, rows = np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
    xs = np.concatenate([columns, columns, np.zeros(height, np.float32), np.full(height, width - 1, np.float32)])
    ys = np.concatenate([np.zeros(width, np.float32), np.full(width, height - 1, np.float32), rows, rows])
    terms = np.stack([np.ones_like(xs), xs, ys], axis=1)[on_paper]
    (base, per_column, per_row), *_ = np.linalg.lstsq(terms, border[on_paper], rcond=None)
    if abs(per_column) * width + abs(per_row) * height < FLAT_PAPER:
        return level
    return (base + per_column * columns[None, :] + per_row * rows[:, None]).astype(np.float32)


def edge_ink(ink: np.ndarray) -> float:
    """Share of the picture's outermost pixels that are ink."""
    edge = np.concatenate([ink[0], ink[-1], ink[1:-1, 0], ink[1:-1, -1]])
    return float(np.mean(edge >= INK_THRESHOLD))


def stroke_width(ink: np.ndarray) -> float:
    """Mean stroke width in pixels: a stroke of width w and length L has an ink mass of about w·L and an outline
    about 2·L long, so w ≈ 2 · mass / outline. A faint, anti-aliased hairline counts with its grey level (a line
    0.4 px wide drawn as one pixel at 40 % ink measures 0.4)."""
    mask = ink >= INK_THRESHOLD
    if not mask.any():
        return 0.0
    padded = np.pad(mask, 1)
    outline = np.count_nonzero(padded[1:] != padded[:-1]) + np.count_nonzero(padded[:, 1:] != padded[:, :-1])
    return float(2.0 * ink.sum() / outline)


def _neighbourhoods(ink: np.ndarray) -> np.ndarray:
    """[9, H, W]: each pixel's 3×3 neighbourhood (zero outside the picture)."""
    padded = np.pad(ink, 1)
    height, width = ink.shape
    return np.stack([padded[dy:dy + height, dx:dx + width] for dy in range(3) for dx in range(3)])


def _erode(ink: np.ndarray) -> np.ndarray:
    """Grey-level erosion with a 3×3 square: every stroke loses one pixel on each side."""
    return _neighbourhoods(ink).min(axis=0)


def _dilate(ink: np.ndarray) -> np.ndarray:
    """Grey-level dilation with a 3×3 square: every stroke gains one pixel on each side."""
    return _neighbourhoods(ink).max(axis=0)


def _ink_box(ink: np.ndarray) -> np.ndarray | None:
    rows, cols = np.nonzero(ink)
    if rows.size < MIN_INK_PIXELS:
        return None
    return ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]


def _mnist_pen_width(crop: np.ndarray) -> float:
    """MNIST's pen width in the crop's pixels: the crop's long side becomes 20 px of the 28×28 frame."""
    return MNIST_STROKE_WIDTH * max(crop.shape) / MNIST_BOX


def thin_strokes(crop: np.ndarray) -> np.ndarray:
    """Erode a cropped digit whose strokes are wider, relative to its size, than MNIST's pen.

    The target is MNIST_STROKE_WIDTH scaled to the crop (the crop's long side becomes 20 px). Strokes too narrow
    to erode cleanly are left alone, and thinning stops before it would remove most of the ink.
    """
    width = stroke_width(crop)
    steps = min(int(round((width - _mnist_pen_width(crop)) / 2)), MAX_PEN_STEPS)  # an erosion: 2 px narrower
    if steps <= 0 or width < MIN_ERODABLE_WIDTH:
        return crop
    ink_pixels = np.count_nonzero(crop >= SOLID_INK)
    for _ in range(steps):
        eroded = _erode(crop)
        if np.count_nonzero(eroded >= SOLID_INK) < 0.3 * ink_pixels:
            break
        crop = eroded
    thinned = _ink_box(np.where(crop >= INK_THRESHOLD, crop, 0.0))  # the box shrank by a pixel per step
    return crop if thinned is None else thinned


def thicken_strokes(crop: np.ndarray) -> np.ndarray:
    """Redraw a cropped digit whose strokes are much thinner, relative to its size, than MNIST's pen, with that pen.

    Shrunk to 20×20, a fine pen line on a large sheet becomes a faint hairline (a 10-px pen on a 700-px digit is
    0.3 px), which the model reads as a 1. So: wherever there is ink (INK_THRESHOLD, so a light pencil stroke
    counts as much as a dark one), at full strength, widened by dilation to MNIST's pen scaled to the crop.
    """
    target = _mnist_pen_width(crop)
    if stroke_width(crop) >= THIN_STROKES * target:
        return crop
    pen = (crop >= INK_THRESHOLD).astype(np.float32)
    steps = min(max(int(round((target - stroke_width(pen)) / 2)), 0), MAX_PEN_STEPS)  # a dilation: 2 px wider
    pen = np.pad(pen, steps)  # room to grow: strokes along the crop's edges widen outwards too
    for _ in range(steps):
        pen = _dilate(pen)
    return pen


def filled_ink(crop: np.ndarray) -> float:
    """Share of a cropped, thinned digit's solid ink (SOLID_INK) that lies more than one MNIST pen width from the
    background: 0 for strokes up to two pens wide, whatever their shape; the solid patches a wide brush leaves where
    it filled a loop or a gap. Measured with the crop's long side at FILLED_INK_SIDE px."""
    height, width = crop.shape
    factor = FILLED_INK_SIDE / max(height, width)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    crop = np.asarray(Image.fromarray(crop.astype(np.float32), "F").resize(size, Image.Resampling.BILINEAR))
    solid = (crop >= SOLID_INK).astype(np.float32)
    total = np.count_nonzero(solid)
    if total == 0:
        return 0.0
    for _ in range(math.ceil(MNIST_STROKE_WIDTH * FILLED_INK_SIDE / MNIST_BOX)):  # an erosion: 1 px deeper
        solid = _erode(solid)
    return float(np.count_nonzero(solid) / total)


def to_mnist(image: Image.Image | np.ndarray) -> np.ndarray | None:
    """float32 [28, 28] in [0, 1], white ink on black, MNIST-centred; None when there is no ink."""
    crop = _digit_crop(_digit_ink(image)[0])
    return None if crop is None else _mnist_frame(crop)


def _digit_ink(image: Image.Image | np.ndarray) -> tuple[np.ndarray, float]:
    """The ink map to read the digit from, and the picture's long side in that map's pixels.

    `ink_map` shrinks the whole picture first. When its ink then spans fewer pixels than MNIST's box, the part of
    the picture around the ink is mapped again at its own resolution, so that a small digit or mark is read (and
    measured) from all the pixels it has: a 7 on an 8000×200 strip spans 16 px of the strip's map, a dot made with
    the 8-px brush 4 px of the canvas's (too few to tell its shape).
    """
    ink = ink_map(image)
    width, height = image.size if isinstance(image, Image.Image) else (image.shape[1], image.shape[0])
    rows, cols = np.nonzero(ink >= INK_THRESHOLD)
    if max(width, height) <= max(ink.shape) or not rows.size or max(np.ptp(rows), np.ptp(cols)) + 1 >= MNIST_BOX:
        return ink, float(max(ink.shape))  # not shrunk, no ink, or enough of it
    row_scale, col_scale = height / ink.shape[0], width / ink.shape[1]  # picture pixels per ink-map pixel
    # The ink's box in the picture, with paper around it (half its size and a map pixel on each side) for the
    # background level.
    top, bottom = rows.min() * row_scale, (rows.max() + 1) * row_scale
    left, right = cols.min() * col_scale, (cols.max() + 1) * col_scale
    margin_y, margin_x = (bottom - top) / 2 + row_scale, (right - left) / 2 + col_scale
    top, bottom = max(0, int(top - margin_y)), min(height, math.ceil(bottom + margin_y))
    left, right = max(0, int(left - margin_x)), min(width, math.ceil(right + margin_x))
    part = image.crop((left, top, right, bottom)) if isinstance(image, Image.Image) else image[top:bottom, left:right]
    detail = ink_map(part)
    return detail, max(width, height) * max(detail.shape) / max(right - left, bottom - top)


def _drawn_ink(ink: np.ndarray) -> np.ndarray | None:
    """The ink's bounding box as drawn (below INK_THRESHOLD cleared); None when there is no ink."""
    return _ink_box(np.where(ink >= INK_THRESHOLD, ink, 0.0))


def digit_like_marks(drawn: np.ndarray) -> int:
    """How many marks of `drawn` (the ink's box, 0–1) stand side by side, apart from each other by columns without
    ink, each spanning SEPARATE_MARK_HEIGHT of the box's height and holding SEPARATE_MARK_INK of its ink."""
    inked = drawn >= INK_THRESHOLD
    total = inked.sum()
    edges = np.flatnonzero(np.diff(np.concatenate(([0], inked.any(0).astype(np.int8), [0]))))
    count = 0
    for start, stop in zip(edges[::2], edges[1::2]):  # each run of columns with ink
        rows = np.flatnonzero(inked[:, start:stop].any(1))
        tall = (rows[-1] - rows[0] + 1) >= SEPARATE_MARK_HEIGHT * inked.shape[0]
        count += bool(tall and inked[:, start:stop].sum() >= SEPARATE_MARK_INK * total)
    return count


def _digit_crop(ink: np.ndarray) -> np.ndarray | None:
    """The ink's bounding box, its strokes brought to MNIST's pen width; None when there is no ink."""
    crop = _drawn_ink(ink)
    return None if crop is None else thicken_strokes(thin_strokes(crop))


def _mnist_frame(crop: np.ndarray) -> np.ndarray | None:
    """The crop fitted into 20×20 and placed in 28×28 by its centre of mass, as MNIST was made."""
    height, width = crop.shape
    factor = MNIST_BOX / max(height, width)
    new_size = (max(1, round(width * factor)), max(1, round(height * factor)))
    small = np.asarray(Image.fromarray(crop, "F").resize(new_size, Image.Resampling.LANCZOS), dtype=np.float32)
    small = np.clip(small, 0.0, 1.0)
    total = small.sum()
    if total <= 0:
        return None
    ys, xs = np.indices(small.shape)
    centre_y, centre_x = (ys * small).sum() / total, (xs * small).sum() / total
    top = int(round(14 - centre_y))
    left = int(round(14 - centre_x))
    top = min(max(top, 0), 28 - small.shape[0])  # keep the whole digit inside the frame
    left = min(max(left, 0), 28 - small.shape[1])
    canvas = np.zeros((28, 28), dtype=np.float32)
    canvas[top:top + small.shape[0], left:left + small.shape[1]] = small
    return canvas


def to_model_input(image28: np.ndarray) -> torch.Tensor:
    """[28, 28] in [0, 1] -> normalised [1, 1, 28, 28] tensor, exactly as in training."""
    return ((torch.from_numpy(np.ascontiguousarray(image28, dtype=np.float32)) - MEAN) / STD).view(1, 1, 28, 28)


def unsure_threshold(metrics: dict[str, Any]) -> float:
    """The confidence below which a checkpoint's model is unsure: its `confidence_floor` (measured on the test set
    when it was trained), or LOW_CONFIDENCE for a checkpoint that does not carry one."""
    floor = metrics.get("confidence_floor")
    if not isinstance(floor, (int, float)) or not math.isfinite(floor):
        return LOW_CONFIDENCE
    return min(max(float(floor), UNSURE_LIMITS[0]), UNSURE_LIMITS[1])


def percentages_apart(confidence: float, unsure_below: float) -> tuple[str, str]:
    """`confidence` and the `unsure_below` threshold as percentages ("31 %", "93 %"), with the fewest decimals (up to
    two) that keep a confidence under the threshold reading under it: 92.6 % beside 92.9 % read "confidence 93 %
    (this model is unsure below 93 %)" beside an "unsure" badge."""
    for decimals in range(3):
        shown = f"{100 * confidence:.{decimals}f} %", f"{100 * unsure_below:.{decimals}f} %"
        if confidence >= unsure_below or shown[0] != shown[1]:
            break
    return shown


def canvas_has_strokes(image_data: np.ndarray | None) -> bool:
    """Whether anything is drawn on the Sketch canvas: white strokes on a black background, which the canvas sends
    along (opaque), or on a transparent one.

    Why not "the reading is empty": a canvas painted all over is one flat colour, which holds no digit shape (no ink
    against a background) although it is anything but empty. Why not "any pixel is opaque": the canvas's black
    background is, so an emptied canvas (its bin, or undo back to nothing) was taken for one painted all over.
    """
    if image_data is None or image_data.ndim != 3 or image_data.shape[2] != 4:
        return False
    visible, lighter_than_black = image_data[:, :, 3] > 0, image_data[:, :, :3].max(axis=2) > 0
    return bool((visible & lighter_than_black).any())


@torch.inference_mode()
def predict(model: nn.Module, image: Image.Image | np.ndarray, unsure_below: float = LOW_CONFIDENCE) -> SketchPrediction:
    """Read one picture. `unsure_below` is the model's `unsure_threshold`: lower confidence marks the reading unsure
    (so do the checks of `SketchPrediction.unsure`)."""
    ink, picture_side = _digit_ink(image)
    crop = _digit_crop(ink)
    image28 = None if crop is None else _mnist_frame(crop)
    if image28 is None:
        return SketchPrediction(None, None, None, unsure_below=unsure_below)
    device = next(model.parameters()).device
    model.eval()
    probabilities = model(to_model_input(image28).to(device)).float().softmax(1)[0].cpu()
    drawn = _drawn_ink(ink)
    return SketchPrediction(int(probabilities.argmax()), [float(p) for p in probabilities], image28,
                            stroke_width(image28), unsure_below, float(np.mean(image28 >= INK_THRESHOLD)),
                            edge_ink(ink), filled_ink(crop), max(drawn.shape) / stroke_width(drawn),
                            max(drawn.shape) / picture_side, digit_like_marks(drawn))
