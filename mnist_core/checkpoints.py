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
import shlex
import struct
import sys
import tempfile
import time
import unicodedata
import warnings
import zipfile
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mnist_core.config import MAX_EPOCHS, TRAIN_SIZE, TrainConfig
from mnist_core.data import MEAN, STD
from mnist_core.errors import (MB, MISSING, CheckpointError, ConfigError, missing_folders, os_reason, path_status,
                                quoted, remove_if_empty)
from mnist_core.models import REGISTRY
from mnist_core.sketch import SNIFF_BYTES as _SNIFF_BYTES, file_kind
from mnist_core.train import TrainResult

FORMAT = "mnist-studio/1"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT_DIR = PROJECT_ROOT / "checkpoints"
CHECKPOINT_SUFFIXES = (".pt", ".pth")  # what the app lists in CHECKPOINT_DIR and accepts as an upload
DEFAULT_CHECKPOINT = CHECKPOINT_DIR / "default.pt"
MAX_CHECKPOINT_BYTES = 64 * MB  # the largest registry model (s5-net) is ~2.4 MB; 64 MB is generous
MAX_NAME_LENGTH = 64  # characters of a checkpoint name typed in the app, its suffix left out
_SAFE_NAME = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_NAME_LENGTH - 1}}}$")
_WINDOWS_DEVICE_NAMES = {"CON", "PRN", "AUX", "NUL", *(f"{port}{n}" for port in ("COM", "LPT") for n in range(1, 10))}
_UNUSABLE_RUN = re.compile(r"[^A-Za-z0-9._-]+")  # what a usable name is suggested without: spaces, ü, /…
# tempfile makes private (0600) files; a published checkpoint gets the permissions any new file would get.
_UMASK = os.umask(0o022)
os.umask(_UMASK)  # (read once at import, where no other thread can be creating files)
# A write takes seconds; a temp file this old was left by a writer that was killed before it could clean up.
STALE_TEMP_SECONDS = 15 * 60
_TEMP_NAME_EXTRA = len("." + "." + "XXXXXXXX" + ".tmp")  # what `_temp_file` adds to a name (tempfile's 8 letters)
# What the app's curves read from each history record (`train.EvalRecord.to_dict`); a record without them is dropped.
HISTORY_KEYS = ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy")
# More records are not a run's curves (1000 epochs, the most TrainConfig allows, evaluated ten times each): a history
# of one record referenced millions of times is a few MB in the file and GBs once copied.
MAX_HISTORY_RECORDS = 10_000
# Bounds on what a small file can make torch.load do. torch.save writes one zip entry per tensor plus five (s5-net:
# 18); its pickle of everything but the weights is ~1 KB plus ~100 bytes per history record, and the weights-only
# unpickler runs in Python (~3 s per million opcodes), so a 40 MB pickle of references took a minute.
MAX_ZIP_ENTRIES = 1000
MAX_PICKLE_BYTES = 2 * MB  # room for MAX_HISTORY_RECORDS (~1 MB) and the rest
# The longest text a checkpoint's metadata keeps in a field (its device, optimizer, the time it was saved: a few words)
MAX_TEXT_CHARS = 200
# What a checkpoint's tensors may hold: weights in the float types a model can compute in (load_state_dict would cast
# anything else silently: whole numbers to a model of zeros, float8 into NotImplementedError), counters
# (BatchNorm's num_batches_tracked) in whole numbers.
WEIGHT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
COUNTER_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


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
    """The dict a checkpoint file holds (the ★ format in ARCHITECTURE.md): plain values and CPU tensors only."""
    # Tensors are saved contiguous on CPU so a CUDA/channels_last checkpoint loads anywhere.
    state = {key: value.detach().to("cpu").contiguous() for key, value in model.state_dict().items()}
    return {"format": FORMAT, "model": model_name, "model_kwargs": dict(model_kwargs), "state_dict": state,
            "config": dict(config), "history": [dict(h) for h in history], "metrics": dict(metrics),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "torch_version": str(torch.__version__)}


