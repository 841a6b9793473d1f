"""Issue 6, data: a missing root offline, damaged or tampered IDX files, a read-only folder, a root that is a file.
Each is one clear message that names the folder and the fix, and nothing is ever deleted or rewritten."""

from __future__ import annotations

import errno
import gzip
import hashlib
import http.client
import http.server
import json
import os
import random
import re
import shutil
import socket
import ssl
import stat
import struct
import urllib.error
from pathlib import Path

import pytest

from cli_support import RUNNING_AS_ROOT, assert_json_error, assert_one_line_error
from mnist_core import data
from mnist_core.cli import main
from mnist_core.data import (MNIST_FILES, TEST_FILES, DatasetStatus, _unpack_archives, dataset_status, ensure_mnist,
                             load_mnist, problem_summary, raw_folder)
from mnist_core.errors import DataError
from tests.conftest import fake_mnist_files


@pytest.fixture()
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No network, as on a plane: name lookups and connections fail at once."""
    def no_network(*args, **kwargs):
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)


def _snapshot(folder: Path) -> dict[str, tuple[int, str]]:
    """Every file under `folder`: size and SHA-256 (to prove nothing was deleted or rewritten)."""
    return {str(p.relative_to(folder)): (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_missing_data_offline_names_the_folder_and_the_fix(tmp_path: Path, offline: None) -> None:
    root = tmp_path / "data"
    with pytest.raises(DataError) as missing:
        load_mnist(root)
    message = str(missing.value)
    assert f"MNIST is not in {raw_folder(root)} and downloading it failed" in message
    # (it quoted urllib's repr: "(<urlopen error [Errno -3] Temporary failure in name resolution>)")
    assert "downloading it failed (no network: Temporary failure in name resolution): " in message
    assert "connect to the internet and retry" in message and "--data-root / MNIST_DATA_ROOT" in message


def test_the_cli_says_the_same_on_one_line_with_exit_2(tmp_path: Path, offline: None,
                                                       capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "data"
    code = main(["evaluate", "--data-root", str(root), "--json"])
    captured = capsys.readouterr()
    line = assert_one_line_error(code, captured.err, str(raw_folder(root)), "connect to the internet")
    assert_json_error(captured.out, line)


def test_a_failed_download_leaves_no_empty_folders_behind(tmp_path: Path, offline: None) -> None:
    root = tmp_path / "not" / "there" / "yet"
    with pytest.raises(DataError, match="downloading it failed"):
        load_mnist(root)
    assert list(tmp_path.iterdir()) == []  # not/there/yet/MNIST/raw, all created by the attempt, are gone again


def test_a_failed_download_keeps_every_folder_that_existed(tmp_path: Path, offline: None) -> None:
    (tmp_path / "notes.txt").write_text("the user's own file")
    (tmp_path / "MNIST").mkdir()  # there before, empty: not the attempt's to remove
    with pytest.raises(DataError, match="downloading it failed"):
        load_mnist(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["MNIST", "notes.txt"]
    assert list((tmp_path / "MNIST").iterdir()) == []  # only the raw/ folder the attempt made is gone


def test_a_failed_download_keeps_folders_that_now_hold_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing that holds a file is ever deleted, even when this attempt made the folder (here: a partial file)."""
    import torchvision.datasets.utils

    def half_done_download(url: str, download_root: str, filename: str, **kwargs) -> None:
        (Path(download_root) / filename).write_bytes(b"\x1f\x8b partial")
        raise RuntimeError(f"Error downloading {filename}:\nconnection reset by peer")

    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", half_done_download)
    root = tmp_path / "data"
    with pytest.raises(DataError, match="downloading it failed \\(connection reset by peer\\)"):
        ensure_mnist(root)
    assert [p.name for p in raw_folder(root).iterdir()] == ["train-images-idx3-ubyte.gz"]


