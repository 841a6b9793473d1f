"""Checkpoint files: one dict of tensors and plain values, written atomically, read without running code.

Format ("mnist-studio/1"): format, model, model_kwargs, state_dict, config, history, metrics, created, torch_version.
Loading uses `torch.load(weights_only=True)`: the unpickler only rebuilds tensors and plain containers, so a
malicious file cannot execute code. Every way a file can be wrong ends in one `CheckpointError` sentence.
"""

from __future__ import annotations

import errno
import glob
import io
import os
import pickle
import re
import struct
import tempfile
import time
import warnings
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mnist_core.data import MEAN, STD
from mnist_core.errors import (MB, CheckpointError, ConfigError, missing_folders, os_reason, path_status,
                                remove_if_empty)
from mnist_core.models import REGISTRY

FORMAT = "mnist-studio/1"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT_DIR = PROJECT_ROOT / "checkpoints"
CHECKPOINT_SUFFIXES = (".pt", ".pth")  # what the app lists in CHECKPOINT_DIR and accepts as an upload
DEFAULT_CHECKPOINT = CHECKPOINT_DIR / "default.pt"
MAX_CHECKPOINT_BYTES = 64 * MB  # the largest registry model (s5-net) is ~2.4 MB; 64 MB is generous
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# tempfile makes private (0600) files; a published checkpoint gets the permissions any new file would get.
_UMASK = os.umask(0o022)
os.umask(_UMASK)  # (read once at import, where no other thread can be creating files)
# A write takes seconds; a temp file this old was left by a writer that was killed before it could clean up.
STALE_TEMP_SECONDS = 15 * 60
_TEMP_NAME_EXTRA = len("." + "." + "XXXXXXXX" + ".tmp")  # what `_temp_file` adds to a name (tempfile's 8 letters)
# What the app's curves read from each history record (`train.EpochRecord.to_dict`); a record without them is dropped.
HISTORY_KEYS = ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy")


@dataclass
class LoadedCheckpoint:
    model: nn.Module  # on CPU, in eval mode
    model_name: str
    model_kwargs: dict[str, Any]
    config: dict[str, Any]
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    created: str
    source: str  # where it came from, for the UI ("checkpoints/default.pt", "upload: x.pt", ...)


def checkpoint_payload(model_name: str, model_kwargs: dict[str, Any], model: nn.Module, config: dict[str, Any],
                       history: list[dict[str, Any]], metrics: dict[str, Any]) -> dict[str, Any]:
    # Tensors are saved contiguous on CPU so a CUDA/channels_last checkpoint loads anywhere.
    state = {key: value.detach().to("cpu").contiguous() for key, value in model.state_dict().items()}
    return {"format": FORMAT, "model": model_name, "model_kwargs": dict(model_kwargs), "state_dict": state,
            "config": dict(config), "history": [dict(h) for h in history], "metrics": dict(metrics),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "torch_version": str(torch.__version__)}


def save_result(result: Any, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Save a `train.TrainResult` as a checkpoint file."""
    payload = checkpoint_payload(result.config.model, result.config.model_kwargs, result.model,
                                 result.config.to_dict(), [h.to_dict() for h in result.history], result.metrics())
    return write_checkpoint(payload, path, overwrite=overwrite)


def checkpoint_bytes(payload: dict[str, Any]) -> bytes:
    """The file's bytes (for the app's download button)."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def check_writable(path: str | os.PathLike, overwrite: bool = False) -> None:
    """Refuse a checkpoint path that cannot be written (or would be overwritten) — before minutes of training."""
    path = Path(path)
    # os.path's tests, not Path's: Path.is_dir() raises on a name too long for the file system (an internal error);
    # such a name is refused below, by the probe that creates the real temp name.
    if os.path.isdir(path):
        raise CheckpointError(f"{path} is a folder: give a file name such as {path / 'model.pt'}")
    if os.path.exists(path) and not os.path.isfile(path):  # overwriting would replace the node itself (/dev/null)
        raise CheckpointError(f"{path} is not a regular file (a device, pipe or socket): give a file name such as "
                              f"{path.parent / 'model.pt'}")
    if os.path.lexists(path) and not overwrite:  # a dangling symlink too: publishing would refuse it, after training
        raise CheckpointError(f"{path} already exists: choose another name (nothing was overwritten)")
    # `somefile/x.pt`, a looping symlink: mkdir would only say "File exists" about a folder the user never named.
    problem = path_status(path.parent, "folder", readable=False)
    if problem and problem != "does not exist":
        raise CheckpointError(f"{path.parent} {problem}, so {path.name} cannot be saved in it: choose another folder")
    created = missing_folders(path.parent)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _temp_file(path, delete=True):  # the name write_checkpoint will use: too long a name fails here, not later
            pass
    except OSError as error:
        if error.errno == errno.ENAMETOOLONG and os.path.isdir(path.parent):  # the folder is fine, the name is not
            longest = _name_max(path.parent) - _TEMP_NAME_EXTRA
            raise CheckpointError(f"the file name {path.name[:24]}… is too long ({len(os.fsencode(path.name))} bytes; "
                                  f"at most {longest} here, with the temporary name a save needs): choose a shorter "
                                  f"name") from None
        raise CheckpointError(f"cannot write into {path.parent} ({os_reason(error)}): choose a writable "
                              f"folder") from None
    finally:
        # A check leaves nothing behind: a run that then fails (no data, Ctrl-C) must not leave empty folders. The
        # save makes them again.
        remove_if_empty(created)


