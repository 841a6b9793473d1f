"""What every page does first (`page_setup`) and the pieces several pages draw: the sidebar, image galleries,
picture previews, error boxes."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import streamlit as st
from PIL import Image
from streamlit.delta_generator import DeltaGenerator
from streamlit.errors import StreamlitPageNotFoundError

from mnist_core.data import DatasetStatus, Mnist, raw_folder
from mnist_core.device import describe_device, pick_device
from mnist_core.errors import CheckpointError, DataError
from mnist_core.explore import sized_for_display
from mnist_core.runner import RUNNING
from mnist_core.sketch import plain_image
from studio_ui import resources, session



@dataclass(frozen=True)
class PageLink:
    path: str  # relative to app.py
    title: str
    icon: str
    blurb: str


# Streamlit's own page list would call the landing page "app" (its file name), so the sidebar draws this one instead
# (.streamlit/config.toml hides the built-in list).
PAGES = [
    PageLink("app.py", "Home", ":material/home:", "Device, dataset and active model at a glance."),
    PageLink("pages/1_Dataset_Explorer.py", "Dataset explorer", ":material/grid_view:",
             "Samples by digit, class balance, mean images, pixel intensities, a preview of the training "
             "augmentation and any image looked up by its index."),
    PageLink("pages/2_Train.py", "Train", ":material/model_training:",
             "Pick a model and a recipe, press Start, watch the curves live, Stop at any time; save or download the "
             "result."),
    PageLink("pages/3_Evaluate.py", "Evaluate", ":material/analytics:",
             "Accuracy, confusion matrix, per-class metrics, the most confident mistakes, and runs compared side by "
             "side."),
    PageLink("pages/4_Sketch.py", "Sketch", ":material/draw:",
             "Draw a digit (or upload a picture) and see what the model reads."),
]
GALLERY_GAP_PX = 8  # Streamlit's "xsmall" gap between a gallery's images
DIGIT_FORMAT = "PNG"  # for digit images: Streamlit sends arrays as JPEG, whose ringing blurs their sharp pixels
STATE_ICONS = {"found": ":material/check_circle:", "will download": ":material/download:",
               "problem": ":material/error:"}
# Where the whole message on a data problem is, after the sidebar's few words on it: the whole message in the sidebar
# (seven lines and more at 1400 × 900) would push its "Active model" out of view.
ELSEWHERE_SAYS_THE_DATA_PROBLEM = "the Home page says why and what to do"
HOME_SAYS_THE_DATA_PROBLEM = "the Dataset panel on this page says why and what to do"
PAGE_SAYS_THE_DATA_PROBLEM = "this page says why and what to do"


def page_setup(title: str, icon: str) -> None:
    """Page config, take a reloaded tab's state back, keep settings across pages, keep a run that finished
    meanwhile, draw the sidebar."""
    st.set_page_config(page_title=f"{title} · MNIST Studio", page_icon=icon, layout="wide")
    session.resume_or_register()  # a reloaded tab gets its runs, model, settings and running job back
    if (lost := session.lost_session_note()) is not None:
        st.warning(lost, icon=":material/history:")
        # (a reconnected tab keeps its scroll position, which can leave the note above out of view)
        st.toast("This tab is a new session: its earlier one is no longer on the server (see the note at the top).",
                 icon=":material/history:")
    session.keep_widget_state()
    session.collect_finished_job()
    # The Train page shows the progress itself; Home shows the data's whole message in its Dataset panel.
    sidebar(live_training_note=title != "Train",
            data_problem_said=HOME_SAYS_THE_DATA_PROBLEM if title == "Home" else ELSEWHERE_SAYS_THE_DATA_PROBLEM)


def page_link(page: PageLink) -> None:
    """A link to one of the app's pages that keeps this session's token in the URL (`session.link_query_params`)."""
    st.page_link(page.path, label=page.title, icon=page.icon, query_params=session.link_query_params())


def navigation() -> None:
    """The sidebar's links to every page (none when a page runs on its own, as in AppTest)."""
    try:
        for page in PAGES:
            page_link(page)
    except StreamlitPageNotFoundError:  # a page run on its own (AppTest.from_file on one page): no app to link to
        return
    st.divider()


# How often the sidebar's training note refreshes on the pages other than Train (each refresh is a small script run
# in the server and a redraw in the browser, both taken from the training on a small machine).
SIDEBAR_POLL_SECONDS = 5.0


def _training_note() -> None:
    """The running job's progress, refreshed on its own; a full rerun when it ends, so its model shows up here."""
    job = session.current_job()
    if job is None:
        return
    snapshot = job.snapshot()
    if snapshot.finished:
        if not session.is_collected(job):
            st.rerun()
    elif snapshot.status == RUNNING:
        st.caption(f":material/hourglass_top: training {job.config.model}: {100 * snapshot.fraction:.0f} %")