def test_a_download_from_a_server_that_never_answers_gives_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture) -> None:
    """torchvision opens its URLs with no timeout: on a network that swallows packets each file and mirror waited for
    the system's TCP timeouts, minutes per page visit. Here the mirror takes the connection and never says a word."""
    import time

    import torchvision.datasets

    silent = socket.create_server(("127.0.0.1", 0))  # accepts (the kernel does) but never answers
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", [f"http://127.0.0.1:{silent.getsockname()[1]}/"])
    monkeypatch.setattr(data, "DOWNLOAD_STALL_SECONDS", 0.5)
    started = time.monotonic()
    with silent, pytest.raises(DataError, match=r"downloading it failed \(the download timed out: no answer for "
                                                r"0.5 s\): connect to the internet"):
        ensure_mnist(tmp_path / "data", with_train=False)
    assert time.monotonic() - started < 20  # given up after 0.5 s of silence (without a timeout: never)
    assert socket.getdefaulttimeout() is None  # the process's sockets are as they were
    capsys.readouterr()


class _Mirror(http.server.BaseHTTPRequestHandler):
    """A download mirror that fails as real ones do, chosen by the path's first part."""

    def do_GET(self) -> None:
        how = self.path.strip("/").split("/")[0]
        if how == "missing":
            self.send_error(404, "Not Found")
        elif how == "cut-short":  # promises 1,000 bytes, sends 10, hangs up
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"\x1f\x8b" + b"\0" * 8)
            self.close_connection = True
        elif how == "not-mnist":  # a whole file, but not MNIST's (a captive portal's page, say)
            body = b"<html>Sign in to the hotel's network</html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:  # "reset": hangs up at once with a TCP reset
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True

    do_HEAD = do_GET  # (torchvision asks for redirects first)

    def log_message(self, *args) -> None:  # (quiet)
        pass


@pytest.mark.parametrize("how, reason", [
    ("missing", "the download server answered HTTP 404 Not Found"),
    ("cut-short", "the downloaded file is cut short or is not MNIST's: its checksum does not match"),
    ("not-mnist", "the downloaded file is cut short or is not MNIST's: its checksum does not match"),
    ("reset", "the connection broke off: "),  # (… Connection reset by peer, or Remote end closed connection …)
    ("refused", "the download server refused the connection"),
])
def test_each_way_a_download_fails_is_said_in_plain_words(how: str, reason: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture) -> None:
    """The reason was urllib's repr or torchvision's last line ("<urlopen error [Errno 111] Connection refused>",
    "[Errno 104] Connection reset by peer", "IncompleteRead(10 bytes read, 990 more expected)", "File not found or
    corrupted.")."""
    import threading

    import torchvision.datasets

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Mirror)
    port = server.server_address[1]
    if how == "refused":
        server.server_close()  # nothing listens there any more
    else:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", [f"http://127.0.0.1:{port}/{how}/"])
    root = tmp_path / "data"
    try:
        with pytest.raises(DataError) as failed:
            ensure_mnist(root, with_train=False)
    finally:
        if how != "refused":
            server.shutdown()
            server.server_close()
    capsys.readouterr()  # (torchvision's progress bar)
    message = str(failed.value)
    assert f"MNIST is not in {raw_folder(root)} and downloading it failed ({reason}" in message
    assert "): connect to the internet" in message
    assert "urlopen" not in message and "Errno" not in message


