"""The README's measurement commands (`python -m tests.e2e.strokes`, `heldout_strokes`, `more_heldout_strokes`,
`third_heldout_strokes`) answer bad input as the CLI does: one line on stderr and exit 2, never a traceback; `--help`
prints their usage. Each case stops before any drawing is measured, so these take seconds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e import heldout_strokes, more_heldout_strokes, strokes, third_heldout_strokes
from tests.e2e.strokes import run_script

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = {
    "strokes": (strokes.main, ("--examples",)),
    "heldout_strokes": (heldout_strokes.main, ("--mnist",)),
    "more_heldout_strokes": (more_heldout_strokes.main, ()),
    "third_heldout_strokes": (third_heldout_strokes.main, ()),
}


def run(name: str, argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    main, options = SCRIPTS[name]
    code = run_script(main, argv, f"python -m tests.e2e.{name} [CHECKPOINT]", options)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str, *words: str) -> None:
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in err, err


@pytest.mark.parametrize("name", SCRIPTS)
def test_a_measurement_script_prints_its_usage_for_help(name, capsys):
    code, out, err = run(name, ["--help"], capsys)
    assert (code, err) == (0, "")
    assert out.startswith(f"usage: python -m tests.e2e.{name}")


@pytest.mark.parametrize("name", SCRIPTS)
def test_a_measurement_script_refuses_a_missing_checkpoint_in_one_line(name, capsys, tmp_path):
    code, out, err = run(name, [str(tmp_path / "nope.pt")], capsys)
    assert (code, out) == (2, "")
    assert_one_line_error(err, "nope.pt does not exist")


@pytest.mark.parametrize("name", SCRIPTS)
def test_a_measurement_script_refuses_an_unknown_option_and_a_second_path(name, capsys):
    code, out, err = run(name, ["--bogus"], capsys)
    assert (code, out) == (2, "")
    assert_one_line_error(err, "unknown option '--bogus'", "usage:")
    code, out, err = run(name, ["a.pt", "b.pt"], capsys)
    assert (code, out) == (2, "")
    assert_one_line_error(err, "one path at most, got 2")


def test_strokes_examples_needs_a_folder(capsys, tmp_path):
    code, out, err = run("strokes", ["--examples"], capsys)
    assert (code, out) == (2, "")
    assert_one_line_error(err, "--examples needs one folder")
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    code, out, err = run("strokes", ["--examples", str(a_file)], capsys)
    assert (code, out) == (2, "")
    assert_one_line_error(err, "is a file, not a folder")
    assert a_file.read_text() == "mine"


def test_heldout_mnist_without_mnist_says_so_before_measuring(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_DATA_ROOT", str(tmp_path))
    code, out, err = run("heldout_strokes", ["--mnist"], capsys)
    assert (code, out) == (2, "")  # nothing printed: no drawing was measured first
    assert_one_line_error(err, f"MNIST is not in {tmp_path}")


def test_a_measurement_interrupted_says_so(capsys):
    def interrupted(argv: list[str]) -> None:
        raise KeyboardInterrupt

    assert run_script(interrupted, [], "usage") == 130
    assert capsys.readouterr().err == "interrupted\n"


@pytest.mark.parametrize("name", SCRIPTS)
def test_the_readme_command_exits_2_without_a_traceback(name, tmp_path):
    result = subprocess.run([sys.executable, "-m", f"tests.e2e.{name}", str(tmp_path / "nope.pt")], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert_one_line_error(result.stderr, "nope.pt does not exist")
