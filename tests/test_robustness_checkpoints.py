"""Issue 6, model files: every broken, foreign or malicious file ends in one clear message and runs nothing;
checkpoint writes survive a killed writer; names cannot escape checkpoints/ or overwrite."""

from __future__ import annotations

import bz2
import copy
import gzip
import io
import json
import lzma
import os
import pickle
import random
import re
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path
from typing import Callable

import pytest
import torch

from cli_support import (REPO_ROOT, UNREACHABLE_CASES, assert_clean_failure, assert_json_error, assert_one_line_error,
                         digit_image, run_cli, unreachable_case)
from mnist_core.checkpoints import (MAX_HISTORY_RECORDS, MAX_PICKLE_BYTES, MAX_ZIP_ENTRIES, STALE_TEMP_SECONDS,
                                    _probe_pictures, checkpoint_bytes, checkpoint_payload, list_checkpoints,
                                    load_checkpoint, write_checkpoint)
from mnist_core.cli import main
from mnist_core.data import MEAN, STD
from mnist_core.errors import CheckpointError
from mnist_core.models import build_model


class WritesAMarker:
    """Unpickling this runs code: it writes the marker file. A safe loader must refuse it before that happens."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('code ran')",)


def _payload(model_name: str = "seed-net", **overrides) -> dict:
    torch.manual_seed(0)
    model = build_model(model_name)
    return {**checkpoint_payload(model_name, {}, model, {}, [], {}), **overrides}


def _malicious_files(marker: Path) -> dict[str, bytes]:
    nested, legacy = io.BytesIO(), io.BytesIO()
    torch.save(_payload(config=WritesAMarker(marker)), nested)  # a valid-looking checkpoint with a trap inside
    torch.save({"state_dict": WritesAMarker(marker)}, legacy, _use_new_zipfile_serialization=False)
    return {"plain pickle": pickle.dumps(WritesAMarker(marker)), "inside a checkpoint": nested.getvalue(),
            "legacy torch format": legacy.getvalue()}


def test_the_malicious_files_really_run_code_when_unpickled_naively(tmp_path: Path) -> None:
    """Guards the guard: if these files were harmless, the tests below would prove nothing."""
    marker = tmp_path / "marker"
    for name, raw in _malicious_files(marker).items():
        marker.unlink(missing_ok=True)
        torch.load(io.BytesIO(raw), weights_only=False) if name != "plain pickle" else pickle.loads(raw)
        assert marker.read_text() == "code ran", name


@pytest.mark.parametrize("kind", ["plain pickle", "inside a checkpoint", "legacy torch format"])
def test_a_malicious_model_file_is_refused_without_running_it(kind: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    raw = _malicious_files(marker)[kind]
    path = tmp_path / "model.pt"
    path.write_bytes(raw)
    for source in (path, raw):
        with pytest.raises(CheckpointError, match="refused without running anything"):
            load_checkpoint(source)
    assert not marker.exists()


class RunsAShellCommand:
    """Unpickling this calls os.system, whose module torch's weights-only unpickler blocks by name."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {str(self.marker)!r}",)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_a_malicious_pickle_of_any_protocol_is_called_malicious(protocol: int, tmp_path: Path) -> None:
    """Protocols 0 and 1 have no PROTO opcode at the start, and torch words a blocked module ("unsupported GLOBAL
    posix.system whose module posix is blocked") unlike other refused globals: it was called "not a readable PyTorch
    file (it may be truncated, damaged…)", sending the user looking for a better copy of a malicious file."""
    marker = tmp_path / "marker"
    raw = pickle.dumps(RunsAShellCommand(marker), protocol=protocol)
    with pytest.raises(CheckpointError, match="refused without running anything"):
        load_checkpoint(raw, "evil.pt")
    assert not marker.exists()


def test_metrics_that_are_not_plain_values_are_dropped(tmp_path: Path) -> None:
    """A tensor claiming 10¹² elements (a few bytes in the file, as a stride-0 view) where a number belongs reached
    the app's comparison table as an object; the plain metrics beside it are kept."""
    huge = torch.zeros(1).expand(10**6, 10**6)
    path = write_checkpoint(_payload(metrics={"test_accuracy": 99.0, "epochs_done": huge, "confidence_floor": huge,
                                              "device": "cpu", "stopped": False, "runs": [1, 2]}),
                            tmp_path / "model.pt")
    assert load_checkpoint(path).metrics == {"test_accuracy": 99.0, "device": "cpu", "stopped": False}


# Values no run writes, where the app shows or computes with them: each is dropped on loading, and the model loads.
ODD_VALUES = {"text for a number": "**bold** | <script>alert(1)</script>", "a number past int64": 2**70,
              "10**400": 10**400, "nan": float("nan"), "inf": float("inf"), "negative": -5, "true": True,
              "a nested dict": {"a": [1, {"b": 2}]}, "a list": [1, 2], "None": None, "1e300": 1e300}