def sidebar(live_training_note: bool = True, data_problem_said: str = ELSEWHERE_SAYS_THE_DATA_PROBLEM) -> None:
    """Links, device, dataset status, active model and a running job's note. `live_training_note`: that note
    refreshes itself (off on Train, which shows the progress); `data_problem_said`: where a data problem is told in
    full (the sidebar gives it a few words)."""
    with st.sidebar:
        navigation()
        st.markdown("### Device")
        st.caption(describe_device(pick_device("auto")))

        st.markdown("### Dataset")
        st.session_state[DATA_STATUS_SLOT_KEY] = st.empty()
        show_data_status(data_problem_said)

        st.markdown("### Active model")
        entry = session.active_model()
        if entry is None:
            st.error("No usable model: checkpoints/default.pt cannot be loaded (the Home page says why). Train one "
                     "on the Train page.")
        else:
            # literal: a name is the user's text; `**x**.pt` would show in bold, `[a](b).pt` as a link
            st.markdown(f"**{entry.name}** — {literal(entry.source)}")
            if entry.test_accuracy is not None:
                st.caption(f"test accuracy {entry.test_accuracy:.2f} %")
            if entry.file_is_gone:
                st.caption(":material/warning: its file is gone from disk (deleted or moved); the model stays usable "
                           "while this session keeps it in memory")
        job = session.current_job()
        if job is not None and not job.snapshot().finished:
            if live_training_note:
                st.fragment(_training_note, run_every=SIDEBAR_POLL_SECONDS)()
            else:
                st.caption(f":material/hourglass_top: training {job.config.model} (progress on this page)")


DATA_STATUS_SLOT_KEY = "studio.data_status_slot"  # the sidebar's place for the data status, this run's


def show_data_status(problem_said: str = ELSEWHERE_SAYS_THE_DATA_PROBLEM) -> None:
    """The data status in the sidebar's place for it; again after a page's attempt to load the data failed, so the
    sidebar does not say "it downloads on first use" beside the page's "downloading it failed". A problem gets its
    few words and `problem_said`, where its whole message is."""
    slot = st.session_state.get(DATA_STATUS_SLOT_KEY)
    if slot is None:
        return
    status = resources.data_status()
    message, full_message = dataset_message(status)
    if status.state == "problem":
        slot.error(f"{STATE_ICONS[status.state]} {status.summary}: {problem_said}.")
    else:
        slot.caption(f"{STATE_ICONS[status.state]} {message}", help=full_message)


def short_path(path: str | os.PathLike) -> str:
    """A path as people read it: relative to the working directory when that is shorter and stays near it
    (`../shared/mnist/MNIST/raw`), absolute otherwise."""
    absolute = os.path.abspath(path)
    try:
        relative = os.path.relpath(absolute)
    except ValueError:  # another drive on Windows
        return absolute
    near = relative.split(os.sep).count(os.pardir) <= 2
    return relative if near and len(relative) < len(absolute) else absolute


def dataset_message(status: DatasetStatus) -> tuple[str, str | None]:
    """(the status message with its data folder shortened, a tooltip with that folder's full path, or None
    when the message names no folder)."""
    message = status.message
    if str(status.root) not in message:
        return message, None
    for path in (raw_folder(status.root), status.root):  # the longer first: it contains the other
        if path.is_absolute() and str(path) in message:
            message = message.replace(str(path), short_path(path))
    return message, f"Data folder: {os.path.abspath(raw_folder(status.root))}"


def default_model_problem() -> str:
    """Why no model is active: the default checkpoint missing or broken (with the fix), else a plain line."""
    if not os.path.lexists(resources.DEFAULT_CHECKPOINT):
        # not "does not exist: check the path": nobody typed that path, so there is no typo to look for
        return ("No model: checkpoints/default.pt, the model that comes with MNIST Studio, is missing. Train one on "
                "the Train page, or restore it from the repository (git checkout -- checkpoints/default.pt).")
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
        show_data_status(PAGE_SAYS_THE_DATA_PROBLEM)
        st.error(f"This page needs the MNIST dataset. {error}")
        return None


def sentence(message: str | Exception) -> str:
    """A library message as a sentence on the page: the library's messages start in lower case, as the CLI's
    "error: …" lines want, and read "training diverged at …" or "the file name is empty: …" in a page's box."""
    text = str(message)
    return text[:1].upper() + text[1:]


def then(message: str | Exception, follow_up: str) -> str:
    """An error's message, then what it means here, as two sentences (not "…a checkpoint?. The active model…")."""
    text = str(message)
    return f"{text}{'' if text.endswith(('.', '?', '!')) else '.'} {follow_up}"


# Markdown's punctuation that st.error / st.caption would read as formatting (CommonMark lets any ASCII punctuation be
# backslash-escaped; Streamlit adds :directives[…] and $math$).
_MARKDOWN_SYNTAX = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$:&])")


