"""Errors a user can cause and fix. Each carries one sentence that says what is wrong and what to do.

The CLI prints it on stderr and exits 2; the app shows it with `st.error`. Anything else is a bug.
Also the one place that puts a path's problem into words (`path_status`, `os_reason`), for every module that reads
user-named paths: model files, pictures, --out and the data root; and that undoes the folders a failed attempt made.
"""

from __future__ import annotations

import contextlib
import errno
import os
import reprlib
import stat
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # (only for the type: train imports this module)
    from mnist_core.train import TrainResult

MB = 1_000_000  # file sizes in messages and limits are decimal megabytes, as the app's upload widget shows them


def printable(text: str) -> str:
    """`text` safe to show on a terminal or a page: control and invisible format characters (an ANSI escape that
    would recolour or clear the terminal, a newline that would split a one-line message, a right-to-left override
    that would reorder it) are written as Python escapes (`\\x1b`, `\\n`, `\\u202e`), and the bytes of a name
    that is not UTF-8 (which Python keeps as lone surrogates, and a strict UTF-8 stdout refuses to print) as `\\xff`.
    Everything else (accents, `…`, `×`) is kept as is."""
    return "".join(_escaped(character) if unicodedata.category(character) in _HIDDEN_CATEGORIES else character
                   for character in text)


_HIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}  # controls, format, surrogates, line/paragraph separators


def _escaped(character: str) -> str:
    code = ord(character)
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's stand-in for an undecodable byte: show the byte itself
        return f"\\x{code - 0xDC00:02x}"
    return repr(character)[1:-1] if code < 0x100 else f"\\u{code:04x}"  # repr: \n, \t, \x1b


_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxstring = _SHORT_REPR.maxother = 60


def quoted(value: object) -> str:
    """`repr(value)` shortened for a message (`'mnist-studio/9999…9999'`, `{'width': inf}`): a file can hold a
    5,000-character string or a 5,000-digit number where a name belongs, and repr() refuses to write the latter."""
    try:
        return _SHORT_REPR.repr(value)
    except ValueError:  # an int past Python's 4,300-digit limit for str()
        return f"{type(value).__name__} too long to show"


SHOWN_CHARS = 120  # a word of a message longer than this (a pasted path, a name) is shown shortened
SHOWN_HEAD, SHOWN_TAIL = 60, 30  # …as its first and last characters around "…" (the tail keeps a suffix, a quote)
MESSAGE_CHARS = 1000  # a whole message longer than this (1,000 short words typed) is shortened the same way


def shortened(text: str, limit: int = SHOWN_CHARS, head: int = SHOWN_HEAD, tail: int = SHOWN_TAIL) -> str:
    """`text` whole if it has at most `limit` characters, else its first `head` and last `tail` characters around
    "…" (`'xxxxxxxx…xxxx' must look like …`): enough to recognise what was typed, and the end of a path (its file
    name) too."""
    return text if len(text) <= limit else f"{text[:head]}…{text[-tail:]}"


