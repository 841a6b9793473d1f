"""Per-session state: the active model, the run history and the training job of *this* browser session.

Everything lives in `st.session_state`, so two tabs (two sessions) never share a job, a Stop or an active model.
A reload, though, starts a new Streamlit session: so the state is also parked on the server under a token in the
page's URL (`?session=…`), and a new session that arrives with the token of a tab that is gone takes it over —
runs, active model, settings, the Sketch page's drawing or picture and a training job still running (see
`resume_or_register`).
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import streamlit as st
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from mnist_core.checkpoints import DEFAULT_CHECKPOINT, LoadedCheckpoint, checkpoint_payload
from mnist_core.errors import CheckpointError
from mnist_core.runner import DIVERGED, NOT_LEARNED, STOPPED, TrainingJob, has_usable_weights, result_checkpoint
from studio_ui import resources

ACTIVE_KEY = "studio.active"
RUNS_KEY = "studio.runs"
JOB_KEY = "studio.job"
COLLECTED_JOB_KEY = "studio.collected_job"
COLLECTED_RUN_KEY = "studio.collected_run"  # the run-history entry made of that job (none when it had no model)
REPLACED_KEY = "studio.replaced_active"  # the active model that run replaced, for the way back
RESUME_KEY = "studio.resume_token"
RESUME_PARAM = "session"  # the URL's query parameter that carries the token
PAGE_KEY = "studio.page"  # the page of this session's last script run
LOST_KEY = "studio.lost_session"  # this new session's URL named a token the server no longer keeps: say so once
RESUME_KEEP_S = 3600.0  # a closed tab's state waits this long for a reload to take it over (a running job: longer)
# Settings widgets are keyed "<page>.<name>" and survive page changes; buttons, uploads and canvases use other keys
# (Streamlit refuses to set those through session state).
KEPT_WIDGET_PREFIXES = ("train.", "explore.", "sketch.", "evaluate.")


@dataclass
class ModelEntry:
    """A model this session can use, with where it came from (a file, an upload, or one of its runs)."""

    checkpoint: LoadedCheckpoint
    kind: str  # "file" | "upload" | "run"
    key: str = field(default_factory=lambda: f"run:{uuid.uuid4().hex}")  # names it in caches
    path: Path | None = None  # a file's, on disk

    @property
    def file_is_gone(self) -> bool:
        """Loaded from a file that is no longer there (deleted or moved): the model in memory still works."""
        return self.path is not None and not self.path.is_file()

    @property
    def name(self) -> str:
        return self.checkpoint.model_name

    @property
    def source(self) -> str:
        return self.checkpoint.source

    @property
    def test_accuracy(self) -> float | None:
        value = self.checkpoint.metrics.get("test_accuracy")
        return float(value) if isinstance(value, (int, float)) else None

    def payload(self) -> dict[str, Any]:
        """The checkpoint file's contents (`checkpoints.checkpoint_payload`), for saving and downloading."""
        loaded = self.checkpoint
        return checkpoint_payload(loaded.model_name, loaded.model_kwargs, loaded.model, loaded.config, loaded.history,
                                  loaded.metrics)

    @property
    def label(self) -> str:
        accuracy = f" · {self.test_accuracy:.2f} %" if self.test_accuracy is not None else ""
        return f"{self.source} · {self.name}{accuracy}"


@dataclass
class _Parked:
    values: dict[str, Any]  # the session's kept state: ACTIVE_KEY, RUNS_KEY, JOB_KEY, … and its settings
    owner: str  # the Streamlit session (tab) that holds it now
    seen: float  # time.monotonic() of its last script run


