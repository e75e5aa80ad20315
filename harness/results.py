"""The results file of one evaluation run: its types (the contract) and leaderboard numbers.

``harness/run.py`` builds a :class:`Results` dict, ``harness.results_io.write_results`` stores
it as ``results_<created_at>.json`` after ``harness.results_check.validate_results`` finds no
problem, and the leaderboard reads it back with ``harness.results_io.load_results``. Metric
values are fractions in [0, 1] here; :func:`leaderboard_values` turns them into the
percentages the Hub shows.

    >>> from harness.results import leaderboard_values
    >>> from harness.results_io import load_results
    >>> results = load_results("outputs/results_2026-11-27T23-59-00Z.json")  # doctest: +SKIP
    >>> leaderboard_values(results)  # doctest: +SKIP
    {'standard_accuracy': 91.25, ...}
"""

from __future__ import annotations

import re
from typing import Literal, TypedDict

import imageattributionbench as iab

# Bumped when a key changes meaning, goes away or becomes required; readers refuse versions
# not in SUPPORTED_SCHEMA_VERSIONS. 2: dataset.{local, fingerprint, hub_copy_of}, model.local;
# dataset.revision of a Hub dataset is its resolved commit sha; no absolute paths; the open_set
# test split adds oscr and the rejections at the validation-chosen threshold. Version 1 files
# are still read (provenance unknown: they never count as a Hub dataset's results, see
# hub_dataset(); no open-set oscr).
RESULTS_SCHEMA_VERSION = 2
SUPPORTED_SCHEMA_VERSIONS = (1, 2)
READABLE_SCHEMA_VERSIONS = SUPPORTED_SCHEMA_VERSIONS
# The open_set protocol's summary: the scores that mean something with unknown images.
OPEN_SET_SUMMARY = ("known_accuracy", "auroc_unknown", "oscr")
METHODS: tuple[str, ...] = ("finetune", "linear_probe", "score")
CREATED_AT_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
# Percentages on the Hub carry two decimals: 0.01% is below one image in any test split we ship.
PERCENT_DECIMALS = 2


# ---------------------------------------------------------------------------------------------
# Types (the contract; total=False marks keys that only some splits or protocols carry)
# ---------------------------------------------------------------------------------------------


class HubCopy(TypedDict):
    repo: str  # the Hub dataset a local build is a verified copy of
    revision: str  # the commit sha whose manifest.json equals the local build's


class DatasetRef(TypedDict, total=False):
    repo: str  # Hub dataset id, or a local build's folder (relative path or name, never absolute)
    revision: str | None  # Hub: the resolved commit sha; local: None
    local: bool  # version 2: a local build (its numbers never reach the Hub leaderboard)
    fingerprint: str | None  # version 2: the build's row fingerprint (manifest.json)
    hub_copy_of: HubCopy | None  # version 2: a local build verified equal to a Hub revision


class ModelRef(TypedDict, total=False):
    id: str  # Hub model id, iab-METHOD, or a local folder (relative path or name)
    revision: str | None
    parameters: int | None
    local: bool  # version 2: not a Hub model (no base_model, no PR to its repo)


class _SplitMetricsBase(TypedDict):
    n_samples: int
    accuracy: float
    macro_f1: float
    macro_auroc: float | None  # None when a split holds a single class
    mean_ap: float
    per_class_accuracy: dict[str, float | None]  # None: no sample of that label
    per_semantic_accuracy: dict[str, float]
    confusion_matrix: list[list[int]]  # rows: true label, columns: prediction
    labels: list[str]  # the order of confusion_matrix rows and columns


class SplitMetrics(_SplitMetricsBase, total=False):
    # open_set test only. `accuracy` there counts every unknown image as an error (the model
    # can only name known labels); these are the open-set scores:
    auroc_unknown: float | None  # AUROC of rejecting unknown images (1 - max known probability)
    known_accuracy: float | None  # accuracy on images of known generators
    oscr: float | None  # schema 2: Open-Set Classification Rate (area under CCR vs FPR)
    # schema 2, at the threshold chosen on validation (95% of known images accepted):
    rejection_threshold: float | None
    open_set_accuracy: float  # known: accepted and right; unknown: rejected
    known_rejection_rate: float | None
    unknown_rejection_rate: float | None
    open_set_confusion_matrix: list[list[int]]  # labels x (labels + "rejected")


class DegradationDrop(TypedDict):
    accuracy: float
    drop: float  # clean accuracy minus this accuracy; negative when a degradation helps


