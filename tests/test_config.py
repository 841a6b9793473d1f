"""TrainConfig: presets are valid, and settings that cannot train are refused with a message saying what to change."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mnist_core.config import PRESETS, TrainConfig, preset_config, recipe_for_model
from mnist_core.errors import ConfigError
from mnist_core.models import REGISTRY


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset_is_a_valid_config(preset: str) -> None:
    config = preset_config(preset).validate()
    assert config.model in REGISTRY


@pytest.mark.parametrize("model", list(REGISTRY))
def test_every_model_has_a_valid_recipe(model: str) -> None:
    assert recipe_for_model(model).validate().model == model


def test_seed_004_preset_is_the_seeds_recipe() -> None:
    config = preset_config("seed 004")
    assert (config.model, config.optimizer, config.lr, config.momentum) == ("tiny-bn", "sgd", 0.02, 0.9)
    assert (config.scheduler, config.step_size, config.gamma, config.epochs) == ("step", 6, 0.1, 15)
    assert config.augment and config.rotation == 7.0


def test_preset_overrides_win() -> None:
    assert preset_config("seed 002", epochs=2).epochs == 2


@pytest.mark.parametrize("changes, words", [
    (dict(train_subset=100, batch_size=200), "batch size must be between 2 and the number of training images (100)"),
    (dict(batch_size=60_001), "batch size"),
    (dict(batch_size=1), "batch size"),
    (dict(epochs=0), "epochs must be more than 0"),
    (dict(epochs=-1), "epochs must be more than 0"),
    (dict(epochs=float("nan")), "epochs"),
    (dict(epochs=10_000), "at most 1000"),
    (dict(lr=float("nan")), "learning rate"),
    (dict(lr=float("inf")), "learning rate"),
    (dict(lr=0.0), "learning rate must be above 0"),
    (dict(lr=-0.1), "learning rate"),
    (dict(optimizer="rmsprop"), "unknown optimizer 'rmsprop': choose sgd, adam, adamw, adadelta"),
    (dict(scheduler="plateau"), "unknown scheduler 'plateau'"),
    (dict(momentum=1.0), "momentum"),
    (dict(momentum=float("nan")), "momentum"),
    (dict(optimizer="adam", nesterov=True), "Nesterov"),
    (dict(weight_decay=-1), "weight decay"),
    (dict(label_smoothing=1.0), "label smoothing"),
    (dict(rotation=200), "rotation"),
    (dict(translate=0.9), "shift"),
    (dict(scribbles=-0.1), "scribbles must be 0…1"),
    (dict(scribbles=2.0), "scribbles must be 0…1"),
    # round(32 × 0.001) is no scribble at all: the run trained as if the setting were off, without a word
    (dict(scribbles=0.001, batch_size=32), "scribbles 0.001 per digit come to less than one per batch of 32, so none "
                                           "would be drawn: use at least 0.0312 per digit (one per batch), or 0"),
    (dict(shear=-5), "shear must be 0…45 degrees"),
    (dict(shear=60), "shear must be 0…45 degrees"),
    (dict(scribble_shapes="dots"), "unknown scribble shapes 'dots': choose zigzag, mixed"),
    (dict(device="tpu"), "unknown device 'tpu'"),
    (dict(train_subset=70_000), "train subset must be 2…60000"),
    (dict(train_subset=-5), "train subset must be 2…60000 images (got -5)"),  # not "batch size … (-5)"
    (dict(train_subset=1), "train subset must be 2…60000 images (got 1)"),
    (dict(train_subset=0), "train subset must be 2…60000 images (got 0)"),
    (dict(eval_every=0), "the interval between evaluations must be a positive, finite number of epochs"),
    (dict(model="resnet"), "unknown model 'resnet'"),
    (dict(model="nf-cnn", model_kwargs={"nf": 999}), "out of range"),
    (dict(model="fast", model_kwargs={"depth": 3}), "no setting depth"),
])
def test_settings_that_cannot_train_are_refused_with_a_clear_message(changes: dict, words: str) -> None:
    with pytest.raises(ConfigError) as refused:
        replace(TrainConfig(), **changes).validate()
    assert words.lower() in str(refused.value).lower()


def test_batch_size_equal_to_the_subset_is_allowed() -> None:
    TrainConfig(train_subset=64, batch_size=64).validate()


def test_unknown_preset_lists_the_presets() -> None:
    with pytest.raises(ConfigError, match="unknown preset 'seed 999'.*seed 004"):
        preset_config("seed 999")


def test_to_dict_round_trips() -> None:
    config = preset_config("seed 003")
    assert TrainConfig(**config.to_dict()) == config


def test_seed_too_large_for_torch_is_refused() -> None:
    with pytest.raises(ConfigError, match="seed"):
        TrainConfig(seed=2**70).validate()


def test_absurdly_frequent_evaluation_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"evaluating every 1e-12 epochs would be more often than once per batch: "
                                          r"use at least 0\.00213 epochs \(one batch of 128\)"):
        TrainConfig(eval_every=1e-12).validate()


def test_a_run_that_trains_all_its_batches_has_done_the_epochs_it_was_set() -> None:
    """1,000 images, batch 16, 0.8 epoch: 50 of 63 batches, reported as 0.79 epochs done ("Epoch 0.79 / 0.8"), which
    read as a run cut short (batch 128: 6 of 8, 0.75)."""
    schedule = TrainConfig(epochs=0.8, batch_size=16, train_subset=1000).schedule()
    assert (schedule.steps_per_epoch, schedule.total_steps, schedule.epochs) == (63, 50, 0.8)
    assert schedule.epochs_at(50) == 0.8 and schedule.epochs_at(49) == 49 / 63 and schedule.epochs_at(0) == 0
    assert TrainConfig(epochs=0.8, batch_size=128, train_subset=1000).schedule().epochs_at(6) == 0.8
    whole = TrainConfig(epochs=3, batch_size=128).schedule()  # whole epochs land on whole numbers all along
    assert [whole.epochs_at(469 * n) for n in (1, 2, 3)] == [1, 2, 3]
    less_than_a_batch = TrainConfig(epochs=0.001, batch_size=128).schedule()  # one batch is trained: it says so
    assert less_than_a_batch.total_steps == 1 and less_than_a_batch.epochs == less_than_a_batch.epochs_at(1) == 1 / 469


def test_settings_with_too_few_batches_to_learn_say_so() -> None:
    """The quick run (first 1,000 images) with the fast preset's 0.8 epoch trained 6 batches and scored 44 %."""
    quick = preset_config("fastest to 99 %", train_subset=1000)
    assert quick.few_steps_note() == ("6 batches in all: too few to learn much — more epochs, more training images "
                                      "or a smaller batch")
    assert replace(quick, epochs=0.25, batch_size=512).few_steps_note().startswith("1 batch in all: ")
    assert preset_config("fastest to 99 %").few_steps_note() is None  # 375 batches
    assert replace(quick, batch_size=2048).few_steps_note() is None  # refused on Start, with its own message


def test_a_step_scheduler_that_never_decays_within_the_run_is_noted() -> None:
    """StepLR decays after step_size × batches-per-epoch batches: at exactly the run's length the decay comes after
    its last batch, which is no decay at all."""
    assert TrainConfig(scheduler="step", step_size=1, epochs=2).scheduler_note() is None
    assert "never decays" in TrainConfig(scheduler="step", step_size=1, epochs=1).scheduler_note()
    assert "after 1 epoch and the run is 0.5 epochs long" in TrainConfig(scheduler="step", step_size=1,
                                                                         epochs=0.5).scheduler_note()
    assert TrainConfig(scheduler="step", gamma=1.0, epochs=5).scheduler_note().startswith("Decay factor γ 1")
    assert TrainConfig(scheduler="onecycle", step_size=30, epochs=1).scheduler_note() is None
