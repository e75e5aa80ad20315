"""Interactive plotly figures of the leaderboard: robustness, semantic generalization, a model's
confusion matrix and its accuracy per generator. Hovering shows the model, the value and n.

Each function takes a frame from :mod:`leaderboard.tables` and returns a ``go.Figure`` for
``gr.Plot``. Plotly renders a few HTML tags and TeX (``$...$``) in its text, so every name
from a results file goes through :func:`plain` first: it is shown as the characters it is.
"""

from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

import imageattributionbench as iab
from leaderboard.tables import CLEAN

# 48 distinct colours before any repeats; past that the dash pattern changes too.
PALETTE = list(qualitative.Dark24) + list(qualitative.Light24)
DASHES = ("solid", "dash", "dot", "dashdot")
SEEN, UNSEEN = "#1f77b4", "#d62728"
FONT = {"size": 13}


def plain(text: str) -> str:
    """``text`` as literal characters in plotly (no markup, no TeX)."""
    out = html.escape(str(text), quote=False)
    # plotly typesets a string that starts and ends with '$' as TeX: a zero-width space first
    return "\u200b" + out if out.startswith("$") else out


def style(i: int) -> dict:
    """Line colour and dash of the i-th model: distinct for the first 48 models."""
    return {"color": PALETTE[i % len(PALETTE)], "dash": DASHES[(i // len(PALETTE)) % 4]}


def empty(message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=plain(message), showarrow=False, x=0.5, y=0.5, xref="paper",
                       yref="paper", font={"size": 15})
    fig.update_layout(xaxis={"visible": False}, yaxis={"visible": False}, height=200,
                      font=FONT, margin={"l": 20, "r": 20, "t": 20, "b": 20})
    return fig


def _chance_line(fig: go.Figure, chance: float | None, **where) -> None:
    if chance is None or chance != chance:  # NaN: no split told us
        return
    add = fig.add_vline if where.pop("vertical", False) else fig.add_hline
    add(chance, line={"dash": "dot", "color": "#555", "width": 1.5},
        annotation={"text": f"chance {chance:.1f}%", "font": {"size": 11, "color": "#555"}},
        **where)


def robustness_figure(table: pd.DataFrame) -> go.Figure:
    """Accuracy at clean and each degradation, one line per model; the dotted line is the
    accuracy of always answering the split's most common label."""
    if table.empty:
        return empty("No ranked model has degraded-protocol results yet.")
    order = [CLEAN, *iab.DEGRADATIONS]
    fig = go.Figure()
    for i, (model, rows) in enumerate(table.groupby("model", sort=True)):
        rows = rows.set_index("condition").reindex(order)
        fig.add_trace(go.Scatter(
            x=order, y=rows["accuracy"], mode="lines+markers", name=plain(model),
            line=style(i), marker={"size": 7},
            customdata=list(zip([plain(model)] * len(order), rows["n"].fillna(0).astype(int))),
            hovertemplate="%{customdata[0]}<br>%{x}: %{y:.1f}%<br>n = %{customdata[1]}"
                          "<extra></extra>"))
    _chance_line(fig, table["chance"].max(), annotation_position="bottom right")
    fig.update_layout(
        title="Robustness: accuracy under each degradation", font=FONT, height=460,
        yaxis={"title": "accuracy (%)", "range": [0, 100]}, xaxis={"title": "test condition"},
        legend={"x": 1.02, "xanchor": "left", "y": 1, "yanchor": "top"},  # beside the axes
        margin={"r": 260, "t": 60})
    return fig


def semantic_figure(table: pd.DataFrame) -> go.Figure:
    """Seen vs unseen accuracy per semantic-disjoint task: a panel per task, a row per model,
    the segment between the two dots is the gap."""
    if table.empty:
        return empty("No ranked model has semantic-disjoint results yet.")
    tasks = list(dict.fromkeys(table["task"]))
    models = sorted(set(table["model"]))
    trained_on = dict(zip(table["task"], table["train semantic"]))
    fig = make_subplots(rows=1, cols=len(tasks), shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=[f"train on {trained_on[t]}" for t in tasks])
    for c, task in enumerate(tasks, start=1):
        rows = table[table["task"] == task].set_index("model").reindex(models).dropna(
            subset=["seen"])
        names = [plain(m) for m in rows.index]
        seg_x, seg_y = [], []
        for name, (s, u) in zip(names, zip(rows["seen"], rows["unseen"])):
            seg_x += [s, u, None]
            seg_y += [name, name, None]
        fig.add_trace(go.Scatter(x=seg_x, y=seg_y, mode="lines", hoverinfo="skip",
                                 line={"color": "#bbb", "width": 3}, showlegend=False),
                      row=1, col=c)
        for key, colour, n_key in (("seen", SEEN, "n seen"), ("unseen", UNSEEN, "n unseen")):
            fig.add_trace(go.Scatter(
                x=rows[key], y=names, mode="markers", name=key, legendgroup=key,
                showlegend=c == 1, marker={"color": colour, "size": 10},
                customdata=list(zip(names, rows[n_key].astype(int), rows["gap"])),
                hovertemplate=f"%{{customdata[0]}}<br>{plain(task)} {key}: %{{x:.1f}}%<br>"
                              "n = %{customdata[1]}<br>gap %{customdata[2]:.1f}<extra></extra>"),
                row=1, col=c)
        _chance_line(fig, rows["chance"].max(), vertical=True, row=1, col=c)
        fig.update_xaxes(range=[0, 100], title_text="accuracy (%)", row=1, col=c)
    fig.update_layout(title="Semantic generalization: seen vs unseen subclasses", font=FONT,
                      height=180 + 28 * len(models), legend={"orientation": "h", "y": -0.15},
                      margin={"t": 90, "l": 20})
    fig.update_yaxes(autorange="reversed", automargin=True)
    return fig


def confusion_figure(table: pd.DataFrame, title: str) -> go.Figure:
    """A heat map of a :func:`leaderboard.tables.confusion_table`: colour is the share of the
    true label's images (the colour bar), the number in a cell is the count."""
    if table.empty:
        return empty("No images in this split.")
    counts = table.to_numpy()
    totals = counts.sum(axis=1, keepdims=True)
    share = 100.0 * counts / totals.clip(min=1)
    labels = [plain(x) for x in table.index]
    n = len(labels)
    fig = go.Figure(go.Heatmap(
        z=share, x=labels, y=labels, text=counts, texttemplate="%{text}",
        textfont={"size": 12 if n <= 12 else 9}, colorscale="Blues", zmin=0, zmax=100,
        colorbar={"title": {"text": "% of the true<br>label's images"}},
        customdata=[[int(totals[i][0])] * n for i in range(n)],
        hovertemplate="true %{y}, predicted %{x}<br>%{text} of %{customdata} images "
                      "(%{z:.1f}%)<extra></extra>", xgap=1, ygap=1))
    side = min(900, 160 + 34 * n)
    fig.update_layout(title=plain(title), font=FONT, height=side + 80, width=side + 220,
                      xaxis={"title": "predicted", "tickangle": -60},
                      yaxis={"title": "true", "autorange": "reversed"})
    return fig


def generator_figure(table: pd.DataFrame, title: str) -> go.Figure:
    """Accuracy per true label of one split, with what it is most often mistaken for: a
    :func:`leaderboard.tables.generator_table`."""
    if table.empty:
        return empty("No images in this split.")
    names = [plain(x) for x in table["label"]]
    fig = go.Figure(go.Bar(
        x=names, y=table["accuracy"], marker={"color": "#4c78a8"},
        customdata=list(zip(table["n"], [plain(x) for x in table["most confused with"]],
                            table["confused share"])),
        hovertemplate="%{x}: %{y:.1f}% of %{customdata[0]} images right<br>most often taken "
                      "for %{customdata[1]} (%{customdata[2]:.1f}%)<extra></extra>"))
    _chance_line(fig, table["chance"].max(), annotation_position="top right")
    fig.update_layout(title=plain(title), font=FONT, height=420,
                      yaxis={"title": "accuracy (%)", "range": [0, 100]},
                      xaxis={"title": "true label", "tickangle": -45})
    return fig
