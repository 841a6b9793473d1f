"""Per-session state: the active model, the run history and the training job of *this* browser session.

Everything lives in `st.session_state`, so two tabs (two sessions) never share a job, a Stop or an active model.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import streamlit as st
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from mnist_core.checkpoints import LoadedCheckpoint, checkpoint_payload
from mnist_core.errors import CheckpointError
from mnist_core.runner import DIVERGED, STOPPED, TrainingJob, has_usable_weights, result_checkpoint
from studio_ui import resources

ACTIVE_KEY = "studio.active"
RUNS_KEY = "studio.runs"
JOB_KEY = "studio.job"
COLLECTED_JOB_KEY = "studio.collected_job"
# Settings widgets are keyed "<page>.<name>" and survive page changes; buttons, uploads and canvases use other keys
# (Streamlit refuses to set those through session state).
KEPT_WIDGET_PREFIXES = ("train.", "explore.", "sketch.", "evaluate.")


@dataclass
class ModelEntry:
    """A model this session can use, with where it came from (a file, an upload, or one of its runs)."""

    checkpoint: LoadedCheckpoint
    kind: str  # "file" | "upload" | "run"
    key: str = field(default_factory=lambda: f"run:{uuid.uuid4().hex}")  # names it in caches

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
        """The checkpoint file's contents (the ★ format), for saving and downloading."""
        loaded = self.checkpoint
        return checkpoint_payload(loaded.model_name, loaded.model_kwargs, loaded.model, loaded.config, loaded.history,
                                  loaded.metrics)

    @property
    def label(self) -> str:
        accuracy = f" · {self.test_accuracy:.2f} %" if self.test_accuracy is not None else ""
        return f"{self.source} · {self.name}{accuracy}"


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


def default_entry() -> ModelEntry:
    """`checkpoints/default.pt` as an entry; raises `CheckpointError` when it is missing or broken."""
    key, loaded = resources.default_checkpoint()
    return ModelEntry(loaded, "file", key)


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
    st.session_state[ACTIVE_KEY] = entry


def runs() -> list[ModelEntry]:
    return st.session_state.setdefault(RUNS_KEY, [])


def current_job() -> TrainingJob | None:
    job = st.session_state.get(JOB_KEY)
    return job if isinstance(job, TrainingJob) else None


def start_job(job: TrainingJob) -> None:
    st.session_state[JOB_KEY] = job.start()


def this_tab_is_open() -> Callable[[], bool] | None:
    """A check a training job can call from its own thread: is this browser session still connected?
    (Streamlit has no "tab closed" event; a closed or refreshed tab leaves its session inactive.) None where the
    app runs without a server (AppTest)."""
    context = get_script_run_ctx()
    if context is None or not Runtime.exists():
        return None
    runtime, session_id = Runtime.instance(), context.session_id
    return lambda: runtime.is_active_session(session_id)


def is_collected(job: TrainingJob) -> bool:
    return st.session_state.get(COLLECTED_JOB_KEY) == job.id


def collect_finished_job() -> ModelEntry | None:
    """Once per finished job: keep its model (run history + active model). Returns the new entry, if any.

    Called by every page, so a run that ends while the user looks at another page is still kept.
    """
    job = current_job()
    if job is None or is_collected(job) or not job.snapshot().finished:
        return None
    st.session_state[COLLECTED_JOB_KEY] = job.id
    snapshot = job.snapshot()
    if not has_usable_weights(job.result):
        return None
    number = len(runs()) + 1
    note = {STOPPED: " (stopped early)", DIVERGED: " (diverged: last good weights)"}.get(snapshot.status, "")
    entry = ModelEntry(result_checkpoint(job.result, f"run {number}{note}"), "run")
    runs().append(entry)
    set_active(entry)
    return entry
