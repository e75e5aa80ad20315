"""The leaderboard's tables as pandas frames: the ranked table, the unranked one, chart data and
a model's detail tables. Percentages carry one decimal everywhere (``DECIMALS``).

    >>> main_table(board, methods=["finetune"], protocol="degraded")  # doctest: +SKIP
"""

from __future__ import annotations

import re
from pathlib import PurePath

import pandas as pd

import imageattributionbench as iab
from harness.results import METHODS
from leaderboard.data import Board, Entry

DECIMALS = 1  # 0.1 % is below one image in every split the benchmark ships
RANK, MODEL, FAMILY, METHOD, VERIFIED = "Rank", "Model", "Family", "Method", "Verified"
DATE, REVISION, PARAMS, FOLDER = "Date", "Dataset revision", "Parameters", "Folder"
TASK_COLUMNS: dict[str, str] = {t.id: f"{t.name} (%)" for t in iab.LEADERBOARD_TASKS}
INFO_COLUMNS = [RANK, MODEL, FAMILY, METHOD, VERIFIED, DATE, REVISION, PARAMS]
COLUMNS = [*INFO_COLUMNS, *TASK_COLUMNS.values()]
CLEAN = "clean"
OTHER_FAMILY = "other"


def _pct(x) -> float | None:
    return None if x is None else round(100.0 * x, DECIMALS)


def family(results: dict) -> str:
    """The method family: a paper method's name from the method record its config carries,
    else the preset it ran with, else 'other'."""
    rc = results.get("run_config") or {}
    model_type = (rc.get("method_record") or {}).get("model_type")
    if isinstance(model_type, str) and model_type:
        return model_type.removeprefix("iab-")
    preset = rc.get("preset")
    return preset if isinstance(preset, str) and preset else OTHER_FAMILY


def display_name(results: dict) -> str:
    """How a model is named on the board: its Hub id, or for a local folder its name (and the
    preset it ran), never the path of someone's disk."""
    model_id = results["model"]["id"]
    preset = (results.get("run_config") or {}).get("preset")
    # a path: two or more separators, or absolute, or relative to '.' or '~'
    if not (model_id.count("/") >= 2 or "\\" in model_id or model_id.startswith(("/", ".", "~"))):
        return model_id
    name = PurePath(model_id.rstrip("/\\")).name or model_id
    return f"{preset} preset ({name}, local)" if preset else f"{name} (local)"


def _parameters(n) -> str:
    if not isinstance(n, int):
        return ""
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _revision(e: Entry) -> str:
    d = e.dataset
    if d.local:
        return "local build"
    return (d.revision[:7] if re.fullmatch(r"[0-9a-f]{40}", d.revision or "") else
            d.revision) or "unrecorded"


def _row(e: Entry) -> dict:
    values = e.values
    return {FOLDER: e.folder, MODEL: display_name(e.results), FAMILY: family(e.results),
            METHOD: e.method,
            VERIFIED: e.verification.status, DATE: e.created_at[:10], REVISION: _revision(e),
            PARAMS: _parameters(e.results["model"]["parameters"]),
            **{col: (None if t not in values else round(values[t], DECIMALS))
               for t, col in TASK_COLUMNS.items()}}


def families(board: Board) -> list[str]:
    """The method families on the board, 'other' last."""
    found = sorted({family(e.results) for e in board.entries} - {OTHER_FAMILY})
    return found + ([OTHER_FAMILY] if any(family(e.results) == OTHER_FAMILY
                                          for e in board.entries) else [])


def _check(methods, protocol, sort_by) -> None:
    if methods is not None and set(methods) - set(METHODS):
        raise iab.BenchmarkError(f"unknown method(s) {sorted(set(methods) - set(METHODS))}; "
                                 "valid: " + ", ".join(METHODS))
    if protocol not in (None, "all") and protocol not in iab.PROTOCOLS:
        raise iab.BenchmarkError(f"unknown protocol {protocol!r}; valid: "
                                 + ", ".join(iab.PROTOCOLS))
    if sort_by != "model" and sort_by not in TASK_COLUMNS:
        raise iab.BenchmarkError(f"cannot sort by {sort_by!r}; valid: model, "
                                 + ", ".join(TASK_COLUMNS))


