"""Train: pick a model and a recipe, Start, watch live curves, Stop; keep, save and download the result.

Training runs in a worker process owned by this session (`mnist_core.runner.TrainingJob`); the live area is a
fragment that polls the job's snapshot, so the page stays responsive and Stop acts at the next batch.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from mnist_core.checkpoints import free_checkpoint_name, safe_checkpoint_path, write_checkpoint
from mnist_core.config import OPTIMIZERS, SCHEDULERS, TrainConfig, epochs_progress
from mnist_core.data import SCRIBBLE_SHAPES
from mnist_core.device import available_devices
from mnist_core.errors import DataError, StudioError
from mnist_core.evaluate import WEAK_MODEL_ACCURACY
from mnist_core.models import REGISTRY, count_parameters, get_spec
from mnist_core.runner import (CANCELLED, CRASHED, DIVERGED, DONE, FAILED, NOT_LEARNED, QUEUED, RUNNING, STOPPED,
                               JobSnapshot, TrainingJob, prepare_worker, training_time_text, with_live_reporting)
from studio_ui import charts, layout, resources, session, settings, tables
from studio_ui.session import ModelEntry
from studio_ui.settings import PREFIX

# While training, the live area refreshes in two parts: progress and figures every POLL_SECONDS, the charts every
# CHART_SECONDS. Measured on 2 cores (browser, server and training on one machine): redrawing the charts every second
# takes ~40 % of a core in Chromium, away from the training.
POLL_SECONDS = 2.0
CHART_SECONDS = 4.0

layout.page_setup("Train", ":material/model_training:")
st.title("Train")
# Start sits under three columns of settings, below the fold of a 900-px window: the first screen says where it is.
st.caption("Pick a preset, or set the sliders yourself, then press **Start training** under the settings. A finished "
           "run becomes the active model that Evaluate and Sketch use.")
settings.ensure_train_defaults()
custom = settings.mark_custom

# --- model and preset -------------------------------------------------------------------------------------------
preset_column, model_column = st.columns(2)
preset_column.selectbox("Preset", settings.preset_choices(), key=settings.PRESET_KEY, on_change=settings.apply_preset,
                        help="each seed project's recipe, plus ours for speed and for accuracy")
model_name = model_column.selectbox("Model", list(REGISTRY), key=PREFIX + "model", on_change=custom,
                                    format_func=lambda name: f"{name} (seed {REGISTRY[name].seed})"
                                    if REGISTRY[name].seed != "—" else f"{name} (ours)")
spec = REGISTRY[model_name]
settings.ensure_knob_defaults(model_name)

with st.container(border=True, key="model-card"):
    knob_values = {}
    info_column, knob_column = st.columns([2, 1])
    with knob_column:
        for knob_name, knob in spec.knobs.items():
            label = knob.label[:1].upper() + knob.label[1:]  # "width" -> "Width", like every other label
            knob_values[knob_name] = st.slider(label, knob.low, knob.high, step=knob.step,
                                               key=settings.knob_key(model_name, knob_name), on_change=custom)
    parameter_count, summary_rows = resources.model_overview(model_name, tuple(sorted(knob_values.items())))
    with info_column:
        origin = f"seed {spec.seed}" if spec.seed != "—" else "MNIST Studio's own"
        st.markdown(f"**{model_name}** · {origin} · **{parameter_count:,} parameters**")
        st.caption(spec.description)
        with st.expander("Model summary (layer, output shape, parameters)"):
            st.dataframe(pd.DataFrame(summary_rows), hide_index=True, width="stretch", key="model-summary")

# --- hyper-parameters -----------------------------------------------------------------------------------------------
schedule_column, optimizer_column, extra_column = st.columns(3)
with schedule_column:
    st.markdown("**Schedule**")
    st.select_slider("Epochs", settings.EPOCH_CHOICES, key=PREFIX + "epochs", on_change=custom)
    st.select_slider("Batch size", settings.BATCH_SIZES, key=PREFIX + "batch_size", on_change=custom)
    # (no on_change=custom: no recipe sets these three, settings.NOT_IN_RECIPES)
    st.selectbox("Training images", settings.SUBSETS, key=PREFIX + "train_subset",
                 format_func=lambda n: "all 60,000" if n == 0 else f"first {n:,} (quick run)")
    st.number_input("Seed", step=1, key=PREFIX + "seed", help=settings.SEED_HELP)
    st.selectbox("Device", ["auto", *available_devices()], key=PREFIX + "device")
with optimizer_column:
    st.markdown("**Optimizer**")
    optimizer = st.selectbox("Optimizer", OPTIMIZERS, key=PREFIX + "optimizer", on_change=custom)
    st.select_slider("Learning rate (log scale)", settings.LR_CHOICES, key=PREFIX + "lr", on_change=custom,
                     format_func=lambda lr: f"{lr:g}")
    if optimizer != "adadelta":
        # Greyed out, not hidden, with the one-cycle scheduler (chosen further right): it sets the momentum itself.
        cycled = st.session_state.get(PREFIX + "scheduler") == "onecycle"
        st.slider("Momentum" if optimizer == "sgd" else "β1", 0.0, 0.99, step=0.01, key=PREFIX + "momentum",
                  on_change=custom, disabled=cycled,
                  help="the onecycle scheduler cycles it itself (0.95 → 0.85 → 0.95): choose another scheduler to "
                       "set it" if cycled else None)
    if optimizer in ("adam", "adamw"):
        st.slider("β2", 0.9, 0.999, step=0.001, key=PREFIX + "beta2", on_change=custom, format="%.3f",
                  help="the decay of Adam's squared-gradient average; 0.99 adapts faster in short runs")
    if optimizer == "sgd":
        st.checkbox("Nesterov momentum", key=PREFIX + "nesterov", on_change=custom)
    st.select_slider("Weight decay", settings.WEIGHT_DECAYS, key=PREFIX + "weight_decay", on_change=custom,
                     format_func=lambda wd: f"{wd:g}")
    st.slider("Label smoothing", 0.0, 0.3, step=0.05, key=PREFIX + "label_smoothing", on_change=custom)
with extra_column:
    st.markdown("**Scheduler**")
    scheduler = st.selectbox("Scheduler", SCHEDULERS, key=PREFIX + "scheduler", on_change=custom)
    if scheduler == "step":
        st.slider("Step size (epochs)", 1, 30, key=PREFIX + "step_size", on_change=custom)
        st.slider("Decay factor γ", 0.05, 1.0, step=0.05, key=PREFIX + "gamma", on_change=custom)
        if step_note := settings.config_from_state().scheduler_note():
            st.caption(f":material/info: {step_note}")
    elif scheduler == "onecycle":
        st.slider("Warm-up fraction", 0.05, 0.95, step=0.05, key=PREFIX + "pct_start", on_change=custom)
    st.markdown("**Augmentation**")
    settings.augmentation_controls(on_change=custom)
    st.slider("Scribbles per digit (\"not a digit\")", 0.0, 0.5, step=0.05, key=PREFIX + "scribbles",
              on_change=custom, help="outlier exposure: random scribbles join every batch, trained towards equal "
                                     "probabilities, so the model is unsure about drawings that are not digits "
                                     "(the Sketch page's note); 0.25 = one per four digits. See them on the "
                                     "Dataset explorer.")
    st.selectbox("Scribble shapes", SCRIBBLE_SHAPES, key=PREFIX + "scribble_shapes", on_change=custom,
                 help="zigzag: random zig-zags; mixed: half zig-zags, and loops with marks inside and strokes "
                      "crossing, so the model is also unsure about closed shapes and crossed lines that are not digits")

# --- start / stop ---------------------------------------------------------------------------------------------------
START_ERROR_KEY = "studio.start_error"


def start_training() -> None:
    """Start's on_click: the job starts before the script reruns, so the one rerun the click causes already shows it
    running; starting it in the script would need a second full rerun, whose drawing takes CPU from the training."""
    running = session.current_job()
    if running is not None and not running.snapshot().finished:
        # A quick double click can reach the server before the page greys Start out: a second run would leave the
        # first training on unseen and unstoppable, taking half of the cores from the one shown.
        return
    try:
        data = resources.load_dataset()
        job = TrainingJob(with_live_reporting(settings.config_from_state()), data,
                          still_wanted=session.this_tab_is_open())
    except DataError as error:
        st.session_state[START_ERROR_KEY] = (f"This page needs the MNIST dataset. {error}", True)
    except StudioError as error:  # settings refused before anything starts
        st.session_state[START_ERROR_KEY] = (f"Not started: {error}", False)
    else:
        session.start_job(job)


BUTTON_WIDTH = 150  # px
NAME_WIDTH = 320  # px: with the two buttons one row in a wide window; they wrap below it in a narrow one
job = session.current_job()
busy = job is not None and not job.snapshot().finished
if not busy:
    prepare_worker()  # a training process warms up while the user picks settings, so Start starts at once
with st.container(horizontal=True):  # fixed-width buttons: narrow columns cut "Start training" to "Star…"
    st.button("Start training", type="primary", disabled=busy, key="train-start", width=BUTTON_WIDTH,
              on_click=start_training)
    # Greyed out once pressed: a batch of a big model can take seconds, and a Stop that stays live looks ignored.
    st.button("Stop", disabled=not busy or job.stop_requested, key="train-stop", width=BUTTON_WIDTH,
              on_click=job.stop if busy else None, help="stops after the current batch; keeps the model so far")
if START_ERROR_KEY in st.session_state:
    start_error, about_the_data = st.session_state.pop(START_ERROR_KEY)
    if about_the_data:  # the whole message is on this page, so the sidebar points here rather than to Home
        layout.show_data_status(layout.PAGE_SAYS_THE_DATA_PROBLEM)
    st.error(start_error)
elif not busy:
    next_run_config = settings.config_from_state()
    try:
        next_run_config.validate()
    except StudioError as refusal:  # said before Start (a batch of 2,048 on the first 1,000 images), not only after it
        st.warning(f"Start would refuse these settings: {refusal}")
    else:
        if few_steps := next_run_config.few_steps_note():
            st.caption(f":material/info: {few_steps}")


# --- live progress --------------------------------------------------------------------------------------------------
def progress_text(job: TrainingJob, snapshot: JobSnapshot) -> str:
    """The progress bar's text: what the job is doing now, or what a pressed Stop is waiting for."""
    if job.stop_requested and not snapshot.finished:
        if snapshot.status == RUNNING and snapshot.total_steps == 0:
            # no batch under way yet: a new process loading PyTorch takes 20–30 s beside another run, and "after the
            # current batch" would promise a batch that never comes
            return "Stopping as soon as the training process has started…"
        if snapshot.testing_last:  # nothing left to stop: "Stopping…", then "Finished", would read as a Stop ignored
            return "The Stop came after the last batch: the run finishes once the test pass under way ends…"
        return ("Stopping once the test pass under way ends…" if snapshot.testing
                else "Stopping after the current batch…")
    if snapshot.status == QUEUED:
        ahead = f" ({snapshot.queue_position} run(s) ahead)" if snapshot.queue_position else ""
        return f"Waiting for the {snapshot.device} device{ahead}…"
    if snapshot.status == RUNNING and snapshot.total_steps == 0:
        if not snapshot.fresh_process:
            return "Starting the training process…"
        # 20–26 s measured on 2 cores beside another tab's run: a wait that long needs its reason
        if snapshot.others_training:
            return ("Starting a new training process: another session's run is using the one kept ready, and loading "
                    "PyTorch while it trains on the same cores takes 20–30 s…")
        return "Starting a new training process (loading PyTorch takes a few seconds)…"
    # the test pass can take a minute (a big model on a CPU): said, or the progress seems stuck
    testing = f" · testing on the {len(job.data.test):,} test images…" if snapshot.testing else ""
    # no number yet: "images/s measuring…", as the figure's label and value, not "— images/s"
    speed = (f"{snapshot.speed} images/s" if snapshot.speed[:1].isdigit() else f"images/s {snapshot.speed}")
    eta = "" if snapshot.testing_last else f" · ETA {snapshot.time_left}"  # (the testing part says it all)
    return (f"Epoch {epochs_progress(snapshot.epoch, snapshot.finished)} of {snapshot.total_epochs:g} · batch "
            f"{snapshot.step:,}/{snapshot.total_steps:,} · {speed}{eta}{testing}")


