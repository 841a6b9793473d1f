"""AppTest tests of the Streamlit app: every page renders with the default model, its widgets exist, training runs
through the Train page in the background (Start, poll, Stop, two sessions at once), Evaluate shows the confusion
matrix, Sketch classifies an uploaded image, and bad input ends in `st.error`, never an exception.

Sessions get the synthetic `tiny_mnist` data through `studio_ui.resources.TEST_DATA_KEY`, so no test needs the
real MNIST files and a training run takes a second or two.
"""

from __future__ import annotations

import io
import json
import re
import socket
import time
import uuid
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from cli_support import PILLOW_MODES, digit_image, in_mode
from mnist_core import checkpoints
from mnist_core.checkpoints import CHECKPOINT_DIR, checkpoint_bytes, free_checkpoint_name, load_checkpoint
from mnist_core.config import PRESETS, TrainConfig, epochs_shown, epochs_text, preset_config
from mnist_core.data import MNIST_FILES, Mnist, MnistSplit, raw_folder
from mnist_core.evaluate import EvaluationReport, confusion_matrix, evaluate, per_class_metrics
from mnist_core.explore import most_confused
from mnist_core.models import REGISTRY, build_model
from mnist_core.runner import (DIVERGED, DONE, NOT_LEARNED, RUNNING, STOPPED, JobSnapshot, TrainingJob, prepare_worker,
                               with_live_reporting)
from mnist_core.sketch import open_image, predict
from mnist_core.train import EvalRecord
from studio_ui import resources, settings
from studio_ui.charts import batch_loss as batch_loss_figure, epoch_curves
from studio_ui.layout import picture_preview
from studio_ui.resources import TEST_DATA_KEY
from studio_ui.session import (ACTIVE_KEY, DRAWING_KEY, JOB_KEY, LOST_SESSION_NOTE, PICTURE_KEY, RESUME_PARAM,
                               RUNS_KEY, KeptDrawing, ModelEntry)
from tests.conftest import REPO_ROOT
from tests.e2e.strokes import DIGIT_STROKES, rasterise, scaled

RUN_TIMEOUT_S = 120  # one script run; generous because the CI machine has 2 shared cores
TRAIN_TIMEOUT_S = 120
PAGES = {"explorer": "pages/1_Dataset_Explorer.py", "train": "pages/2_Train.py", "evaluate": "pages/3_Evaluate.py",
         "sketch": "pages/4_Sketch.py"}


def open_app(data, page: str | None = None) -> AppTest:
    """A fresh browser-like session on app.py (optionally switched to a page) using `data` as its dataset."""
    app = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=RUN_TIMEOUT_S)
    if data is not None:
        app.session_state[TEST_DATA_KEY] = data
    app.run()
    if page is not None:
        app.switch_page(PAGES[page]).run()
    return app


def assert_clean(app: AppTest) -> None:
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]


def configure_tiny_run(app: AppTest, model: str = "seed-net", epochs: float = 1, seed: int = 0) -> None:
    app.selectbox(key="train.model").set_value(model).run()
    app.select_slider(key="train.epochs").set_value(epochs).run()
    app.select_slider(key="train.batch_size").set_value(32).run()
    app.selectbox(key="train.scheduler").set_value("none").run()
    app.number_input(key="train.seed").set_value(seed).run()


def wait_for_job(apps: list[AppTest], until=lambda snapshot: snapshot.finished) -> None:
    """Rerun each session (as the page's polling fragment would) until its job's snapshot satisfies `until`."""
    deadline = time.monotonic() + TRAIN_TIMEOUT_S
    pending = list(apps)
    while pending:
        assert time.monotonic() < deadline, "training did not get there in time"
        time.sleep(0.2)
        for app in list(pending):
            if until(app.session_state[JOB_KEY].snapshot()):
                app.run()
                pending.remove(app)


def png_bytes(image: Image.Image) -> bytes:
    return image_bytes(image, "PNG")


def image_bytes(image: Image.Image, file_format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, file_format)
    return buffer.getvalue()


def drawn_one() -> Image.Image:
    """A "1", white on black like the canvas, 280×280 gray."""
    one = Image.new("L", (280, 280), 0)
    ImageDraw.Draw(one).line([(140, 40), (140, 240)], fill=255, width=22)
    return one


def chart_spec(app: AppTest, key: str) -> dict:
    """The plotly figure (data and layout) of the chart keyed `key`, as the browser receives it."""
    return json.loads(next(chart for chart in app.get("plotly_chart") if chart.key == key).proto.spec)


def column_config(app: AppTest, column: str) -> dict:
    """How the first table with a column named `column` shows it (AppTest does not report dataframe keys)."""
    table = next(table for table in app.dataframe if column in table.value.columns)
    return json.loads(table.proto.columns).get(column, {})


def test_home_shows_device_dataset_and_default_model(tiny_mnist) -> None:
    app = open_app(tiny_mnist)
    assert_clean(app)
    assert app.title[0].value == "MNIST Studio"
    labels = [metric.label for metric in app.metric]
    assert "Training runs on" in labels and "MNIST" in labels
    assert any(metric.value.endswith("%") for metric in app.metric)  # the default model's test accuracy
    assert any("checkpoints/default.pt" in caption.value.replace("\\", "") for caption in app.caption)


def test_dataset_explorer_renders_and_filters(tiny_mnist) -> None:
    app = open_app(tiny_mnist, "explorer")
    assert_clean(app)
    assert app.title[0].value == "Dataset explorer"
    assert len(app.get("image")) >= 40, "the sample grid shows images"
    app.selectbox(key="explore.digit").set_value(3).run()
    app.radio(key="explore.split").set_value("test").run()
    assert_clean(app)
    assert any("test images of digit 3" in caption.value for caption in app.caption)
    # The histogram is of the chosen split (its title named none, unlike the mean images' heading beside it).
    assert "test split" in chart_spec(app, "pixel-histogram")["layout"]["title"]["text"]
    app.slider(key="train.rotation").set_value(15.0).run()
    app.number_input(key="explore.lookup_index").set_value(255).run()
    assert_clean(app)
    assert [metric.value for metric in app.metric if metric.label == "Label"] == ["5"]  # tiny labels: index % 10
    assert any("Scribbles that training" in caption.value and "now off" in caption.value for caption in app.caption)
    app.session_state["train.scribbles"] = 0.25  # set on the Train page: the explorer shows the same setting
    app.run()
    assert any("now 0.25 per digit" in caption.value for caption in app.caption)
    app.slider(key="train.shear").set_value(10.0).run()  # the explorer's preview shares the Train page's shear
    app.session_state["train.scribble_shapes"] = "mixed"  # and its scribble shapes
    app.run()
    assert_clean(app)
    # Each index box says its range (an index out of it only turns the box red in the browser, without a reason).
    labels = {box.key: box.label for box in app.number_input}
    assert labels["explore.preview_index"].endswith("(0–511)")
    assert labels["explore.lookup_index"].endswith("(0–255)")


def test_every_control_of_the_explorer_has_a_label_of_its_own(tiny_mnist) -> None:
    """The samples' split and the look-up's split were both labelled "Split": a screen reader announced two controls
    of the same name."""
    app = open_app(tiny_mnist, "explorer")
    widgets = [*app.radio, *app.selectbox, *app.number_input, *app.slider, *app.checkbox, *app.button]
    labels = [widget.label for widget in widgets]
    assert len(widgets) >= 10 and all(labels) and len(set(labels)) == len(labels), labels


def test_the_augmentation_preview_says_what_training_does_in_both_states(tiny_mnist) -> None:
    """It said "eight random draws of exactly what training applies" beside "Augmentation is off for training"."""
    app = open_app(tiny_mnist, "explorer")
    preview = lambda: next(c.value for c in app.caption if c.value.startswith("One training image"))  # noqa: E731
    assert "what training would apply with augmentation on (it is off" in preview()
    assert any(info.value.startswith("Augmentation is off for training") for info in app.info)
    app.checkbox(key="train.augment").check().run()
    assert_clean(app)
    assert preview().endswith("eight random draws of exactly what training applies.")
    assert not any(info.value.startswith("Augmentation is off") for info in app.info)


def test_pages_that_need_data_say_how_to_get_it(tmp_path, monkeypatch) -> None:
    not_a_folder = tmp_path / "mnist.zip"
    not_a_folder.write_bytes(b"")
    monkeypatch.setenv("MNIST_DATA_ROOT", str(not_a_folder))
    for page in ("explorer", "evaluate"):
        app = open_app(None, page)
        assert not app.exception
        assert any("MNIST_DATA_ROOT" in error.value for error in app.error), page
        # in the app's words: there is no --data-root to pass to `streamlit run app.py`
        assert any("is a file, not a folder: point MNIST_DATA_ROOT at a folder. MNIST_DATA_ROOT is read when the app "
                   "starts" in error.value for error in app.error), page
        assert not any("--data-root" in error.value for error in [*app.error, *app.sidebar.error]), page
        assert [error.value for error in app.sidebar.error] == [
            "The data root is not a usable folder: this page says why and what to do."], page  # (not all of it again)
    sketch = open_app(None, "sketch")  # Sketch only needs a model
    assert not sketch.exception and sketch.title[0].value == "Sketch"


def test_a_missing_default_model_says_how_to_get_it_back(tiny_mnist, tmp_path, monkeypatch) -> None:
    """It said "No model: checkpoints/default.pt does not exist: check the path. …, or restore …": a path nobody typed,
    and two fixes that disagree."""
    monkeypatch.setattr(resources, "DEFAULT_CHECKPOINT", tmp_path / "checkpoints" / "default.pt")
    for page in (None, "sketch"):
        app = open_app(tiny_mnist, page)
        assert not app.exception
        assert [error.value for error in app.error if error.value.startswith("No model")] == [
            "No model: checkpoints/default.pt, the model that comes with MNIST Studio, is missing. Train one on the "
            "Train page, or restore it from the repository (git checkout -- checkpoints/default.pt)."], page

    # "Saved or trained" with no runs and no files: an empty picker, and nothing said on the page.
    monkeypatch.setattr(checkpoints, "list_checkpoints", lambda directory=None: [])
    app = open_app(tiny_mnist, "evaluate")
    app.radio(key="evaluate.source").set_value("Saved or trained").run()
    assert not app.exception
    assert [info.value for info in app.main.info] == [
        "Nothing to pick yet: this session has no runs and checkpoints/ holds no checkpoint. Train one on the Train "
        "page, or upload a checkpoint with Upload."]


def sidebar_data_status(app: AppTest) -> str:
    """The sidebar's word on the data (a caption, or an error box when there is a problem)."""
    texts = [element.value for element in [*app.sidebar.caption, *app.sidebar.error]]
    return next(text for text in texts if "MNIST" in text)


def test_a_failed_download_is_said_alike_in_the_sidebar_and_on_home(tmp_path, monkeypatch) -> None:
    """Offline with no data, the explorer said "downloading it failed" while the sidebar beside it (and Home after it)
    still said "it downloads on first use"; and every message told the app's user to "point --data-root / …", an
    option of the CLI only."""
    def no_network(*args, **kwargs):
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    root = tmp_path / "data"
    monkeypatch.setenv("MNIST_DATA_ROOT", str(root))
    home = open_app(None)
    assert "downloads on first use" in sidebar_data_status(home)
    assert "start the app again" in home.info[0].value  # how to point a running app elsewhere
    app = open_app(None, "explorer")
    assert not app.exception
    [page_error] = [error.value for error in app.error if "This page needs" in error.value]
    assert "downloading it failed" in page_error and "--data-root" not in page_error
    assert page_error.endswith(resources.RESTART_HINT)
    missing = "MNIST is missing and could not be downloaded"
    assert sidebar_data_status(app) == f"{missing}: this page says why and what to do.", "the sidebar of the same run"
    app.switch_page("app.py").run()
    assert [metric.value for metric in app.metric if metric.label == "MNIST"] == ["problem"]
    assert any("downloading it failed" in error.value for error in app.error)
    assert sidebar_data_status(open_app(None)) == f"{missing}: the Dataset panel on this page says why and what to do."
    assert sidebar_data_status(open_app(None, "sketch")) == f"{missing}: the Home page says why and what to do.", \
        "another tab"
    raw_folder(root).mkdir(parents=True)  # the files change (a copy begins): the page's word no longer holds
    (raw_folder(root) / "train-labels-idx1-ubyte.part").write_bytes(b"")
    assert "downloads on first use" in sidebar_data_status(open_app(None))


def test_a_data_problem_is_said_in_full_once_per_page_and_in_a_few_words_in_the_sidebar(tmp_path, monkeypatch) -> None:
    """Offline with no data, the sidebar repeated the page's whole message (seven lines and more), which pushed its
    "Active model" out of view, and the message quoted urllib's "<urlopen error [Errno -3] …>"."""
    def no_network(*args, **kwargs):
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setenv("MNIST_DATA_ROOT", str(tmp_path / "data"))
    for page in ("explorer", "evaluate", None, "train", "sketch"):  # (the explorer first: its download fails)
        app = open_app(None, page)
        assert not app.exception, page
        full = [error.value for error in app.error if "downloading it failed" in error.value]
        assert len(full) == (0 if page in ("train", "sketch") else 1), page  # (Train's shows when Start is pressed)
        assert all("no network: Temporary failure in name resolution" in message and "urlopen" not in message
                   for message in full), page
        [status] = [error.value for error in app.sidebar.error]  # (and no "No usable model" box)
        assert status.startswith("MNIST is missing and could not be downloaded: "), page
        assert len(status) < 120, page  # two lines, not the whole message
        assert "### Active model" in [markdown.value for markdown in app.sidebar.markdown], page
    app = open_app(None, "train")
    app.button(key="train-start").click().run()  # the Train page's whole message shows when Start is pressed ...
    assert len([error for error in app.error if "downloading it failed" in error.value]) == 1
    [status] = [error.value for error in app.sidebar.error]  # ... and the sidebar says so (not "the Home page")
    assert status.endswith(": this page says why and what to do."), status


def test_files_of_the_right_size_that_are_not_mnist_are_no_longer_found_once_a_page_read_them(tmp_path,
                                                                                            monkeypatch) -> None:
    """Sizes are all the sidebar looks at: it said "MNIST found" beside the page's "… is corrupt"."""
    for name, (size, _) in MNIST_FILES.items():
        raw_folder(tmp_path).mkdir(parents=True, exist_ok=True)
        with open(raw_folder(tmp_path) / name, "wb") as handle:
            handle.truncate(size)  # zeros: sparse, free to make
    monkeypatch.setenv("MNIST_DATA_ROOT", str(tmp_path))
    app = open_app(None)
    assert "MNIST found" in sidebar_data_status(app)
    app.switch_page(PAGES["explorer"]).run()
    assert any("is corrupt" in error.value for error in app.error)
    assert sidebar_data_status(app) == "MNIST's files cannot be used: this page says why and what to do."


def test_train_page_has_every_setting_and_presets_fill_them(tiny_mnist) -> None:
    app = open_app(tiny_mnist, "train")
    assert_clean(app)
    assert [option.split()[0] for option in app.selectbox(key="train.model").options] == list(REGISTRY)
    for key in ("train.epochs", "train.batch_size", "train.lr", "train.weight_decay"):
        assert app.select_slider(key=key)
    for key in ("train.optimizer", "train.scheduler", "train.device", "train.train_subset", "train.preset"):
        assert app.selectbox(key=key)
    assert app.slider(key="train.rotation") and app.slider(key="train.knob.fast.width")
    assert app.slider(key="train.scribbles").value == 0.0
    assert app.slider(key="train.shear").value == 0.0 and app.selectbox(key="train.scribble_shapes").value == "zigzag"
    app.selectbox(key="train.preset").set_value("seed 004").run()
    assert app.session_state["train.model"] == "tiny-bn" and app.session_state["train.lr"] == 0.02
    assert app.slider(key="train.step_size").value == 6 and app.slider(key="train.rotation").value == 7.0
    assert any("7,416 parameters" in md.value for md in app.markdown)
    app.select_slider(key="train.lr").set_value(0.05).run()
    assert app.session_state["train.preset"] == "custom"  # a changed setting is no longer the preset
    assert not app.slider(key="train.momentum").disabled  # seed 004: SGD with a step schedule uses its momentum
    app.selectbox(key="train.scheduler").set_value("onecycle").run()
    assert app.slider(key="train.momentum").disabled  # one-cycle sets the momentum itself: the slider would do nothing


