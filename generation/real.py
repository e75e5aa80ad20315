"""Put real images of a subclass into raw shards (label ``real``), from any source that
``datasets`` can load: a Hub dataset id or a local folder of images.

    python generation/real.py --source nateraw/pascal-voc-2012 --semantic COCO --out raw/
    python generation/real.py --source ~/photos/cats --semantic cat --limit 500 --out raw/

Image bytes are kept exactly as the source has them, with their file names. A real image that
an official prompt was captioned from (the prompt set's ImgPath) is linked to that prompt, so
it shares the prompt's fold with every generated image of it.

:func:`import_photo_crops` is the other kind of source, for the offline demo: crops of a few
photographs at the generated images' size, one per prompt (so every fold has real images),
each row's ``source`` naming the photograph, the scale and the crop box.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import imageattributionbench as iab
from iab.scripts import DefaultsHelpFormatter, run_script
from iab.importer import ImportReport, done_rows, image_row, write_unit
from iab import shards


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter, description=__doc__.split("\n\n")[0])
    p.add_argument("--source", required=True, help="Hub dataset id or a local image folder")
    p.add_argument("--semantic", required=True, help="the subclass of every image")
    p.add_argument("--out", required=True, help="raw shard folder (RAW_DIR)")
    p.add_argument("--split", default="train", help="split of the source (default train)")
    p.add_argument("--config", help="config of the source dataset")
    p.add_argument("--image-column", default="image", help="default 'image'")
    p.add_argument("--limit", type=int, help="first N images only")
    p.add_argument("--source-name", help="what `source` records (default: --source's name)")
    p.add_argument("--revision", help="revision of a Hub source")
    return p.parse_args(argv)


def _records(source: str, split: str, config: str | None, column: str, revision: str | None,
             limit: int | None) -> Iterator[tuple[bytes, str]]:
    """(image bytes, file name) from a datasets source, streamed, never decoded."""
    from datasets import Image, load_dataset

    # datasets picks the builder: imagefolder for a folder of images, parquet for a repo
    ds = load_dataset(source, config, split=split, revision=revision, streaming=True)
    if column not in (ds.column_names or [column]):
        raise iab.BenchmarkError(f"{source} has no column {column!r}; its columns: "
                                 f"{', '.join(ds.column_names)} (use --image-column)")
    ds = ds.cast_column(column, Image(decode=False))
    for i, row in enumerate(ds):
        if limit is not None and i >= limit:
            return
        img = row[column]
        data = img.get("bytes")
        path = img.get("path")
        if data is None and path:
            data = Path(path).read_bytes()
        yield data or b"", Path(path).name if path else f"{split}-{i:07d}"


def import_real(source: str, semantic: str, out: str | Path, *, split: str = "train",
                config: str | None = None, image_column: str = "image",
                limit: int | None = None, source_name: str | None = None,
                revision: str | None = None) -> ImportReport:
    """Write ``<out>/real/<semantic>/<source>-<k>.parquet``; images already there (by their
    ``source``) are not imported again, so a rerun completes an interrupted import."""
    iab.superclass_of(semantic)
    name = source_name or Path(source.rstrip("/")).name
    stem = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower() or "source"
    dest = Path(out) / iab.REAL / semantic
    report = ImportReport()
    done, _ = done_rows(dest)

    def rows():
        for i, (data, file_name) in enumerate(_records(source, split, config, image_column,
                                                       revision, limit)):
            if f"{name}:{file_name}" in done:
                report.already_imported += 1
                continue
            try:
                yield image_row(data, iab.REAL, semantic, file_name, f"{name}:{file_name}",
                                f"{source} #{i} ({file_name})", False, False, report)
            except iab.BenchmarkError as e:
                report.unmapped.append(str(e))

    write_unit(rows(), dest, stem, report)
    return report


@dataclass(frozen=True)
class Photo:
    """A photograph to crop: its file name, bytes, where it comes from and its licence."""

    name: str
    data: bytes
    origin: str
    license: str


# Scales a photograph is reduced by (box filter) before a crop: 1 keeps camera pixels, the
# others fit more of the scene into one crop.
CROP_SCALES = (1.0, 0.5, 1 / 3)
CROP_CANDIDATES = 48


def _png(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def photo_crop(photos: Sequence[Photo], key: str, size: int,
               match_png_bytes: float | None = None, spread: float = 0.017,
               cache: dict | None = None) -> tuple[bytes, str]:
    """One ``size`` x ``size`` PNG crop for ``key`` (a prompt id: the same key, the same crop)
    and its ``source`` text: photograph, scale and crop box.

    Candidates are drawn at random positions and :data:`CROP_SCALES`; with
    ``match_png_bytes``, the one whose PNG size is nearest a size drawn around it (relative
    spread ``spread``) is kept, so that file size does not tell crops from the generated
    images they stand beside (the dataset card's metadata shortcut baseline checks this).
    ``cache`` keeps decoded, scaled photographs between calls.
    """
    import numpy as np

    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8],
                                               "big"))
    goal = None if match_png_bytes is None else match_png_bytes * (1 + spread *
                                                                   rng.standard_normal())
    best = None
    for _ in range(CROP_CANDIDATES if goal is not None else 1):
        which = int(rng.integers(len(photos)))
        scale = CROP_SCALES[int(rng.integers(len(CROP_SCALES)))]
        img = _scaled(photos[which], scale, size, cache if cache is not None else {})
        x, y = int(rng.integers(img.width - size + 1)), int(rng.integers(img.height - size + 1))
        data = _png(img.crop((x, y, x + size, y + size)))
        cost = 0.0 if goal is None else abs(len(data) - goal)
        if best is None or cost < best[0]:
            photo = photos[which]
            best = (cost, data, f"{photo.origin} {photo.name} ({photo.license}), scale "
                                f"{scale:.3g}, crop {size}x{size} at ({x}, {y})")
    return best[1], best[2]


def _scaled(photo: Photo, scale: float, size: int, cache: dict):
    from PIL import Image

    key = (photo.name, scale)
    if key not in cache:
        img = Image.open(io.BytesIO(photo.data)).convert("RGB")
        if scale != 1.0:
            img = img.resize((max(size, round(img.width * scale)),
                              max(size, round(img.height * scale))), Image.BOX)
        if img.width < size or img.height < size:
            raise iab.BenchmarkError(f"{photo.name} is {img.width}x{img.height}: smaller than "
                                     f"a {size} px crop")
        cache[key] = img
    return cache[key]


def import_photo_crops(photos: Sequence[Photo], semantic: str, prompts, out: str | Path, *,
                       size: int, source_name: str, match_png_bytes: float | None = None
                       ) -> ImportReport:
    """Write one real crop per prompt (``iab.prompts.Prompt``) to ``<out>/real/<semantic>/
    <source_name>-<k>.parquet``, each linked to its prompt (so it shares the prompt's fold);
    a prompt that already has its crop is skipped, so a rerun completes an interrupted import
    crop by crop. See :func:`photo_crop`."""
    iab.superclass_of(semantic)
    stem = re.sub(r"[^A-Za-z0-9]+", "_", source_name).strip("_").lower() or "crops"
    dest = Path(out) / iab.REAL / semantic
    report = ImportReport()
    _, identities = done_rows(dest)

    def rows():
        cache: dict = {}
        for p in prompts:
            if (p.prompt_id, 0) in identities:
                report.already_imported += 1
                continue
            data, source = photo_crop(photos, p.prompt_id, size, match_png_bytes, cache=cache)
            yield shards.make_row(data, iab.REAL, semantic, p.prompt_id, prompt=p.text,
                                  image_path=f"{p.prompt_id.replace('/', '-')}.png",
                                  where=source, source=f"{source_name}: {source}")

    write_unit(rows(), dest, stem, report)
    return report


def main(args: argparse.Namespace) -> int:
    report = import_real(args.source, args.semantic, args.out, split=args.split,
                         config=args.config, image_column=args.image_column, limit=args.limit,
                         source_name=args.source_name, revision=args.revision)
    if report.already_imported:
        print(f"{report.already_imported} image(s) already imported (kept)")
    linked = report.rows - report.unlinked_prompts
    print(f"real/{args.semantic}: {report.rows} images in {len(report.shards)} shards, "
          f"{linked} linked to the official prompt captioned from them")
    for item in report.unmapped:
        print(f"  skipped: {item}")
    return 0


if __name__ == "__main__":
    run_script(lambda: main(parse_args()))
