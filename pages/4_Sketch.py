"""Sketch: draw a digit (white ink on black) or upload a picture; see the 28×28 image the model reads, its prediction
and the probability of every digit. Works without the dataset: it only needs a model."""

from __future__ import annotations

import streamlit as st
from streamlit_drawable_canvas import st_canvas  # a Components v2 element: importable only inside a running app

from mnist_core.errors import MB, ImageError
from mnist_core.evaluate import WEAK_MODEL_ACCURACY
from mnist_core.explore import enlarge
from mnist_core.sketch import (MAX_FILE_BYTES, MAX_IMAGE_PIXELS, SketchPrediction, canvas_has_strokes, open_image,
                               percentages_apart, predict, unsure_threshold)
from studio_ui import charts, layout, session
from studio_ui.session import ensure_defaults

layout.page_setup("Sketch", ":material/draw:")
st.title("Sketch")
ensure_defaults({"sketch.input": "Draw", "sketch.stroke_width": 20})
CANVAS_SIDE = 280
# px. The reading (model input, prediction, confidence) fits beside the canvas in the 468 px of page of an 800-px
# window (280 + 24 + 160); the notes and the chart go beside it where there is room, else below.
READING_PANEL_WIDTH = 160
DETAILS_PANEL_WIDTH = 340
PANEL_GAP = 24
SEEN_SIDE = 140  # px: the 28×28 model input at 5×
TOOLBAR_ROOM_PX = 24


def unsure_reason(reading: SketchPrediction) -> str:
    """Why a reading the model itself is sure of is still unsure: otherwise a dot read as a 0 at 99 % sits beside
    "unsure below 93 %" unexplained. The notes beside it say the same at length."""
    if reading.tiny_mark:
        return "this is only a dot or a short dash"
    if reading.mostly_ink:
        return "this is not one digit on a plain background"
    if reading.several_digits:
        return "this looks like several digits side by side"
    return "the strokes are very thick for the size of this digit"


model_entry = session.active_model()
if model_entry is None:
    st.error(layout.default_model_problem())
    st.stop()
st.caption(f"Reading with **{model_entry.name}** from {layout.literal(model_entry.source)}. Change it on the Evaluate "
           "page.")
weak_model = model_entry.test_accuracy is not None and model_entry.test_accuracy < WEAK_MODEL_ACCURACY
if weak_model:
    # Otherwise its unsure readings would be blamed on the drawing ("does not look much like a digit").
    st.warning(f"This model reads only {model_entry.test_accuracy:.2f} % of MNIST's test digits right, so what it "
               f"reads here means little: train longer on the Train page, or make another model active on the "
               f"Evaluate page.")

# Panels that wrap: st.columns in an 800-px window squeezes the 280-px canvas into a 200-px column. The prediction
# has a narrow panel of its own so that it stays beside the canvas in an 800- or 1000-px window: in one 340-px panel
# with the chart, it would go below the canvas, below the fold.
input_column, reading_column, details_column = layout.wrapping_panels(
    ("sketch-drawing-panel", CANVAS_SIDE), ("sketch-reading-panel", READING_PANEL_WIDTH),
    ("sketch-details-panel", DETAILS_PANEL_WIDTH), gap=PANEL_GAP)
image = None  # what to classify: the canvas pixels or the uploaded picture
upload_refused = False  # its error says what to do; an invitation to upload beside it would read oddly
with input_column:
    mode = st.radio("Input", ["Draw", "Upload an image"], key="sketch.input", horizontal=True)
    if mode == "Draw":
        stroke_width = st.slider("Stroke width", 8, 40, key="sketch.stroke_width")
        # The canvas's toolbar (undo, redo, delete…) appears about 2.7 rem above it on hover: room for it, so it
        # does not cover the slider.
        st.space(TOOLBAR_ROOM_PX)
        canvas = st_canvas(stroke_width=stroke_width, stroke_color="#FFFFFF", background_color="#000000",
                           height=CANVAS_SIDE, width=CANVAS_SIDE, drawing_mode="freedraw", return_image_data=True,
                           initial_drawing=session.canvas_opening(), key=session.canvas_key())
        st.button("Clear", key="sketch-clear", icon=":material/delete:", on_click=session.clear_canvas)
        image = session.canvas_pixels(canvas.json_data, canvas.image_data)
    else:
        # A new file or the uploader's ✕ replaces the kept picture; the uploader mounted again empty does not.
        upload = st.file_uploader("Picture of a digit", key="sketch-upload",
                                  on_change=session.forget_picture,
                                  help=f"up to {MAX_FILE_BYTES // MB} MB and {MAX_IMAGE_PIXELS // 10**6} megapixels, "
                                       "dark ink on light paper or light on dark")
        kept = session.kept_picture()
        picture = (upload.name, upload.getvalue()) if upload is not None else (kept.name, kept.data) if kept else None
        if picture is not None:
            name, data = picture
            try:
                image = open_image(data, name=name)
            except ImageError as error:
                upload_refused = True
                st.error(layout.literal(str(error)))  # literal: it names the upload as typed
            else:
                session.keep_picture(name, data)
                preview = layout.picture_preview(image, CANVAS_SIDE)
                # its own width: by default the image fills the caption's width, so a narrow picture under a
                # longer file name (a 1 cropped 60 px wide) was drawn thousands of px tall
                st.image(preview, caption=name, width=preview.width)
                if upload is None:  # the uploader's own ✕ is gone with its file: a way to remove the kept one
                    st.caption("Upload another picture above to replace this one.")
                    st.button("Remove picture", key="sketch-remove-picture", icon=":material/delete:",
                              on_click=session.forget_picture)

