"""The one training loop. The CLI, the app's Train page and the benchmark all call `fit`.

Start reading at `fit`, at the bottom: everything above it is a piece it calls — the records it hands to callbacks
(`TrainStart`, `BatchReport`, `EvalRecord`, `TrainResult`), the optimizer and scheduler, the precision, the memory
check, the divergence watch, the loss of one batch and the optional `torch.compile`. Like Lightning, the loop talks
to the world only through callbacks (progress bars, live charts, benchmarks) and a stop event (threading or
multiprocessing) that asks it to stop between batches. Speed tricks, each cheap to read:
- data lives on the device as uint8; a batch is a slice of an on-device permutation (see `data.py`);
- the host syncs with the device only every `log_every` batches and at evaluation points, never per batch;
- channels_last memory layout on every device: oneDNN (CPU) and cuDNN (CUDA) both have faster conv kernels for it
  (1.7× for baseline (b) on this project's 2-core CPU);
- bf16 autocast on CUDA, and on CPUs with bf16 matrix units (AMX), see `training_precision`;
- fused optimizer kernels on CUDA;
- optionally (`TrainConfig.compile`), `torch.compile` of the model, with CUDA graphs on CUDA: one replay instead of
  dozens of kernel launches per step, which is what a step of a small network waits on there. Compiled before the
  clock starts (`TrainResult.compile_seconds`). Off by default: on this project's 2-core CPU the fast preset reached
  99 % about 9 % later compiled than eager (median 2.90 vs 2.67 s, same benchmark run), after 33–48 s of compiling;
- outlier-exposure scribbles (optional) are drawn on the device and ride in the same forward pass as the digits;
- freed activation memory stays in the process for the next step, so steps do not page-fault it back in
  (`device.keep_freed_memory`).
"""

from __future__ import annotations

import functools
import math
import multiprocessing.synchronize
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from mnist_core.config import TrainConfig
from mnist_core.data import Mnist, batch_indices, prepare_batch
from mnist_core.device import free_memory_bytes, keep_freed_memory, pick_device
from mnist_core.errors import ConfigError, TrainingDiverged
from mnist_core.evaluate import quick_accuracy
from mnist_core.models import build_model, count_parameters, model_summary

# Outlier exposure (Hendrycks et al., 2019): the loss on scribbles is their cross-entropy to equal probabilities
# over the ten digits, weighted like this against the digits' own loss (the paper's value).
OUTLIER_LOSS_WEIGHT = 0.5

# A finite loss can explode too (SGD at lr 50: losses of 1e4 and more, weights that read nothing). The first batch's
# loss (at least ln 10, an untrained model's) is the yardstick: a report above EXPLODED_FACTOR times it has blown up;
# above RUNAWAY_FACTOR times it for RUNAWAY_BATCHES batches in a row has run away. Runs that learn stay far below:
# the worst measured was the GPU preset's one-cycle warm-up squeezed into 13 batches (6,400 real images), 16× for two
# batches (its full 142-batch run never rose above its start).
EXPLODED_FACTOR = 100.0
RUNAWAY_FACTOR = 10.0
RUNAWAY_BATCHES = 20

# A finished run at or below this test accuracy (%) did not learn (guessing scores 10 %): a learning rate too high or
# too low, or too few batches for the recipe (seed 003's SGD at 0.01 scored 11 % after 13 batches). Its model is
# kept, but flagged (see `TrainResult.warning`), so that it does not pass for a working one.
CHANCE_ACCURACY = 20.0


@dataclass
class TrainStart:
    """What `Callback.on_train_start` receives, once the model is built (and compiled) and before the first batch."""

    config: TrainConfig
    device: torch.device
    parameters: int
    total_steps: int
    steps_per_epoch: int
    epochs: float  # what the run's batches amount to (`Schedule.epochs`)


@dataclass
class BatchReport:
    """What `Callback.on_batch_end` receives every `config.log_every` batches (and after the last one)."""

    step: int  # batches done so far
    total_steps: int
    epoch: float  # fractional epochs done
    loss: float  # mean train loss over the batches since the last report
    lr: float
    images_per_second: float
    elapsed: float  # training seconds so far (evaluation excluded)
    eta: float  # seconds left: the batches at the current speed, and the test passes to come as long as the last
    # (before the first one has been timed, the batches alone)