def _frame(entries: list[Entry], methods, fams, protocol, sort_by, descending) -> pd.DataFrame:
    rows = [_row(e) for e in entries
            if (methods is None or e.method in methods)
            and (fams is None or family(e.results) in fams)
            and (protocol in (None, "all") or protocol in e.results["protocols"])]
    df = pd.DataFrame(rows, columns=[FOLDER, *COLUMNS[1:]])
    rank_key = TASK_COLUMNS["standard_accuracy" if sort_by == "model" else sort_by]
    # kind="stable" keeps ties in model order; the secondary sort by model makes it total.
    df = df.sort_values(MODEL, kind="stable")
    if sort_by != "model":
        df = df.sort_values(rank_key, ascending=not descending, na_position="last",
                            kind="stable")
    ranks = df[rank_key].rank(method="min", ascending=False)
    df.insert(0, RANK, [None if r != r else int(r) for r in ranks])
    return df.reset_index(drop=True)


def main_table(board: Board, methods: list[str] | None = None, protocol: str | None = None,
               sort_by: str = "standard_accuracy", descending: bool = True,
               families: list[str] | None = None) -> pd.DataFrame:
    """The ranked entries, one row per model: rank, facts of the run, each leaderboard task.

    ``methods`` keeps those training methods, ``families`` those method families (None: all);
    ``protocol`` keeps the models whose results hold it (None or "all": every model). Rows are
    sorted by the task ``sort_by`` (a task id or "model"); the rank is by that task (by
    standard accuracy when sorted by model), ties sharing a rank; missing values come last.
    """
    _check(methods, protocol, sort_by)
    df = _frame(board.ranked(), methods, families, protocol, sort_by, descending)
    return df.drop(columns=[FOLDER])


def unranked_table(board: Board) -> pd.DataFrame:
    """Entries not ranked with the others (another dataset revision, a local build, a
    conflict), with the reason and their folder; no rank."""
    df = _frame(board.unranked(), None, None, None, "standard_accuracy", True)
    reasons = [board.unranked_reason(board.entry(f)) for f in df[FOLDER]]
    df = df.drop(columns=[RANK])
    df.insert(1, "Why not ranked", reasons)
    return df


def verification_table(board: Board) -> pd.DataFrame:
    """Every entry that is not verified, and why."""
    rows = [{MODEL: display_name(e.results), FOLDER: e.folder, VERIFIED: e.verification.status,
             "Why": e.verification.reason} for e in board.entries
            if not e.verification.verified]
    return pd.DataFrame(rows, columns=[MODEL, FOLDER, VERIFIED, "Why"])


def rejected_table(board: Board) -> pd.DataFrame:
    return pd.DataFrame([{"File": r.path, "Reason": r.reason} for r in board.rejected],
                        columns=["File", "Reason"])


def _chance(m: dict) -> float | None:
    """Accuracy of always answering the split's most common label, in percent."""
    cm = m["confusion_matrix"]
    n = sum(map(sum, cm))
    return round(100.0 * max(map(sum, cm)) / n, DECIMALS) if n else None


def robustness_table(board: Board) -> pd.DataFrame:
    """Long format (model, condition, accuracy %, n, chance %) over the ranked entries: clean
    is the standard test split, then one row per degradation."""
    rows = []
    for e in board.ranked():
        degraded = e.results["protocols"].get("degraded")
        clean = e.results["protocols"].get("standard", {}).get("splits", {}).get("test")
        if degraded is None:
            continue
        name = display_name(e.results)
        rows.append({"model": name, "condition": CLEAN,
                     "accuracy": _pct(degraded["summary"]["clean_accuracy"]),
                     "n": clean["n_samples"] if clean else None,
                     "chance": _chance(clean) if clean else None})
        for d in iab.DEGRADATIONS:
            m = degraded["splits"].get(d)
            if m is not None:
                rows.append({"model": name, "condition": d, "accuracy": _pct(m["accuracy"]),
                             "n": m["n_samples"], "chance": _chance(m)})
    return pd.DataFrame(rows, columns=["model", "condition", "accuracy", "n", "chance"])


