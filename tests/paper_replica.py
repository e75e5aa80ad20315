"""Replicas of the paper's releases for tests: file lists in the official tree layout
(``<model folder>/<superclass>/<subclass>/<file>``, COCO and ImageNet-1k one level up) and
writers of each release form (tree, Dataverse zips, Hub parquet).

``split_names()`` and ``selection_names()`` are the file lists the official code was run on
once to make ``tests/data/paper_split/`` (see that folder's README.md).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from iab import official
from iab.prompts import legacy_prompts, official_prompts

SUPER = {s: rel.split("/")[0] for s, rel in official.LOADER_SEMANTICS.items()}
SPLIT_LABELS = ("4o", "FLUX", "SD1_5", "grok3", "mid-6.0", "real", "Z_IMAGE")
SPLIT_SEMANTICS = ("cat", "dog", "COCO", "FFHQ", "bedroom", "celebahq")
# The 2025 stems (celebahq and COCO differ from official.BASE_NAMES' 2026 ones on purpose).
BASES_2025 = {**official.BASE_NAMES, "COCO": "COCO-new"}


def folder(model: str, semantic: str) -> str:
    return f"{model}/{official.LOADER_SEMANTICS[semantic]}"


def real_names(semantic: str, n: int) -> list[str]:
    src = legacy_prompts(semantic) if semantic == "celebahq" else official_prompts(semantic)
    return [p.source_file for p in src[:n]]


def split_names() -> list[str]:
    """A few hundred files over 7 model folders x 6 subclasses: uneven counts (odd train
    lists, so the even-length cut drops one), Midjourney's 4 images per prompt, files the loader skips (p1000, i2, .jpg,
    .webp) and a folder the loader does not know (Z_IMAGE)."""
    names = []
    for li, model in enumerate(SPLIT_LABELS):
        for si, sem in enumerate(SPLIT_SEMANTICS):
            k = 2 + (li + 2 * si) % 5
            base = folder(model, sem)
            if model == "real":
                names += [f"{base}/{n}" for n in real_names(sem, 2 * k + 1)]
                names.append(f"{base}/extra_{sem}.webp")
                continue
            per_prompt = 4 if model.startswith("mid") else 2
            stem = BASES_2025[sem]
            made = [f"{base}/{stem}_p{p}_i{i}.png" for p in range(k) for i in range(per_prompt)]
            names += made[:-1] if (li + si) % 4 == 1 else made  # one image never made
            if (li + si) % 3 == 0:
                names += [f"{base}/{stem}_p1000_i0.png", f"{base}/{stem}_p0_i{per_prompt}.png",
                          f"{base}/{stem}_p1_i0.jpg"]
    return names


def selection_names() -> list[str]:
    """The --selection paper replica: p=1000, i=2, Midjourney i=3 (kept) and i=4, .jpg
    generator files, a name without _p/_i, 2,001 real files in one folder, and a model folder
    the loader does not know."""
    sd = folder("SD1_5", "cat")
    names = [f"{sd}/AnimalFace_cat_p{p}_i{i}.png" for p in range(10) for i in range(2)]
    names += [f"{sd}/AnimalFace_cat_p1000_i0.png", f"{sd}/AnimalFace_cat_p999_i1.png",
              f"{sd}/AnimalFace_cat_p3_i2.png", f"{sd}/AnimalFace_cat_p4_i0.jpg",
              f"{sd}/AnimalFace_cat_p11_i0.JPG", f"{sd}/notes.png"]
    mj = folder("mid-6.0", "bedroom")
    names += [f"{mj}/Scene_LSUN_bedroom_p{p}_i{i}.png" for p in range(5) for i in range(4)]
    names += [f"{mj}/Scene_LSUN_bedroom_p0_i4.png", f"{mj}/Scene_LSUN_bedroom_p7_i3.jpg"]
    real = folder("real", "dog")
    names += [f"{real}/dog_{n:05d}.{'jpg' if n % 3 else 'png'}" for n in range(2001)]
    names += [f"{real}/dog_00007.webp", f"{real}/dog_03000.jpeg"]
    names += [f"{folder('Z_IMAGE', 'cat')}/AnimalFace_cat_p{p}_i0.png" for p in range(3)]
    return names


def image_bytes(name: str, seed: int, size: int = 8) -> bytes:
    """A tiny image whose format follows the name's suffix, distinct per seed."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB")
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}.get(Path(name).suffix.lower(), "PNG")
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def files_of(names: list[str]) -> dict[str, bytes]:
    """Tiny images; grok3's are big enough for its watermark crop (100 x 50 px)."""
    return {n: image_bytes(n, i, 160 if n.startswith("grok3/") else 8)
            for i, n in enumerate(names)}


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def _by_folder(files: dict[str, bytes]) -> dict[tuple[str, str], dict[str, bytes]]:
    out: dict[tuple[str, str], dict[str, bytes]] = {}
    for rel, data in files.items():
        parts = rel.split("/")
        out.setdefault((parts[0], parts[-2]), {})[parts[-1]] = data
    return out


def write_dataverse(root: Path, files: dict[str, bytes], nested: bool = True) -> Path:
    """``<model>_<subclass>.zip`` per folder, as the Dataverse release ships them (files under
    a folder inside the zip: download.py flattens whatever is inside)."""
    root.mkdir(parents=True, exist_ok=True)
    for (model, sem), members in _by_folder(files).items():
        with zipfile.ZipFile(root / f"{model}_{sem}.zip", "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in sorted(members.items()):
                z.writestr(f"{model}_{sem}/{name}" if nested else name, data)
    return root


def write_hub_parquet(root: Path, files: dict[str, bytes]) -> Path:
    """``data/<model>/<main>/<sub>.parquet`` with get_dataset_slices_ethic.py's columns."""
    for (model, sem), members in _by_folder(files).items():
        main = SUPER[sem]
        names = sorted(members)
        table = pa.table({
            "image": pa.array([{"bytes": members[n], "path": n} for n in names],
                              pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
            "model": [model] * len(names), "main_category": [main] * len(names),
            "sub_category": [sem] * len(names), "filename": names})
        path = root / "data" / model / main / f"{sem}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
    return root


def write_split_zip(zip_path: Path, members: dict[str, bytes], part_size: int) -> list[Path]:
    """A split zip archive (``.z01`` ... ``.zip``) laid out as ``zip -s`` writes one: the
    spanning signature first, stored members whose data may run across parts, each local
    header's offset relative to its own part, the central directory in the last part."""
    import struct
    import zlib

    stream = bytearray(b"PK\x07\x08")
    entries = []
    for name, data in members.items():
        raw, crc = name.encode(), zlib.crc32(data)
        entries.append((raw, crc, len(data), len(stream)))
        stream += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, crc, len(data),
                              len(data), len(raw), 0) + raw + data
    pieces = [bytes(stream[i:i + part_size]) for i in range(0, len(stream), part_size)]
    last = len(pieces)  # the central directory goes in a part of its own, the .zip
    cd = bytearray()
    for raw, crc, size, pos in entries:
        disk, rel = divmod(pos, part_size)
        cd += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, crc, size, size,
                          len(raw), 0, 0, disk, 0, 0, rel) + raw
    tail = bytes(cd) + struct.pack("<4s4H2LH", b"PK\x05\x06", last, last, len(entries),
                                   len(entries), len(cd), 0, 0)
    paths = [zip_path.with_suffix(f".z{k:02d}") for k in range(1, last + 1)] + [zip_path]
    for path, data in zip(paths, pieces + [tail]):
        path.write_bytes(data)
    return paths
