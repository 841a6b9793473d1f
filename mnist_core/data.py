"""MNIST as whole-split tensors that live on the training device.

The file has two halves. The first gets the four IDX files into DATA_ROOT/MNIST/raw/ and checks them: start at
`load_mnist` (which calls `ensure_mnist`: unpack, download, verify, and a fix in every error message);
`dataset_status` is the app's cheap look at the same folder. The second is the training pipeline: `MnistSplit`,
`batch_indices` (the batches of one epoch) and `prepare_batch` (normalisation, `augment`, and the outlier-exposure
scribbles of `random_scribbles`). Why no DataLoader: MNIST is 55 MB of uint8. Keeping each split as one tensor on
the device and slicing batches out of an on-device random permutation removes per-sample Python, worker processes
and host-to-device copies from the hot path. Normalisation and augmentation run batched on the device
(`affine_grid` + `grid_sample`), train split only.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import http.client
import math
import os
import socket
import ssl
import sys
import urllib.error
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from mnist_core.errors import MISSING, DataError, missing_folders, os_reason, path_status, remove_if_empty

MEAN, STD = 0.1307, 0.3081  # pixel statistics of the MNIST train split, as every seed uses
DEFAULT_DATA_ROOT = "./data"
DATA_ROOT_ENV = "MNIST_DATA_ROOT"

# name -> (bytes, sha256) of the uncompressed IDX files in torchvision's layout DIR/MNIST/raw/.
MNIST_FILES: dict[str, tuple[int, str]] = {
    "train-images-idx3-ubyte": (47040016, "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "train-labels-idx1-ubyte": (60008, "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "t10k-images-idx3-ubyte": (7840016, "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "t10k-labels-idx1-ubyte": (10008, "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}
TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")  # all that `evaluate` needs
_MISSING = {f"{name} missing" for name in MNIST_FILES}  # (matched whole: a data root's path may hold "missing")
_verified: dict[tuple[str, int, int], bool] = {}  # (path, size, mtime_ns) -> checksum ok, so we hash once per process

# A download waits at most this long for a connection or for the next bytes. torchvision opens its URLs with no
# timeout, so on a network that drops packets silently (a firewall, a captive portal) each file and mirror would wait
# for the system's TCP timeouts: minutes per page visit before "downloading it failed".
DOWNLOAD_STALL_SECONDS = 30.0


def resolve_data_root(data_root: str | os.PathLike | None = None) -> Path:
    """`--data-root` if given, else `$MNIST_DATA_ROOT` (unless empty, as an unset variable is), else `./data`."""
    if data_root is not None and not str(data_root).strip():
        # Path("") is ".": an unset variable in `--data-root "$DIR"` would quietly read (or download into) the cwd.
        raise DataError(f"the data root is empty: give the folder that holds MNIST/raw/, or leave --data-root out to "
                        f"use ${DATA_ROOT_ENV} or {DEFAULT_DATA_ROOT}")
    from_environment = os.environ.get(DATA_ROOT_ENV, "")
    if data_root is None and from_environment and not from_environment.strip():
        # Only spaces: a folder named "  " is no one's intent, and --data-root "  " is refused above.
        raise DataError(f"${DATA_ROOT_ENV} holds only spaces: set it to the folder that holds MNIST/raw/, or unset it "
                        f"to use {DEFAULT_DATA_ROOT}")
    chosen = data_root or from_environment or DEFAULT_DATA_ROOT
    return Path(chosen).expanduser()


def _root_problem(root: Path) -> str | None:
    """Why `root` cannot hold MNIST (a file, a file in the way of MNIST/raw, unreadable, a looping symlink), with the
    fix; None when it can — or does not exist yet, as a download creates it."""
    for folder in (root, root / "MNIST", raw_folder(root)):
        problem = path_status(folder, "folder")
        if problem == MISSING:  # (not when only blanks around it make it missing: no download into "data ")
            return None
        if problem and folder == root:
            return f"data root {root} {problem}: pass --data-root / {DATA_ROOT_ENV} pointing at a folder"
        if problem:
            return (f"{folder} {problem}: the data root keeps MNIST's files in the folder MNIST/raw/ inside it; move "
                    f"{folder.name} out of the way, or pass --data-root / {DATA_ROOT_ENV} pointing at another folder")
    return None


def raw_folder(root: Path) -> Path:
    """Where the IDX files live under a data root (torchvision's layout)."""
    return root / "MNIST" / "raw"


def _not_there(root: Path) -> str:
    """The start of a "cannot get MNIST" message: some of its files are in `root`, or none."""
    some = any((raw_folder(root) / name).is_file() for name in MNIST_FILES)
    return f"MNIST is {'incomplete' if some else 'not'} in {raw_folder(root)}"


def _fix_hint(root: Path, needed: tuple[str, ...]) -> str:
    """How to get the `needed` IDX files that are missing, each named: a copy under other names is not found."""
    missing = [name for name in needed if not (raw_folder(root) / name).is_file()]
    which = (f"MNIST's IDX files ({', '.join(missing)})" if len(missing) == len(needed) else
             f"the missing {'file' if len(missing) == 1 else 'files'} ({', '.join(missing)}; the others are there)")
    return (f"connect to the internet and retry (it downloads into {raw_folder(root)}), or copy {which} there, or "
            f"point --data-root / {DATA_ROOT_ENV} at a folder that has MNIST/raw/")


@dataclass(frozen=True)
class DatasetStatus:
    """What the app's sidebar says about the data root: `found`, `will download`, or `problem` with a fix."""

    root: Path
    state: str  # "found" | "will download" | "problem"
    message: str
    # For "problem": a few words for a status line, as the message (with its fix) is too long to repeat beside the
    # page that shows it. (Not compared: it follows from the same facts as the message.)
    summary: str = field(default="", compare=False)


def problem_summary(root: Path) -> str:
    """A few words on why the data in `root` cannot be used, judged by which of MNIST's files are there: for a status
    line beside the full message (a failed download or a corrupt file, which `dataset_status` cannot see)."""
    folder = raw_folder(root)
    there = [name for name in MNIST_FILES if (folder / name).is_file() or (folder / f"{name}.gz").is_file()]
    if not there:
        return "MNIST is missing and could not be downloaded"
    if len(there) < len(MNIST_FILES):
        return "MNIST is incomplete and could not be downloaded"
    return "MNIST's files cannot be used"


def dataset_status(data_root: str | os.PathLike | None = None) -> DatasetStatus:
    """A cheap look (sizes only, no hashing) at whether the data is there (both splits: the app trains too)."""
    try:
        root = resolve_data_root(data_root)
    except DataError as error:  # (a root of only spaces)
        return DatasetStatus(Path(str(data_root or os.environ.get(DATA_ROOT_ENV, ""))), "problem", str(error),
                             "The data root is not valid")
    problem = _root_problem(root)
    if problem:
        return DatasetStatus(root, "problem", problem, "The data root is not a usable folder")
    problems = _size_problems(root, tuple(MNIST_FILES))
    if not problems:
        return DatasetStatus(root, "found", f"MNIST found in {raw_folder(root)}")
    if all(p in _MISSING for p in problems):
        folder = raw_folder(root)
        # Neither unpacked nor gzipped (a .gz beside a missing file is unpacked on first use).
        absent = [name for name in MNIST_FILES
                  if not (folder / name).is_file() and not (folder / f"{name}.gz").is_file()]
        if not absent:
            return DatasetStatus(root, "found", f"MNIST found gzipped in {folder}; unpacked there on first use")
        misplaced = _misplaced_files_message(root, tuple(MNIST_FILES))
        if misplaced:
            return DatasetStatus(root, "problem", misplaced, "MNIST's files are misplaced or misnamed")
        if len(absent) < len(MNIST_FILES):  # a copy cut short: "not there yet" would hide the files it has
            return DatasetStatus(root, "will download", f"MNIST is incomplete in {folder} ({', '.join(absent)} "
                                 f"missing); the missing files download on first use")
        return DatasetStatus(root, "will download", f"MNIST is not in {folder} yet; it downloads on first use")
    return DatasetStatus(root, "problem", _damaged_message(problems), "MNIST's files are damaged")


def _damaged_message(problems: list[str]) -> str:
    """The files that are there but wrong, each with what is wrong, then those missing beside them (a copy cut
    short leaves both)."""
    damaged = [problem for problem in problems if problem not in _MISSING]
    missing = [problem.removesuffix(" missing") for problem in problems if problem in _MISSING]
    if not missing:
        return ("MNIST files are damaged: " + "; ".join(damaged)
                + ". Replace them with good copies (nothing was deleted).")
    return ("MNIST files are damaged: " + "; ".join(damaged) + f"; {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} missing. Replace the damaged files with good copies and copy the "
            f"missing ones there (nothing was deleted).")


def _misplaced_files_message(root: Path, needed: tuple[str, ...]) -> str | None:
    """Common slips: pointing the data root at the IDX files' own folder (or one level off) instead of the folder
    that holds MNIST/raw/, and files named as Kaggle names them (`train-images.idx3-ubyte`, a dot before "idx").
    Say where the files are and what to do, rather than trying to download."""
    for folder in (raw_folder(root), root, root / "raw", root / "MNIST"):
        dotted = [name for name in needed if (folder / _dotted(name)).is_file() and not (folder / name).is_file()]
        if dotted:
            move = "" if folder == raw_folder(root) else f", in {raw_folder(root)}"
            return (f"MNIST's files in {folder} are named with a dot before \"idx\" ({_dotted(dotted[0])}, as Kaggle "
                    f"names them), and MNIST Studio reads torchvision's names, with a dash ({dotted[0]}): rename "
                    f"{'it' if len(dotted) == 1 else 'them'} to {', '.join(dotted)}{move}")
    for folder in (root, root / "raw", root / "MNIST"):
        if (folder / needed[0]).is_file():
            if folder.name == "raw" and folder.parent.name == "MNIST":
                fix = f"use --data-root / {DATA_ROOT_ENV} {folder.parent.parent}"
            else:
                fix = f"move them into {raw_folder(root)}"
            return (f"the MNIST files are in {folder}, but the data root must hold them in MNIST/raw/ "
                    f"(torchvision's layout): {fix}")
    return None


def _dotted(name: str) -> str:
    """Kaggle's name for an IDX file: `train-images.idx3-ubyte` for `train-images-idx3-ubyte`."""
    return name.replace("-idx", ".idx")


def _size_problems(root: Path, needed: tuple[str, ...]) -> list[str]:
    """What is wrong with each `needed` IDX file: `_MISSING` entries for files that are not there, sentences for the
    rest."""
    problems = []
    for name in needed:
        size = MNIST_FILES[name][0]
        path = raw_folder(root) / name
        problem = path_status(path, readable=False)
        if problem == MISSING:
            problems.append(f"{name} missing")
        elif problem:
            # A folder, a pipe or /dev/zero under that name is not "missing": a download would not replace it (or
            # would hang writing into it), and "copy the missing file" would send the user looking for the wrong thing.
            problems.append(f"{path} {problem}")
        elif path.stat().st_size != size:
            problems.append(f"{path} has {path.stat().st_size} bytes, expected {size} (truncated or not MNIST)")
    return problems



def _verify_checksums(root: Path, needed: tuple[str, ...]) -> None:
    """Raise DataError unless each `needed` file has MNIST's SHA-256 (hashed once per process per file version)."""
    for name in needed:
        sha256 = MNIST_FILES[name][1]
        path = raw_folder(root) / name
        key = _verified_key(path)
        if key not in _verified:
            digest = hashlib.sha256()
            try:
                with open(path, "rb") as handle:
                    for chunk in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(chunk)
            except OSError as error:
                raise DataError(f"cannot read {path} ({os_reason(error)}): check its permissions") from None
            _verified[key] = digest.hexdigest() == sha256
        if not _verified[key]:
            raise DataError(f"{path} is corrupt (its SHA-256 is not MNIST's): replace it with a fresh copy "
                            f"(move it away and let the app download it again, or copy it from a good source)")


def _verified_key(path: Path) -> tuple[str, int, int]:
    """What `_verified` remembers a file by: a file replaced or touched since is hashed again."""
    stat = path.stat()
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


def ensure_mnist(data_root: str | os.PathLike | None = None, download: bool = True, with_train: bool = True) -> Path:
    """Make sure the verified IDX files are in `root/MNIST/raw` (all four, or only the test split's without
    `with_train`), downloading the missing ones if allowed.

    Deletes nothing it did not make: a truncated or tampered file is reported, not replaced, and a failed download
    removes only the folders it created that are still empty.
    """
    needed = tuple(MNIST_FILES) if with_train else TEST_FILES
    root = resolve_data_root(data_root)
    problem = _root_problem(root)
    if problem:
        raise DataError(problem)
    problems = _size_problems(root, needed)
    missing_only = problems and all(p in _MISSING for p in problems)
    if problems and not missing_only:
        raise DataError(_damaged_message(problems))
    if missing_only and _unpack_archives(root, needed):
        missing_only = bool(_size_problems(root, needed))
    if missing_only:
        misplaced = _misplaced_files_message(root, needed)
        if misplaced:
            raise DataError(misplaced)
        if not download:
            raise DataError(f"{_not_there(root)}: {_fix_hint(root, needed)}")
        _download(root, needed)
    _verify_checksums(root, needed)
    return root


def _unpack_archives(root: Path, needed: tuple[str, ...]) -> bool:
    """Unpack `NAME.gz` beside each missing IDX file (MNIST is published gzipped, and people keep those four files).

    Each is checked before it is written: at most its known size is unpacked (a damaged or swapped archive cannot
    fill the disk), and only MNIST's own bytes (size and SHA-256) are written, to a temporary name renamed once
    complete. An archive of other contents (Fashion-MNIST's files have MNIST's names and sizes) is named as the
    culprit: the unpacked file, blamed instead, would have been unpacked from it again once moved away. Returns
    whether anything was unpacked.
    """
    folder, unpacked = raw_folder(root), False
    for name in needed:
        size, sha256 = MNIST_FILES[name]
        target, archive = folder / name, folder / f"{name}.gz"
        if target.exists() or not archive.is_file():
            continue
        replace_archive = "replace it with a good copy (nothing was deleted)"
        try:
            with gzip.open(archive, "rb") as source:
                data = source.read(size + 1)
        except (gzip.BadGzipFile, EOFError, zlib.error) as error:  # the archive's own fault: gunzip would fail too
            # (A download cut short, by Ctrl-C say, leaves such a .gz behind: deleting it lets the next run fetch it.)
            raise DataError(f"{archive} is not a complete gzip archive ({error}): replace it with a good copy, or "
                            f"delete it to download it again (nothing was deleted)") from None
        except OSError as error:
            raise DataError(f"cannot read {archive} ({os_reason(error)}): check its permissions") from None
        if len(data) != size:
            raise DataError(f"{archive} does not unpack to MNIST's {name} ({len(data)} bytes, expected {size}): "
                            f"{replace_archive}")
        if hashlib.sha256(data).hexdigest() != sha256:
            raise DataError(f"{archive} does not unpack to MNIST's {name} (its SHA-256 is not MNIST's: another "
                            f"dataset, such as Fashion-MNIST, or a damaged copy): {replace_archive}")
        partial = folder / f".{name}.unpacking"
        try:
            with open(partial, "wb") as out:
                out.write(data)
            os.replace(partial, target)
            _verified[_verified_key(target)] = True  # (checked above: no need to read it back)
            unpacked = True
        except OSError as error:
            raise DataError(f"cannot unpack {archive} ({os_reason(error)}): unpack the four .gz files there yourself "
                            f"(gunzip), or point --data-root / {DATA_ROOT_ENV} at a folder that has "
                            f"MNIST/raw/") from None
        finally:
            partial.unlink(missing_ok=True)
    return unpacked


def _download(root: Path, needed: tuple[str, ...]) -> None:
    """`_fetch` the `needed` files, leaving no folders it created behind if that fails."""
    created = missing_folders(raw_folder(root))
    try:
        _fetch(root, needed)
    except BaseException:  # failed or interrupted: leave no empty folders behind (see errors.remove_if_empty)
        remove_if_empty(created)
        raise


def _fetch(root: Path, needed: tuple[str, ...]) -> None:
    """Download each missing `needed` file into the raw folder; DataError, with the reason in plain words, if any
    fails."""
    folder = raw_folder(root)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"MNIST is not in {folder} and that folder cannot be created to download it "
                        f"({os_reason(error)}): choose a writable --data-root or {DATA_ROOT_ENV}, or copy MNIST's "
                        f"IDX files ({', '.join(needed)}) there") from None
    try:
        # torchvision prints its progress on stdout; keep stdout for results (the CLI's last line is JSON).
        with contextlib.redirect_stdout(sys.stderr), _socket_timeout(DOWNLOAD_STALL_SECONDS):
            for name in needed:
                if not (folder / name).is_file():
                    _fetch_file(name, folder)
    except Exception as error:  # torchvision raises RuntimeError/URLError/OSError depending on what failed
        raise DataError(f"{_not_there(root)} and downloading it failed ({_reason(error)}): "
                        f"{_fix_hint(root, needed)}") from None
    if _size_problems(root, needed):
        raise DataError(f"the MNIST download into {folder} is incomplete: {_fix_hint(root, needed)}")


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """The process's default socket timeout, the only one torchvision's downloads obey, for the `with` block."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _fetch_file(name: str, folder: Path) -> None:
    """Download and unpack one IDX file from torchvision's MNIST mirrors (torchvision's MNIST(download=True) fetches
    all four: `evaluate` needs only the test split's two)."""
    from torchvision.datasets import MNIST  # torchvision is heavy; import only when needed
    from torchvision.datasets.utils import download_and_extract_archive

    archive, md5 = next((archive, md5) for archive, md5 in MNIST.resources if archive == f"{name}.gz")
    for mirror in MNIST.mirrors:
        try:
            download_and_extract_archive(f"{mirror}{archive}", download_root=str(folder), filename=archive, md5=md5)
            return
        except Exception:
            if mirror == MNIST.mirrors[-1]:
                raise  # (the last mirror's reason is the one reported)


