"""The one training loop, on the synthetic `tiny_mnist` (512 train / 256 test images whose label is a bar's position)."""

from __future__ import annotations

import itertools
import math
import threading
import time
from dataclasses import replace

import pytest
import torch

import mnist_core.train as train_module
from mnist_core.config import OPTIMIZERS, PRESETS, SCHEDULERS, TrainConfig, preset_config
from mnist_core.data import Mnist, random_scribbles
from mnist_core.errors import ConfigError, TrainingDiverged
from mnist_core.evaluate import predict_logits, quick_accuracy
from mnist_core.train import (BatchReport, Callback, DivergenceWatch, EvalRecord, TrainResult, TrainStart, fit,
                              make_optimizer, make_scheduler)

# Small and quick: 8 batches per epoch of the 512 synthetic training images.
QUICK = TrainConfig(model="seed-net", epochs=1, batch_size=64, lr=0.003, optimizer="adam", device="cpu", log_every=1)


class Recorder(Callback):
    """Remembers every call, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def on_train_start(self, start: TrainStart) -> None:
        self.calls.append(("start", start))

    def on_batch_end(self, report: BatchReport) -> None:
        self.calls.append(("batch", report))

    def on_evaluation(self, record: EvalRecord) -> None:
        self.calls.append(("epoch", record))

    def on_train_end(self, result: TrainResult) -> None:
        self.calls.append(("end", result))

    def of(self, kind: str) -> list:
        return [value for name, value in self.calls if name == kind]


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


@pytest.fixture()
def built_models(monkeypatch: pytest.MonkeyPatch) -> list[torch.nn.Module]:
    """Every model `fit` builds, in order: a callback can reach into the one being trained."""
    built: list[torch.nn.Module] = []
    real_build = train_module.build_model
    monkeypatch.setattr(train_module, "build_model", lambda *a, **k: built.append(real_build(*a, **k)) or built[-1])
    return built


def test_fit_learns_the_synthetic_digits(tiny_mnist: Mnist) -> None:
    result = fit(replace(QUICK, epochs=2, lr=0.01, log_every=20), tiny_mnist)
    assert result.test_accuracy > 50  # chance is 10 %
    assert [record.epoch for record in result.history] == [1.0, 2.0]
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert result.device == "cpu" and not result.stopped
    assert not result.model.training
    assert result.train_seconds > 0 and result.eval_seconds > 0


def test_callbacks_are_called_in_order_with_consistent_numbers(tiny_mnist: Mnist) -> None:
    recorder = Recorder()
    result = fit(replace(QUICK, epochs=2, log_every=3, train_subset=256), tiny_mnist, [recorder])
    kinds = [name for name, _ in recorder.calls]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("start") == kinds.count("end") == 1
    start = recorder.of("start")[0]
    assert (start.total_steps, start.steps_per_epoch) == (8, 4)
    steps = [report.step for report in recorder.of("batch")]
    assert steps == [3, 4, 6, 8]  # every 3 batches, plus each evaluation point (end of epochs 1 and 2)
    assert all(math.isfinite(report.loss) and report.images_per_second > 0 for report in recorder.of("batch"))
    assert recorder.of("epoch") == result.history and len(result.history) == 2
    assert recorder.of("end")[0] is result


def test_images_per_second_counts_the_images_trained_not_whole_batches(tiny_mnist: Mnist) -> None:
    """An epoch's last batch is smaller when the batch size does not divide the images: the page's first 5,000 at
    batch 2,048 train 2,048 + 2,048 + 904 a pass, and images/s counted 3 × 2,048 (23 % too fast)."""
    recorder = Recorder()
    fit(replace(QUICK, batch_size=128, train_subset=320, epochs=2, log_every=1), tiny_mnist, [recorder])
    trained = [report.images_per_second * report.elapsed for report in recorder.of("batch")]
    assert trained == pytest.approx([128, 256, 320, 448, 576, 640])


def test_the_eta_counts_the_test_passes_still_to_come(tiny_mnist: Mnist, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ETA counted the batches only: in a quick run on the first 1,000 images the test passes on the 10,000 test
    images take longer than the training (seed-net at batch 16, 4 epochs: 2.1 s of batches, 3.5 s of tests), and the
    page read "ETA 2 s" with 6 s to go. After the first test pass, each one still to come adds its length."""
    test_pass_s = 0.3
    real_quick_accuracy = train_module.quick_accuracy

    def slow_quick_accuracy(*args, **kwargs):
        time.sleep(test_pass_s)
        return real_quick_accuracy(*args, **kwargs)

    monkeypatch.setattr(train_module, "quick_accuracy", slow_quick_accuracy)
    recorder = Recorder()
    fit(replace(QUICK, epochs=3, train_subset=256), tiny_mnist, [recorder])  # 4 batches an epoch, a test after each
    # what each ETA adds to the batches left at the speed so far (those take what the shared cores allow)
    tests_part = {report.step: report.eta - (report.total_steps - report.step) * report.elapsed / report.step
                  for report in recorder.of("batch")}
    assert tests_part[1] == pytest.approx(0), "before the first test pass, nothing tells how long one takes"
    # after it, batch 5 has the tests after epochs 2 and 3 to come, batch 9 the last one
    assert tests_part[5] >= 2 * test_pass_s and tests_part[9] >= test_pass_s, tests_part
    assert tests_part[5] > tests_part[9], tests_part


