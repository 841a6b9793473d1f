"""One config object for a training run (nanoGPT-style), its validation, and the presets that reproduce each seed.

The CLI, the app's Train page and the benchmark all build a `TrainConfig`; `validate()` refuses settings that cannot
work *before* any training starts, with a message that says what to change.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from mnist_core.data import SCRIBBLE_SHAPES, Augmentation, batches_per_epoch
from mnist_core.device import DEVICE_CHOICES
from mnist_core.errors import ConfigError
from mnist_core.models import get_spec

OPTIMIZERS = ("sgd", "adam", "adamw", "adadelta")
SCHEDULERS = ("none", "step", "onecycle", "cosine")
PRECISIONS = ("auto", "fp32", "bf16")
TRAIN_SIZE = 60000
MAX_EPOCHS = 1000  # the longest run `validate` accepts (a checkpoint claiming more is not one of ours)
# Fewer optimizer steps than this in a whole run learn little: the fast preset on the first 1,000 images (6 batches of
# 128) scored 44 %; the same preset reaches 99 % only after ~250 batches.
FEW_STEPS = 50


@dataclass(frozen=True)
class Schedule:
    """The batches a run trains, and the epochs they amount to."""

    steps_per_epoch: int  # batches in one pass over the training images (a last batch of one image is dropped)
    total_steps: int
    epochs: float  # the epochs asked for; one batch's worth when they are less than one batch

    def epochs_at(self, step: int) -> float:
        """Epochs done after `step` batches. A run that trains all its batches has done the epochs it was set: 0.8
        epoch of 63 batches is 50 of them, which is 0.794 by batches and read as a run cut short."""
        return self.epochs if step >= self.total_steps else step / self.steps_per_epoch


@dataclass
class TrainConfig:
    """Every setting of one training run. `validate()` refuses settings that cannot train; `schedule()` counts the
    batches the run will train."""

    model: str = "fast"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    epochs: float = 1  # fractional epochs are allowed (e.g. 0.5 = half of the shuffled train split)
    batch_size: int = 128
    lr: float = 0.01
    optimizer: str = "adam"
    momentum: float = 0.9  # sgd momentum; adam/adamw beta1 (a onecycle scheduler cycles it 0.95→0.85→0.95 instead)
    beta2: float = 0.999  # adam/adamw
    nesterov: bool = False
    weight_decay: float = 0.0
    scheduler: str = "none"
    step_size: int = 1  # StepLR: epochs between decays
    gamma: float = 0.7  # StepLR decay factor
    pct_start: float = 0.25  # OneCycle warm-up fraction
    label_smoothing: float = 0.0
    augment: bool = False
    rotation: float = 10.0  # degrees either way (all three act only with augment=True)
    translate: float = 0.1  # fraction of the side
    scale: float = 0.1  # relative zoom either way
    shear: float = 0.0  # slant, degrees either way (italic writing); 0 draws no random numbers for it
    # Outlier exposure: random scribbles added to each batch (0.25 = one per four digits), trained towards "no
    # digit" (equal probabilities), so the model is unsure about drawings that are not digits. 0 = off.
    scribbles: float = 0.0
    scribble_shapes: str = "zigzag"  # "zigzag", or "mixed": also loops with marks inside and crossing strokes
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # "auto" (bf16 where the hardware has it), "fp32" or "bf16"
    compile: bool = False  # torch.compile the model before training (CUDA graphs on CUDA); see train.py
    train_subset: int | None = None  # first N training images only (quick runs)
    eval_every: float = 1.0  # evaluate on the test split every this many epochs (fractions allowed)
    log_every: int = 20  # report the mean train loss every this many batches

    @property
    def augmentation(self) -> Augmentation | None:
        return Augmentation(self.rotation, self.translate, self.scale, self.shear) if self.augment else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def schedule(self, train_images: int | None = None) -> Schedule:
        """The run's batches on `train_images` images (default: the subset, or the whole training split). At least
        one batch: fewer epochs than that train one whole batch."""
        steps_per_epoch = batches_per_epoch(train_images or self.train_subset or TRAIN_SIZE, self.batch_size)
        total_steps = max(1, round(self.epochs * steps_per_epoch))
        epochs = self.epochs if self.epochs * steps_per_epoch >= 1 else total_steps / steps_per_epoch
        return Schedule(steps_per_epoch, total_steps, epochs)

    def few_steps_note(self) -> str | None:
        """Why these settings will learn little (too few optimizer steps in all), or None; for settings that can
        run (a batch larger than the images is refused by `validate`, which the Train page says before Start)."""
        if not 2 <= self.batch_size <= (self.train_subset or TRAIN_SIZE):
            return None
        steps = self.schedule().total_steps
        if steps >= FEW_STEPS:
            return None
        return (f"{steps} batch{'' if steps == 1 else 'es'} in all: too few to learn much — more epochs, more "
                f"training images or a smaller batch")

    def scheduler_note(self) -> str | None:
        """Why the step scheduler will leave the learning rate as it is for the whole run, or None. Its sliders take
        any step size and γ: seed 003's recipe (a decay after epoch 15) set to 10 epochs never decayed, silently."""
        if self.scheduler != "step":
            return None
        if self.gamma >= 1:
            return ("Decay factor γ 1 keeps the learning rate as it is: the step scheduler changes nothing — a "
                    "smaller γ, or scheduler none")
        schedule = self.schedule()
        if schedule.total_steps > self.step_size * schedule.steps_per_epoch:  # StepLR decays after that many batches
            return None
        return (f"The first decay comes after {self.step_size} epoch{'' if self.step_size == 1 else 's'} and the run "
                f"is {schedule.epochs:g} epoch{'' if schedule.epochs == 1 else 's'} long: the learning rate never "
                "decays — a smaller step size or more epochs")

    def validate(self) -> "TrainConfig":
        """Raise ConfigError for settings that cannot train; return self so calls chain."""
        spec = get_spec(self.model)
        spec.build(**self.model_kwargs)  # checks the model's own knobs
        size = self.train_subset or TRAIN_SIZE

        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ConfigError(message)

        need(isinstance(self.epochs, (int, float)) and math.isfinite(self.epochs) and 0 < self.epochs <= MAX_EPOCHS,
             f"epochs must be more than 0 and at most {MAX_EPOCHS} (got {self.epochs})")
        # Before the batch size, whose limit is the subset: a subset of -5 is the setting to change, not the batch.
        need(self.train_subset is None or 2 <= self.train_subset <= TRAIN_SIZE,
             f"train subset must be 2…{TRAIN_SIZE} images (got {self.train_subset})")
        need(isinstance(self.batch_size, int) and 2 <= self.batch_size <= size,
             f"batch size must be between 2 and the number of training images ({size}); got {self.batch_size}"
             + (": choose a smaller batch size" + (", or more training images" if size < TRAIN_SIZE else "")
                if isinstance(self.batch_size, int) and self.batch_size > size else ""))
        need(math.isfinite(self.lr) and 0 < self.lr <= 100, f"learning rate must be above 0 and at most 100 (got {self.lr})")
        need(self.optimizer in OPTIMIZERS, f"unknown optimizer {self.optimizer!r}: choose {', '.join(OPTIMIZERS)}")
        need(self.scheduler in SCHEDULERS, f"unknown scheduler {self.scheduler!r}: choose {', '.join(SCHEDULERS)}")
        need(0 <= self.momentum < 1, f"momentum must be in [0, 1) (got {self.momentum})")
        need(0 <= self.beta2 < 1, f"beta2 must be in [0, 1) (got {self.beta2})")
        # (with one-cycle the momentum is the cycle's, never 0: the page greys out the slider, which may read 0)
        need(not self.nesterov or (self.optimizer == "sgd" and (self.momentum > 0 or self.scheduler == "onecycle")),
             "Nesterov momentum needs the sgd optimizer with momentum > 0: choose sgd with momentum, or turn Nesterov off")
        need(0 <= self.weight_decay <= 1, f"weight decay must be in [0, 1] (got {self.weight_decay})")
        need(isinstance(self.step_size, int) and self.step_size >= 1, f"step size must be ≥ 1 epoch (got {self.step_size})")
        need(0 < self.gamma <= 1, f"gamma must be in (0, 1] (got {self.gamma})")
        need(0 < self.pct_start < 1, f"OneCycle warm-up fraction must be in (0, 1) (got {self.pct_start})")
        need(0 <= self.label_smoothing < 1, f"label smoothing must be in [0, 1) (got {self.label_smoothing})")
        need(0 <= self.rotation <= 180, f"rotation must be 0…180 degrees (got {self.rotation})")
        need(0 <= self.translate <= 0.5, f"shift must be 0…0.5 of the image (got {self.translate})")
        need(0 <= self.scale <= 0.5, f"scale jitter must be 0…0.5 (got {self.scale})")
        need(0 <= self.shear <= 45, f"shear must be 0…45 degrees (got {self.shear})")
        need(isinstance(self.scribbles, (int, float)) and 0 <= self.scribbles <= 1,
             f"scribbles must be 0…1 per digit (got {self.scribbles})")
        # Each batch draws round(batch size × scribbles) of them: asked for, they must come to at least one.
        need(not (isinstance(self.scribbles, (int, float)) and isinstance(self.batch_size, int)
                  and self.scribbles > 0 and round(self.batch_size * self.scribbles) < 1),
             f"scribbles {self.scribbles} per digit come to less than one per batch of {self.batch_size}, so none "
             f"would be drawn: use at least {1 / max(self.batch_size, 1):.3g} per digit (one per batch), or 0")
        need(self.scribble_shapes in SCRIBBLE_SHAPES,
             f"unknown scribble shapes {self.scribble_shapes!r}: choose {', '.join(SCRIBBLE_SHAPES)}")
        need(self.device in DEVICE_CHOICES, f"unknown device {self.device!r}: choose {', '.join(DEVICE_CHOICES)}")
        need(isinstance(self.compile, bool), f"compile must be true or false (got {self.compile!r})")
        need(self.precision in PRECISIONS, f"unknown precision {self.precision!r}: choose {', '.join(PRECISIONS)}")
        need(isinstance(self.seed, int) and 0 <= self.seed < 2**63, f"seed must be a whole number from 0 to 2⁶³−1 "
             f"(got {self.seed})")
        # At least one batch between evaluations: finer would only repeat the same evaluation (and a tiny value would
        # ask for billions of them).
        steps_per_epoch = -(-size // self.batch_size) if isinstance(self.batch_size, int) and self.batch_size else 1
        # Said apart: "more often than once per batch" would be a puzzling answer to 0, -1 or nan.
        need(isinstance(self.eval_every, (int, float)) and math.isfinite(self.eval_every) and self.eval_every > 0,
             f"the interval between evaluations must be a positive, finite number of epochs, e.g. 1 or 0.5 (got "
             f"{self.eval_every})")
        need(isinstance(self.eval_every, (int, float)) and math.isfinite(self.eval_every)
             and self.eval_every * steps_per_epoch >= 1,
             f"evaluating every {self.eval_every} epochs would be more often than once per batch: use at least "
             f"{1 / steps_per_epoch:.3g} epochs (one batch of {self.batch_size})")
        need(isinstance(self.log_every, int) and self.log_every >= 1, "log_every must be ≥ 1 batch")
        return self


# Each seed's recipe, and ours. `model` picks the architecture; the rest overrides TrainConfig's defaults.
PRESETS: dict[str, dict[str, Any]] = {
    "seed 000/001": dict(model="seed-net", epochs=10, batch_size=100, optimizer="adam", lr=0.01, scheduler="none"),
    "seed 002": dict(model="nf-cnn", epochs=10, batch_size=64, optimizer="adam", lr=0.01, scheduler="none"),
    "seed 003": dict(model="s5-net", epochs=20, batch_size=512, optimizer="sgd", lr=0.01, momentum=0.9,
                     scheduler="step", step_size=15, gamma=0.1, augment=True, rotation=15.0, translate=0.0, scale=0.0),
    # Seed 004 does not state its batch size: 64 reproduces its "over 99.4 %" (99.42 % measured; 128 gave 99.36 %).
    "seed 004": dict(model="tiny-bn", epochs=15, batch_size=64, optimizer="sgd", lr=0.02, momentum=0.9,
                     scheduler="step", step_size=6, gamma=0.1, augment=True, rotation=7.0, translate=0.0, scale=0.0),
    # Label smoothing, a short warm-up to a high peak lr and a 0.8-epoch cycle: 99.0 % after ~0.6 epoch (measured).
    "fastest to 99 %": dict(model="fast", epochs=0.8, batch_size=128, optimizer="adam", lr=0.02, momentum=0.9,
                            beta2=0.99, scheduler="onecycle", pct_start=0.15, label_smoothing=0.1),
    # For GPUs, where a small network's step costs about the same at batch 128 as at 512 (kernel launches, not
    # arithmetic): twice the width, batch 512, a third of the steps. Measured on CPU (steps do not depend on the
    # device), seeds 0-2: 99.0 % after 83-94 of 142 steps (final 99.16 % mean); with augmentation over 3 epochs,
    # 99.4 % after 212-248 of 354 steps (final 99.49 % mean; 4 epochs: 271-307 of 472).
    # GPU seconds: `python -m mnist_core.bench --device cuda`.
    "GPU: fastest to 99 %": dict(model="fast", model_kwargs={"width": 32, "hidden": 256}, epochs=1.2, batch_size=512,
                                 optimizer="adam", lr=0.03, momentum=0.9, beta2=0.99, scheduler="onecycle",
                                 pct_start=0.2, label_smoothing=0.1),
    "GPU: fastest to 99.4 %": dict(model="fast", model_kwargs={"width": 32, "hidden": 256}, epochs=3, batch_size=512,
                                   optimizer="adam", lr=0.03, momentum=0.9, beta2=0.99, scheduler="onecycle",
                                   pct_start=0.2, label_smoothing=0.1, augment=True, rotation=10.0, translate=0.1,
                                   scale=0.1),
    "best accuracy": dict(model="best", epochs=15, batch_size=128, optimizer="adamw", lr=0.01, momentum=0.9,
                          beta2=0.99, weight_decay=0.01, scheduler="onecycle", pct_start=0.2, label_smoothing=0.1,
                          augment=True, rotation=12.0, translate=0.1, scale=0.1),
}


def epochs_shown(epochs: float) -> float:
    """Epochs rounded as a person reads them: three decimals, one significant digit below 0.001 (a stop after a
    few batches is not 0.00). The run tables show this number, `epochs_text` the same number in words."""
    return float(round(epochs, 3)) if epochs >= 0.001 or epochs == 0 else float(f"{epochs:.1g}")


def epochs_text(epochs: float) -> str:
    """Epochs as a person reads them: "0.004 epochs", "0.5 epochs", "1 epoch", "3 epochs" (a stop after a few
    batches is not "0.00 epochs"; a Stop during the test pass at the end of the first epoch read "1 epochs")."""
    shown = f"{epochs_shown(epochs):g}"
    return f"{shown} epoch" + ("" if shown == "1" else "s")


def epochs_progress(epochs: float, finished: bool = False) -> str:
    """Epochs done as a progress line reads them: two decimals while the run trains ("0.80", "1.00"), but never "0.00"
    for a run that has trained: under 0.01 epoch, the number `epochs_text` says ("0.002"). A Stop after 2 of 469
    batches read "Epoch 0.00 of 1" beside "Stopped after 2 of 469 batches (0.004 epochs)". Once the run has ended, the
    number `epochs_text` and the run history say: a Stop after 1 of 8 batches read "0.12" beside "(0.125 epochs)"."""
    if finished or 0 < epochs < 0.01:
        return f"{epochs_shown(epochs):g}"
    return f"{epochs:.2f}"


def preset_config(preset: str, **overrides: Any) -> TrainConfig:
    """The `PRESETS` entry named `preset` as a TrainConfig, with overrides on top; ConfigError for an unknown name."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
    return replace(TrainConfig(**PRESETS[preset]), **overrides)


def recipe_for_model(model: str, **overrides: Any) -> TrainConfig:
    """The model's own best-known recipe (its preset), with overrides on top."""
    spec = get_spec(model)
    return preset_config(spec.recipe, **overrides) if spec.recipe else TrainConfig(model=model, **overrides)
