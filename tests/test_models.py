"""The model registry: shapes, parameter counts from the seeds' documents, knobs, summaries."""

from __future__ import annotations

import pytest
import torch

from mnist_core.config import PRESETS
from mnist_core.errors import ConfigError
from mnist_core.models import REGISTRY, build_model, count_parameters, get_spec, model_summary

# Parameter counts stated by the seed projects (seed 002's at its nf=32).
SEED_PARAMETER_COUNTS = {"seed-net": 21_840, "nf-cnn": 93_322, "s5-net": 593_200, "tiny-bn": 7_416}


@pytest.mark.parametrize("name", list(REGISTRY))
@pytest.mark.parametrize("training", [False, True])
def test_every_model_maps_a_batch_to_ten_finite_logits(name: str, training: bool) -> None:
    torch.manual_seed(0)
    model = build_model(name).train(training)
    images = torch.randn(3, 1, 28, 28)
    logits = model(images)
    assert logits.shape == (3, 10)
    assert logits.dtype == torch.float32
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name, expected", SEED_PARAMETER_COUNTS.items())
def test_seed_models_have_the_parameter_count_of_their_seed(name: str, expected: int) -> None:
    assert count_parameters(build_model(name)) == expected


def test_registry_has_every_required_model_with_description_seed_and_recipe() -> None:
    assert {"seed-net", "nf-cnn", "s5-net", "tiny-bn", "fast", "best"} <= set(REGISTRY)
    for spec in REGISTRY.values():
        assert len(spec.description) > 20, spec.name
        assert spec.seed
        assert spec.recipe in PRESETS, f"{spec.name}: recipe {spec.recipe!r} is not a preset"
        assert PRESETS[spec.recipe]["model"] == spec.name


def test_seed_net_returns_logits_not_probabilities() -> None:
    """Seeds 000/001 applied softmax in forward (then CrossEntropy): the registry model must not."""
    torch.manual_seed(0)
    logits = build_model("seed-net").eval()(torch.randn(8, 1, 28, 28))
    assert (logits < 0).any(), "softmax outputs are never negative"
    assert not torch.allclose(logits.sum(1), torch.ones(8))


def test_nf_knob_sets_the_width_of_nf_cnn() -> None:
    narrow, default = build_model("nf-cnn", nf=16), build_model("nf-cnn")
    assert narrow[0].out_channels == 16
    assert count_parameters(narrow) < count_parameters(default)
    assert narrow(torch.randn(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_knob_defaults_are_the_builder_defaults(name: str) -> None:
    spec = REGISTRY[name]
    defaults = {key: knob.default for key, knob in spec.knobs.items()}
    assert count_parameters(spec.build(**defaults)) == count_parameters(spec.build())
    for key, knob in spec.knobs.items():
        assert knob.low <= knob.default <= knob.high, f"{name}.{key}"


def test_unknown_knob_is_refused_naming_the_knobs_it_has() -> None:
    with pytest.raises(ConfigError, match="no setting depth.*takes nf, hidden"):
        build_model("nf-cnn", depth=3)


def test_out_of_range_knob_is_refused_with_the_range() -> None:
    with pytest.raises(ConfigError, match=r"nf=1000 is out of range: choose 4…128"):
        build_model("nf-cnn", nf=1000)


def test_fractional_layer_width_is_refused_as_a_config_error() -> None:
    with pytest.raises(ConfigError):
        build_model("nf-cnn", nf=32.5)


def test_unknown_model_name_lists_the_registry() -> None:
    with pytest.raises(ConfigError, match="unknown model 'resnet'.*seed-net"):
        get_spec("resnet")


def test_model_summary_rows_add_up_and_end_in_ten_outputs() -> None:
    model = build_model("tiny-bn").train()
    rows = model_summary(model)
    assert sum(row["parameters"] for row in rows) == count_parameters(model)
    assert rows[-1]["output shape"] == (10,)
    assert rows[0]["output shape"] == (8, 26, 26)  # seed 004's table: 3×3 conv, no padding
    assert model.training, "the summary must not leave the model in eval mode"


def test_the_model_summary_gives_each_dropout_layers_rate() -> None:
    """The Dropout knob changed nothing the model card showed: its layers read "(Dropout)" at any rate."""
    layers = [row["layer"] for row in model_summary(build_model("seed-net", dropout=0.3))]
    assert "conv2_drop (Dropout2d, p=0.3)" in layers and "drop (Dropout, p=0.3)" in layers
    assert "conv1 (Conv2d)" in layers