def _reason(error: BaseException) -> str:
    """Why the download failed, in plain words ("no network: Name or service not known"): urllib's own words are a
    Python repr ("<urlopen error [Errno -2] Name or service not known>"), and the user needs to know which of a few
    things went wrong (no network, a silent or refusing server, a connection cut off) to know what to try."""
    if isinstance(error, urllib.error.HTTPError):  # (a URLError too: first)
        return f"the download server answered HTTP {error.code} {error.reason}".rstrip()
    if isinstance(error, urllib.error.URLError):
        if not isinstance(error.reason, BaseException):
            return f"no connection to the download server: {error.reason}"
        error = error.reason  # what urlopen ran into, said below
    if isinstance(error, TimeoutError):  # (socket.timeout: our DOWNLOAD_STALL_SECONDS, or the system's own)
        waited = f"no answer for {DOWNLOAD_STALL_SECONDS:g} s" if error.errno is None else os_reason(error)
        return f"the download timed out: {waited}"
    if isinstance(error, socket.gaierror):  # the server's name cannot be looked up: offline, as a rule
        return f"no network: {error.strerror or str(error)}"
    if isinstance(error, OSError) and error.errno in (errno.ENETUNREACH, errno.ENETDOWN, errno.EHOSTUNREACH):
        return f"no network: {os_reason(error)}"
    if isinstance(error, ssl.SSLError):  # (an OSError: first) e.g. a proxy that shows its own certificate
        detail = (getattr(error, "verify_message", None) or getattr(error, "reason", None) or error.strerror
                  or type(error).__name__)
        return f"no secure connection to the download server: {detail}"
    if isinstance(error, ConnectionRefusedError):
        return "the download server refused the connection"
    if isinstance(error, ConnectionError):  # reset, aborted, broken pipe, closed without an answer
        return f"the connection broke off: {error.strerror or str(error) or type(error).__name__}"
    if isinstance(error, http.client.IncompleteRead):
        return (f"the connection broke off after {len(error.partial):,} bytes, {error.expected:,} more were "
                f"expected")
    if isinstance(error, RuntimeError) and str(error) == "File not found or corrupted.":
        # torchvision's words when the downloaded file's MD5 is not the one expected
        return "the downloaded file is cut short or is not MNIST's: its checksum does not match"
    if isinstance(error, OSError):  # a local one, such as a full disk
        return os_reason(error)
    # torchvision lists every mirror it tried; the last line says what went wrong with the last one
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return (lines[-1] if lines else type(error).__name__)[:160]