class _ParkedSessions:
    """Every session's kept state, by token; shared by all sessions of this server process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_token: dict[str, _Parked] = {}


@st.cache_resource
def _parked_sessions() -> _ParkedSessions:
    return _ParkedSessions()


def _session_id() -> str:
    context = get_script_run_ctx()
    return context.session_id if context is not None else "no-session"


def _is_open(session_id: str) -> bool:
    """Is this Streamlit session (a tab) still connected? False without a real server: AppTest's stand-in runtime
    answers with mocks, not booleans."""
    return Runtime.exists() and Runtime.instance().is_active_session(session_id) is True


def _kept_values() -> dict[str, Any]:
    state = st.session_state
    return {key: state[key] for key in list(state.keys()) if isinstance(key, str)
            and (key in (ACTIVE_KEY, RUNS_KEY, JOB_KEY, COLLECTED_JOB_KEY, COLLECTED_RUN_KEY, REPLACED_KEY)
                 or key.startswith(KEPT_WIDGET_PREFIXES))}


def resume_or_register() -> None:
    """First thing on every page run: park this session's state under its token, or take over a parked one.

    A new session (a reload, a bookmark, a link) whose URL names a token whose tab is gone takes over that state; a
    token whose tab is still open (a duplicated tab) is not taken: the new tab starts afresh with its own token.
    """
    parked = _parked_sessions()
    me, now = _session_id(), time.monotonic()
    with parked.lock:
        for token, entry in list(parked.by_token.items()):  # forget closed tabs after a while (not a running job)
            job = entry.values.get(JOB_KEY)
            running = isinstance(job, TrainingJob) and not job.snapshot().finished
            if now - entry.seen > RESUME_KEEP_S and not running and not _is_open(entry.owner):
                del parked.by_token[token]
        token = st.session_state.get(RESUME_KEY)
        if token is not None and token in parked.by_token:
            _restore_dropped_on_page_change(parked.by_token[token].values)
        if token is None:
            wanted = st.query_params.get(RESUME_PARAM)
            left = parked.by_token.get(wanted) if wanted else None
            if left is not None and not _is_open(left.owner):
                token = wanted
                for key, value in left.values.items():
                    st.session_state[key] = value
            else:
                token = uuid.uuid4().hex
                # The server restarted (or the tab stayed closed past RESUME_KEEP_S): the page came back with the
                # default settings and no runs, and nothing said why
                st.session_state[LOST_KEY] = bool(wanted) and left is None
            st.session_state[RESUME_KEY] = token
        parked.by_token[token] = _Parked(_kept_values(), me, now)
    if st.query_params.get(RESUME_PARAM) != token:
        st.query_params[RESUME_PARAM] = token  # also after a page change, which clears the URL's parameters


LOST_SESSION_NOTE = ("This tab's earlier session is no longer on the server (the app was restarted, or the tab "
                     "stayed closed for over an hour), so this is a new session: its run history, any run that was "
                     "training and its settings were not kept. Runs saved with Save are in checkpoints/; the Evaluate "
                     "page lists them.")


def lost_session_note() -> str | None:
    """The note for a tab whose session was lost (`LOST_KEY`), on its first script run only."""
    return LOST_SESSION_NOTE if st.session_state.pop(LOST_KEY, False) else None


def link_query_params() -> dict[str, str]:
    """The query parameters a link to another page of the app carries: this session's token. A plain link cleared the
    URL's parameters, so the page set the token again, and Streamlit pushed that as a second history entry: every page
    visited took two presses of the browser's Back, the first of which changed nothing on the screen."""
    token = st.session_state.get(RESUME_KEY)
    return {RESUME_PARAM: token} if token else {}


def _restore_dropped_on_page_change(kept: dict[str, Any]) -> None:
    """Put back the kept settings that Streamlit dropped on the way to this page. While a fragment polls (a run
    training), Streamlit dropped every widget value of the page left before `keep_widget_state` could keep it: back on
    Train its settings read the default preset, and Evaluate's cell picker was gone (a KeyError traceback). `kept` is
    this session's parked state, which is current as of its last script run and its own changes."""
    context = get_script_run_ctx()
    page = context.page_script_hash if context is not None else None
    if st.session_state.get(PAGE_KEY) == page:
        return  # the same page: whatever is missing was taken away by the page itself
    st.session_state[PAGE_KEY] = page
    for key, value in kept.items():
        if key.startswith(KEPT_WIDGET_PREFIXES) and key not in st.session_state:
            st.session_state[key] = value


