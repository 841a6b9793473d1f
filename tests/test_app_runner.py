"""The app's background training (`mnist_core.runner`): worker processes, accelerator queue, divergence, stop,
crashes, orphaned jobs, live reporting."""

from __future__ import annotations

import math
import os
import re
import signal
import threading
import time
from dataclasses import replace

import pytest
import torch

from mnist_core.config import TrainConfig, epochs_text
from mnist_core.train import BatchReport, Callback, EvalRecord, TrainResult, TrainStart, fit
from mnist_core import runner
from mnist_core.runner import (CANCELLED, CRASHED, DIVERGED, DONE, NOT_LEARNED, QUEUED, STOPPED, DeviceQueue,
                               JobSnapshot, RunLength, TrainingJob, has_usable_weights, result_checkpoint, run_length,
                               stopped_sentence, training_time_text, with_live_reporting)


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


def test_diverged_job_reports_the_fix_and_keeps_the_last_good_weights(tiny_mnist) -> None:
    # SGD at lr 10: the loss blows up after the first evaluation point (epoch 0.25), whose weights are kept.
    config = TrainConfig(model="nf-cnn", model_kwargs={"nf": 8}, optimizer="sgd", lr=10.0, epochs=1, batch_size=64,
                         eval_every=0.25, device="cpu")
    job = TrainingJob(config, tiny_mnist).start()
    assert job.join(60)
    snapshot = job.snapshot()
    assert snapshot.status == DIVERGED and "lower the learning rate" in snapshot.message
    assert has_usable_weights(job.result) and [record.epoch for record in job.result.history] == [0.25]
    kept = result_checkpoint(job.result, "run 1")
    assert all(torch.isfinite(value).all() for value in kept.model.state_dict().values() if value.is_floating_point())


def test_a_finite_explosion_ends_the_job_as_diverged(tiny_mnist) -> None:
    config = TrainConfig(model="fast", optimizer="sgd", lr=50.0, epochs=1, batch_size=64, eval_every=0.25,
                         device="cpu", log_every=1)
    job = TrainingJob(config, tiny_mnist).start()
    assert job.join(60)
    snapshot = job.snapshot()
    assert snapshot.status == DIVERGED and "the train loss rose to" in snapshot.message
    assert "lower the learning rate (it was 50)" in snapshot.message
    assert all(math.isfinite(loss) and loss < 1000 for _, loss in snapshot.batch_losses)  # the blow-up is not drawn


def test_a_diverged_jobs_progress_ends_at_the_batch_where_it_diverged(tiny_mnist) -> None:
    """"training diverged at batch 10 of 50" beside a progress line reading "batch 5/50": the report of the batch that
    blew up is never sent (nor are throttled ones before it), so the progress stopped at the last one sent."""
    config = TrainConfig(model="fast", optimizer="sgd", lr=50.0, epochs=2, batch_size=64, device="cpu", log_every=3)
    job = TrainingJob(config, tiny_mnist).start()
    assert job.join(60)
    snapshot = job.snapshot()
    assert snapshot.status == DIVERGED, snapshot.message
    diverged_at, total = map(int, re.search(r"at batch (\d+) of (\d+)", snapshot.message).groups())
    assert (snapshot.step, snapshot.total_steps) == (diverged_at, total) == (diverged_at, 16)
    assert snapshot.epoch == diverged_at / 8


def test_a_job_that_does_not_learn_is_not_learned_and_keeps_its_model(tiny_mnist) -> None:
    config = TrainConfig(model="seed-net", optimizer="sgd", lr=1e-5, epochs=0.25, batch_size=32, device="cpu")
    job = TrainingJob(config, tiny_mnist).start()
    assert job.join(60)
    snapshot = job.snapshot()
    assert snapshot.status == NOT_LEARNED and snapshot.finished
    assert snapshot.message.startswith("the model did not learn: ") and snapshot.message == job.result.warning
    assert has_usable_weights(job.result) and job.result.test_accuracy <= 20


