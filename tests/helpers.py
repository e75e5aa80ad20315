"""Small builders of raw shards for tests."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

import imageattributionbench as iab
from iab import shards


def binomial_tail(correct: int, n: int, chance: float) -> float:
    """P(at least ``correct`` of ``n`` right) for a classifier guessing at ``chance``."""
    return sum(math.comb(n, k) * chance ** k * (1 - chance) ** (n - k)
               for k in range(correct, n + 1))


def assert_above_chance(accuracy: float, n: int, chance: float, alpha: float = 1e-3) -> None:
    """Learning, proven: an accuracy that guessing reaches with probability below ``alpha``.

    This holds on any CPU's numerics as long as the model learns at all, where a fixed
    threshold tuned on one machine fails on another (AVX2 vs AVX-512 kernels).
    """
    correct = round(accuracy * n)
    p = binomial_tail(correct, n, chance)
    assert p < alpha, (f"{correct}/{n} correct ({accuracy:.3f}) is within chance "
                       f"({chance:.3f}): P(guessing does as well) = {p:.2g} >= {alpha}")


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


def _chunk(kind: bytes, data: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def huge_png(width: int, height: int, valid: bool = True) -> bytes:
    """A small file that is a ``width`` x ``height`` PNG: 1-bit greyscale, all black, so
    even 110 megapixels compress to kilobytes. ``valid=False``: a decompression bomb's header
    (the image data is a few bytes, far too short for the size)."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    z = zlib.compressobj(9)
    if valid:
        line = b"\x00" * (1 + (width + 7) // 8)
        idat = b"".join(z.compress(line) for _ in range(height)) + z.flush()
    else:
        idat = z.compress(b"\x00" * 64) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat)
            + _chunk(b"IEND", b""))
