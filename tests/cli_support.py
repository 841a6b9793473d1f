"""Helpers shared by the CLI, robustness and real-data tests: run the CLI, check its contract, make test files."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m mnist_core ARGS` in a fresh interpreter (exactly what a user runs), from the repository root."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("MNIST_STUDIO_DEBUG", None)  # the user's view: no debug tracebacks
    return subprocess.run([sys.executable, "-m", "mnist_core", *map(str, args)], cwd=REPO_ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(returncode: int, stderr: str, *expected_words: str) -> str:
    """The CLI contract for bad input: exit 2, one `error: ...` line on stderr, no traceback. Returns the message."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert returncode == 2, f"exit {returncode}, stderr: {stderr}"
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for word in expected_words:
        assert word.lower() in lines[0].lower(), f"{word!r} not in {lines[0]!r}"
    return lines[0]


def assert_json_error(stdout: str, stderr_line: str, exit_code: int = 2) -> None:
    """With --json a failed command's stdout is one JSON value too: the stderr line's message and the exit code."""
    [line] = stdout.splitlines()
    assert json.loads(line) == {"error": stderr_line.removeprefix("error: "), "exit_code": exit_code}


def assert_clean_failure(process: subprocess.CompletedProcess, *expected_words: str) -> str:
    return assert_one_line_error(process.returncode, process.stderr, *expected_words)


def last_json(stdout: str) -> Any:
    """The CLI contract with --json: the last stdout line is one JSON value."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert lines, "no output on stdout"
    return json.loads(lines[-1])


def digit_image(kind: str = "bar", size: int = 120, ink: int = 255, background: int = 0) -> Image.Image:
    """A hand-made grayscale 'digit': a vertical bar (a 1) or a ring (a 0), drawn at a natural size."""
    image = Image.new("L", (size, size), background)
    draw = ImageDraw.Draw(image)
    line = max(1, size // 12)
    if kind == "bar":
        draw.line([(size // 2, size // 6), (size // 2, size * 5 // 6)], fill=ink, width=line)
    else:
        draw.ellipse([size // 4, size // 6, size * 3 // 4, size * 5 // 6], outline=ink, width=line)
    return image


# 16-bit modes and how their pixels are stored (I;16N: in this machine's own byte order).
SIXTEEN_BIT_MODES = {"I;16": "<u2", "I;16L": "<u2", "I;16B": ">u2", "I;16N": "=u2"}
PILLOW_MODES = ["1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "I", "F",
                *SIXTEEN_BIT_MODES]
_CONVERTED_VIA = {"La": "LA", "RGBa": "RGBA"}  # Pillow converts 8-bit gray to these only by way of another mode


def in_mode(gray: Image.Image, mode: str) -> Image.Image:
    """The 8-bit gray picture `gray` in Pillow's `mode` (16-bit ones: its levels ×257)."""
    if mode in SIXTEEN_BIT_MODES:
        levels = np.asarray(gray).astype(np.uint16) * 257
        return Image.frombytes(mode, gray.size, levels.astype(SIXTEEN_BIT_MODES[mode]).tobytes())
    return gray.convert(_CONVERTED_VIA.get(mode, mode)).convert(mode)


def png_bytes(image: Image.Image, **save_options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **save_options)
    return buffer.getvalue()


def mnist_png(image28: np.ndarray, path: Path, scale: int = 4) -> Path:
    """Write a real MNIST image (uint8 [28, 28], white on black) as a larger PNG, as a user's file would be."""
    Image.fromarray(np.asarray(image28, dtype=np.uint8)).resize((28 * scale, 28 * scale), Image.Resampling.NEAREST) \
        .save(path)
    return path


RUNNING_AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def unreachable_files(folder: Path, name: str) -> dict[str, tuple[Path, str]]:
    """case -> (a path that names an existing-looking file that cannot be read, words its message must hold).

    The permission case needs a non-root user (root reads anything): as root it is left out, and the callers'
    `permission_case` skip says so.
    """
    (folder / "blocker").write_bytes(b"a file where a folder should be")
    (folder / "a-folder").mkdir()
    (folder / "loop").symlink_to(folder / "loop")
    cases = {"a folder": (folder / "a-folder", "is a folder, not a file"),
             "a file in the way": (folder / "blocker" / name, "cannot be reached (Not a directory"),
             "a looping symlink": (folder / "loop", "cannot be reached (Too many levels of symbolic links")}
    if not RUNNING_AS_ROOT:
        locked = folder / f"locked-{name}"
        locked.write_bytes(b"x")
        locked.chmod(0)
        cases["permission denied"] = (locked, "cannot be read (Permission denied)")
    return cases


UNREACHABLE_CASES = ["a folder", "a file in the way", "a looping symlink", "permission denied"]


def unreachable_case(folder: Path, name: str, case: str) -> tuple[Path, str]:
    """One of `unreachable_files`, skipping the permission case as root (chmod does not stop root)."""
    if case == "permission denied" and RUNNING_AS_ROOT:
        pytest.skip("running as root, who can read a file without permission: the chmod case cannot be tested")
    return unreachable_files(folder, name)[case]
