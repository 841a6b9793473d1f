"""Training in the background: a `TrainingJob` runs `train.fit` in a worker process that a UI session owns.

Why in the background: a training loop inside a Streamlit script run blocks that run, so a Stop press only queues a
rerun and any widget touched interrupts the script mid-epoch. Here the page starts a job, polls `snapshot()` (a
consistent, immutable copy of the progress) and calls `stop()`, which sets the event that `fit` checks between
batches: Stop acts at the next batch and keeps the model trained so far.

Why a process, not a thread: `fit` on a background thread of the Streamlit server ran ~45 % slower than the CLI on a
2-core CPU. Two causes, both measured: (1) libgomp (PyTorch's OpenMP) gives every thread that ever ran a parallel
region its own worker pool; once a process holds more OpenMP threads than cores it cuts its spin-waiting to ~100
spins, so each of the thousands of parallel regions per second pays a futex wake-up; (2) the server's threads hold
the GIL in between. A worker process runs `fit` on its own main thread, exactly as the CLI does, and talks to the
job through a pipe. The tensors of the dataset are shared with it, not copied (torch.multiprocessing).

Why a spare worker: starting Python and importing PyTorch takes ~2 s. `prepare_worker()` (the Train page calls it)
starts one worker ahead of time, so Start begins training at once; a new spare is started when a job ends, never
while one trains (importing PyTorch would take a core from it).

Why a queue: two sessions training on one GPU at once would compete for its memory and could crash each other, so
jobs on an accelerator wait their turn in a process-wide FIFO per device type. CPU jobs run side by side, each with
its share of the cores.

Why throttling: the loop reports every `log_every` batches; the worker sends that to the job at most every
`SNAPSHOT_INTERVAL_S`, and epoch ends at once, so the UI costs the training next to nothing.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import sys
import threading
import time
import traceback
import types
import uuid
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from multiprocessing.connection import Connection
from typing import Any, Callable, Iterator, NamedTuple

import torch
import torch.multiprocessing as torch_mp

from mnist_core.checkpoints import LoadedCheckpoint
from mnist_core.config import Schedule, TrainConfig, epochs_shown, epochs_text
from mnist_core.data import Mnist
from mnist_core.device import pick_device
from mnist_core.errors import StudioError, TrainingDiverged
from mnist_core.models import build_model
from mnist_core.train import BatchReport, Callback, EvalRecord, TrainResult, TrainStart, evaluation_steps, fit

log = logging.getLogger(__name__)

SNAPSHOT_INTERVAL_S = 0.25  # the most often batch progress is sent to the UI
LIVE_LOSS_POINTS = 100  # about this many points on a run's live loss curve
ORPHAN_GRACE_S = 30.0  # a job whose browser tab is gone this long is stopped (a brief reconnect is not "gone")

# Job states. A job goes queued -> running -> one of the final states. NOT_LEARNED: it ran to its end, but its model
# scores about chance (`TrainResult.warning`); kept, but not made the active model.
QUEUED, RUNNING = "queued", "running"
DONE, NOT_LEARNED, STOPPED, DIVERGED = "done", "not learned", "stopped", "diverged"
FAILED, CRASHED, CANCELLED = "failed", "crashed", "cancelled"
FINAL_STATES = (DONE, NOT_LEARNED, STOPPED, DIVERGED, FAILED, CRASHED, CANCELLED)


class DeviceQueue:
    """A first-come-first-served turn per accelerator, shared by every session of the process."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._waiting: dict[str, deque[str]] = {}

    def position(self, device_type: str, job_id: str) -> int:
        """0 = this job's turn (or it is not waiting), 1 = one job ahead, ..."""
        with self._condition:
            line = self._waiting.get(device_type, deque())
            return list(line).index(job_id) if job_id in line else 0

    def wait_turn(self, device_type: str, job_id: str, cancelled: threading.Event,
                  while_waiting: Callable[[], None] | None = None) -> bool:
        """Block until `job_id` heads the line for `device_type`; False (and out of the line) if cancelled first.
        `while_waiting` is called about every 0.2 s meanwhile, outside the lock (it may take other locks, and set
        `cancelled`)."""
        with self._condition:
            line = self._waiting.setdefault(device_type, deque())
            line.append(job_id)
        while True:
            with self._condition:
                if line[0] == job_id:
                    return True
                if cancelled.is_set():
                    line.remove(job_id)
                    self._condition.notify_all()
                    return False
                self._condition.wait(timeout=0.2)  # wakes on notify, or to look at `cancelled`
            if while_waiting is not None:
                while_waiting()

    def release(self, device_type: str, job_id: str) -> None:
        with self._condition:
            line = self._waiting.get(device_type, deque())
            if job_id in line:
                line.remove(job_id)
            self._condition.notify_all()