def active_sentence(run: ModelEntry | None, subject: str = "It") -> str:
    """Whether the run's model is the active one, as it stands now: another model may have been made active on
    Evaluate since the run ended."""
    active = session.active_model()
    if run is None:
        return ""
    if active is not None and active.key == run.key:
        return f"{subject} is now the active model."
    now = (f"the active model is now {layout.literal(active.source)} ({active.name})" if active is not None
           else "no model is active")
    return f"{subject} was made the active model; {now}."


def weak_run_warning(run: ModelEntry) -> None:
    """A weak run made the active model (a Stop right after Start: 2 batches, 27 %) replaces a better one: say so,
    with the way back."""
    active, replaced = session.active_model(), session.replaced_model()
    if run.test_accuracy is None or run.test_accuracy >= WEAK_MODEL_ACCURACY or active is None or active.key != run.key:
        return
    st.warning(f"{run.source[:1].upper()}{run.source[1:]} reads only {run.test_accuracy:.2f} % of the test digits "
               f"right (under {WEAK_MODEL_ACCURACY:g} %), so the Sketch page will read little with it. Train longer, "
               "or go back to " + ("the model that was active before it." if replaced is not None
                                   else "another model on Evaluate."))
    if replaced is not None and st.button(f"Make {layout.literal(replaced.source)} active again",
                                          key="train-restore-active",
                                          help=f"{replaced.name}" + (f", {replaced.test_accuracy:.2f} % test accuracy"
                                                                     if replaced.test_accuracy is not None else "")):
        session.set_active(replaced)
        st.rerun()  # the whole page, and its sidebar, show the model now active