def test_fractional_evaluation_points(tiny_mnist: Mnist) -> None:
    result = fit(replace(QUICK, eval_every=0.5), tiny_mnist)
    assert [record.epoch for record in result.history] == [0.5, 1.0]


def test_an_evaluation_interval_far_beyond_the_run_evaluates_once_at_the_end(tiny_mnist: Mnist) -> None:
    """`--eval-every 1e308` passes validation (finite, positive) but made the evaluation points an infinite round():
    an internal error. Any interval longer than the run means: evaluate at the end only."""
    for eval_every in (3.0, 1e20, 1e308):
        result = fit(replace(QUICK, eval_every=eval_every), tiny_mnist)
        assert [record.epoch for record in result.history] == [1.0], eval_every


def test_stop_event_returns_the_model_trained_so_far(tiny_mnist: Mnist) -> None:
    stop = threading.Event()

    class StopAfterTwoBatches(Callback):
        def on_batch_end(self, report: BatchReport) -> None:
            if report.step == 2:
                stop.set()

    result = fit(replace(QUICK, epochs=3), tiny_mnist, [StopAfterTwoBatches()], stop)
    assert result.stopped
    assert result.epochs_done == pytest.approx(2 / 8)  # stopped between batches 2 and 3 of 24
    assert len(result.history) == 1 and math.isfinite(result.test_accuracy)  # the books are closed with an evaluation
    assert result.metrics()["batches_done"] == 2  # saved with the checkpoint: "0.25 epochs (2 batches)"
    assert result.model(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


def test_a_stop_requested_before_the_start_trains_nothing_but_still_returns(tiny_mnist: Mnist) -> None:
    stop = threading.Event()
    stop.set()
    result = fit(QUICK, tiny_mnist, [], stop)
    assert result.stopped and result.history == []


def test_huge_learning_rate_diverges_with_a_clear_error_keeping_finite_weights(tiny_mnist: Mnist) -> None:
    config = replace(QUICK, model="nf-cnn", model_kwargs={"nf": 8}, optimizer="sgd", lr=100.0, eval_every=0.25)
    with pytest.raises(TrainingDiverged) as diverged:
        fit(config, tiny_mnist)
    message = str(diverged.value)
    assert "training diverged" in message and "lower the learning rate (it was 100)" in message
    result = diverged.value.result
    assert isinstance(result, TrainResult)
    assert all(torch.isfinite(value).all() for value in result.model.state_dict().values())


def test_a_diverging_one_cycle_run_is_not_told_to_pick_a_scheduler_with_warm_up(tiny_mnist: Mnist) -> None:
    config = replace(QUICK, model="nf-cnn", model_kwargs={"nf": 8}, scheduler="onecycle", lr=100.0)
    with pytest.raises(TrainingDiverged) as diverged:
        fit(config, tiny_mnist)
    assert "lower the learning rate (its peak was 100); " in str(diverged.value)
    assert "warm-up" not in str(diverged.value)  # one-cycle warms up already


def test_divergence_restores_the_weights_of_the_last_evaluation(tiny_mnist: Mnist,
                                                                built_models: list[torch.nn.Module]) -> None:
    """Poison the weights two batches after the first evaluation: the loss turns NaN, the epoch-1 weights come back."""
    at_epoch_end: dict[str, torch.Tensor] = {}

    class Poison(Callback):
        def on_evaluation(self, record: EvalRecord) -> None:
            at_epoch_end.update(_state(built_models[0]))

        def on_batch_end(self, report: BatchReport) -> None:
            if report.step == 10:
                with torch.no_grad():
                    next(built_models[0].parameters()).fill_(float("nan"))

    with pytest.raises(TrainingDiverged, match="at batch 11 of 16.*the weights from epoch 1 were kept") as diverged:
        fit(replace(QUICK, epochs=2), tiny_mnist, [Poison()])
    result = diverged.value.result
    assert [record.epoch for record in result.history] == [1.0]
    assert (result.steps, result.metrics()["batches_done"]) == (11, 8)  # the weights kept are those after batch 8
    kept = result.model.state_dict()
    for key, value in at_epoch_end.items():
        assert torch.equal(kept[key], value), key


def test_divergence_watch_tells_an_explosion_and_a_runaway_from_a_bumpy_fall() -> None:
    assert DivergenceWatch(0.3).reference == pytest.approx(math.log(10))  # never below an untrained model's loss
    assert DivergenceWatch(float("nan")).reference == pytest.approx(math.log(10))
    reference = 2.5
    assert "rose to 300, over 100× its 2.5 at the start" in DivergenceWatch(reference).check(300.0, 5)

    runaway = DivergenceWatch(reference)
    assert [runaway.check(30.0, 5) for _ in range(3)] == [None] * 3 and runaway.suspect  # 15 batches over 10×
    assert runaway.check(2.0, 5) is None and not runaway.suspect  # a fall resets the count
    assert [runaway.check(30.0, 5) for _ in range(3)] == [None] * 3
    assert "stayed over 10× its 2.5 at the start for 20 batches, at 30" in runaway.check(30.0, 5)

    bumpy = DivergenceWatch(reference)  # a warm-up spike to 9×, then the usual fall: never divergence
    losses = [2.5, 8.0, 22.0, 20.0, 12.0, 4.0, 2.0] + [1.0 / (1 + i) for i in range(100)]
    assert all(bumpy.check(loss, 20) is None for loss in losses)


def _last_layer_always_answers_zero(model: torch.nn.Module) -> None:
    """A finite disaster: logits 60 for the digit 0, 0 for the rest, whatever the image (loss ≈ 54, 23× ln 10)."""
    with torch.no_grad():
        model[-1].weight.zero_()
        model[-1].bias.copy_(torch.tensor([60.0] + [0.0] * 9))


def test_a_finite_explosion_diverges_and_keeps_the_last_good_weights(tiny_mnist: Mnist) -> None:
    config = replace(QUICK, model="fast", optimizer="sgd", lr=50.0, eval_every=0.25)
    with pytest.raises(TrainingDiverged, match=r"the train loss rose to .*, over 100× its .* at the start") as diverged:
        fit(config, tiny_mnist)
    assert "lower the learning rate (it was 50)" in str(diverged.value)
    result = diverged.value.result
    assert all(torch.isfinite(value).all() for value in result.model.state_dict().values())


def test_a_runaway_loss_diverges_and_keeps_the_weights_from_before_it(tiny_mnist: Mnist,
                                                                      built_models: list[torch.nn.Module]) -> None:
    """The loss jumps to ~23× its start after the first evaluation and stays there (a tiny learning rate cannot
    move it): divergence after 20 such batches; the evaluations made meanwhile (epochs 2 and 3) are not "good"."""
    at_epoch_end: list[dict[str, torch.Tensor]] = []

    class Sabotage(Callback):
        def on_evaluation(self, record: EvalRecord) -> None:
            at_epoch_end.append(_state(built_models[0]))

        def on_batch_end(self, report: BatchReport) -> None:
            if report.step == 10:
                _last_layer_always_answers_zero(built_models[0])

    config = replace(QUICK, model="nf-cnn", model_kwargs={"nf": 8}, epochs=4, lr=1e-7)
    with pytest.raises(TrainingDiverged, match=r"at batch 30 of 32 \(the train loss stayed over 10× .* for 20 "
                                               r"batches.*the weights from epoch 1 were kept") as diverged:
        fit(config, tiny_mnist, [Sabotage()])
    result = diverged.value.result
    assert len(at_epoch_end) == 3  # evaluated at epochs 1, 2 and 3 ...
    assert [record.epoch for record in result.history] == [1.0]  # ... but only epoch 1's weights were good
    for key, value in at_epoch_end[0].items():
        assert torch.equal(result.model.state_dict()[key], value), key
    # The confidence floor is that of the weights kept too, not epoch 3's (a model that answers 0 is sure of it).
    assert result.confidence_floor == quick_accuracy(result.model, tiny_mnist.test)[2]


@pytest.mark.parametrize("preset", list(PRESETS))
def test_no_preset_is_taken_for_a_diverging_run(tiny_mnist: Mnist, preset: str) -> None:
    """Label smoothing, heavy augmentation, scribbles and a compressed one-cycle warm-up (2 epochs: the peak learning
    rate within a few batches) all learn without tripping the divergence watch."""
    config = preset_config(preset, epochs=2, batch_size=32, device="cpu", log_every=1, scribbles=0.25,
                           precision="fp32")
    result = fit(config, tiny_mnist)  # TrainingDiverged would fail the test
    assert result.test_accuracy > 20


def test_a_finished_run_at_chance_level_is_flagged_but_a_stopped_one_is_not(tiny_mnist: Mnist) -> None:
    lazy = replace(QUICK, optimizer="sgd", lr=1e-5, epochs=0.25, batch_size=32)  # 4 batches that move nothing
    result = fit(lazy, tiny_mnist)
    assert result.test_accuracy <= 20 and not result.stopped
    assert result.warning == (f"the model did not learn: {result.test_accuracy:.2f} % test accuracy is chance level "
                              "(at most 20 %; guessing scores 10 %): try another learning rate (it was 1e-05) or more "
                              "epochs")
    assert replace(result, stopped=True).warning is None  # stopping early is the user's call, not a failure
    assert fit(replace(QUICK, epochs=2, lr=0.01), tiny_mnist).warning is None  # learns: > 50 %


def test_same_seed_same_model_other_seed_other_model(tiny_mnist: Mnist) -> None:
    config = replace(QUICK, epochs=0.5)
    first, again, other = (fit(replace(config, seed=seed), tiny_mnist) for seed in (7, 7, 8))
    for key, value in first.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[key]), key
    assert first.batch_losses == again.batch_losses
    assert any(not torch.equal(value, other.model.state_dict()[key])
               for key, value in first.model.state_dict().items())