def literal(text: str) -> str:
    """`text` as typed, for a Markdown element: a name typed as *x* or $y$ shows as such, not in italics or math."""
    return _MARKDOWN_SYNTAX.sub(r"\\\1", text)


def whole_number_box(where: DeltaGenerator, label: str, key: str) -> float | None:
    """A number box for a whole number (a page, an index), to be checked by `whole_number_in`; its first number comes
    from session state. A box of whole numbers reads what is typed with the browser's parseInt, which stops at the
    first character that is not a digit, so "1e3" would show image #1 and "2.7" page 2; a box of any number reads them
    as 1000 and 2.7. Without a default, an emptied box is None, not 0: it is said to be empty, not "Page 0 is
    outside…"."""
    return where.number_input(label, value=None, step=1.0, format="%g", key=key)


def whole_number_in(value: float | None, low: int, high: int, what: str) -> int | None:
    """`value` as an int when it is a whole number from `low` to `high`; else None after a warning that says what is
    wrong and names the range. Number boxes leave their range to this: with min/max, Streamlit only turns the box red
    and goes on with its last valid value, so the page would show another image than the number in the box."""
    if value is None:
        st.warning(f"The {what.lower()} box is empty: type a number from {low:,} to {high:,}.")
        return None
    if not float(value).is_integer():  # (never infinite: Streamlit reads an infinite number as the default, None)
        # the number as the box shows it: {value:g} would write 1234567.5 as 1.23457e+06
        st.warning(f"{what} {value} is not a whole number: type one from {low:,} to {high:,}.")
        return None
    number = int(value)
    if low <= number <= high:
        return number
    if low == high:  # a range of one: "outside 1–1: type a number in that range" would read oddly
        st.warning(f"{what} {number:,} does not exist: the only one is {low:,}.")
    else:
        st.warning(f"{what} {number:,} is outside {low:,}–{high:,}: type a number in that range.")
    return None


def two_line_caption(first: str, second: str) -> str:
    """An image caption on two deliberate lines (Markdown hard break), so narrow gallery images never wrap it
    at a random word."""
    return f"{first}  \n{second}"


def figures(values: Sequence[tuple[str, str]], helps: dict[str, str] | None = None) -> None:
    """A row of headline numbers (label, value) that wraps in a narrow window: st.columns gives each number a
    quarter of what is left beside the sidebar, which cuts "99.48 %" to "99.4…"."""
    with st.container(horizontal=True, gap="large"):
        for label, value in values:
            st.metric(label, value, help=(helps or {}).get(label), width="content")


def wrapping_panels(*panels: tuple[str, int], gap: int = 24) -> list[DeltaGenerator]:
    """Fixed-width panels (key, px) in a row that wraps: side by side in a wide window, one under the other in a
    narrow one. st.columns squeezes its contents instead (a 280-px canvas in a 200-px column, labels cut to "…")."""
    with st.container(horizontal=True, gap=gap):
        return [st.container(width=width, key=key) for key, width in panels]


def gallery(images: np.ndarray | Sequence[np.ndarray], captions: Sequence[str], columns: int = 8,
            width: int = 84, empty: str = "Nothing to show.") -> None:
    """A grid of small digit images (uint8 0–255 or float 0–1) with captions, each sent at the `width` it is shown
    at, so its pixels stay sharp; `empty` says why there are none."""
    if not len(captions):
        st.caption(empty)
        return
    # One wrapping row as wide as `columns` images (narrower in a narrow window), not st.columns: in a narrow window a
    # column gets narrower than its fixed-width image, and the images overlap each other and run off the page.
    # Nor a wrapping row per `columns` images: each would wrap on its own, 8 images as 5 + 3, leaving holes in the grid.
    with st.container(horizontal=True, gap="xsmall", width=columns * (width + GALLERY_GAP_PX)):
        for image, caption in zip(images, captions):
            st.image(sized_for_display(image, width), caption=caption, width=width, output_format=DIGIT_FORMAT)


def picture_preview(picture: Image.Image, side: int) -> Image.Image:
    """`picture` made displayable and scaled so its longer side is `side` px. Streamlit would scale by the width only:
    a 6000×10 strip would round to 0 px high (an error) and a 10×6000 one would be 168,000 px tall."""
    picture = plain_image(picture)  # L, LA, RGB or RGBA, which a browser shows, or numbers stretched to 0…1
    if picture.mode == "F":  # 8-bit gray, as the model reads it (convert truncates: + 0.5 rounds)
        picture = picture.point(lambda level: level * 255 + 0.5).convert("L")
    scale = side / max(picture.size)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    # Enlarged small pictures keep sharp pixels; shrunk large ones are smoothed (reducing_gap: fast for huge ones).
    if scale > 1:
        return picture.resize(size, Image.Resampling.NEAREST)
    return picture.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
