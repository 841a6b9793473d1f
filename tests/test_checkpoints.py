"""Checkpoints: the file format (`checkpoints.FORMAT`), round trips, atomic and non-overwriting writes, safe names,
listing."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest
import torch

import mnist_core.checkpoints as checkpoints
from mnist_core.checkpoints import (FORMAT, STALE_TEMP_SECONDS, check_writable, checkpoint_bytes, checkpoint_payload,
                                    free_checkpoint_name, list_checkpoints, load_checkpoint, safe_checkpoint_path,
                                    write_checkpoint)
from mnist_core.errors import CheckpointError
from mnist_core.models import build_model

CONTRACT_KEYS = {"format", "model", "model_kwargs", "state_dict", "config", "history", "metrics", "created",
                 "torch_version"}


# A record as the charts read it (a partial one is dropped on loading: tests/test_robustness_checkpoints.py).
HISTORY_RECORD = {"epoch": 1.0, "train_loss": 0.1, "train_accuracy": 97.0, "test_loss": 0.09, "test_accuracy": 97.5}


def make_payload(model_name: str = "nf-cnn", seed: int = 0, **model_kwargs) -> dict:
    torch.manual_seed(seed)
    model = build_model(model_name, **model_kwargs)
    return checkpoint_payload(model_name, model_kwargs, model, {"lr": 0.01, "optimizer": "adam"},
                              [HISTORY_RECORD], {"test_accuracy": 97.5})


def _only_plain_values(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _only_plain_values(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(map(_only_plain_values, value))
    return value is None or isinstance(value, (str, int, float, bool, torch.Tensor))


def test_payload_has_exactly_the_contract_fields_of_plain_values() -> None:
    payload = make_payload()
    assert set(payload) == CONTRACT_KEYS
    assert payload["format"] == FORMAT == "mnist-studio/1"
    assert _only_plain_values(payload)
    assert all(t.device.type == "cpu" and t.is_contiguous() for t in payload["state_dict"].values())


def test_channels_last_weights_are_saved_contiguous() -> None:
    model = build_model("fast").to(memory_format=torch.channels_last)
    payload = checkpoint_payload("fast", {}, model, {}, [], {})
    assert all(t.is_contiguous() for t in payload["state_dict"].values())


def test_round_trip_gives_the_same_predictions_and_metadata(tmp_path: Path) -> None:
    payload = make_payload("nf-cnn", nf=8)
    path = write_checkpoint(payload, tmp_path / "small.pt")
    loaded = load_checkpoint(path)
    assert (loaded.model_name, loaded.model_kwargs) == ("nf-cnn", {"nf": 8})
    assert loaded.config == {"lr": 0.01, "optimizer": "adam"} and loaded.metrics == {"test_accuracy": 97.5}
    assert loaded.history == [HISTORY_RECORD] and loaded.created
    assert loaded.source == str(path) and not loaded.model.training
    original = build_model("nf-cnn", nf=8)
    original.load_state_dict(payload["state_dict"])
    images = torch.randn(4, 1, 28, 28)
    torch.testing.assert_close(loaded.model(images), original.eval()(images))


def test_bytes_load_like_files_and_use_the_upload_name() -> None:
    loaded = load_checkpoint(checkpoint_bytes(make_payload()), name="upload: mine.pt")
    assert loaded.model_name == "nf-cnn" and loaded.source == "upload: mine.pt"


def test_write_refuses_an_existing_name_and_keeps_the_old_file(tmp_path: Path) -> None:
    path = write_checkpoint(make_payload(seed=1), tmp_path / "run.pt")
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="already exists: choose another name \\(nothing was overwritten\\)"):
        write_checkpoint(make_payload(seed=2), path)
    assert path.read_bytes() == before
    write_checkpoint(make_payload(seed=2), path, overwrite=True)
    assert path.read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pt"]  # no temp files left behind


def test_a_failed_write_leaves_no_file_and_no_temp_file(tmp_path: Path) -> None:
    with pytest.raises(Exception):
        write_checkpoint({"not saveable": lambda: None}, tmp_path / "broken.pt")
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_is_a_clear_message_and_the_old_file_survives(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_checkpoint(make_payload(seed=1), tmp_path / "run.pt")
    before = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoints.torch, "save", disk_full)
    with pytest.raises(CheckpointError, match="No space left on device"):
        write_checkpoint(make_payload(seed=2), path, overwrite=True)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pt"]


def test_without_hard_links_writes_still_never_overwrite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(*args, **kwargs):
        raise OSError(errno.EPERM, "hard links not supported")

    monkeypatch.setattr(checkpoints.os, "link", no_links)
    path = write_checkpoint(make_payload(), tmp_path / "fat.pt")
    assert load_checkpoint(path).model_name == "nf-cnn"
    with pytest.raises(CheckpointError, match="already exists"):
        write_checkpoint(make_payload(seed=3), path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fat.pt"]


def test_check_writable_refuses_folders_existing_files_and_unwritable_places(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="is a folder"):
        check_writable(tmp_path)
    (tmp_path / "taken.pt").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="already exists"):
        check_writable(tmp_path / "taken.pt")
    check_writable(tmp_path / "taken.pt", overwrite=True)
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"x")
    with pytest.raises(CheckpointError, match="a-file is a file, not a folder, so model.pt cannot be saved in it"):
        check_writable(blocker / "model.pt")  # its "folder" is a file
    with pytest.raises(CheckpointError, match=r"sub cannot be reached \(Not a directory"):
        check_writable(blocker / "sub" / "model.pt")
    check_writable(tmp_path / "new" / "sub" / "model.pt")  # missing folders are created


@pytest.mark.parametrize("name, blank_at", [("model.pt ", "end"), (" model.pt", "start"), ("\tmodel.pt\n", "start and end")])
def test_check_writable_refuses_a_file_name_with_a_blank_around_it(name: str, blank_at: str, tmp_path: Path) -> None:
    """`train --out "model.pt "` saved a file whose trailing space nobody sees, so `--checkpoint model.pt` missed it."""
    with pytest.raises(CheckpointError, match=rf"has a blank at its {blank_at}: remove it \(nothing was written\)$"):
        check_writable(tmp_path / name)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, suggested", [("CON", "CON-run"), ("con.pt", "con-run"), ("nul.v2", "nul-run"),
                                             ("Com1", "Com1-run"), ("LPT9", "LPT9-run"), ("aux", "aux-run")])
def test_a_windows_device_name_is_refused_with_a_usable_one(name: str, suggested: str, tmp_path: Path) -> None:
    """CON.pt is the console on Windows: saving there would fail, or write nowhere, after the run was kept."""
    with pytest.raises(CheckpointError, match=rf"a name Windows keeps for a device .*: choose another, such as {suggested}$"):
        safe_checkpoint_path(name, tmp_path)
    assert safe_checkpoint_path("console", tmp_path).name == "console.pt"  # only the device names themselves
    assert safe_checkpoint_path("com10", tmp_path).name == "com10.pt"


@pytest.mark.parametrize("name", ["../../x", "../x", "/abs/path", "/tmp/x.pt", "a/b", "a\\b", "", "   ", ".pt", ".",
                                  "..", ".hidden", "-rf", "x" * 65, "nul\x00byte", "new\nline", "ünï"])
def test_unsafe_names_are_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="is not a usable name|outside|the file name is empty"):
        safe_checkpoint_path(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_refused_name_says_which_letters_are_allowed(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"English letters \(a–z, A–Z\)"):  # "letters" alone invites ü or 名
        safe_checkpoint_path("名字", tmp_path)


@pytest.mark.parametrize("typed, suggested", [("my run", "my-run"), ("ünï", "uni"), ("run 1 (stopped early)",
                                                                                     "run-1-stopped-early"),
                                               (".hidden", "hidden"), ("x" * 300, "x" * 64)])
def test_a_refused_name_comes_with_a_usable_one_close_to_it(typed: str, suggested: str, tmp_path: Path) -> None:
    """"my run" was refused with the rule alone, and the user had to guess "my-run"."""
    with pytest.raises(CheckpointError, match=rf"\(no folders\), such as {suggested}$"):
        safe_checkpoint_path(typed, tmp_path)
    (tmp_path / f"{suggested}.pt").write_bytes(b"taken")  # a taken one is never suggested
    with pytest.raises(CheckpointError, match=rf", such as {suggested[:62]}-2$"):
        safe_checkpoint_path(typed, tmp_path)


def test_a_name_with_nothing_usable_in_it_gets_the_rule_alone(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"\(no folders\)$"):
        safe_checkpoint_path("名字", tmp_path)


def test_the_free_name_after_a_64_character_one_is_itself_usable(tmp_path: Path) -> None:
    """Save under a taken 64-character name suggested NAME-2, 66 characters, which Save then refused."""
    stem = "x" * 64
    (tmp_path / f"{stem}.pt").write_bytes(b"taken")
    free = free_checkpoint_name(stem, tmp_path)
    assert free == "x" * 62 + "-2" and safe_checkpoint_path(free, tmp_path).name == f"{free}.pt"


@pytest.mark.parametrize("name", ["", "   "])
def test_an_empty_name_is_called_empty_and_the_rule_given(name: str, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"^the file name is empty: use 1–64 English letters"):
        safe_checkpoint_path(name, tmp_path)


@pytest.mark.parametrize("name, file_name", [("my-run", "my-run.pt"), ("my-run.pt", "my-run.pt"),
                                             (" spaced ", "spaced.pt"), ("v1.2_final", "v1.2_final.pt"),
                                             ("x.PT", "x.pt"), ("x.Pt", "x.pt"), ("x.pth", "x.pt"),
                                             ("x.PTH", "x.pt")])  # x.PT became x.PT.pt
def test_safe_names_map_into_the_folder(name: str, file_name: str, tmp_path: Path) -> None:
    assert safe_checkpoint_path(name, tmp_path) == (tmp_path / file_name).resolve()


def test_checkpoint_suffixes_are_read_in_any_case(tmp_path: Path) -> None:
    (tmp_path / "COPIED.PT").write_bytes(b"x")  # from a system that writes names in capitals
    assert [p.name for p in list_checkpoints(tmp_path)] == ["COPIED.PT"]


def test_a_symlinked_name_cannot_lead_outside_the_folder(tmp_path: Path) -> None:
    folder, outside = tmp_path / "checkpoints", tmp_path / "elsewhere"
    folder.mkdir()
    outside.mkdir()
    (folder / "escape.pt").symlink_to(outside / "escape.pt")
    with pytest.raises(CheckpointError, match="outside"):
        safe_checkpoint_path("escape", folder)


def test_a_saved_checkpoint_gets_the_usual_file_permissions(tmp_path: Path) -> None:
    path = write_checkpoint(make_payload(seed=1), tmp_path / "shared.pt")
    assert path.stat().st_mode & 0o777 == 0o666 & ~checkpoints._UMASK  # as the umask says, not the temp file's 0600


def test_saving_under_an_existing_name_never_overwrites(tmp_path: Path) -> None:
    first = write_checkpoint(make_payload(seed=1), safe_checkpoint_path("mine", tmp_path))
    before = first.read_bytes()
    with pytest.raises(CheckpointError, match="already exists"):
        write_checkpoint(make_payload(seed=2), safe_checkpoint_path("mine.pt", tmp_path))
    assert first.read_bytes() == before


def test_list_shows_default_first_then_newest_and_hides_temp_files(tmp_path: Path) -> None:
    for name in ("old.pt", "default.pt", "new.pt", ".new.pt.abc123.tmp", "notes.txt", "model", "folder.pt/"):
        (tmp_path / name).mkdir() if name.endswith("/") else (tmp_path / name).write_bytes(b"x")
    now = time.time()
    os.utime(tmp_path / "old.pt", (now - 100, now - 100))
    os.utime(tmp_path / "default.pt", (now - 200, now - 200))
    (tmp_path / "older.pth").write_bytes(b"x")  # the Evaluate page's upload takes .pth too: so does its file list
    os.utime(tmp_path / "older.pth", (now - 150, now - 150))
    assert [p.name for p in list_checkpoints(tmp_path)] == ["default.pt", "new.pt", "old.pt", "older.pth"]
    assert list_checkpoints(tmp_path / "missing") == []


def test_temp_files_of_killed_writers_are_cleaned_up_once_stale(tmp_path: Path) -> None:
    old = time.time() - STALE_TEMP_SECONDS - 60
    stale = [tmp_path / ".mine.pt.abc123.tmp", tmp_path / ".model.pth.x1y2z3.tmp"]
    fresh = tmp_path / ".other.pt.def456.tmp"  # a write in progress in another process: kept
    for temp in (*stale, fresh):
        temp.write_bytes(b"half a checkpoint")
    for temp in stale:
        os.utime(temp, (old, old))
    unrelated = tmp_path / ".notes.txt.tmp"
    unrelated.write_bytes(b"x")
    os.utime(unrelated, (old, old))

    list_checkpoints(tmp_path)  # the app lists the folder on every page: that cleans the *.pt leftovers
    assert not stale[0].exists() and stale[1].exists() and fresh.exists() and unrelated.exists()
    write_checkpoint(make_payload(seed=1), tmp_path / "model.pth")  # a CLI --out cleans its own name's leftovers
    assert not stale[1].exists() and fresh.exists() and unrelated.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".notes.txt.tmp", ".other.pt.def456.tmp", "model.pth"]


def test_a_missing_path_is_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="nope.pt does not exist: check the path"):
        load_checkpoint(tmp_path / "nope.pt")


def test_a_free_name_skips_the_ones_already_saved(tmp_path: Path) -> None:
    assert checkpoints.free_checkpoint_name("fast-run1", tmp_path) == "fast-run1"
    (tmp_path / "fast-run1.pt").write_bytes(b"x")
    (tmp_path / "fast-run1-2.pt").write_bytes(b"x")
    assert checkpoints.free_checkpoint_name("fast-run1", tmp_path) == "fast-run1-3"


def _fast_before_970425c(width: int, hidden: int) -> torch.nn.Sequential:
    """The `fast` model as saved until commit 970425c: each block conv, BatchNorm, ReLU, then max-pool."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, width, 5, bias=False), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, bias=False), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(2 * width * 25, hidden), nn.ReLU(), nn.Linear(hidden, 10),
    )