def outcome(job: TrainingJob, snapshot: JobSnapshot) -> None:
    """The finished job's message (done, did not learn, stopped, diverged, failed or crashed) and what became of it."""
    run = session.collected_run(job)
    if snapshot.status == DONE:
        st.success(f"Finished in {training_time_text(job.result.train_seconds)} of training: test accuracy "
                   f"{job.result.test_accuracy:.2f} %. {active_sentence(run)}")
    elif snapshot.status == NOT_LEARNED:
        st.warning(f"Finished, but {snapshot.message}. It is in the run history below but was not made the active "
                   "model; Evaluate can still make it the active one.")
    elif snapshot.status in (STOPPED, CANCELLED):
        st.info(f"{snapshot.message} {active_sentence(run)}".strip())  # the batches done, from the job
    elif snapshot.status == DIVERGED:
        # like every outcome, say what became of the run history and the active model, even with no weights kept
        if run is None:
            kept = "Nothing was added to the run history; the active model is unchanged."
        elif not session.did_learn(job):
            kept = (f"They read only {job.result.test_accuracy:.2f} % of the test digits right, chance level: the run "
                    "is in the run history below but was not made the active model.")
        else:
            kept = active_sentence(run, "The run with them")
        st.error(layout.then(layout.sentence(snapshot.message), kept))
    elif snapshot.status == FAILED:
        st.error(f"Training could not run: {snapshot.message}")
    elif snapshot.status == CRASHED:
        st.error(f"Training crashed — this is a bug in MNIST Studio, not something you did: {snapshot.message}")
        if job.error_details:
            with st.expander("Details for a bug report"):
                st.code(job.error_details, language=None)
    if run is not None:
        weak_run_warning(run)


