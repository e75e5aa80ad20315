"""Row counts each config should have, computed from raw shards by the paper's rules,
independently of imageattributionbench's protocol tables."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

import imageattributionbench as iab


def raw_index(raw_dir: Path) -> list[tuple[str, str, str]]:
    """(label, semantic, fold) of every raw row."""
    out = []
    for f in sorted(Path(raw_dir).rglob("*.parquet")):
        for r in pq.read_table(f, columns=["generator", "semantic", "prompt_id"]).to_pylist():
            out.append((r["generator"], r["semantic"], iab.fold_of(r["prompt_id"])))
    return out


def expected_counts(config: str, rows: list[tuple[str, str, str]]) -> dict[str, int]:
    folds = Counter(f for _, _, f in rows)
    if config == "standard":
        return {"train": folds["train"], "validation": folds["validation"], "test": folds["test"]}
    if config == "degraded":
        return {d: folds["test"] for d in
                ("down_x2", "down_x4", "jpeg_q65", "jpeg_q30", "blur_s3", "blur_s5")}
    if config == "open_set":
        known = {"real"} | {g.name for g in iab.GENERATORS if g.released < "2025-01-01"}
        return {"train": sum(1 for lb, _, f in rows if f == "train" and lb in known),
                "validation": sum(1 for lb, _, f in rows if f == "validation" and lb in known),
                "test": folds["test"]}
    slug = config.removeprefix("semantic_disjoint").lstrip("_") or "cat"
    train = next(s for s in iab.SEMANTICS if s.lower().replace("-", "_") == slug)
    return {"train": sum(1 for _, s, f in rows if s == train and f == "train"),
            "validation": sum(1 for _, s, f in rows if s == train and f == "validation"),
            "test_seen": sum(1 for _, s, f in rows if s == train and f == "test"),
            "test": sum(1 for _, s, _ in rows if s != train)}
