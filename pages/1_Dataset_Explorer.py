"""Dataset explorer: samples by digit and split, class balance, mean images, pixel intensities, the augmentation
preview and a look-up by index."""

from __future__ import annotations

import streamlit as st

from mnist_core import explore
from mnist_core.data import MnistSplit
from studio_ui import charts, layout, resources, session, settings
from studio_ui.session import ensure_defaults

layout.page_setup("Dataset explorer", ":material/grid_view:")
st.title("Dataset explorer")

data = layout.require_dataset()
if data is None:
    st.stop()

ensure_defaults({"explore.split": "train", "explore.digit": "all", "explore.page": 1, "explore.preview_index": 0,
                 "explore.lookup_split": "test", "explore.lookup_index": 0})
settings.ensure_train_defaults()
splits: dict[str, MnistSplit] = {"train": data.train, "test": data.test}
# What the page holds, on top: its sections run over four screens, and a first-time reader sees only the grid.
st.caption(f"MNIST's handwritten digits, 28×28 pixels: {len(data.train):,} training and {len(data.test):,} test images. "
           "Browse them by digit here; further down, how the digits are spread, their mean images and pixel "
           "intensities, a preview of the training augmentation and a look-up by index.")
PER_PAGE = 40
PREVIEW_SEED_KEY = "studio.preview_seed"  # "Redraw" moves it on
CONTROLS_WIDTH, PREVIEW_WIDTH = 260, 460  # px: the preview fits an 800-px window's 468 px of page
PREVIEW_IMAGE = 84  # px: five images and their gaps fit the preview panel's width
CHART_WIDTH = 440  # px: two side by side in a 1400-px window's 940 px of page, one a row in an 800-px one


def back_to_first_page() -> None:
    """on_change of the split and digit filters: another selection starts at its first page."""
    st.session_state["explore.page"] = 1


