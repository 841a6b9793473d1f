"""Heavy objects behind `st.cache_resource`: the dataset, checkpoint files, dataset statistics and evaluations.

Cached objects are shared by every session of the server and only ever read (models stay in eval mode), so one
copy of MNIST and of each checkpoint serves all users. Streamlit does not hash a cached function's arguments whose
names start with `_` (tensors, models): a plain key argument beside them (`dataset_key()`, a model's key) says
which object it is, and is often otherwise unused in the body.

Test data injection: a test (or a notebook) may put an `mnist_core.data.Mnist` into
`st.session_state[TEST_DATA_KEY]`; that session then uses it instead of the files under the data root.
AppTest does this with the synthetic `tiny_mnist` fixture so page tests need neither the real data nor minutes.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from mnist_core.checkpoints import DEFAULT_CHECKPOINT, PROJECT_ROOT, LoadedCheckpoint, checkpoint_bytes, load_checkpoint
from mnist_core.data import (DATA_ROOT_ENV, DatasetStatus, Mnist, MnistSplit, dataset_status, load_mnist,
                             problem_summary, raw_folder, resolve_data_root)
from mnist_core.errors import DataError
from mnist_core.evaluate import EvaluationReport, evaluate
from mnist_core import explore
from mnist_core.explore import SplitStats, split_stats
from mnist_core.models import build_model, count_parameters, model_summary

TEST_DATA_KEY = "studio.test_data"


def injected_data() -> Mnist | None:
    """The dataset a test put into this session (see the module's docstring), or None."""
    data = st.session_state.get(TEST_DATA_KEY)
    return data if isinstance(data, Mnist) else None


def data_status() -> DatasetStatus:
    """The sidebar's word on the data: found / will download / problem (with the fix in its message). A look at the
    files' sizes cannot see every problem: a download that failed, or a file of the right size that is not MNIST, is
    said as the page that tried to load the data said it, until the files change."""
    if injected_data() is not None:
        return DatasetStatus(Path("(injected)"), "found", "using test data injected into this session")
    status = dataset_status()
    failure = _failed_loads().get(_root_key(status.root))
    if status.state != "problem" and failure is not None and failure[0] == _files_fingerprint(status.root):
        return DatasetStatus(status.root, "problem", failure[1], problem_summary(status.root))
    return replace(status, message=in_app_words(status.message))


# The data messages name the CLI's option beside the variable ("pass --data-root / MNIST_DATA_ROOT pointing at a
# folder"); in the app only the variable exists, read once when the app starts.
_CLI_WORDING = [(re.compile(rf"pass --data-root / {DATA_ROOT_ENV} pointing at"), f"point {DATA_ROOT_ENV} at"),
                (re.compile(rf"use --data-root / {DATA_ROOT_ENV} (.+)$"), rf"set {DATA_ROOT_ENV} to \1"),
                (re.compile(r"--data-root (?:/|or) "), "")]
RESTART_HINT = (f"{DATA_ROOT_ENV} is read when the app starts: set it in the shell that runs `streamlit run app.py`, "
                f"then start the app again.")


def in_app_words(message: str) -> str:
    """A data message as it applies in the app: without the CLI's --data-root, and with how to change the data root
    of a running app when it says to change it."""
    text = message
    for cli_words, app_words in _CLI_WORDING:
        text = cli_words.sub(app_words, text)
    if DATA_ROOT_ENV not in text or "$" + DATA_ROOT_ENV in text:  # ("$MNIST_DATA_ROOT holds only spaces": said)
        return text
    return f"{text}{'' if text.endswith(('.', '?', '!')) else '.'} {RESTART_HINT}"


@st.cache_resource(show_spinner=False)
def _failed_loads() -> dict[str, tuple[tuple, str]]:
    """Data root → (its files as they were, why loading them failed), for every session of the server: the data root
    is the server's."""
    return {}


def _root_key(root: Path) -> str:
    return os.path.abspath(root)


def _files_fingerprint(root: Path) -> tuple:
    """Names, sizes and times of the files in `root/MNIST/raw`: another one after a copy, a download or a repair."""
    try:
        with os.scandir(raw_folder(root)) as entries:
            return tuple(sorted((entry.name, entry.stat().st_size, entry.stat().st_mtime_ns) for entry in entries))
    except OSError:
        return ()


def dataset_key() -> str:
    """Names the dataset this session uses, for caches keyed by it."""
    data = injected_data()
    return f"injected:{id(data)}" if data is not None else f"root:{resolve_data_root().resolve()}"


@st.cache_resource(show_spinner="Loading MNIST (downloading it first if it is missing)…", max_entries=2)
def _load_mnist(root: str) -> Mnist:
    return load_mnist(root)  # a DataError is not cached: the next run tries again


def load_dataset() -> Mnist:
    """Both splits as CPU tensors; raises `DataError` (with the fix, in the app's words) when the data cannot be
    had, and remembers why for `data_status`."""
    data = injected_data()
    if data is not None:
        return data
    try:
        root = resolve_data_root()
    except DataError as error:  # ($MNIST_DATA_ROOT of only spaces: the sidebar says so already)
        raise DataError(in_app_words(str(error))) from None
    try:
        data = _load_mnist(str(root.resolve()))
    except DataError as error:
        message = in_app_words(str(error))
        _failed_loads()[_root_key(root)] = (_files_fingerprint(root), message)
        raise DataError(message) from None
    _failed_loads().pop(_root_key(root), None)
    return data


@st.cache_resource(show_spinner="Counting digits and pixels…", max_entries=4)
def _split_stats(key: str, split_name: str, _split: MnistSplit) -> SplitStats:
    return split_stats(_split)


def dataset_stats(data: Mnist, split_name: str) -> SplitStats:
    """`explore.split_stats` of the split named `split_name` ("train" or "test"), computed once per dataset."""
    return _split_stats(dataset_key(), split_name, getattr(data, split_name))


@st.cache_data(show_spinner=False, max_entries=64)
def scribble_preview(count: int, seed: int, shapes: str) -> np.ndarray:
    """The explorer's scribbles, drawn once per (count, seed, shapes) for the whole server, not at every click."""
    return explore.scribble_preview(count, seed=seed, shapes=shapes)


@st.cache_resource(show_spinner="Loading the model…", max_entries=32)
def _checkpoint_file(path: str, modified_ns: int, size: int) -> LoadedCheckpoint:
    return load_checkpoint(path, name=display_path(Path(path)))


def display_path(path: Path) -> str:
    """`checkpoints/x.pt` for files of the project, the full path otherwise."""
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def _file_state(path: Path) -> tuple[int, int]:
    stat = path.stat() if path.is_file() else None
    return (stat.st_mtime_ns, stat.st_size) if stat else (0, 0)


def _file_key(path: Path, modified_ns: int, size: int) -> str:
    return f"file:{path.resolve()}:{modified_ns}:{size}"


def file_key(path: Path) -> str:
    """The key `checkpoint_file` gives the file as it is now, without loading it."""
    return _file_key(path, *_file_state(path))


def checkpoint_file(path: Path) -> tuple[str, LoadedCheckpoint]:
    """(cache key, checkpoint) for a file; the key changes when the file does. Raises `CheckpointError`."""
    modified_ns, size = _file_state(path)
    loaded = _checkpoint_file(str(path), modified_ns, size)
    return _file_key(path, modified_ns, size), loaded


def default_checkpoint() -> tuple[str, LoadedCheckpoint]:
    """(cache key, checkpoint) of `checkpoints/default.pt`, as `checkpoint_file`."""
    return checkpoint_file(DEFAULT_CHECKPOINT)


def upload_key(raw: bytes) -> str:
    """A key of checkpoint bytes (their SHA-256): an upload's model key, and `content_key`'s for files alike."""
    return "upload:" + hashlib.sha256(raw).hexdigest()


@st.cache_data(show_spinner=False, max_entries=64)
def _file_content_key(file_key: str, path: str) -> str:
    """`upload_key` of a file's bytes; `file_key` (its path, time and size) renews it when the file changes."""
    return upload_key(Path(path).read_bytes())


def content_key(entry: Any) -> str:
    """What a model entry holds, byte for byte: a file and the same file uploaded share it, so the upload of the
    active model's file is called the active model (it offered "Make this the active model" of itself)."""
    if entry.kind == "file" and entry.path is not None and file_key(entry.path) == entry.key:  # (unchanged since)
        try:
            return _file_content_key(entry.key, str(entry.path))
        except OSError:  # gone or unreadable meanwhile: only its own key names it
            return entry.key
    return entry.key


@st.cache_resource(show_spinner="Evaluating on the 10,000 test images…", max_entries=16)
def _evaluation(model_key: str, data_key: str, _model: Any, _split: MnistSplit) -> EvaluationReport:
    return evaluate(_model, _split)


def evaluation(model_key: str, model: Any, data: Mnist) -> EvaluationReport:
    """The test-split evaluation of a model, computed once per (model, dataset) for the whole server."""
    return _evaluation(model_key, dataset_key(), model, data.test)


@st.cache_data(show_spinner=False, max_entries=64)
def model_overview(model_name: str, knob_items: tuple[tuple[str, float], ...]) -> tuple[int, list[dict[str, Any]]]:
    """(parameter count, torchsummary-style rows) of a registry model with the given knob values."""
    model = build_model(model_name, **dict(knob_items))
    rows = [{**row, "output shape": " × ".join(map(str, row["output shape"]))} for row in model_summary(model)]
    return count_parameters(model), rows


@st.cache_data(show_spinner=False, max_entries=8)
def checkpoint_file_bytes(model_key: str, _entry: Any) -> bytes:
    """A model entry's (`session.ModelEntry`) checkpoint file as bytes for the download button, made once per model."""
    return checkpoint_bytes(_entry.payload())