def test_a_preset_keeps_the_device_picked_by_hand(tiny_mnist) -> None:
    """Device cpu, then a preset: the Device select went back to "auto" (on a GPU machine, the GPU) without a word;
    the device is the machine's choice, not part of a recipe."""
    app = open_app(tiny_mnist, "train")
    app.selectbox(key="train.device").set_value("cpu").run()
    app.selectbox(key="train.preset").set_value("seed 004").run()
    assert_clean(app)
    assert app.selectbox(key="train.device").value == "cpu" and app.session_state["train.model"] == "tiny-bn"
    assert app.session_state["train.preset"] == "seed 004"


def test_a_preset_keeps_the_seed_and_training_images_picked_by_hand(tiny_mnist) -> None:
    """Seed 3 and the first 5,000 images (README's check of the presets), then a preset: the page put the Seed back to 0
    and the Training images to all 60,000 without a word, so Start trained a 15-epoch run on the whole set. No recipe
    sets either (as `train --preset … --seed 3 --train-subset 5000` keeps them); and changing them, as the device,
    leaves the recipe as it was, so the Preset select keeps its name."""
    app = open_app(tiny_mnist, "train")
    app.number_input(key="train.seed").set_value(3).run()
    app.selectbox(key="train.train_subset").set_value(5000).run()
    app.selectbox(key="train.preset").set_value("seed 004").run()
    assert_clean(app)
    assert app.session_state["train.model"] == "tiny-bn" and app.session_state["train.epochs"] == 15
    assert app.number_input(key="train.seed").value == 3
    assert app.selectbox(key="train.train_subset").value == 5000
    app.number_input(key="train.seed").set_value(4).run()
    app.selectbox(key="train.train_subset").set_value(1000).run()
    app.selectbox(key="train.device").set_value("cpu").run()
    assert app.session_state["train.preset"] == "seed 004"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings.st, "session_state",
                      {key: app.session_state[key] for key in app.session_state if key.startswith(settings.PREFIX)})
        in_app = settings.config_from_state()
    assert replace(in_app, model_kwargs={}) == preset_config("seed 004", seed=4, train_subset=1000, device="cpu")


@pytest.mark.parametrize("model", list(REGISTRY))
def test_a_model_picked_in_the_model_select_starts_at_its_own_knob_defaults(tiny_mnist, model: str) -> None:
    """Picking a model (no preset) must not train it at its knobs' minimums (nf-cnn at nf=4, dropout 0)."""
    app = open_app(tiny_mnist, "train")
    other = next(name for name in REGISTRY if name != model)
    app.selectbox(key="train.model").set_value(other).run()  # the first model may already be the preset's
    app.selectbox(key="train.model").set_value(model).run()
    assert_clean(app)
    defaults = {name: knob.default for name, knob in REGISTRY[model].knobs.items()}
    assert {name: app.slider(key=settings.knob_key(model, name)).value for name in defaults} == defaults
    assert app.session_state["train.preset"] == "custom"


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset_in_the_app_trains_exactly_the_cli_recipe(tiny_mnist, preset: str) -> None:
    """The widgets must be able to hold every value of every preset (an epoch count or β2 the page cannot show
    would silently train a different recipe than `train --preset`)."""
    app = open_app(tiny_mnist, "train")
    app.selectbox(key="train.preset").set_value(preset).run()
    assert_clean(app)
    state = {key: app.session_state[key] for key in app.session_state if key.startswith(settings.PREFIX)}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings.st, "session_state", state)
        in_app = settings.config_from_state()
    recipe = preset_config(preset)
    knob_defaults = {name: knob.default for name, knob in REGISTRY[recipe.model].knobs.items()}
    assert in_app.model_kwargs == {**knob_defaults, **recipe.model_kwargs}  # the page names the defaults
    assert replace(in_app, model_kwargs={}) == replace(recipe, model_kwargs={})
    assert app.session_state["train.preset"] == preset  # rendering the page did not change any of its values


def test_tiny_run_completes_becomes_active_and_saves_safely(tiny_mnist) -> None:
    app = open_app(tiny_mnist, "train")
    configure_tiny_run(app)
    app.button(key="train-start").click().run()
    assert_clean(app)
    wait_for_job([app])
    assert app.session_state[JOB_KEY].snapshot().status == DONE
    assert any("now the active model" in success.value for success in app.success)
    active = app.session_state[ACTIVE_KEY]
    assert active.source == "run 1" and active.name == "seed-net" and active.test_accuracy > 50
    history = [table.value for table in app.dataframe if "test accuracy %" in table.value.columns]
    assert len(history) == 1 and history[0].shape[0] == 1
    assert app.get("download_button")

    name = f"apptest-{uuid.uuid4().hex[:8]}"
    saved = CHECKPOINT_DIR / f"{name}.pt"
    try:
        app.text_input(key="train.save-name-0").set_value(name).run()
        app.button(key="save-button").click().run()
        assert saved.is_file() and any("Saved as" in s.value for s in app.success)
        before = saved.read_bytes()
        app.button(key="save-button").click().run()
        assert any("already exists" in e.value for e in app.error), "a second save must not overwrite"
        assert not any(str(CHECKPOINT_DIR) in e.value for e in app.error), "the folder as people know it, not the server's"
        assert saved.read_bytes() == before
        app.text_input(key="train.save-name-0").set_value("../../escape").run()
        app.button(key="save-button").click().run()
        assert any("not a usable name" in e.value for e in app.error)
    finally:
        saved.unlink(missing_ok=True)


def test_the_run_history_says_when_a_run_trained_on_part_of_the_images(tiny_mnist) -> None:
    """A quick run on the first 1,000 images read exactly like a run on all 60,000 in the history's settings; at the
    end of the long settings summary, the count was cut off at 1400 px: it has a number column, as in Compare."""
    app = open_app(tiny_mnist, "train")
    configure_tiny_run(app, epochs=0.25)
    app.selectbox(key="train.train_subset").set_value(1000).run()
    app.button(key="train-start").click().run()
    wait_for_job([app])
    assert_clean(app)
    history = next(table.value for table in app.dataframe if "settings" in table.value.columns)
    assert list(history["training images"]) == [1000]


def test_save_suggests_a_free_name_and_the_download_is_named_as_typed(tiny_mnist, monkeypatch) -> None:
    """A new session's run 1 was offered "seed-net-run1" though an earlier session had saved it (Save then refused
    it), and the download was always called "<model>-runN.pt", whatever name was typed and saved."""
    import streamlit

    download_names: list[str] = []
    download_button = streamlit.download_button

    def recording(*args, **kwargs):
        download_names.append(kwargs["file_name"])
        return download_button(*args, **kwargs)

    monkeypatch.setattr(streamlit, "download_button", recording)
    taken = CHECKPOINT_DIR / "seed-net-run1.pt"
    made_here = not taken.exists()
    if made_here:
        taken.write_bytes(b"an earlier session's run")
    try:
        app = open_app(tiny_mnist, "train")
        configure_tiny_run(app, epochs=0.25)
        app.button(key="train-start").click().run()
        wait_for_job([app])
        suggested = app.text_input(key="train.save-name-0").value
        assert suggested.startswith("seed-net-run1-") and not (CHECKPOINT_DIR / f"{suggested}.pt").exists()
        app.text_input(key="train.save-name-0").set_value("my-first-model").run()
        assert download_names[-1] == "my-first-model.pt"
        app.text_input(key="train.save-name-0").set_value("../nope").run()  # not a name: the download keeps its own
        assert download_names[-1] == "seed-net-run1.pt"
        assert any("'../nope' is not a usable name" in caption.value.replace("\\", "")
                   and "Download names the file seed-net-run1.pt" in caption.value.replace("\\", "")
                   for caption in app.caption), "said, not silently"
        assert app.text_input(key="train.save-name-0").value == "../nope", "what the user typed stays"
        app.switch_page(PAGES["evaluate"]).run()
        app.switch_page(PAGES["train"]).run()
        assert app.text_input(key="train.save-name-0").value == "../nope", "and stays while other pages are visited"
    finally:
        if made_here:
            taken.unlink(missing_ok=True)


def test_save_under_a_taken_name_offers_a_free_one_and_every_refusal_reads_as_a_sentence(tiny_mnist) -> None:
    """Save as "default" read "checkpoints/default.pt already exists: choose another name", leaving the user to guess
    names until one was free; a name left empty read "the file name is empty: …", in lower case."""
    default = load_checkpoint(CHECKPOINT_DIR / "default.pt")
    app = open_app(tiny_mnist, "train")
    app.session_state[RUNS_KEY] = [ModelEntry(replace(default, source="run 1"), "run")]
    app.run()
    before = (CHECKPOINT_DIR / "default.pt").read_bytes()
    app.text_input(key="train.save-name-0").set_value("default").run()
    app.button(key="save-button").click().run()
    [error] = [error.value.replace("\\", "") for error in app.error]
    free = free_checkpoint_name("default")
    assert error == (f"The file checkpoints/default.pt already exists and was not overwritten: choose another name, "
                     f"such as {free} (no file has it yet)."), error
    assert not (CHECKPOINT_DIR / f"{free}.pt").exists() and (CHECKPOINT_DIR / "default.pt").read_bytes() == before
    app.text_input(key="train.save-name-0").set_value("   ").run()
    [caption] = [caption.value.replace("\\", "") for caption in app.caption if "file name is empty" in caption.value]
    assert caption.startswith("The file name is empty: "), caption
    app.button(key="save-button").click().run()
    assert [error.value.replace("\\", "") for error in app.error][0].startswith("The file name is empty: ")


def test_a_run_that_does_not_learn_is_listed_but_not_made_the_active_model(tiny_mnist) -> None:
    app = open_app(tiny_mnist, "train")
    configure_tiny_run(app, epochs=0.25)
    app.selectbox(key="train.optimizer").set_value("sgd").run()
    app.select_slider(key="train.lr").set_value(1e-5).run()  # 4 batches that move nothing: chance level
    app.button(key="train-start").click().run()
    assert_clean(app)
    wait_for_job([app])
    assert app.session_state[JOB_KEY].snapshot().status == NOT_LEARNED
    assert any(warning.value.startswith("Finished, but the model did not learn: ") and
               "was not made the active model" in warning.value for warning in app.warning)
    assert not app.success and ACTIVE_KEY not in app.session_state  # the shipped default stays active
    history = [table.value for table in app.dataframe if "test accuracy %" in table.value.columns]
    assert list(history[0]["run"]) == ["run 1 (did not learn)"]

    app.switch_page(PAGES["evaluate"]).run()  # the user can still choose it
    app.radio(key="evaluate.source").set_value("Saved or trained").run()
    app.selectbox(key="evaluate.choice").set_value("run 1 (did not learn) · seed-net").run()
    app.button(key="evaluate-activate").click().run()
    assert_clean(app)
    assert app.session_state[ACTIVE_KEY].source == "run 1 (did not learn)"


def test_a_weak_run_made_active_says_so_and_offers_the_way_back(tiny_mnist, monkeypatch) -> None:
    """Start then Stop: "Stopped after 2 of 375 batches …" said nothing of the run (26.7 %) now replacing the active
    model (99.48 %); a finished run's "It is now the active model" stayed after another model was made active."""
    import mnist_core.evaluate

    monkeypatch.setattr(mnist_core.evaluate, "WEAK_MODEL_ACCURACY", 101.0)  # any run is weak: no luck in the test
    app = open_app(tiny_mnist, "train")
    configure_tiny_run(app, epochs=30)
    app.button(key="train-start").click().run()
    wait_for_job([app], until=lambda snapshot: snapshot.step > 0)
    app.button(key="train-stop").click().run()
    wait_for_job([app])
    assert_clean(app)
    [info] = [info.value for info in app.info]
    assert info.startswith("Stopped after ") and info.endswith(" It is now the active model."), info
    [warning] = [warning.value for warning in app.warning]
    assert warning.startswith("Run 1 (stopped early) reads only ") and "the model that was active before it" in warning
    app.button(key="train-restore-active").click().run()
    assert_clean(app)
    assert app.session_state[ACTIVE_KEY].source == "checkpoints/default.pt"
    assert "checkpoints/default.pt" in app.sidebar.markdown[-1].value.replace("\\", "")  # (Markdown's escapes off)
    [info] = [info.value.replace("\\", "") for info in app.info]
    assert info.endswith(" It was made the active model; the active model is now checkpoints/default.pt (fast)."), info
    assert not app.warning and not [button for button in app.button if button.key == "train-restore-active"]


def test_a_finished_runs_message_stays_true_when_another_model_is_made_active(tiny_mnist) -> None:
    app = open_app(tiny_mnist, "train")
    configure_tiny_run(app, epochs=0.25)
    app.button(key="train-start").click().run()
    wait_for_job([app])
    assert any(success.value.endswith(" It is now the active model.") for success in app.success)
    app.switch_page(PAGES["evaluate"]).run()
    app.radio(key="evaluate.source").set_value("Saved or trained").run()
    app.selectbox(key="evaluate.choice").set_value("checkpoints/default.pt").run()
    app.button(key="evaluate-activate").click().run()
    app.switch_page(PAGES["train"]).run()
    assert_clean(app)
    [success] = [success.value.replace("\\", "") for success in app.success]
    assert success.endswith(" It was made the active model; the active model is now checkpoints/default.pt (fast)."), (
        success)


def test_settings_with_too_few_batches_say_so_before_start(tiny_mnist) -> None:
    """The quick run (first 1,000 images) with the fast preset's 0.8 epoch trained 6 batches and scored 44 %."""
    app = open_app(tiny_mnist, "train")
    few = "too few to learn much"
    assert not any(few in caption.value for caption in app.caption)  # the preset on all 60,000: 375 batches
    app.selectbox(key="train.train_subset").set_value(1000).run()
    assert any(caption.value.endswith("6 batches in all: too few to learn much — more epochs, more training images "
                                      "or a smaller batch") for caption in app.caption)
    app.select_slider(key="train.epochs").set_value(10).run()
    assert not any(few in caption.value for caption in app.caption)


def test_settings_start_would_refuse_are_said_before_start_with_the_fix(tiny_mnist) -> None:
    """Batch size 2,048 on the first 1,000 images: the page said nothing until Start, then only "…; got 2048"."""
    app = open_app(tiny_mnist, "train")
    app.selectbox(key="train.train_subset").set_value(1000).run()
    app.select_slider(key="train.batch_size").set_value(2048).run()
    refusal = ("batch size must be between 2 and the number of training images (1000); got 2048: choose a smaller "
               "batch size, or more training images")
    assert [warning.value for warning in app.warning] == [f"Start would refuse these settings: {refusal}"]
    assert not any("too few to learn" in caption.value for caption in app.caption)  # one note, not two
    app.button(key="train-start").click().run()
    assert [error.value for error in app.error] == [f"Not started: {refusal}"] and not app.warning  # said once
    app.select_slider(key="train.batch_size").set_value(512).run()
    assert not app.warning and not app.error


def test_a_step_scheduler_that_would_never_decay_says_so(tiny_mnist) -> None:
    """Seed 003's recipe decays the learning rate after epoch 15; set to 10 epochs (or γ 1) it never decayed, and
    the page said nothing: the scheduler read "step" and acted as "none"."""
    app = open_app(tiny_mnist, "train")
    app.selectbox(key=settings.PRESET_KEY).set_value("seed 003").run()
    never = "the learning rate never decays"
    assert not any(never in caption.value for caption in app.caption)  # 20 epochs: it decays once, after 15
    app.select_slider(key="train.epochs").set_value(10).run()
    assert_clean(app)
    assert any(caption.value.endswith("The first decay comes after 15 epochs and the run is 10 epochs long: the "
                                      "learning rate never decays — a smaller step size or more epochs")
               for caption in app.caption), [caption.value for caption in app.caption]
    app.slider(key="train.step_size").set_value(9).run()
    assert not any(never in caption.value for caption in app.caption)
    app.slider(key="train.gamma").set_value(1.0).run()
    assert any("Decay factor γ 1 keeps the learning rate as it is" in caption.value for caption in app.caption)


