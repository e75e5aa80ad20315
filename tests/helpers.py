"""Small builders of raw shards for tests."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

import imageattributionbench as iab
from iab import shards


def png(seed: int = 0, size: int = 16) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, "PNG")
    return buf.getvalue()


def row(label="SD1_5", semantic="cat", index=0, seed=0, **over) -> dict:
    r = shards.make_row(png(seed), label, semantic, iab.prompt_id(semantic, index), prompt="p")
    r.update(over)
    return r


def write_rows(path: Path, rows: list[dict]) -> Path:
    shards.write_shard(shards.rows_to_table(rows), path)
    return path


def tree_files(root: Path) -> dict[str, bytes]:
    """Every file below root (relative path -> bytes)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def shard_rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()
