"""Shared fixtures.

Real-data and browser tests *skip* on a developer machine that lacks MNIST or Chromium, but *fail* in CI
(`MNIST_STUDIO_CI=1`, set by `.ci/run`), so a CI run can never go green by silently testing less.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

IN_CI = os.environ.get("MNIST_STUDIO_CI") == "1"
torch.set_num_threads(max(1, os.cpu_count() or 1))


def fake_mnist_files(root: Path, sizes: dict[str, int] | None = None) -> Path:
    """MNIST's four IDX files in `root`'s torchvision layout, of MNIST's sizes (or those given by file name) but
    zero content: sparse, so they cost no disk and no time. Returns the folder they are in."""
    from mnist_core.data import MNIST_FILES, raw_folder

    folder = raw_folder(root)
    folder.mkdir(parents=True)
    for name, (size, _) in MNIST_FILES.items():
        with open(folder / name, "wb") as handle:
            handle.truncate((sizes or {}).get(name, size))
    return folder


def missing(reason: str) -> None:
    """Skip locally, fail in CI."""
    if IN_CI:
        pytest.fail(f"{reason} (in CI this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """The real MNIST folder from MNIST_DATA_ROOT (torchvision layout)."""
    from mnist_core.data import dataset_status

    value = os.environ.get("MNIST_DATA_ROOT")
    if not value:
        missing("MNIST_DATA_ROOT is not set; point it at a folder holding MNIST/raw/*-ubyte")
    status = dataset_status(value)
    if status.state != "found":
        missing(f"real MNIST not found under {value}: {status.message}")
    return Path(value)


@pytest.fixture(scope="session")
def mnist(mnist_root: Path):
    """The whole real dataset as uint8 tensors on the CPU (loaded once per test session)."""
    from mnist_core.data import load_mnist

    return load_mnist(mnist_root, download=False)


@pytest.fixture()
def tiny_mnist():
    """A synthetic stand-in for MNIST (random uint8 digits with learnable labels), for fast unit tests."""
    from mnist_core.data import Mnist, MnistSplit

    generator = torch.Generator().manual_seed(0)

    def split(count: int) -> MnistSplit:
        labels = torch.arange(count) % 10
        images = torch.randint(0, 40, (count, 28, 28), generator=generator, dtype=torch.uint8)
        for digit in range(10):  # a bright bar whose position encodes the label
            rows = labels == digit
            images[rows, 2 + 2 * digit: 4 + 2 * digit, 4:24] = 255
        return MnistSplit(images, labels)

    return Mnist(split(512), split(256))
