"""MNIST Studio's landing page: `streamlit run app.py`. The pages live in pages/ (URLs /Dataset_Explorer, /Train,
/Evaluate, /Sketch); the sidebar's navigation is drawn by `studio_ui.layout`."""

from __future__ import annotations

import streamlit as st

from mnist_core.device import available_devices, describe_device, pick_device
from studio_ui import layout, resources, session

layout.page_setup("Home", ":material/home:")
PANEL_WIDTH = 260  # px: the device, dataset and model panels
# A page's link and blurb. Two pairs of cards, each pair a row of its own: four in a row in a 1400-px window's 940 px
# of page (2 × (2 × 208 + 32) + 32), two and two below that, one a row under 448 px; never three and one alone.
PAGE_CARD_WIDTH, CARD_GAP = 208, 32

st.title("MNIST Studio")
st.markdown("Explore MNIST, train PyTorch CNNs with sliders, study their mistakes and draw digits for them to "
            "read.")

# Wrapping panels, not st.columns: in an 800-px window three columns squeeze "Active model" onto two lines and cut
# the data folder mid-word.
device_column, data_column, model_column = layout.wrapping_panels(
    ("home-device", PANEL_WIDTH), ("home-dataset", PANEL_WIDTH), ("home-model", PANEL_WIDTH), gap=32)
with device_column:
    st.subheader("Device")
    st.metric("Training runs on", describe_device(pick_device("auto")).split(" · ")[0])
    st.caption(f"{describe_device(pick_device('auto'))} · available: {', '.join(available_devices())}")

with data_column:
    st.subheader("Dataset")
    status = resources.data_status()
    st.metric("MNIST", status.state)
    if status.state == "problem":
        st.error(status.message)
    elif status.state == "will download":
        st.info(f"{status.message}. Offline? Copy the four IDX files into {status.root}/MNIST/raw/, or point "
                f"MNIST_DATA_ROOT at a folder that has MNIST/raw/. {resources.RESTART_HINT}")
    else:
        message, full_message = layout.dataset_message(status)
        st.caption(message, help=full_message)

with model_column:
    st.subheader("Active model")
    entry = session.active_model()
    if entry is None:
        st.error(layout.default_model_problem())
    else:
        layout.figures([("Model", entry.name), ("Test accuracy", f"{entry.test_accuracy:.2f} %"
                                                  if entry.test_accuracy is not None else "—")],
                       helps={"Test accuracy": "on the 10,000 MNIST test images"})
        st.caption(f"from {layout.literal(entry.source)}")

st.divider()
st.subheader("Pages")
links = layout.PAGES[1:]
# Wrapping rows, not st.columns: columns cut the titles short in a narrow window.
with st.container(horizontal=True, gap=CARD_GAP, key="page-cards"):
    for pair in (links[:2], links[2:]):
        with st.container(horizontal=True, gap=CARD_GAP, width=2 * PAGE_CARD_WIDTH + CARD_GAP):
            for page in pair:
                with st.container(width=PAGE_CARD_WIDTH):
                    layout.page_link(page)
                    st.caption(page.blurb)