# Each section is a fragment, so a click reruns that section only: a whole-page rerun encodes the 65 images again,
# draws the scribbles again and builds both charts again, about twice the server's work (docs/performance.md,
# Dataset explorer in a new tab).
@st.fragment
def samples_and_charts() -> None:
    """The grid, the class and pixel charts and the mean images: the split changes all of them."""
    st.subheader("Samples")
    split_column, digit_column, page_column = st.columns([1, 1, 1])
    split_name = split_column.radio("Split", list(splits), key="explore.split", horizontal=True,
                                    on_change=back_to_first_page)
    digit_choice = digit_column.selectbox("Digit", ["all", *range(10)], key="explore.digit",
                                          on_change=back_to_first_page)
    digit = None if digit_choice == "all" else int(digit_choice)
    split = splits[split_name]
    matches = len(explore.matching_indices(split, digit))
    pages = max(1, -(-matches // PER_PAGE))
    # No min/max on the number boxes of this page: see `layout.whole_number_in`.
    page_box = layout.whole_number_box(page_column, f"Page (of {pages:,})", "explore.page")
    page = layout.whole_number_in(page_box, 1, pages, "Page")
    if page is not None:
        indices = explore.sample_page(split, digit, page - 1, PER_PAGE)
        selection = f"{split_name} images" + (f" of digit {digit}" if digit is not None else "")
        # an empty selection has no first image to name
        st.caption(f"{matches:,} {selection} · showing {len(indices)} from #{indices[0]}" if indices else
                   f"No {selection} in this dataset.")
        with st.container(key="sample-grid"):
            if indices:  # for none, the caption above already says so
                layout.gallery(explore.pixels(split, indices),
                               [f"#{i} · {label}" for i, label in zip(indices, explore.labels_of(split, indices))],
                               columns=10, width=72)

    st.divider()
    stats = {name: resources.dataset_stats(data, name) for name in splits}
    # Side by side in a wide window, one under the other in a narrow one: st.columns in an 800-px window squeezes the
    # digits under the bars into an unreadable clump and cuts the histogram's title short.
    left, right = layout.wrapping_panels(("class-distribution-panel", CHART_WIDTH),
                                         ("pixel-histogram-panel", CHART_WIDTH))
    left.plotly_chart(charts.class_distribution({name: s.class_counts for name, s in stats.items()}),
                      key="class-distribution")
    right.plotly_chart(charts.pixel_histogram(stats[split_name].pixel_counts, split_name),
                       key="pixel-histogram")

    st.subheader(f"Mean image per digit ({split_name})")
    layout.gallery(stats[split_name].mean_images, [f"mean {d}" for d in range(10)], columns=10, width=72)
    session.remember()  # a fragment's rerun parks nothing itself: without this, a reload forgets the click


samples_and_charts()


@st.fragment
def augmentation_section() -> None:
    """The augmentation preview: its sliders are the Train page's."""
    st.divider()
    st.subheader("Augmentation preview")
    augment_on = st.session_state[settings.PREFIX + "augment"]
    # with augmentation off, "exactly what training applies" would contradict "Augmentation is off for training"
    st.caption("One training image under the Train page's augmentation settings (the same sliders): eight random "
               "draws " + ("of exactly what training applies." if augment_on else
                           "of what training would apply with augmentation on (it is off: training uses the images "
                           "as they are)."))
    # wrapping panels: st.columns leaves the controls 150 px in an 800-px window, too narrow for their labels
    controls, preview = layout.wrapping_panels(("augmentation-controls", CONTROLS_WIDTH),
                                               ("augmentation-preview", PREVIEW_WIDTH))
    with controls:
        augmentation = settings.augmentation_controls(on_change=settings.mark_custom, grey_out_when_off=False)
        # the range in the label, as the look-up's
        preview_box = layout.whole_number_box(st, f"Train image index (0–{len(data.train) - 1:,})",
                                              "explore.preview_index")
        if st.button("Redraw", key="explore-redraw", icon=":material/casino:", help="eight new random draws"):
            st.session_state[PREVIEW_SEED_KEY] = st.session_state.get(PREVIEW_SEED_KEY, 0) + 1
    with preview:
        preview_index = layout.whole_number_in(preview_box, 0, len(data.train) - 1, "Train image index")
        if preview_index is not None:
            original = explore.pixels(data.train, [preview_index])[0]
            if augmentation.enabled:
                draws = explore.augmentation_preview(original, augmentation, count=8,
                                                     seed=st.session_state.get(PREVIEW_SEED_KEY, 0))
                layout.gallery([original, *draws], ["original", *[f"draw {i + 1}" for i in range(8)]], columns=5,
                               width=PREVIEW_IMAGE)
            else:  # eight identical "random draws" would look like a preview that does not work
                layout.gallery([original], ["original"], columns=5, width=PREVIEW_IMAGE)
                st.caption("Every slider is at 0: each draw would be this image unchanged. Move a slider to see "
                           "what it does.")
        if not augment_on:
            st.info("Augmentation is off for training: tick “Augment training images” to train with it.")
        scribbles_per_digit = st.session_state[settings.PREFIX + "scribbles"]
        st.caption("Scribbles that training with “Scribbles per digit” (Train page, now "
                   + (f"{scribbles_per_digit:g} per digit" if scribbles_per_digit else "off")
                   + ") teaches the model to call “no digit”, so the Sketch page can say when a drawing is not "
                     "one:")
        layout.gallery(resources.scribble_preview(5, st.session_state.get(PREVIEW_SEED_KEY, 0),
                                                  st.session_state[settings.PREFIX + "scribble_shapes"]),
                       [f"scribble {i + 1}" for i in range(5)], columns=5, width=PREVIEW_IMAGE)
    session.remember()


augmentation_section()


@st.fragment
def lookup_section() -> None:
    """Any image by split and index, with its label."""
    st.divider()
    st.subheader("Look up an image by index")
    lookup_split_column, lookup_index_column, lookup_image_column = st.columns([1, 1, 2])
    # not "Split" again: a screen reader names a control by its label, and the page has two
    lookup_split = lookup_split_column.radio("Split to look in", list(splits), key="explore.lookup_split",
                                             horizontal=True)
    last_index = len(splits[lookup_split]) - 1
    lookup_box = layout.whole_number_box(lookup_index_column, f"Index (0–{last_index:,})", "explore.lookup_index")
    with lookup_image_column:  # a train index kept after switching to test may be out of range: said, not changed
        lookup_index = layout.whole_number_in(lookup_box, 0, last_index, f"{lookup_split.capitalize()} index")
    if lookup_index is not None:
        label = explore.labels_of(splits[lookup_split], [lookup_index])[0]
        lookup_index_column.metric("Label", label)
        lookup_image_column.image(explore.enlarge(explore.pixels(splits[lookup_split], [lookup_index])[0], 8),
                                  caption=f"{lookup_split} #{lookup_index} · {label}", width=224,
                                  output_format=layout.DIGIT_FORMAT)
    session.remember()


lookup_section()
