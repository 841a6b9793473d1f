"""The Dataset explorer page (AppTest, synthetic data): the cases a demanding user tries."""

from __future__ import annotations

import pytest

from tests.test_app import assert_clean, chart_spec, open_app

AUGMENTATION_SLIDERS = ("train.rotation", "train.translate", "train.scale", "train.shear")


def image_count(app) -> int:
    return len(app.get("image"))


def test_every_slider_at_zero_shows_the_image_once_and_says_why(tiny_mnist) -> None:
    """With every slider at 0 the preview showed "draw 1" … "draw 8", eight copies of the original, as if the random
    draws did not work."""
    app = open_app(tiny_mnist, "explorer")
    with_draws = image_count(app)
    for key in AUGMENTATION_SLIDERS:
        app.slider(key=key).set_value(0.0).run()
    assert_clean(app)
    assert image_count(app) == with_draws - 8
    assert any(caption.value.startswith("Every slider is at 0: each draw would be this image unchanged")
               for caption in app.caption)
    app.slider(key="train.shear").set_value(1.0).run()  # one slider is enough for the draws to come back
    assert image_count(app) == with_draws
    assert not any(caption.value.startswith("Every slider is at 0") for caption in app.caption)


@pytest.mark.parametrize("extreme", ["low", "high"])
def test_the_augmentation_preview_works_at_the_ends_of_every_slider(tiny_mnist, extreme: str) -> None:
    app = open_app(tiny_mnist, "explorer")
    for key in AUGMENTATION_SLIDERS:
        slider = app.slider(key=key)
        slider.set_value(slider.min if extreme == "low" else slider.max).run()
    assert_clean(app)
    assert not app.warning
    app.button(key="explore-redraw").click().run()
    assert_clean(app)


def test_the_class_chart_shows_each_split_as_shares_with_the_counts_on_hover(tiny_mnist) -> None:
    """In counts, the test bars stood a sixth as tall as the train bars: the test split's balance was unreadable."""
    app = open_app(tiny_mnist, "explorer")
    spec = chart_spec(app, "class-distribution")
    assert [bar["name"] for bar in spec["data"]] == ["train", "test"]
    for bar, size in zip(spec["data"], (512, 256)):
        assert sum(bar["y"]) == pytest.approx(100)
        assert sum(bar["customdata"]) == size
        assert "%{customdata:,} images" in bar["hovertemplate"]
    assert spec["layout"]["yaxis"]["ticksuffix"] == " %"
    assert "share" in spec["layout"]["yaxis"]["title"]["text"]
    assert spec["layout"]["xaxis"]["title"]["text"] == "digit"
    assert "share of each split" in spec["layout"]["title"]["text"]


def test_the_pixel_histogram_says_what_its_hover_numbers_are(tiny_mnist) -> None:
    app = open_app(tiny_mnist, "explorer")
    spec = chart_spec(app, "pixel-histogram")
    assert spec["data"][0]["hovertemplate"] == "intensity %{x}: %{y:,} pixels<extra></extra>"
    assert sum(spec["data"][0]["y"]) == 512 * 28 * 28  # every pixel of the train split, once
    assert spec["layout"]["xaxis"]["title"]["text"].startswith("intensity")
    assert spec["layout"]["yaxis"]["title"]["text"] == "pixels"


def test_a_page_beyond_a_selection_of_one_page_names_the_only_page(tiny_mnist) -> None:
    """It said "Page 2 is outside 1–1: type a number in that range"."""
    app = open_app(tiny_mnist, "explorer")
    app.radio(key="explore.split").set_value("test").run()
    app.selectbox(key="explore.digit").set_value(3).run()  # 26 images: one page
    app.number_input(key="explore.page").set_value(2).run()
    assert not app.exception
    assert [warning.value for warning in app.warning] == ["Page 2 does not exist: the only one is 1."]
    app.number_input(key="explore.page").set_value(1).run()
    assert not app.warning
    assert any(caption.value.startswith("26 test images of digit 3 · showing 26") for caption in app.caption)


