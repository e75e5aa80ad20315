"""Checking, encoding and writing generated images, overlapped with generation.

PNG encoding (PIL releases the GIL) and shard writes run in threads while the pipeline works on
the next batch. Shards are written atomically at batch boundaries, so a killed job leaves only
whole batches behind and a rerun redoes exactly what is missing.

Images that cost money (API generators) are also spooled: each kept row is written at once,
atomically, to ``<semantic>/.spool/<rank>-<key hash>.parquet`` before the next request, and
removed once the shard holding it is written. A killed job loses no answered image: the next
run moves spooled rows into a shard first (``recover_spool``); until then they are ordinary
raw rows that ``iab build`` and resume both see.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections import defaultdict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

import pyarrow.parquet as pq

from iab import shards
from iab.faults import fault_point

BLACK_MAX = 4 / 255  # an image whose brightest pixel is this dark is black (safety-checker style)
BLANK_STD = 0.5 / 255  # one flat colour
SPOOL = ".spool"


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


def _spool_name(rank: int, row: dict) -> str:
    key = f"{row['prompt_id']}\n{row['image_index']}".encode()
    return f"{rank}-{hashlib.sha256(key).hexdigest()[:20]}.parquet"


def _keys(files) -> set[tuple[str, int]]:
    done = set()
    for f in files:
        t = pq.read_table(f, columns=["prompt_id", "image_index"])
        done.update(zip(t.column("prompt_id").to_pylist(), t.column("image_index").to_pylist()))
    return done


def recover_spool(root: Path) -> int:
    """Move the rows a killed job left only in its spool into shards; returns their count.
    Run by one process before any writer starts (the job's folder lock is held)."""
    recovered = 0
    for spool in sorted(root.glob(f"*/{SPOOL}")):
        files = sorted(spool.glob("*.parquet"))
        folder = spool.parent
        done = _keys(sorted(folder.glob("*.parquet")))
        rows: dict[tuple[str, int], dict] = {}
        for f in files:
            for r in pq.read_table(f).to_pylist():
                rows.setdefault((r["prompt_id"], r["image_index"]), r)
        keep = [r for k, r in sorted(rows.items()) if k not in done]
        if keep:
            shards.write_shard(shards.rows_to_table(keep),
                               folder / f"0-{_next_index(folder, 0):05d}.parquet")
        for f in files:
            f.unlink()
        recovered += len(keep)
    return recovered


class ShardWriter:
    """Buffers rows per subclass and writes ``<root>/<semantic>/<rank>-<k>.parquet``.

    ``spool=True`` makes every kept row durable at once (see the module docstring)."""

    def __init__(self, root: Path, rank: int, shard_rows: int, encode_threads: int,
                 spool: bool = False):
        self.root, self.rank, self.shard_rows, self.spool = root, rank, shard_rows, spool
        self.spooled: dict[str, list[Path]] = defaultdict(list)
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
            self.keep(shards.make_row(data, row["generator"], row["semantic"], row["prompt_id"],
                                      **{k: v for k, v in row.items() if k not in (
                                          "generator", "semantic", "prompt_id", "width",
                                          "height")}))
        for semantic, rows in list(self.buffers.items()):
            if len(rows) >= self.shard_rows:
                self._flush(semantic)

    def keep(self, row: dict) -> None:
        """Keep a finished row (a shards.make_row dict); spooled to disk before returning
        when the spool is on."""
        semantic = row["semantic"]
        if self.spool:
            path = self.root / semantic / SPOOL / _spool_name(self.rank, row)
            shards.write_shard(shards.rows_to_table([row]), path)
            self.spooled[semantic].append(path)
            fault_point("generation.spooled")  # kill tests: an answered image, on disk
        self.buffers[semantic].append(row)

    def reject(self, row: dict, why: str) -> None:
        self.rejected += 1
        entry = {k: row[k] for k in ("prompt_id", "image_index", "seed")} | {"reason": why}
        with self.rejects_log.open("a") as f:
            f.write(json.dumps(entry) + "\n")

    def _flush(self, semantic: str) -> None:
        rows, self.buffers[semantic] = self.buffers[semantic], []
        spooled, self.spooled[semantic] = self.spooled[semantic], []
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
        self.writes.append(self.io.submit(self._write, rows, path, spooled))

    @staticmethod
    def _write(rows: list[dict], path: Path, spooled: list[Path]) -> None:
        shards.write_shard(shards.rows_to_table(rows), path)
        fault_point("generation.shard_written")  # kill tests: shard and spool both on disk
        for p in spooled:  # now in the shard
            p.unlink(missing_ok=True)

    def close(self) -> None:
        """Finish everything in flight and write every buffer; raises the first write error."""
        self.end_batch(keep_pending=0)
        for semantic in list(self.buffers):
            self._flush(semantic)
        for fut in self.writes:
            fut.result()
        self.encoder.shutdown()
        self.io.shutdown()
        for semantic in self.buffers:
            try:
                (self.root / semantic / SPOOL).rmdir()
            except OSError:
                pass  # absent, or still holding another rank's rows


def remove_stale_temp_files(root: Path) -> int:
    """Temporary files a killed job left (never read: they are not .parquet). Only while the
    job's folder lock is held: another job's files would be in use."""
    stale = list(root.rglob(".*.tmp"))
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)


def free_cpu_threads() -> int:
    return max(1, (os.cpu_count() or 2) - 1)
