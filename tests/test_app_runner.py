"""The app's background training (`mnist_core.runner`): accelerator queue, divergence, stop, live reporting."""

from __future__ import annotations

import threading
import time

import torch

from mnist_core.config import TrainConfig
from mnist_core.data import Mnist, MnistSplit
from mnist_core import runner
from mnist_core.runner import (DIVERGED, DONE, QUEUED, STOPPED, DeviceQueue, TrainingJob, has_usable_weights,
                               result_checkpoint, with_live_reporting)


def test_device_queue_serves_jobs_in_order_and_lets_waiting_ones_leave() -> None:
    queue, never = DeviceQueue(), threading.Event()
    assert queue.wait_turn("cuda", "first", never)
    second_started = threading.Event()

    def second() -> None:
        if queue.wait_turn("cuda", "second", never):
            second_started.set()

    waiter = threading.Thread(target=second, daemon=True)
    waiter.start()
    deadline = time.monotonic() + 5
    while queue.position("cuda", "second") != 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert queue.position("cuda", "second") == 1 and not second_started.is_set()

    cancelled = threading.Event()
    cancelled.set()
    assert not queue.wait_turn("cuda", "third", cancelled)  # gave up while waiting: out of the line
    assert queue.position("cuda", "third") == 0

    queue.release("cuda", "first")
    assert second_started.wait(5)
    assert queue.wait_turn("mps", "elsewhere", never)  # another device type has its own line


def noise_data() -> Mnist:
    """Random images: with a huge learning rate the loss explodes within a couple of epochs."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 255, (512, 28, 28), generator=generator, dtype=torch.uint8)
    labels = torch.arange(512) % 10
    return Mnist(MnistSplit(images, labels), MnistSplit(images[:256], labels[:256]))


def test_diverged_job_reports_the_fix_and_keeps_the_last_good_weights() -> None:
    config = TrainConfig(model="seed-net", optimizer="sgd", lr=100.0, momentum=0.9, epochs=3, batch_size=32,
                         eval_every=0.5, device="cpu")
    job = TrainingJob(config, noise_data()).start()
    assert job.join(60)
    snapshot = job.snapshot()
    assert snapshot.status == DIVERGED and "lower the learning rate" in snapshot.message
    assert has_usable_weights(job.result)
    kept = result_checkpoint(job.result, "run 1")
    assert all(torch.isfinite(value).all() for value in kept.model.state_dict().values() if value.is_floating_point())


def test_stopped_job_keeps_the_model_so_far_and_a_finished_one_is_done(tiny_mnist) -> None:
    long_run = TrainingJob(TrainConfig(model="seed-net", epochs=50, batch_size=32, device="cpu"), tiny_mnist).start()
    short_run = TrainingJob(TrainConfig(model="seed-net", epochs=1, batch_size=64, device="cpu"), tiny_mnist).start()
    deadline = time.monotonic() + 60
    while long_run.snapshot().step == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    long_run.stop()
    assert long_run.join(60) and short_run.join(60)
    assert long_run.snapshot().status == STOPPED and long_run.result.stopped
    assert 0 < long_run.result.epochs_done < 50 and has_usable_weights(long_run.result)
    assert short_run.snapshot().status == DONE and short_run.snapshot().fraction == 1.0
    assert short_run.snapshot().history and short_run.snapshot().batch_losses


def test_live_reporting_is_dense_for_the_chart_but_never_per_batch() -> None:
    assert with_live_reporting(TrainConfig(epochs=1, batch_size=128)).log_every == 5  # 469 steps -> every 5
    assert with_live_reporting(TrainConfig(epochs=20, batch_size=128)).log_every == 20  # long runs: as the CLI
    assert with_live_reporting(TrainConfig(epochs=1, batch_size=32, train_subset=512)).log_every == 5


def test_jobs_on_a_shared_accelerator_queue_instead_of_running_together(tiny_mnist, monkeypatch) -> None:
    """No GPU here: make the CPU a queued device type to check the job-level waiting on one machine."""
    monkeypatch.setattr(runner, "QUEUED_DEVICE_TYPES", ("cpu",))
    queue = DeviceQueue()
    first = TrainingJob(TrainConfig(model="seed-net", epochs=50, batch_size=32, device="cpu"), tiny_mnist,
                        queue=queue).start()
    deadline = time.monotonic() + 60
    while first.snapshot().step == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    second = TrainingJob(TrainConfig(model="seed-net", epochs=1, batch_size=64, device="cpu"), tiny_mnist,
                         queue=queue).start()
    while queue.position("cpu", second.id) == 0 and time.monotonic() < deadline:  # until it has joined the line
        time.sleep(0.01)
    waiting = second.snapshot()
    assert waiting.status == QUEUED and waiting.queue_position == 1 and waiting.step == 0
    first.stop()
    assert first.join(60) and second.join(60)
    assert first.snapshot().status == STOPPED and second.snapshot().status == DONE