def live_progress() -> None:
    """Progress bar, figures and the outcome: cheap to redraw, refreshed every POLL_SECONDS."""
    job = session.current_job()
    if job is None:
        # the page's first line says how to set a run up: here, only where Start is and what comes next
        st.info("No run yet: press **Start training** above, and the curves appear here live.")
        return
    snapshot = job.snapshot()
    if snapshot.finished and not session.is_collected(job):
        st.rerun()  # the run just ended: redraw the whole page so it shows up as the active model and in history
    st.progress(snapshot.fraction, text=progress_text(job, snapshot))
    if not snapshot.finished and settings.changed_since(job.config):
        st.caption(f":material/info: The run under way trains {job.config.model} with the settings it started with; "
                   "the settings above have changed since, and apply to the next Start.")
    last = snapshot.history[-1] if snapshot.history else None
    layout.figures([("Epoch", f"{epochs_progress(snapshot.epoch, snapshot.finished)} / {snapshot.total_epochs:g}"),
                    ("Images/s", snapshot.speed),
                    ("ETA", snapshot.time_left), ("Test accuracy", f"{last.test_accuracy:.2f} %" if last else "—")])
    outcome(job, snapshot)


def live_charts() -> None:
    """The curves: redrawing Plotly charts is what costs the browser (on the same machine, the training's) CPU,
    so they refresh every CHART_SECONDS only."""
    job = session.current_job()
    if job is None:
        return
    snapshot = job.snapshot()
    if not snapshot.batch_losses:  # empty charts would show made-up axes (loss 0.1–10k, lr −1–4)
        st.caption("The run ended before its first loss report (one every few batches): no curves to draw."
                   if snapshot.finished else "The loss and learning-rate curves appear after the first batches.")
        return
    steps_per_epoch = snapshot.steps_per_epoch
    loss_column, lr_column = st.columns(2)
    loss_column.plotly_chart(charts.batch_loss(snapshot.batch_losses, steps_per_epoch), key="batch-loss")
    lr_column.plotly_chart(charts.learning_rate(snapshot.learning_rates, steps_per_epoch), key="learning-rate")
    if snapshot.history:
        st.plotly_chart(charts.epoch_curves({"run": [record.to_dict() for record in snapshot.history]}),
                        key="epoch-curves")
    elif snapshot.finished:  # diverged before its first test pass: "appear after …" would promise curves
        st.caption("The run ended before its first test pass: no per-epoch loss and accuracy to draw.")
    else:
        st.caption("Per-epoch train/test loss and accuracy appear after the first evaluation.")
    if note := train_loss_note(job.config):
        st.caption(f":material/info: {note}")


