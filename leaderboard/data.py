"""Load, check and tabulate results files for the leaderboard: pure Python, no UI.

A results folder holds ``<model org>/<model name>/results_<time>.json`` files (the layout
``harness.report.push_report`` writes into the results dataset repo). :func:`load_board` reads
every one, keeps those that pass :func:`harness.results_check.validate_results` (and, when asked, were
run on the expected dataset revision), lists the others with the reason, and keeps the latest
valid file per model id. The table and chart helpers turn a :class:`Board` into pandas frames.

    >>> board = load_board("results")  # doctest: +SKIP
    >>> main_table(board, methods=["finetune"], protocol="degraded")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

import imageattributionbench as iab
from harness.results import METHODS, leaderboard_values
from harness.results_check import validate_results

RESULTS_GLOB = "results_*.json"
# Reasons are shown in a table cell: the first few problems say enough to fix a file.
MAX_PROBLEMS_SHOWN = 3
MODEL_COLUMN = "Model"
METHOD_COLUMN = "Method"
TASK_COLUMNS: dict[str, str] = {t.id: f"{t.name} (%)" for t in iab.LEADERBOARD_TASKS}
CLEAN = "clean"


@dataclass(frozen=True)
class Entry:
    """One valid results file."""

    path: str  # relative to the results folder, '/'-separated
    results: dict

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

    entries: list[Entry] = field(default_factory=list)  # latest valid file per model id
    superseded: list[Entry] = field(default_factory=list)  # older valid files of those models
    rejected: list[Rejected] = field(default_factory=list)

    def entry(self, model_id: str) -> Entry:
        for e in self.entries:
            if e.model_id == model_id:
                return e
        raise iab.BenchmarkError(f"no results for model {model_id!r}; models on the board: "
                                 + ", ".join(e.model_id for e in self.entries))


def check_file(path: Path, dataset_revision: str | None = None) -> tuple[dict | None, str]:
    """``(results, "")`` for a good file, ``(None, reason)`` otherwise; never raises on content."""
    try:
        with open(path, encoding="utf-8") as f:
            results = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as e:  # JSONDecodeError is a ValueError
        return None, f"not a readable JSON file: {e}"
    problems = validate_results(results)
    if problems:
        more = len(problems) - MAX_PROBLEMS_SHOWN
        shown = "; ".join(problems[:MAX_PROBLEMS_SHOWN]) + (f"; (+{more} more)" if more > 0 else "")
        return None, f"invalid results ({len(problems)} problem(s)): {shown}"
    if dataset_revision is not None and results["dataset"]["revision"] != dataset_revision:
        return None, (f"dataset revision {results['dataset']['revision']!r} is not "
                      f"{dataset_revision!r}, the revision this leaderboard ranks")
    return results, ""


def load_board(root: str | os.PathLike, dataset_revision: str | None = None) -> Board:
    """Read every ``results_*.json`` under ``root`` (any depth) into a :class:`Board`."""
    root = Path(root)
    board = Board()
    valid: list[Entry] = []
    for path in sorted(root.rglob(RESULTS_GLOB)):
        rel = path.relative_to(root).as_posix()
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue  # snapshot_download's .cache folder, half-written temporary files
        results, reason = check_file(path, dataset_revision)
        if results is None:
            board.rejected.append(Rejected(rel, reason))
        else:
            valid.append(Entry(rel, results))
    latest: dict[str, Entry] = {}
    # created_at is fixed-width UTC ISO, so string order is time order; the path breaks ties.
    for e in sorted(valid, key=lambda e: (e.created_at, e.path)):
        if e.model_id in latest:
            board.superseded.append(latest[e.model_id])
        latest[e.model_id] = e
    board.entries = list(latest.values())
    return board


def fetch_results_repo(repo_id: str, revision: str | None = None,
                       local_dir: str | os.PathLike | None = None) -> Path:
    """Download the results JSON files of the dataset repo ``repo_id``; returns the folder."""
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id, repo_type="dataset", revision=revision,
                                  allow_patterns=[f"**/{RESULTS_GLOB}", RESULTS_GLOB],
                                  local_dir=local_dir))


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------


def main_table(board: Board, methods: list[str] | None = None, protocol: str | None = None,
               sort_by: str = "standard_accuracy", descending: bool = True) -> pd.DataFrame:
    """One row per model: model, method and each leaderboard task's value in percent.

    ``methods`` keeps only those method families (None: all); ``protocol`` keeps only the models
    whose results hold that protocol (None or "all": every model). Rows are sorted by the task
    ``sort_by`` (a task id or "model"); models without that value come last.
    """
    if methods is not None:
        unknown = set(methods) - set(METHODS)
        if unknown:
            raise iab.BenchmarkError(f"unknown method(s) {sorted(unknown)}; valid: "
                                     + ", ".join(METHODS))
    if protocol not in (None, "all") and protocol not in iab.PROTOCOLS:
        raise iab.BenchmarkError(f"unknown protocol {protocol!r}; valid: "
                                 + ", ".join(iab.PROTOCOLS))
    if sort_by != "model" and sort_by not in TASK_COLUMNS:
        raise iab.BenchmarkError(f"cannot sort by {sort_by!r}; valid: model, "
                                 + ", ".join(TASK_COLUMNS))
    rows = []
    for e in board.entries:
        if methods is not None and e.method not in methods:
            continue
        if protocol not in (None, "all") and protocol not in e.results["protocols"]:
            continue
        values = e.values
        rows.append({MODEL_COLUMN: e.model_id, METHOD_COLUMN: e.method,
                     **{col: values.get(t) for t, col in TASK_COLUMNS.items()}})
    df = pd.DataFrame(rows, columns=[MODEL_COLUMN, METHOD_COLUMN, *TASK_COLUMNS.values()])
    key = MODEL_COLUMN if sort_by == "model" else TASK_COLUMNS[sort_by]
    ascending = not descending if sort_by != "model" else True
    # kind="stable" keeps ties in model-id order; the secondary sort by model makes it total.
    df = df.sort_values(MODEL_COLUMN, kind="stable")
    df = df.sort_values(key, ascending=ascending, na_position="last", kind="stable")
    return df.reset_index(drop=True)


def rejected_table(board: Board) -> pd.DataFrame:
    return pd.DataFrame([{"File": r.path, "Reason": r.reason} for r in board.rejected],
                        columns=["File", "Reason"])


def _pct(x) -> float | None:
    return None if x is None else round(100.0 * x, 2)


def robustness_table(board: Board) -> pd.DataFrame:
    """Long format (model, condition, accuracy %): clean is the standard test accuracy, then
    one row per degradation; models without the degraded protocol are left out."""
    rows = []
    for e in board.entries:
        degraded = e.results["protocols"].get("degraded")
        if degraded is None:
            continue
        rows.append({"model": e.model_id, "condition": CLEAN,
                     "accuracy": _pct(degraded["summary"]["clean_accuracy"])})
        for d in iab.DEGRADATIONS:
            m = degraded["splits"].get(d)
            if m is not None:
                rows.append({"model": e.model_id, "condition": d, "accuracy": _pct(m["accuracy"])})
    return pd.DataFrame(rows, columns=["model", "condition", "accuracy"])


def semantic_table(board: Board) -> pd.DataFrame:
    """Long format (model, task, train semantic, seen %, unseen %, gap) for every
    semantic-disjoint protocol a model has, in PROTOCOLS order."""
    rows = []
    for e in board.entries:
        for name, spec in iab.PROTOCOLS.items():
            proto = e.results["protocols"].get(name)
            if spec.train_semantic is None or proto is None:
                continue
            s = proto["summary"]
            rows.append({"model": e.model_id, "task": name, "train semantic": spec.train_semantic,
                         "seen": _pct(s["seen"]), "unseen": _pct(s["unseen"]),
                         "gap": _pct(s["gap"])})
    return pd.DataFrame(rows, columns=["model", "task", "train semantic", "seen", "unseen", "gap"])


def split_choices(entry: Entry) -> list[str]:
    """``protocol/split`` names of the model's evaluated splits (for the detail view)."""
    return [f"{p}/{s}" for p, proto in entry.results["protocols"].items() for s in proto["splits"]]