def test_stopped_job_keeps_the_model_so_far_and_a_finished_one_is_done(tiny_mnist) -> None:
    # No batch reports (log_every): a Stop always lands between them, so only the last evaluation says where it was.
    long_run = TrainingJob(TrainConfig(model="seed-net", epochs=50, batch_size=32, device="cpu", log_every=10**6),
                           tiny_mnist).start()
    short_run = TrainingJob(TrainConfig(model="seed-net", epochs=1, batch_size=64, device="cpu"), tiny_mnist).start()
    deadline = time.monotonic() + 60
    while not long_run.snapshot().history and time.monotonic() < deadline:
        time.sleep(0.05)
    long_run.stop()
    assert long_run.join(60) and short_run.join(60)
    assert long_run.snapshot().status == STOPPED and long_run.result.stopped
    assert 0 < long_run.result.epochs_done < 50 and has_usable_weights(long_run.result)
    stopped = long_run.snapshot()  # the progress shows where it stopped, not the last report before that
    assert stopped.epoch == long_run.result.epochs_done
    assert stopped.step == round(long_run.result.epochs_done * stopped.total_steps / 50)
    assert short_run.snapshot().status == DONE and short_run.snapshot().fraction == 1.0
    assert short_run.snapshot().history and short_run.snapshot().batch_losses
    # One sentence with the real numbers: the batches done of the run's total, and those as epochs.
    assert stopped.message == stopped_sentence(stopped.step, stopped.total_steps, stopped.epoch, kept=True)
    assert stopped.message.startswith(f"Stopped after {stopped.step:,} of {stopped.total_steps:,} batches (")


def test_a_stopped_runs_sentence_has_its_real_numbers() -> None:
    assert stopped_sentence(2, 469, 2 / 469, kept=True) == ("Stopped after 2 of 469 batches (0.004 epochs); the model "
                                                            "trained so far is kept.")
    assert stopped_sentence(1_407, 4_690, 3.0, kept=True) == ("Stopped after 1,407 of 4,690 batches (3 epochs); the "
                                                              "model trained so far is kept.")
    assert "(0.0002 epochs)" in stopped_sentence(1, 5_000, 1 / 5_000, kept=True)  # never "0 epochs"
    # stopped during the test pass at the end of the first epoch (it read "1 epochs")
    assert "of 938 batches (1 epoch);" in stopped_sentence(469, 938, 1.0, kept=True)
    assert stopped_sentence(0, 469, 0.0, kept=False) == "Stopped before the first batch; there is no model to keep."


def test_a_runs_length_is_numbers_rounded_as_they_read() -> None:
    """One helper for the run history and Compare. Numbers, so their columns sort by length (as text, "10 epochs"
    sorted before "2 epochs"), rounded as `epochs_text` reads them (a Stop after one batch read "0.00" epochs)."""
    assert run_length({"epochs_done": 1 / 469, "batches_done": 1}) == RunLength(0.002, 1)
    assert run_length({"epochs_done": 0.8, "batches_done": 375}) == RunLength(0.8, 375)
    assert run_length({"epochs_done": 12 / 1875, "batches_done": 12}) == RunLength(0.006, 12)
    assert run_length({"epochs_done": 3.0, "batches_done": 1_407}) == RunLength(3.0, 1_407)
    assert run_length({"epochs_done": 1 / 1875}) == RunLength(0.0005, None)  # a file without the count (the CLI's)
    assert run_length({}, {"epochs": 2}) == RunLength(2, None)  # no metrics: the epochs it was set
    assert run_length({}) == RunLength(None, None) == run_length({"epochs_done": float("nan")})
    assert run_length({"epochs_done": "x", "batches_done": True}, {"epochs": None}) == RunLength(None, None)
    assert run_length({"epochs_done": 0.5, "batches_done": True}) == RunLength(0.5, None)  # not 1 batch
    for epochs in (1 / 469, 0.799574, 1 / 5_000, 12.5, 10):  # the number and the words never disagree
        assert f"{run_length({'epochs_done': epochs}).epochs:g}" == epochs_text(epochs).split()[0]


def test_a_run_keeps_the_batches_behind_its_weights() -> None:
    """`batches_done` counts the batches of the weights kept (a diverged run keeps earlier weights than the batch it
    diverged at): `fit` knows them, and a run of the app carries them as a file of the CLI does."""
    model = torch.nn.Linear(1, 1)
    record = EvalRecord(0.25, 1.0, 50.0, 1.0, 50.0, 0.01, 1.0, 1.0)
    result = TrainResult(model, TrainConfig(), "cpu", [record], steps=120, steps_kept=117)
    assert result_checkpoint(result, "run 1").metrics["batches_done"] == 117


def snapshot_with_speed(images_per_second: float, step: int, status: str = "running") -> JobSnapshot:
    return JobSnapshot(status, 0, "cpu", step, 469, step / 469, 1.0, images_per_second, 0.0, 0.0, (), (), (), "")