def test_two_sessions_train_at_once_and_stop_only_their_own(tiny_mnist) -> None:
    stopper, finisher = open_app(tiny_mnist, "train"), open_app(tiny_mnist, "train")
    configure_tiny_run(stopper, model="seed-net", epochs=30, seed=1)
    configure_tiny_run(finisher, model="fast", epochs=1, seed=2)
    stopper.button(key="train-start").click().run()
    finisher.button(key="train-start").click().run()
    wait_for_job([stopper], until=lambda snapshot: snapshot.step > 0)
    stopper.button(key="train-stop").click().run()
    wait_for_job([stopper, finisher])

    stopped, done = stopper.session_state[JOB_KEY], finisher.session_state[JOB_KEY]
    assert stopped is not done
    assert stopped.snapshot().status == STOPPED and 0 < stopped.result.epochs_done < 30
    assert done.snapshot().status == DONE and done.result.epochs_done == 1  # the other Stop did not touch it
    assert stopper.session_state[ACTIVE_KEY].name == "seed-net"
    assert stopper.session_state[ACTIVE_KEY].checkpoint.metrics["stopped"] is True
    assert finisher.session_state[ACTIVE_KEY].name == "fast"
    assert len(stopper.session_state[RUNS_KEY]) == len(finisher.session_state[RUNS_KEY]) == 1
    assert any("Stopped" in info.value for info in stopper.info)


def test_evaluate_shows_confusion_matrix_and_refuses_bad_uploads(tiny_mnist) -> None:
    app = open_app(tiny_mnist, "evaluate")
    assert_clean(app)
    assert app.title[0].value == "Evaluate"
    assert {"Test accuracy", "Test loss", "Mistakes"} <= {metric.label for metric in app.metric}
    charts = [chart for chart in app.get("plotly_chart") if '"Heatmap"' in chart.proto.spec or
              '"heatmap"' in chart.proto.spec]
    assert charts, "the confusion matrix heatmap is drawn"
    app.selectbox(key="evaluate.true").set_value(3).run()
    app.selectbox(key="evaluate.predicted").set_value(3).run()
    assert any(re.search(r"test images? of a \*\*3\*\* (is )?read as \*\*3\*\*", md.value) for md in app.markdown)
    assert any(list(table.value.columns)[:2] == ["digit", "precision"] and table.value.shape[0] == 10
               for table in app.dataframe), "the per-class table"
    active_before = app.session_state[ACTIVE_KEY] if ACTIVE_KEY in app.session_state else None

    app.radio(key="evaluate.source").set_value("Upload").run()
    app.file_uploader(key="evaluate-upload").set_value(("model.pt", b"PK\x03\x04 truncated", "application/x")).run()
    assert not app.exception
    assert any("active model is unchanged" in error.value for error in app.error)
    assert (app.session_state[ACTIVE_KEY] if ACTIVE_KEY in app.session_state else None) is active_before


def test_a_refused_upload_reads_as_two_clean_sentences(tiny_mnist) -> None:
    """A message that ends in a question ("… is it really an MNIST Studio checkpoint?") gets no stray full stop."""
    app = open_app(tiny_mnist, "evaluate")
    app.radio(key="evaluate.source").set_value("Upload").run()
    too_big = bytes(65 * 2**20)  # past the 64 MB limit, refused from its size
    app.file_uploader(key="evaluate-upload").set_value(("big.pt", too_big, "application/octet-stream")).run()
    assert not app.exception
    [error] = [error.value.replace("\\", "") for error in app.error]  # (Markdown's escapes off)
    assert error.endswith("checkpoint? The active model is unchanged."), error
    app.file_uploader(key="evaluate-upload").set_value(("empty.pt", b"", "application/octet-stream")).run()
    assert [error.value.replace("\\", "") for error in app.error] == [
        "Upload: empty.pt is empty (0 bytes): it is not a model file. The active model is unchanged."]


def test_sketch_classifies_an_uploaded_image_and_reports_empty_and_bad_ones() -> None:
    app = open_app(None, "sketch")
    assert_clean(app)
    assert not [metric for metric in app.metric if metric.label == "Prediction"], "an empty canvas predicts nothing"
    app.radio(key="sketch.input").set_value("Upload an image").run()

    app.file_uploader(key="sketch-upload").set_value(("one.png", png_bytes(drawn_one()), "image/png")).run()
    assert_clean(app)
    assert [metric.value for metric in app.metric if metric.label == "Prediction"] == ["1"]
    assert not unsure_badges(app)

    blank = Image.new("L", (280, 280), 255)
    app.file_uploader(key="sketch-upload").set_value(("blank.png", png_bytes(blank), "image/png")).run()
    assert not [metric for metric in app.metric if metric.label == "Prediction"]
    assert any("No ink found" in warning.value for warning in app.warning)
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (280, 280), dtype=np.uint8))
    app.file_uploader(key="sketch-upload").set_value(("noise.png", png_bytes(noise), "image/png")).run()
    assert_clean(app)
    assert any("not look like one digit on a plain background" in warning.value for warning in app.warning)
    assert unsure_badges(app), "beside the prediction: the note may be below the canvas, out of sight"
    # shrunk to 28×28, large noise averages out to one grey: it was called "one flat colour or a smooth shading"
    fine_noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (2000, 2000), dtype=np.uint8))
    app.file_uploader(key="sketch-upload").set_value(("fine.png", png_bytes(fine_noise), "image/png")).run()
    assert [warning.value for warning in app.warning if "No ink found" in warning.value] == [
        "No ink found in this picture: nothing in it stands out from its background (one flat colour, a smooth "
        "shading, or noise too fine to see at 28×28): upload a photo or scan of one handwritten digit."]
    app.file_uploader(key="sketch-upload").set_value(("notes.png", b"not an image", "image/png")).run()
    assert not app.exception
    assert any("not an image" in error.value for error in app.error)
    assert not app.info, "a refused upload shows its error only, not the invitation to upload a picture"


def test_sketch_reads_other_formats_and_refuses_documents_and_animations_with_one_message() -> None:
    """The Sketch upload goes the way of `predict` (tests/test_robustness_images.py): each of these files is a
    prediction of its 7 (the default model), or one `st.error` and nothing else."""
    from tests.test_robustness_images import HEIC_START, _other_formats, _saved, _two_frames

    app = open_app(None, "sketch")
    app.radio(key="sketch.input").set_value("Upload an image").run()
    for name, content in _other_formats().items():
        app.file_uploader(key="sketch-upload").set_value((name, content, "image/png")).run()
        assert_clean(app)
        assert [metric.value for metric in app.metric if metric.label == "Prediction"] == ["7"], name
    refused = {"page.png": (_saved(drawn_one(), "PDF"), "is a PDF document, not a picture"),
               "photo.heic": (HEIC_START, "is a HEIC/HEIF photo"),
               "animated.png": (_two_frames("PNG"), "has more than one frame")}
    for name, (content, words) in refused.items():
        app.file_uploader(key="sketch-upload").set_value((name, content, "image/png")).run()
        assert not app.exception and not app.metric and not app.warning and not app.info, name
        # (the name as typed: Markdown's characters escaped, "page\\.png")
        named = [error for error in app.error if error.value.replace("\\", "").startswith(name)]
        assert [error for error in named if words in error.value], name


def test_sketch_gives_an_upload_one_note_with_advice_it_can_follow() -> None:
    """Noise got two notes, the second one blaming its stroke width; and an uploaded picture of thick strokes was told
    to "choose a thinner stroke width", a slider of the Draw mode."""
    app = open_app(None, "sketch")
    app.radio(key="sketch.input").set_value("Upload an image").run()
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (200, 200), dtype=np.uint8))
    app.file_uploader(key="sketch-upload").set_value(("noise.png", png_bytes(noise), "image/png")).run()
    assert_clean(app)
    [note] = [warning.value for warning in app.warning]
    assert note.startswith("This does not look like one digit on a plain background"), note

    tiny_zero = [[(x * 0.3 + 98, y * 0.3 + 98) for x, y in stroke] for stroke in DIGIT_STROKES[0]]  # ~50 px tall
    blob = rasterise(tiny_zero, 40)  # drawn with a wide pen: its hole is filled in
    app.file_uploader(key="sketch-upload").set_value(("blob.png", png_bytes(blob), "image/png")).run()
    assert_clean(app)
    thick = [warning.value for warning in app.warning if "strokes are very thick" in warning.value]
    assert thick and "stroke width" not in thick[0] and "thinner pen" in thick[0], thick

    # Thick strokes that also leave the model in doubt: one note that says both (a second one said to "try one clear
    # digit on its own", beside the first's "draw it larger or …").
    small_six = png_bytes(rasterise([[(x * 0.4 + 84, y * 0.4 + 84) for x, y in stroke] for stroke in DIGIT_STROKES[6]],
                                    40))
    app.file_uploader(key="sketch-upload").set_value(("six.png", small_six, "image/png")).run()
    assert_clean(app)
    [note] = [warning.value for warning in app.warning]
    assert re.fullmatch(r"This does not look much like a digit to the model: it is only \d+\u00a0% sure of its best guess, "
                        r"and it is unsure below 93\u00a0%\. Its strokes are also very thick for its size, so its loops may "
                        r"be filled in: use a picture of the digit larger or written with a thinner pen\.", note), note


def test_sketch_says_a_number_is_several_digits() -> None:
    """"10" written on the canvas or uploaded was a 6 at 99 %, sure, without a word."""
    number = [[(x - 55, y) for x, y in stroke] for stroke in scaled(DIGIT_STROKES[1], 0.45)] + [
        [(x + 55, y) for x, y in stroke] for stroke in scaled(DIGIT_STROKES[0], 0.45)]
    app = open_app(None, "sketch")
    app.radio(key="sketch.input").set_value("Upload an image").run()
    app.file_uploader(key="sketch-upload").set_value(("ten.png", png_bytes(rasterise(number, 12)), "image/png")).run()
    assert_clean(app)
    assert [warning.value for warning in app.warning] == [
        "This looks like several digits side by side (a number?), and the model reads one digit: whatever it "
        "answers, do not trust it. Use a picture of one digit."]
    assert unsure_badges(app)
    assert any(caption.value.endswith("but unsure: this looks like several digits side by side (see the note)")
               for caption in app.caption), [caption.value for caption in app.caption]


def test_sketch_calls_a_dot_a_dot() -> None:
    """One click on the canvas was read as an 8 or a 0 at 100 %, with a note about noise or about thick strokes."""
    app = open_app(None, "sketch")
    app.radio(key="sketch.input").set_value("Upload an image").run()
    dot = rasterise([[(140, 140), (141, 140)]], 30)
    app.file_uploader(key="sketch-upload").set_value(("dot.png", png_bytes(dot), "image/png")).run()
    assert_clean(app)
    [note] = [warning.value for warning in app.warning]
    assert note.startswith("This is only a dot or a short dash") and "one whole digit" in note, note
    assert unsure_badges(app)
    # The caption says why, not "confidence 99 % (this model is unsure below 93 %)" beside the unsure badge.
    [confidence] = [caption.value for caption in app.caption if caption.value.startswith("confidence")]
    assert "but unsure: this is only a dot or a short dash" in confidence, confidence


def test_sketch_reads_a_picture_a_few_pixels_across() -> None:
    """A 6×6 PNG of a 1 (a line from edge to edge) was a traceback: twice eroded, the "sheet on a desk" it looked
    like had no inside left, and the median level of its marks was NaN."""
    app = open_app(None, "sketch")
    app.radio(key="sketch.input").set_value("Upload an image").run()
    one = Image.new("L", (6, 6), 255)
    ImageDraw.Draw(one).line([(3, 0), (3, 5)], fill=0)
    app.file_uploader(key="sketch-upload").set_value(("tiny1.png", png_bytes(one), "image/png")).run()
    assert_clean(app)
    assert predictions(app) == ["1"]


def test_sketch_says_when_the_active_model_itself_is_weak() -> None:
    """A run stopped after a few batches reads drawings badly; the page blamed the drawing ("does not look much like
    a digit") instead of the model."""
    app = open_app(None, "sketch")
    assert not app.warning, "the default model is not weak"
    default = load_checkpoint(CHECKPOINT_DIR / "default.pt")
    app.session_state[ACTIVE_KEY] = ModelEntry(replace(default, source="run 1",
                                                       metrics={**default.metrics, "test_accuracy": 41.27}), "run")
    app.run()
    assert_clean(app)
    [warning] = [warning.value for warning in app.warning]
    # As the sidebar and Evaluate give it (it read "41.3 %" beside the sidebar's "test accuracy 41.27 %")
    assert warning.startswith("This model reads only 41.27 % of MNIST's test digits right"), warning
    assert "test accuracy 41.27 %" in [caption.value for caption in app.sidebar.caption]


def test_sketch_does_not_blame_a_clear_drawing_for_a_weak_models_doubt() -> None:
    """With a model at chance level, a clear 1 read at 10 % got "This does not look much like a digit … Try one clear
    digit on its own, written large" under the warning that the model itself is weak."""
    app = open_app(None, "sketch")
    default = load_checkpoint(CHECKPOINT_DIR / "default.pt")
    torch.manual_seed(0)
    untrained = build_model(default.model_name, **default.model_kwargs).eval()
    app.session_state[ACTIVE_KEY] = ModelEntry(replace(default, model=untrained, source="run 1",
                                                       metrics={**default.metrics, "test_accuracy": 9.8,
                                                                "confidence_floor": 0.2}), "run")
    app.radio(key="sketch.input").set_value("Upload an image").run()
    app.file_uploader(key="sketch-upload").set_value(("one.png", png_bytes(drawn_one()), "image/png")).run()
    assert_clean(app)
    warnings = [warning.value for warning in app.warning]
    assert warnings[0].startswith("This model reads only 9.80 %"), warnings
    assert not any("does not look much like a digit" in warning for warning in warnings), warnings
    assert any("it is a weak model" in warning for warning in warnings), warnings
    assert unsure_badges(app)


def test_sketch_never_reads_a_confidence_under_the_threshold_as_equal_to_it() -> None:
    """A reading a little under the model's confidence floor was "confidence 93 % (this model is unsure below 93 %)",
    beside an "unsure" badge and a note that it is "only 93 % sure …, and it is unsure below 93 %"."""
    default = load_checkpoint(CHECKPOINT_DIR / "default.pt")
    plus = png_bytes(rasterise([[(140, 60), (140, 220)], [(60, 140), (220, 140)]]))  # not a digit, read below 98 %
    confidence = predict(default.model, open_image(plus), 0.5).confidence
    assert 0.2 < confidence < 0.98, confidence
    floor = (round(confidence * 100) + 0.49) / 100  # above it, yet "33%" both
    assert f"{floor:.0%}" == f"{confidence:.0%}" and floor > confidence
    app = open_app(None, "sketch")
    app.session_state[ACTIVE_KEY] = ModelEntry(replace(default, source="run 1",
                                                       metrics={**default.metrics, "confidence_floor": floor}), "run")
    app.radio(key="sketch.input").set_value("Upload an image").run()
    app.file_uploader(key="sketch-upload").set_value(("plus.png", plus, "image/png")).run()
    assert_clean(app)
    assert unsure_badges(app)
    shown = f"{100 * confidence:.1f}\u00a0%", f"{100 * floor:.1f}\u00a0%"  # (kept on one line: a no-break space)
    assert shown[0] != shown[1]
    assert f"confidence {shown[0]} (this model is unsure below {shown[1]})" in [caption.value for caption in app.caption]
    assert any(f"it is only {shown[0]} sure of its best guess, and it is unsure below {shown[1]}." in warning.value
               for warning in app.warning), [warning.value for warning in app.warning]


