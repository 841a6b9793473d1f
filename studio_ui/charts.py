"""Plotly figures for the pages. Inputs are plain lists (from `mnist_core`), outputs are figures; no tensor math."""

from __future__ import annotations

import math
from typing import Any, Sequence

import plotly.colors
import plotly.graph_objects as go
from plotly.subplots import make_subplots

DIGITS = list(range(10))
CURVE_COLOURS = plotly.colors.qualitative.Plotly  # Plotly's own default sequence, given explicitly to share it
_COMPACT = dict(margin=dict(l=10, r=10, t=40, b=10), height=320)
# The per-batch charts' axis starts at epoch 0, like the epoch curves below them: losses are reported every few
# batches, so a short run's first point is late (a 6-batch run's axis read 0.7–0.8 epoch beside curves from 0).
_EPOCHS_FROM_ZERO = dict(title="epoch", rangemode="tozero")
FEW_POINTS = 20  # a curve of this many points or fewer gets markers: a lone point drawn as a line is invisible


def _line_mode(points: int) -> str:
    return "lines+markers" if points <= FEW_POINTS else "lines"


def class_distribution(counts_by_split: dict[str, Sequence[int]]) -> go.Figure:
    """Each digit's share of its split, the counts on hover. In counts the test bars (~1,000) stood a sixth as tall as
    the train bars (~6,000) on one axis: the test split's balance could not be read, nor compared with train's."""
    bars = []
    for name, counts in counts_by_split.items():
        total = sum(counts) or 1
        bars.append(go.Bar(name=name, x=DIGITS, y=[100 * count / total for count in counts], customdata=list(counts),
                           hovertemplate=f"{name}, digit %{{x}}: %{{customdata:,}} images (%{{y:.1f}} %)"
                                         "<extra></extra>"))
    figure = go.Figure(bars)
    figure.update_layout(title="Images per digit (share of each split)", barmode="group",
                         xaxis=dict(title="digit", dtick=1),
                         yaxis=dict(title="share of the split's images", ticksuffix=" %", rangemode="tozero"),
                         **_COMPACT)
    return figure


def pixel_histogram(pixel_counts: Sequence[int], split_name: str) -> go.Figure:
    """Pixels per intensity 0–255 (`SplitStats.pixel_counts`) on a log axis."""
    # (Plotly's own hover read "(128, 2.5k)": which number is which, of what?)
    figure = go.Figure(go.Bar(x=list(range(256)), y=list(pixel_counts), marker_line_width=0,
                              hovertemplate="intensity %{x}: %{y:,} pixels<extra></extra>"))
    # dtick=1 on a log axis: one label per decade (10k, 100k, 1M …), not Plotly's crowded 2 and 5 in between
    figure.update_layout(title=f"Pixel intensities, {split_name} split (log scale: most are background 0)",
                         bargap=0, xaxis_title="intensity (0 = black, 255 = white)",
                         yaxis=dict(title="pixels", type="log", dtick=1), **_COMPACT)
    return figure


def log_axis_ticks(values: Sequence[float]) -> dict[str, Any]:
    """A log axis for `values` whose tick labels read in full. Once its range spans a decade, Plotly labels the 2
    and 5 between powers of ten by their first digit alone: a loss curve from 2.3 down to 0.05 read "2, 1, 5, 2, 0.1,
    5" down its axis, so a loss of 0.5 sat at "5". So: ticks at 1, 2 and 5 of each decade, in full, for values over
    5× apart (the range Plotly draws pads them); a range of a decade around a lone value (Plotly spread one over
    1–50); {} otherwise, where Plotly's own labels are full and finer."""
    positive = [value for value in values if value > 0 and math.isfinite(value)]
    if positive and max(positive) == min(positive):
        return dict(range=[math.log10(positive[0]) - 0.3, math.log10(positive[0]) + 0.3])
    if not positive or max(positive) < 5 * min(positive):
        return {}
    low, high = math.floor(math.log10(min(positive))), math.ceil(math.log10(max(positive)))
    ticks = [round(mantissa * 10.0 ** exponent, 12) for exponent in range(low, high + 1) for mantissa in (1, 2, 5)]
    return dict(tickvals=ticks, ticktext=[f"{tick:g}" for tick in ticks])


