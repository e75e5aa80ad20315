"""iab verify against a tamperer who recomputes every hash: images are decoded and compared
with their rows, value domains are checked, a broken card is a clear error."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import imageattributionbench as iab
from iab import shards
from iab.verify import verify

from helpers import png

IAB = str(Path(sys.executable).with_name("iab"))


def _rehash(repo: Path, rel: str) -> None:
    """Make manifest.json and checksums.sha256 agree with the file ``rel`` as it is now."""
    data = (repo / rel).read_bytes()
    manifest = json.loads((repo / "manifest.json").read_text())
    for rec in manifest["shards"]:
        if rec["path"] == rel:
            rec.update(bytes=len(data), sha256=iab.sha256_hex(data))
    (repo / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    lines = []
    for line in (repo / "checksums.sha256").read_text().splitlines():
        digest, _, name = line.partition("  ")
        if name in (rel, "manifest.json"):
            digest = iab.sha256_hex((repo / name).read_bytes())
        lines.append(f"{digest}  {name}")
    (repo / "checksums.sha256").write_text("\n".join(lines) + "\n")


def _tamper(repo: Path, image: bytes | None = None, **row_values) -> str:
    """Replace row 0 of a cat train shard (image and/or columns), recomputing its sha256 and
    every hash of the files: only decoding or the value checks can tell."""
    shard = sorted((repo / "data" / "cat" / "train").glob("*.parquet"))[0]
    rows = pq.read_table(shard).to_pylist()
    if image is not None:
        rows[0]["image"] = {"bytes": image, "path": None}
        rows[0]["sha256"] = iab.sha256_hex(image)
    rows[0].update(row_values)
    shards.write_shard(shards.rows_to_table(rows), shard)
    rel = shard.relative_to(repo).as_posix()
    _rehash(repo, rel)
    return rel


def _broken_idat() -> bytes:
    """A PNG whose chunk CRCs are all right but whose compressed pixels are damaged."""
    data = bytearray(png(3, size=32))
    at = data.index(b"IDAT")
    length = struct.unpack(">I", data[at - 4:at])[0]
    data[at + 4 + length // 2] ^= 0xFF
    crc = zlib.crc32(bytes(data[at:at + 4 + length])) & 0xFFFFFFFF
    data[at + 4 + length:at + 8 + length] = struct.pack(">I", crc)
    return bytes(data)


@pytest.fixture
def repo(built, tmp_path):
    out = tmp_path / "repo"
    shutil.copytree(built[0], out)
    return out


def test_a_sound_build_passes_both_modes(repo):
    assert verify(repo) == ([], verify(repo, quick=True)[1])
    assert verify(repo, quick=True)[0] == []


@pytest.mark.parametrize("image, message", [
    (b"this is not an image", r"undecodable image"),
    (b"", r"image has no bytes \(empty\)"),
    (png(5, size=8), r"image is PNG 8x8 but the row says PNG 32x32"),
    (_broken_idat(), r"undecodable image"),
])
def test_a_bad_image_with_recomputed_hashes_fails(repo, image, message):
    rel = _tamper(repo, image)
    problems, _ = verify(repo)
    assert len(problems) == 1 and problems[0].startswith(f"{rel}, row 0: "), problems
    assert __import__("re").search(message, problems[0]), problems[0]
    assert verify(repo, quick=True)[0] == []  # --quick checks hashes only


def test_a_row_outside_its_value_domain_fails(repo):
    rel = _tamper(repo, image_index=-1)
    problems, _ = verify(repo)
    assert f"{rel}, row 0: column 'image_index' is -1; it must be at least 0" in problems


def test_a_decompression_bomb_is_refused_before_decoding(repo):
    from helpers import huge_png

    rel = _tamper(repo, huge_png(30000, 30000, valid=False))
    (problem,) = verify(repo)[0]
    assert problem.startswith(f"{rel}, row 0: image too large")


def test_a_readme_with_bad_yaml_is_a_clear_error(repo):
    readme = repo / "README.md"
    text = readme.read_text()
    readme.write_text(text.replace("configs:", "configs: [unclosed", 1))
    _rehash(repo, "README.md")
    done = subprocess.run([IAB, "verify", str(repo)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "FAIL README.md: configs unreadable (its YAML front matter does not parse at line" \
        in done.stdout
    quick = subprocess.run([IAB, "verify", "--quick", str(repo)], capture_output=True,
                           text=True, timeout=300)
    assert quick.returncode == 1 and "does not parse" in quick.stdout


def test_a_manifest_of_the_wrong_shape(repo):
    (repo / "manifest.json").write_text('{"shards": [1, 2]}')
    (problem,) = verify(repo)[0]
    assert "manifest.json is not a build manifest" in problem
