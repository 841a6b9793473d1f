"""`python -m mnist_core models|train|evaluate|predict` — the command-line face of the library.

Exit codes: 0 ok (a `warning: …` line on stderr may flag a poor result: a run that did not learn), 2 bad input (one
line on stderr, no traceback; also a stdout that cannot be written, `> /dev/full`), 1 a bug (one line;
MNIST_STUDIO_DEBUG=1 shows the traceback), 130 interrupted, 141 stdout closed early (`| head`: quietly, as SIGPIPE ends
other Unix tools). With `--json` stdout holds one JSON value, strict JSON (notes and progress go to stderr), also when
the command fails: {"error": the stderr line's message, "exit_code": N}.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import signal
import sys
import threading
import traceback
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from mnist_core.errors import StudioError, message_text, os_reason, printable

if TYPE_CHECKING:  # hints only: torch is imported inside the commands, where a missing or broken one is caught
    from mnist_core.train import BatchReport, EvalRecord, TrainResult, TrainStart

DEBUG_ENV = "MNIST_STUDIO_DEBUG"  # =1: let unexpected errors show their traceback
EXIT_BROKEN_PIPE = 128 + 13  # what the shell reports for a tool that SIGPIPE ended
JSON_DECIMALS = 4  # accuracies and losses in JSON: enough for 1 image in 10,000, without float32 noise


class UsageError(SystemExit):
    """A bad command line: exit 2, its one-line message already on stderr."""

    def __init__(self, message: str) -> None:
        super().__init__(2)
        self.message = message


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit 2 (its default prints the whole usage), and options
    must be spelled out: `--jso` was taken for --json, yet the JSON a failure prints looks for `--json` itself."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)  # (subparsers are made with this class, so they get it too)
        super().__init__(*args, **kwargs)
        self.typed: list[str] = []  # the words this parser was given (a subparser: those after its command's name)

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:
        self.typed = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> None:  # type: ignore[override]
        # it quotes what was typed
        message = message_text(self._dash_file_problem() or f"{message} (see `{self.prog} --help`)")
        _say(f"error: {message}")
        raise UsageError(message)

    def _dash_file_problem(self) -> str | None:
        """What is wrong when a word typed names a file but starts with '-' (`predict -x.png`), so argparse took it for
        an option: it said `the following arguments are required: IMAGE`, or `unrecognized arguments: -x.png`."""
        for word in self.typed:
            if word == "--":  # what follows is never an option
                break
            if (len(word) < 2 or not word.startswith("-") or word.split("=")[0] in self._option_string_actions
                    or self._negative_number_matcher.match(word)):  # (`--seed -1`: argparse reads it as a number)
                continue
            with contextlib.suppress(OSError, ValueError):  # (a NUL byte, a name too long: not a file anyway)
                if os.path.lexists(word):
                    return (f"{word} is read as an option, as it starts with '-', but it is a file: write it as "
                            f"./{word}")  # (not `-- {word}`: wrong for an option's value, `--checkpoint -m.pt`)
        return None


class _Stderr:
    """sys.stderr whose failed writes go nowhere, as with a closed stderr. A stderr that cannot be written
    (`2>/dev/full`) made a bad input an internal error (exit 1) without its JSON, and the progress bar ended a
    training run; the exit code and --json's line still say what happened."""

    def write(self, text: str) -> int:
        try:
            return sys.stderr.write(text)
        except OSError:
            return len(text)

    def flush(self) -> None:
        try:
            sys.stderr.flush()
        except OSError:
            pass

    def __getattr__(self, name: str) -> Any:  # the rest of a stream (tqdm asks for its encoding, isatty, fileno)
        return getattr(sys.stderr, name)


def _say(line: str) -> None:
    """One line on stderr (an error, a warning, a note), written even where stderr cannot be (see `_Stderr`)."""
    stream = _Stderr()
    stream.write(line + "\n")
    stream.flush()


class _StdoutFailed(Exception):
    """Writing the result to stdout failed (a full disk, `> /dev/full`): the user's environment, not a bug, and nothing
    more can be written there (not even the JSON of the failure)."""