def message_text(message: str) -> str:
    """`message` as the user is shown it: each over-long word in it (a 100,000-character name, a path pasted twice)
    `shortened`, then the whole if still too long (a command line of 1,000 unknown words), and `printable`.

    Words are what the user typed: the message's own words are short, so only the user's strings are shortened,
    wherever a message quotes them (a path, a --model-kwarg, a model name, an unrecognised argument), without each
    message having to know which of its parts came from the user. Shortened before escaping, so an escape (`\\n`)
    is never cut in two."""
    words = " ".join(shortened(word) for word in message.split(" "))
    return printable(shortened(words, MESSAGE_CHARS, head=MESSAGE_CHARS * 6 // 10, tail=MESSAGE_CHARS * 3 // 10))


class StudioError(Exception):
    """A problem with the user's input or environment, explained in a message meant for people.

    The message is made `message_text` here, once for every error: it quotes paths, names and values the user gave.
    """

    def __init__(self, message: str = "") -> None:
        super().__init__(message_text(message))


class DataError(StudioError):
    """The MNIST files are missing, unreadable or corrupt."""


class CheckpointError(StudioError):
    """A model file cannot be loaded (or saved) safely."""


class ImageError(StudioError):
    """An image cannot be read or is unreasonable (too large, not an image...)."""


class ConfigError(StudioError):
    """Training settings that cannot work, refused before training starts."""


class TrainingDiverged(StudioError):
    """The loss became NaN/inf or exploded (`train.DivergenceWatch`). `result` holds the model with the last good
    weights."""

    def __init__(self, message: str, result: TrainResult | None = None) -> None:
        super().__init__(message)
        self.result = result


def os_reason(error: OSError) -> str:
    """The operating system's own words for `error` ("Permission denied"), with a hint where those words are cryptic."""
    reason = error.strerror or str(error) or type(error).__name__
    if error.errno == errno.ENOTDIR:  # `somefile/x.pt`: the OS only says "Not a directory"
        return f"{reason}: a file stands where one of its folders should be"
    if error.errno == errno.ELOOP:
        return f"{reason}: a symbolic link that points back to itself"
    return reason


FOLDER_NOT_FILE = "is a folder, not a file"  # `path_status` of a folder where a file was asked for


MISSING = "does not exist"  # `path_status` of a path that is not there (a hint in brackets may follow)


def _stray_blanks_hint(path: str | os.PathLike) -> str:
    """What to add to "does not exist" when only blanks around `path` make it missing (" (mind the space at its
    end: NAME without it exists)"), else "". A path pasted with a trailing space (`--checkpoint "model.pt "`, `MNIST_DATA_ROOT= /data`) was said not
    to exist, and the space is invisible in the message; a missing data root was even downloaded into."""
    text = os.fsdecode(path)
    trimmed = text.strip()
    if not trimmed or trimmed == text or not os.path.lexists(trimmed):
        return ""
    blanks = text[:len(text) - len(text.lstrip())] + text[len(text.rstrip()):]
    what = ("space" if set(blanks) == {" "} else "blank character") + ("" if len(blanks) == 1 else "s")
    where = " and ".join(end for end, extra in (("start", text[0].isspace()), ("end", text[-1].isspace())) if extra)
    return f" (mind the {what} at its {where}: {trimmed} without {'it' if len(blanks) == 1 else 'them'} exists)"


def path_status(path: str | os.PathLike, kind: str = "file", readable: bool = True) -> str | None:
    """None when `path` is a readable `kind` ("file" or "folder"); else what is wrong, worded to follow the path in a
    message ("PATH does not exist", "PATH cannot be read (Permission denied)"). `readable=False` skips the read test
    (a folder that is only written into may be write-only).

    Why not `Path.is_file()`: it answers False for a missing file, a permission problem, a file in the way of a folder
    and a looping symlink alike, and the user needs to know which one to fix it.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return ("is a broken symbolic link (what it points to does not exist)" if os.path.islink(path)
                else MISSING + _stray_blanks_hint(path))
    except (OSError, ValueError) as error:  # ValueError: a NUL byte in the path
        return f"cannot be reached ({os_reason(error) if isinstance(error, OSError) else error})"
    if kind == "folder":
        if not stat.S_ISDIR(info.st_mode):
            return "is a file, not a folder"
        opener = os.scandir
    else:
        if stat.S_ISDIR(info.st_mode):
            return FOLDER_NOT_FILE
        if not stat.S_ISREG(info.st_mode):  # opening a pipe would wait forever for a writer
            return "is not a regular file (a device, pipe or socket)"
        opener = open
    if not readable:
        return None
    try:
        with opener(path):  # the only sure test: permissions, ACLs and root's privileges all decide it
            pass
    except OSError as error:
        return f"cannot be read ({os_reason(error)})"
    return None


def missing_folders(folder: Path) -> list[Path]:
    """`folder` and those of its parents that do not exist yet, deepest first: what `mkdir(parents=True)` creates."""
    missing = []
    for path in (folder, *folder.parents):
        if os.path.lexists(path):  # (Path.exists() raises on a name too long for the file system)
            break
        missing.append(path)
    return missing


def remove_if_empty(folders: list[Path]) -> None:
    """Undo a failed attempt's folders (`missing_folders`), deepest first, so a mistyped or offline data root, or the
    --out of a run that failed, is not left behind as empty folders. `rmdir` removes only empty folders: one that holds
    anything (a partial download, a user's file) stays."""
    for folder in folders:
        with contextlib.suppress(OSError):  # not empty, or already gone: leave it be
            folder.rmdir()
