"""The model registry: name -> builder, with a description, the seed project it comes from and its knobs.

Start at `REGISTRY` near the bottom: one `ModelSpec` per model, whose `build` checks the knobs (the keyword
arguments the app shows as sliders) and calls the builder defined above it. The rest of the project asks for
models by name through `build_model` and `get_spec`; `model_summary` lists a model's layers (the app's summary
table, and `train.check_memory`'s activation count).

Every model takes normalised [N, 1, 28, 28] images and returns **logits**. Seeds 000 and 001 applied softmax inside
`forward` and then CrossEntropyLoss, which applies log-softmax again: a double softmax that squashes gradients and
caps accuracy. `seed-net` keeps their layers but returns logits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from mnist_core.errors import ConfigError, quoted


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 3, padding: int = 0) -> list[nn.Module]:
    """Conv, BatchNorm, ReLU; the conv has no bias, as BatchNorm's shift makes it redundant."""
    return [nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]


class SeedNet(nn.Module):
    """Seeds 000/001: conv 10→20 (5×5), Dropout2d, fc 320→50→10 — returning logits (their softmax removed)."""

    def __init__(self, dropout: float = 0.5) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d(dropout)
        self.pool = nn.MaxPool2d(2)
        self.relu = nn.ReLU()
        self.fc1 = nn.Linear(320, 50)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.pool(self.conv1(x)))
        x = self.relu(self.pool(self.conv2_drop(self.conv2(x))))
        x = self.drop(self.relu(self.fc1(x.flatten(1))))
        return self.fc2(x)


def nf_cnn(nf: int = 32, hidden: int = 64) -> nn.Module:
    """Seed 002: 3×3 convs and stride-2 max-pools, then dense 2nf·3·3 → hidden → 10 (576→64→10 at nf=32)."""
    return nn.Sequential(
        nn.Conv2d(1, nf, 3), nn.ReLU(), nn.MaxPool2d(2, stride=2),            # 28 -> 26 -> 13
        nn.Conv2d(nf, 2 * nf, 3), nn.ReLU(), nn.MaxPool2d(2, stride=2),       # 13 -> 11 -> 5
        nn.Conv2d(2 * nf, 2 * nf, 3), nn.ReLU(),                              # 5 -> 3
        nn.Flatten(), nn.Linear(2 * nf * 9, hidden), nn.ReLU(), nn.Linear(hidden, 10),
    )


def s5_net(hidden: int = 50) -> nn.Module:
    """Seed 003 (ERA S5): conv 32-64-128-256 (3×3, no padding) with two max-pools, fc 4096 → 50 → 10."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),       # 28 -> 24 -> 12
        nn.Conv2d(64, 128, 3), nn.ReLU(), nn.Conv2d(128, 256, 3), nn.ReLU(), nn.MaxPool2d(2),   # 12 -> 8 -> 4
        nn.Flatten(), nn.Linear(4096, hidden), nn.ReLU(), nn.Linear(hidden, 10),
    )


def tiny_bn(dropout: float = 0.05) -> nn.Module:
    """Seed 004: 7,416 parameters. Its table lists the 16→8 transition as 1,152 parameters, but only a 1×1 conv
    (128) gives the stated total of 7,416 — the transition is 1×1, as in the seed's own code."""

    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, bias=False), nn.ReLU(), nn.BatchNorm2d(cout), nn.Dropout(dropout)]

    return nn.Sequential(
        nn.Conv2d(1, 8, 3, bias=False), nn.ReLU(),                      # 28 -> 26
        *block(8, 16),                                                  # 26 -> 24
        nn.Conv2d(16, 8, 1, bias=False), nn.MaxPool2d(2),               # transition: 24 -> 12
        *block(8, 16), *block(16, 8), *block(8, 16), *block(16, 16),   # 12 -> 10 -> 8 -> 6 -> 4
        nn.AvgPool2d(4), nn.Conv2d(16, 10, 1, bias=False), nn.Flatten(),  # GAP + 1×1 "fc"
    )