def test_a_digit_the_split_does_not_have_is_said_so(tiny_mnist) -> None:
    """It read "0 test images of digit 3 · showing 0 from #0": a first image that is not there."""
    from mnist_core.data import Mnist, MnistSplit

    test = tiny_mnist.test
    keep = test.labels != 3
    app = open_app(Mnist(tiny_mnist.train, MnistSplit(test.images[keep], test.labels[keep])), "explorer")
    app.radio(key="explore.split").set_value("test").run()
    app.selectbox(key="explore.digit").set_value(3).run()
    assert_clean(app)
    assert not app.warning
    assert [caption.value for caption in app.caption if "digit 3" in caption.value] == [
        "No test images of digit 3 in this dataset."]
    assert not any(caption.value == "Nothing to show." for caption in app.caption)


def test_odd_indices_in_the_look_up_are_said_with_the_range(tiny_mnist) -> None:
    app = open_app(tiny_mnist, "explorer")
    for value, warning in ((-1, "Test index -1 is outside 0–255"), (256, "Test index 256 is outside 0–255"),
                           (10 ** 12, "Test index 1,000,000,000,000 is outside 0–255")):
        app.number_input(key="explore.lookup_index").set_value(value).run()
        assert not app.exception
        assert [w.value for w in app.warning] == [f"{warning}: type a number in that range."]
        assert not [metric for metric in app.metric if metric.label == "Label"]
    app.number_input(key="explore.lookup_index").set_value(511).run()  # out of the test split …
    app.radio(key="explore.lookup_split").set_value("train").run()  # … but in the train split
    assert [metric.value for metric in app.metric if metric.label == "Label"] == ["1"]
    app.radio(key="explore.lookup_split").set_value("test").run()  # back: said again, not clamped to another image
    assert [w.value for w in app.warning] == ["Test index 511 is outside 0–255: type a number in that range."]


def test_an_emptied_number_box_is_said_to_be_empty_not_read_as_0(tiny_mnist) -> None:
    """An emptied Page box read as its default, 0: "Page 0 is outside 1–13: type a number in that range.", of a box
    in which no 0 had been typed."""
    app = open_app(tiny_mnist, "explorer")
    for key, warning in (("explore.page", "The page box is empty: type a number from 1 to 13."),
                         ("explore.lookup_index", "The test index box is empty: type a number from 0 to 255."),
                         ("explore.preview_index", "The train image index box is empty: type a number from 0 to 511.")):
        app.number_input(key=key).set_value(None).run()
        assert not app.exception
        assert [w.value for w in app.warning] == [warning]
        app.number_input(key=key).set_value(1).run()
        assert not app.warning


def test_the_number_boxes_read_what_the_browser_reads_as_a_number(tiny_mnist) -> None:
    """The boxes held whole numbers, which the browser reads with parseInt: "1e3" showed image #1 and "2.7" page 2
    (tests/e2e/test_e2e_explorer.py types them). A box of any number sends 1000.0 and 2.7: the first is an index, the
    second not a whole number."""
    app = open_app(tiny_mnist, "explorer")
    assert all(box.proto.data_type == box.proto.FLOAT for box in app.number_input if box.key.startswith("explore."))
    app.radio(key="explore.lookup_split").set_value("train").run()
    app.number_input(key="explore.lookup_index").set_value(3e2).run()
    assert_clean(app)
    assert [metric.value for metric in app.metric if metric.label == "Label"] == ["0"]  # train #300: 300 % 10
    assert any("train #300 · 0" in image.captions for image in app.get("image"))
    app.number_input(key="explore.page").set_value(2.7).run()
    assert [w.value for w in app.warning] == ["Page 2.7 is not a whole number: type one from 1 to 13."]
    app.number_input(key="explore.page").set_value(1234567.5).run()  # (not "1.23457e+06")
    assert [w.value for w in app.warning] == ["Page 1234567.5 is not a whole number: type one from 1 to 13."]
    app.number_input(key="explore.page").set_value(2.0).run()
    assert not app.warning
    assert any(caption.value.startswith("512 train images · showing 40 from #40") for caption in app.caption)


def test_home_s_card_for_the_explorer_names_the_look_up_by_index(tiny_mnist) -> None:
    """The card listed every section of the page but its last, the look-up by index (README: "look up any image by
    its index")."""
    app = open_app(tiny_mnist)
    assert any(caption.value.endswith("a preview of the training augmentation and any image looked up by its index.")
               for caption in app.caption)
