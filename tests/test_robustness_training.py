"""Issue 6, training settings: every combination `train` accepts either trains or is refused — with one line and
exit 2 — before any data is read or any time is spent. A diverging run says so and keeps its last good weights."""

from __future__ import annotations

import json
import math
import os
import random
import stat
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import pytest
import torch

import mnist_core.data
from cli_support import assert_one_line_error
from mnist_core.checkpoints import checkpoint_bytes, checkpoint_payload, load_checkpoint
from mnist_core.cli import main
from mnist_core.data import Mnist
from mnist_core.errors import DataError
from mnist_core.models import build_model


class DataWasLoaded(Exception):
    """Raised by the stand-in loader: a setting that should have been refused reached the data."""


@pytest.fixture()
def no_data(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise DataWasLoaded("the settings were not refused before loading the data")

    monkeypatch.setattr(mnist_core.data, "load_mnist", refuse)


@pytest.fixture()
def synthetic_data(monkeypatch: pytest.MonkeyPatch, tiny_mnist: Mnist) -> None:
    monkeypatch.setattr(mnist_core.data, "load_mnist", lambda *args, **kwargs: tiny_mnist)


@pytest.mark.parametrize("options, words", [
    (["--epochs", "0"], "epochs must be more than 0"),
    (["--epochs", "-3"], "epochs must be more than 0"),
    (["--epochs", "nan"], "epochs"),
    (["--epochs", "1e6"], "at most 1000"),
    (["--batch-size", "0"], "batch size must be between 2"),
    (["--batch-size", "1"], "batch size must be between 2"),
    (["--batch-size", "100000"], "batch size must be between 2 and the number of training images (60000)"),
    (["--train-subset", "100", "--batch-size", "200"], "number of training images (100); got 200"),
    (["--train-subset", "0"], "train subset"),
    (["--lr", "nan"], "learning rate"),
    (["--scribbles", "0.001", "--batch-size", "32"], "come to less than one per batch of 32"),
    (["--lr", "inf"], "learning rate"),
    (["--lr", "0"], "learning rate must be above 0"),
    (["--lr", "-0.1"], "learning rate"),
    (["--lr", "1e9"], "at most 100"),
    (["--momentum", "1.5"], "momentum"),
    (["--weight-decay", "-1"], "weight decay"),
    (["--label-smoothing", "1"], "label smoothing"),
    (["--rotation", "720", "--augment"], "rotation"),
    (["--translate", "3"], "shift"),
    (["--scale", "-1"], "scale"),
    (["--shear", "90", "--augment"], "shear must be 0…45 degrees"),
    (["--eval-every", "0"], "the interval between evaluations must be a positive, finite number of epochs"),
    (["--eval-every", "-1"], "the interval between evaluations must be a positive, finite number of epochs"),
    (["--eval-every", "nan"], "the interval between evaluations must be a positive, finite number of epochs"),
    (["--eval-every", "inf"], "the interval between evaluations must be a positive, finite number of epochs"),
    (["--model-kwarg", "=3"], "'=3' has no setting name before '=': give name=number, e.g. width=48 (fast takes "
                              "width, hidden)"),
    (["--model-kwarg", "width="], "'width=' has no value after '=': give name=number, e.g. width=48"),
    (["--model-kwarg", "width=12.5"], "width must be a whole number"),
    (["--model-kwarg", "width=1e400"], "'width=1e400': width must be a whole number from 8 to 64"),  # (no range said)
    (["--model-kwarg", "hidden=nan"], "'hidden=nan': hidden must be a whole number from 32 to 512"),
    (["--model-kwarg", "width=abc"], "must look like name=number"),
    (["--model-kwarg", "width"], "must look like name=number"),
    (["--model-kwarg", "width=100000"], "out of range"),
    (["--model-kwarg", "depth=3"], "has no setting depth"),
    (["--model", "tiny-bn", "--model-kwarg", "dropout=2"], "out of range"),
])
def test_impossible_settings_are_refused_before_reading_data(options: list[str], words: str, tmp_path: Path,
                                                             no_data: None, capsys: pytest.CaptureFixture) -> None:
    code = main(["train", "--model", "fast", *options, "--out", str(tmp_path / "m.pt")])
    assert_one_line_error(code, capsys.readouterr().err, words)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("options, words", [
    # `fast`'s own recipe: adam, onecycle, no augmentation, no scribbles
    (["--rotation", "15"], "--rotation acts only with --augment, and this run does not augment: add --augment, or "
                           "leave --rotation out"),
    (["--preset", "seed 004", "--no-augment", "--shear", "10"], "--shear acts only with --augment"),
    (["--step-size", "3"], "--step-size acts only with --scheduler step, and this run's scheduler is onecycle"),
    (["--scheduler", "none", "--gamma", "0.5"], "--gamma acts only with --scheduler step"),
    (["--scheduler", "cosine", "--pct-start", "0.3"], "--pct-start acts only with --scheduler onecycle"),
    (["--optimizer", "sgd", "--beta2", "0.99"], "--beta2 acts only with --optimizer adam or adamw, and this run's "
                                                "optimizer is sgd"),
    (["--optimizer", "adadelta", "--scheduler", "none", "--momentum", "0.5"], "adadelta, which has no momentum"),
    (["--momentum", "0.8"], "--momentum has no effect with --scheduler onecycle, which cycles the momentum itself"),
    (["--scribble-shapes", "mixed"], "--scribble-shapes acts only with --scribbles"),
])
def test_an_option_this_run_would_ignore_is_refused_before_reading_data(options: list[str], words: str,
                                                                        tmp_path: Path, no_data: None,
                                                                        capsys: pytest.CaptureFixture) -> None:
    # `--rotation 15` without --augment trained without any augmentation, and said nothing.
    code = main(["train", "--model", "fast", *options, "--out", str(tmp_path / "m.pt")])
    assert_one_line_error(code, capsys.readouterr().err, words)
    assert list(tmp_path.iterdir()) == []


def test_an_unavailable_device_is_refused_before_reading_data(tmp_path: Path, no_data: None,
                                                              capsys: pytest.CaptureFixture) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the refusal is for machines without it")
    code = main(["train", "--device", "cuda", "--out", str(tmp_path / "m.pt")])
    assert_one_line_error(code, capsys.readouterr().err, "device 'cuda' is not available on this machine")


@pytest.mark.parametrize("out, words", [
    (".", "is a folder"),
    ("blocker/model.pt", "blocker is a file, not a folder, so model.pt cannot be saved in it"),
    ("blocker/sub/model.pt", "sub cannot be reached (Not a directory: a file stands where one of its folders"),
    ("loop/model.pt", "loop cannot be reached (Too many levels of symbolic links"),
    ("taken.pt", "already exists: choose another --out or pass --overwrite"),
    ("runs/", "names no file: give a file name such as"),  # was saved as a file named `runs`
    ("taken.pt/", "taken.pt is a file, not a folder: give the file name without the trailing slash"),  # not x/model.pt
    # Too long for the file system: Path.is_file() raised OSError, an internal error; and a name a little under the
    # limit passed every check, trained, then failed on the longer temp-file name.
    ("a" * 300 + ".pt", "the file name " + "a" * 60 + "…" + "a" * 27 + ".pt is too long (303 bytes; at most"),
    ("b" * 245 + ".pt", "is too long (248 bytes; at most"),
    ("a" * 300 + "/model.pt", "cannot be reached (File name too long), so model.pt cannot be saved in it"),
])
def test_an_unusable_out_path_is_refused_before_training(out: str, words: str, tmp_path: Path, no_data: None,
                                                        capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "blocker").write_bytes(b"a file where a folder should be")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (tmp_path / "taken.pt").write_bytes(b"someone's model")
    code = main(["train", "--model", "fast", "--out", f"{tmp_path}/{out}"])  # (a Path would drop the slash)
    assert_one_line_error(code, capsys.readouterr().err, words)
    assert (tmp_path / "taken.pt").read_bytes() == b"someone's model"


def test_an_empty_out_is_refused_rather_than_read_as_the_default(tmp_path: Path, no_data: None,
                                                                 capsys: pytest.CaptureFixture) -> None:
    # `--out "$OUT"` with OUT unset: saving under checkpoints/ instead would hide the script's mistake.
    code = main(["train", "--model", "fast", "--out", ""])
    assert_one_line_error(code, capsys.readouterr().err, "--out '' names no file")


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_a_device_or_pipe_as_out_is_refused_and_left_alone(overwrite: list[str], tmp_path: Path, no_data: None,
                                                            capsys: pytest.CaptureFixture) -> None:
    # `--out /dev/null --overwrite` (run as root) would have replaced the system's /dev/null with a checkpoint file.
    pipe = tmp_path / "pipe.pt"
    os.mkfifo(pipe)
    code = main(["train", "--model", "fast", "--out", str(pipe), *overwrite])
    assert_one_line_error(code, capsys.readouterr().err, "is not a regular file")
    assert stat.S_ISFIFO(pipe.stat().st_mode)


@pytest.mark.parametrize("content", [b"my notes", b"", b"PK\x03\x04 a checkpoint cut short"],
                         ids=["text", "empty", "truncated"])
def test_overwrite_replaces_only_a_checkpoint(content: bytes, tmp_path: Path, no_data: None,
                                             capsys: pytest.CaptureFixture) -> None:
    """`--out README.md --overwrite` (a typo, a wrong variable) replaced the file with a checkpoint."""
    target = tmp_path / "notes.md"
    target.write_bytes(content)
    code = main(["train", "--model", "fast", "--out", str(target), "--overwrite"])
    assert_one_line_error(code, capsys.readouterr().err, "does not load as an MNIST Studio checkpoint, and "
                          "--overwrite replaces only those", "(nothing was overwritten)")
    assert target.read_bytes() == content


def test_overwrite_replaces_a_run_that_did_not_learn(tmp_path: Path, synthetic_data: None,
                                                     capsys: pytest.CaptureFixture) -> None:
    """A run that did not learn is saved (with a warning), and its model, reading every picture as the same digit, is
    then refused by `predict` and `evaluate`: training again with `--out` it and `--overwrite` was refused too, as
    "does not load as an MNIST Studio checkpoint", of the checkpoint that run had saved."""
    from mnist_core.checkpoints import checkpoint_payload, write_checkpoint
    from mnist_core.errors import CheckpointError
    from mnist_core.models import build_model

    dead = build_model("seed-net")
    with torch.no_grad():
        for parameter in dead.parameters():
            parameter.zero_()  # every picture gives the same output
    out = write_checkpoint(checkpoint_payload("seed-net", {}, dead, {}, [], {}), tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="gives the same output for every picture"):
        load_checkpoint(out)
    code = main(["train", "--model", "seed-net", "--train-subset", "64", "--batch-size", "32", "--epochs", "0.5",
                 "--device", "cpu", "--out", str(out), "--overwrite"])
    assert code == 0, capsys.readouterr().err
    assert load_checkpoint(out).model_name == "seed-net"


def test_a_run_that_fails_leaves_no_empty_folders_for_its_out(tmp_path: Path, synthetic_data: None,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture) -> None:
    """The check of --out before training created its folders; a run that then failed (no data, a diverged run,
    Ctrl-C) left them behind, empty. A run that saves still creates them."""
    out = tmp_path / "runs" / "today" / "model.pt"

    def no_data_offline(*args, **kwargs):
        raise DataError("MNIST is not in DIR/MNIST/raw and downloading it failed (offline)")

    with monkeypatch.context() as patched:
        patched.setattr(mnist_core.data, "load_mnist", no_data_offline)
        code = main(["train", "--model", "fast", "--out", str(out)])
    assert_one_line_error(code, capsys.readouterr().err, "downloading it failed")
    assert list(tmp_path.iterdir()) == []
    code = main(["train", "--model", "seed-net", "--train-subset", "64", "--batch-size", "32", "--epochs", "0.5",
                 "--device", "cpu", "--out", str(out)])
    assert code == 0 and load_checkpoint(out).model_name == "seed-net"


def test_a_dangling_symlink_as_out_is_refused_before_training(tmp_path: Path, no_data: None,
                                                              capsys: pytest.CaptureFixture) -> None:
    # It does not "exist" (it points nowhere), but its name is taken: the save refused it only after training.
    link = tmp_path / "link.pt"
    link.symlink_to(tmp_path / "nowhere.pt")
    code = main(["train", "--model", "fast", "--out", str(link)])
    assert_one_line_error(code, capsys.readouterr().err, "already exists: choose another --out or pass --overwrite")
    assert link.is_symlink() and not (tmp_path / "nowhere.pt").exists()


# option -> (values that can train, values the parser accepts but training cannot use)
_FUZZ_OPTIONS = {
    "--batch-size": (["2", "3", "16", "64"], ["1", "0", "100000"]),
    "--lr": (["1e-5", "0.01", "0.5", "100"], ["nan", "0", "-1"]),
    "--optimizer": (["sgd", "adam", "adamw", "adadelta"], []),
    "--scheduler": (["none", "step", "onecycle", "cosine"], []),
    "--momentum": (["0", "0.5", "0.99"], ["1", "-0.5"]),
    "--weight-decay": (["0", "0.1", "1"], ["2"]),
    "--label-smoothing": (["0", "0.1", "0.9"], ["1"]),
    "--seed": (["0", "1", "-1", "123456789"], []),
    "--eval-every": (["0.1", "1", "3"], ["0"]),
    "--rotation": (["0", "15", "180"], ["181"]),
    "--scale": (["0", "0.1", "0.5"], ["0.6"]),
}


def _random_accepted_command(rng: random.Random, out: Path) -> list[str]:
    """A random mix of options the parser accepts; about one run in three has a value training cannot use.
    At most ~13 batches per run (128 images, batch 2, 0.2 epochs): the point is the mix, not the training."""
    argv = ["train", "--model", rng.choice(["seed-net", "fast", "nf-cnn", "tiny-bn"]), "--device", "cpu",
            "--train-subset", rng.choice(["3", "64", "128"]), "--epochs", rng.choice(["0.01", "0.05", "0.2"]),
            "--batch-size", "16", "--out", str(out), "--json", rng.choice(["--augment", "--no-augment"])]
    augment = argv[-1]
    for option, (usable, unusable) in _FUZZ_OPTIONS.items():
        # Options this run would ignore are refused (their own test): most mixes would end there, untrained.
        onecycle = "onecycle" in argv or ("fast" in argv and "--scheduler" not in argv)  # (fast's recipe's)
        ignored = ((option in ("--rotation", "--scale") and augment == "--no-augment")
                   or (option == "--momentum" and ("adadelta" in argv or onecycle)))
        if rng.random() < 0.6 and not ignored:
            argv += [option, rng.choice(unusable if unusable and rng.random() < 0.06 else usable)]
    return argv  # argparse keeps the last of a repeated option (--batch-size)


@pytest.mark.parametrize("case", range(16))
def test_any_accepted_combination_trains_or_is_refused_cleanly(case: int, tmp_path: Path, synthetic_data: None,
                                                               capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "model.pt"
    argv = _random_accepted_command(random.Random(case), out)
    code = main(argv)
    captured = capsys.readouterr()
    if code == 0:
        summary = json.loads(captured.out.splitlines()[-1])
        assert load_checkpoint(out).model_name == summary["model"], argv
        assert 0 <= summary["test_accuracy"] <= 100
    else:
        last_line = captured.err.strip().splitlines()[-1:]  # above it, the progress bar when training had begun
        message = assert_one_line_error(code, "\n".join(last_line))
        assert "Traceback" not in captured.err, argv
        if "training diverged" not in message:
            assert not out.exists(), argv  # refused: nothing written


def test_a_diverging_run_says_so_and_keeps_the_last_good_weights(tmp_path: Path, synthetic_data: None,
                                                                 capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "diverged.pt"
    code = main(["train", "--model", "nf-cnn", "--model-kwarg", "nf=8", "--optimizer", "sgd", "--lr", "10",
                 "--scheduler", "none", "--batch-size", "64", "--epochs", "1", "--eval-every", "0.25", "--device", "cpu",
                 "--out", str(out)])
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and last_line.startswith("error: training diverged at batch")
    assert "the weights from epoch 0.25 were kept" in last_line and f"saved them to {out}" in last_line
    assert "lower the learning rate (it was 10)" in last_line
    kept = load_checkpoint(out)
    assert kept.history and all(math.isfinite(h["test_loss"]) for h in kept.history)
    diverged_at = int(last_line.split("diverged at batch ")[1].split()[0])
    assert 0 < kept.metrics["batches_done"] < diverged_at  # the count of the weights kept, in the CLI's file too
    assert all(torch.isfinite(t).all() for t in kept.model.state_dict().values())


def test_a_diverging_run_never_replaces_the_checkpoint_overwrite_named(tmp_path: Path, synthetic_data: None,
                                                                      capsys: pytest.CaptureFixture) -> None:
    """It replaced it with the diverged run's early weights, exit 2: a script keeps using the file it named."""
    out = tmp_path / "model.pt"
    out.write_bytes(checkpoint_bytes(checkpoint_payload("nf-cnn", {"nf": 8}, build_model("nf-cnn", nf=8), {}, [], {})))
    before = out.read_bytes()
    code = main(["train", "--model", "nf-cnn", "--model-kwarg", "nf=8", "--optimizer", "sgd", "--lr", "10",
                 "--scheduler", "none", "--batch-size", "64", "--epochs", "1", "--eval-every", "0.25", "--device", "cpu",
                 "--out", str(out), "--overwrite"])
    message = assert_one_line_error(code, capsys.readouterr().err.strip().splitlines()[-1], "training diverged")
    beside = tmp_path / "model-2.pt"
    assert message.endswith(f"saved them to {beside} ({out} is kept: a run that diverged replaces nothing)")
    assert out.read_bytes() == before and load_checkpoint(beside).history


def test_a_loss_that_explodes_but_stays_finite_is_divergence_too(tmp_path: Path, synthetic_data: None,
                                                                capsys: pytest.CaptureFixture) -> None:
    # SGD at lr 50: the loss jumps to ~1e3 and beyond without ever being NaN; the run used to "finish" at chance.
    out = tmp_path / "exploded.pt"
    code = main(["train", "--model", "fast", "--optimizer", "sgd", "--lr", "50", "--scheduler", "none",
                 "--batch-size", "64", "--epochs", "1", "--eval-every", "0.25", "--device", "cpu", "--out", str(out)])
    err = capsys.readouterr().err
    message = assert_one_line_error(code, err.strip().splitlines()[-1], "training diverged at batch 2 of 8")
    assert "(the train loss rose to" in message and "over 100× its" in message
    assert "lower the learning rate (it was 50)" in message and "no good weights were reached" in message
    assert not out.exists() and "Traceback" not in err


def test_a_run_that_does_not_learn_warns_but_succeeds(tmp_path: Path, synthetic_data: None,
                                                     capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "lazy.pt"
    code = main(["train", "--model", "seed-net", "--optimizer", "sgd", "--lr", "1e-5", "--batch-size", "32",
                 "--epochs", "0.25", "--device", "cpu", "--out", str(out), "--json"])
    captured = capsys.readouterr()
    summary = json.loads(captured.out.splitlines()[-1])
    assert code == 0 and summary["test_accuracy"] <= 20 and load_checkpoint(out).model_name == "seed-net"
    assert summary["warning"].startswith("the model did not learn: ") and "try another learning rate" in summary["warning"]
    assert f"warning: {summary['warning']}" in captured.err.splitlines()
    assert "Traceback" not in captured.err

    code = main(["train", "--model", "seed-net", "--batch-size", "32", "--epochs", "1", "--device", "cpu",
                 "--out", str(tmp_path / "learned.pt"), "--json"])
    captured = capsys.readouterr()
    assert code == 0 and json.loads(captured.out.splitlines()[-1])["warning"] is None
    assert "warning" not in captured.err


def test_a_seed_torch_cannot_use_is_refused(tmp_path: Path, synthetic_data: None,
                                            capsys: pytest.CaptureFixture) -> None:
    code = main(["train", "--model", "seed-net", "--seed", str(2**70), "--out", str(tmp_path / "m.pt")])
    assert_one_line_error(code, capsys.readouterr().err, "seed")



@pytest.fixture()
def no_cpp_compiler() -> Iterator[None]:
    """Simulated: inductor is pointed at a compiler that does not exist, as on a machine without g++."""
    from torch._inductor import config as inductor_config

    with inductor_config.patch({"cpp.cxx": (None, "no-such-g++")}):
        yield


def test_compile_without_a_cpp_compiler_is_one_clear_line_before_reading_data(tmp_path: Path, no_data: None,
                                                                            no_cpp_compiler: None,
                                                                            capsys: pytest.CaptureFixture) -> None:
    code = main(["train", "--model", "fast", "--compile", "--device", "cpu", "--out", str(tmp_path / "m.pt")])
    assert_one_line_error(code, capsys.readouterr().err, "--compile needs a working C++ compiler (no-such-g++",
                          "or train without --compile")
    assert list(tmp_path.iterdir()) == []


def test_compile_without_a_cpp_compiler_is_refused_in_the_library_too(no_cpp_compiler: None,
                                                                      tiny_mnist: Mnist) -> None:
    """The app trains through `fit`: the same sentence, as a ConfigError, before any batch."""
    from mnist_core.config import recipe_for_model
    from mnist_core.errors import ConfigError
    from mnist_core.train import fit

    config = replace(recipe_for_model("seed-net"), compile=True, device="cpu", epochs=0.01, batch_size=16)
    with pytest.raises(ConfigError, match="--compile needs a working C\\+\\+ compiler"):
        fit(config, tiny_mnist)