def fast_net(width: int = 16, hidden: int = 128) -> nn.Module:
    """Built for the shortest time to 99 % on a CPU: the fewest multiply-adds that still learn MNIST in one epoch
    (≈0.8 M per image at the defaults, two-thirds of baseline (b)'s), BatchNorm so a large one-cycle learning rate
    works from the first step, and a small dense head over the 5×5 map (global pooling learned too slowly).
    Each block pools *before* BatchNorm and ReLU (as airbench does): BatchNorm was a quarter of the step time on the
    full-size maps, and on the pooled ones it costs a quarter of that (median time to 99 % over three seeds on this
    project's 2-core CPU, same precision: 3.4 s -> 2.6 s, and more accurate: 99.22 % instead of 99.13 % at the end)."""
    return nn.Sequential(
        nn.Conv2d(1, width, 5, bias=False), nn.MaxPool2d(2),                       # 28 -> 24 -> 12
        nn.BatchNorm2d(width), nn.ReLU(inplace=True),
        nn.Conv2d(width, 2 * width, 3, bias=False), nn.MaxPool2d(2),               # 12 -> 10 -> 5
        nn.BatchNorm2d(2 * width), nn.ReLU(inplace=True),
        nn.Flatten(), nn.Linear(2 * width * 25, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 10),
    )


def best_net(width: int = 32, dropout: float = 0.2) -> nn.Module:
    """Built for the highest single-model accuracy at a CPU-friendly cost (≈6 M multiply-adds per image): three BN
    stages that double the width as they halve the map, then dropout and a linear read-out of the 3×3 map.
    Trained with rotation/shift/scale augmentation and label smoothing (preset "best accuracy")."""
    w = width
    return nn.Sequential(
        *conv_bn_relu(1, w, 5), nn.MaxPool2d(2),                          # 28 -> 24 -> 12
        *conv_bn_relu(w, 2 * w, 3, padding=1), nn.MaxPool2d(2),           # 12 -> 6
        *conv_bn_relu(2 * w, 4 * w, 3, padding=1), nn.MaxPool2d(2),       # 6 -> 3
        nn.Flatten(), nn.Dropout(dropout), nn.Linear(4 * w * 9, 10),
    )


