"""Checking, encoding and writing generated images, overlapped with generation.

PNG encoding (PIL releases the GIL) and shard writes run in threads while the pipeline works on
the next batch. Shards are written atomically at batch boundaries, so a killed job leaves only
whole batches behind and a rerun redoes exactly what is missing.
"""

from __future__ import annotations

import io
import json
import os
from collections import defaultdict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from iab import shards

BLACK_MAX = 4 / 255  # an image whose brightest pixel is this dark is black (safety-checker style)
BLANK_STD = 0.5 / 255  # one flat colour


def check_image(image: np.ndarray, width: int, height: int) -> str | None:
    """Why an image must be rejected, or None if it is fit to keep."""
    if image.shape[:2] != (height, width):
        return f"wrong size {image.shape[1]}x{image.shape[0]}, expected {width}x{height}"
    if not np.isfinite(image).all():
        return "NaN or infinite values"
    if image.max() <= BLACK_MAX:
        return "black image"
    if image.std() <= BLANK_STD:
        return "blank image (one flat colour)"
    return None


def to_png(image: np.ndarray) -> bytes:
    """PNG bytes of a [0, 1] float image, rounded as diffusers' numpy_to_pil rounds."""
    buf = io.BytesIO()
    Image.fromarray((image * 255).round().clip(0, 255).astype(np.uint8), "RGB").save(buf, "PNG")
    return buf.getvalue()


def _next_index(folder: Path, rank: int) -> int:
    taken = [int(p.stem.split("-")[1]) for p in folder.glob(f"{rank}-*.parquet")]
    return max(taken, default=-1) + 1


class ShardWriter:
    """Buffers rows per subclass and writes ``<root>/<semantic>/<rank>-<k>.parquet``."""

    def __init__(self, root: Path, rank: int, shard_rows: int, encode_threads: int):
        self.root, self.rank, self.shard_rows = root, rank, shard_rows
        self.encoder = ThreadPoolExecutor(max(1, encode_threads), thread_name_prefix="png")
        self.io = ThreadPoolExecutor(1, thread_name_prefix="shard")
        self.pending: deque[tuple[dict, Future]] = deque()
        self.buffers: dict[str, list[dict]] = defaultdict(list)
        self.writes: list[Future] = []
        self.next_index: dict[str, int] = {}
        self.written = 0
        self.rejected = 0
        self.rejects_log = root / "rejects.jsonl"

    def add(self, row: dict, image: np.ndarray) -> None:
        """Queue one image: checked and encoded in the background; ``row`` holds the rest."""
        self.pending.append((row, self.encoder.submit(self._encode, image, row["width"],
                                                      row["height"])))

    @staticmethod
    def _encode(image: np.ndarray, width: int, height: int) -> tuple[bytes | None, str | None]:
        why = check_image(image, width, height)
        return (None, why) if why else (to_png(image), None)

    def end_batch(self, keep_pending: int) -> None:
        """Collect encoded images, leaving up to ``keep_pending`` in flight, and write every
        full shard. A batch may span two shards: a rerun redoes a partly written batch whole
        and keeps only its missing images, which come out as they would have."""
        while len(self.pending) > keep_pending:
            row, fut = self.pending.popleft()
            data, why = fut.result()
            if why:
                self.reject(row, why)
                continue
            self.buffers[row["semantic"]].append(
                shards.make_row(data, row["generator"], row["semantic"], row["prompt_id"],
                                **{k: v for k, v in row.items() if k not in (
                                    "generator", "semantic", "prompt_id", "width", "height")}))
        for semantic, rows in list(self.buffers.items()):
            if len(rows) >= self.shard_rows:
                self._flush(semantic)

    def reject(self, row: dict, why: str) -> None:
        self.rejected += 1
        entry = {k: row[k] for k in ("prompt_id", "image_index", "seed")} | {"reason": why}
        with self.rejects_log.open("a") as f:
            f.write(json.dumps(entry) + "\n")

    def _flush(self, semantic: str) -> None:
        rows, self.buffers[semantic] = self.buffers[semantic], []
        if not rows:
            return
        folder = self.root / semantic
        folder.mkdir(parents=True, exist_ok=True)
        # Names are counted here, not on disk: writes run in the background, and only this
        # process writes files of its rank.
        if semantic not in self.next_index:
            self.next_index[semantic] = _next_index(folder, self.rank)
        path = folder / f"{self.rank}-{self.next_index[semantic]:05d}.parquet"
        self.next_index[semantic] += 1
        self.written += len(rows)
        self.writes.append(self.io.submit(self._write, rows, path))

    @staticmethod
    def _write(rows: list[dict], path: Path) -> None:
        shards.write_shard(shards.rows_to_table(rows), path)

    def close(self) -> None:
        """Finish everything in flight and write every buffer; raises the first write error."""
        self.end_batch(keep_pending=0)
        for semantic in list(self.buffers):
            self._flush(semantic)
        for fut in self.writes:
            fut.result()
        self.encoder.shutdown()
        self.io.shutdown()


def remove_stale_temp_files(root: Path) -> int:
    """Temporary files a killed job left (never read: they are not .parquet)."""
    stale = list(root.rglob(".*.tmp"))
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)


def free_cpu_threads() -> int:
    return max(1, (os.cpu_count() or 2) - 1)
