"""Evaluate: accuracy, loss, confusion matrix (click a cell to see its images), per-class metrics, the most confident
mistakes, correct predictions, and several runs or checkpoints compared."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd
import streamlit as st

from mnist_core import explore
from mnist_core.checkpoints import MAX_CHECKPOINT_BYTES, list_checkpoints, load_checkpoint
from mnist_core.errors import MB, CheckpointError
from mnist_core.models import count_parameters
from studio_ui import charts, layout, resources, session, tables
from studio_ui.session import ModelEntry, ensure_defaults

layout.page_setup("Evaluate", ":material/analytics:")
st.title("Evaluate")
st.caption("How a model does on MNIST's test images: pick it below, then click a cell of the confusion matrix "
           "to see the images it mixes up, or compare it with other runs at the bottom of the page.")
ensure_defaults({"evaluate.source": "Active model", "evaluate.normalised": False})
MATRIX_GENERATION_KEY = "studio.matrix_generation"  # part of the heatmap's key: moves on with every click on it
GONE_CHOICE_KEY = "evaluate.gone_choice"  # a file picked below, then deleted: said until another pick
COMPARE_KEY = "evaluate.compare"
COMPARE_PICKED_KEY = "evaluate.compare_picked"  # True once the user changed the comparison: from then on it is theirs
GALLERY_SIZE = 24
CELL_IMAGES = 16
# px: the matrix fits beside the sidebar of an 800-px window (468 px of page); the cell panel holds four 84-px images.
# Together with their gap they fit a 1280-px window's 820 px of page, less a 15-px scroll bar: at 460 + 24 + 360 the
# cell's images went below the matrix there, out of sight of the click that picked them.
MATRIX_PANEL_WIDTH, CELL_PANEL_WIDTH, MATRIX_CELL_GAP = 420, 360, 16


def file_entry(path: Path) -> ModelEntry:
    """The checkpoint file at `path`, loaded once per version of the file; raises `CheckpointError`."""
    key, loaded = resources.checkpoint_file(path)
    return ModelEntry(loaded, "file", key, path)


def model_choices() -> dict[str, Callable[[], ModelEntry]]:
    """Every model the session can evaluate, by label; files load only when chosen."""
    choices: dict[str, Callable[[], ModelEntry]] = {}
    for entry in reversed(session.runs()):
        choices[f"{entry.source} · {entry.name}"] = lambda entry=entry: entry
    for path in list_checkpoints():
        choices[resources.display_path(path)] = lambda path=path: file_entry(path)
    return choices


def comparable_models() -> dict[str, Callable[[], ModelEntry]]:
    """`model_choices()`, this session's last good upload (a file uploaded to be judged is one to compare too) and
    the active model when it is none of those, so that it can be compared too (an upload made active, then replaced
    by another; a file made active, then deleted or changed on disk)."""
    choices = model_choices()
    kept = session.kept_upload()
    if kept:
        upload = kept[1]
        choices[f"{upload.source} · {upload.name}"] = lambda: upload
    active = session.active_model()
    listed = ({entry.key for entry in session.runs()} | {resources.file_key(path) for path in list_checkpoints()}
              | ({kept[1].key} if kept else set()))
    if active is not None and active.key not in listed:
        choices[f"active model · {active.source} · {active.name}"] = lambda: active
    return choices


def first_that_load(choices: dict[str, Callable[[], ModelEntry]], count: int) -> list[str]:
    """The first `count` choices whose models load, so that the comparison does not open with an error about a file
    the user has not picked."""
    loaded: list[str] = []
    for label, load in choices.items():
        if len(loaded) == count:
            break
        try:
            load()
        except CheckpointError:
            continue
        loaded.append(label)
    return loaded


def uploaded_entry() -> ModelEntry | None:
    """The uploaded checkpoint, loaded safely (never executing code); an st.error and None when it is bad.

    The last good one stays while the user visits other pages (Streamlit empties the uploader there, as on Sketch) and
    across a reload; a new file or the uploader's ✕ forgets it."""
    # No type filter: with one, the browser refuses other files with only a red chip while the last file's error
    # stays on the page; load_checkpoint names what is wrong with any file.
    upload = st.file_uploader("Checkpoint file (.pt)", key=session.uploader_key(),
                              on_change=session.forget_upload,
                              help=f"an MNIST Studio checkpoint, at most {MAX_CHECKPOINT_BYTES // MB} MB; "
                                   f"it is read with weights_only, so it cannot run code")
    kept = session.kept_upload()
    if upload is None:
        if kept:
            st.caption("Your last upload, kept: upload another checkpoint above to replace it.")
        return kept[1] if kept else None
    if kept and kept[0] == upload.file_id:
        return kept[1]
    raw = upload.getvalue()
    try:
        loaded = load_checkpoint(raw, name=f"upload: {upload.name}")
    except CheckpointError as error:
        # capitalised on the page, "Upload: x.pt is …"; the library writes it in lower case for the CLI
        st.error(layout.literal(layout.then(layout.sentence(error), "The active model is unchanged.")))
        return None
    entry = ModelEntry(loaded, "upload", resources.upload_key(raw))
    session.keep_upload(upload.file_id, entry)
    return entry