@contextlib.contextmanager
def _writing_stdout() -> Iterator[None]:
    """Turn a failed write to stdout into _StdoutFailed; a closed pipe (`| head`) stays a BrokenPipeError."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as error:
        raise _StdoutFailed(os_reason(error)) from None


def _emit(value: Any, as_json: bool, human: str) -> None:
    with _writing_stdout():
        if as_json:
            print(_json_text(value))
        elif human:  # nothing to report (say, every image was bad and said so on stderr): no blank line either
            print(human)


def _json_text(value: Any) -> str:
    """Strict JSON: json.dumps writes NaN and Infinity by default, which JSON readers refuse; here they become null.
    (evaluate and predict refuse a model's non-finite outputs before this: it guards whatever else could carry one.)"""
    return json.dumps(_with_floats(value, lambda key, number: number if math.isfinite(number) else None),
                      allow_nan=False)


def _rounded_metrics(value: Any) -> Any:
    """`value` with every accuracy and loss (by key name, at any depth) rounded to JSON_DECIMALS: 99.32, not float32's
    99.31999969482422. Other numbers (learning rates, probabilities) keep their precision."""
    return _with_floats(value, lambda key, number: round(number, JSON_DECIMALS)
                        if key is not None and key.endswith(("accuracy", "loss")) else number)


def _with_floats(value: Any, change: Callable[[str | None, float], float | None], key: str | None = None) -> Any:
    """`value` with each float in it (at any depth of lists and dicts) replaced by `change(its dict key, it)`; the key
    is None for a float that is not a dict's value."""
    if isinstance(value, float):
        return change(key, value)
    if isinstance(value, (list, tuple)):
        return [_with_floats(item, change) for item in value]
    if isinstance(value, dict):
        return {name: _with_floats(item, change, name) for name, item in value.items()}
    return value


def cmd_models(args: argparse.Namespace) -> int:
    """`models`: the registry, one row per model (name, seed, parameter count, description)."""
    from mnist_core.models import REGISTRY, count_parameters

    rows = [{"name": spec.name, "seed": spec.seed, "parameters": count_parameters(spec.build()),
             "description": spec.description} for spec in REGISTRY.values()]
    human = "\n".join(f"{r['name']:<9} seed {r['seed']:<9} {r['parameters']:>8,} params  {r['description']}"
                      for r in rows)
    _emit(rows, args.json, human)
    return 0


class _TqdmProgress:
    """Training progress on stderr (tqdm), as a train.Callback."""

    def __init__(self) -> None:
        self.bar = None
        self.stream = _Stderr()  # one object for the bar and its lines: tqdm clears a bar before a line to its stream

    def on_train_start(self, start: TrainStart) -> None:
        from tqdm import tqdm

        config = start.config
        if config.epochs * start.steps_per_epoch < 1:
            # fit() trains at least one whole batch: say so rather than silently train more than --epochs asked.
            # (A note, not a refusal: the app's Train page shares TrainConfig and allows such runs.)
            _say(f"note: {config.epochs:g} epochs is less than one batch of {config.batch_size} images: training "
                 f"one batch ({start.total_steps / start.steps_per_epoch:.3g} epochs) instead")
        self.bar = tqdm(total=start.total_steps, unit="batch", file=self.stream, dynamic_ncols=True,
                        desc=f"{config.model} on {start.device}")

    def on_batch_end(self, report: BatchReport) -> None:
        self.bar.update(report.step - self.bar.n)
        self.bar.set_postfix(loss=f"{report.loss:.4f}", lr=f"{report.lr:.2g}", img_s=f"{report.images_per_second:,.0f}")

    def on_evaluation(self, record: EvalRecord) -> None:
        # tqdm.write prints on stdout unless told otherwise; stdout is for the result (the JSON with --json).
        self.bar.write(f"epoch {record.epoch:.2f}: train loss {record.train_loss:.4f} acc {record.train_accuracy:.2f}% "
                       f"| test loss {record.test_loss:.4f} acc {record.test_accuracy:.2f}% | {record.seconds:.1f}s",
                       file=self.stream)

    def on_train_end(self, result: TrainResult) -> None:
        self.close()

    def close(self) -> None:
        """End the bar's line, also when training fails, so an error message gets a line of its own."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _config_from_args(args: argparse.Namespace) -> Any:
    from mnist_core.config import preset_config, recipe_for_model

    config = preset_config(args.preset) if args.preset else recipe_for_model(args.model or "fast")
    if args.model and args.model != config.model:
        # The preset's model settings (say width and hidden) are for its own model, not for the one asked for.
        config = replace(config, model=args.model, model_kwargs={})
    overrides = {name: getattr(args, name) for name in
                 ("epochs", "batch_size", "lr", "optimizer", "scheduler", "momentum", "beta2", "nesterov",
                  "weight_decay", "step_size", "gamma", "pct_start", "label_smoothing", "augment", "rotation",
                  "translate", "scale", "shear", "scribbles", "scribble_shapes", "seed", "device", "precision",
                  "compile", "train_subset", "eval_every")
                 if getattr(args, name) is not None}
    if args.model_kwarg:
        # On top of the preset's: `--preset "GPU: fastest to 99 %" --model-kwarg width=48` keeps its hidden=256.
        overrides["model_kwargs"] = {**config.model_kwargs, **_model_kwargs(config.model, args.model_kwarg)}
    config = replace(config, **overrides).validate()
    if problem := _ignored_option(args, config):
        raise StudioError(problem)
    return config


def _ignored_option(args: argparse.Namespace, config: Any) -> str | None:
    """What is wrong when an option was given that this run would ignore, else None. `--rotation 15` without
    --augment trained with no augmentation at all, silently; refused before training instead."""
    # (options, ignored in this run, why and what to do instead)
    rules = ((("rotation", "translate", "scale", "shear"), not config.augment,
              "acts only with --augment, and this run does not augment: add --augment"),
             (("step_size", "gamma"), config.scheduler != "step",
              f"acts only with --scheduler step, and this run's scheduler is {config.scheduler}: add --scheduler step"),
             (("pct_start",), config.scheduler != "onecycle", f"acts only with --scheduler onecycle, and this run's "
              f"scheduler is {config.scheduler}: add --scheduler onecycle"),
             (("beta2",), config.optimizer not in ("adam", "adamw"), f"acts only with --optimizer adam or adamw, and "
              f"this run's optimizer is {config.optimizer}: choose one of them"),
             (("momentum",), config.optimizer == "adadelta",
              "has no effect with --optimizer adadelta, which has no momentum: choose sgd, adam or adamw"),
             # OneCycleLR(cycle_momentum=True) overwrites SGD's momentum / Adam's beta1 at every step.
             (("momentum",), config.scheduler == "onecycle", "has no effect with --scheduler onecycle, which cycles "
              "the momentum itself (0.95 → 0.85 → 0.95): choose another --scheduler"),
             (("scribble_shapes",), not config.scribbles,
              "acts only with --scribbles, and this run has none: add --scribbles, e.g. 0.25"))
    for names, ignored, why in rules:
        given = next((name for name in names if getattr(args, name) is not None), None)
        if ignored and given:
            option = "--" + given.replace("_", "-")
            return f"{option} {why}, or leave {option} out"
    return None


def _model_kwargs(model: str, items: list[str]) -> dict[str, int | float]:
    """`--model-kwarg width=48` items -> {"width": 48}, typed like the knob (whole numbers for layer sizes)."""
    from mnist_core.models import get_spec

    knobs = get_spec(model).knobs
    kwargs: dict[str, int | float] = {}
    for item in items:
        key, equals, text = item.partition("=")
        key = key.strip()  # `"width = 48"` (quoted, with spaces) named no knob "width " (float() trims the value)
        if not equals:
            raise StudioError(f"--model-kwarg {item!r} must look like name=number")
        if not key:
            raise StudioError(f"--model-kwarg {item!r} has no setting name before '=': give name=number, e.g. "
                              f"width=48 ({model} takes {', '.join(knobs) or 'none'})")
        if not text.strip():
            raise StudioError(f"--model-kwarg {item!r} has no value after '=': give name=number, e.g. {key}=48")
        try:
            value = float(text)
        except ValueError:
            raise StudioError(f"--model-kwarg {item!r} must look like name=number") from None
        if key in knobs and isinstance(knobs[key].default, int):
            if not value.is_integer():  # (nan and inf too: 1e400 reads as inf)
                raise StudioError(f"--model-kwarg {item!r}: {key} must be a whole number from {knobs[key].low} to "
                                  f"{knobs[key].high}")
            value = int(value)
        kwargs[key] = value
    return kwargs  # unknown names and out-of-range values are refused by the model's own checks


def cmd_train(args: argparse.Namespace) -> int:
    """`train`: train a model with `fit` (progress on stderr) and save it as a checkpoint; returns the exit code."""
    from mnist_core.checkpoints import CHECKPOINT_DIR, CHECKPOINT_SUFFIXES, check_writable, free_checkpoint_name
    from mnist_core.config import epochs_text
    from mnist_core.data import load_mnist
    from mnist_core.device import pick_device
    from mnist_core.errors import TrainingDiverged
    from mnist_core.train import compile_problem, fit

    config = _config_from_args(args)
    if args.out is not None and (not args.out or args.out.endswith(("/", os.sep))):
        # Path() would read `runs/` as a file named runs, and "" (an unset variable in a script) as the default name.
        named = args.out.rstrip("/" + os.sep)
        if named and os.path.isfile(named):  # "x.pt/" with x.pt a file: x.pt/model.pt could never be written
            raise StudioError(f"--out {args.out!r} names no file, and {named} is a file, not a folder: give the file "
                              f"name without the trailing slash, such as {named}")
        raise StudioError(f"--out {args.out!r} names no file: give a file name such as "
                          f"{Path(args.out or '.') / 'model.pt'}")
    chosen = args.out is not None
    stamp = f"{config.model}-{datetime.now():%Y%m%d-%H%M%S}"
    out = Path(args.out) if chosen else CHECKPOINT_DIR / f"{stamp}.pt"
    # A name the user did not choose is never replaced: a run started in the same second may hold it. Nor is it a
    # reason to refuse: the save takes the next free name (_save_run), so the free one is what is checked here.
    overwrite = args.overwrite and chosen
    # A folder or a device is check_writable's to refuse; a dangling symlink is a name taken all the same.
    if chosen and (os.path.isfile(out) or os.path.islink(out)) and not overwrite:  # (Path's raise on a too-long name)
        raise StudioError(f"{out} already exists: choose another --out or pass --overwrite (nothing was overwritten)")
    # refused before spending minutes on training, not after
    check_writable(out if chosen else CHECKPOINT_DIR / f"{free_checkpoint_name(stamp, CHECKPOINT_DIR)}.pt", overwrite)
    if overwrite and os.path.isfile(out):
        _refuse_unless_checkpoint(out)
    # (the app lists `x.PT` too: suffixes in any case)
    if out.suffix.lower() not in CHECKPOINT_SUFFIXES and out.resolve().parent == CHECKPOINT_DIR.resolve():
        _say(f"note: the app lists only {' and '.join(CHECKPOINT_SUFFIXES)} files in checkpoints/, so it will not "
             f"show {printable(out.name)}: add .pt to the name to see it there")
    pick_device(config.device)  # an unavailable --device is refused before the data is loaded
    if config.compile and (problem := compile_problem()):  # (fit checks again, for the app; here before the data)
        raise StudioError(problem)
    _import_mnist_reader(args.json)
    data = load_mnist(args.data_root)
    progress = _TqdmProgress()
    if config.compile:
        _say("compiling the model (torch.compile) before training starts; this takes a while")
    try:
        result = fit(config, data, [progress], threading.Event())
    except TrainingDiverged as error:
        # The last good weights are worth keeping when an evaluation point was reached before the loss blew up.
        if error.result is not None and error.result.history:
            # Never over the file --overwrite named (the default model, say): the run failed (exit 2), and a script
            # that reads the exit code keeps using that file, which would now hold the diverged run's early weights.
            saved, taken = _save_run(error.result, out, False, chosen, "is kept: a run that diverged replaces nothing")
            raise StudioError(f"{error}; saved them to {saved}" + (f" ({taken})" if taken else "")) from None
        raise
    finally:
        progress.close()
    saved, taken = _save_run(result, out, overwrite, chosen)
    if taken:  # exit 2: a script would otherwise read another program's model at --out
        raise StudioError(f"{taken}: saved this run as {saved} instead")
    summary = {"model": config.model, "epochs": result.epochs_done, "device": result.device,
               "train_seconds": round(result.train_seconds, 3), "eval_seconds": round(result.eval_seconds, 3),
               "compile_seconds": round(result.compile_seconds, 3),
               "test_accuracy": result.test_accuracy, "test_loss": result.test_loss, "checkpoint": str(saved),
               "warning": result.warning, "config": config.to_dict(), "history": [h.to_dict() for h in result.history]}
    if result.warning:  # saved all the same (exit 0): a script can read "warning" in the JSON
        _say(f"warning: {result.warning}")
    _emit(_rounded_metrics(summary), args.json,
          f"{config.model}: {result.test_accuracy:.2f}% test accuracy after {epochs_text(result.epochs_done)} in "
          f"{result.train_seconds:.1f}s on {result.device}"
          + (f" (plus {result.compile_seconds:.1f}s compiling)" if config.compile else "")
          + f"; saved {printable(str(saved))}")
    return 0


def _refuse_unless_checkpoint(out: Path) -> None:
    """--overwrite replaces a checkpoint, not whatever file --out happens to name (a typo away from README.md); a
    checkpoint whose model is of no use (a run that did not learn) is one all the same."""
    from mnist_core.checkpoints import is_saved_checkpoint

    if not is_saved_checkpoint(out):
        raise StudioError(f"{out} does not load as an MNIST Studio checkpoint, and --overwrite replaces only those: "
                          f"choose another --out, or move that file away yourself (nothing was overwritten)")


def _save_run(result: Any, out: Path, overwrite: bool, chosen: bool,
              taken_because: str = "was created by another program while this run trained (nothing was overwritten)"
              ) -> tuple[Path, str]:
    """Save the run at `out`; if `out` is taken (another program created it while this one trained, or, for a default
    name, a run started in the same second holds it), save it beside, as NAME-2.pt…, rather than lose the run.
    Returns where it went and, if the user named `out` (`chosen`), why not there (`out` followed by `taken_because`);
    a default name is no one's choice, so the next free one is no news."""
    from mnist_core.checkpoints import save_result

    try:
        return save_result(result, out, overwrite=overwrite), ""
    except StudioError:
        if overwrite or not os.path.lexists(out):
            raise  # not the race: a full disk, a folder gone read-only...
    for number in range(2, 100):
        beside = out.with_name(f"{out.stem}-{number}{out.suffix}")
        if os.path.lexists(beside):
            continue
        try:
            saved = save_result(result, beside)
        except StudioError:
            if os.path.lexists(beside):  # taken meanwhile too: try the next number
                continue
            raise
        return saved, f"{out} {taken_because}" if chosen else ""
    raise StudioError(f"{out} is taken, and {out.stem}-2…99{out.suffix} are taken too: nothing was saved and nothing "
                      f"was overwritten; choose another --out")


def _load_checkpoint(path: str) -> Any:
    from mnist_core.checkpoints import DEFAULT_CHECKPOINT, load_checkpoint

    if path == str(DEFAULT_CHECKPOINT) and not os.path.lexists(path):
        # Without --checkpoint the user named no path: "does not exist: check the path" sent them looking for a typo.
        raise StudioError(f"the default model {path} is missing: restore it from the repository (git checkout -- "
                          f"checkpoints/default.pt), or give --checkpoint a model file saved by `train` or the app")
    return load_checkpoint(path)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """`evaluate`: a checkpoint's accuracy, loss and confusion matrix on the test split; returns the exit code."""
    import torch

    from mnist_core.checkpoints import non_finite_outputs_error
    from mnist_core.data import load_mnist
    from mnist_core.device import pick_device
    from mnist_core.evaluate import evaluate

    checkpoint = _load_checkpoint(args.checkpoint)
    device = pick_device(args.device)  # refuse a bad file or device before reading the data
    _import_mnist_reader(args.json)
    data = load_mnist(args.data_root, with_train=False)  # (the test split is all it needs: 8 MB, not 55)
    model = checkpoint.model.to(device)
    report = evaluate(model, data.test)
    if not (torch.isfinite(report.probabilities).all() and math.isfinite(report.loss)):
        raise non_finite_outputs_error(checkpoint.source, "MNIST's test images")
    value = _rounded_metrics({"checkpoint": str(args.checkpoint), "model": checkpoint.model_name, **report.to_json()})
    _emit(value, args.json, f"{checkpoint.model_name}: {report.accuracy:.2f}% test accuracy, loss {report.loss:.4f}\n"
          + _confusion_text(report.confusion))
    return 0


def _confusion_text(confusion: list[list[int]]) -> str:
    """The confusion matrix as a table: `--help` promises it, and without --json the command printed only the
    accuracy and the loss."""
    width = max(5, *(len(f"{count:,}") + 1 for row in confusion for count in row))
    lines = ["confusion matrix (rows: true digit, columns: predicted digit):",
             "true" + "".join(f"{digit:>{width}}" for digit in range(len(confusion)))]
    lines += [f"{true:>4}" + "".join(f"{count:>{width},}" for count in row) for true, row in enumerate(confusion)]
    return "\n".join(lines)


def cmd_predict(args: argparse.Namespace) -> int:
    """`predict`: the digit and ten probabilities for each image file ('-' is stdin); returns the exit code."""
    from mnist_core.checkpoints import non_finite_outputs_error
    from mnist_core.errors import MB, ImageError
    from mnist_core.sketch import MAX_FILE_BYTES, open_image, predict, unsure_threshold

    if args.images.count("-") > 1:  # the second read would find it empty and blame the picture
        raise StudioError("standard input can be read only once: give '-' for one picture at most")
    if "-" in args.images and sys.stdin is None:  # (`<&-`: Python then has no sys.stdin at all)
        raise StudioError(f"standard input is closed, so '-' has no picture to read: {_PIPE_A_PICTURE}")
    if "-" in args.images and _is_terminal(sys.stdin):
        # Nothing piped in: the read waited, silently and for ever, for a picture to be typed at the keyboard.
        raise StudioError(f"standard input is the terminal, so '-' would wait for a picture typed at the keyboard: "
                          f"{_PIPE_A_PICTURE}")
    checkpoint = _load_checkpoint(args.checkpoint)
    unsure_below = unsure_threshold(checkpoint.metrics)
    if weakness := _weak_model_warning(checkpoint):
        _say(f"warning: {weakness}")
    results, failed = [], False
    for path in args.images:
        try:
            # "-" is standard input, as for other Unix tools (a picture piped from another program).
            source = _read_stdin(MAX_FILE_BYTES + 1) if path == "-" else path
            if path == "-" and len(source) > MAX_FILE_BYTES:  # read only this far: how much more is unknown
                raise ImageError(f"standard input is over {MAX_FILE_BYTES // MB} MB: use a smaller image")
            prediction = predict(checkpoint.model, open_image(source, "standard input" if path == "-" else None),
                                 unsure_below)
        except StudioError as error:
            _say(f"error: {error}")
            results.append({"path": path, "digit": None, "probabilities": None, "error": str(error)})
            failed = True
            continue
        if not prediction.empty and not all(map(math.isfinite, prediction.probabilities)):
            # The model's fault, not the picture's: no reading of any picture can be trusted.
            raise non_finite_outputs_error(checkpoint.source, "standard input" if path == "-" else path)
        if prediction.empty:
            results.append({"path": path, "digit": None, "probabilities": None,
                            "note": "empty image: no ink found, nothing to classify"})
        else:
            results.append({"path": path, "digit": prediction.digit, "probabilities": prediction.probabilities,
                            "unsure": prediction.unsure, "mostly_ink": prediction.mostly_ink,
                            "thick_strokes": prediction.thick_strokes, "tiny_mark": prediction.tiny_mark,
                            "several_digits": prediction.several_digits})

    def why_unsure(result: dict[str, Any]) -> str:  # thick strokes say so themselves, just after (not for a dot)
        if result["tiny_mark"]:
            return ", unsure: only a dot or a short dash"
        if result["mostly_ink"]:
            return ", unsure: not one digit on a plain background"
        if result["several_digits"]:
            return ", unsure: several digits side by side"
        return f", unsure: below {unsure_below:.0%}" if max(result["probabilities"]) < unsure_below else ""

    # A bad image has said so on stderr (its message names it), so the text lines are for the images that were read.
    human = "\n".join(f"{printable(r['path'])}: " + (f"{r['digit']} ({max(r['probabilities']):.1%}" + why_unsure(r)
                                           + (", strokes too thick for its size"
                                              if r["thick_strokes"] and not r["tiny_mark"] else "") + ")"
                                           if r["digit"] is not None else r["note"])
                       for r in results if "error" not in r)
    _emit(results, args.json, human)
    return 2 if failed else 0


def _weak_model_warning(checkpoint: Any) -> str | None:
    """What to say of a model too weak for its readings to mean much (as the Sketch page says), else None. Its own
    confidence floor is low too, so a run stopped at 61 % read a clear 2 as "5 (36.7%)", not unsure, without a word."""
    from mnist_core.evaluate import WEAK_MODEL_ACCURACY

    accuracy = checkpoint.metrics.get("test_accuracy")
    if not isinstance(accuracy, (int, float)) or accuracy >= WEAK_MODEL_ACCURACY:
        return None
    return (f"{checkpoint.source} reads only {accuracy:.2f} % of MNIST's test digits right (under "
            f"{WEAK_MODEL_ACCURACY:g} %), so what it reads means little: train it longer, or give --checkpoint a "
            f"better model")


_PIPE_A_PICTURE = "pipe one in (cat digit.png | python -m mnist_core predict -) or give the picture's path"


def _is_terminal(stream: Any) -> bool:
    """Whether `stream` is a terminal (a stream closed or without isatty, as tests and embedders give, is not)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _read_stdin(limit: int) -> bytes:
    """Up to `limit` bytes of standard input (a picture piped in); unreadable (`< somefolder`), an ImageError."""
    from mnist_core.errors import ImageError

    try:
        return sys.stdin.buffer.read(limit)
    except OSError as error:
        raise ImageError(f"cannot read standard input ({os_reason(error)}): pipe a picture in, or give the "
                         f"picture's path instead of '-'") from None


class _VersionAction(argparse.Action):
    """`--version`: what a bug report needs — the checkpoint format this version reads and writes, and the library
    versions in use. Worked out only when asked (importing torchvision takes seconds), printed on one line."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        import torch
        import torchvision

        from mnist_core.checkpoints import FORMAT
        print(f"MNIST Studio (checkpoint format {FORMAT}); torch {torch.__version__}, torchvision "
              f"{torchvision.__version__}, Python {sys.version.split()[0]}")
        raise _VersionShown(0)


class _VersionShown(SystemExit):
    """`--version` has printed the versions: with --json, its JSON line is {"version": …}, not {"help": …}."""


def _preset_name(typed: str) -> str:
    """The preset `typed` names, read without its capitals and blanks: "fastest to 99%" (most people write no space
    before %) and "Seed 004" were refused as invalid choices, though they name one preset and no other. A name that
    matches none is returned as typed, for argparse to refuse with the list of presets."""
    from mnist_core.config import PRESETS

    def squeezed(name: str) -> str:
        return "".join(name.split()).casefold()

    return next((name for name in PRESETS if squeezed(name) == squeezed(typed)), typed)


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of all four commands (it imports torch, for the registry and the defaults)."""
    from mnist_core.checkpoints import DEFAULT_CHECKPOINT
    from mnist_core.config import OPTIMIZERS, PRECISIONS, PRESETS, SCHEDULERS
    from mnist_core.data import DATA_ROOT_ENV, DEFAULT_DATA_ROOT, SCRIBBLE_SHAPES
    from mnist_core.device import DEVICE_CHOICES
    from mnist_core.models import REGISTRY

    parser = OneLineParser(prog="python -m mnist_core", description="MNIST Studio command line",
                           epilog=f"exit codes: 0 ok; 2 bad input (one line on stderr); 130 interrupted (Ctrl-C; a run "
                           f"being trained is not saved); 1 a bug in MNIST Studio ({DEBUG_ENV}=1 shows its traceback)")
    parser.add_argument("--version", action=_VersionAction,
                        help="show the checkpoint format and the torch, torchvision and Python versions, and exit")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--json", action="store_true", help="print one JSON value as the last stdout line")
        sub.set_defaults(command_parser=sub)  # its own usage errors point at its own --help

    def checkpoint_option(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), type=os.path.expanduser,
                         help="model file saved by `train` or the app (default: %(default)s)")

    data_root_help = f"folder holding MNIST/raw/ (default: ${DATA_ROOT_ENV}, else {DEFAULT_DATA_ROOT})"

    # `description` opens each command's own --help; `help` is shown only in the list of commands.
    models = commands.add_parser("models", help="list the model registry", description="List the model registry: "
                                 "each architecture's name, seed, parameter count and description.")
    common(models)

    train = commands.add_parser("train", help="train a model and save a checkpoint",
                                description="Train a model and save a checkpoint. Unset options take the model's own "
                                "recipe (its preset).")
    train.add_argument("--model", choices=list(REGISTRY), help="architecture to train (default: fast, or the preset's)")
    # metavar: the names have spaces, and `{seed 000/001,seed 002,…}` in the usage line does not say to quote them.
    train.add_argument("--preset", choices=list(PRESETS), metavar="NAME", type=_preset_name,
                       help="start from a recipe, quoted: " + ", ".join(f"'{name}'" for name in PRESETS).replace(
                           "%", "%%"))  # (argparse %-formats help: '99 %' must be '99 %%')
    train.add_argument("--model-kwarg", action="append", metavar="NAME=VALUE", help="e.g. width=48 (repeatable)")
    train.add_argument("--epochs", type=float, help="passes over the training set (fractions allowed)")
    train.add_argument("--batch-size", type=int, help="images per training step")
    train.add_argument("--lr", type=float, help="learning rate (peak rate with onecycle)")
    train.add_argument("--optimizer", choices=OPTIMIZERS, help="how the weights are updated")
    train.add_argument("--scheduler", choices=SCHEDULERS, help="learning-rate schedule")
    train.add_argument("--momentum", type=float, help="SGD momentum / Adam beta1")
    train.add_argument("--beta2", type=float, help="Adam/AdamW beta2")
    train.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=None, help="SGD only")
    train.add_argument("--weight-decay", type=float, help="L2 penalty (decoupled with adamw), 0…1")
    train.add_argument("--step-size", type=int, help="step scheduler: epochs between decays")
    train.add_argument("--gamma", type=float, help="step scheduler: decay factor")
    train.add_argument("--pct-start", type=float, help="onecycle scheduler: warm-up fraction")
    train.add_argument("--label-smoothing", type=float, help="share of each target spread over all digits, 0…1")
    train.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                       help="random rotation, shift, zoom and shear of training images")
    train.add_argument("--rotation", type=float, help="max degrees (with --augment)")
    train.add_argument("--translate", type=float, help="max shift, fraction of the side (with --augment)")
    train.add_argument("--scale", type=float, help="max zoom jitter (with --augment)")
    train.add_argument("--shear", type=float, help="max slant in degrees, as in italic writing (with --augment)")
    train.add_argument("--scribbles", type=float, help="random scribbles per digit in each batch, trained as "
                                                         "'no digit' so the model is unsure about non-digits (0 = off)")
    train.add_argument("--scribble-shapes", choices=SCRIBBLE_SHAPES,
                       help="zigzag: random zig-zags; mixed: also loops with marks inside and crossing strokes")
    train.add_argument("--seed", type=int, help="random seed (same seed, same run)")
    train.add_argument("--device", choices=DEVICE_CHOICES, help="where to train (auto: cuda, then mps, then cpu)")
    train.add_argument("--precision", choices=PRECISIONS, help="auto: bf16 on CUDA and on CPUs with AMX, else fp32")
    train.add_argument("--compile", action="store_true", default=None,
                       help="torch.compile the model first (CUDA graphs on CUDA); compile time is reported apart")
    train.add_argument("--train-subset", type=int, help="train on the first N images only")
    train.add_argument("--eval-every", type=float, help="evaluate every N epochs (fractions allowed)")
    train.add_argument("--data-root", help=data_root_help)
    train.add_argument("--out", type=os.path.expanduser, help="checkpoint path (default checkpoints/MODEL-TIME.pt)")
    train.add_argument("--overwrite", action="store_true", help="replace --out if it exists (a checkpoint only)")
    common(train)

    evaluate = commands.add_parser("evaluate", help="test accuracy, loss and confusion matrix of a checkpoint",
                                   description="Test accuracy, loss and confusion matrix of a checkpoint on MNIST's "
                                   "10,000 test images.")
    checkpoint_option(evaluate)
    evaluate.add_argument("--data-root", help=data_root_help)
    evaluate.add_argument("--device", choices=DEVICE_CHOICES, default="auto",
                          help="where to run the model (default: %(default)s)")
    common(evaluate)

    predict = commands.add_parser("predict", help="read digits from image files",
                                  description="Read one handwritten digit from each image file.")
    checkpoint_option(predict)
    predict.add_argument("images", nargs="+", metavar="IMAGE", type=os.path.expanduser,
                         help="PNG, JPEG, BMP, GIF, WebP or TIFF files, one digit each "
                         "(- reads one from standard input)")
    common(predict)
    # argparse names a missing command by its dest: "the following arguments are required: command" told a newcomer
    # typing `python -m mnist_core` nothing of which words to type; the choices (as --help shows them) do
    commands.metavar = "{" + ",".join(commands.choices) + "}"
    return parser


def _failed(message: str, code: int, as_json: bool, stderr_line: str | None = None) -> int:
    """Report a failure: one line on stderr and, with --json, the contract's last stdout line as JSON too."""
    if stderr_line is not None:
        _say(stderr_line)
    if as_json:
        with _writing_stdout():
            print(_json_text({"error": message, "exit_code": code}))
    return code


def _parse(parser: argparse.ArgumentParser, argv: list[str], as_json: bool) -> tuple[argparse.Namespace, list[str]]:
    """parse_known_args; with --json, a --help also ends in the contract's JSON line ({"help": the text}), and a
    --version in {"version": its line}.

    The help is written here, not by argparse: argparse ignores a failed write, and `--help > /dev/full` exited 0
    with nothing written. Flushed here too, as a --help leaves by SystemExit, past main's flush."""
    help_text = io.StringIO()
    try:
        with contextlib.redirect_stdout(help_text):  # only --help prints while parsing
            return parser.parse_known_args(argv)
    except SystemExit as leaving:
        if leaving.code == 0:
            with _writing_stdout():
                print(help_text.getvalue(), end="")
                if as_json:
                    shown = help_text.getvalue()
                    print(_json_text({"version": shown.strip()} if isinstance(leaving, _VersionShown) else
                                     {"help": shown}))
                sys.stdout.flush()
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m mnist_core`: run one command on `argv` (default: the process's) and return its exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    _tolerate_unencodable_stdout()
    # Started with stdout or stderr closed (`>&-`, `2>&-`), Python has no sys.stdout / sys.stderr, and the first
    # result, message or progress bar failed: a traceback, or (stderr) silently `train` could not run at all and a bad
    # input was exit 1 without its JSON. What goes there now goes nowhere, as with >/dev/null; the exit code still
    # says what happened.
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 — for the rest of the process
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
    try:
        code = _run(argv)
        with _writing_stdout():
            sys.stdout.flush()  # here, so a failed write is caught below rather than reported at interpreter exit
        return code
    except BrokenPipeError:
        # The reader (`| head`) has what it wanted: quietly, as SIGPIPE ends other tools.
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    except _StdoutFailed as failure:
        _discard_stdout()
        _say(f"error: cannot write the output to standard output ({failure}): free some disk space, or send the "
             f"output elsewhere")
        return 2


def _tolerate_unencodable_stdout() -> None:
    """Write what stdout's encoding lacks as Python escapes (`\\u2192`), as Python itself does on stderr. The text
    output has "→", "×" and "…" (the `models` table, `--help`), and an encoding without them (a Windows console
    redirected to a file is cp1252; PYTHONIOENCODING=ascii) made the command an `internal error (UnicodeEncodeError
    …)`, exit 1. JSON is ASCII anyway. Only the process's real stdout: when main() runs inside another program
    (tests), its stdout is not ours to change."""
    if sys.stdout is sys.__stdout__ and isinstance(sys.stdout, io.TextIOWrapper) and sys.stdout.errors == "strict":
        sys.stdout.reconfigure(errors="backslashreplace")


def _discard_stdout() -> None:
    """Point stdout at devnull after a failed write, so the interpreter's own flush at exit (of what is still
    buffered) does not fail again with a traceback (see "Note on SIGPIPE" in Python's signal docs) — only the
    process's real stdout: when main() runs inside another program (tests), its file descriptors are not ours."""
    if sys.stdout is sys.__stdout__:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


# option -> what `-` would mean for it, as for other Unix tools (and `predict -`), and what cannot be done there
_STANDARD_STREAM_OPTIONS = {
    "out": "standard output, where a checkpoint cannot be written: give a file name such as model.pt",
    "checkpoint": "standard input, from which a model cannot be read: give the model file's path",
    "data_root": "standard input, from which MNIST cannot be read: give the folder that holds MNIST/raw/"}


def _refuse_standard_streams(args: argparse.Namespace) -> None:
    """`--out -` trained for minutes, then saved the checkpoint as a file named `-` in the current folder ("saved -"),
    where a Unix user meant standard output; `--checkpoint -` said "- does not exist: check the path"."""
    for name, meaning in _STANDARD_STREAM_OPTIONS.items():
        if getattr(args, name, None) == "-":
            option = "--" + name.replace("_", "-")
            raise StudioError(f"{option} - would mean {meaning} (./- for one named '-')")


@contextlib.contextmanager
def _interrupt_ends_at_once(as_json: bool) -> Iterator[None]:
    """While torch or torchvision is imported, a Ctrl-C ends the process at once: exit 130, `interrupted` (and its
    JSON), nothing having been written yet. As a KeyboardInterrupt raised inside their C++ start-up, it was at times
    swallowed (the command then ran to its end, exit 0), an abort ("terminate called after throwing an instance of
    'pybind11::error_already_set'"), or a death by SIGINT after `interrupted` was said."""
    if (threading.current_thread() is not threading.main_thread()  # (only the main thread may set a handler)
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):  # ignored (`cmd &`), or not ours
        yield
        return

    def end(signum: int, frame: Any) -> None:
        with contextlib.suppress(Exception):  # (a stdout closed meanwhile: the exit code still says it)
            _failed("interrupted", 130, as_json, "interrupted")
            sys.stdout.flush()
        os._exit(130)

    signal.signal(signal.SIGINT, end)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _import_mnist_reader(as_json: bool) -> None:
    """torchvision, which load_mnist imports to read the IDX files: seconds of C++ start-up, guarded as torch's is."""
    with _interrupt_ends_at_once(as_json):
        import torchvision.datasets.mnist  # noqa: F401


def _missing_dependency(error: Exception) -> str | None:
    """What to say when a package MNIST Studio needs (torch, torchvision, Pillow, …) cannot be imported, else None.
    Run outside its virtual environment, every command (even --help) ended in two chained tracebacks of
    `ModuleNotFoundError: No module named 'torch'`, exit 1, and --json printed no JSON."""
    name = (getattr(error, "name", None) or "").partition(".")[0]
    if not isinstance(error, ModuleNotFoundError) or not name or name == __package__:  # (a module of ours: a bug)
        return None
    return (f"MNIST Studio needs the Python package {name}, which this Python ({sys.executable}) cannot import: "
            f"activate the virtual environment it was installed in (. .venv/bin/activate), or install its "
            f"requirements (pip install -r requirements.txt)")


_THIRD_PARTY = ("torch", "torchvision", "PIL", "numpy")  # what a command imports at its start


def _broken_install(error: Exception) -> str | None:
    """What to say when a package MNIST Studio needs is installed but fails while it is being imported (a
    torchvision built for another torch: `RuntimeError: operator torchvision::nms does not exist`; a missing shared
    library), else None. It was called a bug in MNIST Studio. Told apart by where it was raised: in the package's
    module-level code, which runs only on import."""
    for frame, _ in traceback.walk_tb(error.__traceback__):
        package = str(frame.f_globals.get("__name__", "")).partition(".")[0]
        if frame.f_code.co_name == "<module>" and package in _THIRD_PARTY:
            first_line = message_text((str(error).splitlines() or [""])[0][:200])
            return (f"the Python package {package} is installed but fails to load ({type(error).__name__}: "
                    f"{first_line}): install the versions MNIST Studio pins, which work together "
                    f"(pip install --force-reinstall -r requirements.txt)")
    return None


def _run(argv: list[str]) -> int:
    """Parse and run one command; a failure becomes its exit code and message (stdout's own failures pass up)."""
    handler = {"models": cmd_models, "train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict}
    # Known before parsing, so a usage error can answer in JSON too; `--json=1` (refused: --json takes no value) too.
    options = argv[:argv.index("--")] if "--" in argv else argv  # after `--`, "--json" is a file's name
    as_json = any(word == "--json" or word.startswith("--json=") for word in options)
    try:
        # Inside the try: building the parser imports torch (seconds), when a Ctrl-C is most likely.
        with _interrupt_ends_at_once(as_json):
            parser = build_parser()  # (it imports torch)
        args, unknown = _parse(parser, argv, as_json)
        if unknown:  # argparse's parse_args would blame the top-level parser: "see `python -m mnist_core --help`"
            # An option of the command typed before its name (`--json models`) was "unrecognized", and the help it
            # pointed to lists it: say where it goes.
            command_options = args.command_parser._option_string_actions
            if misplaced := next((word for word in unknown if word.split("=")[0] in command_options), None):
                args.command_parser.error(f"{misplaced} is an option of {args.command}, so it goes after the "
                                          f"command's name: python -m mnist_core {args.command} {misplaced}")
            args.command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        _refuse_standard_streams(args)
        return handler[args.command](args)
    except (BrokenPipeError, _StdoutFailed):
        raise
    except UsageError as error:
        return _failed(error.message, 2, as_json)  # (argparse's --help and --version exit 0 and pass through)
    except StudioError as error:
        return _failed(str(error), 2, as_json, f"error: {error}")
    except KeyboardInterrupt:
        return _failed("interrupted", 130, as_json, "interrupted")
    except Exception as error:  # noqa: BLE001 — the last line of defence: one line, never a wall of traceback
        if missing := _missing_dependency(error) or _broken_install(error):
            return _failed(missing, 2, as_json, f"error: {missing}")
        torch = sys.modules.get("torch")  # (not imported here: a torch that failed to import would fail again)
        if torch is not None and isinstance(error, torch.OutOfMemoryError):
            message = "the device ran out of memory: lower --batch-size or use a smaller model"
            return _failed(message, 2, as_json, f"error: {message}")
        if os.environ.get(DEBUG_ENV) == "1":
            raise
        first_line = message_text((str(error).splitlines() or [""])[0][:200])
        message = (f"internal error ({type(error).__name__}: {first_line}): this is a bug in MNIST Studio, please "
                   f"report it; run with {DEBUG_ENV}=1 for the traceback")
        return _failed(message, 1, as_json, message)
