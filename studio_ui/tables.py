"""Columns that the Train page's run history and the Evaluate page's Compare table share, so both read alike."""

from __future__ import annotations

from typing import Any

import streamlit as st

from mnist_core.config import TRAIN_SIZE
from mnist_core.models import get_spec
from mnist_core.runner import run_length


def run_length_cells(metrics: dict[str, Any], config: dict[str, Any]) -> dict[str, float | int | None]:
    """The row's "epochs" and "batches": numbers, so a click on either header sorts runs by how long they trained
    (one text column, "10 epochs" sorted before "2 epochs")."""
    length = run_length(metrics, config)
    return {"epochs": length.epochs, "batches": length.batches}


# "%g": 10, 0.8, 0.002, the digits `epochs_shown` kept and no more
RUN_LENGTH_COLUMNS: dict[str, Any] = {
    "epochs": st.column_config.NumberColumn(format="%g", help="epochs trained: a run stopped early shows how far it "
                                                               "got"),
    "batches": st.column_config.NumberColumn(format="%,d", help="batches trained; — where the checkpoint does "
                                                                "not say (saved before MNIST Studio kept the count)"),
}



def training_images_cell(config: dict[str, Any]) -> dict[str, int | None]:
    """The row's "training images": a number column, so that a quick run on the first 5,000 reads apart from a run on
    all 60,000 without a sideways scroll to the end of a long settings summary. Every saved config has the key (None
    for all images); without it (loading dropped an odd value) the count is unknown."""
    return {"training images": (config["train_subset"] or TRAIN_SIZE) if "train_subset" in config else None}


def architecture_cell(name: str, model_kwargs: dict[str, Any]) -> dict[str, str]:
    """The row's "architecture": the model and its knobs that differ from their defaults, "fast (width 32, dense width
    64)", so that two networks of one name read apart (as the Train page's settings column names them)."""
    knobs = get_spec(name).knobs
    changed = [f"{knob.label} {model_kwargs[key]:g}" for key, knob in knobs.items()
               if model_kwargs.get(key, knob.default) != knob.default]
    return {"architecture": f"{name} ({', '.join(changed)})" if changed else name}


TRAINING_IMAGES_COLUMNS: dict[str, Any] = {"training images": st.column_config.NumberColumn(format="%,d")}

# What these tables show for a value a checkpoint does not hold, as the page's figures do ("None" by default).
MISSING = "—"
