"""The plots a run leaves behind: confusion matrices and the robustness chart (PNG files).

Each plot is built by a ``*_figure`` function that returns the matplotlib Figure (tests read
its titles, labels, legend and lines back), and saved by the matching ``plot_*`` function.
matplotlib loads only when a plot is made, with the file-only Agg backend.
"""

from __future__ import annotations

import os
from pathlib import Path

import imageattributionbench as iab
from harness.metrics import wilson_interval
from harness.results import Results

ROBUSTNESS_PNG = "robustness.png"
# Count annotations stay legible up to about this many classes per axis.
ANNOTATE_MAX_LABELS = 12
REJECTED = "rejected / unknown"
UNKNOWN_MARK = " (unknown)"
UNKNOWN_COLOR = "tab:red"
_FAMILY = {"down_up": "down-up", "jpeg": "JPEG", "blur": "blur"}
_FAMILY_COLOR = {"down-up": "tab:blue", "JPEG": "tab:orange", "blur": "tab:green"}
_FAMILY_TEXT = {"clean": "clean test images", "down-up": "down-up: nearest resize down, back up",
                "JPEG": "JPEG: re-encoded at quality q", "blur": "blur: Gaussian, radius r"}
CLEAN_COLOR = "tab:gray"


def confusion_png_name(protocol: str, split: str) -> str:
    return f"confusion_{protocol}_{split}.png"


def degradation_label(name: str) -> str:
    """A reader's name for a degradation: ``jpeg_q30`` -> ``JPEG q30``, ``down_x2`` ->
    ``down-up 1/2`` (nearest resize to half, then back), ``blur_s3`` -> ``blur r=3`` (PIL's
    Gaussian radius)."""
    d = iab.degradation(name)
    if d.kind == "down_up":
        return f"down-up 1/{round(1 / d.param)}"
    if d.kind == "jpeg":
        return f"JPEG q{d.param:g}"
    return f"blur r={d.param:g}"


def chance_level(split_metrics: dict) -> float | None:
    """What always answering the split's most frequent label scores (its share)."""
    cm = split_metrics.get("confusion_matrix")
    if not cm:
        return None
    rows = [sum(r) for r in cm]
    return max(rows) / sum(rows) if sum(rows) else None


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


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def confusion_title(split_metrics: dict, title: str, known_labels=None) -> str:
    """``title`` plus the split's scores and size; for the open set (``known_labels``), the
    scores that mean something there (known-class accuracy, AUROC of rejection, OSCR), not the
    plain accuracy, which counts every unknown image as an error."""
    m = split_metrics
    if known_labels and "known_accuracy" in m:
        n_known = sum(sum(r) for r, lb in zip(m["confusion_matrix"], m["labels"])
                      if lb in set(known_labels))
        return (f"{title}\nknown-class accuracy {_pct(m['known_accuracy'])}, AUROC of "
                f"rejection {_pct(m.get('auroc_unknown'))}\nOSCR {_pct(m.get('oscr'))}; "
                f"n = {m['n_samples']} ({n_known} of known generators)")
    return f"{title}\naccuracy {_pct(m['accuracy'])}, n = {m['n_samples']}"