@dataclass
class EvalRecord:
    """One evaluation point of the history, passed to `Callback.on_evaluation`: a test pass every `config.eval_every`
    epochs (rounded to batches, so not always at an epoch's end), at the end of the run, and when it is stopped.
    `to_dict` of it is a checkpoint's `history` entry (its keys are the file format: keep them)."""

    epoch: float  # may be fractional with eval_every < 1, or when stopped mid-epoch
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    lr: float
    seconds: float  # training seconds of this period (evaluation excluded)
    elapsed: float  # training seconds since the start (evaluation excluded)

    def to_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


@dataclass
class TrainResult:
    """What `fit` returns (and `Callback.on_train_end` receives): the trained model, its history and timings."""

    model: nn.Module
    config: TrainConfig
    device: str
    history: list[EvalRecord]
    batch_losses: list[tuple[int, float]] = field(default_factory=list)  # (step, mean loss since last report)
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    compile_seconds: float = 0.0  # torch.compile before training (config.compile), not in train_seconds
    stopped: bool = False
    steps: int = 0  # batches trained, those after the last good weights of a diverged run included
    steps_kept: int = 0  # batches behind the weights kept (those of the history's last evaluation)
    confidence_floor: float = float("nan")  # at the last evaluation: below it the model's readings are unsure

    @property
    def test_accuracy(self) -> float:
        return self.history[-1].test_accuracy if self.history else float("nan")

    @property
    def test_loss(self) -> float:
        return self.history[-1].test_loss if self.history else float("nan")

    @property
    def epochs_done(self) -> float:
        return self.history[-1].epoch if self.history else 0.0

    @property
    def warning(self) -> str | None:
        """Why a run that ran to its end is not worth using (it did not learn), or None. Stopped runs are not
        judged: stopping early is the user's choice."""
        if self.stopped or not self.history or self.test_accuracy > CHANCE_ACCURACY:
            return None
        return (f"the model did not learn: {self.test_accuracy:.2f} % test accuracy is chance level (at most "
                f"{CHANCE_ACCURACY:g} %; guessing scores 10 %): try another learning rate (it was {self.config.lr:g}) "
                f"or more epochs")

    def metrics(self) -> dict[str, Any]:
        """The run's summary numbers: a checkpoint's `metrics`, for a saved file and a run kept in the app alike."""
        return {"test_accuracy": self.test_accuracy, "test_loss": self.test_loss, "train_seconds": self.train_seconds,
                "compile_seconds": self.compile_seconds, "epochs_done": self.epochs_done, "stopped": self.stopped,
                "device": self.device, "confidence_floor": self.confidence_floor,
                # (a Stop after one batch is 0.002 epochs: the batches say it exactly, in the run history and Compare)
                "batches_done": self.steps_kept}


class Callback:
    """Override what you need. Called on the training thread; keep the work small (or throttle it)."""

    def on_train_start(self, start: TrainStart) -> None: ...

    def on_batch_end(self, report: BatchReport) -> None: ...

    def on_evaluation(self, record: EvalRecord) -> None:
        """After each test pass (see `EvalRecord`): every `config.eval_every` epochs and at the run's end."""

    def on_train_end(self, result: TrainResult) -> None: ...


# The one-cycle scheduler's momentum (SGD's, or Adam's β1): from the top down to the bottom and back up, in step with
# the learning rate going up and down (torch's defaults). It overwrites the optimizer's own at once.
ONE_CYCLE_MOMENTUM = (0.85, 0.95)  # (bottom, top)


