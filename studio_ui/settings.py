"""The Train page's settings: their widgets' session keys, choices, presets, and the `TrainConfig` they make.

Every setting is a widget keyed `train.<TrainConfig field>`, so a preset is applied by writing those keys, and the
Dataset explorer's augmentation preview reads the very same values the next run will train with.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

import streamlit as st

from mnist_core.config import PRESETS, TrainConfig, preset_config
from mnist_core.data import Augmentation
from mnist_core.models import get_spec
from studio_ui.session import ensure_defaults

PREFIX = "train."
PRESET_KEY = "train.preset"
CUSTOM = "custom"
# Log-spaced learning rates (1-2-3-5 per decade) plus 1 and 2 for Adadelta, whose rates sit near 1 (the PyTorch
# example's is 1.0): every preset's lr is one of them.
LR_CHOICES = sorted({round(mantissa * 10.0 ** exponent, 8) for exponent in range(-5, 0)
                     for mantissa in (1, 2, 3, 5)} | {1.0, 2.0})
BATCH_SIZES = [16, 32, 64, 100, 128, 256, 512, 1024, 2048]
# Whole epochs, a few fractions for quick looks, and every preset's own length (the fast one is 0.8 epoch).
EPOCH_CHOICES = sorted({0.25, 0.5, *range(1, 31), 40, 50, *(recipe.get("epochs", 1) for recipe in PRESETS.values())})
WEIGHT_DECAYS = [0.0, 1e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1]
SUBSETS = [0, 1000, 5000, 10000, 30000]  # 0 = the whole training split
# The Seed box has no min/max of its own: out of them Streamlit only turned the box red and kept its last valid value,
# so Start trained with a seed other than the one shown. TrainConfig.validate refuses a bad seed with the range.
SEED_HELP = ("a whole number, 0 or more; the same seed and settings repeat a run's random start, batch order and "
             "augmentation (its accuracy may still differ in the second decimal when another run shares the cores: "
             "fewer threads add the same numbers up in another order)")
# The TrainConfig fields the page exposes (the rest keep TrainConfig's defaults).
EXPOSED = ("model", "epochs", "batch_size", "lr", "optimizer", "momentum", "beta2", "nesterov", "weight_decay",
           "scheduler", "step_size", "gamma", "pct_start", "label_smoothing", "augment", "rotation", "translate",
           "scale", "shear", "scribbles", "scribble_shapes", "seed", "device")


def knob_key(model: str, knob: str) -> str:
    return f"{PREFIX}knob.{model}.{knob}"


def _values_of(config: TrainConfig) -> dict[str, Any]:
    values = {PREFIX + name: getattr(config, name) for name in EXPOSED}
    values[PREFIX + "train_subset"] = config.train_subset or 0
    spec = get_spec(config.model)
    values.update({knob_key(config.model, name): config.model_kwargs.get(name, knob.default)
                   for name, knob in spec.knobs.items()})
    return values


def ensure_train_defaults() -> None:
    """Give the Train page's widgets that have no value yet the "fastest to 99 %" preset's."""
    ensure_defaults({PRESET_KEY: "fastest to 99 %", **_values_of(preset_config("fastest to 99 %"))})


def ensure_knob_defaults(model: str) -> None:
    """Give `model`'s knob sliders its own defaults. A model picked in the Model select (not through a preset) has
    no values yet, and a slider without one starts at its minimum: nf-cnn would train at nf=4 instead of 32."""
    ensure_defaults({knob_key(model, name): knob.default for name, knob in get_spec(model).knobs.items()})


def apply_preset() -> None:
    """on_change of the preset select: write the preset's settings into the widgets' keys."""
    preset = st.session_state[PRESET_KEY]
    if preset != CUSTOM:
        values = _values_of(preset_config(preset))
        # No recipe sets these (`train --preset` keeps --device, --seed and --train-subset): a preset put a Device
        # picked by hand back to "auto", the Seed to 0 and a quick run's first 5,000 images to all 60,000.
        for name in NOT_IN_RECIPES:
            values.pop(PREFIX + name)
        st.session_state.update(values)


# The settings no preset sets: where and how much to run, and its random draw. Changing one leaves the recipe as it
# was, so it does not turn the Preset select to "custom" either.
NOT_IN_RECIPES = ("device", "seed", "train_subset")


def mark_custom() -> None:
    """on_change of any setting: the settings no longer are the preset's."""
    st.session_state[PRESET_KEY] = CUSTOM


def preset_choices() -> list[str]:
    return [CUSTOM, *PRESETS]


def config_from_state() -> TrainConfig:
    """The TrainConfig the widgets describe (not yet validated)."""
    state = st.session_state
    model = state[PREFIX + "model"]
    values = {name: state[PREFIX + name] for name in EXPOSED}
    values["epochs"] = float(values["epochs"])
    values["train_subset"] = state[PREFIX + "train_subset"] or None
    values["nesterov"] = values["nesterov"] and values["optimizer"] == "sgd"  # its checkbox shows for sgd only
    knobs = {name: state.get(knob_key(model, name), knob.default) for name, knob in get_spec(model).knobs.items()}
    names = {f.name for f in fields(TrainConfig)}
    return TrainConfig(model_kwargs=knobs, **{k: v for k, v in values.items() if k in names})


def changed_since(config: TrainConfig) -> bool:
    """Whether the widgets now describe other settings than `config`, a run's (whose loss-report interval the page
    chose itself): the settings stay live while a run trains, and the page showed another model's card above the
    progress of the run under way without a word."""
    return replace(config_from_state(), log_every=config.log_every) != config


def augmentation_controls(on_change: Any = None, grey_out_when_off: bool = True) -> Augmentation:
    """The augmentation checkbox and sliders (Train page and explorer share them); returns what they set.

    On the Train page the sliders are greyed out while the checkbox is off, so their values do not read as "on".
    The explorer's preview keeps them live (`grey_out_when_off=False`): trying settings there is its purpose.
    """
    # wrap=True: in a column Streamlit keeps a checkbox on one line and cut this label to "Augment train…"
    augment = st.checkbox("Augment training images", key=PREFIX + "augment", on_change=on_change, wrap=True,
                          help="random rotation, shift, zoom and shear of each training image, batched on the device")
    off = grey_out_when_off and not augment
    # Whole degrees read "10°", not "10.00" (the float slider's default format).
    st.slider("Rotation (± degrees)", 0.0, 30.0, step=1.0, key=PREFIX + "rotation", on_change=on_change,
              disabled=off, format="%.0f°", help="each image turned by a random angle up to this, either way")
    st.slider("Shift (± fraction of the side)", 0.0, 0.3, step=0.01, key=PREFIX + "translate", on_change=on_change,
              disabled=off, help="each image moved by up to this share of its 28-px side, across and up or down "
                                 "(0.1: up to 2.8 px)")
    st.slider("Scale (± relative zoom)", 0.0, 0.3, step=0.01, key=PREFIX + "scale", on_change=on_change,
              disabled=off, help="each image zoomed in or out by up to this share (0.1: 90 % to 110 % of its size)")
    st.slider("Shear (± degrees)", 0.0, 30.0, step=1.0, key=PREFIX + "shear", on_change=on_change, disabled=off,
              format="%.0f°",
              help="slant, as in italic writing: upright strokes lean, level ones stay level")
    state = st.session_state
    return Augmentation(state[PREFIX + "rotation"], state[PREFIX + "translate"], state[PREFIX + "scale"],
                        state[PREFIX + "shear"])