def remember() -> None:
    """Park this session's state now, after a change made outside a page's first lines (a Start click, a finished
    run). `page_setup` parks it on every full run of a page, but a click in a fragment (a section of a page that
    reruns on its own) runs no `page_setup`: a reload right after it would take the state back from before the click."""
    token = st.session_state.get(RESUME_KEY)
    parked = _parked_sessions()
    with parked.lock:
        if token in parked.by_token:
            parked.by_token[token].values = _kept_values()


def keep_widget_state() -> None:
    """Streamlit forgets a widget's value when a page without it runs; re-assigning keeps the user's settings
    while they visit other pages (Streamlit's documented multipage workaround)."""
    for key in list(st.session_state.keys()):
        if isinstance(key, str) and key.startswith(KEPT_WIDGET_PREFIXES):
            st.session_state[key] = st.session_state[key]


def ensure_defaults(defaults: dict[str, object]) -> None:
    """Give settings widgets their first value through session state (so presets can change them later)."""
    for key, value in defaults.items():
        st.session_state.setdefault(key, value)


# The Sketch page's input, kept while the user visits other pages or the other input mode (Streamlit drops a widget's
# value, the canvas's strokes and the uploader's file included, as soon as a run does not draw that widget).
DRAWING_KEY = "sketch.drawing"  # KeptDrawing: what the canvas last sent
CANVAS_OPENING_KEY = "sketch.canvas_opening"  # the strokes the canvas now on the page was mounted with
CANVAS_GENERATION_KEY = "sketch.canvas_generation"  # part of the canvas's key: a new one is an empty canvas (Clear)
PICTURE_KEY = "sketch.picture"  # KeptPicture: the last upload that could be read


@dataclass(frozen=True, eq=False)  # (== on its arrays would be ambiguous)
class KeptDrawing:
    """The canvas's drawing as it last sent it: its strokes, to draw them again, and its pixels, to read them again
    (a canvas mounted with strokes sends nothing until they change)."""

    strokes: dict[str, Any]  # fabric.js JSON: the canvas's `json_data`, its `initial_drawing` when mounted again
    pixels: np.ndarray  # the canvas's RGBA image of those strokes


@dataclass(frozen=True)
class KeptPicture:
    name: str
    data: bytes  # the file as uploaded (it was accepted: within MAX_FILE_BYTES and readable)


def canvas_key() -> str:
    return f"sketch-canvas-{st.session_state.get(CANVAS_GENERATION_KEY, 0)}"


def kept_drawing() -> KeptDrawing | None:
    drawing = st.session_state.get(DRAWING_KEY)
    return drawing if isinstance(drawing, KeptDrawing) else None


def canvas_opening() -> dict[str, Any] | None:
    """The strokes to mount the Sketch canvas with (its `initial_drawing`): the kept drawing when the canvas comes
    back on the page, then the same strokes for as long as it stays there — a changed `initial_drawing` makes the
    canvas reload itself, repaint, lose its undo history and send a drawing again."""
    if canvas_key() not in st.session_state:  # Streamlit forgot the canvas: the last run did not draw it
        kept = kept_drawing()
        st.session_state[CANVAS_OPENING_KEY] = kept.strokes if kept is not None else None
    return st.session_state.get(CANVAS_OPENING_KEY)


def canvas_pixels(strokes: dict[str, Any] | None, pixels: np.ndarray | None) -> np.ndarray | None:
    """What the canvas shows, to read: the pixels it sent (kept with their strokes), else — it has sent nothing since
    it was mounted with the kept strokes — the kept pixels."""
    kept = kept_drawing()
    if pixels is None:
        return kept.pixels if kept is not None else None
    if strokes is not None and (kept is None or kept.strokes != strokes):
        st.session_state[DRAWING_KEY] = KeptDrawing(strokes, pixels)
        remember()  # a reload right after this stroke finds it too
    return pixels


