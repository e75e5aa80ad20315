"""What the shard layout costs: every parquet file of a build rewritten the old way (fixed
100-row groups, no page index, no content-defined chunking) and the way `iab build` writes
now (row groups capped by rows and bytes, page index, CDC), with sizes and row groups; plus
the largest row group each gives for rows of a given image size (the viewer reads one whole
row group: ~286 MiB is its limit).

    python benchmarks/shard_layout.py BUILD [--image-mb 1.5 --rows 400]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

import imageattributionbench as iab
from iab import shards


def write_old(table: pa.Table, path: Path) -> None:
    """The layout before: fixed 100-row groups only."""
    pq.write_table(table, path, row_group_size=iab.ROWS_PER_ROW_GROUP,
                   write_statistics=[c for c in table.column_names if c != "image"],
                   compression={c: "snappy" for c in table.column_names if c != "image"}
                   | {"image.bytes": "none", "image.path": "snappy"})


def _largest_group(path: Path) -> int:
    md = pq.ParquetFile(path).metadata
    return max(md.row_group(g).total_byte_size for g in range(md.num_row_groups))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build", type=Path)
    ap.add_argument("--image-mb", type=float, default=1.5, help="synthetic row size (MB)")
    ap.add_argument("--rows", type=int, default=400, help="synthetic rows in one shard")
    args = ap.parse_args()
    files = sorted(args.build.rglob("*.parquet"))
    with tempfile.TemporaryDirectory() as tmp:
        sizes = {"old": 0, "new": 0}
        groups = {"old": 0, "new": 0}
        for i, f in enumerate(files):
            table = pq.read_table(f)
            for kind, write in (("old", write_old), ("new", shards.write_shard)):
                dest = Path(tmp) / f"{kind}-{i}.parquet"
                write(table, dest)
                sizes[kind] += dest.stat().st_size
                groups[kind] += pq.ParquetFile(dest).metadata.num_row_groups
                dest.unlink()
        print(f"{len(files)} shards of {args.build}: old layout {sizes['old']:,} bytes in "
              f"{groups['old']} row groups; new {sizes['new']:,} bytes in {groups['new']} row "
              f"groups ({100 * (sizes['new'] / sizes['old'] - 1):+.2f}%)")
        row = pq.read_table(files[0]).slice(0, 1).to_pylist()[0]
        # stands for large PNGs: their size is what counts; distinct, so nothing dedupes them
        blob = os.urandom(int(args.image_mb * 1e6))
        rows = [{**row, "image": {"bytes": i.to_bytes(4, "big") + blob[4:], "path": None}}
                for i in range(args.rows)]
        table = shards.rows_to_table(rows)
        for kind, write in (("old", write_old), ("new", shards.write_shard)):
            dest = Path(tmp) / f"big-{kind}.parquet"
            write(table, dest)
            print(f"{args.rows} rows of {args.image_mb} MB, {kind} layout: largest row group "
                  f"{_largest_group(dest) / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