def train_loss_note(config: TrainConfig) -> str | None:
    """Why the train loss reads above the test loss, or None: the fast preset's label smoothing alone keeps it near
    0.6 while the test loss falls to 0.13, which looks like a model doing worse on what it trains on."""
    harder = [f"label smoothing {config.label_smoothing:g}" if config.label_smoothing else "",
              "augmented images" if config.augment else "",
              "scribbles trained towards no digit" if config.scribbles else ""]
    harder = [part for part in harder if part]
    if not harder:
        return None
    return (f"The train loss is that of the batches as trained ({', '.join(harder)}); the test loss is plain "
            "cross-entropy on the test images as they are, so the train loss reads higher without the model doing "
            "worse.")


st.subheader("Progress")
with st.container(key="live-area"):
    st.fragment(live_progress, run_every=POLL_SECONDS if busy else None)()
    st.fragment(live_charts, run_every=CHART_SECONDS if busy else None)()

# --- run history, save, download -----------------------------------------------------------------------------------
st.subheader("Run history")
history = session.runs()
if not history:
    st.caption("Finished and stopped runs of this session appear here; the newest becomes the active model, unless it "
               "did not learn.")
    st.stop()


def model_settings(config: dict[str, Any]) -> str:
    """The model's knobs that differ from its defaults, "width 32, dense width 256 · ", so that two runs that differ
    only in them read apart."""
    knobs = get_spec(config["model"]).knobs
    changed = [f"{knob.label} {config['model_kwargs'][name]:g}" for name, knob in knobs.items()
               if config.get("model_kwargs", {}).get(name, knob.default) != knob.default]
    return f"{', '.join(changed)} · " if changed else ""