DEVICE_QUEUE = DeviceQueue()
QUEUED_DEVICE_TYPES = ("cuda", "mps")  # one accelerator, shared memory: take turns


# --- the worker process ---------------------------------------------------------------------------------------------
# Messages from worker to job, over a pipe: ("ready",) once PyTorch is imported, ("start", device, Schedule),
# ("batches", [BatchReport, ...]), ("evaluation", EvalRecord), and last ("end", _Outcome).

@dataclass
class _Assignment:
    """What a worker trains: sent once, after the worker has started (the dataset's tensors travel as shared memory)."""

    config: TrainConfig
    data: Mnist
    threads: int  # torch CPU threads: the worker's share of the cores


@dataclass
class _Outcome:
    status: str
    message: str = ""
    details: str = ""  # the worker's traceback, for a crash
    weights: bytes = b""  # the trained state_dict (torch.save), empty when there is no model to keep
    history: list[EvalRecord] = field(default_factory=list)
    batch_losses: list[tuple[int, float]] = field(default_factory=list)
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    compile_seconds: float = 0.0
    stopped: bool = False
    device: str = ""
    steps: int = 0  # batches trained: where the run ended (a diverged run's last reports were never sent)
    steps_kept: int = 0  # batches behind the weights kept
    confidence_floor: float = float("nan")


def _test_points(config: TrainConfig, schedule: Schedule) -> set[int]:
    """The batches a test pass follows, counted as `fit` counts them (every `eval_every` epochs, and the last)."""
    return evaluation_steps(config.epochs, config.eval_every, schedule.steps_per_epoch, schedule.total_steps)


class _PipeReporter(Callback):
    """Runs in the worker: sends progress to the job, batch reports at most every SNAPSHOT_INTERVAL_S.
    When the app is gone (the pipe is broken), it stops the training: nobody is left to keep the model."""

    def __init__(self, connection: Connection, stop_event: Any) -> None:
        self.connection, self.stop_event = connection, stop_event
        self.pending: list[BatchReport] = []
        self.last_sent = 0.0
        self.test_points: set[int] = set()

    def on_train_start(self, start: TrainStart) -> None:
        schedule = Schedule(start.steps_per_epoch, start.total_steps, start.epochs)
        self.test_points = _test_points(start.config, schedule)
        self.send(("start", str(start.device), schedule))

    def on_batch_end(self, report: BatchReport) -> None:
        self.pending.append(report)
        now = time.monotonic()
        # A batch that a test pass follows, at once: the page says so while the pass runs
        if now - self.last_sent >= SNAPSHOT_INTERVAL_S or report.step in self.test_points:
            self.flush()
            self.last_sent = now

    def on_evaluation(self, record: EvalRecord) -> None:
        self.flush()
        self.send(("evaluation", record))

    def on_train_end(self, result: TrainResult) -> None:
        self.flush()

    def flush(self) -> None:
        if self.pending:
            self.send(("batches", self.pending))
            self.pending = []

    def send(self, message: tuple) -> None:
        try:
            self.connection.send(message)
        except (BrokenPipeError, OSError):
            self.stop_event.set()


def _outcome_of(result: TrainResult | None, status: str, message: str = "") -> _Outcome:
    if result is None:
        return _Outcome(status, message)
    buffer = io.BytesIO()
    if result.history:  # weights are only worth keeping once evaluated
        torch.save({key: value.detach().cpu() for key, value in result.model.state_dict().items()}, buffer)
    return _Outcome(status, message, "", buffer.getvalue(), result.history, result.batch_losses,
                    result.train_seconds, result.eval_seconds, result.compile_seconds, result.stopped, result.device,
                    result.steps, result.steps_kept, result.confidence_floor)