def batch_loss(batch_losses: Sequence[tuple[int, float]], steps_per_epoch: float) -> go.Figure:
    """The train loss reports, (batch, mean loss since the last report), over epochs on a log axis."""
    epochs = [step / steps_per_epoch for step, _ in batch_losses] if steps_per_epoch else []
    losses = [loss for _, loss in batch_losses]
    figure = go.Figure(go.Scatter(x=epochs, y=losses, mode=_line_mode(len(epochs)), name="train loss"))
    figure.update_layout(title="Train loss per batch", xaxis=_EPOCHS_FROM_ZERO,
                         yaxis=dict(title="loss", type="log", **log_axis_ticks(losses)), **_COMPACT)
    return figure


def learning_rate(learning_rates: Sequence[tuple[int, float]], steps_per_epoch: float) -> go.Figure:
    """The learning rate at each report, (batch, lr), over epochs."""
    epochs = [step / steps_per_epoch for step, _ in learning_rates] if steps_per_epoch else []
    rates = [lr for _, lr in learning_rates]
    figure = go.Figure(go.Scatter(x=epochs, y=rates, mode=_line_mode(len(epochs)), name="lr"))
    # From 0: a constant rate (scheduler none, or a lone report) got Plotly's ±1 around it, a flat line at "0" on an
    # axis from -1 to 1. Up to twice a constant rate, so its line sits on a labelled tick. "1e-05" as the slider
    # writes it, not Plotly's "10μ".
    constant = bool(rates) and max(rates) == min(rates) > 0
    figure.update_layout(title="Learning rate", xaxis=_EPOCHS_FROM_ZERO,
                         yaxis=dict(title="lr", rangemode="tozero", exponentformat="e",
                                    **(dict(range=[0, 2 * rates[0]]) if constant else {})), **_COMPACT)
    return figure


def epoch_curves(runs: dict[str, Sequence[dict[str, Any]]], compared: bool = False) -> go.Figure:
    """Loss and accuracy per epoch (train dashed, test solid) for one run or overlaid for several.

    One legend entry per curve *pair*: a colour stands for a split (one run) or a run (several), the same in both
    charts, so each accuracy curve is matched to its loss curve by its legend entry and colour. `compared`: the
    runs of a comparison, named even when only one has curves (it read "train" and "test", of no model named)."""
    # One figure title and named y-axes, as the per-batch charts above it have: subplot titles are annotations, which
    # Streamlit's theme draws small, grey and centred, unlike every other chart title of the app.
    figure = make_subplots(rows=1, cols=2)
    single = len(runs) == 1 and not compared
    # comparing runs: test curves only, or the chart turns into spaghetti
    splits = (("train", "dash"), ("test", "solid")) if single else (("test", "solid"),)
    last_epoch = 0.0
    for run_index, (name, history) in enumerate(runs.items()):
        epochs = [record["epoch"] for record in history]
        last_epoch = max([last_epoch, *epochs])
        for split_index, (split, dash) in enumerate(splits):
            label = split if single else name
            colour = CURVE_COLOURS[(split_index if single else run_index) % len(CURVE_COLOURS)]
            for column, metric in ((1, "loss"), (2, "accuracy")):
                curve = f"{split} {metric}" if single else f"{name} · {split} {metric}"
                figure.add_trace(go.Scatter(
                    x=epochs, y=[record[f"{split}_{metric}"] for record in history], mode="lines+markers",
                    name=label, legendgroup=label, showlegend=column == 1, line=dict(dash=dash, color=colour),
                    hovertemplate=f"{curve}<br>epoch %{{x:.2f}}: %{{y:.4g}}<extra></extra>"), row=1, col=column)
    # From epoch 0, a little past the last point: a run stopped after its first evaluation (one point at a fractional
    # epoch) would otherwise get Plotly's default axis around that point, -0.5 to 1.
    figure.update_xaxes(title_text="epoch", range=[0, last_epoch * 1.05] if last_epoch > 0 else None)
    figure.update_yaxes(title_text="loss", row=1, col=1)
    figure.update_yaxes(title_text="accuracy (%)", row=1, col=2)
    # The legend goes under the charts: beside them, run names ("checkpoints/default.pt") took a third of an 800-px
    # window's page and squeezed both charts to slivers.
    figure.update_layout(title="Loss and accuracy per epoch",
                         **{**_COMPACT, "height": 400, "margin": dict(l=10, r=10, t=50, b=10)},
                         legend=dict(orientation="h", xanchor="left", x=0, yanchor="top", y=-0.22,
                                     title_text=None if single else "test curves:"))
    return figure