@pytest.mark.parametrize("optimizer, scheduler", list(itertools.product(OPTIMIZERS, SCHEDULERS)))
def test_every_optimizer_and_scheduler_trains_a_few_batches(tiny_mnist: Mnist, optimizer: str, scheduler: str) -> None:
    lr = 1.0 if optimizer == "adadelta" else 0.01
    config = replace(QUICK, optimizer=optimizer, scheduler=scheduler, lr=lr, step_size=1, weight_decay=1e-4,
                     train_subset=128)  # 2 batches of 64
    result = fit(config, tiny_mnist)
    assert len(result.batch_losses) == 2 and all(math.isfinite(loss) for _, loss in result.batch_losses)
    final_lr = result.history[-1].lr
    if scheduler == "none":
        assert final_lr == pytest.approx(lr)
    else:
        assert 0 <= final_lr < lr  # cosine, one-cycle and step (2 batches = 1 epoch of the subset) all decay by now


@pytest.mark.parametrize("pct_start, batches", [(0.25, 4), (0.05, 20), (0.5, 2), (0.1, 10), (0.2, 5)])
def test_a_one_cycle_warm_up_of_exactly_one_batch_trains(tiny_mnist: Mnist, pct_start: float, batches: int) -> None:
    """OneCycleLR divided by the warm-up's length, pct_start × batches − 1: 0 for a warm-up of one batch (the page's
    warm-up 0.25 on the first 1,000 images at batch 256, 1 epoch: 4 batches), a ZeroDivisionError that the app showed
    as "Training crashed — this is a bug"."""
    config = replace(QUICK, scheduler="onecycle", pct_start=pct_start, lr=0.01, batch_size=16,
                     train_subset=16 * batches)
    result = fit(config, tiny_mnist)
    assert result.steps == batches and all(math.isfinite(loss) for _, loss in result.batch_losses)
    scheduler = make_scheduler(config, make_optimizer(config, [torch.nn.Parameter(torch.zeros(1))],
                                                      torch.device("cpu")), batches, batches)
    lrs = [scheduler.get_last_lr()[0]]
    for _ in range(batches - 1):
        scheduler.optimizer.step()
        scheduler.step()
        lrs.append(scheduler.get_last_lr()[0])
    # the schedule of a warm-up a hair longer (as torch makes it): from lr / 25, up, then down to lr / 25 / 10⁴
    assert lrs[0] == pytest.approx(0.01 / 25) and lrs[-1] == pytest.approx(0.01 / 25 / 1e4)
    assert batches == 2 or (max(lrs) == lrs[1] > 0.007 and lrs[1:] == sorted(lrs[1:], reverse=True))