def semantic_table(board: Board) -> pd.DataFrame:
    """Long format over the ranked entries: model, task, train semantic, seen %, unseen %, gap,
    n seen, n unseen, chance % (of the unseen split), for each semantic-disjoint protocol."""
    rows = []
    for e in board.ranked():
        for name, spec in iab.PROTOCOLS.items():
            proto = e.results["protocols"].get(name)
            if spec.train_semantic is None or proto is None:
                continue
            s, splits = proto["summary"], proto["splits"]
            rows.append({"model": display_name(e.results), "task": name,
                         "train semantic": spec.train_semantic, "seen": _pct(s["seen"]),
                         "unseen": _pct(s["unseen"]), "gap": _pct(s["gap"]),
                         "n seen": splits["test_seen"]["n_samples"],
                         "n unseen": splits["test"]["n_samples"],
                         "chance": _chance(splits["test"])})
    return pd.DataFrame(rows, columns=["model", "task", "train semantic", "seen", "unseen", "gap",
                                       "n seen", "n unseen", "chance"])


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
    ``drop_empty``, labels with no image and no prediction are left out."""
    m = _split(entry, protocol_split)
    labels, cm = m["labels"], m["confusion_matrix"]
    df = pd.DataFrame(cm, index=labels, columns=labels)
    if drop_empty:
        keep = [lab for i, lab in enumerate(labels) if sum(cm[i]) or sum(row[i] for row in cm)]
        df = df.loc[keep, keep]
    df.index.name = "true \\ predicted"
    return df


def generator_table(entry: Entry, protocol_split: str = "standard/test") -> pd.DataFrame:
    """Per true label of one split: images, accuracy %, the label it is most often mistaken
    for and the share of its images that go there (which generators a model confuses)."""
    m = _split(entry, protocol_split)
    labels, cm = m["labels"], m["confusion_matrix"]
    chance = _chance(m)
    rows = []
    for i, label in enumerate(labels):
        n = sum(cm[i])
        if not n:
            continue
        wrong = [(cm[i][j], labels[j]) for j in range(len(labels)) if j != i and cm[i][j]]
        count, other = max(wrong) if wrong else (0, "")
        rows.append({"label": label, "n": n, "accuracy": round(100.0 * cm[i][i] / n, DECIMALS),
                     "most confused with": other,
                     "confused share": round(100.0 * count / n, DECIMALS), "chance": chance})
    return pd.DataFrame(rows, columns=["label", "n", "accuracy", "most confused with",
                                       "confused share", "chance"])


def _per_key_table(entry: Entry, key: str, first: str) -> pd.DataFrame:
    cols = {name: {k: _pct(v) for k, v in _split(entry, name)[key].items()}
            for name in split_choices(entry)}
    df = pd.DataFrame(cols).dropna(how="all")  # labels no split had an image of
    df.index.name = first
    return df.reset_index()


def per_semantic_table(entry: Entry) -> pd.DataFrame:
    """Accuracy (%) per semantic subclass (rows) and evaluated split (columns)."""
    return _per_key_table(entry, "per_semantic_accuracy", "semantic")


def per_generator_table(entry: Entry) -> pd.DataFrame:
    """Accuracy (%) per label, real and each generator (rows), and evaluated split (columns)."""
    return _per_key_table(entry, "per_class_accuracy", "label")


def model_info_table(board: Board, entry: Entry) -> pd.DataFrame:
    """Key facts of a run, as a two-column table (shown as text, never as markup)."""
    r = entry.results
    record = (r.get("run_config") or {}).get("method_record") or {}
    rows = [("model", r["model"]["id"]), ("model revision", r["model"]["revision"]),
            ("parameters", r["model"]["parameters"]), ("method", r["method"]),
            ("family", family(r)), ("reference", record.get("reference")),
            ("verified", entry.verification.status),
            ("why not verified", entry.verification.reason or None),
            ("ranked", "yes" if board.is_ranked(entry) else board.unranked_reason(entry)),
            ("dataset", entry.dataset.describe()),
            ("benchmark version", r["benchmark_version"]), ("created at", r["created_at"]),
            ("checkpoint selection", r["checkpoint_selection"]),
            ("hardware", r["environment"]["hardware"]), ("file", entry.path)]
    return pd.DataFrame([(k, "" if v is None else str(v)) for k, v in rows],
                        columns=["field", "value"])
