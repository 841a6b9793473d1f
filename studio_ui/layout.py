"""What every page does first (`page_setup`) and the pieces several pages draw: the sidebar, image galleries,
error boxes."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import streamlit as st

from mnist_core.data import Mnist
from mnist_core.device import describe_device, pick_device
from mnist_core.errors import CheckpointError, DataError
from mnist_core.explore import enlarge
from mnist_core.runner import RUNNING
from studio_ui import resources, session

STATE_ICONS = {"found": "✅", "will download": "⬇️", "problem": "❌"}


def page_setup(title: str, icon: str) -> None:
    """Page config, keep settings across pages, keep a run that finished meanwhile, draw the sidebar."""
    st.set_page_config(page_title=f"{title} · MNIST Studio", page_icon=icon, layout="wide")
    session.keep_widget_state()
    session.collect_finished_job()
    sidebar()


def sidebar() -> None:
    with st.sidebar:
        st.markdown("### Device")
        st.caption(describe_device(pick_device("auto")))

        st.markdown("### Dataset")
        status = resources.data_status()
        message = f"{STATE_ICONS[status.state]} {status.message}"
        if status.state == "problem":
            st.error(message)
        else:
            st.caption(message)

        st.markdown("### Active model")
        entry = session.active_model()
        if entry is None:
            st.error(default_model_problem())
        else:
            st.markdown(f"**{entry.name}** — {entry.source}")
            if entry.test_accuracy is not None:
                st.caption(f"test accuracy {entry.test_accuracy:.2f} %")
        job = session.current_job()
        if job is not None and job.snapshot().status == RUNNING:
            st.caption(f"⏳ training {job.config.model}: {job.snapshot().fraction:.0%}")


def default_model_problem() -> str:
    try:
        session.default_entry()
    except CheckpointError as error:
        return (f"No model: {error}. Train one on the Train page, or restore checkpoints/default.pt from the "
                f"repository.")
    return "No model is active."


def require_dataset() -> Mnist | None:
    """The dataset, or None after an `st.error` that says how to get it (pages then show what they can)."""
    try:
        return resources.load_dataset()
    except DataError as error:
        st.error(f"This page needs the MNIST dataset. {error}")
        return None


def gallery(images: np.ndarray | Sequence[np.ndarray], captions: Sequence[str], columns: int = 8,
            width: int = 84) -> None:
    """A grid of small digit images (uint8 0–255 or float 0–1) with captions; upscaled without blurring."""
    if not len(captions):
        st.caption("Nothing to show.")
        return
    for start in range(0, len(captions), columns):
        for column, image, caption in zip(st.columns(columns), images[start:start + columns],
                                          captions[start:start + columns]):
            column.image(enlarge(image), caption=caption, width=width)