def make_optimizer(config: TrainConfig, parameters: Iterable[nn.Parameter],
                   device: torch.device) -> torch.optim.Optimizer:
    """The optimizer `config.optimizer` names (sgd, adam, adamw or adadelta), with the config's hyperparameters.
    Adam's and AdamW's first beta (their momentum) is `config.momentum`."""
    fused = {"fused": True} if device.type == "cuda" else {}  # one kernel for the whole update on CUDA
    if config.optimizer == "sgd":
        # With one-cycle the momentum is the cycle's (the page greys its slider out), so SGD is made with the cycle's
        # top: Nesterov then works even with the greyed-out slider at 0 (torch refuses Nesterov without momentum).
        momentum = ONE_CYCLE_MOMENTUM[1] if config.scheduler == "onecycle" else config.momentum
        return torch.optim.SGD(parameters, lr=config.lr, momentum=momentum, nesterov=config.nesterov,
                               weight_decay=config.weight_decay, **fused)
    if config.optimizer in ("adam", "adamw"):
        adam_class = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
        return adam_class(parameters, lr=config.lr, betas=(config.momentum, config.beta2),
                          weight_decay=config.weight_decay, **fused)
    return torch.optim.Adadelta(parameters, lr=config.lr, weight_decay=config.weight_decay)  # the one left


def make_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer, total_steps: int,
                   steps_per_epoch: int) -> torch.optim.lr_scheduler.LRScheduler | None:
    """Every scheduler steps once per batch, so fractional epochs and Stop behave the same for all."""
    if config.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, config.step_size * steps_per_epoch, config.gamma)
    if config.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(total_steps, 1))
    if config.scheduler == "onecycle":
        total_steps = max(total_steps, 2)
        pct_start = config.pct_start
        # OneCycleLR ends its warm-up at batch pct_start × total_steps − 1 and divides by that length: a warm-up of
        # exactly one batch (0.25 of 4 batches, 0.05 of 20) is a division by zero when the scheduler is made
        # (ZeroDivisionError, "Training crashed" in the app). A hair longer warm-up trains the same schedule.
        while float(pct_start * total_steps) - 1 == 0:
            pct_start = math.nextafter(pct_start, 1.0)
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total_steps,
                                                   pct_start=pct_start, base_momentum=ONE_CYCLE_MOMENTUM[0],
                                                   max_momentum=ONE_CYCLE_MOMENTUM[1],
                                                   cycle_momentum=config.optimizer != "adadelta")
    return None


@functools.cache
def cpu_has_bf16_matrix_units() -> bool:
    """True on CPUs with AMX: there bf16 convolutions and matrix products run on tile units, far faster than fp32.

    With only AVX512-BF16 (bf16 dot products in vector registers) the casts cost more than they save for this
    project's small networks: on such an Intel Xeon the fast preset reached 99 % in 2.0 s in fp32 and 2.6 s in bf16.
    """
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: stay with fp32 on CPU
        return False
    return bool(re.search(r"\bamx_bf16\b", flags)) and torch.backends.mkldnn.is_available()


def training_precision(config: TrainConfig, device: torch.device) -> torch.dtype:
    """The autocast dtype. bf16 halves memory traffic and uses the matrix units; BatchNorm and the fp32 loss keep
    training stable. "auto" picks it on CUDA and on CPUs with AMX (elsewhere fp32 is as fast or faster)."""
    bf16_possible = device.type in ("cuda", "cpu")
    if config.precision == "bf16":
        return torch.bfloat16 if bf16_possible else torch.float32
    if config.precision == "auto" and (device.type == "cuda" or (device.type == "cpu" and cpu_has_bf16_matrix_units())):
        return torch.bfloat16
    return torch.float32


# Peak memory of a training step over the activations of one forward pass (float32, all layers' outputs summed):
# measured 0.85–1.9× on this project's CPU for the registry's models at batch 1024; 2 leaves room for the rest.
STEP_MEMORY_PER_ACTIVATION_BYTES = 2 * 4


