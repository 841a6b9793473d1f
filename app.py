"""MNIST Studio — the landing page. `streamlit run app.py`; the pages live in pages/."""

from __future__ import annotations

import streamlit as st

from mnist_core.device import available_devices, describe_device, pick_device
from studio_ui import layout, resources, session

layout.page_setup("Home", "🔢")

st.title("MNIST Studio")
st.markdown("Explore MNIST, train PyTorch CNNs with sliders, study their mistakes and draw digits for them to read.")

device_column, data_column, model_column = st.columns(3)
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
        st.info(f"{status.message}. Offline? Copy the four IDX files into {status.root}/MNIST/raw/ or set "
                f"MNIST_DATA_ROOT to a folder that has them.")
    else:
        st.caption(status.message)

with model_column:
    st.subheader("Active model")
    entry = session.active_model()
    if entry is None:
        st.error(layout.default_model_problem())
    else:
        st.metric(entry.name, f"{entry.test_accuracy:.2f} %" if entry.test_accuracy is not None else "—",
                  help="test accuracy on the 10,000 MNIST test images")
        st.caption(f"from {entry.source}")

st.divider()
st.subheader("Pages")
pages = [
    ("pages/1_Dataset_Explorer.py", "Dataset explorer", "🔍", "Samples by digit, class balance, mean images, pixel "
     "intensities and a preview of the training augmentation."),
    ("pages/2_Train.py", "Train", "🏋️", "Pick a model and a recipe, press Start, watch the curves live, Stop at any "
     "time; save or download the result."),
    ("pages/3_Evaluate.py", "Evaluate", "📊", "Accuracy, confusion matrix, per-class metrics, the most confident "
     "mistakes, and runs compared side by side."),
    ("pages/4_Sketch.py", "Sketch", "✏️", "Draw a digit (or upload a picture) and see what the model reads."),
]
for column, (path, label, icon, blurb) in zip(st.columns(len(pages)), pages):
    with column:
        st.page_link(path, label=label, icon=icon)
        st.caption(blurb)
