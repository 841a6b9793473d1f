"""The CLI contract (README, "Command line"), run as a user runs it:
`python -m mnist_core models|train|evaluate|predict`.

Exit 0 ok, 2 bad input with one line on stderr and no traceback; with --json the last stdout line is one JSON value.
Commands that need the real dataset are marked `realdata`; the rest use hand-made checkpoints and images.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import mnist_core.checkpoints
import mnist_core.cli as cli
import mnist_core.data
from cli_support import REPO_ROOT, assert_json_error, assert_one_line_error, digit_image, last_json, run_cli
from mnist_core.checkpoints import (DEFAULT_CHECKPOINT, checkpoint_payload, list_checkpoints, load_checkpoint,
                                    write_checkpoint)
from mnist_core.cli import main
from mnist_core.config import epochs_text
from mnist_core.data import Mnist
from mnist_core.models import REGISTRY, build_model, count_parameters


@pytest.fixture()
def untrained_checkpoint(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return write_checkpoint(checkpoint_payload("seed-net", {}, build_model("seed-net"), {}, [], {}),
                            tmp_path / "untrained.pt")


def test_models_json_lists_the_registry_with_parameter_counts() -> None:
    process = run_cli("models", "--json")
    assert process.returncode == 0, process.stderr
    rows = last_json(process.stdout)
    assert [row["name"] for row in rows] == list(REGISTRY)
    for row in rows:
        assert row["parameters"] == count_parameters(build_model(row["name"]))
        assert row["seed"] == REGISTRY[row["name"]].seed and row["description"]


def test_models_prints_a_readable_table(capsys: pytest.CaptureFixture) -> None:
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(REGISTRY)
    assert lines[2].startswith("s5-net") and "593,200 params" in lines[2]


def test_predict_json_gives_path_digit_and_probabilities(untrained_checkpoint: Path, tmp_path: Path) -> None:
    images = [tmp_path / "one.png", tmp_path / "zero.jpg"]
    digit_image("bar").save(images[0])
    digit_image("ring", ink=0, background=255).convert("RGB").save(images[1])
    process = run_cli("predict", "--checkpoint", untrained_checkpoint, *images, "--json")
    assert process.returncode == 0, process.stderr
    assert "Traceback" not in process.stderr
    results = last_json(process.stdout)
    assert [r["path"] for r in results] == list(map(str, images))
    for result in results:
        assert result["digit"] in range(10)
        assert len(result["probabilities"]) == 10 and sum(result["probabilities"]) == pytest.approx(1, abs=1e-4)
        assert result["digit"] == max(range(10), key=result["probabilities"].__getitem__)
        assert isinstance(result["unsure"], bool) and isinstance(result["thick_strokes"], bool)
        assert result["mostly_ink"] is False


def test_predict_says_a_number_is_several_digits(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """"10" was "6 (99.9%)", sure, with the default model."""
    from tests.e2e.strokes import DIGIT_STROKES, rasterise, scaled

    ten = tmp_path / "ten.png"
    rasterise([[(x - 55, y) for x, y in stroke] for stroke in scaled(DIGIT_STROKES[1], 0.45)]
              + [[(x + 55, y) for x, y in stroke] for stroke in scaled(DIGIT_STROKES[0], 0.45)], 12).save(ten)
    assert main(["predict", str(ten)]) == 0
    assert ", unsure: several digits side by side)" in capsys.readouterr().out
    assert main(["predict", str(ten), "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["unsure"] is True and result["several_digits"] is True


def test_predict_says_noise_is_not_a_digit(untrained_checkpoint: Path, tmp_path: Path) -> None:
    noise = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (200, 200), dtype=np.uint8)).save(noise)
    process = run_cli("predict", "--checkpoint", untrained_checkpoint, noise)
    assert process.returncode == 0 and "unsure: not one digit on a plain background" in process.stdout
    (result,) = last_json(run_cli("predict", "--checkpoint", untrained_checkpoint, noise, "--json").stdout)
    assert result["unsure"] is True and result["mostly_ink"] is True


def test_every_train_option_reaches_the_config() -> None:
    from mnist_core.cli import _config_from_args, build_parser

    args = build_parser().parse_args([
        "train", "--model", "nf-cnn", "--model-kwarg", "nf=16", "--epochs", "2.5", "--batch-size", "96", "--lr", "0.03",
        "--optimizer", "sgd", "--momentum", "0.8", "--nesterov", "--weight-decay", "0.001", "--scheduler", "step",
        "--step-size", "2", "--gamma", "0.5", "--label-smoothing", "0.05", "--augment", "--rotation", "9",
        "--translate", "0.05", "--scale", "0.07", "--shear", "8", "--scribbles", "0.25",
        "--scribble-shapes", "mixed", "--seed", "7", "--device", "cpu",
        "--precision", "fp32", "--train-subset", "5000", "--eval-every", "0.5"])
    config = _config_from_args(args)
    assert (config.model, config.model_kwargs, config.epochs, config.batch_size, config.lr) == \
        ("nf-cnn", {"nf": 16}, 2.5, 96, 0.03)
    assert (config.optimizer, config.momentum, config.nesterov, config.weight_decay) == ("sgd", 0.8, True, 0.001)
    assert (config.scheduler, config.step_size, config.gamma, config.label_smoothing) == ("step", 2, 0.5, 0.05)
    assert (config.augment, config.rotation, config.translate, config.scale, config.shear) == (True, 9, 0.05, 0.07, 8)
    assert config.augmentation.shear == 8 and config.scribble_shapes == "mixed"
    assert (config.scribbles, config.seed, config.device, config.precision, config.train_subset,
            config.eval_every) == (0.25, 7, "cpu", "fp32", 5000, 0.5)
    adam = _config_from_args(build_parser().parse_args(["train", "--optimizer", "adamw", "--beta2", "0.95",
                                                        "--scheduler", "onecycle", "--pct-start", "0.4"]))
    assert (adam.optimizer, adam.beta2, adam.scheduler, adam.pct_start) == ("adamw", 0.95, "onecycle", 0.4)
    assert not adam.compile and _config_from_args(build_parser().parse_args(["train", "--compile"])).compile


@pytest.mark.parametrize("argv, model, kwargs", [
    # a --model-kwarg changes one setting of the preset's model and keeps the others
    (["--preset", "GPU: fastest to 99 %", "--model-kwarg", "width=48"], "fast", {"width": 48, "hidden": 256}),
    # another --model does not inherit the preset's model settings (best has no `hidden`)
    (["--preset", "GPU: fastest to 99 %", "--model", "best"], "best", {}),
    (["--preset", "GPU: fastest to 99 %", "--model", "best", "--model-kwarg", "width=24"], "best", {"width": 24}),
    (["--preset", "GPU: fastest to 99 %", "--model", "fast"], "fast", {"width": 32, "hidden": 256}),
])
def test_model_settings_combine_with_the_preset(argv: list[str], model: str, kwargs: dict[str, int]) -> None:
    from mnist_core.cli import _config_from_args, build_parser

    config = _config_from_args(build_parser().parse_args(["train", *argv]))
    assert (config.model, config.model_kwargs, config.batch_size) == (model, kwargs, 512)


@pytest.mark.parametrize("typed, preset", [("fastest to 99%", "fastest to 99 %"), ("Seed 004", "seed 004"),
                                           ("seed004", "seed 004"), ("gpu: fastest to 99.4%", "GPU: fastest to 99.4 %"),
                                           ("Best  Accuracy", "best accuracy")])
def test_a_preset_typed_without_its_spaces_or_capitals_is_read(typed: str, preset: str) -> None:
    # `--preset "fastest to 99%"` (no space before %, as most people write it) and `--preset "Seed 004"` were refused as
    # invalid choices, though they name one preset and no other.
    from mnist_core.cli import _config_from_args, build_parser
    from mnist_core.config import preset_config

    config = _config_from_args(build_parser().parse_args(["train", "--preset", typed]))
    assert config == preset_config(preset)


def test_a_preset_name_that_is_no_preset_is_still_refused_with_the_list() -> None:
    result = run_cli("train", "--preset", "fastest", "--json")
    line = assert_one_line_error(result.returncode, result.stderr, "argument --preset: invalid choice: 'fastest'",
                                 "'fastest to 99 %'")
    assert_json_error(result.stdout, line)


def test_model_settings_typed_with_spaces_are_read() -> None:
    # `--model-kwarg "width = 48"` was refused as "model 'fast' has no setting width : it takes width, hidden".
    from mnist_core.cli import _config_from_args, build_parser

    config = _config_from_args(build_parser().parse_args(["train", "--model-kwarg", "width = 48",
                                                          "--model-kwarg", " hidden=64 "]))
    assert config.model_kwargs == {"width": 48, "hidden": 64} and isinstance(config.model_kwargs["width"], int)


def test_predict_reads_a_picture_from_standard_input(untrained_checkpoint: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture) -> None:
    # `-` is standard input, as for other Unix tools; it was "- does not exist or is not a file".
    picture = io.BytesIO()
    digit_image("ring").save(picture, format="PNG")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(picture.getvalue())))
    assert main(["predict", "--checkpoint", str(untrained_checkpoint), "-", "--json"]) == 0
    [result] = last_json(capsys.readouterr().out)
    assert result["path"] == "-" and result["digit"] in range(10)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))  # nothing piped in
    assert main(["predict", "--checkpoint", str(untrained_checkpoint), "-"]) == 2
    assert capsys.readouterr().err == "error: standard input is empty (0 bytes): choose an image file (PNG, JPEG…)\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(bytes(30 * 10**6))))  # 30 MB: read only to 25 + 1 B
    assert main(["predict", "--checkpoint", str(untrained_checkpoint), "-"]) == 2
    assert capsys.readouterr().err == "error: standard input is over 25 MB: use a smaller image\n"


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="no pseudo-terminals on this system")
def test_standard_input_that_is_the_terminal_is_refused_instead_of_waiting(untrained_checkpoint: Path) -> None:
    """`predict -` typed with nothing piped in waited for ever, silently, for a picture typed at the keyboard."""
    leader, terminal = os.openpty()
    try:
        done = subprocess.run([sys.executable, "-m", "mnist_core", "predict", "--checkpoint", str(untrained_checkpoint),
                               "-", "--json"], cwd=REPO_ROOT, stdin=terminal, capture_output=True, text=True,
                              timeout=120)
    finally:
        os.close(terminal)
        os.close(leader)
    line = assert_one_line_error(done.returncode, done.stderr, "standard input is the terminal, so '-' would wait for "
                                 "a picture typed at the keyboard: pipe one in (cat digit.png | python -m mnist_core "
                                 "predict -) or give the picture's path")
    assert_json_error(done.stdout, line)


def test_a_closed_or_unreadable_standard_input_is_one_clear_message(untrained_checkpoint: Path,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture) -> None:
    """`predict - <&-`: Python has no sys.stdin then, and it was an internal error (AttributeError: 'NoneType' object
    has no attribute 'buffer'); `predict - < somefolder` was one too (IsADirectoryError)."""
    monkeypatch.setattr(sys, "stdin", None)
    code = main(["predict", "--checkpoint", str(untrained_checkpoint), "-", "--json"])
    captured = capsys.readouterr()
    line = assert_one_line_error(code, captured.err, "standard input is closed, so '-' has no picture to read: pipe "
                                 "one in (cat digit.png | python -m mnist_core predict -) or give the picture's path")
    assert_json_error(captured.out, line)

    class Folder(io.RawIOBase):  # what reading `< somefolder` does
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            raise IsADirectoryError(21, "Is a directory")

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(Folder())))
    code = main(["predict", "--checkpoint", str(untrained_checkpoint), "-"])
    assert_one_line_error(code, capsys.readouterr().err, "cannot read standard input (Is a directory): pipe a picture "
                          "in, or give the picture's path instead of '-'")


def test_predict_warns_that_a_weak_model_s_readings_mean_little(tmp_path: Path) -> None:
    """A run stopped at 61 % read a clear 2 as "5 (36.7%)" without a word (its own confidence floor, 22 %, is as weak
    as it is); the Sketch page says such a model's readings mean little."""
    torch.manual_seed(0)
    weak, good = (write_checkpoint(checkpoint_payload("seed-net", {}, build_model("seed-net"), {}, [],
                                                      {"test_accuracy": accuracy}), tmp_path / f"{name}.pt")
                  for name, accuracy in (("weak", 60.79), ("good", 99.1)))
    image = tmp_path / "one.png"
    digit_image("bar").save(image)
    process = run_cli("predict", "--checkpoint", weak, image, "--json")
    assert process.returncode == 0 and last_json(process.stdout)[0]["digit"] in range(10)
    assert process.stderr.splitlines() == [
        f"warning: {weak} reads only 60.79 % of MNIST's test digits right (under 90 %), so what it reads means little: "
        f"train it longer, or give --checkpoint a better model"]
    process = run_cli("predict", "--checkpoint", good, image)
    assert process.returncode == 0 and process.stderr == ""