def check_memory(model: nn.Module, config: TrainConfig, device: torch.device) -> None:
    """Refuse a batch that cannot fit in memory, before training: a CPU run would otherwise be killed by the
    out-of-memory killer with no message at all (s5-net at batch 60,000 needs ~90 GB)."""
    free = free_memory_bytes(device)
    if free is None:
        return
    bytes_per_image = STEP_MEMORY_PER_ACTIVATION_BYTES * sum(math.prod(row["output shape"])
                                                             for row in model_summary(model))
    bytes_per_image *= 1 + config.scribbles  # scribbles ride in the same batch
    needed = bytes_per_image * config.batch_size
    if needed > free:
        fits = int(free // bytes_per_image)
        raise ConfigError(f"a batch of {config.batch_size:,} images needs about {needed / 1e9:.1f} GB of memory to "
                          f"train {config.model}, more than the {free / 1e9:.1f} GB free on this {device.type}: "
                          f"lower the batch size (about {fits:,} fits)" if fits >= 2 else
                          f"training {config.model} needs more memory than the {free / 1e9:.1f} GB free on this "
                          f"{device.type}, even with a batch of 2: free some memory or pick a smaller model")


class DivergenceWatch:
    """Decides, from the loss reports, whether training has diverged with a finite loss (see EXPLODED_FACTOR)."""

    def __init__(self, first_loss: float) -> None:
        self.reference = max(first_loss, math.log(10)) if math.isfinite(first_loss) else math.log(10)
        self.high_batches = 0  # batches in a row whose reported loss was above RUNAWAY_FACTOR × the reference

    @property
    def suspect(self) -> bool:
        """The loss is running high right now: weights from this moment are not "last good" ones."""
        return self.high_batches > 0

    def check(self, loss: float, batches: int) -> str | None:
        """`loss`: the mean over the `batches` since the last report. Returns why training diverged, or None."""
        if loss > EXPLODED_FACTOR * self.reference:
            return (f"the train loss rose to {loss:.3g}, over {EXPLODED_FACTOR:g}× its {self.reference:.3g} at the "
                    f"start")
        self.high_batches = self.high_batches + batches if loss > RUNAWAY_FACTOR * self.reference else 0
        if self.high_batches >= RUNAWAY_BATCHES:
            return (f"the train loss stayed over {RUNAWAY_FACTOR:g}× its {self.reference:.3g} at the start for "
                    f"{self.high_batches} batches, at {loss:.3g}")
        return None


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the weights and BatchNorm statistics that later training steps do not change."""
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


def training_loss(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, config: TrainConfig,
                  precision: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch forward: (loss, the digits' logits). `images` may end with scribbles beyond `labels`."""
    with torch.autocast(images.device.type, dtype=precision, enabled=precision != torch.float32):
        all_logits = model(images).float()
        logits = all_logits[:labels.shape[0]]
        loss = F.cross_entropy(logits, labels, label_smoothing=config.label_smoothing)
        if all_logits.shape[0] > labels.shape[0]:
            not_digits = all_logits[labels.shape[0]:]
            # KL divergence to equal probabilities: 0 when the model is perfectly unsure about them.
            loss = loss + OUTLIER_LOSS_WEIGHT * (-not_digits.log_softmax(1).mean() - math.log(10))
    return loss, logits


def compile_problem() -> str | None:
    """Why `torch.compile` cannot work on this machine, with the fix; None when it can.

    Inductor turns the model into C++ (CPU) or Triton kernels, both built by the system's C++ compiler. Without one
    it fails at the first call, after the data is loaded, with a page of traceback; asking it first costs a
    `g++ --version`.
    """
    try:
        from torch._inductor import config as inductor_config
        from torch._inductor.cpp_builder import get_cpp_compiler
        from torch._inductor.exc import InvalidCxxCompiler
    except ImportError:  # a torch that moved these: the compile itself will tell (see compile_for_training)
        return None
    try:
        get_cpp_compiler()
    except InvalidCxxCompiler:
        names = " or ".join(name for name in inductor_config.cpp.cxx if name)
        return (f"--compile needs a working C++ compiler ({names}; $CXX names another) and none was found: install "
                f"one (e.g. apt-get install g++) or train without --compile")
    return None


def compile_for_training(model: nn.Module, batch_sizes: Iterable[int], extra_images: int, config: TrainConfig,
                         precision: torch.dtype) -> nn.Module:
    """`torch.compile(model)`, already compiled for every batch shape the run will see, with the model unchanged.

    Compiling happens on the first calls, so they are made here, before the training clock starts: forward and
    backward on blank batches of each size (a partial last batch is a second shape). On CUDA the mode is
    "reduce-overhead": CUDA graphs, whose first calls record them. The module returned shares its parameters with
    `model`; checkpoints and evaluation keep using `model` itself. Weights, BatchNorm statistics and random states
    are restored, so a compiled run starts where an eager run with the same seed starts.
    """
    device = next(model.parameters()).device
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"compile works on cpu and cuda, not {device.type}: train without --compile")
    problem = compile_problem()
    if problem:
        raise ConfigError(problem)
    torch.compiler.reset()  # a fresh start per run: dynamo keeps only 8 variants per function, then runs eager quietly
    compiled = torch.compile(model, mode="reduce-overhead" if device.type == "cuda" else None, dynamic=False)
    before = _snapshot(model)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):  # dropout draws from these
        try:
            for batch_size in batch_sizes:
                images = torch.zeros(batch_size + extra_images, 1, 28, 28, device=device)
                images = images.contiguous(memory_format=torch.channels_last)
                labels = torch.zeros(batch_size, dtype=torch.long, device=device)
                for _ in range(3 if device.type == "cuda" else 1):  # CUDA graphs: a warm-up call, then the recording
                    if device.type == "cuda":
                        torch.compiler.cudagraph_mark_step_begin()
                    training_loss(compiled, images, labels, config, precision)[0].backward()
        except torch._dynamo.exc.BackendCompilerFailed as error:  # a broken toolchain the check above did not see
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
            raise ConfigError(f"torch.compile failed on this machine ({first_line}): train without --compile") from None
    model.zero_grad(set_to_none=True)
    model.load_state_dict(before)
    return compiled