def unsure_badges(app: AppTest) -> list[str]:
    """The "unsure" badge beside a Sketch prediction (st.badge is Markdown to AppTest)."""
    return [markdown.value for markdown in app.main.markdown if "badge[" in markdown.value and "unsure" in markdown.value]


def predictions(app: AppTest) -> list[str]:
    return [metric.value for metric in app.metric if metric.label == "Prediction"]


def canvas_opening(app: AppTest) -> dict:
    """The `initial_drawing` the page gives the Sketch canvas (what the browser's canvas draws when it mounts)."""
    canvas = next(element for element in app.main if getattr(element, "type", None) == "bidi_component")
    return json.loads(canvas.proto.json)["initialDrawing"]


# A "1" as the canvas would send it: fabric.js JSON for one vertical stroke, and its RGBA pixels.
ONE_STROKES = {"version": "6.0.0", "objects": [{"type": "Path", "left": 129, "top": 29, "width": 0, "height": 200,
                                                "stroke": "#FFFFFF", "strokeWidth": 22, "fill": None,
                                                "path": [["M", 140, 40], ["L", 140, 240]]}]}


def test_sketch_keeps_the_drawing_across_pages_and_input_modes_until_cleared() -> None:
    """The canvas is mounted again with the kept strokes (the browser test checks that it draws them) and the page
    reads them at once: a canvas mounted with strokes sends nothing until they change."""
    app = open_app(None)
    app.session_state[DRAWING_KEY] = KeptDrawing(ONE_STROKES, np.asarray(drawn_one().convert("RGBA")))
    app.switch_page(PAGES["sketch"]).run()  # as after drawing, leaving and coming back
    assert_clean(app)
    assert canvas_opening(app)["objects"] == ONE_STROKES["objects"]
    assert predictions(app) == ["1"]

    app.slider(key="sketch.stroke_width").set_value(30).run()
    assert canvas_opening(app)["objects"] == ONE_STROKES["objects"], "a wider brush keeps the drawing"
    assert predictions(app) == ["1"]
    app.switch_page(PAGES["train"]).run()
    app.switch_page(PAGES["sketch"]).run()
    assert canvas_opening(app)["objects"] == ONE_STROKES["objects"]
    assert predictions(app) == ["1"]
    app.radio(key="sketch.input").set_value("Upload an image").run()
    assert not predictions(app)
    app.radio(key="sketch.input").set_value("Draw").run()
    assert canvas_opening(app)["objects"] == ONE_STROKES["objects"]
    assert predictions(app) == ["1"]

    app.button(key="sketch-clear").click().run()
    assert_clean(app)
    assert canvas_opening(app)["objects"] == [] and not predictions(app)
    assert any("The canvas is empty" in info.value for info in app.info)
    app.switch_page(PAGES["train"]).run()
    app.switch_page(PAGES["sketch"]).run()
    assert canvas_opening(app)["objects"] == [] and not predictions(app), "a cleared drawing does not come back"


def test_sketch_keeps_the_uploaded_picture_across_pages_and_reloads_until_replaced_or_removed() -> None:
    app = open_app(None, "sketch")
    app.radio(key="sketch.input").set_value("Upload an image").run()
    app.file_uploader(key="sketch-upload").set_value(("one.png", png_bytes(drawn_one()), "image/png")).run()
    assert predictions(app) == ["1"]
    app.radio(key="sketch.input").set_value("Draw").run()
    app.switch_page(PAGES["train"]).run()
    app.switch_page(PAGES["sketch"]).run()
    app.radio(key="sketch.input").set_value("Upload an image").run()
    assert_clean(app)
    assert predictions(app) == ["1"], "the picture is read again"
    assert any("one.png" in image.captions for image in app.get("image")), "and shown with its name"
    reloaded = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=RUN_TIMEOUT_S)
    reloaded.query_params[RESUME_PARAM] = app.query_params[RESUME_PARAM]  # a reload (see the reload test below)
    reloaded.run()
    reloaded.switch_page(PAGES["sketch"]).run()
    assert_clean(reloaded)
    assert predictions(reloaded) == ["1"], "a reload keeps the picture too"

    app.button(key="sketch-remove-picture").click().run()
    assert_clean(app)
    assert not predictions(app) and PICTURE_KEY not in app.session_state
    assert any("Upload a picture" in info.value for info in app.info)

    # A refused picture is not kept, and it replaces the one before it (the user chose another file).
    app.file_uploader(key="sketch-upload").set_value(("one.png", png_bytes(drawn_one()), "image/png")).run()
    app.file_uploader(key="sketch-upload").set_value(("notes.png", b"not an image", "image/png")).run()
    assert any("not an image" in error.value for error in app.error)
    app.radio(key="sketch.input").set_value("Draw").run()
    app.radio(key="sketch.input").set_value("Upload an image").run()
    assert_clean(app)
    assert not predictions(app) and PICTURE_KEY not in app.session_state
    # The uploader's own ✕ removes it too.
    app.file_uploader(key="sketch-upload").set_value(("one.png", png_bytes(drawn_one()), "image/png")).run()
    app.file_uploader(key="sketch-upload").set_value(None).run()
    assert not predictions(app) and PICTURE_KEY not in app.session_state


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders_with_the_default_model(tiny_mnist, page: str) -> None:
    app = open_app(tiny_mnist, page)
    assert_clean(app)
    assert app.sidebar.markdown, "the sidebar shows device, dataset and active model"


def deep_picture(depth: str) -> Image.Image:
    """`drawn_one` at a bit depth JPEG cannot hold (PIL modes I;16, I and F)."""
    levels = np.asarray(drawn_one(), dtype=np.float64) / 255
    if depth == "16-bit":
        return Image.fromarray((levels * 65535).astype(np.uint16))
    if depth == "12-bit":  # a 12-bit scanner's TIFF: 16-bit pixels that never go above 4095
        return Image.fromarray((levels * 4095).astype(np.uint16))
    if depth == "32-bit":
        return Image.fromarray((levels * 1000).astype(np.int32))
    return Image.fromarray(levels.astype(np.float32))  # "float"


@pytest.mark.parametrize("name, depth, file_format", [
    ("one16.png", "16-bit", "PNG"), ("one12.tif", "12-bit", "TIFF"), ("one32.tif", "32-bit", "TIFF"),
    ("onefloat.tif", "float", "TIFF")])
def test_sketch_previews_and_reads_pictures_deeper_than_8_bits(name: str, depth: str, file_format: str) -> None:
    app = open_app(None, "sketch")
    app.radio(key="sketch.input").set_value("Upload an image").run()
    app.file_uploader(key="sketch-upload").set_value((name, image_bytes(deep_picture(depth), file_format),
                                                      f"image/{file_format.lower()}")).run()
    assert_clean(app)
    assert any(name in image.captions for image in app.get("image")), "the uploaded picture is previewed"
    assert [metric.value for metric in app.metric if metric.label == "Prediction"] == ["1"]


@pytest.mark.parametrize("size", [(6000, 10), (6000, 20), (10, 6000)])
def test_sketch_previews_very_wide_or_tall_pictures(size: tuple[int, int]) -> None:
    strip = Image.new("L", size, 255)
    ImageDraw.Draw(strip).line([(0, 0), (size[0] - 1, size[1] - 1)], fill=0, width=3)
    app = open_app(None, "sketch")
    app.radio(key="sketch.input").set_value("Upload an image").run()
    app.file_uploader(key="sketch-upload").set_value(("strip.png", png_bytes(strip), "image/png")).run()
    assert_clean(app)
    assert any("strip.png" in image.captions for image in app.get("image"))


@pytest.mark.parametrize("mode", PILLOW_MODES)
def test_the_sketch_preview_shows_a_picture_of_any_pillow_mode(mode: str) -> None:
    """Premultiplied gray+alpha (La) could not be converted for display (an uncaught ValueError on the page)."""
    original = digit_image("ring", size=600)
    preview = picture_preview(in_mode(original, mode), 280)
    assert preview.mode in ("L", "LA", "RGB", "RGBA") and preview.size == (280, 280)
    as_shown = np.asarray(preview.convert("L"), dtype=np.float32)
    assert np.abs(as_shown - np.asarray(picture_preview(original, 280), dtype=np.float32)).mean() < 2


def test_a_new_run_is_offered_for_saving_and_a_stopped_run_reads_consistently(tiny_mnist) -> None:
    app = open_app(tiny_mnist, "train")
    configure_tiny_run(app, model="fast", epochs=1)
    app.button(key="train-start").click().run()
    wait_for_job([app])
    configure_tiny_run(app, model="seed-net", epochs=30, seed=1)
    app.button(key="train-start").click().run()
    wait_for_job([app], until=lambda snapshot: snapshot.step > 0)
    app.button(key="train-stop").click().run()
    wait_for_job([app])
    assert_clean(app)
    stopped = app.session_state[JOB_KEY].snapshot()
    assert stopped.status == STOPPED

    # The run history says how far the stopped run got in batches too (its epochs alone can round to nothing).
    history = next(table.value for table in app.dataframe if "settings" in table.value.columns)
    assert history["epochs"][1] == epochs_shown(stopped.epoch) and history["batches"][1] == stopped.step, (
        list(history["epochs"]), list(history["batches"]), stopped.step)
    assert history["epochs"][0] == 1

    # Save offers the run that just ended (the active model), not the one chosen before it existed.
    run_choice = next(selectbox for selectbox in app.selectbox if selectbox.label == "Run")
    assert run_choice.value == 1 and "run 2 (stopped early)" in run_choice.format_func(run_choice.value)
    # A stopped run has no time left: the progress text agrees with the ETA metric.
    assert [metric.value for metric in app.metric if metric.label == "ETA"] == ["—"]
    progress = app.get("progress")[0].proto.text
    assert not re.search(r"ETA [\d,]+ s", progress), progress
    # Its evaluations (the last one at the epoch where it stopped) are drawn on an epoch axis from 0, not Plotly's
    # -0.5 to 1 around a lone point.
    figure = chart_spec(app, "epoch-curves")
    last_epoch = max(max(trace["x"]) for trace in figure["data"])
    for axis in ("xaxis", "xaxis2"):
        low, high = figure["layout"][axis]["range"]
        assert low == 0 and last_epoch < high < last_epoch + 1, figure["layout"][axis]
    # The per-batch charts start at epoch 0 too (their first report comes a few batches in).
    for key in ("batch-loss", "learning-rate"):
        assert chart_spec(app, key)["layout"]["xaxis"]["rangemode"] == "tozero"
    # The run column is wide enough for "run 2 (stopped early)".
    run_width = column_config(app, "run")["width"]
    assert run_width in ("medium", "large") or run_width >= 200


def test_comparing_fewer_than_two_asks_for_two_when_there_are_more(tiny_mnist) -> None:
    app = open_app(tiny_mnist)
    default = load_checkpoint(CHECKPOINT_DIR / "default.pt")
    app.session_state[RUNS_KEY] = [ModelEntry(replace(default, source="run 1"), "run")]
    app.switch_page(PAGES["evaluate"]).run()
    compare = app.multiselect(key="evaluate.compare")
    compare.set_value(compare.value[:1]).run()
    assert_clean(app)
    captions = [caption.value for caption in app.caption]
    assert "Pick at least two models to compare them." in captions
    assert not any(caption.startswith("Train a run") for caption in captions), captions


def test_the_comparison_follows_new_runs_until_the_user_picks(tiny_mnist) -> None:
    """Evaluate opened while the first run trained held default.pt alone, and still asked for two models once the
    run had finished. Until the user picks, the selection follows the models there are; their own pick is kept,
    less a file deleted meanwhile, which is said."""
    spare = CHECKPOINT_DIR / f"spare-{uuid.uuid4().hex[:8]}.pt"
    try:
        app = open_app(tiny_mnist)
        default = load_checkpoint(CHECKPOINT_DIR / "default.pt")
        app.switch_page(PAGES["evaluate"]).run()  # no run yet (the first one is training)
        assert app.multiselect(key="evaluate.compare").value == ["checkpoints/default.pt"]
        app.session_state[RUNS_KEY] = [ModelEntry(replace(default, source="run 1"), "run")]  # it finished
        app.run()
        assert_clean(app)
        assert app.multiselect(key="evaluate.compare").value == ["run 1 · fast", "checkpoints/default.pt"]
        [table] = [frame.value for frame in app.dataframe if "architecture" in frame.value.columns]
        assert list(table["model"]) == ["run 1 · fast", "checkpoints/default.pt"]
        assert not any(caption.value.startswith("Pick at least two") for caption in app.caption)

        spare.write_bytes((CHECKPOINT_DIR / "default.pt").read_bytes())
        app.run()
        picked = ["checkpoints/default.pt", f"checkpoints/{spare.name}", "run 1 · fast"]
        app.multiselect(key="evaluate.compare").set_value(picked).run()  # the user's own pick
        app.session_state[RUNS_KEY] = [*app.session_state[RUNS_KEY],
                                       ModelEntry(replace(default, source="run 2"), "run")]
        app.run()
        assert app.multiselect(key="evaluate.compare").value == picked, "a new run does not change the user's pick"
        spare.unlink()
        app.switch_page(PAGES["train"]).run()  # and back: the pick is kept across pages
        app.switch_page(PAGES["evaluate"]).run()
        assert_clean(app)
        assert app.multiselect(key="evaluate.compare").value == picked[::2], "a deleted file leaves it"
        assert any(caption.value.replace("\\", "").startswith(f"checkpoints/{spare.name} is no longer there to compare")
                   for caption in app.caption), "…and is said to have left (it vanished without a word)"
    finally:
        spare.unlink(missing_ok=True)


def test_a_run_stopped_after_its_first_evaluation_is_charted_from_epoch_0() -> None:
    lone_record = {"epoch": 0.25, "train_loss": 0.9, "train_accuracy": 70.0, "test_loss": 0.8, "test_accuracy": 75.0}
    layout = epoch_curves({"run": [lone_record]}).layout
    for axis in (layout.xaxis, layout.xaxis2):
        assert axis.range[0] == 0 and 0.25 < axis.range[1] < 0.3  # not Plotly's -0.5 to 1 around the lone point


def test_evaluate_names_every_compared_curve_and_labels_its_numbers(tiny_mnist) -> None:
    app = open_app(tiny_mnist)
    default = load_checkpoint(CHECKPOINT_DIR / "default.pt")
    app.session_state[RUNS_KEY] = [ModelEntry(replace(default, source="run 1"), "run")]
    app.switch_page(PAGES["evaluate"]).run()
    assert_clean(app)

    # Every curve can be matched to its run: a legend entry in its group, drawn in the same colour.
    traces = chart_spec(app, "compare-curves")["data"]
    assert len(traces) == 4  # two runs × (test loss, test accuracy)
    legend_colours = {trace["legendgroup"]: trace["line"]["color"] for trace in traces
                      if trace.get("showlegend", True)}
    assert len(legend_colours) == 2 and len(set(legend_colours.values())) == 2
    assert all(legend_colours[trace["legendgroup"]] == trace["line"]["color"] for trace in traces)
    assert column_config(app, "parameters")["type_config"]["format"] == "%,d"  # 122,538 like the rest of the page

    app.toggle(key="evaluate.normalised").set_value(True).run()
    heatmap = chart_spec(app, "confusion-matrix-0")["data"][0]  # (its key moves on with each click on it)
    assert heatmap["colorbar"]["ticksuffix"] == " %", "the colour bar reads in percent, like the cells"
    assert heatmap["colorbar"]["title"]["text"] == "share", "the colour bar says what it measures"
    clickable = chart_spec(app, "confusion-matrix-0")["data"][1]
    assert "%{customdata[2]:,} images" in clickable["hovertemplate"], "1,132 on hover, as in the cell"
    captions = [caption for image in app.get("image") for caption in image.captions if caption.startswith("#")]
    assert captions and all(caption.endswith("sure") for caption in captions), captions


