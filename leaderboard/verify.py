"""Verified numbers: every metric of a results file recomputed from its per-image samples.

A results file is self-reported; its samples parquet (``harness.report.write_samples``: one
row per image with the prediction and the class probabilities) is what the numbers were
computed from. :func:`verify` matches the samples of each scored split to the benchmark's own
rows at the dataset revision the file names (:mod:`leaderboard.reference`), by the row
identity (generator, prompt_id, image_index; sha256 for samples written before they carried
it), requires every row of the split exactly once, takes the labels and semantics from the
benchmark rather than from the samples, and runs the project's metric module
(``harness.metrics.load_metric``) on them. Every value the module returns that the file also
holds, and every protocol summary (``harness.metrics``' drop and gap), must agree within
``TOLERANCE``: then the entry is *verified*; otherwise it stays *self-reported*, with the first
disagreements as the reason.

    >>> check = verify(results, Path("acme/vit/results_2026-11-27T23-59-00Z.json"), labels)
    >>> check.status, check.reason  # doctest: +SKIP
    ('self-reported', 'standard/test accuracy: the file says 0.9, the samples give 0.5')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import imageattributionbench as iab
from harness.report import IDENTITY_COLUMNS, samples_filename
from leaderboard.intake import shorten
from leaderboard.reference import LabelsUnavailable, ReferenceLabels, dataset_ref

VERIFIED, SELF_REPORTED, UNCHECKED = "verified", "self-reported", "not checked yet"
TOLERANCE = 1e-6
# A samples file holds a row per image of each scored split: 31 probabilities a row, a few
# hundred thousand rows for the full benchmark.
MAX_SAMPLES_BYTES = 1024 * 1024 * 1024
MAX_DIFFS_SHOWN = 3
_READ = ("split", "sha256", *IDENTITY_COLUMNS, "label", "prediction", "probabilities")


@dataclass(frozen=True)
class Verification:
    """The outcome of checking one results file. ``retry``: the check could not run now (the
    dataset was unreachable), so it is tried again on the next refresh."""

    status: str
    reason: str = ""
    retry: bool = False

    @property
    def verified(self) -> bool:
        return self.status == VERIFIED


class Mismatch(Exception):
    """The samples do not support the results file: the message says where."""


def _read_samples(path: Path) -> dict[str, list]:
    import pyarrow.parquet as pq

    size = path.stat().st_size
    if size > MAX_SAMPLES_BYTES:
        raise Mismatch(f"{path.name}: {size} bytes, more than {MAX_SAMPLES_BYTES}")
    try:
        pf = pq.ParquetFile(path)
        names = set(pf.schema_arrow.names)
        missing = [c for c in ("split", "sha256", "generator", "label", "prediction",
                               "probabilities") if c not in names]
        if missing:
            raise Mismatch(f"{path.name}: no column(s) {', '.join(missing)}")
        return pf.read(columns=[c for c in _READ if c in names]).to_pydict()
    except Mismatch:
        raise
    except Exception as e:  # not a parquet file, or a corrupt one
        raise Mismatch(f"{path.name}: not a readable samples file ({type(e).__name__}: {e})") \
            from e


def _match(samples: dict[str, list], rows: list[int], ref: dict[str, list],
           where: str) -> list[int]:
    """For each sample row (indices into ``samples``), its row in the benchmark split ``ref``;
    every benchmark row must be matched exactly once."""
    by_identity = all(c in samples for c in IDENTITY_COLUMNS) and all(
        samples["prompt_id"][i] is not None and samples["image_index"][i] is not None
        for i in rows)
    if by_identity:
        ref_keys = list(zip(*(ref[c] for c in IDENTITY_COLUMNS)))
        keys = [tuple(samples[c][i] for c in IDENTITY_COLUMNS) for i in rows]
    else:  # samples written before rows carried their identity: the image's sha256
        ref_keys, keys = ref["sha256"], [samples["sha256"][i] for i in rows]
    index = {k: j for j, k in enumerate(ref_keys)}
    if len(index) != len(ref_keys):
        raise Mismatch(f"{where}: the benchmark's rows are not unique by "
                       f"{'identity' if by_identity else 'sha256'}; samples need "
                       "generator, prompt_id and image_index")
    matched, seen, unknown, twice = [], set(), [], []
    for k in keys:
        j = index.get(k)
        if j is None:
            unknown.append(k)
        elif j in seen:
            twice.append(k)
        else:
            seen.add(j)
            matched.append(j)
    if unknown or twice or len(seen) != len(ref_keys):
        parts = [f"the samples cover {len(seen)} of the split's {len(ref_keys)} images"]
        if twice:
            parts.append(f"{len(twice)} more than once (e.g. {twice[0]})")
        if unknown:
            parts.append(f"{len(unknown)} not in the split (e.g. {unknown[0]})")
        raise Mismatch(f"{where}: " + ", ".join(parts) + "; each image must appear exactly once")
    return matched


def recompute_split(samples: dict[str, list], protocol: str, split: str,
                    ref: dict[str, list], metric) -> dict:
    """The metric module's output for one split, from its samples and the benchmark's rows."""
    where = f"{protocol}/{split}"
    rows = [i for i, s in enumerate(samples["split"]) if s == split]
    matched = _match(samples, rows, ref, where)
    labels = [ref["label"][j] for j in matched]
    claimed = [samples["label"][i] for i in rows]
    wrong = [n for n, (a, b) in enumerate(zip(claimed, labels)) if a != b]
    if wrong:
        raise Mismatch(f"{where}: {len(wrong)} sample(s) carry another label than the "
                       f"benchmark's (e.g. {claimed[wrong[0]]!r} for a {labels[wrong[0]]!r} "
                       "image)")
    try:
        predictions = [iab.LABEL_IDS[samples["prediction"][i]] for i in rows]
    except KeyError as e:
        raise Mismatch(f"{where}: prediction {e.args[0]!r} is not a benchmark label") from None
    probs = [samples["probabilities"][i] for i in rows]
    if any(p is None or len(p) != len(iab.LABELS) for p in probs):
        raise Mismatch(f"{where}: every sample needs {len(iab.LABELS)} probabilities, one per "
                       "label")
    prob = np.asarray(probs, dtype=np.float64)
    off = np.flatnonzero(prob.argmax(axis=1) != np.asarray(predictions))
    if len(off):
        raise Mismatch(f"{where}: {len(off)} prediction(s) are not the most probable label "
                       "of their own probabilities")
    from harness.metrics import score_split

    known = iab.PROTOCOLS[protocol].extra.get("known_labels")
    try:
        return score_split(metric, predictions, [iab.LABEL_IDS[x] for x in labels], probs,
                           [ref["semantic"][j] for j in matched], known)
    except ValueError as e:  # the metric module's own input checks
        raise Mismatch(f"{where}: {e}") from e


def _same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= TOLERANCE
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _show(v) -> str:
    if isinstance(v, float):
        return f"{v:.7g}"
    return shorten(repr(v), 80)


def compare(claimed: dict, recomputed: dict, where: str) -> list[str]:
    """Each value the recomputation gives that the file also holds, and disagrees with."""
    return [f"{where} {k}: the file says {_show(claimed[k])}, the samples give {_show(v)}"
            for k, v in recomputed.items() if k in claimed and not _same(claimed[k], v)]


def recompute_summaries(protocols: dict) -> dict[str, dict]:
    """Each protocol's summary from its splits' (recomputed) metrics, as the harness makes it."""
    from harness.metrics import degradation_drop, seen_unseen_gap

    out: dict[str, dict] = {}
    standard = protocols.get("standard", {}).get("splits", {}).get("test")
    degraded = protocols.get("degraded")
    if degraded is not None and standard is not None:
        s = degradation_drop(standard["accuracy"], {d: m["accuracy"] for d, m in
                                                    degraded["splits"].items()})
        s["clean_accuracy"] = s.pop("clean")
        out["degraded"] = s
    for name, proto in protocols.items():
        splits = proto["splits"]
        if iab.PROTOCOLS[name].train_semantic is not None and {"test", "test_seen"} <= \
                set(splits):
            out[name] = seen_unseen_gap(splits["test_seen"]["accuracy"], splits["test"]["accuracy"])
        if name == "open_set" and "test" in splits:
            out[name] = {"auroc_unknown": splits["test"].get("auroc_unknown")}
    return out


def verify(results: dict, results_path: Path, labels: ReferenceLabels, metric,
           datasets: tuple[str, ...] = (iab.HUB_REPO_ID,)) -> Verification:
    """Recompute every split and summary of ``results`` (read from ``results_path``) from the
    samples files beside it; ``metric`` is ``harness.metrics.load_metric()``. Only the Hub
    ``datasets`` named (and local builds on this machine) are read: a file cannot send the
    board off to read an arbitrary dataset."""
    ref = dataset_ref(results)
    if not ref.local and ref.repo.lower() not in {d.lower() for d in datasets}:
        return Verification(SELF_REPORTED, f"scored on {ref.repo}; this board checks results "
                                           f"against {', '.join(datasets)} only")
    why = labels.why_not(ref)
    if why:
        return Verification(SELF_REPORTED, why)
    diffs: list[str] = []
    recomputed: dict[str, dict] = {}
    try:
        for protocol, proto in results["protocols"].items():
            path = results_path.parent / samples_filename(protocol, results["created_at"])
            if not path.is_file():
                raise Mismatch(f"no samples file {path.name} for protocol {protocol}")
            samples = _read_samples(path)
            extra = sorted(set(samples["split"]) - set(proto["splits"]))
            if extra:
                raise Mismatch(f"{path.name} holds split(s) {', '.join(extra)} that the results "
                               "do not score")
            recomputed[protocol] = {"splits": {}}
            for split, claimed in proto["splits"].items():
                rows = labels.split(ref, protocol, split)
                m = recompute_split(samples, protocol, split, rows, metric)
                recomputed[protocol]["splits"][split] = m
                diffs += compare(claimed, m, f"{protocol}/{split}")
        for protocol, summary in recompute_summaries(recomputed).items():
            diffs += compare(results["protocols"][protocol]["summary"], summary,
                             f"{protocol} summary")
    except LabelsUnavailable as e:
        return Verification(UNCHECKED, shorten(str(e)), retry=True)
    except (Mismatch, iab.BenchmarkError) as e:
        return Verification(SELF_REPORTED, shorten(str(e)))
    if diffs:
        more = len(diffs) - MAX_DIFFS_SHOWN
        return Verification(SELF_REPORTED, shorten("; ".join(diffs[:MAX_DIFFS_SHOWN])
                                                   + (f"; (+{more} more)" if more > 0 else "")))
    return Verification(VERIFIED)