def evaluation_steps(epochs: float, eval_every: float, steps_per_epoch: int, total_steps: int) -> set[int]:
    """The batches after which a run of `total_steps` evaluates: every `eval_every` epochs (rounded to batches) and
    always at the very end. The interval is capped at the run's length, which evaluates the same (at the end only):
    1e308 epochs × batches would be an infinite round()."""
    eval_every = min(eval_every, epochs)
    return {min(total_steps, max(1, round(i * eval_every * steps_per_epoch)))
            for i in range(1, math.ceil(epochs / eval_every) + 1)} | {total_steps}


def _batch_sizes(train_images: int, batch_size: int, steps_per_epoch: int, total_steps: int) -> list[int]:
    """The batch sizes a run will train on: the full one, and an epoch's partial last batch if the run gets to it
    (unless it is a single image, which `batch_indices` drops)."""
    rest = train_images % batch_size
    return sorted({batch_size} | ({rest} if rest > 1 and total_steps >= steps_per_epoch else set()))


def fit(config: TrainConfig, data: Mnist, callbacks: Iterable[Callback] = (),
        stop_event: threading.Event | multiprocessing.synchronize.Event | None = None) -> TrainResult:
    """Train `config.model` on `data` and return the model, its history and timings.

    Stops early, keeping what it has, when `stop_event` is set. A non-finite loss, or a finite one that explodes
    (`DivergenceWatch`), raises `TrainingDiverged` whose `.result` holds the model with the weights of the last
    evaluation point at which the loss was not running high (the last good ones), and the history up to it.
    """
    config.validate()
    callbacks = list(callbacks)
    device = pick_device(config.device)
    keep_freed_memory()
    torch.manual_seed(config.seed)
    generator = torch.Generator(device=device).manual_seed(config.seed)

    data = data.to(device)  # a no-op when the caller already keeps it on the device
    train = data.train.subset(config.train_subset) if config.train_subset else data.train
    model = build_model(config.model, **config.model_kwargs).to(device)
    check_memory(model, config, device)
    model = model.to(memory_format=torch.channels_last)  # what oneDNN's and cuDNN's fastest conv kernels want
    precision = training_precision(config, device)
    optimizer = make_optimizer(config, model.parameters(), device)
    schedule = config.schedule(len(train))
    steps_per_epoch, total_steps = schedule.steps_per_epoch, schedule.total_steps
    scheduler = make_scheduler(config, optimizer, total_steps, steps_per_epoch)
    eval_points = evaluation_steps(config.epochs, config.eval_every, steps_per_epoch, total_steps)
    augmentation = config.augmentation
    scribbles_per_batch = round(config.batch_size * config.scribbles)

    def sync() -> None:  # CUDA runs asynchronously: wait for its queued work before reading a clock
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    result = TrainResult(model, config, str(device), [])
    forward = model  # what the steps call: the model itself, or its compiled form sharing the same parameters
    if config.compile:
        compile_start = time.perf_counter()
        batch_sizes = _batch_sizes(len(train), config.batch_size, steps_per_epoch, total_steps)
        forward = compile_for_training(model, batch_sizes, scribbles_per_batch, config, precision)
        sync()
        result.compile_seconds = time.perf_counter() - compile_start
    for callback in callbacks:
        callback.on_train_start(TrainStart(config, device, count_parameters(model), total_steps, steps_per_epoch,
                                           schedule.epochs))

    # What a diverged run falls back on: the last good weights, the history records and batches behind them, and
    # their confidence floor.
    last_good, good_records, good_steps, good_floor = _snapshot(model), 0, 0, float("nan")
    watch: DivergenceWatch | None = None  # made at the first batch, whose loss it measures against
    step, train_seconds, period_seconds = 0, 0.0, 0.0
    # Since the last report, summed on the device (no per-batch host sync): the batches' mean losses, right answers.
    loss_sum = torch.zeros((), device=device)
    correct_sum = torch.zeros((), device=device, dtype=torch.long)
    # Since the last evaluation, on the host: the same sums, and the images seen.
    period_loss, period_correct, period_seen = 0.0, 0, 0
    # The digits trained so far, for images/s: an epoch's last batch is smaller when the batch size does not divide
    # the images (5,000 at batch 2,048: 2,048 + 2,048 + 904), so batches × batch size would overstate the speed.
    images_trained = 0
    last_report_step, last_eval_step = 0, 0
    last_test_seconds = 0.0  # the last test pass's length, for the ETA (0 until one has run)

    def stop_clock() -> None:
        """Add the training time since `tick` to the run's and the period's (after waiting for the device)."""
        nonlocal train_seconds, period_seconds
        sync()
        seconds = time.perf_counter() - tick
        train_seconds += seconds
        period_seconds += seconds

    def read_device_sums() -> float:
        """Move the device's sums into the period's (the host's one read of them); returns the loss sum."""
        nonlocal period_loss, period_correct
        loss_since_report, correct_since_report = loss_sum.item(), int(correct_sum.item())
        loss_sum.zero_(), correct_sum.zero_()
        period_loss += loss_since_report
        period_correct += correct_since_report
        return loss_since_report

    def report_now() -> None:
        """Read the device's sums (the host's one sync in `log_every` batches), raise `TrainingDiverged` if the loss
        has diverged, else send a `BatchReport` of the batches since the last one."""
        nonlocal last_report_step
        loss_since_report = read_device_sums()
        batches = step - last_report_step
        if not math.isfinite(loss_since_report):
            diverge(f"the train loss became {loss_since_report}")
        mean_loss = loss_since_report / batches
        exploded = watch.check(mean_loss, batches) if watch is not None else None
        if exploded:
            diverge(exploded)
        # The test passes still to come count too, each as long as the last (the first is slower, warming up): in a
        # quick run (the first 1,000 images) they take longer than the batches, and the ETA read 2 s with 6 s to go.
        tests_left = sum(1 for point in eval_points if point >= step)
        report = BatchReport(step, total_steps, schedule.epochs_at(step), mean_loss, optimizer.param_groups[0]["lr"],
                             images_per_second=images_trained / max(train_seconds, 1e-9), elapsed=train_seconds,
                             eta=(total_steps - step) * train_seconds / step + tests_left * last_test_seconds)
        result.batch_losses.append((step, report.loss))
        last_report_step = step
        for callback in callbacks:
            callback.on_batch_end(report)

    def evaluate_now() -> None:
        """Test the model, close the period with an `EvalRecord`, and keep its weights as good unless the loss is
        running high."""
        nonlocal period_loss, period_correct, period_seen, period_seconds, last_eval_step, last_test_seconds
        nonlocal last_good, good_records, good_steps, good_floor
        eval_start = time.perf_counter()
        test_accuracy, test_loss, floor = quick_accuracy(model, data.test)
        model.train()
        last_test_seconds = time.perf_counter() - eval_start
        result.eval_seconds += last_test_seconds
        if not math.isfinite(test_loss):
            diverge(f"the test loss became {test_loss}")
        record = EvalRecord(schedule.epochs_at(step), period_loss / max(step - last_eval_step, 1),
                             100.0 * period_correct / max(period_seen, 1), test_loss, test_accuracy,
                             optimizer.param_groups[0]["lr"], period_seconds, train_seconds)
        result.history.append(record)
        result.confidence_floor = floor
        for callback in callbacks:
            callback.on_evaluation(record)
        if watch is None or not watch.suspect:
            last_good, good_records, good_steps, good_floor = _snapshot(model), len(result.history), step, floor
        last_eval_step = step
        period_loss, period_correct, period_seen, period_seconds = 0.0, 0, 0, 0.0

    def diverge(what: str) -> None:
        """Fall back on the last good weights and raise `TrainingDiverged`, saying `what` went wrong."""
        model.load_state_dict(last_good)
        model.eval()
        del result.history[good_records:]  # the history ends with the evaluation of the weights that are kept
        result.confidence_floor = good_floor  # ... and so does the floor: a later one measured weights now gone
        result.train_seconds, result.steps, result.steps_kept = train_seconds, step, good_steps
        kept = (f"the weights from epoch {result.history[-1].epoch:g} were kept" if result.history
                else "no good weights were reached")
        # One-cycle has a warm-up already: "pick a scheduler with warm-up" would send its users looking for another.
        rate = (f"lower the learning rate (its peak was {config.lr:g})" if config.scheduler == "onecycle" else
                f"lower the learning rate (it was {config.lr:g}) or pick a scheduler with warm-up")
        raise TrainingDiverged(f"training diverged at batch {step} of {total_steps} ({what}): {rate}; {kept}", result)

    model.train()
    stopped = False
    tick = time.perf_counter()
    while step < total_steps and not stopped:
        for indices in batch_indices(len(train), config.batch_size, device, generator):
            if stop_event is not None and stop_event.is_set():
                stopped = True
                break
            images = prepare_batch(train.images[indices], augmentation, generator, scribbles_per_batch,
                                   config.scribble_shapes)
            images = images.contiguous(memory_format=torch.channels_last)
            labels = train.labels[indices]
            if config.compile and device.type == "cuda":
                torch.compiler.cudagraph_mark_step_begin()  # this step's graph replay may reuse the last one's memory
            loss, logits = training_loss(forward, images, labels, config, precision)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            loss_sum += loss.detach()
            correct_sum += (logits.detach().argmax(1) == labels).sum()
            period_seen += labels.shape[0]
            images_trained += labels.shape[0]
            step += 1
            if watch is None:
                watch = DivergenceWatch(loss.item())  # one extra host sync, once per run

            at_eval = step in eval_points
            if at_eval or step % config.log_every == 0 or step == total_steps:
                stop_clock()
                report_now()
                if at_eval:
                    evaluate_now()
                tick = time.perf_counter()
            if step >= total_steps:
                break

    # Stopped after the last evaluation: close the books and evaluate the weights the run ends with. (Batches not
    # yet reported come after it too: every evaluation point is also a report point.)
    if step > last_eval_step:
        stop_clock()
        read_device_sums()
        evaluate_now()
    result.train_seconds, result.steps, result.steps_kept = train_seconds, step, step
    result.stopped = stopped
    model.eval()
    for callback in callbacks:
        callback.on_train_end(result)
    return result
