"""The data pipeline on synthetic tensors and fake data roots (no real MNIST needed)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from mnist_core.data import (DATA_ROOT_ENV, MEAN, STD, Augmentation, Mnist, MnistSplit,
                             _crossing_segments, _loop_with_marks_segments, augment, batch_indices, batches_per_epoch,
                             dataset_status, normalize, prepare_batch, random_scribbles, raw_folder, resolve_data_root)
from tests.conftest import fake_mnist_files


def test_data_root_comes_from_argument_then_environment_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_ROOT_ENV, raising=False)
    assert resolve_data_root() == Path("./data")
    monkeypatch.setenv(DATA_ROOT_ENV, "/from/env")
    assert resolve_data_root() == Path("/from/env")
    assert resolve_data_root("/from/flag") == Path("/from/flag")


def test_normalize_standardises_like_training() -> None:
    images = torch.zeros(2, 28, 28, dtype=torch.uint8)
    images[:, :, 1] = 255
    result = normalize(images)
    assert result.shape == (2, 1, 28, 28) and result.dtype == torch.float32
    assert result[0, 0, 0, 0].item() == pytest.approx(-MEAN / STD)
    assert result[0, 0, 0, 1].item() == pytest.approx((1 - MEAN) / STD)


def test_prepare_batch_without_augmentation_equals_normalize() -> None:
    images = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    assert torch.equal(prepare_batch(images), normalize(images))
    assert torch.equal(prepare_batch(images, Augmentation()), normalize(images))


def _square_images(count: int) -> torch.Tensor:
    images = torch.zeros(count, 1, 28, 28)
    images[:, :, 10:18, 10:18] = 1.0
    return images


def test_scribbles_are_pen_strokes_fitted_into_the_centre_and_reproducible() -> None:
    scribbles = random_scribbles(64, torch.device("cpu"), torch.Generator().manual_seed(3))
    assert scribbles.shape == (64, 1, 28, 28) and scribbles.dtype == torch.float32
    assert scribbles.min() == 0 and scribbles.max() == 1
    inked = scribbles[:, 0] > 0.5
    rows, cols = inked.any(2), inked.any(1)  # [64, 28] each
    assert not rows[:, :2].any() and not rows[:, -2:].any() and not cols[:, :2].any() and not cols[:, -2:].any()
    assert (rows.sum(1).clamp(min=cols.sum(1)) >= 17).all()  # the long side fills the 20-px box like a digit
    assert 0.08 < scribbles.mean() < 0.35  # strokes, not blobs (MNIST's mean ink is 0.13)
    again = random_scribbles(64, torch.device("cpu"), torch.Generator().manual_seed(3))
    assert torch.equal(scribbles, again)
    assert not torch.equal(scribbles, random_scribbles(64, torch.device("cpu"), torch.Generator().manual_seed(4)))


def test_runs_without_the_new_options_draw_what_they_drew_before_them() -> None:
    """Shear and the mixed scribble shapes came after checkpoints/default.pt: without them, a batch must be drawn
    exactly as before (values recorded with the code before them), so the README's command still makes that file."""
    scribbles = random_scribbles(16, torch.device("cpu"), torch.Generator().manual_seed(3))
    assert scribbles.sum().item() == pytest.approx(1843.010986328125, rel=1e-6)
    images = torch.zeros(16, 28, 28, dtype=torch.uint8)
    images[:, 6:22, 12:16] = 255
    batch = prepare_batch(images, Augmentation(12, 0.12, 0.12, shear=0.0), torch.Generator().manual_seed(1),
                          scribbles=4)
    assert batch.sum().item() == pytest.approx(-1640.9521484375, rel=1e-6)
    assert batch[:16].sum().item() == pytest.approx(-2018.5343017578125, rel=1e-6)


def test_mixed_scribbles_are_fitted_like_digits_reproducible_and_not_only_zigzags() -> None:
    mixed = random_scribbles(64, torch.device("cpu"), torch.Generator().manual_seed(3), "mixed")
    assert mixed.shape == (64, 1, 28, 28) and mixed.min() == 0 and mixed.max() == 1
    inked = mixed[:, 0] > 0.5
    rows, cols = inked.any(2), inked.any(1)
    assert not rows[:, :2].any() and not rows[:, -2:].any() and not cols[:, :2].any() and not cols[:, -2:].any()
    assert (rows.sum(1).clamp(min=cols.sum(1)) >= 17).all()
    assert 0.08 < mixed.mean() < 0.35
    assert torch.equal(mixed, random_scribbles(64, torch.device("cpu"), torch.Generator().manual_seed(3), "mixed"))
    zigzags = random_scribbles(64, torch.device("cpu"), torch.Generator().manual_seed(3))
    same = (mixed == zigzags).flatten(1).all(1).float().mean()
    assert same < 0.9  # some are other shapes (they draw from the generator in another order, so few match at all)
    with pytest.raises(ValueError, match="unknown scribble shapes 'dots'"):
        random_scribbles(2, torch.device("cpu"), shapes="dots")


