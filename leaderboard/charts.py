"""Matplotlib figures of the leaderboard: robustness, semantic generalization, confusion matrix.

Each function takes a table from :mod:`leaderboard.data` and returns a Figure (the Agg backend:
no screen is needed). Text drawn into a figure is pixels, so model names cannot inject markup.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # a Space and CI have no display

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import imageattributionbench as iab  # noqa: E402
from leaderboard.data import CLEAN  # noqa: E402


def _empty(message: str) -> Figure:
    fig, ax = plt.subplots(figsize=(7, 2))
    ax.text(0.5, 0.5, message, ha="center", va="center")
    ax.set_axis_off()
    return fig


def robustness_figure(table: pd.DataFrame) -> Figure:
    """Accuracy at clean and each degradation, one line per model."""
    if table.empty:
        return _empty("No model has degraded-protocol results yet.")
    order = [CLEAN, *iab.DEGRADATIONS]
    fig, ax = plt.subplots(figsize=(8, 4))
    for model, rows in table.groupby("model", sort=True):
        rows = rows.set_index("condition").reindex(order)
        ax.plot(order, rows["accuracy"], marker="o", label=model)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Robustness: accuracy under each degradation")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="lower left")
    fig.tight_layout()
    return fig


def semantic_figure(table: pd.DataFrame) -> Figure:
    """Seen vs unseen accuracy per semantic-disjoint task: one panel per task, a pair of bars
    per model."""
    if table.empty:
        return _empty("No model has semantic-disjoint results yet.")
    tasks = list(dict.fromkeys(table["task"]))
    models = sorted(set(table["model"]))
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks) + 1, 4), squeeze=False,
                             sharey=True)
    width = 0.8 / max(len(models), 1)
    for ax, task in zip(axes[0], tasks):
        rows = table[table["task"] == task].set_index("model")
        for i, model in enumerate(models):
            if model not in rows.index:
                continue
            r = rows.loc[model]
            bars = ax.bar([j + i * width for j in (0, 1)], [r["seen"], r["unseen"]], width,
                          label=model, color=f"C{i}")
            bars[1].set_hatch("//")
        ax.set_xticks([0.4 - width / 2, 1.4 - width / 2], ["seen", "unseen"])
        ax.set_title(f"train on {rows['train semantic'].iloc[0]}", fontsize="medium")
        ax.set_ylim(0, 100)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("accuracy (%)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize="small", loc="center right")
    fig.suptitle("Semantic generalization: seen vs unseen subclasses")
    fig.tight_layout(rect=(0, 0, 0.85, 1))
    return fig


def confusion_figure(table: pd.DataFrame, title: str) -> Figure:
    """A heat map of a :func:`leaderboard.data.confusion_table`."""
    n = max(len(table), 1)
    fig, ax = plt.subplots(figsize=(2 + 0.45 * n, 1.5 + 0.45 * n))
    ax.imshow(table.to_numpy(), cmap="Blues")
    ax.set_xticks(range(len(table.columns)), table.columns, rotation=90, fontsize="small")
    ax.set_yticks(range(len(table.index)), table.index, fontsize="small")
    for (i, j), v in pd.DataFrame(table.to_numpy()).stack().items():
        if v:
            ax.text(j, i, str(v), ha="center", va="center", fontsize="x-small")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize="medium")
    fig.tight_layout()
    return fig