def test_sgd_nesterov_and_adam_betas_reach_the_optimizer() -> None:
    parameters = [torch.nn.Parameter(torch.zeros(1))]
    sgd = make_optimizer(replace(QUICK, optimizer="sgd", momentum=0.8, nesterov=True), parameters, torch.device("cpu"))
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["nesterov"] and sgd.defaults["momentum"] == 0.8
    adam = make_optimizer(replace(QUICK, optimizer="adamw", momentum=0.7, beta2=0.9, weight_decay=0.05), parameters,
                          torch.device("cpu"))
    assert isinstance(adam, torch.optim.AdamW) and adam.defaults["betas"] == (0.7, 0.9)


def test_nesterov_with_one_cycle_trains_whatever_the_greyed_momentum_reads(tiny_mnist: Mnist) -> None:
    """One-cycle sets the momentum itself (0.95 → 0.85 → 0.95) and the page greys the Momentum slider out; with it at
    0, Nesterov was refused ("needs momentum > 0") by a slider that could not be moved."""
    config = replace(QUICK, optimizer="sgd", scheduler="onecycle", nesterov=True, momentum=0.0, lr=0.01,
                     train_subset=128)
    assert fit(config, tiny_mnist).steps == 2
    optimizer = make_optimizer(config, [torch.nn.Parameter(torch.zeros(1))], torch.device("cpu"))
    assert optimizer.defaults["nesterov"] and optimizer.defaults["momentum"] == 0.95
    with pytest.raises(ConfigError, match="Nesterov momentum needs the sgd optimizer with momentum > 0: choose sgd with momentum, or turn Nesterov off"):
        replace(config, scheduler="cosine").validate()  # there the slider is live, and 0 is no momentum at all