@dataclass(frozen=True)
class Knob:
    """A model keyword the app exposes as a slider: its default, range (low…high), step and the slider's label."""

    default: float | int
    low: float | int
    high: float | int
    step: float | int
    label: str


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry: how to build the model, where it comes from, and the knobs `build` accepts."""

    name: str
    builder: Callable[..., nn.Module]
    seed: str  # which seed project it reproduces ("—" for ours)
    description: str
    knobs: dict[str, Knob] = field(default_factory=dict)
    recipe: str = ""  # name of the preset (mnist_core.config.PRESETS) that trains it best

    def build(self, **kwargs: Any) -> nn.Module:
        """The model, with `kwargs` (knob name -> value) checked against the knobs: ConfigError if one is unknown,
        not a number, or out of range."""
        unknown = set(kwargs) - set(self.knobs)
        if unknown:
            raise ConfigError(f"model {self.name!r} has no setting {', '.join(sorted(unknown))}: "
                              f"it takes {', '.join(self.knobs) or 'none'}")
        checked: dict[str, Any] = {}
        for key, value in kwargs.items():
            knob = self.knobs[key]
            whole = isinstance(knob.default, int)  # layer widths and the like: 32.5 channels cannot be built
            # Finite is checked before whole: int() of inf or nan raises, and a checkpoint's settings can hold them.
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or (isinstance(value, float) and not math.isfinite(value)) or (whole and value != int(value))):
                kind = "a whole number" if whole else "a number"
                raise ConfigError(f"{self.name} {key} must be {kind} from {knob.low} to {knob.high} (got "
                                  f"{quoted(value)})")
            if not knob.low <= value <= knob.high:
                raise ConfigError(f"{self.name} {key}={quoted(value)} is out of range: choose {knob.low}…{knob.high}")
            checked[key] = int(value) if whole else value
        return self.builder(**checked)


REGISTRY: dict[str, ModelSpec] = {spec.name: spec for spec in [
    ModelSpec("seed-net", SeedNet, "000, 001",
              "The classic tutorial CNN: conv 10→20 (5×5), Dropout2d, fc 320→50→10. The seeds' softmax-before-"
              "CrossEntropy (a double softmax) is fixed: the model returns logits.",
              {"dropout": Knob(0.5, 0.0, 0.9, 0.05, "dropout")}, recipe="seed 000/001"),
    ModelSpec("nf-cnn", nf_cnn, "002",
              "3×3 convs with stride-2 max-pooling and a dense head 576→64→10 at nf=32; nf sets the width.",
              {"nf": Knob(32, 4, 128, 4, "filters (nf)"), "hidden": Knob(64, 16, 512, 16, "dense width")},
              recipe="seed 002"),
    ModelSpec("s5-net", s5_net, "003",
              "ERA S5: conv 32-64-128-256 (3×3) with two max-pools, fc 4096→50→10. Large (≈593k parameters).",
              {"hidden": Knob(50, 10, 512, 10, "dense width")}, recipe="seed 003"),
    ModelSpec("tiny-bn", tiny_bn, "004",
              "7,416 parameters: BatchNorm, dropout, a 1×1 transition and global average pooling; ≥ 99.4 % in 15 "
              "epochs with ±7° rotation, SGD 0.02 and StepLR.",
              {"dropout": Knob(0.05, 0.0, 0.5, 0.01, "dropout")}, recipe="seed 004"),
    ModelSpec("fast", fast_net, "—",
              "Ours, for the shortest time to 99 %: two BN convs (5×5, 3×3) with max-pooling and a small dense head; "
              "one-cycle Adam for 0.8 epoch.",
              {"width": Knob(16, 8, 64, 8, "width"), "hidden": Knob(128, 32, 512, 32, "dense width")},
              recipe="fastest to 99 %"),
    ModelSpec("best", best_net, "—",
              "Ours, for the highest accuracy: three BN conv stages (32-64-128), dropout and a linear read-out; "
              "trained with augmentation and label smoothing.",
              {"width": Knob(32, 16, 96, 8, "width"), "dropout": Knob(0.2, 0.0, 0.5, 0.05, "dropout")},
              recipe="best accuracy"),
]}


def get_spec(name: str) -> ModelSpec:
    """The registry entry for `name`, or ConfigError listing the names there are."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}: choose one of {', '.join(REGISTRY)}") from None


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """A fresh, untrained model `name` with knob settings `kwargs` (see `ModelSpec.build`)."""
    return get_spec(name).build(**kwargs)


def count_parameters(model: nn.Module) -> int:
    """All parameters, trainable or not (BatchNorm's running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters())


DROPOUT_LAYERS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)


def model_summary(model: nn.Module) -> list[dict[str, Any]]:
    """One row per leaf layer: layer, output shape (without batch), parameters — like torchsummary (seed 003)."""
    rows: list[dict[str, Any]] = []
    hooks = []
    for name, module in model.named_modules():
        if next(module.children(), None) is not None:
            continue

        def record(mod: nn.Module, _inputs: Any, output: torch.Tensor, name: str = name) -> None:
            # a dropout layer's rate: the Dropout knob's only visible effect on the summary
            rate = f", p={mod.p:g}" if isinstance(mod, DROPOUT_LAYERS) else ""
            rows.append({"layer": f"{name} ({type(mod).__name__}{rate})", "output shape": tuple(output.shape[1:]),
                         "parameters": sum(p.numel() for p in mod.parameters(recurse=False))})

        hooks.append(module.register_forward_hook(record))
    was_training = model.training
    device = next(model.parameters()).device
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 1, 28, 28, device=device))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return rows