def clear_canvas() -> None:
    """An empty canvas, and no drawing kept to bring back."""
    st.session_state[CANVAS_GENERATION_KEY] = st.session_state.get(CANVAS_GENERATION_KEY, 0) + 1
    st.session_state.pop(DRAWING_KEY, None)
    remember()


def kept_picture() -> KeptPicture | None:
    picture = st.session_state.get(PICTURE_KEY)
    return picture if isinstance(picture, KeptPicture) else None


def keep_picture(name: str, data: bytes) -> None:
    """Keep an upload that was read (never a refused one) for when the user comes back to it."""
    kept = kept_picture()
    if kept is None or kept.name != name or kept.data != data:
        st.session_state[PICTURE_KEY] = KeptPicture(name, data)
        remember()


def forget_picture() -> None:
    st.session_state.pop(PICTURE_KEY, None)
    remember()


# The Evaluate page's last good upload, kept like the Sketch page's picture: while the user visits other pages (the
# uploader comes back empty) and across a reload ("evaluate." keys are parked with the settings).
UPLOAD_KEY = "evaluate.upload"


def kept_upload() -> tuple[str, ModelEntry] | None:
    """(the uploader's file id, the checkpoint read from that file)."""
    kept = st.session_state.get(UPLOAD_KEY)
    return kept if isinstance(kept, tuple) else None


def keep_upload(file_id: str, entry: ModelEntry) -> None:
    st.session_state[UPLOAD_KEY] = (file_id, entry)
    remember()  # a reload right after the upload finds it too


def forget_upload() -> None:
    st.session_state.pop(UPLOAD_KEY, None)
    remember()


UPLOADER_GENERATION_KEY = "evaluate.uploader_generation"


def uploader_key() -> str:
    """The Evaluate uploader's key: a new one each time the user comes back to "Upload" from another choice. Shown
    again under its old key, the uploader looked empty but the browser still sent its last file, so a bad file's
    error came back under an empty box (the last good upload is kept apart, see `kept_upload`)."""
    generation = st.session_state.get(UPLOADER_GENERATION_KEY, 0)
    return "evaluate-upload" if generation == 0 else f"evaluate-upload-{generation}"


def left_the_uploader() -> None:
    """The Evaluate page's source radio's on_change."""
    if st.session_state.get("evaluate.source") != "Upload":
        st.session_state[UPLOADER_GENERATION_KEY] = st.session_state.get(UPLOADER_GENERATION_KEY, 0) + 1


CELL_MODEL_KEY = "evaluate.cell_model"  # the model whose confusion-matrix cell the Evaluate page's picker shows
CELL_KEYS = ("evaluate.true", "evaluate.predicted")  # the picker's two selectboxes


def follow_model_with_cell(model_key: str, commonest_mistake: tuple[int, int]) -> None:
    """Point the cell picker at a model's commonest mistake when that model is new to it (another choice, an
    upload, a finished run); a rerun with the same model keeps the user's pick. A cell kept from the previous model
    would show that model's mistake as if it were this one's."""
    if st.session_state.get(CELL_MODEL_KEY) != model_key or not all(key in st.session_state for key in CELL_KEYS):
        st.session_state[CELL_MODEL_KEY] = model_key
        st.session_state.update(zip(CELL_KEYS, commonest_mistake))
        remember()  # parked now, not at the next run: a page change can then bring a dropped pick back


def default_entry() -> ModelEntry:
    """`checkpoints/default.pt` as an entry; raises `CheckpointError` when it is missing or broken."""
    key, loaded = resources.default_checkpoint()
    return ModelEntry(loaded, "file", key, DEFAULT_CHECKPOINT)


def active_model() -> ModelEntry | None:
    """The session's active model: its choice, else the shipped default; None (with a sidebar error) if neither."""
    entry = st.session_state.get(ACTIVE_KEY)
    if isinstance(entry, ModelEntry):
        return entry
    try:
        return default_entry()
    except CheckpointError:
        return None


