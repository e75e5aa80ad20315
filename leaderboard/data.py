"""Load a folder of results files into a :class:`Board`: pure Python, no UI.

A results folder holds ``<model org>/<model name>/results_<time>.json`` files, each with its
``samples_<protocol>_<time>.parquet`` beside it (the layout the backend and
``harness.report.push_report`` write into the results dataset repo). :func:`load_board` reads
every file at bounded cost (:mod:`leaderboard.intake`), lists those that fail with the reason,
and keeps the latest valid file of each **folder**: an entry is identified by where it lives,
never by the model id a file claims. With ``layout="repo"`` (the results repo) a file must live
in its own model's folder; elsewhere two folders claiming one model id are both marked as a
conflict. Each entry is then checked against its samples (:mod:`leaderboard.verify`), and the
entries on one dataset (repo and revision) are ranked; the others are listed unranked.

    >>> board = load_board("results", dataset_revision="abc123")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path, PurePosixPath

import imageattributionbench as iab
from harness.report import results_repo_path
from harness.results import leaderboard_values
from leaderboard.intake import read_results_file
from leaderboard.reference import DatasetRef, ReferenceLabels, dataset_ref
from leaderboard.verify import UNCHECKED, Verification, verify

RESULTS_GLOB = "results_*.json"
SAMPLES_GLOB = "samples_*.parquet"
LAYOUTS = ("runs", "repo")
MAX_FILES = 20_000  # a results repo with more is refused rather than read for minutes


@dataclass(frozen=True)
class Entry:
    """The latest valid results file of one folder, and what the board found about it."""

    path: str  # relative to the results folder, '/'-separated
    results: dict
    verification: Verification = Verification(UNCHECKED)
    conflict: str = ""  # another folder claims the same model id

    @property
    def folder(self) -> str:
        return str(PurePosixPath(self.path).parent)

    @property
    def model_id(self) -> str:
        return self.results["model"]["id"]

    @property
    def method(self) -> str:
        return self.results["method"]

    @property
    def created_at(self) -> str:
        return self.results["created_at"]

    @property
    def dataset(self) -> DatasetRef:
        return dataset_ref(self.results)

    @property
    def values(self) -> dict[str, float]:
        return leaderboard_values(self.results)


@dataclass(frozen=True)
class Rejected:
    """A results file left off the leaderboard, and why."""

    path: str
    reason: str


@dataclass
class Board:
    """Everything read from one results folder."""

    entries: list[Entry] = field(default_factory=list)  # latest valid file per folder
    superseded: list[Entry] = field(default_factory=list)  # older valid files of those folders
    rejected: list[Rejected] = field(default_factory=list)
    ranked_dataset: DatasetRef | None = None  # the dataset whose entries are ranked together

    def entry(self, key: str) -> Entry:
        """An entry by its folder (or, when only one folder holds it, by model id)."""
        for e in self.entries:
            if e.folder == key:
                return e
        by_id = [e for e in self.entries if e.model_id == key]
        if len(by_id) == 1:
            return by_id[0]
        raise iab.BenchmarkError(f"no entry {key!r}; entries on the board: "
                                 + ", ".join(e.folder for e in self.entries))

    def is_ranked(self, e: Entry) -> bool:
        return not self.unranked_reason(e)

    def unranked_reason(self, e: Entry) -> str:
        """'' for an entry ranked with the others, else why it is not."""
        if e.conflict:
            return e.conflict
        if self.ranked_dataset is None or _group(e.dataset) != _group(self.ranked_dataset):
            where = self.ranked_dataset.describe() if self.ranked_dataset else "?"
            return f"scored on {e.dataset.describe()}; the board ranks {where}"
        return ""

    def ranked(self) -> list[Entry]:
        return [e for e in self.entries if self.is_ranked(e)]

    def unranked(self) -> list[Entry]:
        return [e for e in self.entries if not self.is_ranked(e)]


def _group(ref: DatasetRef) -> tuple:
    return (ref.local, ref.repo if ref.local else ref.repo.lower(), ref.revision)


class Verifier:
    """Checks entries against their samples, remembering the outcome per file version, so a
    refresh only checks what changed."""

    def __init__(self, labels: ReferenceLabels | None = None, metric=None,
                 datasets: tuple[str, ...] = (iab.HUB_REPO_ID,)):
        self.labels = labels or ReferenceLabels()
        self._metric = metric
        self.datasets = datasets  # the Hub datasets whose labels may be read
        self._done: dict[tuple, Verification] = {}

    def _stamp(self, path: Path) -> tuple:
        files = [path, *sorted(path.parent.glob(SAMPLES_GLOB))]
        return tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files)

    def __call__(self, results: dict, path: Path) -> Verification:
        key = (str(path), self._stamp(path))
        if key in self._done:
            return self._done[key]
        if self._metric is None:
            from harness.metrics import load_metric

            self._metric = load_metric()
        outcome = verify(results, path, self.labels, self._metric, self.datasets)
        if not outcome.retry:
            self._done[key] = outcome
        return outcome


def _expected_folder(results: dict) -> str:
    return str(PurePosixPath(results_repo_path(results)).parent)


def _choose_ranked(entries: list[Entry], dataset: str | None,
                   revision: str | None) -> DatasetRef | None:
    """The dataset ranked: the one asked for, else the one most entries were scored on (the
    newest among ties)."""
    if revision is not None or dataset is not None:
        for e in sorted(entries, key=lambda e: e.created_at, reverse=True):
            d = e.dataset
            if (revision is None or d.revision == revision) and (
                    dataset is None or d.repo.lower() == dataset.lower()):
                return d
        return DatasetRef(dataset or iab.HUB_REPO_ID, revision, False)
    if not entries:
        return None
    counts = Counter(_group(e.dataset) for e in entries)
    newest = {}
    for e in entries:
        newest[_group(e.dataset)] = max(newest.get(_group(e.dataset), ""), e.created_at)
    best = max(counts, key=lambda g: (counts[g], newest[g]))
    return next(e.dataset for e in entries if _group(e.dataset) == best)


def load_board(root: str | os.PathLike, dataset_revision: str | None = None, *,
               dataset: str | None = None, layout: str = "runs",
               verifier: Verifier | None = None, require_verified: bool = False,
               now: datetime | None = None) -> Board:
    """Read every ``results_*.json`` under ``root`` (any depth) into a :class:`Board`.

    ``dataset``/``dataset_revision`` name the dataset ranked (default: the one most entries
    used); ``verifier`` checks entries against their samples (None: not checked);
    ``require_verified`` moves entries that fail the check to the rejected list.
    """
    if layout not in LAYOUTS:
        raise iab.BenchmarkError(f"unknown layout {layout!r}; valid: {', '.join(LAYOUTS)}")
    root = Path(root)
    board = Board()
    valid: list[Entry] = []
    paths = []
    for path in root.rglob(RESULTS_GLOB):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue  # snapshot_download's .cache folder, half-written temporary files
        paths.append(path)
        if len(paths) > MAX_FILES:
            board.rejected.append(Rejected(".", f"more than {MAX_FILES} results files: the "
                                                "rest were not read"))
            break
    for path in sorted(paths[:MAX_FILES]):
        rel = path.relative_to(root).as_posix()
        results, reason = read_results_file(path, now)
        if results is None:
            board.rejected.append(Rejected(rel, reason))
            continue
        folder = str(PurePosixPath(rel).parent)
        if layout == "repo" and folder != _expected_folder(results):
            board.rejected.append(Rejected(rel, (
                f"it lives in {folder}/ but claims model.id {results['model']['id']!r}, whose "
                f"results live in {_expected_folder(results)}/: an entry is identified by "
                "its folder, so this file is not counted for either")))
            continue
        valid.append(Entry(rel, results))
    latest: dict[str, Entry] = {}
    # created_at is fixed-width UTC ISO, so string order is time order; the path breaks ties.
    for e in sorted(valid, key=lambda e: (e.created_at, e.path)):
        if e.folder in latest:
            board.superseded.append(latest[e.folder])
        latest[e.folder] = e
    checked = []
    for e in latest.values():
        if verifier is not None:
            e = replace(e, verification=verifier(e.results, root / e.path))
            if require_verified and not e.verification.verified:
                board.rejected.append(Rejected(e.path, f"not verified: {e.verification.reason}"))
                continue
        checked.append(e)
    folders_of: dict[str, list[str]] = {}
    for e in checked:
        folders_of.setdefault(e.model_id, []).append(e.folder)
    for i, e in enumerate(checked):
        others = [f for f in folders_of[e.model_id] if f != e.folder]
        if others:
            checked[i] = replace(e, conflict=f"conflict: {', '.join(others)}/ also claim model "
                                             f"id {e.model_id!r}; not ranked until one is "
                                             "removed")
    board.entries = checked
    board.ranked_dataset = _choose_ranked([e for e in checked if not e.conflict], dataset,
                                          dataset_revision)
    return board


def fetch_results_repo(repo_id: str, revision: str | None = None,
                       local_dir: str | os.PathLike | None = None) -> Path:
    """Download the results and samples files of the dataset repo ``repo_id``; returns the
    folder. Raises when the Hub cannot be reached (rather than quietly handing back an old
    cached copy), so the board can say so."""
    from huggingface_hub import HfApi, snapshot_download

    sha = HfApi().repo_info(repo_id, repo_type="dataset", revision=revision).sha
    return Path(snapshot_download(repo_id, repo_type="dataset", revision=sha,
                                  allow_patterns=[f"**/{RESULTS_GLOB}", f"**/{SAMPLES_GLOB}"],
                                  local_dir=local_dir))