def _share(value: float) -> str:
    """A row-normalised cell, short enough for its cell at 12 px: "0", "0.4", "99.6", "100" — percent, the sign on the
    colour bar and in the page's caption. With it ("99.6%"), the diagonal's shares were wider than their cells in a
    1400-px window: they ran into their neighbours, and the corners' were cut off by the plot's edge."""
    return "0" if value == 0 else f"{100 * value:.1f}".replace("100.0", "100")


def confusion_heatmap(matrix: Sequence[Sequence[float]], counts: Sequence[Sequence[int]], normalised: bool,
                      selected: tuple[int, int] | None = None) -> go.Figure:
    """Rows = true digit, columns = predicted. Invisible markers over the cells make a click select that cell."""
    text = [[_share(value) if normalised else f"{value:,.0f}" for value in row] for row in matrix]
    # 12 px: left to itself Plotly fitted the numbers to the cells at about 7 px. Its text colour stays automatic,
    # dark on light cells and white on dark ones.
    # shares as percent, so the colour bar reads "80 %" as the page writes percentages (a d3 ".0%" reads "80%")
    z = [[100 * value for value in row] for row in matrix] if normalised else matrix
    figure = go.Figure(go.Heatmap(z=z, x=DIGITS, y=DIGITS, text=text, texttemplate="%{text}",
                                  textfont=dict(size=12), colorscale="Blues", hoverinfo="skip", showscale=True,
                                  # reads like the cells, and says what its scale counts
                                  colorbar=dict(**(dict(ticksuffix=" %") if normalised else dict(tickformat=",")),
                                                title=dict(text="share" if normalised else "images"))))
    cells = [(true, predicted) for true in DIGITS for predicted in DIGITS]
    figure.add_trace(go.Scatter(
        x=[p for _, p in cells], y=[t for t, _ in cells], mode="markers",
        marker=dict(size=34, symbol="square", opacity=0.01, color="black"),
        customdata=[[t, p, counts[t][p]] for t, p in cells],
        hovertemplate="true %{customdata[0]} → predicted %{customdata[1]}: %{customdata[2]:,} images<extra></extra>",
        showlegend=False))
    if selected is not None:
        figure.add_shape(type="rect", x0=selected[1] - 0.5, x1=selected[1] + 0.5, y0=selected[0] - 0.5,
                         y1=selected[0] + 0.5, line=dict(color="#ff4b4b", width=3))
    figure.update_layout(height=400, margin=dict(l=10, r=10, t=10, b=10),  # ~square in its 420-px panel
                         xaxis=dict(title="predicted digit", dtick=1, range=[-0.5, 9.5], constrain="domain"),
                         # square cells: in a column narrower than tall, "domain" shrinks the plot area (the
                         # default stretched the y range to about -15…24, drawing empty rows of digits that do not exist)
                         yaxis=dict(title="true digit", dtick=1, range=[9.5, -0.5], scaleanchor="x",
                                    constrain="domain"),
                         clickmode="event+select", dragmode=False)
    return figure


def probabilities(values: Sequence[float], predicted: int | None) -> go.Figure:
    """The ten digits' probabilities as bars, the `predicted` digit's in red (none when it is None)."""
    colours = ["#ff4b4b" if digit == predicted else "#7f9cc4" for digit in DIGITS]
    figure = go.Figure(go.Bar(x=DIGITS, y=list(values), marker_color=colours,
                              text=[f"{v:.0%}" if v >= 0.01 else "" for v in values], textposition="outside",
                              # Plotly shrinks an outside label to the room above its bar: 100 % came out about
                              # 6 px high. Full size instead, drawn over the axis's top if need be.
                              textfont_size=12, constraintext="none", cliponaxis=False))
    figure.update_layout(title="Probability per digit", xaxis=dict(title="digit", dtick=1),
                         yaxis=dict(title="probability", range=[0, 1.1], tickformat=".0%"), **_COMPACT)
    return figure