def test_images_per_second_reads_measuring_until_it_is_measured() -> None:
    assert snapshot_with_speed(0.0, 0).speed == "measuring…"  # before the first report: a placeholder, not a speed
    assert snapshot_with_speed(0.0, 3).speed == "measuring…"  # batches done, none timed yet
    assert snapshot_with_speed(float("nan"), 3).speed == "measuring…"
    assert snapshot_with_speed(float("inf"), 3).speed == "measuring…"
    assert snapshot_with_speed(12_345.6, 40).speed == "12,346"
    # A run that ended before a report timed it: no speed, and none to come ("measuring…" stayed).
    assert snapshot_with_speed(0.0, 2, status="stopped").speed == "—"
    assert snapshot_with_speed(12_345.6, 40, status="done").speed == "12,346"


@pytest.mark.parametrize("seconds, shown", [(3.44, "3.4 s"), (59.9, "59.9 s"), (59.96, "1 min 00 s"),
                                             (1_462.3, "24 min 22 s"), (48_213, "13 h 24 min")])
def test_a_finished_runs_training_time_reads_as_its_eta_did(seconds: float, shown: str) -> None:
    """"Finished in 1462.3 s of training" followed an ETA that had read "24 min 22 s"."""
    assert training_time_text(seconds) == shown


def test_the_time_left_reads_in_minutes_and_hours_not_thousands_of_seconds() -> None:
    """The ETA read "ETA 1,026 s" for 17 minutes of a 10-epoch run on a CPU, and tens of thousands of seconds for a
    long one: a number to divide by 60 in one's head."""
    def eta(seconds: float, step: int = 40, status: str = "running") -> str:
        return replace(snapshot_with_speed(1_000.0, step, status), eta=seconds).time_left

    assert eta(42.4) == "42 s"
    assert eta(59.6) == "1 min 00 s"
    assert eta(1_026) == "17 min 06 s"
    assert eta(48_213) == "13 h 24 min"
    assert eta(3_599.7) == "1 h 00 min"
    assert eta(0.0) == "0 s"
    assert eta(float("inf")) == eta(float("nan")) == "—"
    assert eta(1_026, step=0) == "—"  # nothing to estimate from yet
    assert eta(1_026, status="stopped") == "—"  # no time left in a run that ended


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