def _temp_file(path: Path, delete: bool) -> Any:
    """The hidden temp file a checkpoint is written to before it takes its name (`.NAME.XXXXXXXX.tmp`)."""
    return tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=delete)


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255  # every common file system's limit


def write_checkpoint(payload: dict[str, Any], path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write atomically: a temp file in the same folder, fsync, then rename over the target.

    A process killed at any moment leaves either the old file or the new one, never a half-written one.
    """
    path = Path(path)
    check_writable(path, overwrite)
    remove_stale_temp_files(path.parent, glob.escape(path.name))
    created = missing_folders(path.parent)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = _temp_file(path, delete=False)
    except OSError as error:
        remove_if_empty(created)
        raise CheckpointError(f"cannot write into {path.parent} ({os_reason(error)}): choose a writable folder") from None
    try:
        with handle:
            torch.save(payload, handle)
            handle.flush()
            os.fchmod(handle.fileno(), 0o666 & ~_UMASK)
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(handle.name, path)
        else:
            _publish_without_overwrite(Path(handle.name), path)
    except BaseException as error:
        if os.path.exists(handle.name):
            os.unlink(handle.name)
        remove_if_empty(created)
        if isinstance(error, FileExistsError):
            raise CheckpointError(f"{path} already exists: choose another name (nothing was overwritten)") from None
        if isinstance(error, OSError):
            raise CheckpointError(f"cannot write {path} ({os_reason(error)}): free some disk space or choose "
                                  f"another folder (nothing was overwritten)") from None
        raise
    return path


def _publish_without_overwrite(temp: Path, path: Path) -> None:
    """Give the finished temp file its final name, failing with FileExistsError if that name is taken."""
    try:
        os.link(temp, path)  # atomic and refuses an existing name: the name appearing meanwhile is never overwritten
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links (FAT, some network shares): check, then rename
        if path.exists():
            raise FileExistsError(path) from None
        os.replace(temp, path)
        return
    os.unlink(temp)


def remove_stale_temp_files(directory: Path, target_pattern: str = "*.pt",
                            older_than_s: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Delete the temp files (`.NAME.XXXX.tmp`) that killed writers left in `directory`; return what was deleted.

    Only files older than `older_than_s` go, so a write in progress in another process keeps its temp file.
    """
    removed = []
    cutoff = time.time() - older_than_s
    for temp in Path(directory).glob(f".{target_pattern}.*.tmp"):
        try:
            if temp.is_file() and temp.stat().st_mtime < cutoff:
                temp.unlink()
                removed.append(temp)
        except OSError:  # gone meanwhile, or a read-only folder: leaving it is harmless, it is never listed
            pass
    return removed


def safe_checkpoint_path(name: str, directory: Path = CHECKPOINT_DIR) -> Path:
    """`checkpoints/<name>.pt` for a user-typed name, refusing anything that could leave the folder."""
    typed = name
    name = name.strip()
    rule = ("use 1–64 English letters (a–z, A–Z), digits, '.', '_' or '-', starting with a letter or digit "
            "(no folders)")
    if not name:  # "'' is not a usable name" read like a glitch; the box was simply left empty
        raise CheckpointError(f"the file name is empty: {rule}")
    suffix = next((suffix for suffix in CHECKPOINT_SUFFIXES if name.lower().endswith(suffix)), "")  # x.PT: not x.PT.pt
    name = name[:len(name) - len(suffix)]
    if not _SAFE_NAME.match(name):
        raise CheckpointError(f"{typed!r} is not a usable name: {rule}")
    path = (directory / f"{name}.pt").resolve()
    if path.parent != directory.resolve():
        raise CheckpointError(f"{typed!r} would be saved outside {directory}: use a plain name")
    return path


def free_checkpoint_name(stem: str, directory: Path = CHECKPOINT_DIR) -> str:
    """`stem`, else `stem-2`, `stem-3`, …: the first name no file in `directory` has. Save suggests it, so a new
    session's "run 1" is not offered a name that an earlier session already saved (which Save would refuse)."""
    candidate, number = stem, 1
    while (directory / f"{candidate}.pt").exists():
        number += 1
        candidate = f"{stem}-{number}"
    return candidate


def list_checkpoints(directory: Path = CHECKPOINT_DIR) -> list[Path]:
    """Checkpoint files (CHECKPOINT_SUFFIXES) in the folder, default first, then newest first (stale temp files are
    cleaned up)."""
    if not directory.is_dir():
        return []
    remove_stale_temp_files(directory)
    files = [p for p in directory.iterdir() if p.suffix.lower() in CHECKPOINT_SUFFIXES and p.is_file()]
    return sorted(files, key=lambda p: (p.name != "default.pt", -p.stat().st_mtime))


def load_checkpoint(source: str | os.PathLike | bytes, name: str | None = None,
                    max_bytes: int = MAX_CHECKPOINT_BYTES) -> LoadedCheckpoint:
    """Load a checkpoint from a path or raw bytes (an upload), checking everything; raise CheckpointError."""
    if isinstance(source, (bytes, bytearray)):
        label = name or "uploaded file"
        raw = bytes(source)
        if len(raw) > max_bytes:
            raise CheckpointError(f"{label} is {len(raw) / MB:.1f} MB; model files here are at most "
                                  f"{max_bytes / MB:.0f} MB: is it really an MNIST Studio checkpoint?")
    else:
        if not str(source).strip():  # Path("") is ".", which would be named instead
            raise CheckpointError("the model file's path is empty: give the path of a .pt checkpoint")
        path = Path(source)
        label = name or str(path)
        problem = path_status(path)
        if problem:
            raise CheckpointError(f"{label} {problem}: check the path")
        if path.stat().st_size > max_bytes:
            raise CheckpointError(f"{label} is {path.stat().st_size / MB:.1f} MB; model files here are at most "
                                  f"{max_bytes / MB:.0f} MB: is it really an MNIST Studio checkpoint?")
        try:
            raw = path.read_bytes()
        except OSError as error:
            raise CheckpointError(f"cannot read {label} ({os_reason(error)})") from None
    if not raw:
        raise CheckpointError(f"{label} is empty (0 bytes): it is not a model file")
    payload = _safe_torch_load(raw, label)
    return _checked_checkpoint(payload, label)


_PICKLE_START = b"\x80"  # the PROTO opcode: every pickle since protocol 2 (and torch's legacy format) begins so
_ZIP_START = b"PK\x03\x04"  # torch.save's default format is a zip archive


def _safe_torch_load(raw: bytes, label: str) -> Any:
    unreadable = CheckpointError(f"{label} is not a readable PyTorch file (it may be truncated, damaged or of another "
                                 f"kind): use a .pt checkpoint saved by MNIST Studio")
    if _is_safetensors(raw):  # a common format for weights: "damaged" would send the user looking for a better copy
        unreadable = CheckpointError(f"{label} is a safetensors file (bare weights, without the model's name or "
                                     f"settings), not a checkpoint: use a .pt checkpoint saved by MNIST Studio")
    problem = _zip_problem(raw) if raw.startswith(_ZIP_START) else None
    if problem == "compressed":
        raise CheckpointError(f"{label} is a compressed zip archive, which torch.save never writes (and which could "
                              f"unpack to far more memory than its size): use a .pt checkpoint saved by MNIST Studio")
    if problem == "checksums":
        raise CheckpointError(f"{label} is damaged (its contents do not match the checksums stored in it: a bad copy "
                              f"or a disk error): use a good copy of the checkpoint")
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the user gets our one sentence instead
            warnings.simplefilter("ignore")
            return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # The weights-only unpickler refused something. In a real pickle (or a torch zip) that means Python objects
        # beyond tensors and plain values: refused before anything ran. In other bytes, it is just not a model file.
        # Torch words it two ways: "Unsupported global: GLOBAL builtins.exec…" and "unsupported GLOBAL posix.system
        # whose module posix is blocked" (os.system in a protocol 0/1 pickle, which has no PROTO opcode to go by).
        refused_objects = ("unsupported global" in str(error).lower()
                           or raw.startswith((_PICKLE_START, _ZIP_START)))
        if refused_objects:
            raise CheckpointError(f"{label} holds Python objects, not just tensors; it was refused without running "
                                  f"anything (a model file must never execute code): use a checkpoint saved by "
                                  f"MNIST Studio") from None
        raise unreadable from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, UnicodeDecodeError, AttributeError,
            TypeError, IndexError, KeyError, MemoryError, OverflowError, struct.error):
        raise unreadable from None


