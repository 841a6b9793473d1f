"""The headline contracts on the real dataset, through the CLI as a user runs it (issue 2, item 11).

These need MNIST_DATA_ROOT: they skip on a developer machine without it and fail in CI (see conftest.mnist_root).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cli_support import last_json, mnist_png, run_cli
from mnist_core.checkpoints import DEFAULT_CHECKPOINT, load_checkpoint
from mnist_core.cli import main
from mnist_core.config import preset_config
from mnist_core.data import Mnist
from mnist_core.train import fit

pytestmark = pytest.mark.realdata


@pytest.mark.slow
def test_fast_model_reaches_98_8_percent_after_one_epoch_on_cpu(mnist_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "fast.pt"
    process = run_cli("train", "--model", "fast", "--epochs", "1", "--device", "cpu", "--data-root", mnist_root,
                      "--out", out, "--json", timeout=900)
    assert process.returncode == 0, process.stderr[-2000:]
    summary = last_json(process.stdout)
    assert (summary["model"], summary["epochs"], summary["device"]) == ("fast", 1.0, "cpu")
    assert summary["test_accuracy"] >= 98.8, summary
    assert load_checkpoint(out).metrics["test_accuracy"] == pytest.approx(summary["test_accuracy"], abs=1e-4)


def test_default_checkpoint_reaches_99_4_percent(mnist_root: Path) -> None:
    process = run_cli("evaluate", "--checkpoint", DEFAULT_CHECKPOINT, "--data-root", mnist_root, "--json")
    assert process.returncode == 0, process.stderr
    report = last_json(process.stdout)
    assert report["test_accuracy"] >= 99.4, f"checkpoints/default.pt: {report['test_accuracy']:.2f} %"
    assert sum(map(sum, report["confusion_matrix"])) == 10_000


def test_default_checkpoint_is_small() -> None:
    assert DEFAULT_CHECKPOINT.stat().st_size < 1_000_000


def test_predict_reads_real_test_digits_from_png_files(mnist: Mnist, tmp_path: Path) -> None:
    """The first test image of each digit, saved as a 112×112 PNG — and one of them inverted (dark ink on white)."""
    labels = mnist.test.labels.tolist()
    indices = [labels.index(digit) for digit in range(10)]
    paths = [mnist_png(mnist.test.images[i].numpy(), tmp_path / f"test-{i}.png") for i in indices]
    inverted = mnist_png(255 - mnist.test.images[indices[3]].numpy(), tmp_path / "inverted-3.png")
    process = run_cli("predict", *paths, inverted, "--json")  # the default checkpoint when none is named
    assert process.returncode == 0, process.stderr
    results = last_json(process.stdout)
    assert [r["digit"] for r in results] == [*range(10), 3]
    for result in results:
        assert np.isclose(sum(result["probabilities"]), 1, atol=1e-4)
        assert max(result["probabilities"]) > 0.5


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["fastest to 99 %", "GPU: fastest to 99 %", "best accuracy"])
def test_short_real_runs_with_warm_up_spikes_are_not_taken_for_divergence(mnist: Mnist, preset: str) -> None:
    """The app's quickest runs of the presets with a one-cycle warm-up, label smoothing and augmentation, reported
    every batch: the GPU preset's loss spikes to ~15× its start for a batch or two here (measured), well short of the
    divergence watch's 100× (or 10× for 20 batches)."""
    config = preset_config(preset, epochs=1, train_subset=6400, device="cpu", log_every=1)
    result = fit(config, mnist)  # TrainingDiverged would fail the test
    assert result.history and not result.stopped


def test_sgd_at_lr_50_on_real_digits_stops_as_diverged(mnist_root: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "exploded.pt"
    code = main(["train", "--model", "fast", "--optimizer", "sgd", "--lr", "50", "--train-subset", "6400",
                 "--epochs", "1", "--device", "cpu", "--data-root", str(mnist_root), "--out", str(out)])
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and last_line.startswith("error: training diverged at batch"), last_line
    assert "the train loss rose to" in last_line and not out.exists()
