"""The benchmark's metric, and the summaries that compare splits and degradations.

`load_metric()` loads the `evaluate` module in `attribution_metrics/` from this folder (offline);
`score_split` runs it on one split as the harness and the leaderboard both do; `degradation_drop`
and `seen_unseen_gap` are pure functions over accuracies given as fractions;
`rejection_threshold` picks the open-set threshold from validation confidences;
`wilson_interval` is the 95% confidence interval of an accuracy (plots and tables).
"""

from __future__ import annotations

import math
from pathlib import Path

METRIC_PATH = Path(__file__).resolve().parent / "attribution_metrics"


def load_metric():
    """The ImageAttributionBench `evaluate.Metric`, loaded from its folder (no network)."""
    import evaluate  # deferred: only the harness needs evaluate, not importers of the helpers

    return evaluate.load(str(METRIC_PATH))


def score_split(metric, predictions, references, scores, semantics,
                known_labels=None, rejection_threshold=None) -> dict:
    """The metric module's numbers for one split, computed the way the harness records them and
    the leaderboard recomputes them: ids and score columns follow the benchmark's labels
    (``rejection_threshold``: the open set's, chosen on validation)."""
    import imageattributionbench as iab

    return metric.compute(predictions=predictions, references=references, scores=scores,
                          semantics=semantics, labels=list(iab.LABELS),
                          known_labels=known_labels, rejection_threshold=rejection_threshold)


def _fraction(name: str, value: float) -> float:
    value = float(value)
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} = {value!r} is not a fraction in [0, 1] (percentages are refused)")
    return value


def degradation_drop(clean_accuracy: float, degraded: dict[str, float]) -> dict:
    """Accuracy under each degradation and its drop from the clean accuracy.

    Returns ``{"clean": c, "per_degradation": {name: {"accuracy": a, "drop": c - a}},
    "mean_accuracy": m, "worst": name, "worst_accuracy": a}`` (drops are negative where a
    degradation helps).
    The worst is the lowest accuracy; among ties, the first in ``degraded``'s order.
    """
    clean = _fraction("clean_accuracy", clean_accuracy)
    if not degraded:
        raise ValueError("degraded is empty: give at least one {degradation name: accuracy}")
    acc = {name: _fraction(f"degraded[{name!r}]", a) for name, a in degraded.items()}
    mean = sum(acc.values()) / len(acc)
    worst = min(acc, key=acc.__getitem__)
    return {
        "clean": clean,
        "per_degradation": {name: {"accuracy": a, "drop": clean - a} for name, a in acc.items()},
        "mean_accuracy": mean,
        "worst": worst,
        "worst_accuracy": acc[worst],
    }


def seen_unseen_gap(test_seen_accuracy: float, test_accuracy: float) -> dict:
    """Accuracy on seen-semantics test images against unseen ones: ``{"seen", "unseen", "gap"}``."""
    seen = _fraction("test_seen_accuracy", test_seen_accuracy)
    unseen = _fraction("test_accuracy", test_accuracy)
    return {"seen": seen, "unseen": unseen, "gap": seen - unseen}


# The open-set operating point: the share of known validation images kept (95%, the usual
# "TPR 95%" point), so the threshold never sees a test image or an unknown generator.
ACCEPT_KNOWN = 0.95


def rejection_threshold(known_confidence, accept: float = ACCEPT_KNOWN) -> float | None:
    """The confidence (maximum probability over the known labels) below which an image is
    rejected as unknown: the value that accepts ``accept`` of the known validation images
    given. None when there are none."""
    import numpy as np

    conf = np.asarray(known_confidence, dtype=np.float64).ravel()
    if conf.size == 0:
        return None
    # the largest observed confidence that still keeps at least `accept` of them
    k = min(int(np.floor(conf.size * (1.0 - accept) + 1e-9)), conf.size - 1)
    return float(np.sort(conf)[k])


def wilson_interval(correct: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of a proportion ``correct / n`` (95% for the default ``z``): unlike
    the normal approximation it stays inside [0, 1] and is sound at 0% and 100% with few
    images. ``(0.0, 1.0)`` when ``n`` is 0."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= correct <= n:
        raise ValueError(f"correct = {correct} is not between 0 and n = {n}")
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if correct == 0 else max(0.0, centre - half)
    hi = 1.0 if correct == n else min(1.0, centre + half)
    return lo, hi