@pytest.mark.parametrize("odd", list(ODD_VALUES))
def test_odd_settings_and_metrics_are_dropped_on_loading(odd: str) -> None:
    """A checkpoint's config and metrics went to the pages as stored: an epoch count of 2**70 made the Evaluate page's
    Compare table an exception (Arrow holds int64), and text, negative counts, 1e300 and true (as 1 second) showed
    in its number columns."""
    value = ODD_VALUES[odd]
    config = {"epochs": value, "train_subset": value, "lr": 0.01, "optimizer": "adam"}
    metrics = {"test_accuracy": value, "train_seconds": value, "epochs_done": value, "test_loss": 0.05,
               "stopped": False}
    loaded = load_checkpoint(checkpoint_bytes(_payload(config=config, metrics=metrics)), "odd.pt")
    kept = {key: value for key, value in config.items() if key == "train_subset" and value is None}  # (None: all)
    assert loaded.config == {"lr": 0.01, "optimizer": "adam", **kept}
    assert loaded.metrics == {"test_loss": 0.05, "stopped": False}


@pytest.mark.parametrize("field, value", [
    ("optimizer", 12), ("optimizer", "x" * 100_000), ("optimizer", "adam\n# heading"), ("seed", 1.5),
    ("augment", 1), ("model_kwargs", {"width": "32"}), ("model_kwargs", [32]),
    pytest.param("batch_size", 10**400, id="batch_size-10**400")])
def test_a_setting_of_the_wrong_kind_is_dropped(field: str, value: object) -> None:
    """Each setting as `TrainConfig` holds it: one line of text, a whole number, true/false, numbers by name."""
    config = {"lr": 0.01, field: value}
    assert load_checkpoint(checkpoint_bytes(_payload(config=config)), "odd.pt").config == {"lr": 0.01}


def test_a_long_unknown_model_setting_is_quoted_shortened() -> None:
    """A 100,000-character setting name was quoted whole in the refusal."""
    with pytest.raises(CheckpointError) as refused:
        load_checkpoint(checkpoint_bytes(_payload(model_kwargs={"x" * 100_000: 1})), "odd.pt")
    # (the model's own sentence, with the name shortened: it quoted the whole model_kwargs dict shortened instead)
    message = str(refused.value)
    assert len(message) < 300 and "…xxxx" in message, message[:400]
    assert message.startswith("odd.pt has settings the seed-net model does not accept (model 'seed-net' has no setting "
                              "xxxxxxxxxx") and message.endswith("x: it takes dropout)"), message[:400]


def test_metadata_as_saved_is_kept_and_unknown_plain_keys_too(tmp_path: Path) -> None:
    """What a run saves loads unchanged; keys of other versions stay when plain, and go when not (a 1: 2 key, a
    list, 100,000 characters)."""
    from mnist_core.config import TrainConfig

    config = {**TrainConfig(model="seed-net", train_subset=5000, model_kwargs={"dropout": 0.25}).to_dict(),
              "old_field": "kept", 1: 2, "notes": "x" * 100_000, "tags": ["a"]}
    metrics = {"test_accuracy": 98.5, "test_loss": 0.05, "train_seconds": 12.5, "compile_seconds": 0.0,
               "epochs_done": 0.5, "stopped": True, "device": "cuda", "confidence_floor": 0.9, "extra": 3}
    loaded = load_checkpoint(write_checkpoint(_payload(config=config, metrics=metrics, created="y" * 100_000),
                                              tmp_path / "model.pt"))
    assert loaded.config == {key: value for key, value in config.items() if key not in (1, "notes", "tags")}
    assert loaded.metrics == metrics
    assert loaded.created == ""  # (no timestamp is 100,000 characters long)