# --- which model ------------------------------------------------------------------------------------------------
active = session.active_model()
source_column, detail_column = st.columns([1, 2])
source = source_column.radio("Model to evaluate", ["Active model", "Saved or trained", "Upload"],
                             key="evaluate.source", on_change=session.left_the_uploader)
entry: ModelEntry | None = None
with detail_column:
    if source == "Active model":
        entry = active
        if entry is None:
            st.error(layout.default_model_problem())
    elif source == "Saved or trained":
        choices = model_choices()
        if st.session_state.get("evaluate.choice") not in choices:
            gone = st.session_state.pop("evaluate.choice", None)
            if gone is not None:  # the picker moves on to another model: said below
                st.session_state[GONE_CHOICE_KEY] = gone
        label = st.selectbox("Run of this session or file in checkpoints/", list(choices), key="evaluate.choice",
                             on_change=lambda: st.session_state.pop(GONE_CHOICE_KEY, None))
        gone = st.session_state.get(GONE_CHOICE_KEY)
        if gone is not None:
            still_active = active is not None and active.source == gone
            st.info(layout.literal(f"{gone} is gone from disk (deleted or moved), so another model is picked here."
                                   + (" It is still the active model: it stays usable while this session keeps it in "
                                      "memory." if still_active else "")))
        if not choices:  # otherwise the page is an empty picker and nothing else
            st.info("Nothing to pick yet: this session has no runs and checkpoints/ holds no checkpoint. Train one on "
                    "the Train page, or upload a checkpoint with Upload.")
        elif label is not None:
            try:
                entry = choices[label]()
            except CheckpointError as error:
                st.error(layout.literal(layout.then(error, "The active model is unchanged.")))
    else:
        entry = uploaded_entry()
    if entry is not None:
        st.caption(f"**{entry.name}** from {layout.literal(entry.source)} · "
                   f"{count_parameters(entry.checkpoint.model):,} parameters")
        if active is None or resources.content_key(entry) != resources.content_key(active):
            if st.button("Make this the active model", key="evaluate-activate",
                         help="the Sketch page and the sidebar use the active model"):
                session.set_active(entry)
                st.rerun()
        elif entry.source != active.source:  # the active model's file uploaded again, or copied under another name
            st.caption(layout.literal(f"This is the active model: the same file as {active.source}."))
        else:
            st.caption("This is the active model.")
if entry is None:
    st.stop()

data = layout.require_dataset()
if data is None:
    st.stop()
report = resources.evaluation(entry.key, entry.checkpoint.model, data)
labels = data.test.labels
session.follow_model_with_cell(entry.key, explore.most_confused(report.confusion))

# --- headline numbers and the confusion matrix -------------------------------------------------------------------
errors = explore.off_diagonal_total(report.confusion)
layout.figures([("Test accuracy", f"{report.accuracy:.2f} %"), ("Test loss", f"{report.loss:.4f}"),
                ("Mistakes", f"{errors:,} of {len(labels):,}"),
                ("Parameters", f"{count_parameters(entry.checkpoint.model):,}")])