def _train_in_worker(assignment: _Assignment, connection: Connection, stop_event: Any) -> _Outcome:
    torch.set_num_threads(assignment.threads)
    try:
        result = fit(assignment.config, assignment.data, [_PipeReporter(connection, stop_event)], stop_event)
    except TrainingDiverged as error:
        return _outcome_of(error.result, DIVERGED, str(error))
    except StudioError as error:  # settings/data problems a user can fix
        return _Outcome(FAILED, str(error))
    except Exception as error:  # a bug: the job shows it with its traceback, and logs it
        return _Outcome(CRASHED, f"{type(error).__name__}: {error}", traceback.format_exc())
    if result.stopped:  # its sentence is written by the job, which knows the batch counts (`stopped_sentence`)
        return _outcome_of(result, STOPPED)
    warning = result.warning
    return _outcome_of(result, NOT_LEARNED, warning) if warning else _outcome_of(result, DONE)


def stopped_sentence(steps_done: int, total_steps: int, epochs_done: float, kept: bool) -> str:
    """What a stopped run says, with its real numbers: "Stopped after 2 of 469 batches (0.004 epochs); the model
    trained so far is kept." """
    if not kept:
        return "Stopped before the first batch; there is no model to keep."
    return (f"Stopped after {steps_done:,} of {total_steps:,} batches ({epochs_text(epochs_done)}); the "
            f"model trained so far is kept.")


class RunLength(NamedTuple):
    """How long a run trained, as numbers: its tables sort by them (as text, "10 epochs" came before "2 epochs")."""

    epochs: float | None  # rounded as `epochs_text` reads it: 0.002 after one batch of 469, not 0.00
    batches: int | None  # None where the checkpoint does not say (files saved before MNIST Studio kept the count)


def run_length(metrics: dict[str, Any], config: dict[str, Any] | None = None) -> RunLength:
    """How long a run trained, as the run history and Compare both show it: 3 epochs (1,407 batches), 0.8 epochs
    (375 batches), 0.002 epochs (1 batch). The batches come from `batches_done` (every run's metrics since
    `fit` kept it); an older file without it has the epochs alone, and a checkpoint that says neither has neither."""
    epochs = metrics.get("epochs_done", (config or {}).get("epochs"))
    if isinstance(epochs, bool) or not isinstance(epochs, (int, float)) or not math.isfinite(epochs) or epochs < 0:
        return RunLength(None, None)
    batches = metrics.get("batches_done")
    valid_batches = not isinstance(batches, bool) and isinstance(batches, int) and batches >= 1
    return RunLength(epochs_shown(epochs), batches if valid_batches else None)


def _warm_up() -> None:
    """Pay the first-use costs before Start is pressed: the first optimizer imports torch._dynamo (~1.5 s), the
    first backward pass starts autograd's machinery."""
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Flatten(),
                                torch.nn.Linear(2 * 26 * 26, 10))
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.zeros(2, 1, 28, 28)).sum().backward()
    optimizer.step()


def _worker_main(connection: Connection, stop_event: Any) -> None:
    """The worker process: warm up, say it is ready, wait for one assignment, train it, send the outcome, exit."""
    _warm_up()
    try:
        connection.send(("ready",))
        assignment = connection.recv()
    except (EOFError, OSError):  # the app let this spare go (it shut down): nothing to do
        return
    outcome = _train_in_worker(assignment, connection, stop_event)
    try:
        connection.send(("end", outcome))
    except (BrokenPipeError, OSError):  # the app went away meanwhile: nobody is left to tell
        pass


@contextlib.contextmanager
def _no_main_script() -> Iterator[None]:
    """Hide the `__main__` module while a worker process is spawned. Streamlit runs each page as a stand-in `__main__`
    whose `__file__` is the page script, and spawn re-runs the parent's main script in the child (as `__mp_main__`):
    every worker ran a bare copy of the page, a second or so of Streamlit imports and a console full of "missing
    ScriptRunContext" warnings before it could train. The worker needs nothing from `__main__` (its target and every
    object it receives live in mnist_core), and a main module without `__file__` is one spawn does not re-run."""
    page_module = sys.modules["__main__"]
    stand_in = types.ModuleType("__main__")
    sys.modules["__main__"] = stand_in
    try:
        yield
    finally:
        if sys.modules["__main__"] is stand_in:  # (a page run that began meanwhile installed its own: keep that)
            sys.modules["__main__"] = page_module