def test_other_pages_show_the_running_jobs_progress_and_keep_its_model_when_it_ends(tiny_mnist) -> None:
    app = open_app(tiny_mnist, "train")
    configure_tiny_run(app, epochs=30)
    app.button(key="train-start").click().run()
    wait_for_job([app], until=lambda snapshot: snapshot.step > 0)
    assert any("progress on this page" in caption.value for caption in app.sidebar.caption)
    app.switch_page(PAGES["sketch"]).run()
    assert_clean(app)
    assert any(caption.value.startswith(":material/hourglass_top: training seed-net: ")
               and caption.value.endswith("%") for caption in app.sidebar.caption)
    app.session_state[JOB_KEY].stop()
    wait_for_job([app])
    app.run()
    assert not any("hourglass" in caption.value for caption in app.sidebar.caption)
    assert "run 1" in app.sidebar.markdown[-1].value  # the stopped run is the active model


def test_a_reloaded_tab_takes_its_runs_model_and_settings_back(tiny_mnist) -> None:
    first = open_app(tiny_mnist, "train")
    configure_tiny_run(first, model="seed-net", seed=7)
    first.button(key="train-start").click().run()
    wait_for_job([first])
    first.run()  # collects the finished run
    token = first.query_params[RESUME_PARAM]
    assert first.session_state[ACTIVE_KEY].source == "run 1"

    # A reload is a new session on the same URL: it carries the token (AppTest has no server to say whether the
    # first session's tab is still open, so it counts as closed, as after a reload).
    reloaded = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=RUN_TIMEOUT_S)
    reloaded.session_state[TEST_DATA_KEY] = tiny_mnist
    reloaded.query_params[RESUME_PARAM] = token
    reloaded.run()
    reloaded.switch_page(PAGES["train"]).run()
    assert_clean(reloaded)
    assert reloaded.session_state[ACTIVE_KEY] is first.session_state[ACTIVE_KEY]
    assert [entry.source for entry in reloaded.session_state[RUNS_KEY]] == ["run 1"]
    assert reloaded.session_state[JOB_KEY] is first.session_state[JOB_KEY]
    assert reloaded.number_input(key="train.seed").value == 7  # the settings too
    assert reloaded.query_params[RESUME_PARAM] == token

    stranger = open_app(tiny_mnist, "train")  # no token, or one nobody parked: a fresh session of its own
    assert stranger.query_params[RESUME_PARAM] != token
    assert RUNS_KEY not in stranger.session_state or not stranger.session_state[RUNS_KEY]
    unknown = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=RUN_TIMEOUT_S)
    unknown.query_params[RESUME_PARAM] = "0" * 32
    unknown.run()
    assert_clean(unknown)
    assert unknown.query_params[RESUME_PARAM] != "0" * 32


def test_a_tab_whose_session_the_server_no_longer_keeps_is_told_so_once(tiny_mnist) -> None:
    """After a server restart the tab reconnects with its old token, which nobody parked: the page came back with the
    default settings and no runs, and nothing said why."""
    app = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=RUN_TIMEOUT_S)
    app.session_state[TEST_DATA_KEY] = tiny_mnist
    app.query_params[RESUME_PARAM] = "0" * 32  # a token of the server before the restart
    app.run()
    assert_clean(app)
    assert [warning.value for warning in app.warning] == [LOST_SESSION_NOTE]
    assert [toast.value for toast in app.toast] == ["This tab is a new session: its earlier one is no longer on the "
                                                    "server (see the note at the top)."]
    assert app.query_params[RESUME_PARAM] != "0" * 32
    app.switch_page(PAGES["train"]).run()  # said once, not on every page
    assert LOST_SESSION_NOTE not in [warning.value for warning in app.warning]

    fresh = open_app(tiny_mnist)  # a URL without a token is simply a new session
    reloaded = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=RUN_TIMEOUT_S)
    reloaded.session_state[TEST_DATA_KEY] = tiny_mnist
    reloaded.query_params[RESUME_PARAM] = fresh.query_params[RESUME_PARAM]  # a reload: the session is taken back
    reloaded.run()
    for tab in (fresh, reloaded):
        assert LOST_SESSION_NOTE not in [warning.value for warning in tab.warning]


def test_links_to_the_pages_carry_the_session_token(tiny_mnist) -> None:
    """A plain page link cleared the URL's `?session=…`, the page set it again, and the browser got two history entries
    per page visited: Back first went to the same page without the token (nothing changed on screen), and only a
    second press went back a page (tests/e2e/test_e2e_pages.py::test_back_goes_to_the_page_before_in_one_press)."""
    app = open_app(tiny_mnist)
    token = app.query_params[RESUME_PARAM]
    for page in (None, *PAGES):
        if page is not None:
            app.switch_page(PAGES[page]).run()
        assert_clean(app)
        links = app.get("page_link")
        assert len(links) >= 5, f"{page or 'home'}: {len(links)} page links"  # the sidebar's five, Home's cards
        assert [link.proto.query_string for link in links] == [f"{RESUME_PARAM}={token}"] * len(links), page


def test_a_reloaded_tab_keeps_its_uploaded_checkpoint(tiny_mnist) -> None:
    """The Sketch page's picture came back after a reload, the Evaluate page's checkpoint did not."""
    first = open_app(tiny_mnist, "evaluate")
    first.radio(key="evaluate.source").set_value("Upload").run()
    colleague = ("colleague.pt", (CHECKPOINT_DIR / "default.pt").read_bytes(), "application/x")
    first.file_uploader(key="evaluate-upload").set_value(colleague).run()  # then straight to the reload
    reloaded = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=RUN_TIMEOUT_S)
    reloaded.session_state[TEST_DATA_KEY] = tiny_mnist
    reloaded.query_params[RESUME_PARAM] = first.query_params[RESUME_PARAM]
    reloaded.run()
    reloaded.switch_page(PAGES["evaluate"]).run()
    assert_clean(reloaded)
    assert reloaded.radio(key="evaluate.source").value == "Upload"
    assert any("from upload: colleague.pt" in caption.value.replace("\\", "") for caption in reloaded.caption)


def test_three_models_compared_side_by_side(tiny_mnist) -> None:
    app = open_app(tiny_mnist)
    default = load_checkpoint(CHECKPOINT_DIR / "default.pt")
    app.session_state[RUNS_KEY] = [ModelEntry(replace(default, source=f"run {n}"), "run") for n in (1, 2)]
    app.switch_page(PAGES["evaluate"]).run()
    compare = app.multiselect(key="evaluate.compare")
    assert len(compare.options) >= 3
    labels = [label for label in compare.options if "run" in label] + \
        [label for label in compare.options if "default.pt" in label][:1]
    compare.set_value(labels).run()
    assert_clean(app)
    [table] = [frame.value for frame in app.dataframe if "test accuracy %" in frame.value.columns
               and "architecture" in frame.value.columns]
    assert list(table["model"]) == labels
    traces = chart_spec(app, "compare-curves")["data"]
    assert len(traces) == 6  # three models × (test loss, test accuracy)
    assert len({trace["line"]["color"] for trace in traces}) == 3


def test_compared_models_without_a_history_are_named_not_left_off_the_chart_silently(tiny_mnist) -> None:
    """Of three models compared, two without a history: the chart drew the third's train and test curves under the
    legend "train" / "test", naming no model, and said nothing of the other two."""
    app = open_app(tiny_mnist)
    default = load_checkpoint(CHECKPOINT_DIR / "default.pt")
    app.session_state[RUNS_KEY] = [ModelEntry(replace(default, source="run 1", history=[]), "run"),
                                   ModelEntry(replace(default, source="run 2", history=[]), "run")]
    app.switch_page(PAGES["evaluate"]).run()
    compare = app.multiselect(key="evaluate.compare")
    default_label = next(label for label in compare.options if "default.pt" in label)
    compare.set_value(["run 2 · fast", "run 1 · fast", default_label]).run()
    assert_clean(app)
    traces = chart_spec(app, "compare-curves")["data"]
    # the default's test loss and accuracy, named as picked (they read "train" and "test", of no model named)
    assert [trace["name"] for trace in traces] == [default_label] * 2, traces
    said = "No curves for run 2 · fast, run 1 · fast: they hold no per-epoch history."
    captions = [caption.value.replace("\\", "") for caption in app.caption]  # (Markdown's escapes off)
    assert said in captions, captions

    compare.set_value(["run 2 · fast", "run 1 · fast"]).run()  # none with a history: no chart, and why
    assert_clean(app)
    assert not [chart for chart in app.get("plotly_chart") if chart.key == "compare-curves"]
    assert said in [caption.value.replace("\\", "") for caption in app.caption]


def test_a_checkpoint_with_odd_settings_and_metrics_is_compared_without_them(tiny_mnist) -> None:
    """A file whose config and metrics held 2**70 epochs, text in number fields and a 1e300 % accuracy: the Compare
    table was an exception (Arrow holds int64), and the sidebar read "test accuracy 1000000…00.00 %"."""
    default = load_checkpoint(CHECKPOINT_DIR / "default.pt")
    odd = CHECKPOINT_DIR / f"odd-{uuid.uuid4().hex[:8]}.pt"
    payload = ModelEntry(default, "file").payload()
    payload["config"] = {**payload["config"], "epochs": 2**70, "train_subset": "**many** | <b>x</b>"}
    payload["metrics"] = {**payload["metrics"], "epochs_done": "<script>", "train_seconds": True,
                          "test_accuracy": 1e300}
    odd.write_bytes(checkpoint_bytes(payload))
    try:
        app = open_app(tiny_mnist, "evaluate")
        label = f"checkpoints/{odd.name}"
        default_label = next(o for o in app.multiselect(key="evaluate.compare").options if "default.pt" in o)
        app.multiselect(key="evaluate.compare").set_value([default_label, label]).run()
        assert_clean(app)
        [table] = [frame.value for frame in app.dataframe if "architecture" in frame.value.columns]
        row = table.set_index("model").loc[label]
        assert row[["epochs", "train seconds", "training images"]].isna().all(), row
        assert table.set_index("model").loc[default_label, "epochs"] == default.metrics["epochs_done"]
        app.radio(key="evaluate.source").set_value("Saved or trained").run()
        app.selectbox(key="evaluate.choice").set_value(label).run()
        app.button(key="evaluate-activate").click().run()
        assert_clean(app)
        assert label in app.sidebar.markdown[-1].value.replace("\\", "")
        assert not any("test accuracy" in caption.value for caption in app.sidebar.caption)
    finally:
        odd.unlink(missing_ok=True)


def test_an_uploads_name_is_shown_as_typed_not_as_markdown(tiny_mnist) -> None:
    """`**b** _i_ [l](x).pt` showed in the sidebar and on Evaluate in bold and italics, with a link to x."""
    name = "**b** _i_ <b>h</b> [l](x).pt"
    app = open_app(tiny_mnist, "evaluate")
    app.radio(key="evaluate.source").set_value("Upload").run()
    upload = (name, default_with_other_bytes(), "application/octet-stream")
    app.file_uploader(key="evaluate-upload").set_value(upload).run()
    app.button(key="evaluate-activate").click().run()
    assert_clean(app)
    for shown in (app.sidebar.markdown[-1].value, next(c.value for c in app.caption if "from upload" in c.value)):
        assert "**b**" not in shown and "](x)" not in shown, shown  # every Markdown character escaped…
        assert f"upload: {name}" in shown.replace("\\", ""), shown  # …and nothing else changed
    app.switch_page(PAGES["sketch"]).run()
    [reading] = [c.value for c in app.caption if c.value.startswith("Reading with")]
    assert "**b**" not in reading and f"upload: {name}" in reading.replace("\\", ""), reading

    # A refused file's error names it as typed too, on Evaluate and on Sketch.
    app.switch_page(PAGES["evaluate"]).run()
    app.file_uploader(key="evaluate-upload").set_value(("**bad** [l](x).pt", b"notes", "application/x")).run()
    [refused] = [error.value for error in app.error]
    assert "**bad**" not in refused and "Upload: **bad** [l](x).pt is not" in refused.replace("\\", ""), refused
    app.switch_page(PAGES["sketch"]).run()
    app.radio(key="sketch.input").set_value("Upload an image").run()
    app.file_uploader(key="sketch-upload").set_value(("**bad** [l](x).png", b"notes", "image/png")).run()
    assert not app.exception
    [refused] = [error.value for error in app.error]
    assert "**bad**" not in refused and refused.replace("\\", "").startswith("**bad** [l](x).png is not"), refused


def perfect_report(split: MnistSplit) -> EvaluationReport:
    """What `evaluate` gives for a model that reads every image of `split` right, at 100 %."""
    labels = split.labels
    confusion = confusion_matrix(labels, labels)
    return EvaluationReport(100.0, 0.0, confusion.tolist(), per_class_metrics(confusion), labels.clone(),
                            torch.ones(len(labels)), torch.nn.functional.one_hot(labels, 10).float(), 1.0)


def test_the_galleries_of_a_perfect_model_say_why_they_are_empty(tiny_mnist, monkeypatch) -> None:
    """A model that reads every test image right had "Nothing to show." under its most confident mistakes."""
    monkeypatch.setattr(resources, "evaluate", lambda model, split: perfect_report(split))
    app = open_app(tiny_mnist)
    default = load_checkpoint(CHECKPOINT_DIR / "default.pt")
    app.session_state[ACTIVE_KEY] = ModelEntry(replace(default, source="run 1"), "run")  # a new key: not cached
    app.switch_page(PAGES["evaluate"]).run()
    assert_clean(app)
    captions = [caption.value for caption in app.main.caption]
    assert "No mistakes: the model reads every test image right." in captions, captions
    assert "Nothing to show." not in captions


def test_the_cell_summary_reads_as_english(tiny_mnist) -> None:
    """"1 test image", "of an 8" (it read "1 test images of a 8")."""
    one_of_each = Mnist(tiny_mnist.train, MnistSplit(tiny_mnist.test.images[:10], tiny_mnist.test.labels[:10]))
    app = open_app(one_of_each, "evaluate")
    confusion = evaluate(load_checkpoint(CHECKPOINT_DIR / "default.pt").model, one_of_each.test).confusion
    app.selectbox(key="evaluate.true").set_value(8).run()
    app.selectbox(key="evaluate.predicted").set_value(confusion[8].index(1)).run()  # the one 8's cell
    assert_clean(app)
    assert any(md.value.startswith("**1** test image of an **8** read as") for md in app.markdown), (
        [md.value for md in app.markdown])


def test_an_empty_cell_says_so_once(tiny_mnist) -> None:
    """A cell with no images read "0 test images of a 0 read as 1" above "Nothing to show.": the same thing twice."""
    one_of_each = Mnist(tiny_mnist.train, MnistSplit(tiny_mnist.test.images[:10], tiny_mnist.test.labels[:10]))
    app = open_app(one_of_each, "evaluate")
    confusion = evaluate(load_checkpoint(CHECKPOINT_DIR / "default.pt").model, one_of_each.test).confusion
    app.selectbox(key="evaluate.true").set_value(8).run()
    app.selectbox(key="evaluate.predicted").set_value(confusion[8].index(0)).run()  # a cell no 8 is read into
    assert_clean(app)
    texts = [md.value for md in app.markdown] + [caption.value for caption in app.caption]
    assert f"No test image of an **8** is read as **{confusion[8].index(0)}**." in texts, texts
    assert not [text for text in texts if text.startswith("**0**")], texts
    right = sum(confusion[digit][digit] for digit in range(10))
    # (the mistakes and correct galleries say so when they are empty)
    assert texts.count("No mistakes: the model reads every test image right.") == (right == 10), texts
    assert texts.count("The model reads no test image right.") == (right == 0), texts


def cell_picker(app: AppTest) -> tuple[int, int]:
    return app.selectbox(key="evaluate.true").value, app.selectbox(key="evaluate.predicted").value