def select_clicked_cell(chart_key: str) -> None:
    """on_select of the heatmap: a clicked cell sets the true/predicted selectboxes, and the heatmap gets a new key.
    The browser sends a click only when it differs from the last one it sent for that very chart (key and figure):
    with a fixed key, a click on A, then cell B picked (by a click or in the selectboxes), then A clicked again
    would do nothing."""
    points = st.session_state[chart_key].selection.points
    if points and "customdata" in points[0]:
        st.session_state["evaluate.true"], st.session_state["evaluate.predicted"] = points[0]["customdata"][:2]
    st.session_state[MATRIX_GENERATION_KEY] = st.session_state.get(MATRIX_GENERATION_KEY, 0) + 1


st.subheader("Confusion matrix")
# The cell beside the matrix in a wide window, below it in a narrow one: st.columns in an 800-px window squeezes the
# matrix to a stamp and cuts the toggle's label to "…true d…".
matrix_panel, cell_panel = layout.wrapping_panels(("matrix-panel", MATRIX_PANEL_WIDTH),
                                                  ("cell-panel", CELL_PANEL_WIDTH), gap=MATRIX_CELL_GAP)
with matrix_panel:
    normalised = st.toggle("Row-normalised (share of each true digit)", key="evaluate.normalised", wrap=True)
    # the cells' shares have no % sign, to fit their cells: said here
    st.caption("Rows: true digit · columns: predicted" + (" · each cell: % of the true digit's images" if normalised
                                                          else "") + ". Click a cell to see its images.")
    cell = (st.session_state["evaluate.true"], st.session_state["evaluate.predicted"])
    values = explore.row_normalised(report.confusion) if normalised else report.confusion
    chart_key = f"confusion-matrix-{st.session_state.get(MATRIX_GENERATION_KEY, 0)}"
    with st.container(key="confusion-matrix"):
        st.plotly_chart(charts.confusion_heatmap(values, report.confusion, normalised, cell), key=chart_key,
                        on_select=lambda: select_clicked_cell(chart_key), selection_mode="points")
with cell_panel:
    true_column, predicted_column = st.columns(2)
    true_digit = true_column.selectbox("True digit", range(10), key="evaluate.true")
    predicted_digit = predicted_column.selectbox("Predicted digit", range(10), key="evaluate.predicted")
    indices = report.cell(labels, true_digit, predicted_digit, limit=CELL_IMAGES)
    count = report.confusion[true_digit][predicted_digit]
    article = "an" if true_digit == 8 else "a"
    if not count:  # one sentence, not "0 test images of a 0 read as 1" over "Nothing to show."
        st.markdown(f"No test image of {article} **{true_digit}** is read as **{predicted_digit}**.")
    else:
        st.markdown(f"**{count:,}** test image{'' if count == 1 else 's'} of {article} **{true_digit}** read as "
                    f"**{predicted_digit}**" + (f" (first {len(indices)})" if count > len(indices) else ""))
    with st.container(key="cell-images"):
        # "sure": the percentage is the model's confidence in the digit it predicted. In these 84-px-wide captions the
        # space before % is a no-break one, so "97 %" never wraps between the number and its sign.
        if count:
            layout.gallery(explore.pixels(data.test, indices),
                           [layout.two_line_caption(f"#{i}", f"{100 * float(report.confidences[i]):.0f}\u00a0% sure")
                            for i in indices], columns=4, width=84)

st.subheader("Per-class metrics")
st.dataframe(pd.DataFrame(report.per_class), hide_index=True, width="stretch", key="per-class",
             column_config={**{name: st.column_config.NumberColumn(format="%.4f") for name in ("precision", "recall")},
                            "f1": st.column_config.NumberColumn("F1", format="%.4f"),  # an initialism, not a word
                            "support": st.column_config.NumberColumn(format="%,d")})  # 1,135 as in the matrix

mistakes_tab, correct_tab = st.tabs(["Most confident mistakes", "Correct predictions"])
with mistakes_tab:
    mistakes = report.mistakes(labels, limit=GALLERY_SIZE)
    st.caption("Each image: true → predicted digit, the model's confidence, and the test image's index.")
    layout.gallery(explore.pixels(data.test, [m["index"] for m in mistakes]),
                   [layout.two_line_caption(f"{m['true']}→{m['predicted']} · {100 * m['confidence']:.0f}\u00a0%",
                                            f"#{m['index']}")
                    for m in mistakes], columns=8, width=84,
                   empty="No mistakes: the model reads every test image right.")