def set_active(entry: ModelEntry) -> None:
    """Make `entry` the model the Sketch and Evaluate pages use (kept across a reload)."""
    st.session_state[ACTIVE_KEY] = entry
    remember()


def runs() -> list[ModelEntry]:
    """This session's trained models, oldest first (the list itself: `collect_finished_job` appends to it)."""
    return st.session_state.setdefault(RUNS_KEY, [])


def current_job() -> TrainingJob | None:
    job = st.session_state.get(JOB_KEY)
    return job if isinstance(job, TrainingJob) else None


def start_job(job: TrainingJob) -> None:
    """Start `job` in the background and make it this session's current job."""
    st.session_state[JOB_KEY] = job.start()
    remember()


def this_tab_is_open() -> Callable[[], bool] | None:
    """A check a training job can call from its own thread: is a tab still showing this session? (Streamlit has no
    "tab closed" event; a closed or refreshed tab leaves its session inactive.) After a reload the new tab holds the
    token, so the job goes on. None where the app runs without a server (AppTest)."""
    if get_script_run_ctx() is None or not _is_open(_session_id()):
        return None  # no real server to ask (AppTest)
    parked, token = _parked_sessions(), st.session_state.get(RESUME_KEY)

    def is_open() -> bool:
        with parked.lock:
            entry = parked.by_token.get(token)
            return entry is not None and _is_open(entry.owner)

    return is_open


def is_collected(job: TrainingJob) -> bool:
    """`collect_finished_job` has already taken this job's model (it does so once per job)."""
    return st.session_state.get(COLLECTED_JOB_KEY) == job.id


def collect_finished_job() -> ModelEntry | None:
    """Once per finished job: keep its model in the run history and make it the active model — unless it did not
    learn (`did_learn`: a chance-level model would silently replace a working one; Evaluate can still make it active).
    Returns the new entry, if any.

    Called by every page, so a run that ends while the user looks at another page is still kept.
    """
    job = current_job()
    if job is None or is_collected(job) or not job.snapshot().finished:
        return None
    st.session_state[COLLECTED_JOB_KEY] = job.id
    st.session_state.pop(COLLECTED_RUN_KEY, None)
    snapshot = job.snapshot()
    if not has_usable_weights(job.result):
        remember()
        return None
    number = len(runs()) + 1
    learned = did_learn(job)
    note = {STOPPED: " (stopped early)", NOT_LEARNED: " (did not learn)",
            DIVERGED: " (diverged: last good weights)" if learned else " (diverged, did not learn)"
            }.get(snapshot.status, "")
    entry = ModelEntry(result_checkpoint(job.result, f"run {number}{note}"), "run")
    runs().append(entry)
    st.session_state[COLLECTED_RUN_KEY] = entry
    if not learned:
        remember()
    else:
        st.session_state[REPLACED_KEY] = active_model()
        set_active(entry)  # (parks the new state too)
    return entry


def did_learn(job: TrainingJob) -> bool:
    """Whether a finished run's model learned anything: not one at chance level, whether it ran to its end (NOT_LEARNED)
    or diverged after its first test pass had found it there (its last good weights read 9.8 % and were made the
    active model, where a run that ended at chance is not). Stopped runs are the user's choice and always count."""
    return job.snapshot().status != NOT_LEARNED and (job.result is None or job.result.warning is None)


def collected_run(job: TrainingJob) -> ModelEntry | None:
    """The run-history entry made of `job` once it ended; None before, or when it left no model."""
    entry = st.session_state.get(COLLECTED_RUN_KEY)
    return entry if is_collected(job) and isinstance(entry, ModelEntry) else None


def replaced_model() -> ModelEntry | None:
    """The model that was active before the last collected run became the active one (the way back to it)."""
    entry = st.session_state.get(REPLACED_KEY)
    return entry if isinstance(entry, ModelEntry) else None