@pytest.mark.parametrize("error, reason", [
    (urllib.error.URLError(socket.gaierror(socket.EAI_NONAME, "Name or service not known")),
     "no network: Name or service not known"),
    (urllib.error.URLError(OSError(errno.ENETUNREACH, "Network is unreachable")), "no network: Network is unreachable"),
    (urllib.error.URLError(TimeoutError("timed out")), "the download timed out: no answer for 30 s"),
    (TimeoutError("The read operation timed out"), "the download timed out: no answer for 30 s"),
    (urllib.error.URLError(TimeoutError(errno.ETIMEDOUT, "Connection timed out")),
     "the download timed out: Connection timed out"),
    (urllib.error.URLError(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")),
     "the download server refused the connection"),
    (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
     "the connection broke off: Connection reset by peer"),
    (http.client.IncompleteRead(b"x" * 1000, 46_000), "the connection broke off after 1,000 bytes, 46,000 more were "
                                                       "expected"),
    (urllib.error.URLError(ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
                                                           "failed: self-signed certificate in certificate chain")),
     "no secure connection to the download server: "),
    (urllib.error.HTTPError("https://example.org/x.gz", 503, "Service Unavailable", {}, None),  # type: ignore[arg-type]
     "the download server answered HTTP 503 Service Unavailable"),
    (urllib.error.URLError("unknown url type: ftps"), "no connection to the download server: unknown url type: ftps"),
    (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
])
def test_every_download_failure_is_said_without_python_s_repr(error: BaseException, reason: str, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """As urllib and the socket raise them on the way: each said as what went wrong, not as "<urlopen error …>"."""
    import torchvision.datasets.utils

    def failing(*args, **kwargs) -> None:
        raise error

    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", failing)
    with pytest.raises(DataError) as failed:
        ensure_mnist(tmp_path, with_train=False)
    message = str(failed.value)
    assert f"downloading it failed ({reason}" in message
    assert "urlopen" not in message and "Errno" not in message and "IncompleteRead" not in message


def test_a_failed_load_is_summed_up_by_the_files_that_are_there(tmp_path: Path) -> None:
    """The app's sidebar says these few words, not the whole message beside the page that shows it."""
    assert problem_summary(tmp_path / "none") == "MNIST is missing and could not be downloaded"
    folder = raw_folder(tmp_path)
    folder.mkdir(parents=True)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"")
    assert problem_summary(tmp_path) == "MNIST is incomplete and could not be downloaded"
    for name in MNIST_FILES:
        (folder / name).write_bytes(b"")
    assert problem_summary(tmp_path) == "MNIST's files cannot be used"  # (corrupt, say)


def test_missing_data_without_download_says_where_to_put_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=f"MNIST is not in {raw_folder(tmp_path)}: connect to the internet"):
        ensure_mnist(tmp_path, download=False)


def test_a_data_root_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "mnist.tar.gz"
    root.write_bytes(b"an archive, not a folder")
    with pytest.raises(DataError, match="is a file, not a folder: pass --data-root / MNIST_DATA_ROOT"):
        load_mnist(root)
    assert_one_line_error(main(["evaluate", "--data-root", str(root)]), capsys.readouterr().err, str(root))
    assert root.read_bytes() == b"an archive, not a folder"


def test_a_data_root_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"x")
    with pytest.raises(DataError, match=re.escape(f"data root {blocker / 'data'} cannot be reached (Not a directory: "
                                                  f"a file stands where one of its folders should be)")):
        load_mnist(blocker / "data")


@pytest.mark.parametrize("in_the_way", ["MNIST", "MNIST/raw"])
def test_a_file_in_the_way_of_mnist_raw_is_named(in_the_way: str, tmp_path: Path, offline: None,
                                                capsys: pytest.CaptureFixture) -> None:
    (tmp_path / in_the_way).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / in_the_way).write_bytes(b"someone's file")
    with pytest.raises(DataError, match=f"{tmp_path / in_the_way} (is a file, not a folder|cannot be reached).*: the "
                                        f"data root keeps MNIST's files in the folder MNIST/raw/ inside it; move "):
        load_mnist(tmp_path)
    assert dataset_status(tmp_path).state == "problem"  # the app's sidebar says the same
    assert_one_line_error(main(["evaluate", "--data-root", str(tmp_path)]), capsys.readouterr().err,
                          str(tmp_path / in_the_way))
    assert (tmp_path / in_the_way).read_bytes() == b"someone's file"