@dataclass
class MnistSplit:
    """One split as two tensors: images uint8 [N, 28, 28] and labels int64 [N], on one device."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: torch.device | str) -> "MnistSplit":
        return MnistSplit(self.images.to(device, non_blocking=True), self.labels.to(device, non_blocking=True))

    def subset(self, count: int) -> "MnistSplit":
        """The first `count` samples (for quick runs and tests)."""
        return MnistSplit(self.images[:count], self.labels[:count])


@dataclass
class Mnist:
    """Both splits, as `load_mnist` returns them (on the CPU until `.to(device)`)."""

    train: MnistSplit
    test: MnistSplit

    def to(self, device: torch.device | str) -> "Mnist":
        return Mnist(self.train.to(device), self.test.to(device))


def load_mnist(data_root: str | os.PathLike | None = None, download: bool = True, with_train: bool = True) -> Mnist:
    """Both splits as CPU tensors, read once from the verified IDX files. Without `with_train` only the test split's
    files are needed (and downloaded if missing), and `train` is empty: what `evaluate` uses."""
    root = ensure_mnist(data_root, download=download, with_train=with_train)
    test = _read_split(root, "t10k")
    return Mnist(_read_split(root, "train") if with_train else test.subset(0), test)


def _read_split(root: Path, prefix: str) -> MnistSplit:
    """The split whose IDX files start with `prefix` ("train", "t10k"), as torchvision's MNIST reads them."""
    from torchvision.datasets.mnist import read_image_file, read_label_file  # heavy; import only when needed

    folder = raw_folder(root)
    try:
        images = read_image_file(str(folder / f"{prefix}-images-idx3-ubyte"))
        labels = read_label_file(str(folder / f"{prefix}-labels-idx1-ubyte"))
    except Exception as error:
        raise DataError(f"cannot read MNIST from {folder} ({error}): replace the files with good copies") from None
    return MnistSplit(images.contiguous(), labels.long())