@pytest.mark.parametrize("floor", [10**400, 1.5, -0.1, float("nan"), float("inf"), True, "0.9"])
def test_a_confidence_floor_that_is_no_probability_is_dropped(floor: object, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    """10**400 was an internal error (OverflowError in the unsure threshold); the others were used as thresholds.
    Without it, predict uses the default threshold."""
    path = tmp_path / "model.pt"
    torch.save(_payload(metrics={"confidence_floor": floor, "test_accuracy": 10**400, "train_seconds": 3}), path)
    assert load_checkpoint(path).metrics == {"train_seconds": 3}  # (a number no float can hold is dropped too)
    image = tmp_path / "digit.png"
    digit_image().save(image)
    assert main(["predict", "--checkpoint", str(path), str(image)]) == 0
    assert "Traceback" not in capsys.readouterr().err


def test_a_long_format_or_model_name_is_quoted_shortened() -> None:
    for payload, words in ((_payload(format="mnist-studio/beta" + "x" * 10**5), "format 'mnist-studio/betax"),
                           (_payload(model="m" * 10**5), "is for model 'mmm")):
        with pytest.raises(CheckpointError, match=words) as refused:
            load_checkpoint(checkpoint_bytes(payload), "x.pt")
        assert len(str(refused.value)) < 300 and "..." in str(refused.value)


def _safetensors_file() -> bytes:
    """What `safetensors.torch.save` writes for {"weight": tensor([1., 2.])}: header length, space-padded JSON, data."""
    header = json.dumps({"weight": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + struct.pack("<2f", 1.0, 2.0)


def test_a_safetensors_file_is_called_one_not_damaged(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(_safetensors_file())
    code = main(["evaluate", "--checkpoint", str(path)])
    assert_one_line_error(code, capsys.readouterr().err, f"{path} is a safetensors file (bare weights, without the "
                          "model's name or settings), not a checkpoint: use a .pt checkpoint saved by MNIST Studio")
    with pytest.raises(CheckpointError, match="is a safetensors file"):
        load_checkpoint(path.read_bytes(), "upload: model.safetensors")
    with pytest.raises(CheckpointError, match="is not a readable PyTorch file"):  # an 8-byte length and no header
        load_checkpoint(b"\x10" + b"\0" * 7 + b"{not json at all", "upload: x.pt")


@pytest.mark.parametrize("pack, kind, tool, suffix", [(gzip.compress, "gzip", "gunzip", ".gz"),
                                                    (bz2.compress, "bzip2", "bunzip2", ".bz2"),
                                                    (lzma.compress, "xz", "unxz", ".xz")], ids=["gzip", "bzip2", "xz"])
def test_a_compressed_checkpoint_says_to_unpack_it_first(pack: Callable[[bytes], bytes], kind: str, tool: str,
                                                         suffix: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    # It said "… is not a readable PyTorch file (it may be truncated, damaged or of another kind)" of a good model.
    packed = pack(checkpoint_bytes(_payload()))
    renamed, named = tmp_path / "my model.pt", tmp_path / f"my model.pt{suffix}"
    for path in (renamed, named):
        path.write_bytes(packed)
    assert_one_line_error(main(["evaluate", "--checkpoint", str(renamed)]), capsys.readouterr().err,
                          f"{renamed} is {kind}-compressed, and torch.save never compresses its files: unpack it first "
                          f"({tool} -c '{renamed}' > '{tmp_path}/my model.unpacked.pt') and give the unpacked file")
    with pytest.raises(CheckpointError) as refused:
        load_checkpoint(named)
    assert f"unpack it first ({tool} -k '{named}') and give" in str(refused.value)  # -k: the tool makes the name
    with pytest.raises(CheckpointError) as refused:
        load_checkpoint(packed, "upload: m.pt")
    assert str(refused.value) == (f"upload: m.pt is {kind}-compressed, and torch.save never compresses its files: "
                                  f"unpack it first ({tool}) and give the unpacked file")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([renamed.name, named.name])  # nothing unpacked


def test_the_cli_refuses_a_malicious_model_file_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "model.pt"
    path.write_bytes(_malicious_files(marker)["inside a checkpoint"])
    image = tmp_path / "digit.png"
    digit_image().save(image)
    evaluated = run_cli("evaluate", "--checkpoint", path, "--json", env={"MNIST_DATA_ROOT": str(tmp_path / "none")})
    assert_clean_failure(evaluated, str(path), "refused without running anything")
    predicted = run_cli("predict", "--checkpoint", path, image, "--json")
    assert_clean_failure(predicted, "refused without running anything")
    assert not marker.exists()


def _with_a_flipped_bit(raw: bytes) -> bytes:
    """A torch zip with one bit of its first weight flipped, as a disk error or a bad copy does: a huge, finite weight
    (its exponent +128), which no NaN check can see."""
    entry = next(e for e in zipfile.ZipFile(io.BytesIO(raw)).infolist() if e.filename.endswith("/data/0"))
    name_length, extra_length = struct.unpack("<HH", raw[entry.header_offset + 26: entry.header_offset + 30])
    start = entry.header_offset + 30 + name_length + extra_length
    damaged = bytearray(raw)
    damaged[start + 3] ^= 0x40  # little-endian float32: byte 3 holds the sign and the exponent's high bits
    return bytes(damaged)


def _zip_bomb(raw: bytes, inflated_bytes: int = 200 * 10**6) -> bytes:
    """A torch zip re-packed with deflate, its first weight's entry swollen to `inflated_bytes` of zeros: a small
    file that torch.load would inflate in full."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as packed:
        for entry in source.infolist():
            swollen = entry.filename.endswith("/data/0")
            packed.writestr(entry.filename, bytes(inflated_bytes) if swollen else source.read(entry))
    return out.getvalue()


def _zipped(files: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    """A zip archive of `files` (name -> content), as a person zips a checkpoint to send it."""
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", compression) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return packed.getvalue()


def _png() -> bytes:
    packed = io.BytesIO()
    digit_image().save(packed, "PNG")
    return packed.getvalue()


def _bad_model_files() -> dict[str, tuple[bytes, str]]:
    """name -> (file content, words the message must contain)."""
    good = checkpoint_bytes(_payload())
    torch.manual_seed(0)
    poisoned = _payload()
    poisoned["state_dict"] = {k: v.clone() for k, v in poisoned["state_dict"].items()}
    poisoned["state_dict"]["fc2.bias"][3] = float("nan")
    other_project = {"encoder.weight": torch.zeros(3, 3), "head.bias": torch.zeros(3)}
    overflowing = _payload()
    overflowing["state_dict"] = {k: v * 1e30 for k, v in overflowing["state_dict"].items()}  # finite, but not its output
    broken_statistics = _payload("fast")
    broken_statistics["state_dict"] = {k: -v if k.endswith("running_var") else v
                                       for k, v in broken_statistics["state_dict"].items()}
    whole_numbers = _payload()
    whole_numbers["state_dict"] = {k: (v * 100).to(torch.int64) for k, v in whole_numbers["state_dict"].items()}
    complex_weights = _payload()
    complex_weights["state_dict"] = {k: v.to(torch.complex64) for k, v in complex_weights["state_dict"].items()}
    float8_weights = _payload()
    float8_weights["state_dict"] = {k: v.to(torch.float8_e4m3fn) for k, v in float8_weights["state_dict"].items()}
    float_counters = _payload("fast")
    float_counters["state_dict"] = {k: v.float() for k, v in float_counters["state_dict"].items()}
    return {
        "truncated": (good[: len(good) // 2], "not a readable PyTorch file (it may be truncated"),
        "a flipped bit in the weights": (_with_a_flipped_bit(good), "is damaged (its contents do not match"),
        "empty": (b"", "is empty (0 bytes)"),
        "zip bomb (200 MB of weights deflated into a few hundred KB)": (_zip_bomb(good), "is a compressed zip archive"),
        "text renamed .pt": (b"name,score\nalice,3\n", "not a readable PyTorch file"),
        "image renamed .pt": (digit_image().tobytes()[:4000], "not a readable PyTorch file"),
        # These said "… is not a readable PyTorch file (it may be truncated, damaged or of another kind)", or of a
        # deflated zip "… is a compressed zip archive, which torch.save never writes (and which could unpack …)".
        "a picture of a digit": (_png(), "is a PNG file, not a model file: use a .pt checkpoint saved by MNIST Studio "
                                         "(a picture of a digit is read by the predict command, or on the app's "
                                         "Sketch page)"),
        "a zip holding a checkpoint": (_zipped({"run/my model.pt": good}),
                                       "is a zip archive holding 'run/my model.pt', not a checkpoint itself: unzip it "
                                       "and give the .pt file inside"),
        "a deflated zip holding checkpoints": (_zipped({"a.pt": good, "b.PTH": good}, zipfile.ZIP_DEFLATED),
                                               "is a zip archive holding 'a.pt' and more, not a checkpoint itself"),
        "a zip of other files": (_zipped({"notes.txt": b"my notes"}),
                                 "is a zip archive of other files, not a checkpoint: use a .pt checkpoint saved by "
                                 "MNIST Studio"),
        "another architecture": (checkpoint_bytes(_payload("seed-net", model="nf-cnn")),
                                 "does not fit the nf-cnn architecture"),
        "mismatched shapes": (checkpoint_bytes(_payload("nf-cnn", model_kwargs={"nf": 16})),
                              "size mismatch"),
        "unknown model name": (checkpoint_bytes(_payload(model="resnet-152")), "which this version does not know"),
        "bare state_dict from another project": (checkpoint_bytes(other_project), "bare state_dict"),
        "other format": (checkpoint_bytes({"epoch": 3, "model_state": {}}), "not an MNIST Studio checkpoint"),
        "NaN weights": (checkpoint_bytes(poisoned), "NaN or infinite weights"),
        "overflowing weights": (checkpoint_bytes(overflowing), "gives NaN or infinite outputs"),
        "negative BatchNorm variance": (checkpoint_bytes(broken_statistics), "gives NaN or infinite outputs"),
        # It read every picture as "8 (100%)", not even unsure.
        "a first layer of zeros": (checkpoint_bytes(_payload(state_dict={**_payload()["state_dict"],
                                                                         "conv1.weight": torch.zeros(10, 1, 5, 5)})),
                                   "gives the same output for every picture (blank paper, all ink, a drawn 0 and a "
                                   "drawn 1 alike: its first layer's weights are all zero, say), so it would read "
                                   "every picture as the same digit"),
        "whole-number weights": (checkpoint_bytes(whole_numbers), "torch.int64 values for conv1.weight"),
        "complex weights": (checkpoint_bytes(complex_weights), "model has floating-point weights"),
        # These three were internal errors: NotImplementedError ("isfinite" not implemented for 'Float8_e4m3fn'),
        # OverflowError (int(inf)) and ValueError (int() of over 4,300 digits).
        "float8 weights": (checkpoint_bytes(float8_weights), "holds torch.float8_e4m3fn values for conv1.weight, where "
                           "the seed-net model has floating-point weights (float16, bfloat16, float32 or float64)"),
        "infinite model settings": (checkpoint_bytes(_payload("fast", model_kwargs={"width": float("inf")})),
                                    "settings the fast model does not accept (fast width must be a whole number from "
                                    "8 to 64 (got inf))"),
        "a format of 5,000 digits": (checkpoint_bytes(_payload(format="mnist-studio/" + "9" * 5000)),
                                     "was saved by another (newer) version of MNIST Studio (format 'mnist-studio/999"),
        "counters stored as floats": (checkpoint_bytes(float_counters), "holds torch.float32 values for "
                                      "2.num_batches_tracked, where the fast model has a whole-number counter"),
        "odd model settings": (checkpoint_bytes(_payload("nf-cnn", model_kwargs={"nf": "wide"})),
                               "settings the nf-cnn model does not accept"),
        # These three said "is damaged: model_kwargs/state_dict are missing" (they are there, of the wrong type) and
        # "('int' object has no attribute 'startswith')"; a torch file holding a number said "it holds a int".
        "model settings that are a list": (checkpoint_bytes(_payload(model_kwargs=[32, 64])),
                                           "is damaged: its model_kwargs (the model's settings) should be a dict, and "
                                           "it has a list"),
        "weights that are a list": (checkpoint_bytes(_payload(state_dict=[1.0])),
                                    "is damaged: its state_dict (the weights) should be a dict, and it has a list"),
        "weights named by numbers": (checkpoint_bytes(_payload(state_dict={**_payload()["state_dict"],
                                                                           5: torch.zeros(1)})),
                                     "is damaged: its state_dict has the key 5, where weights are named by text"),
        # These said "is for model None, which this version does not know" and "does not fit the seed-net
        # architecture (… expected torch.Tensor or Tensor-like object …): the weights were saved for a different model".
        "no model name": (checkpoint_bytes({k: v for k, v in _payload().items() if k != "model"}),
                          "is damaged: its model (the architecture's name) should be text, and it has none"),
        "a model name that is a list": (checkpoint_bytes(_payload(model=["seed-net"])),
                                        "is damaged: its model (the architecture's name) should be text, and it has a "
                                        "list"),
        "weights that are numbers": (checkpoint_bytes(_payload(state_dict={k: 1 for k in _payload()["state_dict"]})),
                                     "is damaged: its state_dict holds an int for conv1.weight, where weights are "
                                     "tensors"),
        "a torch file holding a number": (checkpoint_bytes(7), "not an MNIST Studio checkpoint (it holds an int;"),
        # These said "it holds a NoneType" and "holds a NoneType for conv1.weight".
        "a torch file holding None": (checkpoint_bytes(None), "not an MNIST Studio checkpoint (it holds None;"),
        "a weight that is None": (checkpoint_bytes(_payload(state_dict={**_payload()["state_dict"],
                                                                        "conv1.weight": None})),
                                  "is damaged: its state_dict holds None for conv1.weight, where weights are tensors"),
        # These said "does not fit the seed-net architecture (While copying the parameter named "conv1.weight", whose
        # dimensions in the model are torch.Size([10, 1, 5, 5]) and whose dimensions in the checkpoint are torch.Si…".
        "shape-only weights": (checkpoint_bytes(_payload(state_dict={**_payload()["state_dict"],
                                                                     "conv1.weight": torch.empty(10, 1, 5, 5,
                                                                                                 device="meta")})),
                               "holds a shape-only (meta) tensor for conv1.weight, where the seed-net model has plain "
                               "dense weights: it is not a checkpoint saved by MNIST Studio"),
        "sparse weights": (checkpoint_bytes(_payload(state_dict={**_payload()["state_dict"],
                                                                 "conv1.weight": torch.ones(10, 1, 5, 5).to_sparse()})),
                           "holds a sparse (sparse_coo) tensor for conv1.weight, where the seed-net model has plain "
                           "dense weights"),
    }


@pytest.mark.parametrize("case", list(_bad_model_files()))
def test_a_bad_model_file_is_one_clear_message(case: str, tmp_path: Path) -> None:
    raw, words = _bad_model_files()[case]
    path = tmp_path / "model.pt"
    path.write_bytes(raw)
    with pytest.raises(CheckpointError) as from_file:
        load_checkpoint(path)
    assert words in str(from_file.value) and str(path) in str(from_file.value)
    with pytest.raises(CheckpointError, match="upload: model.pt") as from_upload:
        load_checkpoint(raw, name="upload: model.pt")
    assert words in str(from_upload.value)


@pytest.mark.parametrize("case", ["truncated", "empty", "another architecture", "NaN weights"])
def test_the_cli_reports_a_bad_model_file_on_one_line(case: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    raw, words = _bad_model_files()[case]
    path = tmp_path / "model.pt"
    path.write_bytes(raw)
    image = tmp_path / "digit.png"
    digit_image().save(image)
    for command in (["evaluate", "--checkpoint", str(path), "--data-root", str(tmp_path / "none")],
                    ["predict", "--checkpoint", str(path), str(image)]):
        code = main([*command, "--json"])
        captured = capsys.readouterr()
        line = assert_one_line_error(code, captured.err, words)
        assert_json_error(captured.out, line)  # nothing else on stdout: no reading, no half a result


def test_a_huge_model_file_is_refused_before_reading_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "huge.pt"
    with open(path, "wb") as handle:
        handle.truncate(200 * 10**6)  # sparse: 200 MB on paper, nothing on disk
    with pytest.raises(CheckpointError, match="is 200.0 MB; model files here are at most 64 MB"):
        load_checkpoint(path)
    assert_one_line_error(main(["predict", "--checkpoint", str(path), str(path)]), capsys.readouterr().err,
                          "at most 64 MB")
    with pytest.raises(CheckpointError, match="upload: big.pt is .* MB; model files here are at most"):
        load_checkpoint(b"\0" * 3 * 2**20, name="upload: big.pt", max_bytes=2**20)


# --- Interruption: a writer killed at a random moment leaves the old file or the new one, never a broken one ---

WRITER = textwrap.dedent("""
    import sys, torch
    from mnist_core.checkpoints import checkpoint_payload, write_checkpoint
    from mnist_core.models import build_model
    folder = sys.argv[1]
    model = build_model("nf-cnn", nf=128)  # ~1 M parameters: each write takes a while, so kills land mid-write
    for generation in range(10**6):
        with torch.no_grad():  # (+ 1: a first layer of zeros reads every picture alike, which the loader refuses)
            next(model.parameters()).fill_(generation + 1)
        payload = checkpoint_payload("nf-cnn", {"nf": 128}, model, {}, [], {"generation": generation})
        write_checkpoint(payload, f"{folder}/current.pt", overwrite=True)  # replaces the old one
        write_checkpoint(payload, f"{folder}/gen-{generation}.pt")  # a new name each time
        print(generation, flush=True)
""")


@pytest.mark.slow
def test_killing_the_writer_never_leaves_a_broken_checkpoint(tmp_path: Path) -> None:
    rng = random.Random(6)
    folders = [tmp_path / f"writer-{n}" for n in range(3)]
    writers = []
    for folder in folders:  # started together: their start-up (importing torch) overlaps
        folder.mkdir()
        writers.append(subprocess.Popen([sys.executable, "-c", WRITER, str(folder)], cwd=REPO_ROOT, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL))
    try:
        for writer in writers:
            writer.stdout.readline()  # generation 0 is complete: from now on there is an old file to protect
        for writer in writers:
            time.sleep(rng.uniform(0.05, 0.5))
            writer.send_signal(signal.SIGKILL)
    finally:
        for writer in writers:
            writer.kill()
            writer.wait()
    for folder in folders:
        listed = list_checkpoints(folder)
        assert folder / "current.pt" in listed
        for path in listed:  # every visible checkpoint is whole: it loads, and its weights are one generation's
            loaded = load_checkpoint(path)
            generation = loaded.metrics["generation"]
            assert torch.all(next(loaded.model.parameters()) == generation + 1), path
        assert all(p.name == "current.pt" or p.name.startswith("gen-") for p in listed)
        # What a killed writer left behind is cleaned up once it is clearly abandoned (not while it may be in use).
        for temp in folder.glob(".*.tmp"):
            os.utime(temp, (time.time() - STALE_TEMP_SECONDS - 1,) * 2)
        list_checkpoints(folder)
        assert not list(folder.glob(".*.tmp"))


@pytest.mark.parametrize("case", UNREACHABLE_CASES)
def test_a_model_file_that_cannot_be_reached_names_the_path_and_the_reason(case: str, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture) -> None:
    path, words = unreachable_case(tmp_path, "model.pt", case)
    with pytest.raises(CheckpointError, match=re.escape(f"{path} {words}")):
        load_checkpoint(path)
    assert_one_line_error(main(["evaluate", "--checkpoint", str(path)]), capsys.readouterr().err, str(path), words)


@pytest.mark.parametrize("stored, words", [
    ("mnist-studio/2", "was saved by another (newer) version of MNIST Studio (format 'mnist-studio/2'; this version "
                       "reads 'mnist-studio/1')"),
    ("mnist-studio/beta", "was saved by another version of MNIST Studio"),
])
def test_a_checkpoint_of_another_version_says_so(stored: str, words: str, tmp_path: Path) -> None:
    path = tmp_path / "future.pt"
    torch.save(_payload(format=stored), path)
    with pytest.raises(CheckpointError, match=re.escape(words)):
        load_checkpoint(path)


@pytest.mark.parametrize("history", [
    "not a list", [1, 2], [{"epoch": 1}], [{"epoch": "one", "train_loss": 0.1, "train_accuracy": 90,
                                           "test_loss": 0.1, "test_accuracy": 90}], [{"epoch": 1, "train_loss": True,
                                           "train_accuracy": 90, "test_loss": 0.1, "test_accuracy": 90}], None,
    # Numbers no float holds, or not finite: the Evaluate page's curves were an OverflowError ("int too large to
    # convert to float") for an epoch of 10**400.
    [{"epoch": 10**400, "train_loss": 0.1, "train_accuracy": 90, "test_loss": 0.1, "test_accuracy": 90}],
    [{"epoch": 1, "train_loss": 0.1, "train_accuracy": 90, "test_loss": float("nan"), "test_accuracy": 90}],
    [{"epoch": float("inf"), "train_loss": 0.1, "train_accuracy": 90, "test_loss": 0.1, "test_accuracy": 90}],
])
def test_a_malformed_history_is_dropped_and_the_model_still_loads(history: object, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  tiny_mnist: object) -> None:
    path = tmp_path / "odd-history.pt"
    torch.save(_payload(history=history), path)
    loaded = load_checkpoint(path)  # the app's loading path (studio_ui.resources) calls this too
    assert loaded.history == [] and loaded.model_name == "seed-net"
    import mnist_core.data

    monkeypatch.setattr(mnist_core.data, "load_mnist", lambda *args, **kwargs: tiny_mnist)
    assert main(["evaluate", "--checkpoint", str(path), "--device", "cpu", "--json"]) == 0
    assert "Traceback" not in capsys.readouterr().err


def test_a_well_formed_history_is_kept(tmp_path: Path) -> None:
    record = {"epoch": 1.0, "train_loss": 0.1, "train_accuracy": 97.0, "test_loss": 0.1, "test_accuracy": 98.0,
              "lr": 0.01, "seconds": 3.0, "elapsed": 3.0}
    path = tmp_path / "good-history.pt"
    torch.save(_payload(history=[record]), path)
    assert load_checkpoint(path).history == [record]


def test_a_shape_mismatch_ends_its_parenthesis_without_torch_s_full_stop() -> None:
    """It read "… the shape in current model is torch.Size([32, 1, 3, 3]).): the weights were saved for …"."""
    with pytest.raises(CheckpointError) as refused:
        load_checkpoint(checkpoint_bytes(_payload("nf-cnn", model_kwargs={"nf": 16})), name="upload: small.pt")
    message = str(refused.value)
    assert "size mismatch" in message and message.endswith("3, 3])): the weights were saved for a different model")


# --- Resource bombs: small files that would make the loader read or copy far more than their size ---

def _repacked(raw: bytes, extra_entries: Callable[[zipfile.ZipFile], None]) -> bytes:
    """A torch zip written again entry by entry (stored, as torch.save does), then `extra_entries(archive)` run before
    its table of contents is written."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as packed:
        for entry in source.infolist():
            packed.writestr(entry, source.read(entry))
        extra_entries(packed)
    return out.getvalue()


def _listing_the_weights_again(copies: int, same_name: bool) -> Callable[[zipfile.ZipFile], None]:
    """Add `copies` more table-of-contents rows for the first weight's bytes (which stay stored once): a reader that
    trusts the table reads them `copies` more times."""
    def add(archive: zipfile.ZipFile) -> None:
        weights = next(entry for entry in archive.filelist if entry.filename.endswith("/data/0"))
        for number in range(copies):
            twin = copy.copy(weights)
            twin.filename = weights.filename if same_name else f"{weights.filename}-{number}"
            archive.filelist.append(twin)
    return add


@pytest.mark.parametrize("same_name", [True, False], ids=["same name", "other names"])
def test_a_zip_that_lists_the_same_bytes_twice_is_refused_before_reading_them(same_name: bool) -> None:
    """/tmp/audit overlap.pt listed one 4 MB entry 3,000 times: the checksum pass read it 3,000 times (hours)."""
    raw = _repacked(checkpoint_bytes(_payload()), _listing_the_weights_again(3, same_name))
    with pytest.raises(CheckpointError, match=re.escape(
            "upload: x.pt is a malformed zip archive (its table of contents lists the same name or the same bytes "
            "more than once), which torch.save never writes")):
        load_checkpoint(raw, "upload: x.pt")


def test_a_zip_of_thousands_of_entries_is_refused() -> None:
    def many(archive: zipfile.ZipFile) -> None:
        for number in range(MAX_ZIP_ENTRIES):
            archive.writestr(f"archive/extra/{number}", b"")

    raw = _repacked(checkpoint_bytes(_payload()), many)
    entries = len(zipfile.ZipFile(io.BytesIO(raw)).infolist())
    assert entries > MAX_ZIP_ENTRIES
    with pytest.raises(CheckpointError, match=f"is a zip archive of {entries:,} entries, where a checkpoint has a few "
                                              f"dozen"):
        load_checkpoint(raw, "upload: x.pt")


def test_a_checkpoint_whose_pickle_is_too_large_to_unpickle_quickly_is_refused() -> None:
    """The weights-only unpickler is Python: a 40 MB pickle of references (a history of one record listed 20 million
    times) took over a minute before a single check could run."""
    raw = checkpoint_bytes(_payload(config={"notes": "x" * (MAX_PICKLE_BYTES + 1)}))
    with pytest.raises(CheckpointError, match=r"upload: x.pt holds 2,000,\d\d\d bytes of settings and history besides "
                                              r"its weights, where a checkpoint has at most 2,000,000"):
        load_checkpoint(raw, "upload: x.pt")


def test_a_history_of_more_records_than_any_run_makes_is_dropped_uncopied() -> None:
    """One record referenced MAX_HISTORY_RECORDS + 1 times is a few KB in the file; copied, such histories took GBs."""
    record = {"epoch": 1.0, "train_loss": 0.1, "train_accuracy": 97.0, "test_loss": 0.1, "test_accuracy": 98.0}
    loaded = load_checkpoint(checkpoint_bytes(_payload(history=[record] * (MAX_HISTORY_RECORDS + 1))), "x.pt")
    assert loaded.history == [] and loaded.model_name == "seed-net"
    assert len(load_checkpoint(checkpoint_bytes(_payload(history=[record] * 100)), "x.pt").history) == 100


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit is deprecated: users still have such files
def test_a_torchscript_export_is_called_one(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """It was called "a compressed zip archive, which torch.save never writes" (its code entries are deflated)."""
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(build_model("fast", width=8, hidden=32)), path)
    code = main(["evaluate", "--checkpoint", str(path)])
    assert_one_line_error(code, capsys.readouterr().err, f"{path} is a TorchScript export (saved by torch.jit.save, "
                          "with the model's code), not an MNIST Studio checkpoint: use a .pt checkpoint saved by MNIST "
                          "Studio")


# --- A model whose weights are finite but whose outputs are not ---

def _overflowing_on_digits() -> dict:
    """A `fast` checkpoint whose outputs are finite on blank paper and on all ink but overflow on a drawn digit, as
    /tmp/audit scaled_overflow.pt (its last layer ×6.9e37). The two dense layers are scaled together (the ReLU between
    them passes the scale on; the last bias is left as it is), each weight staying finite, by the largest factor that
    keeps the outputs on the first two finite."""
    torch.manual_seed(0)
    model = build_model("fast", width=8, hidden=32).eval()
    original = {key: value.clone() for key, value in model.state_dict().items()}
    plain = (torch.tensor([0.0, 1.0]).view(2, 1, 1, 1).expand(2, 1, 28, 28) - MEAN) / STD
    ring = _probe_pictures()[2:3]  # the drawn 0 of the loader's probes

    def scaled_by(factor: float) -> torch.nn.Module:
        first, second = 1e20, factor / 1e20
        multiplier = {"9.weight": first, "9.bias": first, "11.weight": second}
        model.load_state_dict({key: value * multiplier.get(key, 1) for key, value in original.items()})
        return model

    low, high = 1.0, 1e50  # finite on the plain pictures at `low`, not at `high`: bisect (in log scale)
    for _ in range(60):
        middle = (low * high) ** 0.5
        with torch.no_grad():
            low, high = (middle, high) if torch.isfinite(scaled_by(middle)(plain)).all() else (low, middle)
    with torch.no_grad():
        assert torch.isfinite(scaled_by(low)(plain)).all() and not torch.isfinite(model(ring)).all()
    return checkpoint_payload("fast", {"width": 8, "hidden": 32}, model, {}, [], {})


def test_weights_that_overflow_only_on_a_drawn_digit_are_refused_on_loading() -> None:
    """Blank paper and all ink were the only probes: the audit's file loaded, then read every digit as NaN."""
    with pytest.raises(CheckpointError, match="upload: x.pt gives NaN or infinite outputs although its weights are "
                                              "finite"):
        load_checkpoint(checkpoint_bytes(_overflowing_on_digits()), "upload: x.pt")


class _NaNOnEverything(torch.nn.Module):
    """Finite on the loader's probes (as no probe can stand for every picture), NaN on anything else."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = build_model("fast", width=8, hidden=32).eval()
        self.probes = _probe_pictures()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.inner(images)
        is_probe = images.shape == self.probes.shape and torch.equal(images, self.probes)
        return logits if is_probe else logits * float("nan")


@pytest.fixture()
def nan_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkpoint file that loads but gives NaN on the user's pictures and on the test split."""
    import mnist_core.checkpoints

    path = write_checkpoint(_payload("fast", model_kwargs={"width": 8, "hidden": 32}, state_dict=build_model(
        "fast", width=8, hidden=32).state_dict()), tmp_path / "nan.pt")
    real_load = mnist_core.checkpoints.load_checkpoint

    def load_with_nan_outputs(*args, **kwargs):
        loaded = real_load(*args, **kwargs)
        loaded.model = _NaNOnEverything()
        return loaded

    monkeypatch.setattr(mnist_core.checkpoints, "load_checkpoint", load_with_nan_outputs)
    return path


def test_predict_refuses_a_model_whose_outputs_are_nan_on_the_picture(nan_model: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    """It printed `"probabilities": [NaN, …]` (not JSON), digit 0, unsure false, exit 0; as text "0 (nan%)"."""
    image = tmp_path / "digit.png"
    digit_image().save(image)
    code = main(["predict", "--checkpoint", str(nan_model), str(image), "--json"])
    captured = capsys.readouterr()
    line = assert_one_line_error(code, captured.err, f"{nan_model} gives NaN or infinite outputs on {image} although "
                                 f"its weights are finite")
    assert_json_error(captured.out, line)


def test_evaluate_refuses_a_model_whose_outputs_are_nan_on_the_test_split(nan_model: Path, tiny_mnist: object,
                                                                          monkeypatch: pytest.MonkeyPatch,
                                                                          capsys: pytest.CaptureFixture) -> None:
    """It printed `"test_loss": NaN, "confidence_floor": 1.0` and exit 0."""
    import mnist_core.data

    monkeypatch.setattr(mnist_core.data, "load_mnist", lambda *args, **kwargs: tiny_mnist)
    code = main(["evaluate", "--checkpoint", str(nan_model), "--device", "cpu", "--json"])
    captured = capsys.readouterr()
    line = assert_one_line_error(code, captured.err, f"{nan_model} gives NaN or infinite outputs on MNIST's test "
                                 f"images although its weights are finite")
    assert_json_error(captured.out, line)