def _split(entry: Entry, protocol_split: str) -> dict:
    protocol, _, split = protocol_split.partition("/")
    try:
        return entry.results["protocols"][protocol]["splits"][split]
    except KeyError:
        raise iab.BenchmarkError(f"{entry.model_id} has no split {protocol_split!r}; its splits: "
                                 + ", ".join(split_choices(entry))) from None


def confusion_table(entry: Entry, protocol_split: str = "standard/test",
                    drop_empty: bool = True) -> pd.DataFrame:
    """The confusion matrix of one split (rows: true label, columns: prediction). With
    ``drop_empty``, labels with no image and no prediction are left out, so a split over a few
    generators stays readable."""
    m = _split(entry, protocol_split)
    labels, cm = m["labels"], m["confusion_matrix"]
    df = pd.DataFrame(cm, index=labels, columns=labels)
    if drop_empty:
        keep = [lab for i, lab in enumerate(labels)
                if sum(cm[i]) or sum(row[i] for row in cm)]
        df = df.loc[keep, keep]
    df.index.name = "true \\ predicted"
    return df


def _per_key_table(entry: Entry, key: str, first: str) -> pd.DataFrame:
    cols = {}
    for name in split_choices(entry):
        cols[name] = {k: _pct(v) for k, v in _split(entry, name)[key].items()}
    df = pd.DataFrame(cols)
    df = df.dropna(how="all")  # labels no split had an image of
    df.index.name = first
    return df.reset_index()


def per_semantic_table(entry: Entry) -> pd.DataFrame:
    """Accuracy (%) per semantic subclass (rows) and evaluated split (columns)."""
    return _per_key_table(entry, "per_semantic_accuracy", "semantic")


def per_generator_table(entry: Entry) -> pd.DataFrame:
    """Accuracy (%) per label, real and each generator (rows), and evaluated split (columns)."""
    return _per_key_table(entry, "per_class_accuracy", "label")


def model_info_table(entry: Entry) -> pd.DataFrame:
    """Key facts of a run, as a two-column table (shown as text, never as markup)."""
    r = entry.results
    rows = [("model", r["model"]["id"]), ("model revision", r["model"]["revision"]),
            ("parameters", r["model"]["parameters"]), ("method", r["method"]),
            ("dataset", r["dataset"]["repo"]), ("dataset revision", r["dataset"]["revision"]),
            ("benchmark version", r["benchmark_version"]), ("created at", r["created_at"]),
            ("checkpoint selection", r["checkpoint_selection"]),
            ("hardware", r["environment"]["hardware"]), ("file", entry.path)]
    return pd.DataFrame([(k, "" if v is None else str(v)) for k, v in rows],
                        columns=["field", "value"])