def test_the_cell_picker_starts_at_each_models_commonest_mistake(tiny_mnist) -> None:
    app = open_app(tiny_mnist)
    default = load_checkpoint(CHECKPOINT_DIR / "default.pt")
    untrained = replace(default, model=build_model("seed-net").eval(), model_name="seed-net", source="run 1")
    app.session_state[RUNS_KEY] = [ModelEntry(untrained, "run")]
    app.switch_page(PAGES["evaluate"]).run()
    assert_clean(app)
    assert cell_picker(app) == most_confused(evaluate(default.model, tiny_mnist.test).confusion)
    app.selectbox(key="evaluate.true").set_value(3).run()
    app.selectbox(key="evaluate.predicted").set_value(3).run()
    app.toggle(key="evaluate.normalised").set_value(True).run()
    assert cell_picker(app) == (3, 3), "a rerun with the same model keeps the user's cell"

    # Another model: its own commonest mistake, not the cell picked for the previous one.
    app.radio(key="evaluate.source").set_value("Saved or trained").run()
    app.selectbox(key="evaluate.choice").set_value("run 1 · seed-net").run()
    assert_clean(app)
    expected = most_confused(evaluate(untrained.model, tiny_mnist.test).confusion)
    assert expected != (3, 3) and cell_picker(app) == expected
    assert any(f"read as **{expected[1]}**" in md.value for md in app.markdown)
    app.radio(key="evaluate.source").set_value("Active model").run()
    assert cell_picker(app) == most_confused(evaluate(default.model, tiny_mnist.test).confusion)


def test_a_checkpoint_that_cannot_be_loaded_is_left_out_of_the_comparison(tiny_mnist) -> None:
    broken = CHECKPOINT_DIR / f"broken-{uuid.uuid4().hex[:8]}.pt"
    broken.write_bytes(b"PK\x03\x04 not really a model")
    try:
        app = open_app(tiny_mnist)
        default = load_checkpoint(CHECKPOINT_DIR / "default.pt")
        app.session_state[RUNS_KEY] = [ModelEntry(replace(default, source=f"run {n}"), "run") for n in (1, 2)]
        app.switch_page(PAGES["evaluate"]).run()
        compare = app.multiselect(key="evaluate.compare")
        name = f"checkpoints/{broken.name}"
        picked = ["run 2 · fast", name, "run 1 · fast"]
        assert set(picked) <= set(compare.options)
        compare.set_value(picked).run()
        assert not app.exception
        # Named once, with why, and what happens to it; not once per widget or with a traceback.
        [error] = [error.value.replace("\\", "") for error in app.error]  # (Markdown's escapes off)
        assert error.count(name) == 1 and error.startswith(name), error
        assert "not a readable PyTorch file" in error and error.endswith(" It is left out of the comparison."), error
        assert "Traceback" not in error
        [table] = [frame.value for frame in app.dataframe if "architecture" in frame.value.columns]
        assert list(table["model"]) == ["run 2 · fast", "run 1 · fast"], "the rest are still compared"
    finally:
        broken.unlink(missing_ok=True)


def test_a_picked_checkpoint_deleted_from_disk_is_said_to_be_gone(tiny_mnist) -> None:
    """Picked in "Saved or trained", made active, deleted: after a reload the picker silently showed another model
    while the sidebar still named the deleted file as the active one."""
    doomed = CHECKPOINT_DIR / f"doomed-{uuid.uuid4().hex[:8]}.pt"
    doomed.write_bytes(default_with_other_bytes())
    label = f"checkpoints/{doomed.name}"
    try:
        app = open_app(tiny_mnist, "evaluate")
        app.radio(key="evaluate.source").set_value("Saved or trained").run()
        app.selectbox(key="evaluate.choice").set_value(label).run()
        app.button(key="evaluate-activate").click().run()
        assert not any("gone from disk" in caption.value for caption in app.sidebar.caption)
    finally:
        doomed.unlink()
    reloaded = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=RUN_TIMEOUT_S)
    reloaded.session_state[TEST_DATA_KEY] = tiny_mnist
    reloaded.query_params[RESUME_PARAM] = app.query_params[RESUME_PARAM]
    reloaded.run()
    default = load_checkpoint(CHECKPOINT_DIR / "default.pt")
    reloaded.session_state[RUNS_KEY] = [ModelEntry(replace(default, source="run 1"), "run")]  # another pick
    reloaded.switch_page(PAGES["evaluate"]).run()
    assert_clean(reloaded)
    assert reloaded.selectbox(key="evaluate.choice").value != label
    assert [info.value.replace("\\", "") for info in reloaded.info] == [
        f"{label} is gone from disk (deleted or moved), so another model is picked here. It is still the active "
        "model: it stays usable while this session keeps it in memory."]
    assert label in reloaded.sidebar.markdown[-1].value.replace("\\", "")
    assert any("its file is gone from disk" in caption.value for caption in reloaded.sidebar.caption)
    other = next(option for option in reloaded.selectbox(key="evaluate.choice").options
                 if option != reloaded.selectbox(key="evaluate.choice").value)
    reloaded.selectbox(key="evaluate.choice").set_value(other).run()
    assert not reloaded.info, "said until another pick"


def test_the_comparison_does_not_open_on_a_broken_checkpoint(tiny_mnist) -> None:
    """It opened on the two newest files: a broken one among them greeted the user with an error about a file they had
    not picked."""
    broken = CHECKPOINT_DIR / f"broken-{uuid.uuid4().hex[:8]}.pt"
    broken.write_bytes(b"half a copied file")  # the newest file
    try:
        app = open_app(tiny_mnist, "evaluate")
        assert_clean(app)
        compare = app.multiselect(key="evaluate.compare")
        assert f"checkpoints/{broken.name}" in compare.options and f"checkpoints/{broken.name}" not in compare.value
        assert compare.value[0] == "checkpoints/default.pt"
    finally:
        broken.unlink(missing_ok=True)


def test_a_pressed_stop_says_it_is_stopping_until_the_batch_ends(tiny_mnist) -> None:
    """A batch of a big model can take seconds on a CPU (s5-net: ~5 s); Stop stayed live and the progress text
    unchanged meanwhile, so the press looked ignored."""
    app = open_app(tiny_mnist, "train")
    # a job that never starts stands for one in the middle of a long batch: it cannot end before the page looks
    app.session_state[JOB_KEY] = TrainingJob(preset_config("fastest to 99 %"), tiny_mnist)
    app.run()
    assert not app.button(key="train-stop").disabled
    app.button(key="train-stop").click().run()
    assert_clean(app)
    assert app.get("progress")[0].proto.text == "Stopping after the current batch…"
    assert app.button(key="train-stop").disabled


def test_settings_changed_while_a_run_trains_are_said_to_be_for_the_next_run(tiny_mnist) -> None:
    """The settings stay live while a run trains: with the model changed to s5-net, the page showed s5-net's card and
    593,200 parameters above the progress of the seed-net run under way, and nothing said which was training."""
    app = open_app(tiny_mnist, "train")
    # a job that never starts stands for one training on, started with the settings the page opens on (its preset,
    # the model's knobs spelled out as the page does)
    started_with = replace(preset_config("fastest to 99 %"),
                           model_kwargs={name: knob.default for name, knob in REGISTRY["fast"].knobs.items()})
    app.session_state[JOB_KEY] = TrainingJob(with_live_reporting(started_with), tiny_mnist)
    app.run()
    assert_clean(app)
    note = "The run under way trains fast with the settings it started with"
    assert not [caption for caption in app.caption if note in caption.value]  # nothing changed yet
    app.selectbox(key="train.model").set_value("s5-net").run()
    assert [caption for caption in app.caption if note in caption.value], [c.value for c in app.caption]
    app.selectbox(key="train.model").set_value("fast").run()  # back as it was: nothing to say
    assert not [caption for caption in app.caption if note in caption.value]


def test_the_test_pass_at_an_epoch_end_is_said_and_so_is_a_stop_that_waits_for_it(tiny_mnist) -> None:
    """The test pass takes a minute for a big model on a CPU: the progress stood still without a word, and a Stop
    meanwhile read "Stopping after the current batch…" all along."""
    class TestingJob(TrainingJob):  # a job at the end of its first epoch, testing
        def snapshot(self) -> JobSnapshot:
            return JobSnapshot(RUNNING, 0, "cpu", 469, 938, 1.0, 2.0, 900.0, 60.0, 60.0, ((469, 0.3),),
                               ((469, 0.01),), (), "", testing=True)

    app = open_app(tiny_mnist, "train")
    app.session_state[JOB_KEY] = TestingJob(preset_config("fastest to 99 %"), tiny_mnist)
    app.run()
    assert_clean(app)
    text = app.get("progress")[0].proto.text
    assert text.startswith("Epoch 1.00 of 2 · batch 469/938") and text.endswith(
        f" · testing on the {len(tiny_mnist.test):,} test images…"), text
    app.button(key="train-stop").click().run()
    assert app.get("progress")[0].proto.text == "Stopping once the test pass under way ends…"


def test_the_test_pass_after_the_last_batch_is_not_an_eta_of_0_s(tiny_mnist) -> None:
    """The test pass after the last batch (a minute for a big model on a CPU) read "ETA 0 s · testing on the 10,000
    test images…", and the ETA figure "0 s", all along it."""
    class TestingLast(TrainingJob):
        def snapshot(self) -> JobSnapshot:
            return JobSnapshot(RUNNING, 0, "cpu", 250, 250, 0.8, 0.8, 1155.0, 3.5, 0.0, ((250, 0.3),),
                               ((250, 0.0),), (), "", testing=True)

    app = open_app(tiny_mnist, "train")
    app.session_state[JOB_KEY] = TestingLast(preset_config("fastest to 99 %"), tiny_mnist)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.get("progress")[0].proto.text == (
        f"Epoch 0.80 of 0.8 · batch 250/250 · 1,155 images/s · testing on the {len(tiny_mnist.test):,} test images…")
    assert [metric.value for metric in app.metric if metric.label == "ETA"] == ["the test pass"]
    # A Stop then has nothing left to stop: the run ends as finished, and "Stopping…" read as a Stop ignored.
    app.button(key="train-stop").click().run()
    assert app.get("progress")[0].proto.text == (
        "The Stop came after the last batch: the run finishes once the test pass under way ends…")


@pytest.mark.parametrize("step, total_steps, epochs, total_epochs, progress, figure", [
    # A Stop after 2 of 469 batches: the progress and the Epoch figure read "0.00" beside the sentence's "0.004
    # epochs", as if nothing had been trained.
    (2, 469, 2 / 469, 1.0, "Epoch 0.004 of 1 · batch 2/469", "0.004 / 1"),
    # A Stop after 1 of 8 batches: they read "0.12" beside the sentence's (and the run history's) "0.125 epochs".
    (1, 8, 0.125, 0.8, "Epoch 0.125 of 0.8 · batch 1/8", "0.125 / 0.8")])
def test_a_stopped_runs_progress_reads_the_epochs_its_sentence_reads(tiny_mnist, step: int, total_steps: int,
                                                                      epochs: float, total_epochs: float,
                                                                      progress: str, figure: str) -> None:
    class StoppedEarly(TrainingJob):
        def snapshot(self) -> JobSnapshot:
            return JobSnapshot(STOPPED, 0, "cpu", step, total_steps, epochs, total_epochs, 900.0, 0.3, float("nan"),
                               ((step, 2.2),), ((step, 0.001),), (),
                               f"Stopped after {step} of {total_steps} batches ({epochs_text(epochs)}); the model "
                               "trained so far is kept.")

    app = open_app(tiny_mnist, "train")
    app.session_state[JOB_KEY] = StoppedEarly(preset_config("fastest to 99 %"), tiny_mnist)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.get("progress")[0].proto.text.startswith(f"{progress} · 900 images/s")
    assert [metric.value for metric in app.metric if metric.label == "Epoch"] == [figure]


def test_a_run_that_diverged_with_no_weights_to_keep_says_what_became_of_it(tiny_mnist) -> None:
    """sgd at lr 2 on the first 1,000 images: the box read "training diverged at batch 10 of 50 (…); no good weights
    were reached", in lower case, with nothing on the history or the active model, and the charts still promised
    per-epoch curves "after the first evaluation" of a run that had ended."""
    message = ("training diverged at batch 10 of 50 (the train loss rose to 4.22e+09, over 100× its 2.32 at the "
               "start): lower the learning rate (it was 2) or pick a scheduler with warm-up; no good weights were "
               "reached")

    class DivergedEarly(TrainingJob):
        def snapshot(self) -> JobSnapshot:
            return JobSnapshot(DIVERGED, 0, "cpu", 10, 50, 0.16, 0.8, 322.0, 1.0, float("nan"), ((5, 7.0),),
                               ((5, 2.0),), (), message)

    app = open_app(tiny_mnist, "train")
    app.session_state[JOB_KEY] = DivergedEarly(preset_config("fastest to 99 %"), tiny_mnist)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert [error.value for error in app.error] == [
        "T" + message[1:] + ". Nothing was added to the run history; the active model is unchanged."]
    assert not app.session_state[RUNS_KEY] and ACTIVE_KEY not in app.session_state
    captions = [caption.value for caption in app.caption]
    assert "The run ended before its first test pass: no per-epoch loss and accuracy to draw." in captions, captions
    assert not [caption for caption in captions if "appear after the first evaluation" in caption]


def test_a_run_that_diverged_at_chance_level_is_listed_but_not_made_the_active_model(tiny_mnist) -> None:
    """sgd at lr 10: the loss blows up after the first test pass, whose weights (chance level) are kept. They became
    the active model, "run 1 (diverged: last good weights)" at 9.8 %, where a run that ends at chance is not made it."""
    config = TrainConfig(model="nf-cnn", model_kwargs={"nf": 8}, optimizer="sgd", lr=10.0, epochs=1, batch_size=64,
                         eval_every=0.25, device="cpu")
    app = open_app(tiny_mnist, "train")
    app.session_state[JOB_KEY] = TrainingJob(config, tiny_mnist).start()
    wait_for_job([app])
    assert not app.exception, [e.value for e in app.exception]
    job = app.session_state[JOB_KEY]
    assert job.snapshot().status == DIVERGED and job.result.test_accuracy <= 20
    [error] = [error.value for error in app.error]
    assert error.endswith(f"They read only {job.result.test_accuracy:.2f} % of the test digits right, chance level: "
                          "the run is in the run history below but was not made the active model."), error
    assert ACTIVE_KEY not in app.session_state  # the shipped default stays active
    assert [run.source for run in app.session_state[RUNS_KEY]] == ["run 1 (diverged, did not learn)"]
    assert not app.warning  # (no "reads only 9.8 %… the way back" for a run that is not active)
    # The page's last run started a spare training process: let it finish starting before the tests end (one that
    # loses its parent while it starts prints an EOFError traceback).
    assert prepare_worker(wait_s=60)


def test_the_progress_reads_images_per_second_before_the_speed_is_measured(tiny_mnist) -> None:
    """"batch 0/250 · measuring… images/s": the unit came after the word standing in for the number."""
    class JustStarted(TrainingJob):
        def snapshot(self) -> JobSnapshot:
            return JobSnapshot(RUNNING, 0, "cpu", 0, 250, 0.0, 0.8, 0.0, 0.0, float("nan"), (), (), (), "")

    app = open_app(tiny_mnist, "train")
    app.session_state[JOB_KEY] = JustStarted(preset_config("fastest to 99 %"), tiny_mnist)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.get("progress")[0].proto.text == "Epoch 0.00 of 0.8 · batch 0/250 · images/s measuring… · ETA —"


def test_a_double_click_on_start_starts_one_run(tiny_mnist) -> None:
    """Two clicks 40 ms apart (a quick double click) both reached the server before the page greyed Start out: two
    runs started, and the first trained on unseen, with no Stop, taking half of the cores from the one shown."""
    app = open_app(tiny_mnist, "train")
    configure_tiny_run(app)
    # the first click's run (never started: it cannot end before the second click arrives); the page the second
    # click comes from was drawn before it, with Start still live
    first = TrainingJob(preset_config("fastest to 99 %"), tiny_mnist)
    app.session_state[JOB_KEY] = first
    app.button(key="train-start").click().run()
    assert_clean(app)
    assert app.session_state[JOB_KEY] is first, "the second click started a second run"
    assert app.button(key="train-start").disabled


