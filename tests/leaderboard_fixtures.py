"""A results folder for the leaderboard tests: three valid models with different scores, an
older file of one of them, a file for another dataset revision and two broken files."""

from __future__ import annotations

import json
from pathlib import Path

import imageattributionbench as iab
from harness.report import results_repo_path

LABELS = ["real", "SD1_5", "FLUX"]
ROW_SIZES = (34, 33, 33)  # 100 images per split: accuracies are exact hundredths
REVISION = "abc123"
EVIL = "<img src=x onerror=alert(1)>"
# model id -> (method, standard test correct out of 100, protocols beyond standard)
MODELS = {
    "acme/vit-small": ("finetune", 90, ("degraded", "semantic", "open_set")),
    f"gamma/{EVIL}": ("score", 80, ("semantic",)),
    "beta/clip-probe": ("linear_probe", 75, ("degraded",)),
}
ORDER = ["acme/vit-small", f"gamma/{EVIL}", "beta/clip-probe"]  # by standard accuracy


def confusion(correct: int) -> list[list[int]]:
    """A 3x3 matrix over ROW_SIZES with exactly ``correct`` images on the diagonal."""
    cm = [[0] * 3 for _ in range(3)]
    left = correct
    for i, n in enumerate(ROW_SIZES):
        cm[i][i] = min(n, left)
        left -= cm[i][i]
        cm[i][(i + 1) % 3] = n - cm[i][i]
    assert left == 0
    return cm


def split_metrics(correct: int, **extra) -> dict:
    acc = correct / 100
    return {
        "n_samples": 100, "accuracy": acc, "macro_f1": acc * 0.9, "macro_auroc": 0.95,
        "mean_ap": 0.9, "per_class_accuracy": {"real": 1.0, "SD1_5": None, "FLUX": 0.5},
        "per_semantic_accuracy": {"cat": acc, "bedroom": acc},
        "confusion_matrix": confusion(correct), "labels": list(LABELS), **extra,
    }


def open_confusion(correct: int) -> list[list[int]]:
    """``confusion(correct)`` with a "rejected" column: the last label's images rejected."""
    rows = [r + [0] for r in confusion(correct)]
    rows[-1][-1], rows[-1][0] = rows[-1][0], 0
    return rows


def make_results(model_id: str, method: str = "finetune", standard: int = 90,
                 extra: tuple[str, ...] = ("degraded", "semantic", "open_set"),
                 created_at: str = "2026-11-27T23:59:00Z", revision: str = REVISION) -> dict:
    """A valid results dict; every other accuracy is derived from ``standard``."""
    protocols = {"standard": {"splits": {"test": split_metrics(standard)}, "summary": {}}}
    if "degraded" in extra:
        correct = {d: standard - 5 * (i + 1) for i, d in enumerate(iab.DEGRADATIONS)}
        protocols["degraded"] = {
            "splits": {d: split_metrics(c) for d, c in correct.items()},
            "summary": {
                "clean_accuracy": standard / 100,
                "per_degradation": {d: {"accuracy": c / 100, "drop": (standard - c) / 100}
                                    for d, c in correct.items()},
                "mean_accuracy": sum(correct.values()) / 100 / len(correct),
                "worst_accuracy": min(correct.values()) / 100,
                "worst": min(correct, key=correct.get),
            },
        }
    if "semantic" in extra:
        for i, name in enumerate(iab.PAPER_SEMANTIC_TASKS):
            seen, unseen = standard, standard - 20 - 5 * i
            protocols[name] = {
                "splits": {"test_seen": split_metrics(seen), "test": split_metrics(unseen)},
                "summary": {"seen": seen / 100, "unseen": unseen / 100,
                            "gap": (seen - unseen) / 100},
            }
    if "open_set" in extra:
        protocols["open_set"] = {
            "splits": {"test": split_metrics(standard - 10, auroc_unknown=0.8765,
                                             known_accuracy=0.83, oscr=0.71,
                                             rejection_threshold=0.42, open_set_accuracy=0.6,
                                             known_rejection_rate=0.05,
                                             unknown_rejection_rate=0.7,
                                             open_set_confusion_matrix=open_confusion(
                                                 standard - 10))},
            "summary": {"auroc_unknown": 0.8765, "known_accuracy": 0.83, "oscr": 0.71},
        }
    return {
        "schema_version": 1, "benchmark": iab.BENCHMARK_NAME,
        "benchmark_version": iab.BENCHMARK_VERSION, "created_at": created_at,
        "dataset": {"repo": iab.HUB_REPO_ID, "revision": revision},
        "model": {"id": model_id, "revision": None, "parameters": 5_000_000},
        "method": method, "run_config": {"epochs": 3},
        "checkpoint_selection": "best validation accuracy over epochs (test never used)",
        "protocols": protocols,
        "environment": {"git_hash": "deadbeef", "libraries": {"torch": "2.13.0"},
                        "hardware": "cpu", "num_processes": 1},
        "n_samples": {f"{p}/{s}": 100 for p, pr in protocols.items() for s in pr["splits"]},
    }


def write_json(root: Path, rel: str, obj) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj), encoding="utf-8")
    return path


def write_entry(root: Path, results: dict) -> Path:
    """A results file where the results repo keeps it: ``<org>/<model>/results_<time>.json``."""
    return write_json(root, results_repo_path(results), results)


def write_results_folder(root: Path) -> Path:
    """The fixture folder, laid out like the results repo."""
    for model_id, (method, standard, extra) in MODELS.items():
        write_entry(root, make_results(model_id, method, standard, extra))
    # An older, worse run of acme/vit-small in its folder: the newer file must win.
    write_entry(root, make_results("acme/vit-small", standard=50,
                                   created_at="2026-01-01T00:00:00Z"))
    write_json(root, "broken/json/results_2026-11-27T23-59-00Z.json", "{not json")
    bad = make_results("broken/range")
    bad["protocols"]["standard"]["splits"]["test"]["accuracy"] = 1.5
    write_json(root, "broken/range/results_2026-11-27T23-59-00Z.json", bad)
    write_entry(root, make_results("delta/old-rev", standard=99, revision="0ld"))
    return root
