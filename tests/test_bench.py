"""The benchmark's bookkeeping on made-up curves, and its command line (the runs themselves: `.ci/run`'s quick mode)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import mnist_core.bench as bench
from mnist_core.bench import DEFAULT_RECIPES, Contender, Curve, _PytorchExampleNet, default_recipes, main, ratios
from mnist_core.config import PRESETS
from mnist_core.data import Mnist
from mnist_core.models import count_parameters


def _contender(name: str, *curves: list[tuple[float, float]]) -> Contender:
    return Contender(name, "", [Curve(points) for points in curves])


def test_time_to_target_is_the_first_evaluation_at_or_above_it() -> None:
    curve = Curve([(1.0, 97.0), (2.0, 99.0), (3.0, 98.9), (4.0, 99.5)])
    assert curve.time_to(99.0) == 2.0 and curve.time_to(99.4) == 4.0 and curve.time_to(99.9) is None
    assert curve.final_accuracy == 99.5 and curve.total_seconds == 4.0


def test_summary_and_ratio_when_every_seed_reaches_the_target() -> None:
    ours = _contender("ours", [(1.0, 99.1)], [(2.0, 99.2)], [(3.0, 99.0)]).summary([99.0])
    baseline = _contender("baseline (b)", [(4.0, 99.0)], [(6.0, 99.1)], [(8.0, 99.3)]).summary([99.0])
    assert ours["to_99.0"] == {"reached": 3, "of": 3, "min": 1.0, "median": 2.0, "max": 3.0,
                               "median_lower_bound": 2.0}
    assert ours["mean_final_accuracy"] == pytest.approx(99.1)
    assert ratios(ours, baseline, 99.0) == {"ratio": 3.0, "lower_bound": False}


def test_a_baseline_seed_that_never_reaches_the_target_makes_the_ratio_a_lower_bound() -> None:
    ours = _contender("ours", [(1.0, 99.1)], [(1.0, 99.2)], [(1.0, 99.0)]).summary([99.0])
    baseline = _contender("baseline (b)", [(5.0, 98.5)], [(4.0, 99.0)], [(6.0, 98.9)]).summary([99.0])
    assert baseline["to_99.0"]["median"] is None and baseline["to_99.0"]["reached"] == 1
    assert ratios(ours, baseline, 99.0) == {"ratio": 5.0, "lower_bound": True}  # whole runs stand in: 5, 4, 6
    slow_ours = _contender("ours", [(1.0, 98.0)]).summary([99.0])
    assert ratios(slow_ours, baseline, 99.0)["ratio"] is None


def test_ours_is_compared_with_each_baseline_and_on_cuda_with_the_gpu_times(capsys: pytest.CaptureFixture) -> None:
    targets = bench.TARGETS
    ours = _contender("ours: fast", [(1.0, 99.0), (2.0, 99.4)]).summary(targets)
    quicker = _contender("ours: GPU", [(0.5, 99.0), (3.0, 99.4)]).summary(targets)
    baseline = _contender("baseline (b)", [(3.0, 99.0), (4.0, 99.1)]).summary(targets)
    on_cpu = bench._against_targets([ours, baseline], torch.device("cpu"))
    assert on_cpu == {"ratios": {"b@99.0": {"ratio": 3.0, "lower_bound": False},
                                 "b@99.4": {"ratio": 2.0, "lower_bound": True}}}
    assert "ours: fast vs baseline (b), time to 99.0 %: 3.0× faster (target on CPU: ≥ 1.8×)" in capsys.readouterr().out
    on_cuda = bench._against_targets([ours, quicker, baseline], torch.device("cuda"))
    assert on_cuda["gpu_targets"]["99.0"] == {"limit_seconds": 0.25, "median_seconds": 0.5, "recipe": "ours: GPU"}
    assert on_cuda["gpu_targets"]["99.4"]["recipe"] == "ours: fast"
    assert bench._against_targets([baseline], torch.device("cpu")) == {"ratios": {}}  # no recipe of ours ran


def test_baseline_a_is_the_pytorch_example_network() -> None:
    assert count_parameters(_PytorchExampleNet()) == 1_199_882  # conv 32, conv 64, fc 9216→128→10


def test_baseline_b_keeps_its_notebooks_adam_betas_through_one_cycle(tiny_mnist: Mnist,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """tuomaso/train_mnist_fast's OneCycleLR has cycle_momentum=False: left at True, it cycled Adam's beta1 between
    0.95 and 0.85 instead of the recipe's 0.7."""
    made: list[tuple[torch.optim.Optimizer, dict]] = []
    one_cycle = torch.optim.lr_scheduler.OneCycleLR

    def spy(optimizer: torch.optim.Optimizer, **kwargs: object) -> torch.optim.lr_scheduler.OneCycleLR:
        made.append((optimizer, kwargs))
        return one_cycle(optimizer, **kwargs)

    monkeypatch.setattr(torch.optim.lr_scheduler, "OneCycleLR", spy)
    curve = bench.baseline_b(tiny_mnist, 0, torch.device("cpu"), 0.5)
    [(optimizer, kwargs)] = made
    assert kwargs["max_lr"] == 0.01 and kwargs["cycle_momentum"] is False
    assert optimizer.param_groups[0]["betas"] == (0.7, 0.9)  # after the whole run, not only at its start
    assert len(curve.points) == 2 and all(0 <= accuracy <= 100 for _, accuracy in curve.points)