class StartingJob(TrainingJob):
    """A job at the moment its new training process loads PyTorch beside another tab's run."""

    def snapshot(self) -> JobSnapshot:
        return JobSnapshot(RUNNING, 0, "cpu", 0, 0, 0.0, 0.8, 0.0, 0.0, 0.0, (), (), (), "", fresh_process=True,
                           others_training=1)


def test_a_run_that_starts_its_own_training_process_says_why_it_waits(tiny_mnist) -> None:
    app = open_app(tiny_mnist, "train")
    app.session_state[JOB_KEY] = StartingJob(preset_config("fastest to 99 %"), tiny_mnist)
    app.run()
    assert_clean(app)
    text = app.get("progress")[0].proto.text
    assert text.startswith("Starting a new training process: another session's run is using the one kept ready"), text


def test_a_stop_while_the_training_process_starts_does_not_speak_of_a_batch(tiny_mnist) -> None:
    """A new training process loads PyTorch for 20–30 s beside another tab's run; a Stop meanwhile read "Stopping
    after the current batch…" all along, though no batch had begun (the run then ends before its first batch)."""
    app = open_app(tiny_mnist, "train")
    app.session_state[JOB_KEY] = StartingJob(preset_config("fastest to 99 %"), tiny_mnist)
    app.run()
    app.button(key="train-stop").click().run()
    assert_clean(app)
    assert app.get("progress")[0].proto.text == "Stopping as soon as the training process has started…"
    assert app.button(key="train-stop").disabled


def test_a_train_loss_that_counts_label_smoothing_says_why_it_reads_above_the_test_loss(tiny_mnist) -> None:
    """The fast preset (label smoothing 0.1) ends with a train loss of about 0.6 beside a test loss of 0.13: without
    a word, the model looked worse on the images it trains on."""
    record = EvalRecord(0.8, 0.62, 96.7, 0.13, 99.26, 1e-6, 7.0, 7.0)

    class EndedJob(TrainingJob):
        def snapshot(self) -> JobSnapshot:
            return JobSnapshot(RUNNING, 0, "cpu", 375, 375, 0.8, 0.8, 6000.0, 7.0, 0.0, ((375, 0.55),),
                               ((375, 1e-6),), (record,), "", testing=True)

    app = open_app(tiny_mnist, "train")
    app.session_state[JOB_KEY] = EndedJob(preset_config("fastest to 99 %"), tiny_mnist)
    app.run()
    assert_clean(app)
    notes = [caption.value for caption in app.caption if "The train loss is" in caption.value]
    assert notes == [":material/info: The train loss is that of the batches as trained (label smoothing 0.1); the "
                     "test loss is plain cross-entropy on the test images as they are, so the train loss reads "
                     "higher without the model doing worse."]
    app.session_state[JOB_KEY] = EndedJob(preset_config("seed 000/001"), tiny_mnist)  # nothing added: no note
    app.run()
    assert not [caption.value for caption in app.caption if "The train loss is" in caption.value]


def test_no_empty_charts_before_the_first_batches(tiny_mnist) -> None:
    """Before the first loss report the charts had nothing to draw and showed made-up axes (loss 0.1–10k, lr −1–4)."""
    app = open_app(tiny_mnist, "train")
    app.session_state[JOB_KEY] = TrainingJob(preset_config("fastest to 99 %"), tiny_mnist)  # not started: no batches
    app.run()
    assert_clean(app)
    assert not [chart for chart in app.get("plotly_chart") if chart.key in ("batch-loss", "learning-rate")]
    assert "The loss and learning-rate curves appear after the first batches." in [c.value for c in app.caption]


def test_a_typed_seed_is_the_seed_trained_or_refused_never_replaced(tiny_mnist) -> None:
    """With min/max on the box, 3000000000 only turned it red: Streamlit kept its last valid value (0), Start trained
    with seed 0 and the run history said seed 0 beside a box that read 3000000000."""
    app = open_app(tiny_mnist, "train")
    configure_tiny_run(app, epochs=0.25)
    seed = app.number_input(key="train.seed")
    assert (seed.min, seed.max, seed.step) == (None, None, 1) and "0 or more" in seed.help
    seed.set_value(3_000_000_000).run()
    app.button(key="train-start").click().run()
    assert_clean(app)
    assert app.session_state[JOB_KEY].config.seed == 3_000_000_000
    wait_for_job([app])
    history = next(table.value for table in app.dataframe if "settings" in table.value.columns)
    assert history["settings"].iloc[0].endswith(" · seed 3000000000"), history["settings"].iloc[0]

    app.number_input(key="train.seed").set_value(-1).run()
    app.button(key="train-start").click().run()
    assert [error.value for error in app.error] == [
        "Not started: seed must be a whole number from 0 to 2⁶³−1 (got -1)"]
    assert len(app.session_state[RUNS_KEY]) == 1


def test_an_index_out_of_range_is_said_not_replaced(tiny_mnist) -> None:
    """The explorer's number boxes had min/max: an index typed out of range only turned the box red while the page
    went on showing the image of the last valid one."""
    app = open_app(tiny_mnist, "explorer")
    app.number_input(key="explore.lookup_index").set_value(300).run()  # the test split has 256
    assert not app.exception
    assert [warning.value for warning in app.warning] == [
        "Test index 300 is outside 0–255: type a number in that range."]
    assert not [metric for metric in app.metric if metric.label == "Label"], "no label of another image"
    app.radio(key="explore.lookup_split").set_value("train").run()
    assert [metric.value for metric in app.metric if metric.label == "Label"] == ["0"]  # train #300: 300 % 10
    app.number_input(key="explore.preview_index").set_value(512).run()
    app.number_input(key="explore.page").set_value(99).run()
    assert {warning.value.split(" is outside")[0] for warning in app.warning} == {"Train image index 512", "Page 99"}
    app.selectbox(key="explore.digit").set_value(3).run()  # another selection starts at its first page
    assert app.number_input(key="explore.page").value == 1


def test_per_batch_charts_of_a_few_reports_draw_their_points() -> None:
    """A run with one loss report drew "lines" only: empty axes."""
    from studio_ui.charts import batch_loss, learning_rate

    for chart, points in ((batch_loss, [(5, 2.3)]), (learning_rate, [(5, 0.01), (10, 0.02)])):
        assert chart(points, 50.0).data[0].mode == "lines+markers"
    assert batch_loss([(step, 1.0) for step in range(1, 101)], 50.0).data[0].mode == "lines"  # a long run: a line


def test_the_learning_rate_axis_of_a_constant_rate_reads_it() -> None:
    """With scheduler none (the seed presets) the learning rate stays the same, and Plotly drew its flat line at "0"
    on an axis from -1 to 1, a learning rate can never be negative; so did a run's lone first report."""
    from studio_ui.charts import learning_rate

    for points in ([(step, 0.01) for step in range(5, 200, 5)], [(5, 0.02)]):
        axis = learning_rate(points, 63.0).layout.yaxis
        assert tuple(axis.range) == (0, 2 * points[0][1]) and axis.rangemode == "tozero", axis
    one_cycle = learning_rate([(5, 0.0008), (10, 0.02), (15, 0.0001)], 63.0).layout.yaxis
    assert one_cycle.range is None and one_cycle.rangemode == "tozero"  # Plotly fits a changing rate itself, from 0
    assert one_cycle.exponentformat == "e"  # 1e-05 as the slider writes it, not Plotly's "10μ"


def test_the_loss_axis_labels_its_ticks_in_full(tiny_mnist) -> None:
    """A loss from 2.3 down to 0.05 read "2, 1, 5, 2, 0.1, 5" down the axis (Plotly labels a log axis's 2 and 5 by
    their first digit once it spans more than a decade), so a loss of 0.5 sat at "5"."""
    losses = tuple((step, 2.3 * 0.9 ** step) for step in range(1, 40))  # 2.07 … 0.04

    class Stopped(TrainingJob):
        def snapshot(self) -> JobSnapshot:
            return JobSnapshot(STOPPED, 0, "cpu", 39, 469, 39 / 469, 1.0, 900.0, 3.0, float("nan"), losses,
                               tuple((step, 0.01) for step, _ in losses), (), "Stopped after 39 of 469 batches.")

    app = open_app(tiny_mnist, "train")
    app.session_state[JOB_KEY] = Stopped(preset_config("fastest to 99 %"), tiny_mnist)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    axis = chart_spec(app, "batch-loss")["layout"]["yaxis"]
    labels = dict(zip(axis["tickvals"], axis["ticktext"]))
    assert {0.05: "0.05", 0.2: "0.2", 0.5: "0.5", 1: "1", 2: "2"}.items() <= labels.items(), labels
    # within a decade Plotly's own labels are full and finer: left to it
    assert "tickvals" not in json.loads(batch_loss_figure([(1, 2.3), (2, 0.7)], 50.0).to_json())["layout"]["yaxis"]
    # a lone report (a run that diverged at its second): within a decade around it, not "5, 2, 10, 5, 2, 1"
    low, high = json.loads(batch_loss_figure([(5, 7.0)], 50.0).to_json())["layout"]["yaxis"]["range"]
    assert 10 ** low < 7.0 < 10 ** high < 10 * 10 ** low


def test_confusion_matrix_numbers_are_readable() -> None:
    """Plotly fitted the cell numbers to the cells: about 7 px."""
    from studio_ui.charts import confusion_heatmap

    counts = [[1135 if true == predicted else (3 if true == 1 else 0) for predicted in range(10)] for true in range(10)]
    shares = [[value / sum(row) for value in row] for row in counts]
    for values, normalised in ((counts, False), (shares, True)):
        heatmap = confusion_heatmap(values, counts, normalised).data[0]
        assert heatmap.textfont.size == 12 and heatmap.textfont.color is None  # automatic contrast, per cell
    heatmap = confusion_heatmap(shares, counts, True).data[0]
    assert (heatmap.text[0][0], heatmap.text[0][1], heatmap.text[1][1], heatmap.text[1][0]) == ("100", "0", "97.7",
                                                                                                "0.3")


def test_row_normalised_shares_fit_their_cells_and_say_they_are_percent(tiny_mnist) -> None:
    """In a 1400-px window "99.6%" at 12 px is wider than its cell: the diagonal's shares ran into their neighbours and
    the corners' were cut off by the plot's edge. The cells hold the number alone, no wider than a count ("1,132");
    the caption and the colour bar ("80 %", as the page writes percentages) say that it is a percentage."""
    from studio_ui.charts import confusion_heatmap

    counts = [[996 if true == predicted else (1 if predicted == (true + 1) % 10 else 0) for predicted in range(10)]
              for true in range(10)]
    shares = [[value / sum(row) for value in row] for row in counts]
    heatmap = confusion_heatmap(shares, counts, True).data[0]
    cells = [text for row in heatmap.text for text in row]
    assert all("%" not in text and len(text) <= 4 for text in cells), cells
    assert heatmap.text[0][0] == "99.9" and heatmap.z[0][0] == pytest.approx(99.9, abs=0.05)  # the colour scale in percent too
    assert heatmap.colorbar.ticksuffix == " %"
    app = open_app(tiny_mnist, "evaluate")
    app.toggle(key="evaluate.normalised").set_value(True).run()
    assert any("each cell: % of the true digit's images" in caption.value for caption in app.caption)
    app.toggle(key="evaluate.normalised").set_value(False).run()
    assert not any("% of the true digit" in caption.value for caption in app.caption)


def test_the_epoch_curves_legend_sits_under_the_charts() -> None:
    """Beside the charts, a comparison's run names took a third of an 800-px window's page and squeezed both charts
    to slivers."""
    record = {"epoch": 1.0, "train_loss": 0.9, "train_accuracy": 70.0, "test_loss": 0.8, "test_accuracy": 75.0}
    for runs in ({"run": [record]}, {"run 1 · seed-net": [record], "checkpoints/default.pt": [record]}):
        legend = epoch_curves(runs).layout.legend
        assert legend.orientation == "h" and legend.yanchor == "top" and legend.y < 0, legend


def test_the_epoch_curves_are_titled_and_labelled_like_the_other_charts() -> None:
    """Subplot titles are annotations, drawn small, grey and centred by Streamlit's theme beside the bold titles of
    every other chart; the curves get a figure title and named y-axes, as the per-batch charts have."""
    record = {"epoch": 1.0, "train_loss": 0.9, "train_accuracy": 70.0, "test_loss": 0.8, "test_accuracy": 75.0}
    layout = epoch_curves({"run": [record]}).layout
    assert layout.title.text == "Loss and accuracy per epoch" and not layout.annotations
    assert (layout.yaxis.title.text, layout.yaxis2.title.text) == ("loss", "accuracy (%)")


def test_an_uploaded_checkpoint_can_be_compared(tiny_mnist) -> None:
    """The comparison offered runs and files in checkpoints/ only: a downloaded run uploaded again (or a colleague's
    file) could be evaluated but not compared with anything."""
    app = open_app(tiny_mnist, "evaluate")
    app.radio(key="evaluate.source").set_value("Upload").run()
    default_bytes = (CHECKPOINT_DIR / "default.pt").read_bytes()
    app.file_uploader(key="evaluate-upload").set_value(("colleague.pt", default_bytes, "application/x")).run()
    assert_clean(app)
    compare = app.multiselect(key="evaluate.compare")
    assert "upload: colleague.pt · fast" in compare.options
    compare.set_value(["checkpoints/default.pt", "upload: colleague.pt · fast"]).run()
    assert_clean(app)
    table = next(table.value for table in app.dataframe if "architecture" in table.value.columns)
    assert list(table["model"]) == ["checkpoints/default.pt", "upload: colleague.pt · fast"]


def default_with_other_bytes() -> bytes:
    """The default model's weights in a file that is not byte for byte checkpoints/default.pt (its history left out),
    so Evaluate does not take it for the active model itself."""
    return checkpoint_bytes(torch.load(CHECKPOINT_DIR / "default.pt", weights_only=True) | {"history": []})


def test_an_upload_of_the_active_models_file_is_called_the_active_model(tiny_mnist) -> None:
    """checkpoints/default.pt (active) uploaded again offered "Make this the active model", of the same model."""
    app = open_app(tiny_mnist, "evaluate")
    app.radio(key="evaluate.source").set_value("Upload").run()
    default_bytes = (CHECKPOINT_DIR / "default.pt").read_bytes()
    app.file_uploader(key="evaluate-upload").set_value(("copy.pt", default_bytes, "application/x")).run()
    assert_clean(app)
    assert "This is the active model: the same file as checkpoints/default.pt." in [
        caption.value.replace("\\", "") for caption in app.caption]
    assert not [button for button in app.button if button.key == "evaluate-activate"]
    app.file_uploader(key="evaluate-upload").set_value(("other.pt", default_with_other_bytes(), "application/x")).run()
    assert_clean(app)
    app.button(key="evaluate-activate").click().run()
    assert app.session_state[ACTIVE_KEY].source == "upload: other.pt"


def test_an_uploaded_checkpoint_stays_while_the_user_visits_other_pages(tiny_mnist) -> None:
    """Streamlit empties the uploader on another page: back on Evaluate, the upload's evaluation was gone (only the
    comparison still offered it). The uploader's ✕ forgets it."""
    app = open_app(tiny_mnist, "evaluate")
    app.radio(key="evaluate.source").set_value("Upload").run()
    colleague = ("colleague.pt", (CHECKPOINT_DIR / "default.pt").read_bytes(), "application/x")
    app.file_uploader(key="evaluate-upload").set_value(colleague).run()
    app.file_uploader(key="evaluate-upload").set_value(None).run()  # the ✕
    assert_clean(app)
    assert not any("from upload: colleague.pt" in caption.value.replace("\\", "") for caption in app.caption)

    app.file_uploader(key="evaluate-upload").set_value(colleague).run()
    app.switch_page(PAGES["sketch"]).run()
    app.switch_page(PAGES["evaluate"]).run()
    assert_clean(app)
    assert app.radio(key="evaluate.source").value == "Upload" and app.file_uploader(key="evaluate-upload").value is None
    assert any("from upload: colleague.pt" in caption.value.replace("\\", "") for caption in app.caption)
    assert any(metric.label == "Test accuracy" for metric in app.metric)