def _is_safetensors(raw: bytes) -> bool:
    """safetensors' layout: an 8-byte little-endian header length, then that many bytes of JSON header."""
    if len(raw) < 10 or raw[8:9] != b"{":
        return False
    (header_length,) = struct.unpack("<Q", raw[:8])
    return 8 + header_length <= len(raw) and raw[8:8 + header_length].rstrip().endswith(b"}")  # (space-padded)


def _zip_problem(raw: bytes) -> str | None:
    """What is wrong with a torch zip before torch.load reads it: "compressed" or "checksums", else None.

    torch.save writes every entry stored (uncompressed); torch.load would inflate a deflated one in full, so a 64 MB
    upload could unpack to tens of GB (a zip bomb). And torch.load does not check the CRC-32s, so a flipped bit in the
    weights would load as a silently different (say, 1e37) weight: they are checked here, reading in chunks.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            entries = archive.infolist()
            if any(entry.compress_type != zipfile.ZIP_STORED for entry in entries):
                return "compressed"
            for entry in entries:
                if entry.CRC:  # 0: saved with torch's CRC-32 turned off, nothing to compare
                    with archive.open(entry) as stream:
                        while stream.read(1 << 20):  # the CRC is compared at the end (BadZipFile)
                            pass
    except zipfile.BadZipFile as error:
        return "checksums" if "CRC" in str(error) else None
    except (OSError, ValueError, EOFError, NotImplementedError, RuntimeError):
        return None  # a zip Python cannot walk: torch.load decides (and refuses it if it cannot read it either)
    return None


def _checked_checkpoint(payload: Any, label: str) -> LoadedCheckpoint:
    if isinstance(payload, dict) and payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
        raise CheckpointError(f"{label} is a bare state_dict (weights without the model's name or settings), "
                              f"not an MNIST Studio checkpoint: it cannot be matched to an architecture safely")
    stored_format = payload.get("format") if isinstance(payload, dict) else None
    if isinstance(stored_format, str) and stored_format != FORMAT and stored_format.startswith("mnist-studio/"):
        # Ours, but another layout: "not an MNIST Studio checkpoint" would send the user looking for another file.
        version = stored_format.removeprefix("mnist-studio/")
        newer = " (newer)" if version.isdigit() and int(version) > int(FORMAT.removeprefix("mnist-studio/")) else ""
        raise CheckpointError(f"{label} was saved by another{newer} version of MNIST Studio (format "
                              f"{stored_format!r}; this version reads {FORMAT!r}): load it with the version that "
                              f"saved it, or update MNIST Studio")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = (f"it holds {_a(type(payload).__name__)}" if not isinstance(payload, dict)
                 else "it has no 'format' field" if "format" not in payload else f"format {payload['format']!r}")
        raise CheckpointError(f"{label} is not an MNIST Studio checkpoint ({found}; expected format {FORMAT!r})")
    model_name = payload.get("model")
    if not isinstance(model_name, str) or model_name not in REGISTRY:
        raise CheckpointError(f"{label} is for model {model_name!r}, which this version does not know "
                              f"(known: {', '.join(REGISTRY)})")
    model_kwargs = payload.get("model_kwargs") or {}
    state = payload.get("state_dict")
    for field, value, holds in (("model_kwargs", model_kwargs, "the model's settings"),
                                ("state_dict", state, "the weights")):
        if not isinstance(value, dict):  # "missing" was said of a list or a number too
            found = "none" if value is None else _a(type(value).__name__)
            raise CheckpointError(f"{label} is damaged: its {field} ({holds}) should be a dict, and it has {found}: "
                                  f"use a checkpoint saved by MNIST Studio")
    odd_key = next((key for key in state if not isinstance(key, str)), None)
    if odd_key is not None:  # load_state_dict would fail on it with "'int' object has no attribute 'startswith'"
        raise CheckpointError(f"{label} is damaged: its state_dict has the key {odd_key!r}, where weights are named by "
                              f"text (\"0.weight\"): use a checkpoint saved by MNIST Studio")
    try:
        model = REGISTRY[model_name].build(**model_kwargs)
    except (ConfigError, TypeError, ValueError, RuntimeError) as error:  # torch layers refuse odd sizes with these
        detail = str(error) if isinstance(error, ConfigError) else f"model_kwargs {model_kwargs!r}"[:160]
        raise CheckpointError(f"{label} has settings the {model_name} model does not accept ({detail})") from None
    # load_state_dict casts silently: whole-number weights would load as a model of zeros, complex ones lose half.
    expected = model.state_dict()
    wrong_kind = next((key for key, value in state.items() if key in expected and isinstance(value, torch.Tensor)
                       and expected[key].is_floating_point() and not value.is_floating_point()), None)
    if wrong_kind is not None:
        raise CheckpointError(f"{label} holds {state[wrong_kind].dtype} values for {wrong_kind}, where the {model_name} "
                              f"model has floating-point weights: it is not a checkpoint saved by MNIST Studio")
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as error:
        detail = _first_problem(str(error))
        raise CheckpointError(f"{label} does not fit the {model_name} architecture ({detail}): the weights were "
                              f"saved for a different model") from None
    if not all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point()):
        raise CheckpointError(f"{label} contains NaN or infinite weights (its training diverged): it cannot predict "
                              f"anything; retrain with a lower learning rate")
    model.eval().to(memory_format=torch.channels_last)  # the fast conv layout for evaluation and sketches
    # Finite weights can still overflow (scaled by 1e30, say) or break BatchNorm (a negative running variance): such a
    # model reads every picture as NaN, which is no prediction (and not JSON). Probes: blank paper, then all ink.
    with torch.inference_mode():
        probes = ((torch.tensor([0.0, 1.0]) - MEAN) / STD).view(2, 1, 1, 1).expand(2, 1, 28, 28)
        if not torch.isfinite(model(probes.contiguous(memory_format=torch.channels_last))).all():
            raise CheckpointError(f"{label} gives NaN or infinite outputs although its weights are finite (they are "
                                  f"far too large, or its normalisation statistics are broken): it cannot predict "
                                  f"anything; retrain it or use another checkpoint")
    return LoadedCheckpoint(model, model_name, model_kwargs, _plain(payload.get("config"), dict),
                            _checked_history(payload.get("history")), _scalar_metrics(payload.get("metrics")),
                            str(payload.get("created", "")), label)


def _a(noun: str) -> str:
    """"a list", "an int": the type names that messages quote."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _first_problem(load_error: str) -> str:
    """The first concrete line of load_state_dict's error ("size mismatch for fc1.weight: ..."), shortened."""
    lines = [line.strip() for line in load_error.splitlines() if line.strip()]
    # without torch's own full stop: it goes inside the message's parenthesis ("…[32, 1, 5, 5]).): the weights…")
    detail = (lines[1] if len(lines) > 1 else (lines[0] if lines else "unknown difference")).rstrip(".")
    return detail if len(detail) <= 160 else detail[:157] + "..."


def _checked_history(history: Any) -> list[dict[str, Any]]:
    """The stored training curves, or [] when they are malformed (wrong types, missing keys): the weights are what
    matter, and a bad history would only break the charts and `evaluate` later with a traceback."""
    if not isinstance(history, list):
        return []
    for record in history:
        if not isinstance(record, dict) or not all(
                isinstance(record.get(key), (int, float)) and not isinstance(record.get(key), bool)
                for key in HISTORY_KEYS):
            return []
    return [dict(record) for record in history]


def _scalar_metrics(metrics: Any) -> dict[str, Any]:
    """The stored metrics that are plain values (numbers, text, true/false), as `TrainResult.metrics` writes them.
    Anything else (a tensor: `torch.zeros(1).expand(10**6, 10**6)` is a few bytes in the file) would reach the app's
    tables as an object, not a number."""
    return {key: value for key, value in _plain(metrics, dict).items()
            if value is None or isinstance(value, (bool, int, float, str))}


def _plain(value: Any, kind: type) -> Any:
    return value if isinstance(value, kind) else kind()