with correct_tab:
    correct = report.correct(labels, limit=GALLERY_SIZE)
    st.caption("Each image: the digit read, the model's confidence, and the test image's index.")
    layout.gallery(explore.pixels(data.test, [c["index"] for c in correct]),
                   [layout.two_line_caption(f"{c['predicted']} · {100 * c['confidence']:.0f}\u00a0%", f"#{c['index']}")
                    for c in correct], columns=8, width=84, empty="The model reads no test image right.")

# --- compare -------------------------------------------------------------------------------------------------------
st.subheader("Compare runs and checkpoints")
choices = comparable_models()
if not st.session_state.get(COMPARE_PICKED_KEY):
    # Until the user picks, the selection follows the models there are: opened while a run trains, it holds
    # default.pt alone, and takes the run in once it has finished.
    st.session_state[COMPARE_KEY] = first_that_load(choices, 2)
else:  # the user's own pick is kept, less a file deleted meanwhile (the multiselect refuses a stale value)
    gone = [label for label in st.session_state[COMPARE_KEY] if label not in choices]
    st.session_state[COMPARE_KEY] = [label for label in st.session_state[COMPARE_KEY] if label in choices]
    if gone:  # said, as the picker above says a file is gone
        st.caption(layout.literal(f"{', '.join(gone)} {'is' if len(gone) == 1 else 'are'} no longer there to compare "
                                  f"(a file deleted or moved, or an upload replaced by another), so "
                                  f"{'it is' if len(gone) == 1 else 'they are'} left out of the comparison."))
picked = st.multiselect("Pick two or more", list(choices), key=COMPARE_KEY,
                        on_change=lambda: st.session_state.update({COMPARE_PICKED_KEY: True}))
compared: dict[str, ModelEntry] = {}
for label in picked:
    try:
        compared[label] = choices[label]()
    except CheckpointError as error:  # its message names the file: one sentence, then what happens to it
        st.error(layout.literal(layout.then(error, "It is left out of the comparison.")))
if len(compared) < 2:
    # "Train a run…" only when there is nothing else to pick; otherwise the user just picked fewer than two.
    st.caption("Pick at least two models to compare them." if len(choices) >= 2 else
               "Train a run, or save or upload a checkpoint, to have something to compare with the default model.")
    st.stop()
rows = []
for label, candidate in compared.items():
    candidate_report = resources.evaluation(candidate.key, candidate.checkpoint.model, data)
    config = candidate.checkpoint.config
    # The figures first (at 800 px the rest scrolls sideways); training images, or a 5,000-image run reads as full.
    # The architecture (the widest text, with its knobs) last: before the parameters it hid them at 1400 px.
    rows.append({"model": label, "test accuracy %": candidate_report.accuracy, "test loss": candidate_report.loss,
                 "train seconds": candidate.checkpoint.metrics.get("train_seconds"),
                 **tables.run_length_cells(candidate.checkpoint.metrics, config), **tables.training_images_cell(config),
                 "parameters": count_parameters(candidate.checkpoint.model),
                 **tables.architecture_cell(candidate.name, candidate.checkpoint.model_kwargs)})
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="compare-table", placeholder=tables.MISSING,
             column_config={**tables.RUN_LENGTH_COLUMNS,
                            # at its default width, files whose names differ only at the end read alike
                            "model": st.column_config.TextColumn(width="medium"),
                            "parameters": st.column_config.NumberColumn(format="%,d"),  # 122,538 as elsewhere
                            "test accuracy %": st.column_config.NumberColumn(format="%.2f"),
                            "test loss": st.column_config.NumberColumn(format="%.4f"),
                            "train seconds": st.column_config.NumberColumn(format="%.1f"),
                            **tables.TRAINING_IMAGES_COLUMNS})
histories = {label: candidate.checkpoint.history for label, candidate in compared.items()
             if candidate.checkpoint.history}
if histories:
    st.plotly_chart(charts.epoch_curves(histories, compared=True), key="compare-curves")
# A model with no per-epoch history has no curves in the chart (and with none, there is no chart): say why.
without_history = [label for label in compared if label not in histories]
if without_history:
    st.caption(layout.literal(f"No curves for {', '.join(without_history)}: "
                              f"{'it holds' if len(without_history) == 1 else 'they hold'} no per-epoch history."))