def test_back_on_upload_the_uploader_and_the_page_agree(tiny_mnist) -> None:
    """Upload → another choice → Upload again: the uploader looked empty, yet a bad file's error came back (the
    browser still sent the file). Now a fresh, empty uploader; the last good upload is kept and says so."""
    app = open_app(tiny_mnist, "evaluate")
    source = lambda: app.radio(key="evaluate.source")  # noqa: E731 — found again after each run
    source().set_value("Upload").run()
    app.file_uploader(key="evaluate-upload").set_value(("notes.pt", b"my notes", "application/x")).run()
    assert len(app.error) == 1
    source().set_value("Active model").run()
    source().set_value("Upload").run()
    assert_clean(app)
    assert not app.error and [uploader.value for uploader in app.get("file_uploader")] == [None]

    [uploader] = app.get("file_uploader")
    good = ("colleague.pt", (CHECKPOINT_DIR / "default.pt").read_bytes(), "application/x")
    app.file_uploader(key=uploader.key).set_value(good).run()
    source().set_value("Saved or trained").run()
    source().set_value("Upload").run()
    assert_clean(app)
    assert [uploader.value for uploader in app.get("file_uploader")] == [None]
    assert any("Your last upload, kept" in caption.value for caption in app.caption)
    assert any("from upload: colleague.pt" in caption.value.replace("\\", "") for caption in app.caption)


def test_the_uploaders_take_any_file_and_say_what_is_wrong_with_it(tiny_mnist) -> None:
    """pic.png on Evaluate got only the browser's red chip (the uploader's type filter), and the page kept the
    previous file's error beside it."""
    app = open_app(tiny_mnist, "evaluate")
    app.radio(key="evaluate.source").set_value("Upload").run()
    [uploader] = app.get("file_uploader")
    assert not uploader.proto.type, "no type filter: the loader judges every file"
    app.file_uploader(key="evaluate-upload").set_value(("notes.pt", b"my notes", "application/x")).run()
    app.file_uploader(key="evaluate-upload").set_value(("pic.png", png_bytes(drawn_one()), "image/png")).run()
    assert not app.exception
    assert [error.value.replace("\\", "") for error in app.error] == [
        "Upload: pic.png is a PNG file, not a model file: use a .pt checkpoint saved by MNIST Studio (a picture of a "
        "digit is read by the predict command, or on the app's Sketch page). The active model is unchanged."]

    sketch = open_app(None, "sketch")
    sketch.radio(key="sketch.input").set_value("Upload an image").run()
    [uploader] = sketch.get("file_uploader")
    assert not uploader.proto.type
    model = (CHECKPOINT_DIR / "default.pt").read_bytes()
    sketch.file_uploader(key="sketch-upload").set_value(("model.pt", model, "application/x")).run()
    assert not sketch.exception
    assert [error.value.replace("\\", "") for error in sketch.error] == [
        "model.pt is a PyTorch model file, not a picture: upload it on the app's Evaluate page and make it the active "
        "model (on the command line, give it to --checkpoint)"]


def test_the_run_history_names_each_runs_seed(tiny_mnist) -> None:
    """Two runs that differed only in their seed had the same settings summary."""
    app = open_app(tiny_mnist)
    default = load_checkpoint(CHECKPOINT_DIR / "default.pt")
    app.session_state[RUNS_KEY] = [ModelEntry(replace(default, source=f"run {n}", config={**default.config, "seed": n}),
                                              "run") for n in (1, 2)]
    app.switch_page(PAGES["train"]).run()
    assert_clean(app)
    history = next(table.value for table in app.dataframe if "test accuracy %" in table.value.columns)
    assert [summary.rsplit(" · ", 1)[1] for summary in history["settings"]] == ["seed 1", "seed 2"]
    assert column_config(app, "settings")["width"] == "large"  # a quick run's summary is long


def test_runs_that_differ_only_in_optimizer_or_regularisation_settings_read_apart(tiny_mnist) -> None:
    """Runs that differed only in weight decay, β2, momentum, Nesterov, the warm-up fraction, label smoothing or
    scribbles had the same settings summary in the run history."""
    app = open_app(tiny_mnist)
    default = load_checkpoint(CHECKPOINT_DIR / "default.pt")
    sgd = {**default.config, "optimizer": "sgd", "scheduler": "step", "step_size": 3, "gamma": 0.1}
    variants = [default.config, {**default.config, "weight_decay": 0.05}, {**default.config, "beta2": 0.99},
                {**default.config, "pct_start": 0.15}, {**default.config, "label_smoothing": 0.1},
                {**default.config, "scribbles": 0.5}, {**default.config, "scribble_shapes": "mixed"},
                sgd, {**sgd, "momentum": 0.5}, {**sgd, "nesterov": True}]
    app.session_state[RUNS_KEY] = [ModelEntry(replace(default, source=f"run {n}", config=config), "run")
                                   for n, config in enumerate(variants, 1)]
    app.switch_page(PAGES["train"]).run()
    assert_clean(app)
    summaries = list(next(table.value for table in app.dataframe if "settings" in table.value.columns)["settings"])
    assert len(set(summaries)) == len(variants), summaries
    assert summaries[0] == ("width 32, dense width 64 · 10 ep · bs 128 · adamw lr 0.01 wd 0.01 · onecycle · "
                            "aug ±12° ±0.12 ±0.12 · scribbles 0.25 zigzag · seed 0")
    # the one-cycle scheduler sets the momentum itself: its β1 is not said (it would read as if it were used)
    assert "β1" not in summaries[0] and "momentum 0.5" in summaries[8] and "nesterov" in summaries[9]


def test_runs_that_differ_only_in_model_knobs_or_images_read_apart(tiny_mnist) -> None:
    """Two runs of fast at width 16 and 32 both read "fast | 0.8 ep · bs 128 · …"; Evaluate's comparison showed a
    5,000-image run like a full one. At 800 px, test accuracy and time hid behind a sideways scroll."""
    app = open_app(tiny_mnist)
    default = load_checkpoint(CHECKPOINT_DIR / "default.pt")
    narrow = build_model("fast", width=16, hidden=128).eval()
    app.session_state[RUNS_KEY] = [
        ModelEntry(replace(default, source="run 1", model=narrow, model_kwargs={"width": 16, "hidden": 128},
                           config={**default.config, "model_kwargs": {"width": 16, "hidden": 128},
                                   "train_subset": 5000}), "run"),
        ModelEntry(replace(default, source="run 2"), "run")]
    app.switch_page(PAGES["train"]).run()
    assert_clean(app)
    history = next(table.value for table in app.dataframe if "settings" in table.value.columns)
    assert list(history.columns) == ["run", "model", "test accuracy %", "train seconds", "epochs", "batches",
                                     "training images", "parameters", "settings"]
    assert list(history["training images"]) == [5000, 60000]
    assert history["settings"][0].startswith("10 ep · ")  # fast's own knob values: nothing to add
    assert history["settings"][1].startswith("width 32, dense width 64 · 10 ep · ")
    assert list(history["parameters"]) == [sum(p.numel() for p in model.parameters())
                                           for model in (narrow, default.model)]

    app.switch_page(PAGES["evaluate"]).run()
    app.multiselect(key="evaluate.compare").set_value(["run 1 · fast", "run 2 · fast"]).run()
    assert_clean(app)
    table = next(table.value for table in app.dataframe if "architecture" in table.value.columns)
    assert list(table.columns)[:4] == ["model", "test accuracy %", "test loss", "train seconds"]
    assert list(table["training images"]) == [5000, 60000]


def test_the_comparison_names_the_model_knobs_of_each_architecture(tiny_mnist) -> None:
    """Evaluate's comparison read "fast" and "fast" for default.pt (width 32, dense width 64) and a run of the fast
    preset (fast's own knobs): two different networks under one name, only their parameter counts apart."""
    app = open_app(tiny_mnist)
    default = load_checkpoint(CHECKPOINT_DIR / "default.pt")
    own = build_model("fast").eval()
    app.session_state[RUNS_KEY] = [
        ModelEntry(replace(default, source="run 1", model=own, model_kwargs={},
                           config={**default.config, "model_kwargs": {}}), "run"),
        ModelEntry(replace(default, source="run 2"), "run")]
    app.switch_page(PAGES["evaluate"]).run()
    app.multiselect(key="evaluate.compare").set_value(["run 1 · fast", "run 2 · fast"]).run()
    assert_clean(app)
    table = next(table.value for table in app.dataframe if "architecture" in table.value.columns)
    assert list(table["architecture"]) == ["fast", "fast (width 32, dense width 64)"]


def test_the_run_history_marks_the_active_run(tiny_mnist) -> None:
    """After "Make … active again" (or with an older run made active on Evaluate), only the sidebar said which run of
    the history was the active model."""
    app = open_app(tiny_mnist)
    default = load_checkpoint(CHECKPOINT_DIR / "default.pt")
    runs = [ModelEntry(replace(default, source=f"run {number}"), "run") for number in (1, 2, 3)]
    app.session_state[RUNS_KEY] = runs
    app.session_state[ACTIVE_KEY] = runs[1]
    app.switch_page(PAGES["train"]).run()
    assert_clean(app)
    history = next(table.value for table in app.dataframe if "settings" in table.value.columns)
    assert list(history["run"]) == ["run 1", "run 2 · active", "run 3"]


def test_how_long_runs_trained_reads_in_numbers_that_sort(tiny_mnist) -> None:
    """A Stop that landed after one batch of 469 read "0.00" epochs in the run history and in Compare (the column's
    two decimals), as if the run had not trained at all; as text ("0.002 epochs (1 batch)"), a click on the column's
    header sorted "10 epochs" before "2 epochs". Numbers, rounded as they read, in both tables."""
    app = open_app(tiny_mnist)
    default = load_checkpoint(CHECKPOINT_DIR / "default.pt")
    one_batch = {**default.metrics, "epochs_done": 1 / 469, "batches_done": 1, "stopped": True}
    two = {**default.metrics, "epochs_done": 2.0, "batches_done": 938}
    app.session_state[RUNS_KEY] = [
        ModelEntry(replace(default, source="run 1 (stopped early)", metrics=one_batch), "run"),
        ModelEntry(replace(default, source="run 2", metrics=two), "run"),
        ModelEntry(replace(default, source="run 3"), "run")]
    app.switch_page(PAGES["train"]).run()
    assert_clean(app)
    history = next(table.value for table in app.dataframe if "settings" in table.value.columns)
    assert list(history["epochs"]) == [0.002, 2, default.metrics["epochs_done"]]
    assert list(history["batches"][:2]) == [1, 938] and np.isnan(history["batches"][2])  # default.pt (the CLI's): none
    assert list(history.sort_values("epochs")["run"]) == ["run 1 (stopped early)", "run 2", "run 3"]  # 2 before 10
    assert [column_config(app, name)["type_config"]["format"] for name in ("epochs", "batches")] == ["%g", "%,d"]

    app.switch_page(PAGES["evaluate"]).run()
    app.multiselect(key="evaluate.compare").set_value(["run 1 (stopped early) · fast", "run 2 · fast",
                                                       "run 3 · fast"]).run()
    assert_clean(app)
    table = next(table.value for table in app.dataframe if "architecture" in table.value.columns)
    assert table[["epochs", "batches"]].equals(history[["epochs", "batches"]])  # the one helper: both read alike
    assert column_config(app, "epochs")["type_config"]["format"] == "%g"


def test_model_choices_read_alike(tiny_mnist) -> None:
    """The seeds' models read "seed-net  (seed 000, 001)" (two spaces, visible in the box) beside "fast (ours)"."""
    app = open_app(tiny_mnist, "train")
    model = app.selectbox(key="train.model")
    assert [model.format_func(name) for name in ("seed-net", "fast")] == ["seed-net (seed 000, 001)", "fast (ours)"]


def test_a_typed_name_in_a_message_is_shown_as_typed_not_as_markdown() -> None:
    """A save name like *mine* or $x$ came back in the error in italics or as math."""
    from studio_ui.layout import literal

    typed = "'*mine* $x$ :red[y] _z_ `q` #1 <b>' is not a usable name: use a–z"
    escaped = literal(typed)
    assert re.sub(r"\\(.)", r"\1", escaped) == typed  # the backslashes only escape: the text is unchanged
    assert not re.search(r"(?<!\\)[*$\[\]_`#<:]", escaped), escaped  # and no formatting character is left bare


def test_the_active_model_can_be_compared_after_another_upload_replaced_it(tiny_mnist) -> None:
    """A colleague's file uploaded and made the active model, then a second file uploaded to set beside it: the
    comparison offered the second upload and no longer the active one (nor did "Saved or trained"), so the model the
    Sketch page uses could not be compared with anything. The active model is offered when it is none of the others;
    a run or a file on disk that is active is not listed twice."""
    app = open_app(tiny_mnist, "evaluate")
    app.radio(key="evaluate.source").set_value("Upload").run()
    default = load_checkpoint(CHECKPOINT_DIR / "default.pt")
    payload = ModelEntry(default, "file").payload()
    app.file_uploader(key="evaluate-upload").set_value(("first.pt", checkpoint_bytes(payload), "application/x")).run()
    app.button(key="evaluate-activate").click().run()
    options = app.multiselect(key="evaluate.compare").options
    assert not any(option.startswith("active model") for option in options), options  # the upload itself is there
    payload["metrics"] = {**payload["metrics"], "test_accuracy": 12.5}  # another file
    app.file_uploader(key="evaluate-upload").set_value(("second.pt", checkpoint_bytes(payload), "application/x")).run()
    compare = app.multiselect(key="evaluate.compare")
    assert "upload: second.pt · fast" in compare.options
    assert "active model · upload: first.pt · fast" in compare.options
    compare.set_value(["active model · upload: first.pt · fast", "upload: second.pt · fast"]).run()
    assert_clean(app)
    table = next(table.value for table in app.dataframe if "architecture" in table.value.columns)
    assert list(table["model"]) == ["active model · upload: first.pt · fast", "upload: second.pt · fast"]

    app.radio(key="evaluate.source").set_value("Saved or trained").run()
    app.selectbox(key="evaluate.choice").set_value("checkpoints/default.pt").run()
    app.button(key="evaluate-activate").click().run()  # a file on disk: listed once, under its own name
    assert not any(option.startswith("active model") for option in app.multiselect(key="evaluate.compare").options)


def test_per_class_support_reads_with_thousands_separators(tiny_mnist) -> None:
    """The per-class table's support read 1135 beside the matrix's 1,132 and the figures' 10,000."""
    app = open_app(tiny_mnist, "evaluate")
    assert_clean(app)
    assert column_config(app, "support")["type_config"]["format"] == "%,d"
    assert column_config(app, "f1")["label"] == "F1"  # an initialism, written as docs/command-line.md writes it


@pytest.mark.parametrize(("page", "first_words"), [("explorer", "MNIST's handwritten digits, 28×28 pixels"),
                                                   ("train", "Pick a preset, or set the sliders yourself, then press"),
                                                   ("evaluate", "How a model does on MNIST's test images")])
def test_each_working_page_opens_with_what_to_do_there(tiny_mnist, page: str, first_words: str) -> None:
    """A first-time reader sees the title and the first controls only: Train's Start sits under three columns of
    settings, below the fold, and the explorer's and Evaluate's sections run over several screens."""
    app = open_app(tiny_mnist, page)
    assert_clean(app)
    assert app.main.caption[0].value.startswith(first_words), app.main.caption[0].value
    if page == "train":  # under Progress, the empty state points back up to Start rather than saying it all again
        assert [info.value for info in app.info] == ["No run yet: press **Start training** above, and the curves "
                                                     "appear here live."]