def test_result_metrics_summarise_the_run(tiny_mnist: Mnist) -> None:
    result = fit(replace(QUICK, epochs=0.25), tiny_mnist)
    metrics = result.metrics()
    assert metrics["test_accuracy"] == result.history[-1].test_accuracy
    assert set(metrics) >= {"test_accuracy", "test_loss", "train_seconds", "epochs_done", "stopped", "device",
                            "confidence_floor"}
    assert 0 <= metrics["confidence_floor"] <= 1 and metrics["confidence_floor"] == result.confidence_floor


def test_scribbles_train_the_model_to_be_unsure_about_them(tiny_mnist: Mnist) -> None:
    config = replace(QUICK, epochs=3, lr=0.01, augment=True, rotation=10.0)
    plain, exposed = fit(config, tiny_mnist), fit(replace(config, scribbles=0.5), tiny_mnist)
    assert exposed.test_accuracy > 50 and all(math.isfinite(r.train_loss) for r in exposed.history)
    scribbles = (random_scribbles(200, torch.device("cpu"), torch.Generator().manual_seed(9)) * 255).to(torch.uint8)

    def confidence_on_scribbles(result: TrainResult) -> float:  # scribbles neither model saw (another seed)
        return float(predict_logits(result.model, scribbles[:, 0]).softmax(1).amax(1).mean())

    # Closer to equal probabilities (0.1) than the same training without scribbles, and surer of the digits.
    assert confidence_on_scribbles(exposed) < min(0.16, confidence_on_scribbles(plain) - 0.03)
    assert exposed.confidence_floor > 0.5  # the real-data check is in tests/e2e/test_e2e_strokes_offline.py


def test_mixed_scribbles_and_shear_reach_training(tiny_mnist: Mnist) -> None:
    config = replace(QUICK, epochs=3, lr=0.01, augment=True, rotation=10.0, shear=15.0, scribbles=0.5,
                     scribble_shapes="mixed")
    exposed = fit(config, tiny_mnist)
    assert exposed.test_accuracy > 50 and all(math.isfinite(r.train_loss) for r in exposed.history)
    unseen = random_scribbles(200, torch.device("cpu"), torch.Generator().manual_seed(9), "mixed")
    confidence = predict_logits(exposed.model, (unseen * 255).to(torch.uint8)[:, 0]).softmax(1).amax(1).mean()
    assert confidence < 0.16  # near equal probabilities (0.1) on loops with marks and crossed strokes too