DEFAULTS = TrainConfig()


def not_default(config: dict[str, Any], name: str) -> object | None:
    """`config`'s value of a setting when it is not TrainConfig's default (runs from before a setting have none)."""
    value = config.get(name, getattr(DEFAULTS, name))
    return None if value == getattr(DEFAULTS, name) else value


def optimizer_summary(config: dict[str, Any]) -> str:
    """"adam lr 0.02 β2 0.99 wd 0.01": the optimizer's settings that differ from the defaults, so that two runs that
    differ only in weight decay, momentum or β2 read apart. The one-cycle scheduler sets the momentum itself."""
    optimizer, cycled = config["optimizer"], config["scheduler"] == "onecycle"
    parts = [f"{optimizer} lr {config['lr']:g}"]
    momentum = not_default(config, "momentum")
    if optimizer in ("sgd", "adam", "adamw") and not cycled and momentum is not None:
        parts.append(f"{'momentum' if optimizer == 'sgd' else 'β1'} {momentum:g}")
    if optimizer == "sgd" and config.get("nesterov"):
        parts.append("nesterov")
    if optimizer in ("adam", "adamw") and (beta2 := not_default(config, "beta2")) is not None:
        parts.append(f"β2 {beta2:g}")
    if (weight_decay := not_default(config, "weight_decay")) is not None:
        parts.append(f"wd {weight_decay:g}")
    return " ".join(parts)


def settings_summary(config: dict[str, Any]) -> str:
    """A checkpoint's training config (`TrainConfig.to_dict`) in one line of the run history."""
    schedule = config["scheduler"] + (f" {config['step_size']}×{config['gamma']:g}" if config["scheduler"] == "step"
                                      else "")
    if config["scheduler"] == "onecycle" and (warm_up := not_default(config, "pct_start")) is not None:
        schedule += f" warm-up {warm_up:g}"
    # label smoothing and scribbles too: otherwise two runs that differ only in them read the same
    smoothing = f" · label smoothing {config['label_smoothing']:g}" if config.get("label_smoothing") else ""
    scribbles = (f" · scribbles {config['scribbles']:g} {config.get('scribble_shapes', DEFAULTS.scribble_shapes)}"
                 if config.get("scribbles") else "")
    shear = f" shear ±{config['shear']:g}°" if config.get("shear") else ""  # (runs before shear have none)
    augment = (f" · aug ±{config['rotation']:g}° ±{config['translate']:g} ±{config['scale']:g}{shear}"
               if config.get("augment") else "")
    # the seed too: two runs that differ only in it read the same otherwise
    return (f"{model_settings(config)}{config['epochs']:g} ep · bs {config['batch_size']} · "
            f"{optimizer_summary(config)} · {schedule}{smoothing}{augment}{scribbles} · "
            f"seed {config.get('seed', 0)}")