def confusion_figure(split_metrics: dict, title: str, known_labels=None):
    """The confusion matrix of one split as a Figure: true labels on rows (only those with
    images), predicted labels on columns (only those the model can give: with
    ``known_labels``, the open set, the known ones, then a "rejected / unknown" column when the
    metrics hold the rejections at the validation threshold). Unknown generators' rows are
    marked "(unknown)" in red. Colours are per row (recall); counts are written in the cells of
    small matrices; the title carries accuracy and n."""
    import numpy as np

    plt = _pyplot()
    labels = list(split_metrics["labels"])
    k = len(labels)
    open_cm = split_metrics.get("open_set_confusion_matrix") if known_labels else None
    cm = np.asarray(open_cm if open_cm is not None else split_metrics["confusion_matrix"],
                    dtype=np.int64).reshape(k, -1)
    true_counts, pred_counts = cm.sum(axis=1), cm[:, :k].sum(axis=0)
    known = set(known_labels or ())
    rows = [i for i in range(k) if true_counts[i] > 0]
    if known_labels:
        rows = [i for i in rows if labels[i] in known] + [i for i in rows
                                                          if labels[i] not in known]
        cols = [i for i in range(k) if labels[i] in known and (true_counts[i] or pred_counts[i])]
    else:
        cols = [i for i in range(k) if true_counts[i] or pred_counts[i]]
    col_names = [labels[i] for i in cols]
    if open_cm is not None:
        cols = cols + [k]
        col_names.append(REJECTED)
    shown = cm[np.ix_(rows, cols)]
    row_names = [labels[i] + ("" if not known_labels or labels[i] in known else UNKNOWN_MARK)
                 for i in rows]
    totals = true_counts[rows][:, None]
    norm = np.divide(shown, totals, out=np.zeros(shown.shape, dtype=float), where=totals > 0)

    side = max(4.0, 0.38 * max(len(rows), len(cols)) + 2.5)
    fig, ax = plt.subplots(figsize=(side + 1.4, side + 0.3), dpi=100)
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(cols)), col_names, rotation=90, fontsize=8)
    ax.set_yticks(range(len(rows)), row_names, fontsize=8)
    for tick, i in zip(ax.get_yticklabels(), rows):
        if known_labels and labels[i] not in known:
            tick.set_color(UNKNOWN_COLOR)
    if known_labels and any(labels[i] not in known for i in rows) and \
            any(labels[i] in known for i in rows):
        n_known_rows = sum(labels[i] in known for i in rows)
        ax.axhline(n_known_rows - 0.5, color=UNKNOWN_COLOR, linewidth=1.5)
    if open_cm is not None:
        ax.axvline(len(cols) - 1.5, color="black", linewidth=1.0)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(confusion_title(split_metrics, title, known_labels), fontsize=9)
    if max(len(rows), len(cols)) <= ANNOTATE_MAX_LABELS:
        for r in range(len(rows)):
            for c in range(len(cols)):
                if shown[r, c]:
                    ax.text(c, r, str(shown[r, c]), ha="center", va="center", fontsize=8,
                            color="white" if norm[r, c] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true label")
    return fig


def plot_confusion(split_metrics: dict, path: str | os.PathLike, title: str,
                   known_labels=None) -> Path:
    """Save :func:`confusion_figure` as a PNG."""
    return _save(confusion_figure(split_metrics, title, known_labels), path)


def robustness_figure(results: Results):
    """Accuracy (%) on the clean test split, then on each degradation in the paper's order,
    as bars coloured by family (clean in grey), with 95% Wilson confidence intervals, n under
    each bar, the clean level dashed and the chance level (the most frequent label's share)
    dotted, each named in the legend."""
    import numpy as np

    plt = _pyplot()
    protos = results["protocols"]
    degraded = protos["degraded"]
    clean_split = protos.get("standard", {}).get("splits", {}).get("test")
    clean = (degraded.get("summary") or {}).get("clean_accuracy")
    if clean is None and clean_split is not None:
        clean = clean_split["accuracy"]
    names = [d.name for d in sorted(iab.DEGRADATIONS.values(), key=lambda d: d.level)
             if d.name in degraded["splits"]]
    bars = []  # (label, accuracy, n, colour)
    if clean is not None:
        bars.append(("clean", clean, (clean_split or {}).get("n_samples"), CLEAN_COLOR))
    for name in names:
        m = degraded["splits"][name]
        bars.append((degradation_label(name), m["accuracy"], m.get("n_samples"),
                     _FAMILY_COLOR[_FAMILY[iab.DEGRADATIONS[name].kind]]))

    fig, ax = plt.subplots(figsize=(8.5, 4.8), dpi=100)
    heights = [100 * b[1] for b in bars]
    lo_err, hi_err = [], []
    for _, acc, n, _c in bars:
        if n:
            lo, hi = wilson_interval(round(acc * n), n)
            lo_err.append(100 * (acc - lo))
            hi_err.append(100 * (hi - acc))
        else:
            lo_err.append(0.0)
            hi_err.append(0.0)
    drawn = ax.bar(range(len(bars)), heights, color=[b[3] for b in bars],
                   yerr=np.array([lo_err, hi_err]), capsize=3, ecolor="black",
                   error_kw={"linewidth": 0.8})
    ax.bar_label(drawn, fmt="%.1f", fontsize=8, padding=2, label_type="center")
    handles, names_in_legend = [], []
    for fam, color in [("clean", CLEAN_COLOR)] + list(_FAMILY_COLOR.items()):
        if any(b[3] == color for b in bars):
            handles.append(plt.Rectangle((0, 0), 1, 1, color=color))
            names_in_legend.append(_FAMILY_TEXT[fam])
    if clean is not None:
        handles.append(ax.axhline(100 * clean, color=CLEAN_COLOR, linestyle="--", linewidth=1))
        names_in_legend.append(f"clean level {100 * clean:.1f}%")
    chance = chance_level(clean_split) if clean_split else None
    if chance is not None:
        handles.append(ax.axhline(100 * chance, color="black", linestyle=":", linewidth=1.2))
        names_in_legend.append(f"chance {100 * chance:.1f}% (most frequent label)")
    handles.append(plt.Line2D([], [], color="black", linewidth=0.8))
    names_in_legend.append("95% confidence interval (Wilson)")
    ax.set_xticks(range(len(bars)), [f"{b[0]}\nn={b[2]}" if b[2] else b[0] for b in bars],
                  fontsize=8)
    ax.set_ylim(0, 105)
    ax.set_ylabel("accuracy (%)")
    ax.set_xlabel("test images: clean, then degraded (the paper's levels 1 to 6, left to right)")
    ax.set_title(f"Robustness: {results['model']['id']}", fontsize=10)
    ax.legend(handles, names_in_legend, loc="upper center", bbox_to_anchor=(0.5, -0.25),
              ncol=3, fontsize=8, frameon=False)
    return fig


def plot_robustness(results: Results, path: str | os.PathLike) -> Path:
    """Save :func:`robustness_figure` as a PNG."""
    return _save(robustness_figure(results), path)
