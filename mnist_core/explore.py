"""Numbers and pictures behind the app's Dataset explorer and Evaluate galleries.

Everything here is plain tensor work on an `MnistSplit` and returns NumPy arrays or Python lists that a page can
hand straight to `st.image` / plotly. The app caches the expensive ones (`split_stats`) once per dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from mnist_core.data import Augmentation, MnistSplit, augment, random_scribbles

CLASSES = 10
_CHUNK = 8192  # images per step when summing a whole split: bounds the temporary float memory to ~50 MB


@dataclass(frozen=True)
class SplitStats:
    """Summary of one split for the explorer's charts."""

    size: int
    class_counts: list[int]  # images per digit 0–9
    mean_images: np.ndarray  # float32 [10, 28, 28] in [0, 1]: the average picture of each digit (zeros if absent)
    pixel_counts: list[int]  # 256 entries: how many pixels have each intensity 0–255


def split_stats(split: MnistSplit) -> SplitStats:
    """Counts per digit, mean image per digit and the pixel-intensity histogram of a split (in chunks, on the CPU)."""
    images, labels = split.images.cpu(), split.labels.cpu()
    class_counts = torch.bincount(labels, minlength=CLASSES)[:CLASSES]
    sums = torch.zeros(CLASSES, 28 * 28, dtype=torch.float64)
    pixel_counts = torch.zeros(256, dtype=torch.long)
    for start in range(0, len(split), _CHUNK):
        chunk = images[start:start + _CHUNK]
        sums.index_add_(0, labels[start:start + _CHUNK], chunk.reshape(chunk.shape[0], -1).double())
        pixel_counts += torch.bincount(chunk.flatten().long(), minlength=256)
    means = sums / class_counts.clamp(min=1).unsqueeze(1).double() / 255.0
    return SplitStats(len(split), class_counts.tolist(), means.reshape(CLASSES, 28, 28).float().numpy(),
                      pixel_counts.tolist())


def matching_indices(split: MnistSplit, digit: int | None = None) -> torch.Tensor:
    """Indices (int64, CPU) of the split's images showing `digit`, or of all images when `digit` is None."""
    labels = split.labels.cpu()
    return torch.arange(len(labels)) if digit is None else (labels == digit).nonzero().flatten()


def sample_page(split: MnistSplit, digit: int | None, page: int, per_page: int) -> list[int]:
    """Dataset indices for one page of the explorer's grid (page 0 = the first `per_page` matches)."""
    indices = matching_indices(split, digit)
    return indices[page * per_page:(page + 1) * per_page].tolist()


def pixels(split: MnistSplit, indices: Sequence[int]) -> np.ndarray:
    """uint8 [N, 28, 28] images for `indices` (white ink on black, as MNIST stores them)."""
    if not len(indices):
        return np.zeros((0, 28, 28), dtype=np.uint8)
    return split.images[torch.as_tensor(list(indices), device=split.images.device)].cpu().numpy()


def labels_of(split: MnistSplit, indices: Sequence[int]) -> list[int]:
    """The digits the split's images at `indices` show, in that order."""
    if not len(indices):
        return []
    return split.labels[torch.as_tensor(list(indices), device=split.labels.device)].cpu().tolist()


def augmentation_preview(image_uint8: np.ndarray, augmentation: Augmentation, count: int = 8,
                         seed: int = 0) -> np.ndarray:
    """float32 [count, 28, 28] in [0, 1]: `count` random draws of the training augmentation applied to one image.

    Uses `data.augment`, the very function training uses, so the preview shows what the model will see.
    """
    image = torch.from_numpy(np.ascontiguousarray(image_uint8)).float().div(255.0)
    batch = image.reshape(1, 1, 28, 28).expand(count, 1, 28, 28).contiguous()
    generator = torch.Generator().manual_seed(seed)
    return augment(batch, augmentation, generator).squeeze(1).clamp(0, 1).numpy()


def row_normalised(confusion: Sequence[Sequence[int]]) -> list[list[float]]:
    """Each row of a confusion matrix as fractions of that true digit's images (rows with no images stay 0)."""
    matrix = torch.tensor(confusion, dtype=torch.float64)
    totals = matrix.sum(1, keepdim=True)
    return torch.where(totals > 0, matrix / totals.clamp(min=1), torch.zeros_like(matrix)).tolist()


def off_diagonal_total(confusion: Sequence[Sequence[int]]) -> int:
    """How many images a confusion matrix counts as mistakes."""
    return sum(count for true, row in enumerate(confusion) for predicted, count in enumerate(row) if true != predicted)


def most_confused(confusion: Sequence[Sequence[int]]) -> tuple[int, int]:
    """(true, predicted) of the largest off-diagonal cell; (0, 0) when there are no mistakes."""
    cells = [(count, true, predicted) for true, row in enumerate(confusion) for predicted, count in enumerate(row)
             if true != predicted and count > 0]
    return max(cells)[1:] if cells else (0, 0)


def enlarge(image: np.ndarray, factor: int = 4) -> np.ndarray:
    """Nearest-neighbour enlargement, so a 28×28 digit shows crisp pixels instead of a browser-smoothed blur."""
    return np.repeat(np.repeat(image, factor, axis=-2), factor, axis=-1)


def sized_for_display(image: np.ndarray, side: int) -> np.ndarray:
    """`image` (…×H×W) resized by nearest neighbour to side×side pixels. Shown in a box of exactly `side` px, a browser
    draws it pixel for pixel; an image it has to scale (4× = 112 px in a 72-px box) it smooths into a blur."""
    rows = np.arange(side) * image.shape[-2] // side
    columns = np.arange(side) * image.shape[-1] // side
    return image[..., rows[:, None], columns]


def scribble_preview(count: int = 8, seed: int = 0, shapes: str = "zigzag") -> np.ndarray:
    """float32 [count, 28, 28] in [0, 1]: scribbles like those outlier exposure trains as "no digit"."""
    generator = torch.Generator().manual_seed(seed)
    return random_scribbles(count, torch.device("cpu"), generator, shapes).squeeze(1).numpy()