@pytest.mark.parametrize(("device", "shuffled"), [("cpu", False), ("cuda", True)])
def test_baseline_a_sets_its_loader_as_main_py_does(device: str, shuffled: bool, tiny_mnist: Mnist,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """pytorch/examples mnist/main.py gives its train loader workers, pinned memory and shuffling only on an
    accelerator: on a CPU it reads the files in order, in the main process."""
    import torchvision

    class Built(Exception):
        pass

    seen: dict = {}

    def loader(dataset: object, **kwargs: object) -> None:
        seen.update(kwargs)
        raise Built

    monkeypatch.setattr(torch.utils.data, "DataLoader", loader)
    monkeypatch.setattr(torchvision.datasets, "MNIST", lambda *args, **kwargs: None)
    with pytest.raises(Built):
        bench.baseline_a(Path("unused"), tiny_mnist, 0, torch.device(device), 1, 0.5, stop_at=None)
    assert seen.get("shuffle", False) is shuffled and seen["batch_size"] == 64
    assert (seen.get("num_workers", 0), seen.get("pin_memory", False)) == ((1, True) if shuffled else (0, False))


def test_the_baselines_warm_up_runs_steps_of_each_wanted_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """On CUDA the baselines' first kernels load before the clock, as ours do in `warm_up`; each wanted baseline
    takes two steps per batch size ((b) also its partial last batch of 96)."""
    steps: list[str] = []
    for optimizer in (torch.optim.Adadelta, torch.optim.Adam):
        def counted(self: torch.optim.Optimizer, *args: object, _step=optimizer.step, **kwargs: object) -> object:
            steps.append(type(self).__name__)
            return _step(self, *args, **kwargs)

        monkeypatch.setattr(optimizer, "step", counted)
    assert bench.warm_up_baselines({"a", "b"}, torch.device("cpu")) > 0
    assert steps == ["Adadelta"] * 2 + ["Adam"] * 4


def test_help_works_and_bad_arguments_are_one_line(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])  # preset names hold '%', which argparse's help formatting once choked on
    assert done.value.code == 0 and "fastest to 99 %" in capsys.readouterr().out
    for argv, words in ((["--recipes", "fastest"], "unknown preset 'fastest'"), (["--baselines", "c"], "--baselines"),
                        (["--seeds", "0"], "--seeds 0: it must be above 0"),  # (was a StatisticsError traceback)
                        (["--eval-every", "0"], "--eval-every 0.0: it must be above 0")):
        with pytest.raises(SystemExit) as refused:
            main(argv)
        err = capsys.readouterr().err
        assert refused.value.code == 2 and words in err and len(err.strip().splitlines()) == 1


def test_each_device_races_its_own_presets() -> None:
    assert default_recipes(torch.device("cpu")) == ["fastest to 99 %"]  # the README's CPU figures are for this one
    assert default_recipes(torch.device("mps")) == ["fastest to 99 %"]
    assert default_recipes(torch.device("cuda")) == ["GPU: fastest to 99 %", "GPU: fastest to 99.4 %"]
    assert all(name in PRESETS for names in DEFAULT_RECIPES.values() for name in names)


def test_compile_is_raced_on_cuda_only_unless_asked() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert bench.compile_variants("auto", cpu) == [False]  # slower on this project's CPU: not raced by default
    assert bench.compile_variants("auto", cuda) == [False, True]  # CUDA graphs may pay off: eager and compiled
    assert bench.compile_variants("on", cpu) == [True] and bench.compile_variants("off", cuda) == [False]


def test_warm_up_runs_two_steps_of_each_recipe_untimed(tiny_mnist: Mnist, monkeypatch: pytest.MonkeyPatch) -> None:
    warmed = []
    monkeypatch.setattr(bench, "fit", lambda config, data: warmed.append(config))
    bench.warm_up(DEFAULT_RECIPES["cuda"], tiny_mnist, "cpu")
    assert [config.model_kwargs for config in warmed] == [PRESETS[name]["model_kwargs"] for name in DEFAULT_RECIPES["cuda"]]
    assert all(config.train_subset == 2 * config.batch_size and config.epochs == 1 for config in warmed)
    monkeypatch.undo()
    assert bench.warm_up(DEFAULT_RECIPES["cuda"][:1], tiny_mnist, "cpu") > 0  # and for real: it trains on any device


def test_an_unwritable_json_path_is_refused_before_the_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`--json DIR` ran the whole benchmark, then ended in an IsADirectoryError traceback that lost its results."""
    (tmp_path / "notes.txt").write_text("mine")
    for target, words in ((tmp_path, "is a folder: give a file name such as"),
                          (tmp_path / "notes.txt" / "cpu.json", "notes.txt is a file, not a folder")):
        with pytest.raises(SystemExit) as refused:
            main(["--quick", "--json", str(target)])
        err = capsys.readouterr().err
        assert refused.value.code == 2 and words in err and len(err.strip().splitlines()) == 1
    assert bench.results_path_problem(tmp_path / "new" / "deeper" / "cpu.json") is None
    assert not (tmp_path / "new").exists()  # the check leaves no folders behind
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_a_results_file_that_cannot_be_written_is_one_line(capsys: pytest.CaptureFixture) -> None:
    assert bench.write_results(Path("/dev/full"), {"quick": True}) is False  # a disk full at the end of the run
    err = capsys.readouterr().err
    assert "No space left on device" in err and len(err.strip().splitlines()) == 1


def test_ctrl_c_is_one_line_not_a_traceback(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(bench, "load_mnist", interrupted)
    assert main(["--quick"]) == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_every_option_says_what_it_does() -> None:
    # --seeds, --device, --data-root and --latency-calls were listed in --help with no word about them.
    assert [action.dest for action in bench.build_parser()._actions if not action.help] == []