def test_a_fast_checkpoint_of_the_old_layout_loads_with_the_same_outputs() -> None:
    """Such files (the default model until 970425c) said "does not fit the fast architecture (Missing key(s) …
    "2.running_mean" …)". Half the BatchNorm scales are negative here, where pooling first would differ unless the
    loader turns those channels round; the old default scored 99.52 % on MNIST after loading, as it did when saved."""
    torch.manual_seed(0)
    old = _fast_before_970425c(8, 32)
    with torch.no_grad():
        for norm in (old[1], old[5]):
            norm.weight.copy_(torch.randn_like(norm.weight))  # about half negative
            norm.bias.copy_(torch.randn_like(norm.bias))
            norm.running_mean.copy_(torch.randn_like(norm.running_mean))
            norm.running_var.copy_(torch.rand_like(norm.running_var) + 0.5)
    old.eval()
    assert (old[1].weight < 0).any() and (old[5].weight < 0).any()
    payload = checkpoint_payload("fast", {"width": 8, "hidden": 32}, old, {}, [HISTORY_RECORD], {})
    loaded = load_checkpoint(checkpoint_bytes(payload), "old-fast.pt")
    images = torch.randn(64, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(loaded.model(images), old(images), atol=1e-5)
    assert loaded.history == [HISTORY_RECORD]
    resaved = load_checkpoint(checkpoint_bytes(checkpoint_payload("fast", {"width": 8, "hidden": 32}, loaded.model,
                                                                  {}, [], {})), "resaved.pt")
    assert set(resaved.model.state_dict()) == set(build_model("fast", width=8, hidden=32).state_dict())


def test_an_old_layout_with_a_wrong_shape_still_names_the_mismatch() -> None:
    torch.manual_seed(0)
    payload = checkpoint_payload("fast", {"width": 16}, _fast_before_970425c(8, 128), {}, [], {})
    with pytest.raises(CheckpointError, match="does not fit the fast architecture \\(size mismatch for 0.weight"):
        load_checkpoint(checkpoint_bytes(payload), "x.pt")
