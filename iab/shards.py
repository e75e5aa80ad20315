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
        present = set(pf.schema_arrow.names)
        # columns added to the schema later read as null from shards written before them
        absent = [c for c in (columns or iab.ADDED_COLUMNS) if c in iab.ADDED_COLUMNS
                  and c not in present]
        cols = None if columns is None else [c for c in columns if c not in absent]
        table = pf.read(columns=cols) if row_groups is None else pf.read_row_groups(
            row_groups, columns=cols)
        table.validate(full=True)  # e.g. string columns holding bytes that are not UTF-8
        for c in absent:
            table = table.append_column(c, pa.nulls(table.num_rows, pa.string()))
        return table
    except iab.BenchmarkError:
        raise
    except Exception as e:
        raise iab.BenchmarkError(f"{path}: damaged parquet data ({type(e).__name__}: {e}); "
                                 "regenerate this shard or remove it from the inputs") from e


def _type_fits(actual: pa.DataType, expected: pa.DataType, nullable: bool) -> bool:
    """Whether a raw shard's column type holds the schema's values: any integer width for an
    integer column, integers or floats for a float one, string for string, the datasets
    Image struct (or plain binary) for the image; an all-null column where nulls are allowed."""
    if pa.types.is_null(actual):
        return nullable
    if pa.types.is_integer(expected):
        return pa.types.is_integer(actual)
    if pa.types.is_floating(expected):
        return pa.types.is_floating(actual) or pa.types.is_integer(actual)
    if pa.types.is_string(expected):
        return pa.types.is_string(actual) or pa.types.is_large_string(actual)
    if pa.types.is_struct(expected):  # image: {bytes, path}
        if pa.types.is_binary(actual) or pa.types.is_large_binary(actual):
            return True
        return (pa.types.is_struct(actual) and actual.get_field_index("bytes") >= 0
                and _type_fits(actual.field("bytes").type, pa.binary(), True))
    return actual == expected


def check_columns(path: Path, schema: pa.Schema) -> None:
    """Every column of the row schema is present, with a type that holds its values (columns
    added to the schema later may be absent: they read as null)."""
    missing = [c for c in iab.COLUMN_NAMES
               if c not in schema.names and c not in iab.ADDED_COLUMNS]
    if missing:
        raise iab.BenchmarkError(
            f"{path}: missing column(s) {', '.join(missing)}; raw shards need every column of "
            f"the row schema ({', '.join(iab.COLUMN_NAMES)}); write them with "
            "imageattributionbench's features() (see DESIGN section 3)")
    expected = arrow_schema()
    for c in iab.COLUMN_NAMES:
        if c not in schema.names:  # an added column (ADDED_COLUMNS), read as null
            continue
        want, have = expected.field(c).type, schema.field(c).type
        if not _type_fits(have, want, c not in iab.REQUIRED_VALUES):
            raise iab.BenchmarkError(
                f"{path}: column {c!r} has type {have}, the row schema says {want}; rewrite "
                "the shard with imageattributionbench's features() (see DESIGN section 3)")


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


# Images above this many pixels are refused before any pixel is decoded: a decompression
# bomb (a tiny PNG whose header says 30000x30000) or an image no generator makes (decoding and
# degrading 110 MP costs about 2 GB). The environment variable IAB_MAX_PIXELS or
# ``iab build/verify --max-pixels`` changes it.
DEFAULT_MAX_PIXELS = 50_000_000


def max_pixels(override: int | None = None) -> int:
    """The pixel limit in force: ``override``, else IAB_MAX_PIXELS, else DEFAULT_MAX_PIXELS."""
    if override is not None:
        value = override
    else:
        text = os.environ.get("IAB_MAX_PIXELS", "").replace("_", "")
        if text and not text.isdigit():
            raise iab.BenchmarkError(f"IAB_MAX_PIXELS={text!r} is not a whole number of pixels")
        value = int(text) if text else DEFAULT_MAX_PIXELS
    if value < 1:
        raise iab.BenchmarkError(f"the pixel limit must be at least 1, got {value}")
    return value


def _open_within(data: bytes, where: str, limit: int):
    """PIL image of the bytes (header read only), refusing more than ``limit`` pixels."""
    import warnings

    from PIL import Image

    # PIL's own bomb check (a warning above MAX_IMAGE_PIXELS, an error above twice that)
    # must not fire below our limit; ours is the one that speaks.
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < limit:
        Image.MAX_IMAGE_PIXELS = limit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as e:
            raise too_big_error(where, str(e), limit) from None
    w, h = im.size
    if w * h > limit:
        im.close()
        raise too_big_error(where, f"{w}x{h} = {w * h:,} pixels", limit)
    return im


def too_big_error(where: str, what: str, limit: int) -> iab.BenchmarkError:
    return iab.BenchmarkError(
        f"{where}: image too large ({what}); the pixel limit is {limit:,} (a decompression "
        "bomb, or an image no generator makes): remove or downscale it, or raise the limit "
        "with --max-pixels N or the environment variable IAB_MAX_PIXELS")


def inspect_image(data: bytes, where: str, *, limit: int | None = None,
                  decode: bool = False) -> ImageFacts:
    """Format, size and JPEG quality of encoded image bytes, checking that they decode.

    The size is read from the header first: an image above the pixel limit (``max_pixels``)
    is refused before anything is decoded. PNG chunks are CRC-checked (``verify``) and JPEG
    data must reach its end marker, which catches truncation and corruption without the cost
    of decoding every pixel; ``decode=True`` also decodes every pixel (``iab verify``).
    """
    from PIL import Image, UnidentifiedImageError

    limit = max_pixels(limit)
    if not data:
        raise iab.BenchmarkError(f"{where}: image has no bytes (empty); regenerate or "
                                 "re-import it, or remove the row")
    try:
        with _open_within(data, where, limit) as im:
            fmt, (w, h) = im.format, im.size
            quality = jpeg_quality_estimate(getattr(im, "quantization", None)) \
                if fmt == "JPEG" else None
            im.verify()
        if fmt == "JPEG" and not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
            raise OSError("JPEG data ends before its end-of-image marker (truncated)")
        if decode:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as e:
        if isinstance(e, iab.BenchmarkError):
            raise
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
    row = {
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
    problem = iab.row_problem(row)
    if problem:
        raise iab.BenchmarkError(f"{where}: {problem}")
    return row


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