def wait_for_first_batches(job: TrainingJob, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while job.snapshot().step == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert job.snapshot().step > 0, job.snapshot()


def test_training_runs_in_a_worker_process_not_in_the_app(tiny_mnist, monkeypatch) -> None:
    """The app's process never trains: a `fit` broken here does not matter, the worker has its own."""
    def broken_fit(*args, **kwargs):
        raise AssertionError("fit ran in the app's process")

    monkeypatch.setattr(runner, "fit", broken_fit)
    job = TrainingJob(TrainConfig(model="seed-net", epochs=1, batch_size=64, device="cpu"), tiny_mnist).start()
    assert job.join(60)
    assert job.snapshot().status == DONE and job.result.history, job.snapshot().message


def test_a_job_that_must_start_its_own_process_says_why(tiny_mnist) -> None:
    """A second tab's run waited 20–26 s at "Starting the training process…" without a reason: the process kept
    ready was the first tab's, and a new one loads PyTorch while that run takes the cores."""
    runner.prepare_worker(wait_s=60)
    first = TrainingJob(TrainConfig(model="seed-net", epochs=50, batch_size=32, device="cpu"), tiny_mnist).start()
    wait_for_first_batches(first)
    second = TrainingJob(TrainConfig(model="seed-net", epochs=1, batch_size=64, device="cpu"), tiny_mnist).start()
    deadline = time.monotonic() + 10
    while second.snapshot().status == QUEUED and time.monotonic() < deadline:
        time.sleep(0.01)
    starting = second.snapshot()
    first.stop()
    assert first.join(60) and second.join(60)
    assert starting.total_steps == 0, "a fresh process takes seconds to load PyTorch"
    assert starting.fresh_process and starting.others_training == 1
    assert not first.snapshot().fresh_process and first.snapshot().others_training == 0  # it had the ready one


def test_a_killed_worker_ends_the_job_with_a_clear_message_instead_of_hanging(tiny_mnist) -> None:
    job = TrainingJob(TrainConfig(model="seed-net", epochs=500, batch_size=32, device="cpu"), tiny_mnist).start()
    wait_for_first_batches(job)
    job._worker.process.kill()  # as the OOM killer would
    assert job.join(30)
    snapshot = job.snapshot()
    assert snapshot.status == CRASHED and "ended unexpectedly" in snapshot.message and snapshot.finished
    assert job.result is None


def test_a_job_whose_browser_tab_is_gone_stops_itself_and_keeps_its_model(tiny_mnist, monkeypatch) -> None:
    monkeypatch.setattr(runner, "ORPHAN_GRACE_S", 0.5)
    tab_open = threading.Event()
    tab_open.set()
    job = TrainingJob(TrainConfig(model="seed-net", epochs=500, batch_size=32, device="cpu"), tiny_mnist,
                      still_wanted=tab_open.is_set).start()
    wait_for_first_batches(job)
    time.sleep(1.5)  # a connected tab: nothing happens
    assert not job.snapshot().finished and not job.stop_requested
    tab_open.clear()  # the tab is closed
    assert job.join(30)
    assert job.snapshot().status == STOPPED and has_usable_weights(job.result)
    # the tab reopened later (from the history) says why a run nobody stopped stopped
    assert re.fullmatch(r"No browser tab showed this session for 0.5 s \(its tab was closed\), so the run stopped "
                        r"itself\. Stopped after [\d,]+ of [\d,]+ batches .*; the model trained so far is kept\.",
                        job.snapshot().message), job.snapshot().message


def test_a_queued_job_whose_browser_tab_is_gone_leaves_the_line(tiny_mnist, monkeypatch) -> None:
    """It kept its place while its tab was gone, then held the device for ORPHAN_GRACE_S more while the runs of the
    sessions still open waited behind it."""
    monkeypatch.setattr(runner, "QUEUED_DEVICE_TYPES", ("cpu",))
    monkeypatch.setattr(runner, "ORPHAN_GRACE_S", 0.5)
    queue = DeviceQueue()
    assert queue.wait_turn("cpu", "another session's run", threading.Event())  # it holds the device throughout
    job = TrainingJob(TrainConfig(model="seed-net", epochs=1, batch_size=64, device="cpu"), tiny_mnist, queue=queue,
                      still_wanted=lambda: False).start()
    assert job.join(15)
    assert job.snapshot().status == CANCELLED and job.result is None
    assert job.snapshot().message.startswith("No browser tab showed this session for 0.5 s (its tab was closed), so the "
                                             "run stopped itself. Stopped while waiting"), job.snapshot().message
    assert queue.position("cpu", job.id) == 0 and job._worker is None  # out of the line, no process taken
    queue.release("cpu", "another session's run")


def process_state(pid: int) -> str | None:
    """The kernel's state letter for `pid` ("Z": a zombie, ended but never reaped), None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


def test_a_training_process_that_ended_is_reaped_not_left_a_zombie(tiny_mnist, monkeypatch) -> None:
    """A finished run's process stayed in the server's process table as <defunct>."""
    job = TrainingJob(TrainConfig(model="seed-net", epochs=1, batch_size=64, device="cpu"), tiny_mnist).start()
    assert job.join(60)
    assert process_state(job._worker.process.pid) is None and job._worker.process.exitcode == 0

    monkeypatch.setattr(runner._Worker, "EXIT_WAIT_S", 0.5)
    hung = runner._Worker()  # one that does not end when told to: killed, and reaped too
    assert hung.wait_ready(60)
    os.kill(hung.process.pid, signal.SIGSTOP)
    hung.close()
    assert process_state(hung.process.pid) is None and hung.process.exitcode == -signal.SIGKILL


def test_a_worker_does_not_run_the_page_script_streamlit_made_main(tmp_path, monkeypatch) -> None:
    """Streamlit installs each page as `__main__` (with the page's `__file__`), and spawn re-ran that script in every
    worker before it could train: a second of Streamlit imports and "missing ScriptRunContext" warnings."""
    import sys
    import types

    marker = tmp_path / "page ran in the worker"
    page = tmp_path / "page.py"
    page.write_text(f"open({str(marker)!r}, 'w').close()\n")
    page_module = types.ModuleType("__main__")
    page_module.__file__ = str(page)
    monkeypatch.setitem(sys.modules, "__main__", page_module)
    worker = runner._Worker()
    try:
        assert worker.wait_ready(60)
    finally:
        worker.close()
    assert not marker.exists()
    assert sys.modules["__main__"] is page_module  # the page's own main module is back


def test_cpu_jobs_running_together_share_the_cores() -> None:
    pool = runner._WorkerPool()
    cores = os.cpu_count() or 1
    assert pool.cpu_job_started() == cores  # alone: every core
    assert pool.cpu_job_started() == max(1, cores // 2)  # a second one at the same time: half
    pool.cpu_job_ended()
    pool.cpu_job_ended()
    assert pool.cpu_job_started() == cores


def test_a_worker_process_that_cannot_start_ends_the_job_as_crashed_and_frees_its_turn(tiny_mnist, monkeypatch) -> None:
    """Starting the process failed (no memory, too many open files): the job stayed "queued" for ever, its CPU share
    stayed taken, and on an accelerator every later job waited behind it."""
    pool = runner._WorkerPool()
    monkeypatch.setattr(runner, "WORKERS", pool)

    def cannot_start() -> runner._Worker:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(pool, "take", cannot_start)
    monkeypatch.setattr(pool, "prepare", lambda wait_s=0.0: False)
    queue = DeviceQueue()
    monkeypatch.setattr(runner, "QUEUED_DEVICE_TYPES", ("cpu",))  # so that it takes a turn, as on a GPU
    job = TrainingJob(TrainConfig(model="seed-net", epochs=0.25, batch_size=64, device="cpu"), tiny_mnist,
                      queue=queue).start()
    assert job.join(10)
    assert job.snapshot().status == CRASHED and "Too many open files" in job.snapshot().message
    assert pool.cpu_jobs() == 0 and queue.position("cpu", job.id) == 0
    assert queue.wait_turn("cpu", "next", threading.Event())  # the next job is not left waiting


def test_glibc_keeps_freed_memory_for_the_next_training_step() -> None:
    import platform

    from mnist_core.device import keep_freed_memory

    assert keep_freed_memory() == (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc")


class ScriptedWorker:
    """A worker that sends `messages` (as `_follow` reads them); `look` in between records the job's snapshot."""

    def __init__(self, job: TrainingJob, messages: list) -> None:
        self.job, self.messages, self.looks = job, list(messages), []
        self.connection, self.process = self, None

    def poll(self, timeout: float) -> bool:
        return True

    def recv(self):
        message = self.messages.pop(0)
        while message == "look":
            self.looks.append(self.job.snapshot())
            message = self.messages.pop(0)
        return message


def test_the_test_pass_at_an_epoch_end_is_said_while_it_runs(tiny_mnist) -> None:
    """The test pass after each epoch takes a minute for a big model on a CPU (s5-net: 54 s on 2 busy cores): the
    progress stood still without a word, and a Stop meanwhile read "Stopping after the current batch…"."""
    job = TrainingJob(TrainConfig(model="seed-net", epochs=2, batch_size=64), tiny_mnist)
    schedule = job.config.schedule()
    per_epoch = schedule.steps_per_epoch

    def batches(step: int) -> tuple:
        return ("batches", [BatchReport(step, schedule.total_steps, step / per_epoch, 1.0, 0.01, 100.0, 1.0, 1.0)])

    record = EvalRecord(1.0, 1.0, 50.0, 1.0, 50.0, 0.01, 1.0, 1.0)
    worker = ScriptedWorker(job, [("start", "cpu", schedule), batches(per_epoch - 1), "look", batches(per_epoch),
                                  "look", ("evaluation", record), "look", ("end", runner._Outcome(DONE))])
    job._follow(worker)
    assert [look.testing for look in worker.looks] == [False, True, False]

    # the worker sends an epoch's last batch at once, however recently it sent the one before
    sent = []
    reporter = runner._PipeReporter(type("Pipe", (), {"send": lambda self, message: sent.append(message)})(),
                                    threading.Event())
    reporter.on_train_start(TrainStart(job.config, torch.device("cpu"), 0, schedule.total_steps, per_epoch,
                                       schedule.epochs))
    reporter.on_batch_end(batches(per_epoch - 1)[1][0])
    reporter.on_batch_end(batches(per_epoch)[1][0])
    assert sent[-1] == ("batches", [batches(per_epoch)[1][0]])



def test_a_test_pass_between_epoch_ends_is_said_too(tiny_mnist) -> None:
    """With `eval_every` 0.5 a test pass follows mid-epoch batches as well: the job knows them as `fit` counts them
    (it once assumed a pass at each epoch's end only)."""
    job = TrainingJob(TrainConfig(model="seed-net", epochs=1, batch_size=64, eval_every=0.5), tiny_mnist)
    schedule = job.config.schedule()
    half = round(0.5 * schedule.steps_per_epoch)

    def batches(step: int) -> tuple:
        return ("batches", [BatchReport(step, schedule.total_steps, step / schedule.steps_per_epoch, 1.0, 0.01, 100.0,
                                        1.0, 1.0)])

    record = EvalRecord(0.5, 1.0, 50.0, 1.0, 50.0, 0.01, 1.0, 1.0)
    worker = ScriptedWorker(job, [("start", "cpu", schedule), batches(half - 1), "look", batches(half), "look",
                                  ("evaluation", record), "look", ("end", runner._Outcome(DONE))])
    job._follow(worker)
    assert [look.testing for look in worker.looks] == [False, True, False]

def test_a_job_trains_the_same_weights_as_fit_with_the_same_settings_and_seed(tiny_mnist) -> None:
    """The app's worker process and the CLI's `fit` on the main thread train the same model, bit for bit, from the same
    settings and seed: the live reporting the page adds (a shorter loss-report interval) draws no random numbers, and
    the worker has the same threads and memory layout as the CLI. With augmentation and scribbles, which draw most."""
    config = TrainConfig(model="fast", epochs=0.5, batch_size=64, optimizer="adam", lr=0.01, scheduler="onecycle",
                         augment=True, rotation=10.0, scribbles=0.25, seed=3, device="cpu")
    job = TrainingJob(with_live_reporting(config), tiny_mnist).start()
    assert job.join(120) and job.snapshot().status == DONE
    direct = fit(config, tiny_mnist)
    in_job, on_main = job.result.model.state_dict(), direct.model.state_dict()
    assert in_job.keys() == on_main.keys()
    assert all(torch.equal(in_job[name].cpu(), on_main[name].cpu()) for name in in_job)
    assert [record.test_accuracy for record in job.result.history] == [record.test_accuracy for record in direct.history]


def test_a_diverged_jobs_history_is_that_of_the_weights_it_kept(tiny_mnist, monkeypatch) -> None:
    """A loss that ran high after epoch 1 was tested at epochs 2 and 3 before the run diverged, and the weights of
    epoch 1 were kept; the page's "Test accuracy" and curves went on showing epoch 3's chance-level evaluation beside a
    run history (and a model made active) that read epoch 1's."""
    from multiprocessing import Pipe
    from types import SimpleNamespace

    from mnist_core import train as train_module
    from mnist_core.errors import TrainingDiverged
    from tests.test_train import _last_layer_always_answers_zero

    built: list[torch.nn.Module] = []
    real_build = train_module.build_model
    monkeypatch.setattr(train_module, "build_model", lambda *a, **k: built.append(real_build(*a, **k)) or built[-1])

    class Sabotage(Callback):
        def on_batch_end(self, report: BatchReport) -> None:
            if report.step == 10:
                _last_layer_always_answers_zero(built[0])

    # As in its worker process (see test_train's runaway test), but here: the job reads what a worker would send.
    config = TrainConfig(model="nf-cnn", model_kwargs={"nf": 8}, epochs=4, batch_size=64, lr=1e-7, device="cpu",
                         log_every=1)
    job = TrainingJob(config, tiny_mnist)
    ours, theirs = Pipe()

    def worker() -> None:
        try:
            fit(config, tiny_mnist, [Sabotage(), runner._PipeReporter(theirs, threading.Event())])
        except TrainingDiverged as error:
            theirs.send(("end", runner._outcome_of(error.result, DIVERGED, str(error))))

    training = threading.Thread(target=worker, daemon=True)
    training.start()
    job._conclude(job._follow(SimpleNamespace(connection=ours)))
    training.join(30)
    snapshot = job.snapshot()
    assert snapshot.status == DIVERGED and "the weights from epoch 1 were kept" in snapshot.message
    assert [record.epoch for record in snapshot.history] == [record.epoch for record in job.result.history] == [1.0]
    assert snapshot.history[-1].test_accuracy == job.result.test_accuracy


def test_a_jobs_result_has_the_same_metrics_as_fits(tiny_mnist) -> None:
    """What the worker sends back rebuilds the whole `TrainResult`: a run trained in the app lost its confidence floor
    (so the Sketch page fell back on the default one) and its compile time."""
    config = TrainConfig(model="seed-net", epochs=0.25, batch_size=64, device="cpu")
    direct = fit(config, tiny_mnist)
    direct.compile_seconds = 1.5  # (compiling for real takes half a minute)
    job = TrainingJob(config, tiny_mnist)
    job._conclude(runner._outcome_of(direct, DONE))
    in_job, on_main = job.result.metrics(), direct.metrics()
    assert math.isfinite(in_job["confidence_floor"]) and in_job == on_main