unsure_below = unsure_threshold(model_entry.checkpoint.metrics)
reading = predict(model_entry.checkpoint.model, image, unsure_below) if image is not None else None
with reading_column:
    if reading is None or reading.empty:
        if mode == "Draw" and canvas_has_strokes(image):
            st.warning("The strokes cover the whole canvas, so there is no digit shape left to read: press Clear and "
                       "draw the digit with a thinner stroke.")
        elif mode == "Draw":
            st.info("The canvas is empty: draw a digit, large and centred, with the mouse or a finger.")
        elif reading is not None:  # a picture was read, but nothing in it stands out from its background
            # (large noise reads so too: shrunk to 28×28 it averages out to one grey)
            st.warning("No ink found in this picture: nothing in it stands out from its background (one flat colour, "
                       "a smooth shading, or noise too fine to see at 28×28): upload a photo or scan of one "
                       "handwritten digit.")
        elif not upload_refused:
            st.info("Upload a picture of one handwritten digit.")
    else:
        # A no-break space, so that a narrow column never leaves "%" alone at the start of a line ("below 93 / %")
        confidence_text, threshold_text = (text.replace(" ", "\u00a0")
                                           for text in percentages_apart(reading.confidence, unsure_below))
        st.image(enlarge(reading.image28, SEEN_SIDE // 28), caption="model input (28×28)", width=SEEN_SIDE, clamp=True,
                 output_format=layout.DIGIT_FORMAT)
        st.metric("Prediction", reading.digit, help="the digit with the highest probability")
        if reading.unsure and not reading.low_confidence:  # sure by the model, unsure by the picture: say which
            st.caption(f"confidence {confidence_text}, but unsure: {unsure_reason(reading)} (see the note)")
        else:
            st.caption(f"confidence {confidence_text} (this model is unsure below {threshold_text})")
        if reading.unsure:  # the note that says why may be below the canvas, out of sight
            st.badge("unsure", icon=":material/warning:", color="orange")

if reading is not None and not reading.empty:
    with details_column:
        if reading.tiny_mark:  # alone: a dot also reads as thick strokes or as ink over much of the frame
            st.warning("This is only a dot or a short dash, not a whole digit: whatever the model answers, do not "
                       "trust it. " + ("Draw the whole digit, large: most of the canvas's height." if mode == "Draw"
                                      else "Use a picture of one whole digit, written large."))
        elif reading.mostly_ink:  # alone: noise also reads as thick strokes, and a pen's width is beside the point
            st.warning("This does not look like one digit on a plain background: ink covers much of the picture or "
                       "its edges (noise or a texture?). Whatever the model answers, do not trust it: use a "
                       "picture of one digit on plain paper.")
        elif reading.several_digits:  # alone: its low confidence or thick strokes are beside the point
            st.warning("This looks like several digits side by side (a number?), and the model reads one digit: "
                       "whatever it answers, do not trust it. "
                       + ("Clear the canvas and draw one digit." if mode == "Draw" else
                          "Use a picture of one digit."))
        else:  # one warning with one piece of advice: a small 6 drawn thick needs "draw it larger or choose a thinner
            # stroke width", not also "Try one clear digit on its own"
            notes = []
            if reading.low_confidence and weak_model:  # a clear 3 read at 11 %: the drawing is not to blame
                notes.append(f"The model is only {confidence_text} sure of its best guess (it is unsure below "
                             f"{threshold_text}): it is a weak model (see above), so this says little about the "
                             f"drawing.")
            elif reading.low_confidence:
                notes.append(f"This does not look much like a digit to the model: it is only {confidence_text} sure "
                             f"of its best guess, and it is unsure below {threshold_text}."
                             + ("" if reading.thick_strokes else " Try one clear digit on its own, written large."))
            if reading.thick_strokes:  # (an upload has no stroke width to choose)
                notes.append(("Its strokes are also very thick for its size" if reading.low_confidence else
                              "The strokes are very thick for the size of this digit")
                             + ", so its loops may be filled in: "
                             + ("draw it larger or choose a thinner stroke width." if mode == "Draw" else
                                "use a picture of the digit larger or written with a thinner pen."))
            if notes:
                st.warning(" ".join(notes))
        st.plotly_chart(charts.probabilities(reading.probabilities, reading.digit), key="probabilities")