class _Worker:
    """A started worker process, idle until `assign` (importing PyTorch in it happens meanwhile)."""

    _context = torch_mp.get_context("spawn")  # fork would copy a multi-threaded server; spawn starts clean
    EXIT_WAIT_S = 5.0  # for a process that has been told to end

    def __init__(self) -> None:
        self.connection, child_connection = self._context.Pipe()
        self.stop_event = self._context.Event()
        self.process = self._context.Process(target=_worker_main, args=(child_connection, self.stop_event),
                                             name="mnist-studio-training", daemon=True)
        with _no_main_script():
            self.process.start()
        child_connection.close()  # the worker holds its end; closing ours lets recv() see the worker's exit
        self.ready = False

    def wait_ready(self, timeout: float) -> bool:
        """Wait (at most `timeout` s) until the worker has imported PyTorch; True when it has."""
        if not self.ready and self.connection.poll(timeout):
            try:
                self.ready = self.connection.recv() == ("ready",)
            except (EOFError, OSError):  # it died while starting; `take` replaces a dead spare
                return False
        return self.ready

    def assign(self, assignment: _Assignment) -> None:
        self.connection.send(assignment)

    def close(self) -> None:
        """Let the process end and reap it. A child never joined stays in the process table as a zombie
        (<defunct>) until another process start happens to reap it: after a kill, too, it must be joined."""
        self.connection.close()
        self.process.join(timeout=self.EXIT_WAIT_S)
        if self.process.is_alive():  # slow to exit (a loaded machine), or hung: it has nothing left to do
            self.process.kill()
            self.process.join(timeout=self.EXIT_WAIT_S)


