"""Shards the Hub's dataset viewer and Xet handle well: row groups capped by rows and bytes, a
page index, content-defined chunking; the rows read back unchanged."""

from __future__ import annotations

import json
import os

import pyarrow.parquet as pq
import imageattributionbench as iab
from iab import shards


def test_row_group_bounds_cap_rows_and_bytes():
    assert shards.row_group_bounds([1] * 250, max_rows=100, max_bytes=10**9) == [
        (0, 100), (100, 200), (200, 250)]
    assert shards.row_group_bounds([40, 40, 40, 40, 40], max_rows=100, max_bytes=100) == [
        (0, 2), (2, 4), (4, 5)]
    # a row larger than the cap gets a group of its own, never an empty group
    assert shards.row_group_bounds([10, 500, 10], max_rows=100, max_bytes=100) == [
        (0, 1), (1, 2), (2, 3)]
    assert shards.row_group_bounds([]) == []


def _rows(n: int, image_bytes: int) -> list[dict]:
    from helpers import png

    base = shards.make_row(png(0, 8), "SD1_5", "cat", "cat/0")
    blob = os.urandom(image_bytes)
    # distinct large "images": only their size matters to the layout
    return [{**base, "image": {"bytes": i.to_bytes(4, "big") + blob[4:], "path": None},
             "prompt_id": f"cat/{i}"} for i in range(n)]


def test_write_shard_caps_row_groups_by_bytes_and_writes_page_index_and_cdc(
        tmp_path, monkeypatch):
    monkeypatch.setattr(shards, "ROW_GROUP_MAX_BYTES", 250_000)
    table = shards.rows_to_table(_rows(9, 100_000))
    path = tmp_path / "s.parquet"
    shards.write_shard(table, path)
    pf = pq.ParquetFile(path)
    md = pf.metadata
    assert [md.row_group(g).num_rows for g in range(md.num_row_groups)] == [2, 2, 2, 2, 1]
    assert all(md.row_group(g).column(c).has_offset_index  # the page index
               for g in range(md.num_row_groups) for c in range(md.num_columns))
    assert json.loads(md.metadata[b"content_defined_chunking"]) == shards.CDC_OPTIONS
    assert b"huggingface" in md.metadata  # the datasets Features survive
    assert pf.read().equals(table)
    image = md.row_group(0).column(md.schema.names.index("image.bytes")
                                   if "image.bytes" in md.schema.names else 0)
    assert image.compression == "UNCOMPRESSED" and not image.is_stats_set


def test_rows_limit_still_applies_with_small_images(tmp_path):
    table = shards.rows_to_table(_rows(150, 1_000))
    shards.write_shard(table, tmp_path / "s.parquet")
    md = pq.ParquetFile(tmp_path / "s.parquet").metadata
    assert [md.row_group(g).num_rows for g in range(md.num_row_groups)] == [
        iab.ROWS_PER_ROW_GROUP, 150 - iab.ROWS_PER_ROW_GROUP]


def test_the_same_rows_give_the_same_bytes(tmp_path):
    table = shards.rows_to_table(_rows(5, 30_000))
    shards.write_shard(table, tmp_path / "a.parquet")
    shards.write_shard(table, tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