def normalize(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 28, 28] (or [N, 1, 28, 28]) -> float [N, 1, 28, 28], standardised like training."""
    images = images_uint8.float().div_(255.0)
    if images.dim() == 3:
        images = images.unsqueeze(1)
    return _standardize(images)


def _standardize(images: torch.Tensor) -> torch.Tensor:
    """Pixels in [0, 1] -> zero mean and unit variance over the train split, in place."""
    return images.sub_(MEAN).div_(STD)


@dataclass(frozen=True)
class Augmentation:
    """Random affine jitter for training images. Seeds 003/004 rotate by ±7°…±15°.

    rotation: max degrees either way; translate: max shift as a fraction of the image side; scale: max relative zoom;
    shear: max slant in degrees either way (vertical strokes lean, horizontal ones stay level, as in italic writing).
    """

    rotation: float = 0.0
    translate: float = 0.0
    scale: float = 0.0
    shear: float = 0.0

    @property
    def enabled(self) -> bool:
        return self.rotation > 0 or self.translate > 0 or self.scale > 0 or self.shear > 0


def augment(images: torch.Tensor, augmentation: Augmentation, generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply one random affine transform per image, batched on the images' device.

    `images` is float [N, 1, 28, 28] in [0, 1] (background 0), so zero padding at the borders is background.
    """
    if not augmentation.enabled:
        return images
    count, device = images.shape[0], images.device

    def uniform(limit: float) -> torch.Tensor:
        return (torch.rand(count, device=device, generator=generator) * 2 - 1) * limit

    angle = uniform(math.radians(augmentation.rotation))
    zoom = 1 + uniform(augmentation.scale)
    shift_x, shift_y = uniform(augmentation.translate * 2), uniform(augmentation.translate * 2)  # grid spans [-1, 1]
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    # theta maps each output pixel to where it samples the input: rotation·shear/zoom, then the shift.
    top_left, top_right, bottom_left, bottom_right = cos, -sin, sin, cos
    if augmentation.shear > 0:  # drawn only when asked: runs without shear keep their random stream (and results)
        slant = torch.tan(uniform(math.radians(augmentation.shear)))  # x moves by slant·y: a sheared upright stroke
        top_right, bottom_right = cos * slant - sin, sin * slant + cos
    theta = torch.stack([torch.stack([top_left, top_right, shift_x], 1),
                         torch.stack([bottom_left, bottom_right, shift_y], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def prepare_batch(images_uint8: torch.Tensor, augmentation: Augmentation | None = None,
                  generator: torch.Generator | None = None, scribbles: int = 0,
                  scribble_shapes: str = "zigzag") -> torch.Tensor:
    """uint8 batch -> (augmented) normalised float batch, all on the batch's device.

    `scribbles` random scribbles are appended after the images and go through the same augmentation, so nothing
    but their shape (not, say, the blur of resampling) tells them apart from digits. `scribble_shapes`: see
    `random_scribbles`.
    """
    images = images_uint8.float().div_(255.0).unsqueeze(1)
    if scribbles:
        images = torch.cat([images, random_scribbles(scribbles, images.device, generator, scribble_shapes)])
    if augmentation is not None and augmentation.enabled:
        augmented = augment(images, augmentation, generator)
        if scribbles:
            # Resampling blurs a little. Were every training image blurred, test digits and canvas drawings (never
            # resampled) would look new to the model, and with scribbles in training it learns to call anything
            # new "no digit": 98.35 % test accuracy instead of 99.44 % (measured). So half of the images, digits
            # and scribbles alike, stay as drawn.
            as_drawn = torch.rand(images.shape[0], 1, 1, 1, device=images.device, generator=generator) < 0.5
            augmented = torch.where(as_drawn, images, augmented)
        images = augmented
    return _standardize(images)


# What `random_scribbles` draws: "zigzag" only, or "mixed" (half zig-zags, a quarter each of the two other families).
SCRIBBLE_SHAPES = ("zigzag", "mixed")
Uniform = Callable[..., torch.Tensor]  # uniform(*shape, low=0.0, high=1.0) on the scribbles' device and generator


def random_scribbles(count: int, device: torch.device, generator: torch.Generator | None = None,
                     shapes: str = "zigzag") -> torch.Tensor:
    """float [count, 1, 28, 28] in [0, 1]: random pen strokes that are not digits, drawn on the device.

    "zigzag": one polyline through 5–10 random points each. "mixed" adds two other generic families: a closed
    wobbly loop with 1–3 small marks inside (dots, short or bent strokes) — a loop alone would be a 0, the marks
    make it none — and 2–3 straight strokes crossing near one point. Each is fitted into the 20×20 centre where
    MNIST's digits sit and drawn with an anti-aliased pen 2–3.6 px wide like MNIST's. Used for outlier exposure
    (`TrainConfig.scribbles`). Everything stays on the device (no host sync), so it costs training nothing but the
    drawing itself.
    """
    if shapes not in SCRIBBLE_SHAPES:
        raise ValueError(f"unknown scribble shapes {shapes!r}: choose {', '.join(SCRIBBLE_SHAPES)}")

    def uniform(*shape: int, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
        return low + (high - low) * torch.rand(*shape, device=device, generator=generator)

    segments = _zigzag_segments(count, uniform, device, generator)
    if shapes == "mixed":
        families = [segments, _loop_with_marks_segments(count, uniform, device),
                    _crossing_segments(count, uniform)]
        most_segments = max(family.shape[1] for family in families)
        # Padded by repeating a family's last segment: drawn twice, it adds no ink.
        families = [torch.cat([f, f[:, -1:].expand(-1, most_segments - f.shape[1], -1, -1)], 1) for f in families]
        which = uniform(count, 1, 1, 1)
        segments = torch.where(which < 0.5, families[0], torch.where(which < 0.75, families[1], families[2]))
    return _draw_segments(segments, uniform(count, 1, low=1.0, high=1.8), device)


def _zigzag_segments(count: int, uniform: Uniform, device: torch.device,
                     generator: torch.Generator | None) -> torch.Tensor:
    """[count, 9, 2, 2] (start and end x, y of each segment): one polyline through 5–10 random points."""
    most_points = 10
    points = uniform(count, most_points, 2)  # x, y in [0, 1]
    # 5–10 points each: the path stops at its last point (later ones repeat it, adding segments of length 0).
    corners = torch.randint(5, most_points + 1, (count, 1), device=device, generator=generator)
    used = torch.minimum(torch.arange(most_points, device=device)[None], corners - 1)
    points = points.gather(1, used[..., None].expand(-1, -1, 2))
    points[:, :, 0] *= torch.where(uniform(count, 1) < 0.5, uniform(count, 1, low=0.5), 1.0)  # some narrower
    return torch.stack([points[:, :-1], points[:, 1:]], 2)


def _loop_with_marks_segments(count: int, uniform: Uniform, device: torch.device, corners: int = 20,
                              marks: int = 3) -> torch.Tensor:
    """[count, corners + 2·marks, 2, 2]: a closed loop (an ellipse of random aspect and tilt whose radius wobbles by
    up to ±20 %) and 1–3 marks well inside it, each two segments: a dot, a short stroke or a bent one."""
    turn = (torch.arange(corners + 1, device=device) / corners)[None] * 2 * math.pi
    turn = turn + uniform(count, 1) * 2 * math.pi  # where the pen starts
    wobble = 1 + 0.1 * (uniform(count, 1, low=-1) * torch.cos(2 * turn + uniform(count, 1) * 2 * math.pi)
                        + uniform(count, 1, low=-1) * torch.cos(3 * turn + uniform(count, 1) * 2 * math.pi))
    aspect = uniform(count, 1, low=0.55, high=1.4)  # height / width
    loop = torch.stack([torch.cos(turn) * wobble, torch.sin(turn) * wobble * aspect], -1)  # [count, corners + 1, 2]
    tilt = uniform(count, 1, 1, low=-0.6, high=0.6)
    rotation = torch.cat([torch.cat([torch.cos(tilt), -torch.sin(tilt)], -1),
                          torch.cat([torch.sin(tilt), torch.cos(tilt)], -1)], 1)  # [count, 2, 2]
    loop = loop @ rotation.transpose(1, 2)
    # Marks start within 40 % of the radius and reach at most 2 × 30 % further: inside the loop (which keeps ≥ 80 %
    # of it), or just touching it.
    radius, angle = 0.4 * uniform(count, marks).sqrt(), uniform(count, marks) * 2 * math.pi
    first = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle) * aspect], -1)  # [count, marks, 2]
    length = uniform(count, marks, 1, low=0.12, high=0.3) * (uniform(count, marks, 1) < 0.6)  # 40 %: a dot
    heading = uniform(count, marks, 1) * 2 * math.pi
    bend = heading + uniform(count, marks, 1, low=-1.5, high=1.5)
    middle = first + length * torch.cat([torch.cos(heading), torch.sin(heading)], -1)
    last = middle + length * torch.cat([torch.cos(bend), torch.sin(bend)], -1)
    mark_points = torch.stack([first, middle, last], 2) @ rotation[:, None].transpose(2, 3)  # [count, marks, 3, 2]
    # The first mark always; the others with even odds. An absent mark collapses onto the loop's start: no new ink.
    present = torch.cat([torch.ones(count, 1, device=device, dtype=torch.bool), uniform(count, marks - 1) < 0.5], 1)
    mark_points = torch.where(present[..., None, None], mark_points, loop[:, :1, None])
    loop_segments = torch.stack([loop[:, :-1], loop[:, 1:]], 2)
    mark_segments = torch.stack([mark_points[:, :, :-1], mark_points[:, :, 1:]], 3).flatten(1, 2)
    return torch.cat([loop_segments, mark_segments], 1)


def _crossing_segments(count: int, uniform: Uniform, strokes: int = 3) -> torch.Tensor:
    """[count, 3, 2, 2]: 2–3 straight strokes, each passing within 0.2 of one point, with arms of 30–100 % on
    either side (an X, a cross, an asterisk, lopsided or not). Their directions are spread over the half-turn (±17°
    each): two near-parallel strokes would be a 1 drawn twice, which must stay a digit."""
    used = torch.where(uniform(count, 1, 1) < 0.5, 2.0, 3.0)  # strokes drawn (a third one absent repeats the first)
    spread = torch.arange(strokes, device=used.device)[None, :, None] * math.pi / used
    heading = uniform(count, 1, 1) * math.pi + spread + uniform(count, strokes, 1, low=-0.3, high=0.3)
    direction = torch.cat([torch.cos(heading), torch.sin(heading)], -1)
    through = uniform(count, strokes, 2, low=-0.2, high=0.2)
    starts = through - uniform(count, strokes, 1, low=0.3) * direction
    ends = through + uniform(count, strokes, 1, low=0.3) * direction
    segments = torch.stack([starts, ends], 2)
    return torch.cat([segments[:, :2], torch.where(used[..., None] > 2, segments[:, 2:], segments[:, :1])], 1)


def _draw_segments(segments: torch.Tensor, half_width: torch.Tensor, device: torch.device) -> torch.Tensor:
    """[count, segments, 2 (start, end), 2 (x, y)] in any units -> float [count, 1, 28, 28]: the pen path fitted into
    the centre like MNIST (and the Sketch page) fit a digit, long side 18 px + the pen, drawn `half_width` px."""
    count = segments.shape[0]
    points = segments.flatten(1, 2)
    low, high = points.amin(1, keepdim=True)[:, :, None], points.amax(1, keepdim=True)[:, :, None]
    span = (high - low).amax(-1, keepdim=True).clamp(min=1e-3)
    segments = (segments - low) * (18 / span) + (28 - (high - low) * (18 / span)) / 2
    starts, ends = segments[:, :, None, 0], segments[:, :, None, 1]  # [count, segments, 1, 2]
    ys, xs = torch.meshgrid(torch.arange(28, device=device, dtype=torch.float32) + 0.5,
                            torch.arange(28, device=device, dtype=torch.float32) + 0.5, indexing="ij")
    pixels = torch.stack([xs.flatten(), ys.flatten()], 1)[None, None]  # [1, 1, 784, 2]
    along = ends - starts
    t = ((pixels - starts) * along).sum(-1) / along.pow(2).sum(-1).clamp(min=1e-6)
    nearest = starts + t.clamp(0, 1)[..., None] * along
    distance = (pixels - nearest).norm(dim=-1).amin(1)  # [count, 784]: to the closest segment
    ink = (half_width + 0.5 - distance).clamp(0, 1)  # one pixel of soft edge, as a scanned pen stroke
    return ink.view(count, 1, 28, 28)


def batch_indices(count: int, batch_size: int, device: torch.device, generator: torch.Generator | None = None,
                  shuffle: bool = True) -> Iterator[torch.Tensor]:
    """Index tensors for one epoch: slices of an on-device permutation.

    A last batch of one sample is dropped: BatchNorm cannot train on a single value per channel.
    """
    order = (torch.randperm(count, device=device, generator=generator) if shuffle
             else torch.arange(count, device=device))
    for start in range(0, count, batch_size):
        indices = order[start:start + batch_size]
        if indices.numel() > 1 or count == 1:
            yield indices


def batches_per_epoch(count: int, batch_size: int) -> int:
    """How many batches `batch_indices` yields for `count` images (a last batch of one image is dropped, unless
    it is the only one)."""
    full, rest = divmod(count, batch_size)
    return full + (1 if rest > 1 or (rest == 1 and count == 1) else 0)