class _WorkerPool:
    """One spare worker at a time, started ahead of need."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spare: _Worker | None = None
        self._busy = 0  # workers training on the CPU now, to share the cores between them

    def prepare(self, wait_s: float = 0.0) -> bool:
        with self._lock:
            if self._spare is None or not self._spare.process.is_alive():
                self._spare = _Worker()
            spare = self._spare
        return spare.wait_ready(wait_s) if wait_s > 0 else spare.ready

    def take(self) -> _Worker:
        with self._lock:
            worker, self._spare = self._spare, None
        return worker if worker is not None and worker.process.is_alive() else _Worker()

    def cpu_job_started(self) -> int:
        """Count a new CPU job in and return its share of the cores: all of them when alone, an equal part when others
        train too (more threads than cores makes every OpenMP barrier wait on a descheduled thread)."""
        with self._lock:
            self._busy += 1
            return max(1, (os.cpu_count() or 1) // self._busy)

    def cpu_job_ended(self) -> None:
        with self._lock:
            self._busy = max(0, self._busy - 1)

    def cpu_jobs(self) -> int:
        """CPU jobs training now (in every session of the process)."""
        with self._lock:
            return self._busy


WORKERS = _WorkerPool()


def prepare_worker(wait_s: float = 0.0) -> bool:
    """Start a spare training process now, so the next Start does not wait for Python and PyTorch to load.
    With `wait_s`, wait that long for it to be ready; True when it is."""
    return WORKERS.prepare(wait_s)


@dataclass(frozen=True)
class JobSnapshot:
    """What the UI shows: a copy, safe to read while training goes on."""

    status: str
    queue_position: int  # jobs ahead of this one while queued
    device: str
    step: int
    total_steps: int
    epoch: float
    total_epochs: float
    images_per_second: float
    elapsed: float  # training seconds so far
    eta: float  # seconds left: the batches at the current speed and the test passes to come (`BatchReport.eta`)
    batch_losses: tuple[tuple[int, float], ...]  # (step, mean train loss since the previous report)
    learning_rates: tuple[tuple[int, float], ...]  # (step, lr)
    history: tuple[EvalRecord, ...]
    message: str  # the error for failed/diverged/crashed, the warning for not learned, a note for stopped/cancelled
    # Starting a process of its own, which loads PyTorch: the one kept ready was taken (by another session's run) or
    # was not ready yet. `others_training`: CPU runs of other sessions training meanwhile, which slow that down.
    fresh_process: bool = False
    others_training: int = 0
    # The test pass at an epoch's end is under way: a minute for a big model on a CPU (s5-net: 54 s on 2 busy
    # cores), while the progress stood still and a Stop read "Stopping after the current batch…" all along.
    testing: bool = False

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATES

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0

    @property
    def steps_per_epoch(self) -> float:
        return self.total_steps / self.total_epochs if self.total_epochs else 0.0

    @property
    def speed(self) -> str:
        """images/s as the page shows it: "measuring…" until the first report has timed some batches (before it,
        the figure is a placeholder 0, not a speed); "—" for a run that ended before one did (it stayed "measuring…")."""
        measured = math.isfinite(self.images_per_second) and self.images_per_second > 0
        return f"{self.images_per_second:,.0f}" if measured else "—" if self.finished else "measuring…"

    @property
    def testing_last(self) -> bool:
        """The test pass after the last batch is under way: all that is left of the run (a minute for a big model on
        a CPU), which the ETA can only guess from the test pass before it, and not at all when it is the first."""
        return self.testing and not self.finished and self.total_steps > 0 and self.step >= self.total_steps

    @property
    def time_left(self) -> str:
        """The ETA as the page shows it: "—" before the first batch (nothing to estimate from yet) and once the run
        has ended (a stopped run's last estimate is the time it would still need); "the test pass" during the last
        one; else in hours and minutes, as a person reads a wait ("ETA 1,026 s" for 17 minutes, "ETA 48,213 s" for 13
        hours)."""
        if self.finished or self.step == 0 or not math.isfinite(self.eta):
            return "—"
        if self.testing_last:
            return "the test pass"
        return duration_text(self.eta)


def duration_text(seconds: float) -> str:
    """"42 s", "17 min 06 s", "13 h 23 min": a wait in the units a person reads it in, never more than two."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    minutes = round(whole / 60)
    return f"{minutes // 60:,} h {minutes % 60:02d} min"


def training_time_text(seconds: float) -> str:
    """How long a run trained: "3.4 s" under a minute (runs that short are compared to the tenth), else as
    `duration_text` ("24 min 22 s": "1462.3 s" followed an ETA that had read "24 min 22 s")."""
    return f"{seconds:.1f} s" if seconds < 59.95 else duration_text(seconds)


class _Every:
    """Calls `action` when called, at most once every `interval_s` seconds (the first call waits one interval)."""

    def __init__(self, interval_s: float, action: Callable[[], None]) -> None:
        self.interval_s, self.action = interval_s, action
        self.next_at = time.monotonic() + interval_s

    def __call__(self) -> None:
        if time.monotonic() >= self.next_at:
            self.action()
            self.next_at = time.monotonic() + self.interval_s


class TrainingJob:
    """One training run in a worker process. Create, `start()`, poll `snapshot()`, maybe `stop()`.

    When it ends, `result` holds the `TrainResult` (also after Stop, and after divergence: then with the last good
    weights), and `snapshot().message` explains anything that went wrong; after a crash, `error_details` holds the
    worker's traceback. `still_wanted`, when given, is asked every second: once it has said False for
    ORPHAN_GRACE_S (the browser tab that started the job is gone), the job stops itself.
    """

    def __init__(self, config: TrainConfig, data: Mnist, queue: DeviceQueue = DEVICE_QUEUE,
                 still_wanted: Callable[[], bool] | None = None) -> None:
        self.config = config.validate()  # refuse impossible settings before any process starts
        self.device_type = pick_device(config.device).type  # ... and devices this machine lacks
        self.data = data
        self.id = uuid.uuid4().hex
        self.created = datetime.now(timezone.utc)
        self.result: TrainResult | None = None
        self.error_details = ""  # the worker's traceback after a crash (a bug), for the page to show
        self._queue = queue
        self._still_wanted = still_wanted
        self._orphaned_since: float | None = None  # since when `still_wanted` has said False
        self._stopped_as_orphan = False  # stopped by `_check_still_wanted`, not by the user: its message says so
        self._orphan_check = _Every(1.0, self._check_still_wanted)  # in the device's queue and while training
        self._stop_event = threading.Event()
        self._worker: _Worker | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._supervise, name=f"training-{self.id[:8]}", daemon=True)
        self._status = QUEUED
        self._message = ""
        self._device = self.device_type
        self._fresh_process, self._others_training = False, 0
        self._testing = False
        self._step = 0
        self._schedule: Schedule | None = None  # from the worker, which knows the data it trains on
        self._test_points: set[int] = set()  # the batches a test pass follows, once the schedule is known
        self._epoch = 0.0
        self._images_per_second = self._elapsed = self._eta = 0.0
        self._batch_losses: list[tuple[int, float]] = []
        self._learning_rates: list[tuple[int, float]] = []
        self._history: list[EvalRecord] = []

    def start(self) -> "TrainingJob":
        """Start supervising the job (queue, worker, progress) on a background thread; returns the job itself."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the job to stop after the current batch (or to leave the queue). Returns at once."""
        with self._lock:
            self._stop_event.set()
            if self._worker is not None:
                self._worker.stop_event.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the job to end; True when it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def stop_requested(self) -> bool:
        return self._stop_event.is_set()

    @property
    def schedule(self) -> Schedule | None:
        """The run's batches and epochs on the images it trains on; None until the worker has started training."""
        with self._lock:
            return self._schedule

    def snapshot(self) -> JobSnapshot:
        """The job's progress now, as one consistent, immutable copy (what the pages poll)."""
        queued = self._status == QUEUED and self.device_type in QUEUED_DEVICE_TYPES
        position = self._queue.position(self.device_type, self.id) if queued else 0
        with self._lock:
            schedule = self._schedule
            return JobSnapshot(self._status, position, self._device, self._step,
                               schedule.total_steps if schedule else 0, self._epoch,
                               schedule.epochs if schedule else float(self.config.epochs), self._images_per_second,
                               self._elapsed, self._eta,
                               tuple(self._batch_losses), tuple(self._learning_rates), tuple(self._history),
                               self._message, self._fresh_process, self._others_training, self._testing)

    # --- on the job's supervising thread ---

    def _finish(self, status: str, message: str = "") -> None:
        with self._lock:
            self._status, self._message = status, message

    def _supervise(self) -> None:
        takes_turns = self.device_type in QUEUED_DEVICE_TYPES
        # A queued job whose tab is gone leaves the line too: it kept its place, then held the device for the other
        # sessions' runs waiting behind it while it trained on for ORPHAN_GRACE_S
        if takes_turns and not self._queue.wait_turn(self.device_type, self.id, self._stop_event,
                                                     self._orphan_check):
            self._finish(CANCELLED, self._orphan_note() + "Stopped while waiting for the device; nothing was trained.")
            return
        threads = WORKERS.cpu_job_started() if self.device_type == "cpu" else 1
        worker: _Worker | None = None
        try:
            worker = WORKERS.take()
            fresh = not worker.wait_ready(0)
            with self._lock:
                self._fresh_process = fresh
                self._others_training = WORKERS.cpu_jobs() - (1 if self.device_type == "cpu" else 0)
                self._worker, self._status = worker, RUNNING
                if self._stop_event.is_set():  # Stop pressed while the worker was being handed over
                    worker.stop_event.set()
            worker.assign(_Assignment(self.config, self.data, threads))
            outcome = self._follow(worker)
            self._conclude(outcome)
        except Exception as error:  # a bug on this side, or no process could start: keep it for the page, and log it
            log.error("training job %s crashed:\n%s", self.id, traceback.format_exc())
            self.error_details = traceback.format_exc()
            self._finish(CRASHED, f"{type(error).__name__}: {error}")
        finally:
            if worker is not None:
                worker.close()
            if self.device_type == "cpu":
                WORKERS.cpu_job_ended()
            if takes_turns:
                self._queue.release(self.device_type, self.id)
            WORKERS.prepare()  # the next run starts at once; importing PyTorch now takes no core from training

    def _follow(self, worker: _Worker) -> _Outcome:
        """Apply the worker's messages until its outcome arrives (or it dies)."""
        while True:
            self._orphan_check()  # about once a second, however busy the pipe is
            if not worker.connection.poll(1.0):
                continue
            try:
                message = worker.connection.recv()
            except (EOFError, OSError):  # the worker died without a word: killed, out of memory, a crash in C
                worker.process.join(timeout=5)
                return _Outcome(CRASHED, "the training process ended unexpectedly (exit code "
                                         f"{worker.process.exitcode}); if the machine is short of memory, try a "
                                         "smaller batch size or model")
            kind = message[0]
            with self._lock:
                if kind == "ready":
                    pass  # a spare's hello that nobody waited for
                elif kind == "start":
                    self._device, self._schedule = message[1], message[2]
                    self._test_points = _test_points(self.config, self._schedule)
                elif kind == "batches":
                    reports: list[BatchReport] = message[1]
                    latest = reports[-1]
                    self._batch_losses.extend((r.step, r.loss) for r in reports)
                    self._learning_rates.extend((r.step, r.lr) for r in reports)
                    self._step, self._epoch = latest.step, latest.epoch
                    self._images_per_second, self._elapsed, self._eta = (
                        latest.images_per_second, latest.elapsed, latest.eta)
                    self._testing = latest.step in self._test_points
                elif kind == "evaluation":
                    self._history.append(message[1])
                    self._testing = False
                elif kind == "end":
                    self._testing = False
                    return message[1]

    def _check_still_wanted(self) -> None:
        """Stop the job once its tab has been gone for ORPHAN_GRACE_S (a brief reconnect does not count)."""
        if self._still_wanted is None or self._still_wanted():
            self._orphaned_since = None
            return
        now = time.monotonic()
        if self._orphaned_since is None:
            self._orphaned_since = now
        elif now - self._orphaned_since >= ORPHAN_GRACE_S and not self._stop_event.is_set():
            log.info("training job %s: its browser session is gone; stopping it", self.id)
            self._stopped_as_orphan = True
            self.stop()

    def _orphan_note(self) -> str:
        """Why a run stopped that nobody stopped: its tab reopened later (from the history, the same URL) read a bare
        "Stopped after …" and no one had pressed Stop."""
        if not self._stopped_as_orphan:
            return ""
        return (f"No browser tab showed this session for {ORPHAN_GRACE_S:g} s (its tab was closed), so the run "
                f"stopped itself. ")

    def _conclude(self, outcome: _Outcome) -> None:
        if outcome.weights:
            model = build_model(self.config.model, **self.config.model_kwargs)
            model.load_state_dict(torch.load(io.BytesIO(outcome.weights), weights_only=True))
            self.result = TrainResult(model.eval(), self.config, outcome.device, outcome.history,
                                      batch_losses=outcome.batch_losses, train_seconds=outcome.train_seconds,
                                      eval_seconds=outcome.eval_seconds, compile_seconds=outcome.compile_seconds,
                                      stopped=outcome.stopped, steps=outcome.steps, steps_kept=outcome.steps_kept,
                                      confidence_floor=outcome.confidence_floor)
        if outcome.status == CRASHED:
            log.error("training job %s crashed: %s\n%s", self.id, outcome.message, outcome.details)
            self.error_details = outcome.details
        message = outcome.message
        with self._lock:
            if self._schedule is not None and outcome.steps:
                # Where the run ended: the reports sent are throttled and stop short of it (a diverged run's last
                # ones are never sent; a Stop lands between them), so "batch 5/50" beside "diverged at batch 10".
                self._step, self._epoch = outcome.steps, self._schedule.epochs_at(outcome.steps)
            if outcome.weights:
                # The evaluations behind the weights kept: after a diverged run fell back on epoch 1's, the page's
                # test accuracy and curves went on with the later ones (chance level) beside a run history at epoch 1.
                self._history = list(outcome.history)
            if outcome.status == STOPPED:
                message = self._orphan_note() + stopped_sentence(
                    self._step, self._schedule.total_steps if self._schedule else 0, self._epoch, bool(outcome.weights))
        self._finish(outcome.status, message)


