"""The metadata-only shortcut baseline: attribution from format, size, file size and JPEG
quality alone, never from pixels.

If it beats chance, the benchmark leaks a shortcut (earlier detection sets were solvable from
JPEG real vs PNG generated images alone), and the dataset card says so. It is a k-nearest-
neighbour classifier on standardised metadata features, fitted on a protocol's train split
and scored on its test split (a fixed sample of at most 20,000 images of each), in numpy, so
that every build can afford it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

import numpy as np

import imageattributionbench as iab

if TYPE_CHECKING:
    from iab.shards import ImageStat

K = 5
FORMATS = ("PNG", "JPEG", "WEBP")
# A fixed sample keeps the baseline cheap on the full benchmark (k-NN is train x test).
MAX_ROWS = 20_000


def features(stats: Iterable["ImageStat"]) -> np.ndarray:
    """format one-hot, log width, log height, log bytes, JPEG quality / 100 (0 when none)."""
    rows = []
    for s in stats:
        onehot = [float(s.format == f) for f in FORMATS] + [float(s.format not in FORMATS)]
        rows.append(onehot + [np.log(s.width), np.log(s.height), np.log(max(s.nbytes, 1)),
                              (s.jpeg_quality or 0) / 100])
    return np.asarray(rows, dtype=np.float64).reshape(-1, len(FORMATS) + 5)


def knn_predict(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                k: int = K) -> np.ndarray:
    """Majority label of the k nearest training rows (ties: the smallest label id)."""
    mean, std = train_x.mean(0), train_x.std(0)
    std[std == 0] = 1.0
    a, b = (train_x - mean) / std, (test_x - mean) / std
    out = np.empty(len(b), dtype=int)
    step = max(1, 2_000_000 // max(len(a), 1))  # about 150 MB of distances at a time
    for i in range(0, len(b), step):
        d = ((b[i:i + step, None, :] - a[None, :, :]) ** 2).sum(-1)
        nearest = np.argsort(d, axis=1, kind="stable")[:, :k]
        for j, idx in enumerate(nearest):
            votes = np.bincount(train_y[idx], minlength=len(iab.LABELS))
            out[i + j] = int(votes.argmax())
    return out


@dataclass(frozen=True)
class ShortcutScore:
    protocol: str
    accuracy: float
    chance: float  # the most frequent test label's share: what a constant guess gets
    n_test: int

    @property
    def leaks(self) -> bool:
        """Clearly above chance: more than 5 points and more than 1.5x."""
        return self.accuracy > self.chance + 0.05 and self.accuracy > 1.5 * self.chance


def score(stats: list["ImageStat"], protocol: str) -> ShortcutScore | None:
    """Train on the protocol's train split, score its test split; None if either is empty."""
    proto = iab.protocol(protocol)
    train_spec, test_spec = proto.split("train"), proto.split("test")

    def member(spec, s) -> bool:
        return ((spec.semantics is None or s.semantic in spec.semantics)
                and (spec.labels is None or s.label in spec.labels) and s.fold in spec.folds)

    train = _sample([s for s in stats if member(train_spec, s)])
    test = _sample([s for s in stats if member(test_spec, s)])
    if not train or not test:
        return None
    train_y = np.array([iab.LABEL_IDS[s.label] for s in train])
    test_y = np.array([iab.LABEL_IDS[s.label] for s in test])
    pred = knn_predict(features(train), train_y, features(test))
    chance = np.bincount(test_y).max() / len(test_y)
    return ShortcutScore(protocol, float((pred == test_y).mean()), float(chance), len(test))


def _sample(rows: list) -> list:
    if len(rows) <= MAX_ROWS:
        return rows
    keep = np.sort(np.random.default_rng(0).choice(len(rows), MAX_ROWS, replace=False))
    return [rows[i] for i in keep]


SHORTCUT_PROTOCOLS = ("standard",) + iab.PAPER_SEMANTIC_TASKS


def scores(stats: list["ImageStat"]) -> list[ShortcutScore]:
    return [s for p in SHORTCUT_PROTOCOLS if (s := score(stats, p)) is not None]