@pytest.mark.parametrize("case", ["a looping symlink", "permission denied"])
def test_a_data_root_that_cannot_be_read_names_it_and_the_reason(case: str, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    if case == "permission denied":
        if RUNNING_AS_ROOT:
            pytest.skip("running as root, who can read a folder without permission: the chmod case cannot be tested")
        root, words = tmp_path / "locked", "cannot be read (Permission denied)"
        root.mkdir()
        root.chmod(0)
    else:
        root, words = tmp_path / "loop", "cannot be reached (Too many levels of symbolic links"
        root.symlink_to(root)
    with pytest.raises(DataError, match=re.escape(f"data root {root} {words}")):
        load_mnist(root)
    status = dataset_status(root)  # the app's sidebar
    assert status.state == "problem" and words in status.message
    assert_one_line_error(main(["evaluate", "--data-root", str(root)]), capsys.readouterr().err, str(root), words)


@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_data_root_is_refused_not_read_as_the_current_folder(empty: str, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    assert_one_line_error(main(["train", "--data-root", empty, "--out", str(tmp_path / "m.pt")]),
                          capsys.readouterr().err, "the data root is empty")
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_place_without_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulated (tests may run as root, who can write anywhere): creating the download folder is refused."""
    def read_only(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(DataError, match="cannot be created to download it \\(Permission denied\\)"):
        load_mnist(tmp_path / "data")


def test_a_root_pointing_at_the_files_own_folder_names_the_right_root(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    folder = fake_mnist_files(tmp_path / "downloads")  # the files are in downloads/MNIST/raw
    expected = f"the MNIST files are in {folder}, but the data root must hold them in MNIST/raw/"
    assert dataset_status(folder).state == "problem" and expected in dataset_status(folder).message
    with pytest.raises(DataError, match=f"use --data-root / MNIST_DATA_ROOT {tmp_path / 'downloads'}$"):
        load_mnist(folder)
    assert_one_line_error(main(["evaluate", "--data-root", str(folder)]), capsys.readouterr().err, expected)


def test_files_dropped_straight_into_the_root_say_where_they_belong(tmp_path: Path) -> None:
    folder = fake_mnist_files(tmp_path / "elsewhere")
    for file in folder.iterdir():
        file.rename(tmp_path / file.name)
    with pytest.raises(DataError, match=f"the MNIST files are in {tmp_path}, .*: move them into "
                                        f"{raw_folder(tmp_path)}"):
        load_mnist(tmp_path)


def test_a_truncated_file_is_reported_and_kept(tmp_path: Path, offline: None) -> None:
    folder = fake_mnist_files(tmp_path, {"train-labels-idx1-ubyte": 1000})
    before = _snapshot(folder)
    with pytest.raises(DataError) as damaged:
        load_mnist(tmp_path)
    message = str(damaged.value)
    assert f"{folder / 'train-labels-idx1-ubyte'} has 1000 bytes, expected 60008" in message
    assert "nothing was deleted" in message
    assert _snapshot(folder) == before


def test_files_of_the_right_size_but_wrong_content_fail_the_checksum_and_are_kept(tmp_path: Path) -> None:
    folder = fake_mnist_files(tmp_path)
    before = _snapshot(folder)
    with pytest.raises(DataError, match="is corrupt \\(its SHA-256 is not MNIST's\\): replace it"):
        load_mnist(tmp_path)
    assert _snapshot(folder) == before


# --- With the real files (copied to a temporary folder before anything is damaged) ---

def _copy_of_real_data(mnist_root: Path, destination: Path, copy: tuple[str, ...]) -> Path:
    """A data root whose files named in `copy` are private copies and the rest links to the real (read-only) ones."""
    folder = raw_folder(destination)
    folder.mkdir(parents=True)
    for name in MNIST_FILES:
        source = raw_folder(mnist_root) / name
        if name in copy:
            shutil.copyfile(source, folder / name)
        else:
            (folder / name).symlink_to(source.resolve())
    return folder


@pytest.mark.realdata
def test_the_real_files_pass_the_size_and_checksum_checks(mnist_root: Path) -> None:
    assert ensure_mnist(mnist_root, download=False) == mnist_root


@pytest.mark.realdata
def test_a_tampered_real_file_is_reported_and_left_byte_identical(mnist_root: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    folder = _copy_of_real_data(mnist_root, tmp_path, copy=("t10k-labels-idx1-ubyte",))
    tampered = folder / "t10k-labels-idx1-ubyte"
    labels = bytearray(tampered.read_bytes())
    labels[100] = (labels[100] + 1) % 10  # one test label changed: same size, different content
    tampered.write_bytes(labels)
    with pytest.raises(DataError, match=f"{tampered} is corrupt"):
        load_mnist(tmp_path)
    assert_one_line_error(main(["evaluate", "--data-root", str(tmp_path)]), capsys.readouterr().err,
                          "t10k-labels-idx1-ubyte is corrupt")
    assert tampered.read_bytes() == labels
    assert sorted(p.name for p in folder.iterdir()) == sorted(MNIST_FILES)


@pytest.mark.parametrize("kind", ["folder", "pipe", "device"])
def test_a_folder_pipe_or_device_in_place_of_an_idx_file_is_named_not_called_missing(
        kind: str, tmp_path: Path, offline: None, capsys: pytest.CaptureFixture) -> None:
    """It was "MNIST is incomplete … copy the missing file", and a download was tried (online, it would have written
    into the pipe and waited forever, or failed on the folder)."""
    folder = fake_mnist_files(tmp_path)
    labels = folder / "t10k-labels-idx1-ubyte"
    labels.unlink()
    {"folder": labels.mkdir, "pipe": lambda: os.mkfifo(labels), "device": lambda: labels.symlink_to("/dev/zero")}[kind]()
    reason = "is a folder, not a file" if kind == "folder" else "is not a regular file (a device, pipe or socket)"
    assert_one_line_error(main(["evaluate", "--data-root", str(tmp_path)]), capsys.readouterr().err,
                          f"MNIST files are damaged: {labels} {reason}. Replace them with good copies")
    assert dataset_status(tmp_path).state == "problem"
    assert os.path.lexists(labels)


def test_a_data_root_whose_path_says_missing_is_not_taken_for_missing_files(tmp_path: Path, offline: None) -> None:
    """Missing files were told from damaged ones by the word "missing" in the message, which names the path: a
    truncated file under `…/missing-data/` counted as missing, so a download was tried (online, over the file)."""
    root = tmp_path / "missing-data"
    fake_mnist_files(root, {"t10k-labels-idx1-ubyte": 5000})
    before = _snapshot(root)
    with pytest.raises(DataError, match="has 5000 bytes, expected 10008 \\(truncated or not MNIST\\)"):
        ensure_mnist(root)
    assert _snapshot(root) == before


@pytest.mark.realdata
def test_a_truncated_real_file_is_reported_and_left_alone(mnist_root: Path, tmp_path: Path) -> None:
    folder = _copy_of_real_data(mnist_root, tmp_path, copy=("train-labels-idx1-ubyte",))
    truncated = folder / "train-labels-idx1-ubyte"
    with open(truncated, "r+b") as handle:
        handle.truncate(30_000)  # a download cut off half way
    before = truncated.read_bytes()
    with pytest.raises(DataError, match="has 30000 bytes, expected 60008 \\(truncated or not MNIST\\)"):
        load_mnist(tmp_path)
    assert truncated.read_bytes() == before


@pytest.mark.realdata
def test_a_read_only_folder_with_good_data_loads_and_nothing_is_written(mnist_root: Path, tmp_path: Path) -> None:
    folder = _copy_of_real_data(mnist_root, tmp_path, copy=tuple(MNIST_FILES))
    for path in (folder, folder.parent, tmp_path):
        path.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    try:
        before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
        data = load_mnist(tmp_path)
        assert len(data.train) == 60_000 and len(data.test) == 10_000
        assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before
    finally:
        for path in (tmp_path, folder.parent, folder):
            path.chmod(stat.S_IRWXU)


@pytest.mark.realdata
def test_gzipped_files_as_published_are_unpacked_and_checked_offline(mnist_root: Path, tmp_path: Path,
                                                                      offline: None) -> None:
    """MNIST is published as four .gz files, and that is how many people keep it: no download is needed."""
    folder = raw_folder(tmp_path)
    folder.mkdir(parents=True)
    for name in MNIST_FILES:
        with gzip.open(folder / f"{name}.gz", "wb", compresslevel=1) as packed:
            packed.write((raw_folder(mnist_root) / name).read_bytes())
    assert dataset_status(tmp_path).state == "found"
    data = load_mnist(tmp_path)  # offline: unpacked, not downloaded
    assert len(data.train) == 60_000 and len(data.test) == 10_000
    assert sorted(p.name for p in folder.iterdir()) == sorted([*MNIST_FILES, *(f"{n}.gz" for n in MNIST_FILES)])


def test_a_gzipped_file_that_is_not_mnist_is_refused_and_kept(tmp_path: Path, offline: None) -> None:
    folder = raw_folder(tmp_path)
    folder.mkdir(parents=True)
    for name in MNIST_FILES:
        with gzip.open(folder / f"{name}.gz", "wb") as packed:
            packed.write(b"\0" * 100)  # a swapped or damaged archive: far too small once unpacked
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz does not unpack to MNIST's train-images-idx3-ubyte "
                                        r"\(100 bytes, expected 47040016\): replace it with a good copy"):
        ensure_mnist(tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{n}.gz" for n in MNIST_FILES)  # nothing left behind


def test_a_gzipped_file_of_mnist_s_size_but_other_contents_is_blamed_not_its_unpacked_copy(tmp_path: Path,
                                                                                          offline: None) -> None:
    """Fashion-MNIST's files have MNIST's names and sizes. Such an archive was unpacked, and the copy called corrupt
    with "move it away and let the app download it again": moved away, it was unpacked from the same archive again."""
    folder = raw_folder(tmp_path)
    folder.mkdir(parents=True)
    for name in TEST_FILES:
        with gzip.open(folder / f"{name}.gz", "wb", compresslevel=1) as packed:
            packed.write(b"\0" * MNIST_FILES[name][0])
    with pytest.raises(DataError) as refused:
        ensure_mnist(tmp_path, with_train=False)
    assert str(refused.value) == (
        f"{folder}/t10k-images-idx3-ubyte.gz does not unpack to MNIST's t10k-images-idx3-ubyte (its SHA-256 is not "
        f"MNIST's: another dataset, such as Fashion-MNIST, or a damaged copy): replace it with a good copy (nothing was "
        f"deleted)")
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{n}.gz" for n in TEST_FILES)  # nothing unpacked


@pytest.mark.parametrize("archive, reason", [
    (b"not gzip at all", "Not a gzipped file (b'no')"),
    (gzip.compress(random.Random(0).randbytes(MNIST_FILES["t10k-labels-idx1-ubyte"][0]))[:100],
     "Compressed file ended before the end-of-stream marker was reached")], ids=["not gzip", "cut short"])
def test_a_gz_file_that_is_not_a_whole_gzip_archive_says_to_replace_it(archive: bytes, reason: str, tmp_path: Path,
                                                                       offline: None) -> None:
    # It said "cannot unpack …: unpack the four .gz files there yourself (gunzip)", which fails on it just the same.
    folder = raw_folder(tmp_path)
    folder.mkdir(parents=True)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(archive)
    (folder / "t10k-images-idx3-ubyte").write_bytes(b"")  # (only the labels are unpacked)
    with pytest.raises(DataError) as refused:
        _unpack_archives(tmp_path, TEST_FILES)
    assert str(refused.value) == (f"{folder}/t10k-labels-idx1-ubyte.gz is not a complete gzip archive ({reason}): "
                                  f"replace it with a good copy, or delete it to download it again (nothing was "
                                  f"deleted)")
    assert (folder / "t10k-labels-idx1-ubyte.gz").read_bytes() == archive
    assert not (folder / "t10k-labels-idx1-ubyte").exists()


@pytest.mark.realdata
def test_a_gz_file_that_cannot_be_unpacked_there_says_to_unpack_it_elsewhere(mnist_root: Path, tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    folder = raw_folder(tmp_path)
    folder.mkdir(parents=True)
    labels = (raw_folder(mnist_root) / "t10k-labels-idx1-ubyte").read_bytes()
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels))

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(data.os, "replace", disk_full)
    with pytest.raises(DataError, match=r"cannot unpack .*t10k-labels-idx1-ubyte.gz \(No space left on device\): "
                                        r"unpack the four .gz files there yourself \(gunzip\)"):
        _unpack_archives(tmp_path, ("t10k-labels-idx1-ubyte",))
    assert [p.name for p in folder.iterdir()] == ["t10k-labels-idx1-ubyte.gz"]  # no partial file left


def test_half_of_the_files_offline_names_the_missing_ones(tmp_path: Path, offline: None) -> None:
    folder = raw_folder(tmp_path)
    folder.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):  # copied only the test split, say
        (folder / name).write_bytes(b"\0" * MNIST_FILES[name][0])
    with pytest.raises(DataError, match=r"MNIST is incomplete in .* copy the missing files \(train-images-idx3-ubyte, "
                                        r"train-labels-idx1-ubyte; the others are there\) there"):
        ensure_mnist(tmp_path)


def test_a_partly_copied_folder_says_which_files_are_missing_not_that_mnist_is_not_there(tmp_path: Path) -> None:
    """The sidebar said "MNIST is not in DIR/MNIST/raw yet" beside two good files: the user would copy all four again
    (or wonder where theirs went). It names the files still missing."""
    folder = raw_folder(tmp_path)
    folder.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (folder / name).write_bytes(b"\0" * MNIST_FILES[name][0])
    status = dataset_status(tmp_path)
    assert status.state == "will download"
    assert status.message == (f"MNIST is incomplete in {folder} (train-images-idx3-ubyte, train-labels-idx1-ubyte "
                              f"missing); the missing files download on first use")


def test_a_partly_gzipped_folder_says_which_files_are_missing_not_that_mnist_is_not_there(tmp_path: Path) -> None:
    """Two of the four published .gz files (not unpacked yet) read as "MNIST is not in … yet", as if none were there."""
    folder = raw_folder(tmp_path)
    folder.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(folder / f"{name}.gz", "wb") as packed:
            packed.write(b"\0" * 16)
    status = dataset_status(tmp_path)
    assert status.state == "will download"
    assert status.message == (f"MNIST is incomplete in {folder} (train-images-idx3-ubyte, train-labels-idx1-ubyte "
                              f"missing); the missing files download on first use")


def test_a_copy_cut_short_names_the_truncated_file_and_the_missing_ones_in_sentences(
        tmp_path: Path, offline: None, capsys: pytest.CaptureFixture) -> None:
    """A copy interrupted mid-way: one file short, the next ones not there. The message read "… (truncated or not
    MNIST); t10k-images-idx3-ubyte missing; t10k-labels-idx1-ubyte missing. Replace them with good copies" (internal
    tokens, and "replace" for files that are not there); the sidebar said the same without the fix."""
    folder = fake_mnist_files(tmp_path, {"train-images-idx3-ubyte": 1000})
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (folder / name).unlink()
    before = _snapshot(folder)
    expected = (f"MNIST files are damaged: {folder / 'train-images-idx3-ubyte'} has 1000 bytes, expected 47040016 "
                f"(truncated or not MNIST); t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte are missing. Replace the "
                f"damaged files with good copies and copy the missing ones there (nothing was deleted).")
    # (train needs both splits; evaluate, only the test split's files, would just fetch those)
    assert assert_one_line_error(main(["train", "--data-root", str(tmp_path), "--out", str(tmp_path / "m.pt")]),
                                 capsys.readouterr().err) == f"error: {expected}"
    assert dataset_status(tmp_path) == DatasetStatus(tmp_path, "problem", expected)
    assert dataset_status(tmp_path).summary == "MNIST's files are damaged"  # (the sidebar's few words)
    assert _snapshot(folder) == before


@pytest.mark.realdata
def test_evaluate_needs_only_the_test_split(mnist_root: Path, tmp_path: Path, offline: None,
                                            capsys: pytest.CaptureFixture) -> None:
    """A root holding only t10k-* was refused ("MNIST is incomplete … copy the missing files (train-…)"), and online
    the 47 MB training split would have been downloaded, for a command that never reads it."""
    from mnist_core.checkpoints import checkpoint_payload, write_checkpoint
    from mnist_core.models import build_model

    folder = raw_folder(tmp_path / "data")
    folder.mkdir(parents=True)
    for name in TEST_FILES:
        (folder / name).symlink_to((raw_folder(mnist_root) / name).resolve())
    model = write_checkpoint(checkpoint_payload("seed-net", {}, build_model("seed-net"), {}, [], {}),
                             tmp_path / "model.pt")
    code = main(["evaluate", "--checkpoint", str(model), "--data-root", str(tmp_path / "data"), "--device", "cpu",
                 "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert sum(map(sum, json.loads(captured.out)["confusion_matrix"])) == 10_000
    assert sorted(p.name for p in folder.iterdir()) == sorted(TEST_FILES)  # nothing fetched
    data = load_mnist(tmp_path / "data", with_train=False)
    assert len(data.train) == 0 and len(data.test) == 10_000
    with pytest.raises(DataError, match=r"copy the missing files \(train-images-idx3-ubyte, train-labels-idx1-ubyte; "
                                        r"the others are there\)"):
        load_mnist(tmp_path / "data")  # train still needs both


def test_evaluate_downloads_only_the_test_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets.utils

    fetched = []

    def download(url: str, download_root: str, filename: str, **kwargs) -> None:  # a file of the right size
        fetched.append(filename)
        with open(Path(download_root) / filename.removesuffix(".gz"), "wb") as handle:
            handle.truncate(MNIST_FILES[filename.removesuffix(".gz")][0])

    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", download)
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte is corrupt"):  # (zeros: not MNIST's checksum)
        ensure_mnist(tmp_path, with_train=False)
    assert fetched == [f"{name}.gz" for name in TEST_FILES]


def test_files_under_kaggle_s_names_are_named_with_the_fix(tmp_path: Path, offline: None,
                                                           capsys: pytest.CaptureFixture) -> None:
    """`train-images.idx3-ubyte` (a dot before "idx") got "MNIST is not in …/raw" and a download attempt."""
    folder = raw_folder(tmp_path)
    folder.mkdir(parents=True)
    for name in MNIST_FILES:
        (folder / name.replace("-idx", ".idx")).write_bytes(b"")
    expected = (f"MNIST's files in {folder} are named with a dot before \"idx\" (train-images.idx3-ubyte, as Kaggle "
                f"names them), and MNIST Studio reads torchvision's names, with a dash (train-images-idx3-ubyte): "
                f"rename them to train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
                f"t10k-labels-idx1-ubyte")
    with pytest.raises(DataError) as refused:
        ensure_mnist(tmp_path)
    assert str(refused.value) == expected
    assert dataset_status(tmp_path) == DatasetStatus(tmp_path, "problem", expected)
    assert dataset_status(tmp_path).summary == "MNIST's files are misplaced or misnamed"
    assert_one_line_error(main(["evaluate", "--data-root", str(tmp_path)]), capsys.readouterr().err,
                          "rename them to t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte")


def test_missing_files_offline_are_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"copy MNIST's IDX files \(train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                                        r"t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte\) there"):
        ensure_mnist(tmp_path, download=False)


def test_a_data_root_variable_of_only_spaces_is_refused_like_the_option(monkeypatch: pytest.MonkeyPatch,
                                                                        capsys: pytest.CaptureFixture) -> None:
    """`MNIST_DATA_ROOT="  "` was used as a folder named two spaces (`--data-root "  "` is refused as empty)."""
    monkeypatch.setenv("MNIST_DATA_ROOT", "  ")
    message = ("$MNIST_DATA_ROOT holds only spaces: set it to the folder that holds MNIST/raw/, or unset it to use "
               "./data")
    assert_one_line_error(main(["evaluate"]), capsys.readouterr().err, message)
    assert dataset_status().state == "problem" and dataset_status().message == message
    assert dataset_status().summary == "The data root is not valid"
    monkeypatch.setenv("MNIST_DATA_ROOT", "")  # empty, as an unset variable: the default
    assert dataset_status().root == Path("./data")