# The figures that tell runs apart first, the long settings last, so that at 800 px accuracy and time are not behind
# a sideways scroll. The active run is marked: after "Make … active again" the sidebar alone would say which it is.
active_key = getattr(session.active_model(), "key", None)
st.dataframe(pd.DataFrame([{
    "run": entry.source + (" · active" if entry.key == active_key else ""), "model": entry.name, "test accuracy %": entry.test_accuracy,
    "train seconds": entry.checkpoint.metrics.get("train_seconds"),
    **tables.run_length_cells(entry.checkpoint.metrics, entry.checkpoint.config),
    **tables.training_images_cell(entry.checkpoint.config),
    "parameters": count_parameters(entry.checkpoint.model), "settings": settings_summary(entry.checkpoint.config),
} for entry in history]), hide_index=True, width="stretch", key="run-history", placeholder=tables.MISSING,
    column_config={**tables.RUN_LENGTH_COLUMNS, **tables.TRAINING_IMAGES_COLUMNS,
                   "run": st.column_config.TextColumn(width="medium"),  # "run 2 (stopped early)" in full
                   "settings": st.column_config.TextColumn(width="large"),  # room for a quick run's long summary
                   "test accuracy %": st.column_config.NumberColumn(format="%.2f"),
                   "train seconds": st.column_config.NumberColumn(format="%.1f"),
                   "parameters": st.column_config.NumberColumn(format="%,d")})

with st.container(border=True, key="save-run"):
    st.markdown("**Save or download a run**")
    # Keyed by the number of runs: a run that ends makes a new selectbox, which starts at it (the newest) instead of
    # keeping the choice made before it existed.
    chosen = st.selectbox("Run", list(range(len(history)))[::-1], format_func=lambda i: history[i].label,
                          key=f"save-run-choice-{len(history)}")
    entry = history[chosen]
    # "train." keeps what was typed while the user visits other pages (session.KEPT_WIDGET_PREFIXES)
    name_key = f"train.save-name-{chosen}"
    run_stem = f"{entry.name}-run{chosen + 1}"  # "seed-net-run1": the file name the run goes by unless one is typed
    if name_key not in st.session_state:  # suggested once; what the user types is never replaced
        st.session_state[name_key] = free_checkpoint_name(run_stem)
    # A row that wraps, with fixed-width buttons: st.columns in an 800-px window cuts "Download .pt" to "Downloa…".
    with st.container(horizontal=True, vertical_alignment="bottom", key="save-row"):
        # No max_chars: Streamlit drops a longer paste whole, so the box keeps the suggested name and Save saves under
        # it; safe_checkpoint_path refuses a long name with the rule instead.
        name = st.text_input("File name in checkpoints/", key=name_key, width=NAME_WIDTH)
        save_clicked = st.button("Save", key="save-button", width=BUTTON_WIDTH)
        name_problem = None
        try:  # the download is named as typed, like the saved file
            download_name = safe_checkpoint_path(name).name
        except StudioError as problem:
            download_name, name_problem = f"{run_stem}.pt", problem
        st.download_button("Download .pt", resources.checkpoint_file_bytes(entry.key, entry), file_name=download_name,
                           mime="application/octet-stream", key="download-button", width=BUTTON_WIDTH)
    if save_clicked:
        target = None
        try:
            target = safe_checkpoint_path(name)
            path = write_checkpoint(entry.payload(), target)
        except StudioError as error:  # bad name, existing file (never overwritten), unwritable folder
            if target is not None and target.exists():  # a free name, so that the user need not guess one
                message = (f"The file {layout.short_path(target)} already exists and was not overwritten: choose "
                           f"another name, such as {free_checkpoint_name(target.stem)} (no file has it yet).")
            else:
                message = str(error) if target is None else str(error).replace(str(target), layout.short_path(target))
            st.error(layout.literal(layout.sentence(message)))
        else:
            st.success(f"Saved as checkpoints/{path.name}; the Evaluate page lists it.")
    elif name_problem is not None:  # Download still works, under the run's own name: say so
        st.caption(layout.literal(layout.then(layout.sentence(name_problem),
                                              f"Download names the file {download_name} meanwhile.")))
