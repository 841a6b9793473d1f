"""Training in the background: a `TrainingJob` runs `train.fit` on a daemon thread that a UI session owns.

Why a thread: a training loop inside a Streamlit script run blocks that run, so a Stop press only queues a rerun and
any widget touched interrupts the script mid-epoch. Here the page starts a job, polls `snapshot()` (a consistent,
immutable copy of the progress) and calls `stop()`, which sets the `threading.Event` that `fit` checks between
batches — Stop is instant and keeps the model trained so far.

Why a queue: two sessions training on one GPU at once would compete for its memory and could crash each other, so
jobs on an accelerator wait their turn in a process-wide FIFO per device type. CPU jobs run side by side (the OS
shares the cores).

Why throttling: the loop reports every `log_every` batches; copying that into the shared snapshot happens at most
every `SNAPSHOT_INTERVAL_S`, and epoch ends are published at once, so the UI costs the training next to nothing.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
import uuid
from collections import deque
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from mnist_core.checkpoints import LoadedCheckpoint
from mnist_core.config import TRAIN_SIZE, TrainConfig
from mnist_core.data import Mnist, batches_per_epoch
from mnist_core.device import pick_device
from mnist_core.errors import StudioError, TrainingDiverged
from mnist_core.train import BatchReport, Callback, EpochRecord, TrainResult, TrainStart, fit

log = logging.getLogger(__name__)

SNAPSHOT_INTERVAL_S = 0.25  # the most often batch progress is copied for the UI
LIVE_LOSS_POINTS = 100  # about this many points on a run's live loss curve

# Job states. A job goes queued -> running -> one of the final states.
QUEUED, RUNNING = "queued", "running"
DONE, STOPPED, DIVERGED, FAILED, CRASHED, CANCELLED = "done", "stopped", "diverged", "failed", "crashed", "cancelled"
FINAL_STATES = (DONE, STOPPED, DIVERGED, FAILED, CRASHED, CANCELLED)


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

    def wait_turn(self, device_type: str, job_id: str, cancelled: threading.Event) -> bool:
        """Block until `job_id` heads the line for `device_type`; False (and out of the line) if cancelled first."""
        with self._condition:
            line = self._waiting.setdefault(device_type, deque())
            line.append(job_id)
            while line[0] != job_id:
                if cancelled.is_set():
                    line.remove(job_id)
                    self._condition.notify_all()
                    return False
                self._condition.wait(timeout=0.2)  # wakes on notify, or to look at `cancelled`
            return True

    def release(self, device_type: str, job_id: str) -> None:
        with self._condition:
            line = self._waiting.get(device_type, deque())
            if job_id in line:
                line.remove(job_id)
            self._condition.notify_all()


DEVICE_QUEUE = DeviceQueue()
QUEUED_DEVICE_TYPES = ("cuda", "mps")  # one accelerator, shared memory: take turns


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
    eta: float  # seconds left at the current speed
    batch_losses: tuple[tuple[int, float], ...]  # (step, mean train loss since the previous report)
    learning_rates: tuple[tuple[int, float], ...]  # (step, lr)
    history: tuple[EpochRecord, ...]
    message: str  # the error for failed/diverged/crashed, a note for stopped/cancelled

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATES

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0

    @property
    def steps_per_epoch(self) -> float:
        return self.total_steps / self.total_epochs if self.total_epochs else 0.0


class _ProgressRecorder(Callback):
    """Collects reports on the training thread and publishes them into the job at most every SNAPSHOT_INTERVAL_S."""

    def __init__(self, job: "TrainingJob") -> None:
        self.job = job
        self.pending: list[BatchReport] = []
        self.last_publish = 0.0

    def on_train_start(self, start: TrainStart) -> None:
        with self.job._lock:
            self.job._total_steps = start.total_steps
            self.job._device = str(start.device)

    def on_batch_end(self, report: BatchReport) -> None:
        self.pending.append(report)
        now = time.monotonic()
        if now - self.last_publish >= SNAPSHOT_INTERVAL_S:
            self.publish()
            self.last_publish = now

    def on_epoch_end(self, record: EpochRecord) -> None:
        self.publish()
        with self.job._lock:
            self.job._history.append(record)

    def on_train_end(self, result: TrainResult) -> None:
        self.publish()

    def publish(self) -> None:
        if not self.pending:
            return
        latest = self.pending[-1]
        with self.job._lock:
            self.job._batch_losses.extend((r.step, r.loss) for r in self.pending)
            self.job._learning_rates.extend((r.step, r.lr) for r in self.pending)
            self.job._step, self.job._epoch = latest.step, latest.epoch
            self.job._images_per_second, self.job._elapsed, self.job._eta = (
                latest.images_per_second, latest.elapsed, latest.eta)
        self.pending = []


class TrainingJob:
    """One training run on a background daemon thread. Create, `start()`, poll `snapshot()`, maybe `stop()`.

    When it ends, `result` holds the `TrainResult` (also after Stop, and after divergence: then with the last good
    weights), and `snapshot().message` explains anything that went wrong.
    """

    def __init__(self, config: TrainConfig, data: Mnist, queue: DeviceQueue = DEVICE_QUEUE) -> None:
        self.config = config.validate()  # refuse impossible settings before any thread starts
        self.device_type = pick_device(config.device).type  # ... and devices this machine lacks
        self.data = data
        self.id = uuid.uuid4().hex
        self.created = datetime.now(timezone.utc)
        self.result: TrainResult | None = None
        self.exception: BaseException | None = None  # an unexpected error (a bug), kept for the page to show
        self._queue = queue
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"training-{self.id[:8]}", daemon=True)
        self._status = QUEUED
        self._message = ""
        self._device = self.device_type
        self._step = 0
        self._total_steps = 0
        self._epoch = 0.0
        self._images_per_second = self._elapsed = self._eta = 0.0
        self._batch_losses: list[tuple[int, float]] = []
        self._learning_rates: list[tuple[int, float]] = []
        self._history: list[EpochRecord] = []

    def start(self) -> "TrainingJob":
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the job to stop after the current batch (or to leave the queue). Returns at once."""
        self._stop_event.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end; True when it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def stop_requested(self) -> bool:
        return self._stop_event.is_set()

    def snapshot(self) -> JobSnapshot:
        queued = self._status == QUEUED and self.device_type in QUEUED_DEVICE_TYPES
        position = self._queue.position(self.device_type, self.id) if queued else 0
        with self._lock:
            return JobSnapshot(self._status, position, self._device, self._step, self._total_steps, self._epoch,
                               float(self.config.epochs), self._images_per_second, self._elapsed, self._eta,
                               tuple(self._batch_losses), tuple(self._learning_rates), tuple(self._history),
                               self._message)

    def _finish(self, status: str, message: str = "") -> None:
        with self._lock:
            self._status, self._message = status, message

    def _run(self) -> None:
        takes_turns = self.device_type in QUEUED_DEVICE_TYPES
        if takes_turns and not self._queue.wait_turn(self.device_type, self.id, self._stop_event):
            self._finish(CANCELLED, "stopped while waiting for the device; nothing was trained")
            return
        try:
            with self._lock:
                self._status = RUNNING
            self.result = fit(self.config, self.data, [_ProgressRecorder(self)], self._stop_event)
            if self.result.stopped:
                note = (f"stopped after {self.result.epochs_done:.2f} epochs; the model trained so far is kept"
                        if self.result.history else "stopped before the first batch; there is no model to keep")
                self._finish(STOPPED, note)
            else:
                self._finish(DONE)
        except TrainingDiverged as error:
            self.result = error.result if isinstance(error.result, TrainResult) else None
            self._finish(DIVERGED, str(error))
        except StudioError as error:  # settings/data problems a user can fix
            self._finish(FAILED, str(error))
        except Exception as error:  # a bug: keep it for the page to show with its traceback, and log it
            log.error("training job %s crashed:\n%s", self.id, traceback.format_exc())
            self.exception = error
            self._finish(CRASHED, f"{type(error).__name__}: {error}")
        finally:
            if takes_turns:
                self._queue.release(self.device_type, self.id)


def with_live_reporting(config: TrainConfig) -> TrainConfig:
    """`config` reporting the train loss often enough for a smooth live curve (~LIVE_LOSS_POINTS points), but never
    more often than every 5 batches (each report is one host-device sync) nor less often than the CLI's 20."""
    steps = round(config.epochs * batches_per_epoch(config.train_subset or TRAIN_SIZE, config.batch_size))
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
           "with_live_reporting",
           "FINAL_STATES", "QUEUED", "RUNNING", "DONE", "STOPPED", "DIVERGED", "FAILED", "CRASHED", "CANCELLED"]
