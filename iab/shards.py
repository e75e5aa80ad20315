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
    """Every column of the row schema is present, with a type that holds its values."""
    missing = [c for c in iab.COLUMN_NAMES if c not in schema.names]
    if missing:
        raise iab.BenchmarkError(
            f"{path}: missing column(s) {', '.join(missing)}; raw shards need every column of "
            f"the row schema ({', '.join(iab.COLUMN_NAMES)}); write them with "
            "imageattributionbench's features() (see DESIGN section 3)")
    expected = arrow_schema()
    for c in iab.COLUMN_NAMES:
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


def write_shard(table: pa.Table, path: Path) -> None:
    """Write a shard atomically (temp file + rename) in small row groups.

    Statistics are skipped for the image column (min/max of image bytes would copy whole
    images into the footer), and so is compression: image bytes are already compressed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(
            table, tmp, row_group_size=iab.ROWS_PER_ROW_GROUP,
            write_statistics=[c for c in table.column_names if c != "image"],
            compression={c: "snappy" for c in table.column_names if c != "image"}
            | {"image.bytes": "none", "image.path": "snappy"},
        )
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
