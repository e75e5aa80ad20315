"""The plots a run leaves behind: confusion matrices and the robustness chart (PNG files).

matplotlib loads only when a plot is made, with the file-only Agg backend.
"""

from __future__ import annotations

import os
from pathlib import Path

import imageattributionbench as iab
from harness.results import Results

ROBUSTNESS_PNG = "robustness.png"
# Count annotations stay legible up to about this many classes per axis.
ANNOTATE_MAX_LABELS = 12
_FAMILY = {"down_up": "down", "jpeg": "jpeg", "blur": "blur"}
_FAMILY_COLOR = {"down": "tab:blue", "jpeg": "tab:orange", "blur": "tab:green"}


def confusion_png_name(protocol: str, split: str) -> str:
    return f"confusion_{protocol}_{split}.png"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on clusters and CI
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> Path:
    """Write a finished figure as PNG (making its folder) and free it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_confusion(split_metrics: dict, path: str | os.PathLike, title: str) -> Path:
    """Save one split's confusion matrix as a PNG: true labels on rows, predictions on columns,
    colours normalised per row (recall), counts written in the cells of small matrices.

    Labels with neither a sample nor a prediction are left off: they carry no information and
    would drown a small matrix in a 31-label grid.
    """
    import numpy as np

    plt = _pyplot()
    cm = np.asarray(split_metrics["confusion_matrix"], dtype=np.int64).reshape(
        len(split_metrics["labels"]), len(split_metrics["labels"]))
    labels = list(split_metrics["labels"])
    keep = np.flatnonzero((cm.sum(axis=0) + cm.sum(axis=1)) > 0)
    if len(keep):
        cm, labels = cm[np.ix_(keep, keep)], [labels[i] for i in keep]
    n = len(labels)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)

    side = max(4.0, 0.38 * n + 2.5)
    fig, ax = plt.subplots(figsize=(side + 1.0, side), dpi=100)
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(n), labels, rotation=90, fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    if n <= ANNOTATE_MAX_LABELS:
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true label")
    return _save(fig, path)


def plot_robustness(results: Results, path: str | os.PathLike) -> Path:
    """Save a bar chart of accuracy (%) on clean images then each degradation, in the paper's
    order (level 1-6), coloured by family (down, jpeg, blur), with the clean level dashed."""
    plt = _pyplot()
    degraded = results["protocols"]["degraded"]
    summary = degraded.get("summary") or {}
    clean = summary.get("clean_accuracy")
    if clean is None:
        clean = results["protocols"].get("standard", {}).get("splits", {}).get("test", {}).get(
            "accuracy")
    names = [d.name for d in sorted(iab.DEGRADATIONS.values(), key=lambda d: d.level)
             if d.name in degraded["splits"]]
    xs, heights, colors = [], [], []
    if clean is not None:
        xs.append("clean")
        heights.append(100 * clean)
        colors.append("tab:gray")
    for name in names:
        xs.append(name)
        heights.append(100 * degraded["splits"][name]["accuracy"])
        colors.append(_FAMILY_COLOR[_FAMILY[iab.DEGRADATIONS[name].kind]])

    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=100)
    bars = ax.bar(range(len(xs)), heights, color=colors)
    ax.bar_label(bars, fmt="%.1f", fontsize=8, padding=2)
    if clean is not None:
        ax.axhline(100 * clean, color="tab:gray", linestyle="--", linewidth=1)
    ax.set_xticks(range(len(xs)), xs)
    ax.set_ylim(0, 105)
    ax.set_ylabel("accuracy (%)")
    ax.set_xlabel("degradation (paper level 1-6)")
    ax.set_title(f"Robustness: {results['model']['id']}", fontsize=10)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in _FAMILY_COLOR.values()]
    ax.legend(handles, list(_FAMILY_COLOR), loc="lower left", fontsize=8)
    return _save(fig, path)
