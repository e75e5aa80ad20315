"""Reading, checking and writing parquet shards in the benchmark's row schema."""

from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

import imageattributionbench as iab

_INFO_KEY = b"huggingface"


@lru_cache(maxsize=1)
def arrow_schema() -> pa.Schema:
    """The arrow schema of a shard, with the datasets Features in its metadata (as datasets
    writes it), so a shard read on its own still knows its ClassLabel and Image columns."""
    feats = iab.features()
    meta = {_INFO_KEY: json.dumps({"info": {"features": feats.to_dict()}}).encode()}
    return feats.arrow_schema.with_metadata(meta)


def find_raw_shards(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Every .parquet file named, or found below a named folder, in a stable order."""
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files += sorted(q for q in p.rglob("*.parquet") if q.is_file())
        elif p.is_file():
            files.append(p)
        else:
            raise iab.BenchmarkError(f"raw input {str(p)!r} does not exist: pass folders or "
                                     ".parquet files of raw shards")
    if not files:
        raise iab.BenchmarkError(
            "no raw shards found in " + ", ".join(map(str, inputs)) + ": pass folders or "
            ".parquet files written by generation/run.py, generation/real.py or `iab import`")
    return sorted(set(files), key=lambda q: q.as_posix())


def open_parquet(path: Path) -> pq.ParquetFile:
    """A parquet file, or a clear error for a truncated or foreign one."""
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise iab.BenchmarkError(f"{path}: not a readable parquet file ({e}); it may be "
                                 "truncated: regenerate it or remove it from the inputs") from e


def read_table(path: Path, columns: list[str] | None = None,
               row_groups: list[int] | None = None) -> pa.Table:
    """A parquet file's table (or some of its row groups), decoded enough to catch damage
    inside: any read failure becomes a clear error naming the file."""
    try:
        pf = open_parquet(path)
        table = pf.read(columns=columns) if row_groups is None else pf.read_row_groups(
            row_groups, columns=columns)
        table.validate(full=True)  # e.g. string columns holding bytes that are not UTF-8
        return table
    except iab.BenchmarkError:
        raise
    except Exception as e:
        raise iab.BenchmarkError(f"{path}: damaged parquet data ({type(e).__name__}: {e}); "
                                 "regenerate this shard or remove it from the inputs") from e


def check_columns(path: Path, schema: pa.Schema) -> None:
    missing = [c for c in iab.COLUMN_NAMES if c not in schema.names]
    if missing:
        raise iab.BenchmarkError(
            f"{path}: missing column(s) {', '.join(missing)}; raw shards need every column of "
            f"the row schema ({', '.join(iab.COLUMN_NAMES)}); write them with "
            "imageattributionbench's features() (see DESIGN section 3)")


def image_bytes_column(table: pa.Table) -> list[bytes | None]:
    """The image bytes of each row, whether stored as a datasets Image struct or as binary."""
    col = table.column("image")
    if pa.types.is_struct(col.type):
        col = pa.chunked_array([c.field("bytes") for c in col.chunks], type=pa.binary())
    return col.to_pylist()


@dataclass(frozen=True)
class ImageFacts:
    format: str
    width: int
    height: int
    jpeg_quality: int | None


# The IJG standard luminance table at quality 50: JPEG quality is estimated against it.
_IJG_LUMA = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69,
    56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81,
    104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)


def jpeg_quality_estimate(quant_tables: dict) -> int | None:
    """IJG quality (1-100) whose scaled luminance table is closest to the image's."""
    luma = quant_tables.get(0) if quant_tables else None
    if not luma or len(luma) != 64:
        return None
    # PIL gives tables in zigzag order; the sum over all 64 entries does not depend on order.
    scale = 100.0 * sum(luma) / sum(_IJG_LUMA)
    quality = (200.0 - scale) / 2.0 if scale <= 100.0 else 5000.0 / scale
    return max(1, min(100, round(quality)))


def inspect_image(data: bytes, where: str) -> ImageFacts:
    """Format, size and JPEG quality of encoded image bytes, checking that they decode.

    PNG chunks are CRC-checked (``verify``) and JPEG data must reach its end marker, which
    catches truncation and corruption without the cost of decoding every pixel.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt, (w, h) = im.format, im.size
            quality = jpeg_quality_estimate(getattr(im, "quantization", None)) \
                if fmt == "JPEG" else None
            im.verify()
        if fmt == "JPEG" and not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
            raise OSError("JPEG data ends before its end-of-image marker (truncated)")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise iab.BenchmarkError(f"{where}: undecodable image ({e}); regenerate or re-import "
                                 "it, or remove the row") from e
    return ImageFacts(fmt, w, h, quality)


# What the Hub's dataset viewer reads at once: datasets' MAX_ROW_GROUP_SIZE (100 MB) caps a
# row group's bytes, iab.ROWS_PER_ROW_GROUP its rows; one 4096x4096 PNG can be 30 MB.
ROW_GROUP_MAX_BYTES = 100 * 1000**2
# Content-defined chunking (pyarrow >= 21): page boundaries follow the data, so a shard that
# gains or loses rows re-uploads only the pages that changed (Xet storage deduplicates the
# rest). The options are datasets' DEFAULT_CDC_OPTIONS, what push_to_hub writes.
CDC_OPTIONS = {"min_chunk_size": 256 * 1024, "max_chunk_size": 1024 * 1024, "norm_level": 0}


def row_group_bounds(row_bytes: list[int], max_rows: int = iab.ROWS_PER_ROW_GROUP,
                     max_bytes: int = ROW_GROUP_MAX_BYTES) -> list[tuple[int, int]]:
    """(start, stop) of each row group: at most ``max_rows`` rows and ``max_bytes`` bytes
    (a single larger row gets a group of its own)."""
    bounds, start, size = [], 0, 0
    for i, n in enumerate(row_bytes):
        if i > start and (i - start >= max_rows or size + n > max_bytes):
            bounds.append((start, i))
            start, size = i, 0
        size += n
    if start < len(row_bytes):
        bounds.append((start, len(row_bytes)))
    return bounds


def _row_bytes(table: pa.Table) -> list[int]:
    import pyarrow.compute as pc

    image = table.column("image")
    if pa.types.is_struct(image.type):
        image = pa.chunked_array([c.field("bytes") for c in image.chunks], type=pa.binary())
    other = (table.nbytes - image.nbytes) // max(table.num_rows, 1)
    return [(n or 0) + other for n in pc.binary_length(image).to_pylist()]


def write_shard(table: pa.Table, path: Path) -> None:
    """Write a shard atomically (temp file + rename) the way the Hub's viewer and Xet read
    best: row groups capped by rows and bytes (:func:`row_group_bounds`), a page index, and
    content-defined chunking (:data:`CDC_OPTIONS`).

    Image bytes are stored plain: no compression (they are compressed already), no dictionary
    and no statistics (min/max of image bytes would copy whole images into the footer).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    plain = ["image.bytes"] if pa.types.is_struct(table.schema.field("image").type) else \
        ["image"]
    leaves = [c for c in table.column_names if c != "image"] + \
        (["image.path"] if plain == ["image.bytes"] else [])
    try:
        with pq.ParquetWriter(
                tmp, table.schema, write_statistics=leaves,
                compression={c: "snappy" for c in leaves} | {c: "none" for c in plain},
                use_dictionary=leaves, column_encoding={c: "PLAIN" for c in plain},
                write_page_index=True, use_content_defined_chunking=CDC_OPTIONS) as writer:
            writer.add_key_value_metadata({"content_defined_chunking": json.dumps(CDC_OPTIONS)})
            for start, stop in row_group_bounds(_row_bytes(table), iab.ROWS_PER_ROW_GROUP,
                                                ROW_GROUP_MAX_BYTES):
                writer.write_table(table.slice(start, stop - start),
                                   row_group_size=stop - start)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def rows_to_table(rows: list[dict]) -> pa.Table:
    """Rows (dicts of the schema's columns, image as {"bytes", "path"}) as a shard table."""
    schema = arrow_schema()
    return pa.Table.from_pylist([{c: r.get(c) for c in schema.names} for r in rows],
                                schema=schema)


def make_row(data: bytes, label: str, semantic: str, prompt_id: str, *, image_index: int = 0,
             prompt: str | None = None, image_path: str | None = None, where: str = "image",
             **meta) -> dict:
    """A row of the schema for encoded image bytes: label id, superclass, size, format and
    sha256 are derived, so they cannot disagree with the bytes. ``meta`` sets the other
    columns (seed, model_id, source ...); unset ones are null."""
    unknown = set(meta) - set(iab.COLUMN_NAMES)
    if unknown:
        raise TypeError(f"not schema columns: {', '.join(sorted(unknown))}")
    facts = inspect_image(data, where)
    return {
        **{c: None for c in iab.COLUMN_NAMES},
        **meta,
        "image": {"bytes": data, "path": image_path},
        "label": iab.label_id(label),
        "generator": label,
        "semantic": semantic,
        "superclass": iab.superclass_of(semantic),
        "prompt": prompt,
        "prompt_id": prompt_id,
        "image_index": image_index,
        "width": facts.width,
        "height": facts.height,
        "format": facts.format,
        "sha256": iab.sha256_hex(data),
    }


@dataclass(frozen=True)
class ImageStat:
    """One published image, as the dataset card's tables count it."""

    label: str
    semantic: str
    fold: str
    format: str
    width: int
    height: int
    nbytes: int
    jpeg_quality: int | None
    # how the image was made, as its row says (the card shows a build's real settings)
    model_id: str | None = None
    steps: int | None = None
    guidance: float | None = None
    source: str | None = None