def test_loop_marks_lie_inside_the_loop() -> None:
    generator = torch.Generator().manual_seed(0)

    def uniform(*shape: int, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
        return low + (high - low) * torch.rand(*shape, generator=generator)

    segments = _loop_with_marks_segments(200, uniform, torch.device("cpu"), corners=20, marks=3)  # [200, 26, 2, 2]
    assert segments.shape == (200, 26, 2, 2)
    loop, marks = segments[:, :20, 0], segments[:, 20:].flatten(1, 2)  # the loop's corners; the marks' points
    absent = (marks == loop[:, :1]).all(-1)  # absent marks sit on the loop's start
    # Inside the loop when a ray to the right crosses it an odd number of times.
    x, y = marks[..., 0, None], marks[..., 1, None]  # [200, 9, 1]
    x0, y0, x1, y1 = (segments[:, None, :20, end, axis] for end in (0, 1) for axis in (0, 1))
    straddles = (y0 > y) != (y1 > y)
    crossing_x = x0 + (y - y0) * (x1 - x0) / (y1 - y0 + 1e-12)
    inside = ((straddles & (crossing_x > x)).sum(-1) % 2 == 1)
    assert inside[~absent].float().mean() > 0.97  # a few touch the loop, none are drawn outside it
    assert (~absent).any(1).all()  # every loop has at least one mark: a loop alone would be a 0
    assert torch.allclose(segments[:, 19, 1], segments[:, 0, 0], atol=1e-5)  # closed


def test_crossing_strokes_are_two_or_three_and_never_near_parallel() -> None:
    generator = torch.Generator().manual_seed(0)

    def uniform(*shape: int, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
        return low + (high - low) * torch.rand(*shape, generator=generator)

    segments = _crossing_segments(300, uniform)  # [300, 3, 2, 2]
    direction = segments[:, :, 1] - segments[:, :, 0]
    direction = direction / direction.norm(dim=-1, keepdim=True)
    cosine = (direction[:, 0] * direction[:, 1]).sum(-1).abs()
    assert (cosine < math.cos(math.radians(15))).all()  # strokes 1 and 2 never within 15° of each other
    two = (segments[:, 2] == segments[:, 0]).flatten(1).all(1)
    assert 0.3 < two.float().mean() < 0.7  # about half have two strokes, the rest three


def test_shear_slants_upright_strokes_and_keeps_level_ones_level() -> None:
    bar = torch.zeros(64, 1, 28, 28)
    bar[:, :, 4:24, 13:15] = 1.0  # an upright bar
    slanted = augment(bar, Augmentation(shear=20), torch.Generator().manual_seed(0))
    columns = torch.arange(28.0)

    def centre_x(rows: slice) -> torch.Tensor:
        ink = slanted[:, 0, rows].sum(1)
        return (ink * columns).sum(1) / ink.sum(1)

    lean = centre_x(slice(4, 8)) - centre_x(slice(20, 24))  # top minus bottom: the slant, either way
    assert lean.abs().max() <= 16 * math.tan(math.radians(20)) + 1  # never more than the largest shear
    assert lean.abs().max() > 3 and (lean > 0).any() and (lean < 0).any()
    level = torch.zeros(64, 1, 28, 28)
    level[:, :, 13:15, 4:24] = 1.0  # a level bar: shear moves each row sideways, so it stays in its rows
    sheared = augment(level, Augmentation(shear=20), torch.Generator().manual_seed(0))
    assert sheared[:, :, :12].sum() == 0 and sheared[:, :, 16:].sum() == 0
    assert Augmentation(shear=5).enabled


def test_prepare_batch_appends_scribbles_and_augments_half_of_everything() -> None:
    images = torch.zeros(400, 28, 28, dtype=torch.uint8)
    images[:, 6:22, 12:16] = 255  # an upright bar: any rotation moves its pixels
    batch = prepare_batch(images, None, torch.Generator().manual_seed(0), scribbles=100)
    assert batch.shape == (500, 1, 28, 28)
    torch.testing.assert_close(batch[:400], normalize(images))  # no augmentation: digits untouched, first
    augmented = prepare_batch(images, Augmentation(rotation=30), torch.Generator().manual_seed(0), scribbles=100)
    as_drawn = (augmented[:400] == normalize(images)).flatten(1).all(1).float().mean()
    assert 0.4 < as_drawn < 0.6  # half stay as drawn (see prepare_batch), digits and scribbles alike
    plain = prepare_batch(images, Augmentation(rotation=30), torch.Generator().manual_seed(0))
    assert (plain == normalize(images)).flatten(1).all(1).float().mean() < 0.05  # without scribbles: all augmented


def test_augmentation_is_off_by_default_and_returns_the_input_untouched() -> None:
    images = _square_images(2)
    assert not Augmentation().enabled
    assert augment(images, Augmentation()) is images


def test_augmentation_moves_pixels_reproducibly_per_generator_seed() -> None:
    images = _square_images(8)
    jitter = Augmentation(rotation=15, translate=0.1, scale=0.1)
    first = augment(images, jitter, torch.Generator().manual_seed(1))
    again = augment(images, jitter, torch.Generator().manual_seed(1))
    other = augment(images, jitter, torch.Generator().manual_seed(2))
    assert first.shape == images.shape
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert not torch.allclose(first, images)
    assert first.min() >= 0 and first.max() <= 1 + 1e-6  # zero padding = background, bilinear stays in range
    # A small affine jitter keeps the ink: the total brightness changes by at most the zoom (±10 % per side).
    assert torch.allclose(first.sum((1, 2, 3)), images.sum((1, 2, 3)), rtol=0.3)


def test_translation_only_shifts_the_centre_of_mass() -> None:
    images = _square_images(64)
    shifted = augment(images, Augmentation(translate=0.1), torch.Generator().manual_seed(0))
    columns = torch.arange(28.0)
    centre_x = (shifted.sum(2).squeeze(1) * columns).sum(1) / shifted.sum((1, 2, 3))
    assert (centre_x - 13.5).abs().max() <= 0.1 * 28 + 0.5  # never more than the allowed shift
    assert (centre_x - 13.5).abs().max() > 1.0  # but it does move


@pytest.mark.parametrize("count, batch_size", [(10, 3), (10, 5), (11, 5), (1, 4), (2, 2)])
def test_batch_indices_cover_every_sample_once_and_drop_a_lone_last_sample(count: int, batch_size: int) -> None:
    batches = list(batch_indices(count, batch_size, torch.device("cpu"), torch.Generator().manual_seed(0)))
    seen = torch.cat(batches).tolist()
    lone_last = count % batch_size == 1 and count > 1  # BatchNorm cannot train on one sample
    assert len(seen) == len(set(seen)) == (count - 1 if lone_last else count)
    assert set(seen) <= set(range(count))
    assert all(len(batch) <= batch_size for batch in batches)
    assert all(len(batch) > 1 for batch in batches) or count == 1
    assert len(batches) == batches_per_epoch(count, batch_size)


def test_batch_indices_shuffle_follows_the_generator() -> None:
    def order(seed: int) -> list[int]:
        return torch.cat(list(batch_indices(100, 10, torch.device("cpu"), torch.Generator().manual_seed(seed)))).tolist()

    assert order(0) == order(0)
    assert order(0) != order(1)
    assert torch.cat(list(batch_indices(8, 3, torch.device("cpu"), shuffle=False))).tolist() == list(range(8))


def test_split_subset_length_and_device_move(tiny_mnist: Mnist) -> None:
    part = tiny_mnist.train.subset(10)
    assert len(part) == 10 and part.images.shape == (10, 28, 28) and part.images.dtype == torch.uint8
    moved = tiny_mnist.to("cpu")
    assert torch.equal(moved.test.labels, tiny_mnist.test.labels)
    assert isinstance(moved.train, MnistSplit)


def test_status_found_when_all_four_files_have_mnist_sizes(tmp_path: Path) -> None:
    fake_mnist_files(tmp_path)
    status = dataset_status(tmp_path)
    assert status.state == "found" and str(raw_folder(tmp_path)) in status.message


def test_status_will_download_an_empty_root(tmp_path: Path) -> None:
    status = dataset_status(tmp_path / "nothing-here")
    assert status.state == "will download"
    assert "downloads on first use" in status.message


def test_status_reports_a_truncated_file_as_a_problem(tmp_path: Path) -> None:
    fake_mnist_files(tmp_path, {"t10k-labels-idx1-ubyte": 100})
    status = dataset_status(tmp_path)
    assert status.state == "problem"
    assert "t10k-labels-idx1-ubyte has 100 bytes, expected 10008" in status.message


def test_status_reports_a_root_that_is_a_file(tmp_path: Path) -> None:
    root = tmp_path / "mnist.zip"
    root.write_bytes(b"not a folder")
    status = dataset_status(root)
    assert status.state == "problem" and "is a file, not a folder" in status.message