def test_predict_human_output_is_one_line_per_image(untrained_checkpoint: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    image = tmp_path / "one.png"
    digit_image("bar").save(image)
    assert main(["predict", "--checkpoint", str(untrained_checkpoint), str(image)]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith(f"{image}: ") and line.endswith("%)")


def test_the_readmes_example_pictures_are_read_right_and_sure(capsys: pytest.CaptureFixture) -> None:
    """The README's `predict` command runs on the pictures in examples/ (made by `python -m tests.e2e.strokes
    --examples examples`): a drawing as the Sketch canvas makes it, a phone photo of paper, a real test image."""
    pictures = sorted((REPO_ROOT / "examples").glob("*.*"))
    assert [picture.name for picture in pictures] == ["drawn-3.png", "mnist-test-1.png", "photo-7.jpg"]
    assert main(["predict", "--checkpoint", str(DEFAULT_CHECKPOINT), *map(str, pictures), "--json"]) == 0
    readings = last_json(capsys.readouterr().out)
    assert [(reading["digit"], reading["unsure"]) for reading in readings] == [(3, False), (2, False), (7, False)]


def test_bad_input_is_exit_2_with_one_line_and_nothing_on_stdout(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    # (In a real interpreter too: see test_robustness_checkpoints.py::test_the_cli_refuses_a_malicious_model_file…)
    code = main(["predict", "--checkpoint", str(tmp_path / "missing.pt"), str(tmp_path / "x.png")])
    captured = capsys.readouterr()
    assert_one_line_error(code, captured.err, "missing.pt does not exist: check the path")
    assert captured.out == ""


@pytest.mark.parametrize("argv", [["predict", "--checkpoint", "missing.pt", "x.png", "--json"],  # bad input
                                  ["train", "--epochs", "0", "--json"],  # refused settings
                                  ["train", "--no-such-option", "--json"],  # a usage error, from argparse
                                  ["models", "--json", "--sort", "size"]])
def test_with_json_a_failure_is_json_on_stdout_too(argv: list[str], capsys: pytest.CaptureFixture) -> None:
    """The CLI contract: with --json the last stdout line of *every* command is one JSON value, failures included."""
    code = main(argv)
    captured = capsys.readouterr()
    line = assert_one_line_error(code, captured.err)
    assert_json_error(captured.out, line)


def test_json_output_is_strict_json_without_nan_or_infinity(capsys: pytest.CaptureFixture) -> None:
    """json.dumps writes NaN and Infinity by default, which JSON readers refuse (evaluate printed "test_loss": NaN);
    the commands refuse non-finite model outputs first, and anything else non-finite is written as null."""
    cli._emit({"test_loss": float("nan"), "lr": [float("inf"), 0.5], "pair": (float("-inf"), 1)}, True, "")
    line = capsys.readouterr().out.strip()
    assert json.loads(line, parse_constant=lambda token: pytest.fail(f"{token} in {line}")) == {
        "test_loss": None, "lr": [None, 0.5], "pair": [None, 1]}
    assert cli._rounded_metrics({"test_accuracy": 99.31999969482422, "lr": 0.0012345678}) == {
        "test_accuracy": 99.32, "lr": 0.0012345678}


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_stdout_that_cannot_be_written_is_one_line_on_stderr() -> None:
    """`models --json > /dev/full` printed two chained tracebacks (the internal-error JSON failed to print too) and a
    third "Exception ignored" at exit."""
    with open("/dev/full", "w") as full:
        process = subprocess.run([sys.executable, "-m", "mnist_core", "models", "--json"], cwd=REPO_ROOT, stdout=full,
                                 stderr=subprocess.PIPE, text=True, timeout=120)
    assert process.returncode == 2
    assert process.stderr == ("error: cannot write the output to standard output (No space left on device): free some "
                              "disk space, or send the output elsewhere\n")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("arguments", [["--help"], ["evaluate", "--help"], ["models", "--help", "--json"], ["--version"]])
def test_help_that_cannot_be_written_is_an_error_too(arguments: list[str]) -> None:
    """`--help > /dev/full` exited 0 with nothing written: argparse ignores a failed write."""
    with open("/dev/full", "w") as full:
        process = subprocess.run([sys.executable, "-m", "mnist_core", *arguments], cwd=REPO_ROOT, stdout=full,
                                 stderr=subprocess.PIPE, text=True, timeout=120)
    assert process.returncode == 2
    assert process.stderr == ("error: cannot write the output to standard output (No space left on device): free some "
                              "disk space, or send the output elsewhere\n")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("arguments, error", [
    (["evaluate", "--checkpoint", "/nonexistent/model.pt"], "/nonexistent/model.pt does not exist: check the path"),
    (["models", "--jsn"], "unrecognized arguments: --jsn (see `python -m mnist_core models --help`)"),
    (["predict", "/nonexistent/digit.png"], "/nonexistent/digit.png does not exist: check the path")])
def test_a_stderr_that_cannot_be_written_leaves_the_exit_code_and_the_json(arguments: list[str], error: str) -> None:
    """With `2>/dev/full` a bad input was exit 1 (a bug) and its JSON line was never written: writing the message
    failed first."""
    with open("/dev/full", "w") as full:
        process = subprocess.run([sys.executable, "-m", "mnist_core", *arguments, "--json"], cwd=REPO_ROOT,
                                 stdout=subprocess.PIPE, stderr=full, text=True, timeout=120)
    assert process.returncode == 2, process.stdout
    last = json.loads(process.stdout.splitlines()[-1])
    assert (last["error"] if isinstance(last, dict) else last[0]["error"]) == error, last


def test_a_closed_stdout_pipe_ends_quietly() -> None:
    """`models --json | head -c 600`: the reader leaves early; exit 141 like other tools SIGPIPE ends, no message."""
    process = subprocess.Popen([sys.executable, "-m", "mnist_core", "models", "--json"], cwd=REPO_ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.stdout.close()  # closed before the command writes anything
    stderr = process.stderr.read()
    assert process.wait(timeout=120) == 141, stderr  # 128 + SIGPIPE, as the shell reports for `yes | head`
    assert stderr == ""


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_checkpoint_option_has_help_and_shows_its_default(command: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps long help lines
    assert exited.value.code == 0
    assert f"model file saved by `train` or the app (default: {DEFAULT_CHECKPOINT})" in text


@pytest.mark.parametrize("json_flag", [[], ["--json"]], ids=["text", "json"])
def test_predict_reports_each_bad_image_once_and_still_reads_the_good_ones(
        json_flag: list[str], untrained_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    good, empty, other = tmp_path / "good.png", tmp_path / "zero.png", tmp_path / "notes.png"
    digit_image("bar").save(good)
    empty.write_bytes(b"")
    other.write_bytes(b"meeting notes, not an image\n")  # (a PDF is named as such)
    code = main(["predict", "--checkpoint", str(untrained_checkpoint), str(empty), str(good), str(other), *json_flag])
    captured = capsys.readouterr()
    assert code == 2  # some input was bad (docs/robustness.md: "Several files, some bad")
    assert captured.err.splitlines() == [f"error: {empty} is empty (0 bytes): choose an image file (PNG, JPEG…)",
                                         f"error: {other} is not an image MNIST Studio can read: use PNG, JPEG, BMP, "
                                         f"GIF, WebP or TIFF"]  # one line each, the path once
    if json_flag:
        [line] = captured.out.splitlines()
        bad_empty, read, bad_other = json.loads(line)
        assert read["path"] == str(good) and read["digit"] in range(10)
        assert bad_empty["digit"] is None and "is empty (0 bytes)" in bad_empty["error"]
        assert bad_other["digit"] is None and "is not an image" in bad_other["error"]
    else:
        [line] = captured.out.splitlines()  # the bad images were reported on stderr only
        assert line.startswith(f"{good}: ") and line.endswith("%)")


def test_one_bad_image_is_one_line_on_stderr_and_nothing_on_stdout(untrained_checkpoint: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / "zero.png"
    empty.write_bytes(b"")
    code = main(["predict", "--checkpoint", str(untrained_checkpoint), str(empty)])
    captured = capsys.readouterr()
    assert_one_line_error(code, captured.err, f"{empty} is empty (0 bytes)")
    assert captured.out == ""  # no --json: stdout is for readings only


@pytest.mark.parametrize("subset", ["-5", "0", "1", "60001"])
def test_an_impossible_train_subset_is_blamed_on_the_subset(subset: str, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    code = main(["train", "--train-subset", subset, "--out", str(tmp_path / "m.pt")])
    assert_one_line_error(code, capsys.readouterr().err, f"train subset must be 2…60000 images (got {subset})")


@pytest.mark.parametrize("epochs, text", [(1.0, "1 epoch"), (10, "10 epochs"), (12.5, "12.5 epochs"), (0.25, "0.25 epochs"),
                                          (0.799574, "0.8 epochs"), (0.0021322, "0.002 epochs")])
def test_epochs_read_naturally_in_the_summary(epochs: float, text: str) -> None:
    assert epochs_text(epochs) == text


# --- Training, on synthetic data (conftest.tiny_mnist: 512 training images) ---

@pytest.fixture()
def synthetic_data(monkeypatch: pytest.MonkeyPatch, tiny_mnist: Mnist) -> None:
    monkeypatch.setattr(mnist_core.data, "load_mnist", lambda *args, **kwargs: tiny_mnist)


def test_evaluate_prints_the_confusion_matrix_its_help_promises(untrained_checkpoint: Path, synthetic_data: None,
                                                                 tiny_mnist: Mnist,
                                                                 capsys: pytest.CaptureFixture) -> None:
    """`evaluate --help` says "Test accuracy, loss and confusion matrix"; without --json it printed one line, the
    accuracy and the loss."""
    assert main(["evaluate", "--checkpoint", str(untrained_checkpoint), "--device", "cpu"]) == 0
    summary, title, header, *rows = capsys.readouterr().out.splitlines()
    assert summary.startswith("seed-net: ") and "% test accuracy, loss " in summary
    assert title == "confusion matrix (rows: true digit, columns: predicted digit):"
    assert header.split() == ["true", *map(str, range(10))]
    assert [int(row.split()[0]) for row in rows] == list(range(10))
    counts = [[int(count.replace(",", "")) for count in row.split()[1:]] for row in rows]
    assert [sum(row) for row in counts] == torch.bincount(tiny_mnist.test.labels, minlength=10).tolist()
    assert len({len(row) for row in [header, *rows]}) == 1, "the columns line up"


def _train(tmp_path: Path, *options: str) -> int:
    return main(["train", "--model", "seed-net", "--train-subset", "256", "--batch-size", "64", "--device", "cpu",
                 "--out", str(tmp_path / "model.pt"), *options])


class _FullStream(io.StringIO):
    """A stderr whose every write fails, as on `2>/dev/full`."""

    def write(self, text: str) -> int:
        raise OSError(28, "No space left on device")


def test_training_with_a_stderr_that_cannot_be_written_still_saves_the_run(tmp_path: Path, synthetic_data: None,
                                                                           monkeypatch: pytest.MonkeyPatch,
                                                                           capsys: pytest.CaptureFixture) -> None:
    """The first note or progress-bar line failed to write: an internal error (exit 1) before any batch, and no
    model."""
    monkeypatch.setattr(sys, "stderr", _FullStream())
    assert _train(tmp_path, "--epochs", "0.5", "--out", str(tmp_path / "mine"), "--json") == 0  # (the note too)
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["test_accuracy"] >= 0
    assert load_checkpoint(tmp_path / "mine").model_name == "seed-net"


def test_a_checkpoint_the_app_would_not_list_gets_a_note(tmp_path: Path, synthetic_data: None,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture) -> None:
    """`--out checkpoints/mine` saves fine, but the app lists only .pt/.pth files there: say so."""
    monkeypatch.setattr(mnist_core.checkpoints, "CHECKPOINT_DIR", tmp_path)
    assert main(["train", "--model", "seed-net", "--train-subset", "256", "--batch-size", "64", "--device", "cpu",
                 "--out", str(tmp_path / "mine")]) == 0
    assert "the app lists only .pt and .pth files in checkpoints/, so it will not show mine" in capsys.readouterr().err
    assert (tmp_path / "mine").is_file()
    assert _train(tmp_path) == 0  # elsewhere, or with .pt: no note
    assert "note:" not in capsys.readouterr().err
    # The app lists `.PT` too: the note said it would not show `mine.PT`.
    assert main(["train", "--model", "seed-net", "--train-subset", "256", "--batch-size", "64", "--device", "cpu",
                 "--out", str(tmp_path / "mine.PT")]) == 0
    assert "note:" not in capsys.readouterr().err
    assert tmp_path / "mine.PT" in list_checkpoints(tmp_path)


def test_a_run_whose_out_is_taken_while_it_trains_is_saved_beside_it(tmp_path: Path, synthetic_data: None,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture) -> None:
    """Two runs with the same --out: both find it free, the first to finish takes it. The second was refused with
    "already exists: choose another name" after training, its model lost. Now it is kept beside, and said so."""
    import mnist_core.train

    real_fit = mnist_core.train.fit

    def fit_while_another_run_finishes(*args: Any, **kwargs: Any) -> Any:
        result = real_fit(*args, **kwargs)
        (tmp_path / "model.pt").write_bytes(b"the other run's model")
        (tmp_path / "model-2.pt").write_bytes(b"and an earlier one")
        return result

    monkeypatch.setattr(mnist_core.train, "fit", fit_while_another_run_finishes)
    code = _train(tmp_path, "--epochs", "0.25", "--json")
    captured = capsys.readouterr()
    message = (f"{tmp_path / 'model.pt'} was created by another program while this run trained (nothing was "
               f"overwritten): saved this run as {tmp_path / 'model-3.pt'} instead")
    assert code == 2 and "Traceback" not in captured.err  # (the progress bar precedes the error on stderr)
    assert [line for line in captured.err.splitlines() if line.startswith("error: ")] == [f"error: {message}"]
    assert_json_error(captured.out, message)
    assert (tmp_path / "model.pt").read_bytes() == b"the other run's model"
    assert (tmp_path / "model-2.pt").read_bytes() == b"and an earlier one"
    assert load_checkpoint(tmp_path / "model-3.pt").model_name == "seed-net"


def test_runs_started_in_the_same_second_without_out_each_get_a_free_name(tmp_path: Path, synthetic_data: None,
                                                                           monkeypatch: pytest.MonkeyPatch,
                                                                           capsys: pytest.CaptureFixture) -> None:
    """Four `train` runs without --out started in one second: three exited 2 ("…fast-20261202-042219.pt was created by
    another program while this run trained … saved this run as …-2.pt instead"), though no one chose that name.
    A default name already taken at the start, or taken while the run trains, now goes to the next free one,
    silently; a chosen --out keeps its notice (test_a_run_whose_out_is_taken_while_it_trains_is_saved_beside_it)."""
    import mnist_core.train
    from datetime import datetime

    class SameSecond(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> datetime:
            return datetime(2026, 12, 2, 4, 22, 19)

    monkeypatch.setattr(mnist_core.checkpoints, "CHECKPOINT_DIR", tmp_path)
    monkeypatch.setattr(cli, "datetime", SameSecond)
    (tmp_path / "seed-net-20261202-042219.pt").write_bytes(b"a run of this second that finished already")
    real_fit = mnist_core.train.fit

    def fit_while_another_run_finishes(*args: Any, **kwargs: Any) -> Any:
        result = real_fit(*args, **kwargs)
        (tmp_path / "seed-net-20261202-042219-2.pt").write_bytes(b"another run of this second")
        return result

    monkeypatch.setattr(mnist_core.train, "fit", fit_while_another_run_finishes)
    code = main(["train", "--model", "seed-net", "--train-subset", "256", "--batch-size", "64", "--device", "cpu",
                 "--epochs", "0.25", "--json"])
    captured = capsys.readouterr()
    saved = tmp_path / "seed-net-20261202-042219-3.pt"
    assert code == 0 and "error" not in captured.err, captured.err
    assert last_json(captured.out)["checkpoint"] == str(saved)
    assert load_checkpoint(saved).model_name == "seed-net"
    assert (tmp_path / "seed-net-20261202-042219-2.pt").read_bytes() == b"another run of this second"


def test_options_must_be_spelled_out(capsys: pytest.CaptureFixture) -> None:
    """`--jso` was taken for --json on success, but a failure's JSON looks for `--json` itself: `evaluate --checkpoint
    /nonexist --jso` printed no JSON. Abbreviations are refused everywhere now."""
    code = main(["evaluate", "--checkpoint", "/nonexist", "--jso"])
    assert_one_line_error(code, capsys.readouterr().err, "unrecognized arguments: --jso (see `python -m mnist_core "
                          "evaluate --help`)")
    assert main(["train", "--epoch", "1", "--json"]) == 2
    captured = capsys.readouterr()
    assert "unrecognized arguments: --epoch" in captured.err
    assert json.loads(captured.out)["exit_code"] == 2
    assert all(not parser.allow_abbrev for parser in _all_parsers(cli.build_parser()))


def test_train_json_stdout_is_only_the_json_with_rounded_metrics(tmp_path: Path, synthetic_data: None,
                                                                  capsys: pytest.CaptureFixture) -> None:
    assert _train(tmp_path, "--epochs", "1", "--eval-every", "0.5", "--json") == 0
    captured = capsys.readouterr()
    [line] = captured.out.splitlines()  # the per-epoch lines go to stderr, with the progress bar
    summary = json.loads(line)
    assert "epoch 0.50: train loss" in captured.err and "epoch 1.00: train loss" in captured.err
    records = summary["history"]
    assert [record["epoch"] for record in records] == [0.5, 1.0]
    for values in (summary, *records):
        for key in [key for key in values if key.endswith(("accuracy", "loss"))]:
            assert values[key] == round(values[key], cli.JSON_DECIMALS), (key, values[key])
    assert summary["test_accuracy"] == round(load_checkpoint(tmp_path / "model.pt").metrics["test_accuracy"], 4)
    assert summary["config"]["lr"] == 0.01 and records[0]["lr"] > 0  # other numbers are left as they are


def test_train_text_summary_says_epoch_in_the_singular(tmp_path: Path, synthetic_data: None,
                                                       capsys: pytest.CaptureFixture) -> None:
    assert _train(tmp_path, "--epochs", "1") == 0
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith("seed-net: ") and "% test accuracy after 1 epoch in " in line


def test_compiled_training_reports_its_compile_time_apart(tmp_path: Path, synthetic_data: None,
                                                         capsys: pytest.CaptureFixture) -> None:
    assert _train(tmp_path, "--epochs", "0.5", "--compile", "--json") == 0
    captured = capsys.readouterr()
    assert "compiling the model (torch.compile) before training starts" in captured.err
    summary = json.loads(captured.out)
    assert summary["compile_seconds"] > 0 and summary["config"]["compile"] is True
    assert load_checkpoint(tmp_path / "model.pt").config["compile"] is True  # the recipe is kept with the model


def test_less_than_one_batch_of_epochs_says_it_trains_one_batch(tmp_path: Path, synthetic_data: None,
                                                                capsys: pytest.CaptureFixture) -> None:
    assert _train(tmp_path, "--epochs", "0.001", "--json") == 0  # 4 batches per epoch: one batch is 0.25 epochs
    captured = capsys.readouterr()
    assert "note: 0.001 epochs is less than one batch of 64 images: training one batch (0.25 epochs) instead" \
        in captured.err
    [line] = captured.out.splitlines()
    assert json.loads(line)["epochs"] == 0.25
    assert _train(tmp_path, "--epochs", "0.2", "--overwrite") == 0  # 0.8 of a batch: also said
    assert "note: 0.2 epochs is less than one batch" in capsys.readouterr().err
    assert _train(tmp_path, "--epochs", "0.5", "--overwrite") == 0  # whole batches: no note
    assert "note:" not in capsys.readouterr().err


@pytest.mark.parametrize("argv, words", [
    ([], "the following arguments are required: {models,train,evaluate,predict}"),
    (["fly"], "invalid choice: 'fly'"),
    (["train", "--lr", "fast"], "argument --lr: invalid float value: 'fast'"),
    (["train", "--model", "resnet"], "argument --model: invalid choice: 'resnet'"),
    (["train", "--optimizer", "rmsprop"], "invalid choice: 'rmsprop'"),
    (["predict"], "the following arguments are required: IMAGE"),
    (["evaluate", "--wat"], "unrecognized arguments: --wat (see `python -m mnist_core evaluate --help`)"),
    (["models", "extra"], "unrecognized arguments: extra (see `python -m mnist_core models --help`)"),  # its own help
])
def test_usage_errors_are_one_line(argv: list[str], words: str, capsys: pytest.CaptureFixture) -> None:
    assert_one_line_error(main(argv), capsys.readouterr().err, words, "--help")


@pytest.mark.parametrize("argv, command", [(["--json", "models"], "models"),
                                           (["--json", "evaluate", "--checkpoint", "nope.pt"], "evaluate")])
def test_json_before_the_command_says_where_it_goes(argv: list[str], command: str,
                                                    capsys: pytest.CaptureFixture) -> None:
    """`--json models` said "unrecognized arguments: --json (see `python -m mnist_core models --help`)", a help that
    lists --json."""
    code = main(argv)
    captured = capsys.readouterr()
    line = assert_one_line_error(code, captured.err, f"--json is an option of {command}, so it goes after the "
                                 f"command's name: python -m mnist_core {command} --json")
    assert_json_error(captured.out, line)


def _crash(args) -> int:
    raise RuntimeError("something nobody expected\nsecond line")


def test_a_bug_is_one_line_with_exit_1_and_the_traceback_on_request(monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(cli, "cmd_models", _crash)
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    assert main(["models"]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("internal error (RuntimeError: something nobody expected): this is a bug")
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    with pytest.raises(RuntimeError, match="something nobody expected"):
        main(["models"])


def test_running_out_of_device_memory_says_what_to_lower(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture) -> None:
    def out_of_memory(args) -> int:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(cli, "cmd_models", out_of_memory)
    assert_one_line_error(main(["models"]), capsys.readouterr().err, "ran out of memory: lower --batch-size")


def test_help_exits_0(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["train", "--help"])
    assert exited.value.code == 0 and "--batch-size" in capsys.readouterr().out


def test_version_names_the_checkpoint_format_and_the_libraries(capsys: pytest.CaptureFixture) -> None:
    """`--version` said "the following arguments are required: command" (exit 2)."""
    import torch
    import torchvision

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == (f"MNIST Studio (checkpoint format mnist-studio/1); torch {torch.__version__}, "
                                       f"torchvision {torchvision.__version__}, Python {sys.version.split()[0]}\n")


def test_version_with_json_ends_in_a_version_json_line(capsys: pytest.CaptureFixture) -> None:
    """`--version --json` ended in {"help": "MNIST Studio (checkpoint format …"}: a version under the key "help"."""
    with pytest.raises(SystemExit) as exited:
        main(["--version", "--json"])
    out = capsys.readouterr().out
    assert exited.value.code == 0 and out.startswith("MNIST Studio (checkpoint format mnist-studio/1); torch ")
    assert last_json(out) == {"version": out.splitlines()[0]}


def test_the_help_says_what_each_exit_code_means(capsys: pytest.CaptureFixture) -> None:
    # Ctrl-C's 130 and a bug's 1 were only in docs/robustness.md.
    with pytest.raises(SystemExit):
        main(["--help"])
    assert " ".join(capsys.readouterr().out.split()).endswith(
        "exit codes: 0 ok; 2 bad input (one line on stderr); 130 interrupted (Ctrl-C; a run being trained is not "
        "saved); 1 a bug in MNIST Studio (MNIST_STUDIO_DEBUG=1 shows its traceback)")


@pytest.mark.parametrize("argv", [["train", "--help", "--json"], ["--json", "--help"]])
def test_help_with_json_ends_in_the_json_line_too(argv: list[str], capsys: pytest.CaptureFixture) -> None:
    """The CLI contract: with --json the last stdout line is one JSON value; --help printed only its text."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out = capsys.readouterr().out
    assert exited.value.code == 0 and out.startswith("usage: python -m mnist_core")  # people still read the text
    assert last_json(out) == {"help": out[:out.rindex("\n", 0, -1) + 1]}


@pytest.mark.parametrize("command, first_line", [
    ("models", "List the model registry"), ("train", "Train a model and save a checkpoint"),
    ("evaluate", "Test accuracy, loss and confusion matrix"), ("predict", "Read one handwritten digit")])
def test_each_command_s_help_says_what_it_does(command: str, first_line: str, capsys: pytest.CaptureFixture) -> None:
    """Only train's --help had a description; and --preset's usage read `{seed 000/001,seed 002,…}`, which does not
    say that the names, spaces and all, need quotes."""
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert first_line in text
    if command == "train":
        assert "[--preset NAME]" in text and "start from a recipe, quoted: 'seed 000/001'" in text
        assert "'fastest to 99 %'" in text and "{seed 000" not in text


def test_train_refuses_an_existing_out_before_reading_data(untrained_checkpoint: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    before = untrained_checkpoint.read_bytes()
    code = main(["train", "--model", "seed-net", "--data-root", str(tmp_path / "no-data-here"),
                 "--out", str(untrained_checkpoint)])
    assert_one_line_error(code, capsys.readouterr().err, "already exists", "--overwrite")
    assert untrained_checkpoint.read_bytes() == before


def test_train_refuses_an_out_name_with_a_blank_at_its_end_before_reading_data(tmp_path: Path,
                                                                               capsys: pytest.CaptureFixture) -> None:
    code = main(["train", "--model", "seed-net", "--data-root", str(tmp_path / "no-data-here"),
                 "--out", str(tmp_path / "model.pt ")])
    assert_one_line_error(code, capsys.readouterr().err, "'model.pt ' has a blank at its end", "remove it")
    assert list(tmp_path.iterdir()) == []


# --- With the real dataset ---

@pytest.mark.realdata
def test_train_on_a_small_subset_then_evaluate_the_checkpoint(mnist_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "small.pt"
    trained = run_cli("train", "--model", "seed-net", "--train-subset", "2048", "--batch-size", "64", "--epochs", "1",
                      "--lr", "0.01", "--device", "cpu", "--data-root", mnist_root, "--out", out, "--json")
    assert trained.returncode == 0, trained.stderr
    summary = last_json(trained.stdout)
    assert set(summary) >= {"model", "epochs", "device", "train_seconds", "test_accuracy", "test_loss", "checkpoint"}
    assert (summary["model"], summary["epochs"], summary["device"]) == ("seed-net", 1.0, "cpu")
    assert summary["checkpoint"] == str(out) and load_checkpoint(out).model_name == "seed-net"
    assert 80 < summary["test_accuracy"] <= 100  # 2048 images, one epoch: far above chance, percent not fraction
    assert "seed-net on cpu" in trained.stderr  # tqdm progress goes to stderr

    evaluated = run_cli("evaluate", "--checkpoint", out, "--data-root", mnist_root, "--device", "cpu", "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    report = last_json(evaluated.stdout)
    assert report["test_accuracy"] == pytest.approx(summary["test_accuracy"], abs=0.02)
    assert report["test_loss"] == pytest.approx(summary["test_loss"], rel=1e-3)
    matrix = report["confusion_matrix"]
    assert len(matrix) == 10 and all(len(row) == 10 for row in matrix)
    assert sum(map(sum, matrix)) == 10_000
    assert [sum(row) for row in matrix] == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # rows = true


def test_ctrl_c_while_starting_up_is_interrupted_not_a_traceback(monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture) -> None:
    # build_parser imports torch, which takes seconds: a Ctrl-C then must end like one during training.
    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert main(["models"]) == 130
    assert capsys.readouterr().err == "interrupted\n"


@pytest.mark.parametrize("module", ["torch", "torchvision.datasets.mnist"])
def test_ctrl_c_while_torch_loads_is_not_swallowed_by_its_start_up_code(module: str, tmp_path: Path) -> None:
    """torch's and torchvision's C++ start-up can swallow the KeyboardInterrupt raised inside it: the command then ran to
    its end (exit 0) — or aborted ("terminate called …"). Here a stand-in for that code swallows it."""
    argv = (["evaluate", "--checkpoint", str(tmp_path / "absent.pt")] if module == "torch" else
            ["train", "--train-subset", "64", "--batch-size", "32", "--epochs", "0.5", "--data-root",
             str(tmp_path / "absent"), "--out", str(tmp_path / "m.pt")])
    script = textwrap.dedent(f"""
        import os, signal, sys, time
        import mnist_core.cli as cli

        class Loading:  # is asked for the module first, and swallows the Ctrl-C that comes meanwhile
            def find_spec(self, name, path=None, target=None):
                if name == {module!r}:
                    sys.meta_path.remove(self)
                    try:
                        os.kill(os.getpid(), signal.SIGINT)
                        time.sleep(10)
                    except KeyboardInterrupt:
                        pass
                return None

        sys.meta_path.insert(0, Loading())
        sys.exit(cli.main({argv + ["--json"]!r}))
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stderr, done.stdout) == (130, "interrupted\n",
                                                          '{"error": "interrupted", "exit_code": 130}\n')
    assert not list(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize("module, argv", [("torch", ["models", "--json"]), ("torch", ["--help", "--json"]),
                                          ("torchvision", ["--version", "--json"]), ("PIL", ["models", "--json"])])
def test_a_python_without_the_requirements_is_one_line_saying_to_install_them(module: str, argv: list[str]) -> None:
    """Run with a Python outside the virtual environment (torch not installed), every command, --help too, was two
    chained tracebacks of `ModuleNotFoundError: No module named 'torch'`, exit 1, without its JSON line."""
    script = f"import sys; sys.modules[{module!r}] = None; import mnist_core.cli as cli; sys.exit(cli.main({argv!r}))"
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    line = assert_one_line_error(done.returncode, done.stderr, f"needs the Python package {module}, which this "
                                 f"Python ({sys.executable}) cannot import", "pip install -r requirements.txt")
    assert_json_error(done.stdout, line)


@pytest.mark.parametrize("module, failure, argv", [
    ("torchvision", "RuntimeError('operator torchvision::nms does not exist')", ["--version", "--json"]),
    ("torch", "OSError('libtorch_cpu.so: cannot open shared object file')", ["models", "--json"])])
def test_a_package_that_fails_to_load_is_one_line_saying_to_reinstall_the_pinned_pair(
        module: str, failure: str, argv: list[str], tmp_path: Path) -> None:
    """A torchvision built for another torch (this machine's own torch wheel has none that matches) failed inside
    its import, and the CLI called that `internal error (…): this is a bug in MNIST Studio`."""
    package = tmp_path / module  # found before the installed one: PYTHONPATH comes first
    package.mkdir()
    (package / "__init__.py").write_text(f"raise {failure}\n")
    script = f"import sys; import mnist_core.cli as cli; sys.exit(cli.main({argv!r}))"
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(tmp_path)})
    line = assert_one_line_error(done.returncode, done.stderr, f"the Python package {module} is installed but fails "
                                 f"to load ({failure.partition('(')[0]}: ", "pip install --force-reinstall -r "
                                 "requirements.txt")
    assert_json_error(done.stdout, line)


@pytest.mark.parametrize("argv", [["predict", "x.png"], ["evaluate"]])
def test_a_missing_default_model_says_how_to_get_it_back(argv: list[str], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture) -> None:
    # Without --checkpoint it said "…/checkpoints/default.pt does not exist: check the path", a path nobody typed.
    monkeypatch.setattr(mnist_core.checkpoints, "DEFAULT_CHECKPOINT", tmp_path / "checkpoints" / "default.pt")
    assert_one_line_error(main(argv), capsys.readouterr().err, "the default model", "is missing: restore it from "
                          "the repository (git checkout -- checkpoints/default.pt), or give --checkpoint")


@pytest.mark.parametrize("argv, words", [(["predict", "--checkpoint", "", "x.png"], "the model file's path is empty"),
                                         (["evaluate", "--checkpoint", " "], "the model file's path is empty")])
def test_an_empty_path_is_called_empty_not_dot(argv: list[str], words: str, capsys: pytest.CaptureFixture) -> None:
    assert_one_line_error(main(argv), capsys.readouterr().err, words)  # Path("") is "." — it said ". does not exist"


@pytest.mark.parametrize("blanks", ["{} ", " {}", "{}\t", " {}  "])
def test_a_path_missing_only_for_blanks_around_it_says_so(blanks: str, untrained_checkpoint: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture) -> None:
    # A pasted path with a space at its end read `error: PATH  does not exist: check the path` of a path the user can
    # see is there (the space is invisible); a data root so was downloaded into, as a new folder named "mnist ".
    monkeypatch.chdir(tmp_path)
    digit_image("bar").save(tmp_path / "one.png")
    for argv, name in ((["predict", "--checkpoint", blanks.format(untrained_checkpoint), "one.png"],
                        str(untrained_checkpoint)),
                       (["predict", "--checkpoint", str(untrained_checkpoint), blanks.format("one.png")], "one.png")):
        message = assert_one_line_error(main(argv), capsys.readouterr().err, "does not exist (mind the ")
        assert message.endswith(f"{name} without {'it' if len(blanks) == 3 else 'them'} exists): check the path")
    (tmp_path / "mnist").mkdir()
    there = sorted(tmp_path.iterdir())
    monkeypatch.setattr(mnist_core.data, "_download", lambda *args: pytest.fail("downloaded into a new folder"))
    monkeypatch.setenv("MNIST_DATA_ROOT", blanks.format(tmp_path / "mnist"))
    assert_one_line_error(main(["evaluate", "--checkpoint", str(untrained_checkpoint)]), capsys.readouterr().err,
                          "does not exist (mind the ", f"{tmp_path / 'mnist'} without ")
    assert sorted(tmp_path.iterdir()) == there


def test_an_empty_picture_path_is_called_empty(untrained_checkpoint: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["predict", "--checkpoint", str(untrained_checkpoint), ""]) == 2
    assert capsys.readouterr().err == "error: the picture's path is empty: give the path of an image file\n"


def test_standard_input_twice_is_refused(untrained_checkpoint: Path, capsys: pytest.CaptureFixture) -> None:
    # The second `-` would find standard input drained and call the picture empty.
    assert main(["predict", "--checkpoint", str(untrained_checkpoint), "-", "-"]) == 2
    assert capsys.readouterr().err == ("error: standard input can be read only once: give '-' for one picture at "
                                       "most\n")


def test_path_options_expand_the_home_folder(untrained_checkpoint: Path, tmp_path: Path, synthetic_data: None,
                                             monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    # A shell leaves `--out=~/x.pt` and quoted paths alone: it would have been a folder named `~` in the cwd.
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "model.pt").write_bytes(untrained_checkpoint.read_bytes())
    digit_image("bar").save(tmp_path / "one.png")
    assert main(["predict", "--checkpoint", "~/model.pt", "~/one.png", "--json"]) == 0
    assert last_json(capsys.readouterr().out)[0]["digit"] in range(10)
    assert main(["train", "--model", "seed-net", "--train-subset", "256", "--batch-size", "64", "--device", "cpu",
                 "--epochs", "0.5", "--out=~/trained.pt"]) == 0
    assert load_checkpoint(tmp_path / "trained.pt").model_name == "seed-net" and not Path("~").exists()


def test_the_data_root_option_expands_the_home_folder(untrained_checkpoint: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "model.pt").write_bytes(untrained_checkpoint.read_bytes())
    (tmp_path / "not-a-folder").write_bytes(b"x")  # (no real data here: the message proves where it looked)
    assert_one_line_error(main(["evaluate", "--checkpoint", "~/model.pt", "--data-root", "~/not-a-folder"]),
                          capsys.readouterr().err, f"data root {tmp_path / 'not-a-folder'} is a file")


def _all_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += _all_parsers(sub)
    return found


def test_every_option_of_every_command_has_help_text() -> None:
    missing = [f"{parser.prog} {'/'.join(action.option_strings) or action.dest}"
               for parser in _all_parsers(cli.build_parser()) for action in parser._actions
               if not isinstance(action, argparse._SubParsersAction) and not (action.help or "").strip()]
    assert missing == []
    train_help = next(p for p in _all_parsers(cli.build_parser()) if p.prog.endswith(" train")).format_help()
    assert "passes over the training set" in train_help  # the texts reach --help


CONTROL_NAME = "\x1b[2J\x1b[31mred\u202eevil\nline"  # clear screen, red, right-to-left override, a newline


def test_control_characters_in_names_are_shown_escaped_not_sent_to_the_terminal(
        untrained_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A file name holding an ANSI escape cleared the terminal (or coloured everything after it) and a newline split
    the one-line message in two: they were echoed raw. They are shown escaped, the rest of the name as typed."""
    code = main(["predict", "--checkpoint", str(tmp_path / f"{CONTROL_NAME}.pt"), "x.png", "--json"])
    captured = capsys.readouterr()
    line = assert_one_line_error(code, captured.err, r"\x1b[2J\x1b[31mred\u202eevil\nline.pt does not exist")
    assert_json_error(captured.out, line)  # the JSON's message is the same, escaped line
    picture = tmp_path / f"{CONTROL_NAME}.png"
    digit_image().save(picture, "PNG")
    assert main(["predict", "--checkpoint", str(untrained_checkpoint), str(picture)]) == 0
    [output] = capsys.readouterr().out.splitlines()
    assert output.startswith(f"{tmp_path}/" + r"\x1b[2J\x1b[31mred\u202eevil\nline.png: ")
    assert main(["predict", "--checkpoint", str(untrained_checkpoint), str(picture), "--json"]) == 0
    assert last_json(capsys.readouterr().out)[0]["path"] == str(picture)  # JSON keeps the real name for scripts


def test_a_usage_error_shows_what_was_typed_escaped(capsys: pytest.CaptureFixture) -> None:
    """argparse quotes a bad choice with repr, but echoes unrecognised arguments raw."""
    assert main(["models", "\x1b[2J"]) == 2
    assert_one_line_error(2, capsys.readouterr().err, r"unrecognized arguments: \x1b[2J")


def test_a_picture_name_that_is_not_utf8_is_read_under_a_strict_utf8_terminal(untrained_checkpoint: Path,
                                                                               tmp_path: Path) -> None:
    """On a desktop's UTF-8 locale Python's stdout refuses the stand-ins for a name's non-UTF-8 bytes: the digit was
    read, then printing its line failed as `internal error (UnicodeEncodeError …)`, exit 1. The byte is shown as
    `\\xff`; errors naming such a file are one escaped line too."""
    picture = os.fsencode(tmp_path) + b"/latin1-\xff.png"
    digit_image().save(picture.decode("utf-8", "surrogateescape"), "PNG")
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    env.pop("MNIST_STUDIO_DEBUG", None)
    command = [sys.executable, "-m", "mnist_core", "predict", "--checkpoint", str(untrained_checkpoint)]
    process = subprocess.run([*command, picture], cwd=REPO_ROOT, env=env, capture_output=True, timeout=300)
    assert process.returncode == 0, process.stderr
    assert process.stdout.decode().startswith(f"{tmp_path}/latin1-\\xff.png: ")
    process = subprocess.run([*command, picture + b".missing"], cwd=REPO_ROOT, env=env, capture_output=True,
                             timeout=300)
    assert_one_line_error(process.returncode, process.stderr.decode(), r"latin1-\xff.png.missing does not exist")


@pytest.mark.parametrize("argv, shown", [(["models"], "fc 320\\u219250\\u219210"), (["train", "--help"], "0\\u20261")])
def test_text_output_to_a_stdout_without_those_characters_shows_them_escaped(argv: list[str], shown: str) -> None:
    # "→" and "…" on a stdout whose encoding lacks them (a Windows console redirected to a file is cp1252, without
    # "→") were `internal error (UnicodeEncodeError …)`, exit 1.
    process = run_cli(*argv, env={"PYTHONIOENCODING": "ascii"})
    assert process.returncode == 0, process.stderr
    assert shown in process.stdout and not process.stderr


def _run_cli_without(stream: int, *args: str) -> subprocess.CompletedProcess:
    """`python -m mnist_core ARGS 2>&-` (stream 2) or `>&-` (1): started with that stream closed (Python then has no
    sys.stderr / sys.stdout); the other one is captured."""
    env = {key: value for key, value in os.environ.items() if key != "MNIST_STUDIO_DEBUG"}
    captured = {"stderr" if stream == 1 else "stdout": subprocess.PIPE}
    return subprocess.run([sys.executable, "-m", "mnist_core", *map(str, args)], cwd=REPO_ROOT, env=env, text=True,
                          timeout=300, preexec_fn=lambda: os.close(stream), **captured)


@pytest.mark.parametrize("argv", [["models"], ["evaluate", "--checkpoint", "nope.pt", "--json"]])
def test_with_stdout_closed_a_command_ends_as_it_would_without_a_traceback(argv: list[str]) -> None:
    # The final flush of stdout was `AttributeError: 'NoneType' object has no attribute 'flush'`: a traceback, exit 1.
    process = _run_cli_without(1, *argv)
    assert process.returncode == (2 if "nope.pt" in argv else 0)
    assert process.stderr == ("error: nope.pt does not exist: check the path\n" if "nope.pt" in argv else "")


def test_a_bad_input_with_stderr_closed_is_still_exit_2_with_its_json(tmp_path: Path) -> None:
    # Writing the error line failed: exit 1, and no JSON on stdout.
    process = _run_cli_without(2, "evaluate", "--checkpoint", tmp_path / "nope.pt", "--json")
    assert process.returncode == 2
    assert json.loads(process.stdout) == {"error": f"{tmp_path}/nope.pt does not exist: check the path",
                                          "exit_code": 2}


@pytest.mark.realdata
def test_train_runs_with_stderr_closed(mnist_root: Path, tmp_path: Path) -> None:
    # Its progress bar had nowhere to go: the run failed at once, exit 1, with nothing said anywhere.
    process = _run_cli_without(2, "train", "--model", "tiny-bn", "--train-subset", "64", "--batch-size", "32",
                               "--epochs", "0.5", "--data-root", mnist_root, "--out", tmp_path / "m.pt", "--json")
    assert process.returncode == 0
    assert last_json(process.stdout)["checkpoint"] == str(tmp_path / "m.pt")
    assert load_checkpoint(tmp_path / "m.pt").model_name == "tiny-bn"


LONG = "x" * 100_000  # a name, value or path pasted (or generated) where a word belongs


@pytest.mark.parametrize("argv, words", [
    (["train", "--model-kwarg", f"{LONG}=3"], "model 'fast' has no setting xxxx"),
    (["train", "--model-kwarg", LONG], "--model-kwarg 'xxxx"),
    (["train", "--model", LONG], "invalid choice: 'xxxx"),
    (["evaluate", "--checkpoint", f"{LONG}.pt"], "xxxx"),
    (["predict", "--checkpoint", "/nowhere/m.pt", "x.png"], "/nowhere/m.pt does not exist"),  # short: left whole
    (["models", *["a"] * 2_000], "unrecognized arguments: a a a"),  # many short words: the whole line is shortened
], ids=["model-kwarg name", "model-kwarg without =", "model name", "checkpoint path", "a short path",
        "2,000 unknown words"])
def test_long_strings_typed_are_shown_shortened_in_messages(argv: list[str], words: str,
                                                            capsys: pytest.CaptureFixture) -> None:
    """A 100,000-character `--model-kwarg` name (or model name, or path) was echoed whole: a message of 100,000
    characters that buried what it said. Every message shows such a string as its first 60 and last 30 characters
    around "…", and a line still too long (2,000 unknown words) as its beginning and end."""
    code = main([*argv, "--json"])
    captured = capsys.readouterr()
    line = assert_one_line_error(code, captured.err, words)
    assert_json_error(captured.out, line)
    if "/nowhere" in line:
        assert "…" not in line
    else:
        assert "…" in line and len(line) < 1_100, line[:300]
    assert line.endswith(("check the path", "--help`)", "width, hidden", "name=number")), line[-200:]


@pytest.mark.parametrize("argv, words", [
    (["train", "--model", "fast", "--out", "-"], "--out - would mean standard output, where a checkpoint cannot be "
                                                  "written: give a file name such as model.pt (./- for one named '-')"),
    (["evaluate", "--checkpoint", "-"], "--checkpoint - would mean standard input, from which a model cannot be read"),
    (["predict", "--checkpoint", "-", "x.png"], "--checkpoint - would mean standard input"),
    (["evaluate", "--data-root", "-"], "--data-root - would mean standard input, from which MNIST cannot be read"),
])
def test_a_dash_for_a_path_option_is_refused_as_a_standard_stream(argv: list[str], words: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture) -> None:
    """`-` is standard input or output to Unix tools (and to `predict -`). `train --out -` trained, then saved the
    checkpoint as a file named `-` in the current folder ("saved -"); `--checkpoint -` said `- does not exist`; and
    `--data-root -` looked for MNIST in a folder named `-` and tried to download it there."""
    monkeypatch.chdir(tmp_path)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the data was loaded: `-` was not refused first")

    monkeypatch.setattr(mnist_core.data, "load_mnist", refuse)
    code = main([*argv, "--json"])
    captured = capsys.readouterr()
    assert_json_error(captured.out, assert_one_line_error(code, captured.err, words))
    assert list(tmp_path.iterdir()) == []  # nothing named `-` written


@pytest.mark.parametrize("argv", [["predict", "-digit.png"], ["predict", "one.png", "-digit.png"],
                                  ["predict", "--checkpoint", "-digit.png", "one.png"]])
def test_a_file_whose_name_starts_with_a_dash_is_named_in_the_message(argv: list[str], untrained_checkpoint: Path,
                                                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture) -> None:
    """`predict -digit.png` said `the following arguments are required: IMAGE` (and `unrecognized arguments:
    -digit.png` beside another picture) of a file that was there: argparse reads a word starting with '-' as an
    option. The message says so and how to name the file; `./-digit.png` (and `-- -digit.png`) read it."""
    monkeypatch.chdir(tmp_path)
    digit_image().save(tmp_path / "-digit.png")
    digit_image().save(tmp_path / "one.png")
    code = main([*argv, "--json"])
    captured = capsys.readouterr()
    line = assert_one_line_error(code, captured.err, "-digit.png is read as an option, as it starts with '-', but it "
                                                     "is a file: write it as ./-digit.png")
    assert_json_error(captured.out, line)
    for images in (["./-digit.png"], ["--", "-digit.png"]):
        assert main(["predict", "--checkpoint", str(untrained_checkpoint), "--json", *images]) == 0
        assert last_json(capsys.readouterr().out)[0]["digit"] is not None
    assert main(["predict", "-missing.png"]) == 2  # no such file: argparse's own message
    assert "the following arguments are required: IMAGE" in capsys.readouterr().err


def test_a_picture_named_json_after_the_double_dash_does_not_turn_on_json(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch,
                                                                          capsys: pytest.CaptureFixture) -> None:
    """After `--` every word is a file: `predict -- --json` (a picture named --json, missing here) answered its
    error in JSON, as if --json had been given."""
    monkeypatch.chdir(tmp_path)
    code = main(["predict", "--", "--json"])
    captured = capsys.readouterr()
    assert_one_line_error(code, captured.err, "--json does not exist")
    assert captured.out == ""


def test_json_with_a_value_is_refused_in_json_too(capsys: pytest.CaptureFixture) -> None:
    """`--json=1` is a usage error (--json takes no value), and its JSON line was missing: only the exact word
    `--json` was looked for before parsing."""
    code = main(["models", "--json=1"])
    captured = capsys.readouterr()
    assert_json_error(captured.out, assert_one_line_error(code, captured.err, "argument --json: ignored explicit "
                                                                              "argument '1'"))