class DegradedSummary(TypedDict):
    clean_accuracy: float
    per_degradation: dict[str, DegradationDrop]
    mean_accuracy: float
    worst_accuracy: float
    worst: str


class SemanticSummary(TypedDict):
    seen: float
    unseen: float
    gap: float  # seen minus unseen


class OpenSetSummary(TypedDict, total=False):
    auroc_unknown: float | None
    known_accuracy: float | None  # schema 2
    oscr: float | None  # schema 2


class ProtocolResults(TypedDict):
    splits: dict[str, SplitMetrics]
    summary: DegradedSummary | SemanticSummary | OpenSetSummary | dict


class Environment(TypedDict):
    git_hash: str | None
    libraries: dict[str, str]
    hardware: str
    num_processes: int


class Results(TypedDict):
    schema_version: int
    benchmark: str
    benchmark_version: str
    created_at: str  # UTC, YYYY-MM-DDTHH:MM:SSZ
    dataset: DatasetRef
    model: ModelRef
    method: Literal["finetune", "linear_probe", "score"]
    run_config: dict
    checkpoint_selection: str
    protocols: dict[str, ProtocolResults]
    environment: Environment
    n_samples: dict[str, int]  # "<protocol>/<split>" -> images evaluated


def hub_task_values(results: Results) -> dict[str, float]:
    """The value (percent) of each task of ``imageattributionbench.HUB_TASKS`` (the Hub
    leaderboards of eval.yaml: one config and split each) that the results hold."""
    out = {}
    for task in iab.HUB_TASKS:
        m = results["protocols"].get(task.config, {}).get("splits", {}).get(task.split)
        if m is not None and m.get(task.metric) is not None:
            out[task.id] = _percent(m[task.metric])
    return out


def hub_dataset(results: Results) -> tuple[str, str] | None:
    """(Hub dataset id, commit sha) that the results may be reported against on the Hub, or
    None: a local build (unless verified as a copy of a Hub revision) or a version-1 file."""
    ds = results["dataset"]
    if results.get("schema_version") == 1:
        return None
    if not ds.get("local"):
        return ds["repo"], ds["revision"]
    copy = ds.get("hub_copy_of")
    return (copy["repo"], copy["revision"]) if copy else None


def iso_slug(created_at: str) -> str:
    """``2026-11-27T23:59:00Z`` -> ``2026-11-27T23-59-00Z``: file-name safe on every OS."""
    return created_at.replace(":", "-")


# ---------------------------------------------------------------------------------------------
# Leaderboard numbers
# ---------------------------------------------------------------------------------------------


def _percent(x: float) -> float:
    return round(100.0 * x, PERCENT_DECIMALS)


def leaderboard_values(results: Results) -> dict[str, float]:
    """The value (percent) of each task of ``imageattributionbench.LEADERBOARD_TASKS`` that the
    results can answer, keyed by task id.

    A task is left out when its protocols are missing: the degraded tasks need all six degraded
    splits, the semantic-disjoint mean needs the ``test`` split of all three paper tasks, and
    the open-set AUROC needs a non-null ``auroc_unknown``.
    """
    protos = results["protocols"]
    out: dict[str, float] = {}
    standard = protos.get("standard", {}).get("splits", {}).get("test")
    if standard is not None:
        out["standard_accuracy"] = _percent(standard["accuracy"])
    degraded = protos.get("degraded")
    if degraded is not None and set(iab.DEGRADATIONS) <= set(degraded["splits"]):
        out["degraded_mean_accuracy"] = _percent(degraded["summary"]["mean_accuracy"])
        out["degraded_worst_accuracy"] = _percent(degraded["summary"]["worst_accuracy"])
    semantic = [protos.get(p, {}).get("splits", {}).get("test") for p in iab.PAPER_SEMANTIC_TASKS]
    if all(m is not None for m in semantic):
        out["semantic_disjoint_mean_accuracy"] = _percent(
            sum(m["accuracy"] for m in semantic) / len(semantic))
    open_test = protos.get("open_set", {}).get("splits", {}).get("test")
    if open_test is not None and open_test.get("auroc_unknown") is not None:
        out["open_set_auroc"] = _percent(open_test["auroc_unknown"])
    # LEADERBOARD_TASKS order, so files and cards list them the same way every time
    return {t.id: out[t.id] for t in iab.LEADERBOARD_TASKS if t.id in out}