def save_result(result: TrainResult, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Save a training run as a checkpoint file."""
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
    if path.name != path.name.strip():  # `--out "model.pt "`: a name whose blank nobody sees, so nobody types again
        raise CheckpointError(f"the file name {path.name!r} has a blank at its {_blank_ends(path.name)}: remove it "
                              f"(nothing was written)")
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
    if problem and not problem.startswith(MISSING):  # (a folder made by the save; blanks around it are a choice)
        raise CheckpointError(f"{path.parent} {problem}, so {path.name} cannot be saved in it: choose another folder")
    created = missing_folders(path.parent)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _temp_file(path, delete=True):  # the name write_checkpoint will use: too long a name fails here, not later
            pass
    except OSError as error:
        if error.errno == errno.ENAMETOOLONG and os.path.isdir(path.parent):  # the folder is fine, the name is not
            longest = _name_max(path.parent) - _TEMP_NAME_EXTRA
            raise CheckpointError(f"the file name {path.name} is too long ({len(os.fsencode(path.name))} bytes; "
                                  f"at most {longest} here, with the temporary name a save needs): choose a shorter "
                                  f"name") from None
        raise CheckpointError(f"cannot write into {path.parent} ({os_reason(error)}): choose a writable "
                              f"folder") from None
    finally:
        # A check leaves nothing behind: a run that then fails (no data, Ctrl-C) must not leave empty folders. The
        # save makes them again.
        remove_if_empty(created)


def _blank_ends(name: str) -> str:
    return " and ".join(end for end, blank in (("start", name[:1].isspace()), ("end", name[-1:].isspace())) if blank)


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
        # a usable name close to the typed one, so that "my run" need not be guessed into "my-run"
        # ("ünï" -> "uni": accents dropped, not the letters under them)
        ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
        usable = _UNUSABLE_RUN.sub("-", ascii_name).lstrip("._-")[:MAX_NAME_LENGTH].rstrip("._-")
        such_as = f", such as {free_checkpoint_name(usable, directory)}" if usable else ""
        raise CheckpointError(f"{typed!r} is not a usable name: {rule}{such_as}")
    device_name = name.split(".")[0]
    if device_name.upper() in _WINDOWS_DEVICE_NAMES:  # CON.pt, con.v2.pt open the console on Windows, not a file
        raise CheckpointError(f"{typed!r} is a name Windows keeps for a device (as are CON, PRN, AUX, NUL, COM1–9 and "
                              f"LPT1–9): choose another, such as {free_checkpoint_name(device_name + '-run', directory)}")
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
        ending = f"-{number}"  # within the 64 characters a name may have: a 64-character stem gives up its end
        candidate = stem[:MAX_NAME_LENGTH - len(ending)] + ending
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
    return _checked_checkpoint(*_payload_and_label(source, name, max_bytes))


def is_saved_checkpoint(path: str | os.PathLike) -> bool:
    """Whether `path` is a file MNIST Studio saved as a checkpoint (of any version), whether or not its model is of
    use: `train --overwrite` replaces those, and only those. A run that did not learn is saved (with a warning), and
    may then be refused by load_checkpoint (a model that reads every picture as the same digit): training again over
    it was refused as "does not load as an MNIST Studio checkpoint"."""
    try:
        payload, _ = _payload_and_label(path, None, MAX_CHECKPOINT_BYTES)
    except CheckpointError:
        return False
    stored_format = payload.get("format") if isinstance(payload, dict) else None
    return isinstance(stored_format, str) and (stored_format == FORMAT or stored_format.startswith("mnist-studio/"))


def _payload_and_label(source: str | os.PathLike | bytes, name: str | None, max_bytes: int) -> tuple[Any, str]:
    """The unpickled contents of a checkpoint file or upload (tensors and plain values only), and its name for
    messages; raise CheckpointError for what is no torch file or could run code."""
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
    return _safe_torch_load(raw, label, None if isinstance(source, (bytes, bytearray)) else Path(source)), label


_PICKLE_START = b"\x80"  # the PROTO opcode: every pickle since protocol 2 (and torch's legacy format) begins so
_ZIP_START = b"PK\x03\x04"  # torch.save's default format is a zip archive


def _safe_torch_load(raw: bytes, label: str, path: Path | None) -> Any:
    unreadable = CheckpointError(f"{label} is not a readable PyTorch file (it may be truncated, damaged or of another "
                                 f"kind): use a .pt checkpoint saved by MNIST Studio")
    if _is_safetensors(raw):  # a common format for weights: "damaged" would send the user looking for a better copy
        unreadable = CheckpointError(f"{label} is a safetensors file (bare weights, without the model's name or "
                                     f"settings), not a checkpoint: use a .pt checkpoint saved by MNIST Studio")
    compressed = next((kind for kind in _COMPRESSED if raw.startswith(kind[0])), None)
    if compressed:  # (a model.pt.gz, renamed or packed to be sent): never unpacked here, it could be a bomb
        _, kind, tool, suffix = compressed
        raise CheckpointError(f"{label} is {kind}-compressed, and torch.save never compresses its files: unpack it "
                              f"first ({_unpack_command(path, tool, suffix)}) and give the unpacked file")
    kind = file_kind(raw[:_SNIFF_BYTES])
    if kind not in (None, "model"):  # (a digit's picture uploaded here: "truncated, damaged" sent the user astray)
        raise CheckpointError(f"{label} is {_a(kind)} file, not a model file: use a .pt checkpoint saved by MNIST "
                              f"Studio (a picture of a digit is read by the predict command, or on the app's Sketch "
                              f"page)")
    problem = _zip_problem(raw) if raw.startswith(_ZIP_START) else None
    if problem:
        raise CheckpointError(f"{label} {problem}")
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


# (what the file begins with, format, the tool that unpacks it, its file suffix). Zip archives are `_zip_problem`'s:
# torch.save's own format is one.
_COMPRESSED = ((b"\x1f\x8b", "gzip", "gunzip", ".gz"), (b"BZh", "bzip2", "bunzip2", ".bz2"),
               (b"\xfd7zXZ\x00", "xz", "unxz", ".xz"), (b"\x28\xb5\x2f\xfd", "zstd", "unzstd", ".zst"))


def _unpack_command(path: Path | None, tool: str, suffix: str) -> str:
    """A shell command that unpacks `path` beside it without replacing any file (`-k` keeps the archive, and the
    tools refuse to overwrite), or only the tool's name for an upload, which has no path here."""
    if path is None:
        return tool
    if path.suffix == suffix:
        return f"{tool} -k {shlex.quote(str(path))}"
    unpacked = path.with_name(f"{path.stem}.unpacked.pt")  # (no suffix to drop: the shell's > would replace a file)
    return f"{tool} -c {shlex.quote(str(path))} > {shlex.quote(str(unpacked))}"


def _is_safetensors(raw: bytes) -> bool:
    """safetensors' layout: an 8-byte little-endian header length, then that many bytes of JSON header."""
    if len(raw) < 10 or raw[8:9] != b"{":
        return False
    (header_length,) = struct.unpack("<Q", raw[:8])
    return 8 + header_length <= len(raw) and raw[8:8 + header_length].rstrip().endswith(b"}")  # (space-padded)


def _zip_problem(raw: bytes) -> str | None:
    """What is wrong with a torch zip before torch.load reads it (the rest of a message that starts with the file's
    name), else None.

    Only the table of contents is read until the layout is known to be torch.save's: every entry stored (torch.load
    would inflate a deflated one in full, so a 64 MB upload could unpack to tens of GB: a zip bomb), each name once and
    each entry's bytes its own (a table listing one 4 MB entry 3,000 times made the checksum pass read it 3,000
    times), a handful of entries, and a pickle small enough to unpickle quickly. Then the CRC-32s are checked, which
    torch.load does not do: a flipped bit in the weights would load as a silently different (say, 1e37) weight.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            entries = archive.infolist()
            if _is_torchscript(entries):
                return ("is a TorchScript export (saved by torch.jit.save, with the model's code), not an MNIST "
                        "Studio checkpoint: use a .pt checkpoint saved by MNIST Studio (`train` or the app's Save)")
            if not any(entry.filename.endswith("data.pkl") for entry in entries):  # not torch.save's layout
                held = [entry.filename for entry in entries if entry.filename.lower().endswith(CHECKPOINT_SUFFIXES)]
                if held:  # (zipped to be sent: it read as "truncated, damaged", or "compressed … could unpack to …")
                    return (f"is a zip archive holding {quoted(held[0])}{' and more' if len(held) > 1 else ''}, not "
                            f"a checkpoint itself: unzip it and give the .pt file inside")
                return "is a zip archive of other files, not a checkpoint: use a .pt checkpoint saved by MNIST Studio"
            if len(entries) > MAX_ZIP_ENTRIES:
                return (f"is a zip archive of {len(entries):,} entries, where a checkpoint has a few dozen: it is not "
                        f"a checkpoint saved by MNIST Studio")
            if not _entries_apart(raw, entries):
                return ("is a malformed zip archive (its table of contents lists the same name or the same bytes more "
                        "than once), which torch.save never writes: use a .pt checkpoint saved by MNIST Studio")
            if any(entry.compress_type != zipfile.ZIP_STORED for entry in entries):
                return ("is a compressed zip archive, which torch.save never writes (and which could unpack to far "
                        "more memory than its size): use a .pt checkpoint saved by MNIST Studio")
            pickle_bytes = max((e.file_size for e in entries if e.filename.endswith("/data.pkl")), default=0)
            if pickle_bytes > MAX_PICKLE_BYTES:
                return (f"holds {pickle_bytes:,} bytes of settings and history besides its weights, where a checkpoint "
                        f"has at most {MAX_PICKLE_BYTES:,}: it is not a checkpoint saved by MNIST Studio")
            for entry in entries:
                if entry.CRC:  # 0: saved with torch's CRC-32 turned off, nothing to compare
                    with archive.open(entry) as stream:
                        while stream.read(1 << 20):  # the CRC is compared at the end (BadZipFile)
                            pass
    except zipfile.BadZipFile as error:
        if "CRC" in str(error):
            return ("is damaged (its contents do not match the checksums stored in it: a bad copy or a disk error): "
                    "use a good copy of the checkpoint")
        return None
    except (OSError, ValueError, EOFError, NotImplementedError, RuntimeError, struct.error):
        return None  # a zip Python cannot walk: torch.load decides (and refuses it if it cannot read it either)
    return None


def _is_torchscript(entries: list[zipfile.ZipInfo]) -> bool:
    """torch.jit.save's archives hold the model's code (`code/…`) and `constants.pkl` beside the weights."""
    return any(entry.filename.endswith("/constants.pkl") or "/code/" in entry.filename for entry in entries)


def _entries_apart(raw: bytes, entries: list[zipfile.ZipInfo]) -> bool:
    """Whether every entry has its own name and its own bytes (header and data) inside the file, none overlapping."""
    if len({entry.filename for entry in entries}) != len(entries):
        return False
    end_of_previous = 0
    for entry in sorted(entries, key=lambda e: e.header_offset):
        if entry.header_offset < end_of_previous:
            return False
        # The local header's name and extra field can differ in length from the central directory's copy.
        name_length, extra_length = struct.unpack_from("<HH", raw, entry.header_offset + 26)
        end_of_previous = entry.header_offset + 30 + name_length + extra_length + entry.compress_size
        if end_of_previous > len(raw):
            return False
    return True


def _checked_checkpoint(payload: Any, label: str) -> LoadedCheckpoint:
    """A file's contents as a model ready to use, or the CheckpointError that says what is wrong: what kind of file it
    is (`_checked_model_name`), whether its weights fit that model (`_checked_model`), whether the model can read a
    picture at all (`_refuse_useless_model`). The settings, history and metrics are cleaned, never refused."""
    model_name = _checked_model_name(payload, label)
    model_kwargs = payload.get("model_kwargs") or {}
    model = _checked_model(model_name, model_kwargs, payload.get("state_dict"), label)
    _refuse_useless_model(model, label)
    created = payload.get("created")
    return LoadedCheckpoint(model, model_name, model_kwargs, _checked_config(payload.get("config")),
                            _checked_history(payload.get("history")), _checked_metrics(payload.get("metrics")),
                            created if _TEXT.admits(created) else "", label)


def _checked_model_name(payload: Any, label: str) -> str:
    """The registry name of the model a file holds, once the file is known to be a checkpoint of this version."""
    if isinstance(payload, dict) and payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
        raise CheckpointError(f"{label} is a bare state_dict (weights without the model's name or settings), "
                              f"not an MNIST Studio checkpoint: it cannot be matched to an architecture safely")
    stored_format = payload.get("format") if isinstance(payload, dict) else None
    if isinstance(stored_format, str) and stored_format != FORMAT and stored_format.startswith("mnist-studio/"):
        # Ours, but another layout: "not an MNIST Studio checkpoint" would send the user looking for another file.
        newer = " (newer)" if _is_newer_format(stored_format) else ""
        raise CheckpointError(f"{label} was saved by another{newer} version of MNIST Studio (format "
                              f"{quoted(stored_format)}; this version reads {FORMAT!r}): load it with the version that "
                              f"saved it, or update MNIST Studio")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = (f"it holds {_kind_of(payload)}" if not isinstance(payload, dict)
                 else "it has no 'format' field" if "format" not in payload else f"format {quoted(payload['format'])}")
        raise CheckpointError(f"{label} is not an MNIST Studio checkpoint ({found}; expected format {FORMAT!r})")
    model_name = payload.get("model")
    if not isinstance(model_name, str):  # it said "is for model None, which this version does not know"
        found = "none" if model_name is None else _kind_of(model_name)
        raise CheckpointError(f"{label} is damaged: its model (the architecture's name) should be text, and it has "
                              f"{found}: use a checkpoint saved by MNIST Studio")
    if model_name not in REGISTRY:
        raise CheckpointError(f"{label} is for model {quoted(model_name)}, which this version does not know "
                              f"(known: {', '.join(REGISTRY)})")
    return model_name


def _checked_model(model_name: str, model_kwargs: Any, state: Any, label: str) -> nn.Module:
    """The registry's `model_name` built with `model_kwargs` and loaded with the weights `state`, in eval mode;
    CheckpointError for settings it does not take and weights that are not its own, or not finite."""
    for field, value, holds in (("model_kwargs", model_kwargs, "the model's settings"),
                                ("state_dict", state, "the weights")):
        if not isinstance(value, dict):  # "missing" was said of a list or a number too
            found = "none" if value is None else _kind_of(value)
            raise CheckpointError(f"{label} is damaged: its {field} ({holds}) should be a dict, and it has {found}: "
                                  f"use a checkpoint saved by MNIST Studio")
    odd_key = next((key for key in state if not isinstance(key, str)), None)
    if odd_key is not None:  # load_state_dict would fail on it with "'int' object has no attribute 'startswith'"
        raise CheckpointError(f"{label} is damaged: its state_dict has the key {odd_key!r}, where weights are named by "
                              f"text (\"0.weight\"): use a checkpoint saved by MNIST Studio")
    try:
        model = REGISTRY[model_name].build(**model_kwargs)
    except (ConfigError, TypeError, ValueError, RuntimeError) as error:  # torch layers refuse odd sizes with these
        # (the model's own sentence: a file's 100,000-character setting name is shortened in it, as in every message)
        detail = str(error) if isinstance(error, ConfigError) else f"model_kwargs {quoted(model_kwargs)}"
        raise CheckpointError(f"{label} has settings the {model_name} model does not accept ({detail})") from None
    expected = model.state_dict()
    for key, value in state.items():
        # load_state_dict blamed these on the shapes ("whose dimensions in the model are torch.Size([32, 1, 5, 5]) and
        # whose dimensions in the checkpoint are torch.Si…": the same) and called the file another model's.
        if not isinstance(value, torch.Tensor):  # load_state_dict called it "saved for a different model"
            raise CheckpointError(f"{label} is damaged: its state_dict holds {_kind_of(value)} for {key}, "
                                  f"where weights are tensors: use a checkpoint saved by MNIST Studio")
        if value.is_meta or value.is_nested or value.layout != torch.strided:
            kind = ("shape-only (meta)" if value.is_meta else "nested" if value.is_nested
                    else f"sparse ({str(value.layout).removeprefix('torch.')})")
            raise CheckpointError(f"{label} holds a {kind} tensor for {key}, where the {model_name} model has plain "
                                  f"dense weights: it is not a checkpoint saved by MNIST Studio")
    state = _in_current_layout(model_name, state, set(expected))
    wrong_kind = next((key for key, value in state.items() if key in expected and isinstance(value, torch.Tensor)
                       and value.dtype not in (WEIGHT_DTYPES if expected[key].is_floating_point() else COUNTER_DTYPES)),
                      None)
    if wrong_kind is not None:
        holds = ("floating-point weights (float16, bfloat16, float32 or float64)"
                 if expected[wrong_kind].is_floating_point() else "a whole-number counter")
        raise CheckpointError(f"{label} holds {state[wrong_kind].dtype} values for {wrong_kind}, where the {model_name} "
                              f"model has {holds}: it is not a checkpoint saved by MNIST Studio")
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as error:
        detail = _first_problem(str(error))
        raise CheckpointError(f"{label} does not fit the {model_name} architecture ({detail}): the weights were "
                              f"saved for a different model") from None
    if not all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point()):
        raise CheckpointError(f"{label} contains NaN or infinite weights (its training diverged): it cannot predict "
                              f"anything; retrain with a lower learning rate")
    return model.eval().to(memory_format=torch.channels_last)  # the fast conv layout for evaluation and sketches


def _refuse_useless_model(model: nn.Module, label: str) -> None:
    """CheckpointError for a model whose weights load but which cannot tell pictures apart."""
    # Finite weights can still overflow (scaled by 1e30, say) or break BatchNorm (a negative running variance): such a
    # model reads pictures as NaN, which is no prediction (and not JSON). Probed on a few pictures here; `evaluate` and
    # `predict` check the outputs on the user's own too, as no probe can stand for every picture.
    with torch.inference_mode():
        outputs = model(_probe_pictures())
    if not torch.isfinite(outputs).all():
        raise non_finite_outputs_error(label)
    # A model that learned anything, or nothing yet, tells these four apart by far more than rounding: a constant
    # model's outputs differ only in their last bits (~1e-9 on an AMD EPYC, whose GEMM kernels sum a batch's rows in
    # different orders), so "the same" allows for that.
    if torch.allclose(outputs, outputs[:1].expand_as(outputs), rtol=1e-5, atol=1e-6):
        raise CheckpointError(f"{label} gives the same output for every picture (blank paper, all ink, a drawn 0 and a "
                              f"drawn 1 alike: its first layer's weights are all zero, say), so it would read every "
                              f"picture as the same digit: retrain it or use another checkpoint")


def non_finite_outputs_error(label: str, pictures: str = "") -> CheckpointError:
    """The refusal of a model whose weights are finite but whose outputs (on `pictures`, if named) are NaN or
    infinite."""
    on = f" on {pictures}" if pictures else ""
    return CheckpointError(f"{label} gives NaN or infinite outputs{on} although its weights are finite (they are far "
                           f"too large, or its normalisation statistics are broken): it cannot predict anything; "
                           f"retrain it or use another checkpoint")


def _probe_pictures() -> torch.Tensor:
    """Normalised [4, 1, 28, 28] in the channels_last layout: blank paper, all ink, a drawn 0 (a ring) and a drawn 1
    (a bar). The drawn digits reach a model's weights as real digits do: weights scaled to overflow only on ink
    shaped like a digit passed the first two."""
    rows, columns = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    ring = ((((rows - 13.5) / 9) ** 2 + ((columns - 13.5) / 6) ** 2).sqrt() - 1).abs() < 0.2
    bar = ((columns - 13.5).abs() < 1.5) & ((rows - 13.5).abs() < 10)
    pictures = torch.stack([torch.zeros(28, 28), torch.ones(28, 28), ring.float(), bar.float()]).unsqueeze(1)
    return ((pictures - MEAN) / STD).contiguous(memory_format=torch.channels_last)


# `fast` before commit 970425c (Nov 2026; the format stayed mnist-studio/1): each block was conv, BatchNorm, ReLU,
# max-pool (Sequential indices 0-3 and 4-7); it is now conv, max-pool, BatchNorm, ReLU. Only the BatchNorms moved.
_OLD_FAST_INDEX = {"1": "2", "5": "6"}  # a BatchNorm's old index -> its index now
_FAST_BLOCKS = (("0", "2"), ("4", "6"))  # (conv, BatchNorm) of each block, today's indices


def _in_current_layout(model_name: str, state: dict[str, Any], expected_keys: set[str]) -> dict[str, Any]:
    """`state` in the registry's layout: a `fast` model saved in the old layout is moved into today's, with the same
    outputs; anything else is returned as it is (load_state_dict judges it).

    Why the outputs stay the same: max-pooling commutes with any per-channel function that never decreases, and
    BatchNorm (in eval mode, a per-channel affine map) followed by ReLU is one wherever BatchNorm's scale is ≥ 0.
    For a channel with a negative scale, the conv's filter, the scale and the running mean are negated: BatchNorm's
    output is unchanged, and now increasing in what the (bias-free) conv gives.
    """
    def renamed(key: str) -> str:
        index, dot, rest = key.partition(".")
        return _OLD_FAST_INDEX.get(index, index) + dot + rest

    if model_name != "fast" or set(state) == expected_keys or {renamed(key) for key in state} != expected_keys:
        return state
    moved = {renamed(key): value for key, value in state.items()}
    for conv, norm in _FAST_BLOCKS:
        filters, scale, mean = moved[f"{conv}.weight"], moved[f"{norm}.weight"], moved[f"{norm}.running_mean"]
        usable = (all(isinstance(t, torch.Tensor) and t.dtype in WEIGHT_DTYPES for t in (filters, scale, mean))
                  and filters.dim() == 4 and scale.shape == mean.shape == filters.shape[:1])
        if usable:  # (else load_state_dict or the dtype check names what is wrong)
            flipped = scale < 0
            moved[f"{conv}.weight"] = torch.where(flipped.view(-1, 1, 1, 1), -filters, filters)
            moved[f"{norm}.weight"] = torch.where(flipped, -scale, scale)
            moved[f"{norm}.running_mean"] = torch.where(flipped, -mean, mean)
    return moved


def _is_newer_format(stored_format: str) -> bool:
    """Whether "mnist-studio/N" is a later version than FORMAT's, compared as digit strings: int() refuses a number of
    over 4,300 digits, and a file can hold one."""
    def version(text: str) -> tuple[int, str]:
        digits = text.removeprefix("mnist-studio/").lstrip("0")
        return len(digits), digits

    stored = stored_format.removeprefix("mnist-studio/")
    return stored.isascii() and stored.isdigit() and version(stored_format) > version(FORMAT)


def _a(noun: str) -> str:
    """"a list", "an int": the type names that messages quote."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _kind_of(value: Any) -> str:
    """What a message calls the kind of a stored value: "an int", "a list"; None as itself (not "a NoneType")."""
    return "None" if value is None else _a(type(value).__name__)


def _first_problem(load_error: str) -> str:
    """The first concrete line of load_state_dict's error ("size mismatch for fc1.weight: ..."), shortened."""
    lines = [line.strip() for line in load_error.splitlines() if line.strip()]
    # without torch's own full stop: it goes inside the message's parenthesis ("…[32, 1, 5, 5]).): the weights…")
    detail = (lines[1] if len(lines) > 1 else (lines[0] if lines else "unknown difference")).rstrip(".")
    return detail if len(detail) <= 160 else detail[:157] + "..."


def _checked_history(history: Any) -> list[dict[str, Any]]:
    """The stored training curves, or [] when they are malformed (wrong types, missing keys, over
    MAX_HISTORY_RECORDS records): the weights are what matter, and a bad history would only break the charts and
    `evaluate` later with a traceback."""
    if not isinstance(history, list) or len(history) > MAX_HISTORY_RECORDS:  # (checked before anything is copied)
        return []
    for record in history:
        # (finite floats only: the app's charts compute with them, and an epoch of 10**400 was an OverflowError)
        if not isinstance(record, dict) or not all(_is_finite_float(record.get(key)) for key in HISTORY_KEYS):
            return []
    return [dict(record) for record in history]


@dataclass(frozen=True)
class _Number:
    """What a number in a checkpoint's metadata may be: finite, from `low` to `high`, not true/false (a bool is an
    int to Python, so True read as 1 second); `whole`: an int. Ints beyond int64 are refused at any bound: the app's
    tables (Arrow) cannot hold them, and an epoch of 2**70 made the Compare table an exception."""

    low: float = -sys.float_info.max
    high: float = sys.float_info.max
    whole: bool = False

    def admits(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int if self.whole else (int, float)):
            return False
        if isinstance(value, int) and not -2**63 <= value < 2**63:
            return False
        return self.low <= value <= self.high  # (False for nan; inf is beyond any bound)


@dataclass(frozen=True)
class _Text:
    """One line of text of at most MAX_TEXT_CHARS: what MNIST Studio writes in its text fields (a device, an optimizer,
    the time a file was saved). A 100,000-character or multi-line value is none of those."""

    def admits(self, value: Any) -> bool:
        return isinstance(value, str) and len(value) <= MAX_TEXT_CHARS and value.isprintable()


@dataclass(frozen=True)
class _Kind:
    kind: type

    def admits(self, value: Any) -> bool:
        return type(value) is self.kind  # (bool is exact: 1 is no true/false)


@dataclass(frozen=True)
class _Knobs:
    """A config's model_kwargs: the model's settings by name, each a number."""

    def admits(self, value: Any) -> bool:
        return isinstance(value, dict) and all(_TEXT.admits(key) and _NUMBER.admits(item)
                                               for key, item in value.items())


@dataclass(frozen=True)
class _Optional:
    inner: Any

    def admits(self, value: Any) -> bool:
        return value is None or self.inner.admits(value)


_NUMBER, _TEXT = _Number(), _Text()
# What each metric `TrainResult.metrics` writes may hold. The confidence floor is a probability (the unsure threshold).
_METRIC_RULES: dict[str, Any] = {
    "test_accuracy": _Number(0, 100), "test_loss": _Number(0), "train_seconds": _Number(0, 10**9),  # (32 years)
    "compile_seconds": _Number(0, 10**9), "epochs_done": _Number(0, MAX_EPOCHS), "confidence_floor": _Number(0, 1),
    "batches_done": _Number(0, 10**9, whole=True), "stopped": _Kind(bool), "device": _TEXT}


def _config_rules() -> dict[str, Any]:
    """What each TrainConfig field may hold in a checkpoint: its default's kind; the ranges `validate` keeps for the
    two the app shows (epochs, the training images). Other ranges are not checked here: they depend on each other
    (a batch size on the subset, Nesterov on the optimizer), and no page computes with them."""
    kinds = {bool: _Kind(bool), int: _Number(whole=True), float: _NUMBER, str: _TEXT, dict: _Knobs()}
    defaults = TrainConfig()
    rules = {field.name: kinds[type(getattr(defaults, field.name))] for field in fields(TrainConfig)
             if type(getattr(defaults, field.name)) in kinds}  # (a field of another kind is checked as plain)
    return {**rules, "epochs": _Number(0, MAX_EPOCHS), "train_subset": _Optional(_Number(2, TRAIN_SIZE, whole=True))}


_CONFIG_RULES = _config_rules()


def _cleaned(values: Any, rules: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's config or metrics, cleaned once on loading so no page or command meets an odd value: a known
    key is kept only when its value fits its rule; another key (a field of another version, say) only when it is
    plain (a number, one line of text, true/false or None). A dropped value reads as one the file never had: the
    model still loads, as it does without a history."""
    def fits(key: Any, value: Any) -> bool:
        if key in rules:
            return rules[key].admits(value)
        return (_TEXT.admits(key) and (value is None or isinstance(value, bool) or _NUMBER.admits(value)
                                       or _TEXT.admits(value)))

    return {key: value for key, value in _plain(values, dict).items() if fits(key, value)}


def _checked_config(config: Any) -> dict[str, Any]:
    """The stored training settings (`TrainConfig.to_dict`), cleaned (see `_cleaned`)."""
    return _cleaned(config, _CONFIG_RULES)


def _checked_metrics(metrics: Any) -> dict[str, Any]:
    """The stored metrics (`TrainResult.metrics`), cleaned (see `_cleaned`). Anything not plain (a tensor:
    `torch.zeros(1).expand(10**6, 10**6)` is a few bytes in the file) would reach the app's tables as an object, and
    a number no float holds (10**400) was an OverflowError in every reader that converts it."""
    return _cleaned(metrics, _METRIC_RULES)


def _is_finite_float(value: Any) -> bool:
    """Whether `value` is a number (not true/false) that a float holds and that is finite: what the app computes
    with. (The comparison refuses nan and inf, and, unlike math.isfinite, takes an int of any size.)"""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) <= sys.float_info.max


def _plain(value: Any, kind: type) -> Any:
    return value if isinstance(value, kind) else kind()