class _CompileCounter(Callback):
    """How many frames torch.compile had compiled when training started and when it ended."""

    def __init__(self) -> None:
        from torch._dynamo.utils import counters

        self.counters, self.at_start, self.at_end = counters, -1, -1

    def on_train_start(self, start: TrainStart) -> None:
        self.at_start = sum(self.counters["frames"].values())

    def on_train_end(self, result: TrainResult) -> None:
        self.at_end = sum(self.counters["frames"].values())


def test_compiled_training_matches_eager_and_compiles_before_the_clock(tiny_mnist: Mnist) -> None:
    # 512 images in batches of 100: four full batches and a last one of 12, a second shape to compile for.
    config = replace(QUICK, model="fast", batch_size=100, lr=0.01, log_every=1)
    eager = fit(config, tiny_mnist)
    counter = _CompileCounter()
    compiled = fit(replace(config, compile=True), tiny_mnist, [counter])

    assert compiled.compile_seconds > 0 and eager.compile_seconds == 0
    assert counter.at_start > 0 and counter.at_end == counter.at_start  # nothing compiled while the clock ran
    # The warm-up calls left weights, BatchNorm statistics and random streams as they were: same run, same losses
    # (up to the compiler's different order of floating-point sums).
    eager_losses = [loss for _, loss in eager.batch_losses]
    compiled_losses = [loss for _, loss in compiled.batch_losses]
    assert len(compiled_losses) == len(eager_losses) == 6
    assert compiled_losses == pytest.approx(eager_losses, rel=1e-3)
    assert compiled.test_accuracy == pytest.approx(eager.test_accuracy, abs=1.0)
    # The result holds the plain model: checkpoints keep their keys (no "_orig_mod." prefix).
    assert list(compiled.model.state_dict()) == list(eager.model.state_dict())
    assert compiled.metrics()["compile_seconds"] == compiled.compile_seconds


def test_compile_must_be_a_yes_or_no() -> None:
    with pytest.raises(ConfigError, match="compile must be true or false"):
        replace(QUICK, compile="yes").validate()


def test_a_batch_too_big_for_memory_is_refused_before_training(tiny_mnist: Mnist,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # s5-net keeps ~0.2 M activations per image: a batch of 512 needs ~0.8 GB by the estimate, not in 100 MB.
    monkeypatch.setattr(train_module, "free_memory_bytes", lambda device: 100 * 10**6)
    recorder = Recorder()
    with pytest.raises(ConfigError, match=r"a batch of 512 images needs about 0\.8 GB of memory to train s5-net, more "
                                          r"than the 0\.1 GB free on this cpu: lower the batch size \(about 64 fits\)"):
        fit(replace(QUICK, model="s5-net", batch_size=512), tiny_mnist, [recorder])
    assert recorder.calls == []  # refused before anything started
    fit(replace(QUICK, model="s5-net", batch_size=64, epochs=0.125), tiny_mnist)  # what fits trains
    monkeypatch.setattr(train_module, "free_memory_bytes", lambda device: 1000)
    with pytest.raises(ConfigError, match="even with a batch of 2: free some memory or pick a smaller model"):
        fit(replace(QUICK, model="seed-net"), tiny_mnist)
    monkeypatch.setattr(train_module, "free_memory_bytes", lambda device: None)  # unknown (MPS): not checked
    fit(replace(QUICK, epochs=0.125), tiny_mnist)


def test_free_memory_is_known_on_a_linux_cpu() -> None:
    from mnist_core.device import free_memory_bytes

    free = free_memory_bytes(torch.device("cpu"))
    assert free is not None and 10**8 < free < 10**14


def test_a_run_of_fractional_epochs_that_trains_all_its_batches_reports_them(tiny_mnist: Mnist) -> None:
    """0.8 epoch of 8 batches is 6 batches (6.4 rounded): it reported 0.75 epochs done, as if cut short."""
    recorder = Recorder()
    result = fit(replace(QUICK, epochs=0.8), tiny_mnist, [recorder])
    assert recorder.of("start")[0].epochs == 0.8
    assert result.epochs_done == 0.8 and result.steps == 6 and not result.stopped
    assert recorder.of("batch")[-1].epoch == 0.8 and [report.step for report in recorder.of("batch")][-1] == 6
