"""Put real images of a subclass into raw shards (label ``real``), from any source that
``datasets`` can load: a Hub dataset id or a local folder of images.

    python generation/real.py --source nateraw/pascal-voc-2012 --semantic COCO --out raw/
    python generation/real.py --source ~/photos/cats --semantic cat --limit 500 --out raw/

Image bytes are kept exactly as the source has them, with their file names. A real image that
an official prompt was captioned from (the prompt set's ImgPath) is linked to that prompt, so
it shares the prompt's fold with every generated image of it.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Iterator

import imageattributionbench as iab
from iab.scripts import run_script
from iab.importer import ImportReport, done_rows, image_row, write_unit


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
