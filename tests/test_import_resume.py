"""iab import: killed and rerun it loses no image, in every release form; hostile files (a
decompression-bomb header, a symlink loop) are skipped and listed while the good ones are kept;
--selection paper keeps exactly the official loader's files."""

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from iab import official
from iab.importer import import_images

import paper_replica as rep

FIXTURE = Path(__file__).parent / "data" / "paper_split"


def rows_of(raw):
    return [r for f in sorted(raw.rglob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def _cli(*args, fault=None):
    env = {k: v for k, v in os.environ.items() if k != "IAB_FAULT"}
    if fault:
        env["IAB_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "iab.cli", "import", *map(str, args)],
                          env=env, capture_output=True, text=True, timeout=600)


def eleven_hundred() -> dict[str, bytes]:
    names = [f"{rep.folder('SD1_5', 'cat')}/AnimalFace_cat_p{p}_i{i}.png"
             for p in range(550) for i in range(2)]
    return {n: rep.image_bytes(n, k) for k, n in enumerate(names)}


@pytest.mark.parametrize("form", ["tree", "dataverse", "parquet"])
def test_killed_import_resumes_every_image(form, tmp_path):
    """1,100 images of one folder, killed right after the first 1,000-row shard: the rerun
    imports the other 100 (it used to skip the whole folder: 'skipped 1 unit(s)')."""
    files = eleven_hundred()
    write = {"tree": rep.write_tree, "dataverse": rep.write_dataverse,
             "parquet": rep.write_hub_parquet}[form]
    src = write(tmp_path / "src", files)
    raw = tmp_path / "raw"
    killed = _cli(src, "--out", raw, fault="import.shard")
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert len(rows_of(raw)) == 1000
    again = _cli(src, "--out", raw)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "imported 100 images" in again.stdout
    assert "1,000 image(s) already imported" in again.stdout
    rows = rows_of(raw)
    assert len(rows) == 1100
    assert sorted(r["source"] for r in rows) == sorted(files)


def _bomb_png(width=30000, height=30000) -> bytes:
    """A tiny file whose PNG header claims 30000 x 30000 pixels."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    ihdr = struct.pack(">2I5B", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def test_bomb_and_symlink_loop_are_skipped_and_the_folder_kept(tmp_path):
    files = {f"{rep.folder('SD1_5', 'cat')}/AnimalFace_cat_p{p}_i0.png": rep.image_bytes("a", p)
             for p in range(3)}
    src = rep.write_tree(tmp_path / "tree", files)
    cat = src / rep.folder("SD1_5", "cat")
    (cat / "AnimalFace_cat_p7_i0.png").write_bytes(_bomb_png())
    os.symlink("AnimalFace_cat_p8_i0.png", cat / "AnimalFace_cat_p8_i0.png")  # loops on itself
    done = _cli(src, "--out", tmp_path / "raw")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert "skipped 2 file(s), kept the others" in done.stdout
    assert "AnimalFace_cat_p7_i0.png: image too large" in done.stdout
    assert "900000000 pixels" in done.stdout
    assert "AnimalFace_cat_p8_i0.png: unreadable" in done.stdout
    assert "Too many levels of symbolic links" in done.stdout
    assert sorted(r["source"] for r in rows_of(tmp_path / "raw")) == sorted(files)

    # the same bomb inside a Dataverse zip and a parquet release: skipped there too
    bomb = {**files, f"{rep.folder('SD1_5', 'cat')}/AnimalFace_cat_p7_i0.png": _bomb_png()}
    for i, write in enumerate((rep.write_dataverse, rep.write_hub_parquet)):
        report = import_images(write(tmp_path / f"src{i}", bomb), tmp_path / f"raw{i}")
        assert len(report.skipped) == 1 and "image too large" in report.skipped[0]
        assert report.rows == 3


def test_loader_rule_equals_the_official_code():
    """official.loader_selects on the selection replica skips exactly what the official
    ImageAttributionDataset skipped on the same file list (tests/data/paper_split)."""
    expected = json.loads((FIXTURE / "selection_official.json").read_text())
    names = rep.selection_names()
    import hashlib
    assert hashlib.sha256(("\n".join(names) + "\n").encode()).hexdigest() == \
        expected["files_sha256"]
    kept = []
    folders: dict[str, list[str]] = {}
    for n in names:
        folders.setdefault(n.rsplit("/", 1)[0], []).append(n.rsplit("/", 1)[1])
    for folder, files in folders.items():
        label = official.OFFICIAL_FOLDERS[folder.split("/")[0]]
        kept += [f"{folder}/{f}" for f in official.loader_selects(label, files)]
    assert len(kept) == expected["loader_kept"] == 2041
    assert sorted(set(names) - set(kept)) == expected["loader_skipped"]


def test_selection_paper_keeps_exactly_the_official_files(tmp_path):
    names = rep.selection_names()
    src = rep.write_tree(tmp_path / "tree", rep.files_of(names))
    report = import_images(src, tmp_path / "paper", selection="paper")
    skipped = set(json.loads((FIXTURE / "selection_official.json").read_text())["loader_skipped"])
    assert sorted(r["source"] for r in rows_of(tmp_path / "paper")) == sorted(set(names) - skipped)
    assert report.not_selected == len(skipped)
    # the default keeps every image, but one row per (prompt, image index): the .jpg beside
    # the .png of the same prompt and index is listed, not imported twice
    everything = import_images(src, tmp_path / "all")
    assert len(rows_of(tmp_path / "all")) == len(names) - 1
    (dup,) = everything.skipped
    assert "AnimalFace_cat_p4_i0.jpg: same prompt and image index as" in dup