def with_live_reporting(config: TrainConfig) -> TrainConfig:
    """`config` reporting the train loss often enough for a smooth live curve (~LIVE_LOSS_POINTS points), but never
    more often than every 5 batches (each report is one host-device sync) nor less often than the CLI's 20."""
    steps = config.schedule().total_steps
    return replace(config, log_every=max(5, min(20, steps // LIVE_LOSS_POINTS)))


def result_checkpoint(result: TrainResult, source: str) -> LoadedCheckpoint:
    """A finished run in the same shape as a loaded file, so the app treats runs and files alike.

    The model moves to the CPU (like a loaded checkpoint), which frees the accelerator for the next job.
    """
    config = result.config
    return LoadedCheckpoint(result.model.to("cpu").eval(), config.model, dict(config.model_kwargs), config.to_dict(),
                            [record.to_dict() for record in result.history], result.metrics(),
                            datetime.now(timezone.utc).isoformat(timespec="seconds"), source)


def has_usable_weights(result: TrainResult | None) -> bool:
    """A run is worth keeping once it reached at least one evaluation point."""
    return result is not None and bool(result.history)


__all__ = ["TrainingJob", "JobSnapshot", "DeviceQueue", "DEVICE_QUEUE", "result_checkpoint", "has_usable_weights",
           "with_live_reporting", "prepare_worker", "stopped_sentence", "epochs_text", "RunLength", "run_length",
           "FINAL_STATES", "QUEUED", "RUNNING", "DONE", "NOT_LEARNED", "STOPPED", "DIVERGED", "FAILED", "CRASHED",
           "CANCELLED"]
