"""Checks of a results dict against the contract of ``harness.results``: every problem as
'<json path>: <what is wrong>', so a refused file says exactly what to fix."""

from __future__ import annotations

import math
import re

import imageattributionbench as iab
from harness.results import (CREATED_AT_RE, METHODS, RESULTS_SCHEMA_VERSION,
                             SUPPORTED_SCHEMA_VERSIONS)

_SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_ABSOLUTE_RE = re.compile(r"^(/|~|[A-Za-z]:[\\/]|\\\\)")


def _absolute_paths(obj, where: str):
    """(json path, value) of every string that is an absolute path (published files must not
    name the machine's folders, the user's home least of all)."""
    if isinstance(obj, str):
        if _ABSOLUTE_RE.match(obj):
            yield where, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _absolute_paths(v, f"{where}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _absolute_paths(v, f"{where}[{i}]")


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


class _Checker:
    """Collects problems as '<json path>: <what is wrong>' strings."""

    def __init__(self):
        self.problems: list[str] = []

    def add(self, where: str, msg: str) -> None:
        self.problems.append(f"{where}: {msg}")

    def mapping(self, obj, where: str, keys: tuple[str, ...]) -> bool:
        """True when obj is a dict holding every key (reports each missing one)."""
        if not isinstance(obj, dict):
            self.add(where, f"must be an object, got {type(obj).__name__}")
            return False
        missing = [k for k in keys if k not in obj]
        for k in missing:
            self.add(f"{where}.{k}", "missing key")
        return not missing

    def fraction(self, x, where: str, *, nullable=False, low=0.0) -> None:
        if x is None and nullable:
            return
        if not _is_number(x):
            self.add(where, f"must be a number, got {type(x).__name__}")
        elif not (low <= x <= 1.0):  # NaN fails this too
            self.add(where, f"{x!r} is outside [{low:g}, 1]")

    def string(self, x, where: str, *, nullable=False) -> None:
        if x is None and nullable:
            return
        if not isinstance(x, str) or not x:
            self.add(where, f"must be a non-empty string, got {x!r}")

    def integer(self, x, where: str, *, nullable=False, low=0) -> None:
        if x is None and nullable:
            return
        if not _is_int(x):
            self.add(where, f"must be an integer, got {type(x).__name__}")
        elif x < low:
            self.add(where, f"{x} is below {low}")


def _check_split(c: _Checker, m, where: str, protocol: str, split: str,
                 version: int = RESULTS_SCHEMA_VERSION) -> None:
    keys = ("n_samples", "accuracy", "macro_f1", "macro_auroc", "mean_ap", "per_class_accuracy",
            "per_semantic_accuracy", "confusion_matrix", "labels")
    if protocol == "open_set" and split == "test":
        keys += ("auroc_unknown", "known_accuracy") + (
            ("oscr", "rejection_threshold") if version >= 2 else ())
    if not isinstance(m, dict):
        c.add(where, f"must be an object, got {type(m).__name__}")
        return
    c.mapping(m, where, keys)
    if "n_samples" in m:
        c.integer(m["n_samples"], f"{where}.n_samples")
    for k in ("accuracy", "macro_f1", "mean_ap", "open_set_accuracy"):
        if k in m:
            c.fraction(m[k], f"{where}.{k}")
    for k in ("macro_auroc", "auroc_unknown", "known_accuracy", "oscr", "rejection_threshold",
              "known_rejection_rate", "unknown_rejection_rate"):
        if k in m:
            c.fraction(m[k], f"{where}.{k}", nullable=True)
    if m.get("rejection_threshold") is not None:
        _check_open_set_matrix(c, m, where)
    pca = m.get("per_class_accuracy")
    if pca is not None:
        if isinstance(pca, dict):
            for label, v in pca.items():
                if label not in iab.LABEL_IDS:
                    c.add(f"{where}.per_class_accuracy", f"unknown label {label!r}")
                c.fraction(v, f"{where}.per_class_accuracy.{label}", nullable=True)
        else:
            c.add(f"{where}.per_class_accuracy", "must be an object")
    psa = m.get("per_semantic_accuracy")
    if psa is not None:
        if isinstance(psa, dict):
            for sem, v in psa.items():
                if sem not in iab.SUPERCLASS_OF:
                    c.add(f"{where}.per_semantic_accuracy", f"unknown semantic {sem!r}; valid "
                          f"semantics: {', '.join(iab.SEMANTICS)}")
                c.fraction(v, f"{where}.per_semantic_accuracy.{sem}")
        else:
            c.add(f"{where}.per_semantic_accuracy", "must be an object")
    labels = m.get("labels")
    labels_ok = isinstance(labels, list) and all(isinstance(x, str) for x in labels)
    if "labels" in m and not labels_ok:
        c.add(f"{where}.labels", "must be a list of label names")
    elif labels_ok:
        for x in labels:
            if x not in iab.LABEL_IDS:
                c.add(f"{where}.labels", f"unknown label {x!r}")
    if "confusion_matrix" in m:
        cm = m["confusion_matrix"]
        rows_ok = isinstance(cm, list) and all(
            isinstance(r, list) and all(_is_int(v) and v >= 0 for v in r) for r in cm)
        if not rows_ok:
            c.add(f"{where}.confusion_matrix", "must be a list of rows of non-negative integers")
        else:
            n = len(labels) if labels_ok else len(cm)
            if len(cm) != n or any(len(r) != n for r in cm):
                c.add(f"{where}.confusion_matrix", f"must be {n}x{n} (one row and column per "
                      "entry of labels)")
            total = sum(map(sum, cm))
            if _is_int(m.get("n_samples")) and total != m["n_samples"]:
                c.add(f"{where}.confusion_matrix", f"counts sum to {total}, n_samples is "
                      f"{m['n_samples']}")


def _check_open_set_matrix(c: _Checker, m: dict, where: str) -> None:
    """With a rejection threshold: the rejections it gives, and the labels x (labels +
    "rejected") matrix whose counts add up to the split."""
    c.mapping(m, where, ("open_set_accuracy", "known_rejection_rate", "unknown_rejection_rate",
                         "open_set_confusion_matrix"))
    cm = m.get("open_set_confusion_matrix")
    if cm is None:
        return
    n = len(m["labels"]) if isinstance(m.get("labels"), list) else None
    ok = isinstance(cm, list) and all(isinstance(r, list) and all(_is_int(v) and v >= 0
                                                                  for v in r) for r in cm)
    if not ok:
        c.add(f"{where}.open_set_confusion_matrix", "must be a list of rows of non-negative "
              "integers")
    elif n is not None and (len(cm) != n or any(len(r) != n + 1 for r in cm)):
        c.add(f"{where}.open_set_confusion_matrix", f"must be {n}x{n + 1} (a row per label; a "
              "column per label, then 'rejected')")
    elif _is_int(m.get("n_samples")) and sum(map(sum, cm)) != m["n_samples"]:
        c.add(f"{where}.open_set_confusion_matrix", f"counts sum to {sum(map(sum, cm))}, "
              f"n_samples is {m['n_samples']}")


def _close(a, b) -> bool:
    return _is_number(a) and _is_number(b) and math.isclose(a, b, abs_tol=1e-9)


def _check_summary(c: _Checker, name: str, proto: dict, where: str) -> None:
    summary = proto.get("summary")
    splits = proto.get("splits") if isinstance(proto.get("splits"), dict) else {}
    acc = {s: m.get("accuracy") for s, m in splits.items() if isinstance(m, dict)}
    if not isinstance(summary, dict):
        c.add(where, f"must be an object, got {type(summary).__name__}")
        return
    if name in ("degraded", "paper_exact_degraded"):
        if not c.mapping(summary, where, ("clean_accuracy", "per_degradation", "mean_accuracy",
                                          "worst_accuracy", "worst")):
            return
        for k in ("clean_accuracy", "mean_accuracy", "worst_accuracy"):
            c.fraction(summary[k], f"{where}.{k}")
        per = summary["per_degradation"]
        if not isinstance(per, dict):
            c.add(f"{where}.per_degradation", "must be an object")
            per = {}
        for d, v in per.items():
            w = f"{where}.per_degradation.{d}"
            if d not in iab.DEGRADATIONS:
                c.add(w, f"unknown degradation; valid: {', '.join(iab.DEGRADATIONS)}")
            if c.mapping(v, w, ("accuracy", "drop")):
                c.fraction(v["accuracy"], f"{w}.accuracy")
                c.fraction(v["drop"], f"{w}.drop", low=-1.0)
                if d in acc and not _close(v["accuracy"], acc[d]):
                    c.add(f"{w}.accuracy", f"{v['accuracy']!r} differs from the split's "
                          f"accuracy {acc[d]!r}")
        if summary["worst"] not in splits:
            c.add(f"{where}.worst", f"{summary['worst']!r} is not one of the degraded splits")
        split_acc = [a for a in acc.values() if _is_number(a)]
        if split_acc and len(split_acc) == len(acc):
            if not _close(summary["mean_accuracy"], sum(split_acc) / len(split_acc)):
                c.add(f"{where}.mean_accuracy", "is not the mean of the splits' accuracies")
            if not _close(summary["worst_accuracy"], min(split_acc)):
                c.add(f"{where}.worst_accuracy", "is not the lowest of the splits' accuracies")
    elif iab.PROTOCOLS[name].extra.get("paper_exact"):  # the paper's tasks have no test_seen
        if c.mapping(summary, where, ("unseen",)):
            c.fraction(summary["unseen"], f"{where}.unseen")
            if "test" in acc and not _close(summary["unseen"], acc["test"]):
                c.add(f"{where}.unseen", f"{summary['unseen']!r} differs from test accuracy "
                      f"{acc['test']!r}")
    elif iab.PROTOCOLS[name].train_semantic is not None:
        if not c.mapping(summary, where, ("seen", "unseen", "gap")):
            return
        c.fraction(summary["seen"], f"{where}.seen")
        c.fraction(summary["unseen"], f"{where}.unseen")
        c.fraction(summary["gap"], f"{where}.gap", low=-1.0)
        for key, split in (("seen", "test_seen"), ("unseen", "test")):
            if split in acc and not _close(summary[key], acc[split]):
                c.add(f"{where}.{key}", f"{summary[key]!r} differs from {split} accuracy "
                      f"{acc[split]!r}")
    else:  # open_set
        for k in ("auroc_unknown", "known_accuracy", "oscr"):
            if k in summary:
                c.fraction(summary[k], f"{where}.{k}", nullable=True)


def _check_dataset(c: _Checker, ds: dict, v2: bool) -> None:
    c.string(ds["repo"], "dataset.repo")
    c.string(ds["revision"], "dataset.revision", nullable=True)
    if not v2:
        return
    if not isinstance(ds["local"], bool):
        c.add("dataset.local", "must be true or false")
        return
    c.string(ds["fingerprint"], "dataset.fingerprint", nullable=True)
    if ds["local"]:
        if ds["revision"] is not None:
            c.add("dataset.revision", "a local build has no revision (null); its fingerprint "
                  "names it")
        copy = ds.get("hub_copy_of")
        if copy is not None and c.mapping(copy, "dataset.hub_copy_of", ("repo", "revision")):
            c.string(copy["repo"], "dataset.hub_copy_of.repo")
            if not (isinstance(copy["revision"], str) and _SHA_RE.match(copy["revision"])):
                c.add("dataset.hub_copy_of.revision", "must be a 40-hex commit sha")
    else:
        if not (isinstance(ds["revision"], str) and _SHA_RE.match(ds["revision"])):
            c.add("dataset.revision", f"{ds['revision']!r} is not a commit sha: a Hub dataset's "
                  "revision is resolved to the 40-hex sha it was read at")
        if ds.get("hub_copy_of") is not None:
            c.add("dataset.hub_copy_of", "only a local build can be a copy of a Hub repo")


def validate_results(obj) -> list[str]:
    """Every problem of a results object, as '<where>: <what>' lines; empty when it is valid.

    Checks required keys and their types, that metrics are fractions in [0, 1], the schema and
    benchmark versions, that protocol, split, label, semantic and degradation names exist in
    ``imageattributionbench``, and that summaries agree with the splits they summarise.
    """
    c = _Checker()
    top = ("schema_version", "benchmark", "benchmark_version", "created_at", "dataset", "model",
           "method", "run_config", "checkpoint_selection", "protocols", "environment",
           "n_samples")
    if not c.mapping(obj, "results", top) and not isinstance(obj, dict):
        return c.problems
    version = obj.get("schema_version")
    if "schema_version" in obj and version not in SUPPORTED_SCHEMA_VERSIONS:
        c.add("schema_version", f"{version!r} is not one of "
              f"{', '.join(map(str, SUPPORTED_SCHEMA_VERSIONS))}, the versions this code reads")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        version = RESULTS_SCHEMA_VERSION  # check the rest against the current contract
    if "benchmark" in obj and obj["benchmark"] != iab.BENCHMARK_NAME:
        c.add("benchmark", f"{obj['benchmark']!r} is not {iab.BENCHMARK_NAME!r}")
    if "benchmark_version" in obj and obj["benchmark_version"] != iab.BENCHMARK_VERSION:
        c.add("benchmark_version", f"{obj['benchmark_version']!r} is not "
              f"{iab.BENCHMARK_VERSION!r}: rerun on this benchmark version")
    if "created_at" in obj and not (isinstance(obj["created_at"], str)
                                    and CREATED_AT_RE.match(obj["created_at"])):
        c.add("created_at", f"{obj['created_at']!r} is not UTC 'YYYY-MM-DDTHH:MM:SSZ'")
    v2 = version != 1
    dataset_keys = ("repo", "revision") + (("local", "fingerprint") if v2 else ())
    if "dataset" in obj and c.mapping(obj["dataset"], "dataset", dataset_keys):
        _check_dataset(c, obj["dataset"], v2)
    model_keys = ("id", "revision", "parameters") + (("local",) if v2 else ())
    if "model" in obj and c.mapping(obj["model"], "model", model_keys):
        c.string(obj["model"]["id"], "model.id")
        c.string(obj["model"]["revision"], "model.revision", nullable=True)
        c.integer(obj["model"]["parameters"], "model.parameters", nullable=True)
        if v2 and not isinstance(obj["model"]["local"], bool):
            c.add("model.local", "must be true or false")
    if v2:
        for where, value in _absolute_paths(
                {k: obj.get(k) for k in ("dataset", "model", "run_config")}, "results"):
            c.add(where.removeprefix("results."), f"{value!r} is an absolute path: record a "
                  "Hub id or a path relative to the output folder")
    if "method" in obj and obj["method"] not in METHODS:
        c.add("method", f"{obj['method']!r} is not one of {', '.join(METHODS)}")
    if "run_config" in obj and not isinstance(obj["run_config"], dict):
        c.add("run_config", "must be an object")
    if "checkpoint_selection" in obj:
        c.string(obj["checkpoint_selection"], "checkpoint_selection")
    env = obj.get("environment")
    if env is not None and c.mapping(env, "environment",
                                     ("git_hash", "libraries", "hardware", "num_processes")):
        c.string(env["git_hash"], "environment.git_hash", nullable=True)
        libs = env["libraries"]
        if not (isinstance(libs, dict)
                and all(isinstance(k, str) and isinstance(v, str) for k, v in libs.items())):
            c.add("environment.libraries", "must map library names to version strings")
        c.string(env["hardware"], "environment.hardware")
        c.integer(env["num_processes"], "environment.num_processes", low=1)

    protocols = obj.get("protocols")
    if "protocols" in obj:
        if not isinstance(protocols, dict) or not protocols:
            c.add("protocols", "must be a non-empty object")
            protocols = {}
        for name, proto in protocols.items():
            where = f"protocols.{name}"
            if name not in iab.PROTOCOLS:
                c.add(where, f"unknown protocol {name!r}; valid protocols: "
                      f"{', '.join(iab.PROTOCOLS)}")
                continue
            if not c.mapping(proto, where, ("splits", "summary")):
                continue
            splits = proto["splits"]
            if not isinstance(splits, dict) or not splits:
                c.add(f"{where}.splits", "must be a non-empty object")
                continue
            valid_splits = [s.name for s in iab.PROTOCOLS[name].splits]
            for split, m in splits.items():
                if split not in valid_splits:
                    c.add(f"{where}.splits.{split}", f"unknown split of {name}; valid splits: "
                          f"{', '.join(valid_splits)}")
                    continue
                _check_split(c, m, f"{where}.splits.{split}", name, split, version)
            _check_summary(c, name, proto, f"{where}.summary")

    counts = obj.get("n_samples")
    if "n_samples" in obj:
        if not isinstance(counts, dict):
            c.add("n_samples", "must be an object")
        else:
            for key, n in counts.items():
                c.integer(n, f"n_samples.{key}")
                name, _, split = key.partition("/")
                m = (protocols or {}).get(name, {}).get("splits", {}) \
                    if isinstance((protocols or {}).get(name), dict) else {}
                m = m.get(split) if isinstance(m, dict) else None
                if m is None:
                    c.add(f"n_samples.{key}", "names no protocol/split in protocols")
                elif isinstance(m, dict) and _is_int(n) and m.get("n_samples") not in (None, n):
                    c.add(f"n_samples.{key}", f"{n} differs from the split's n_samples "
                          f"{m.get('n_samples')}")
    return c.problems
