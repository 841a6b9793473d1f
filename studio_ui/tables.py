"""Columns that the Train page's run history and the Evaluate page's Compare table share, so both read alike."""

from __future__ import annotations

from typing import Any

import streamlit as st

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

# What these tables show for a value a checkpoint does not hold, as the page's figures do ("None" by default).
MISSING = "—"
