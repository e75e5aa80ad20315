"""Where ``iab import`` reads images from: every form the paper's data ships in.

- a folder tree of image files (the official tree ``<model>/<super>/<sub>/<file>``, or any
  tree with ``--generator``/``--semantic``);
- the Hub parquet release ``data/<model>/<main_category>/<sub_category>.parquet`` (columns
  image, model, main_category, sub_category, filename), in a folder or by Hub repo id;
- the Dataverse release: ``<model>_<subclass>.zip`` files (split ones as ``.z01``, ``.z02`` ...
  ``.zip``), read in place: download.py's 7z extraction flattens every image file inside into
  the class folder, and so does this reader.

Each source yields ``Unit``s: the images of one (label, subclass) with names known before any
image is read, so that selection and resume decide what to read.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

import imageattributionbench as iab
from iab import official, shards
from iab.zipsplit import SplitZip, split_parts

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
ZIP_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")  # download.py routes these and no others
RELEASE_COLUMNS = ("image", "model", "main_category", "sub_category", "filename")
MAX_IMAGE_BYTES = 512 * 1024**2  # one image file bigger than this is refused, not read
HUB_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


# Other spellings seen in releases and folder names, normalised, -> our label.
LABEL_ALIASES = {
    "flux2klein": "FLUX.2-klein-4B", "flux2klein4b": "FLUX.2-klein-4B",
    "zimage": "Z-Image-Turbo", "cogview4": "CogView4-6B", "glmimage": "GLM-Image",
    "nextstep": "NextStep-1.1", "gemini25flashimage": "Gemini-2.5-Flash-Image",
    "nanobanana": "Gemini-2.5-Flash-Image", "gpt4o": "4o", "gptimage1": "gpt-image-1",
    "midjourney52": "mid-5.2", "midjourney60": "mid-6.0", "kandinsky3": "KANDINSKY",
    "pixartalpha": "PIXART", "playground25": "PLAYGROUND_2_5", "playgroundv25": "PLAYGROUND_2_5",
    "stablediffusion15": "SD1_5", "stablediffusion21": "SD2_1", "stablediffusionxl": "SDXL",
    "hunyuandit": "hunyuan", "januspro": "janus-pro", "seedream4": "Seedream",
    "seedream40": "Seedream", "nanobananapro": "Gemini-3-Pro-Image",
    **{_norm(label): label for label in iab.LABELS},
    **{_norm(folder): label for folder, label in official.OFFICIAL_FOLDERS.items()},
}
SEMANTIC_ALIASES = {
    "lsunbedroom": "bedroom", "lsunchurch": "church", "lsunchurchoutdoor": "church",
    "lsunclassroom": "classroom", "imagenet": "ImageNet-1k", "celebamaskhq": "celebahq",
    **{_norm(s): s for s in iab.SEMANTICS},
}


def map_label(name: str) -> str | None:
    return LABEL_ALIASES.get(_norm(name))


def map_semantic(name: str) -> str | None:
    return SEMANTIC_ALIASES.get(_norm(name))


@dataclass
class Item:
    """One image file of a unit: its name, where it is (for messages) and how to read it."""

    name: str
    where: str
    read: Callable[[], bytes]
    source: str = ""  # the row's source column (filled by the unit)


@dataclass
class Unit:
    """The images of one (label, subclass) from one source file or folder.

    ``official``: the label came from an official release (folder name or release column),
    so the rows record the paper profile of the generator; ``stem`` names the raw shards.
    """

    label: str
    semantic: str
    items: list[Item]
    stem: str
    official: bool
    where: str
    close: Callable[[], None] = lambda: None
    problems: list[str] = field(default_factory=list)


def _read_file(path: Path) -> Callable[[], bytes]:
    def read() -> bytes:
        size = path.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise iab.BenchmarkError(f"{size:,} bytes, over the {MAX_IMAGE_BYTES:,}-byte limit "
                                     "for one image")
        return path.read_bytes()
    return read


def tree_units(src: Path, generator: str | None, semantic: str | None,
               problems: list[str]) -> list[Unit]:
    """A folder tree; labels and subclasses from flags or folder names. Folder symlinks are
    not followed (no loops); a file that cannot be read is listed when it is read."""
    groups: dict[tuple[str, str], list[Item]] = {}
    official_labels: set[tuple[str, str]] = set()
    for root, dirs, files in os.walk(src):
        dirs.sort()
        for fname in sorted(files):
            path = Path(root) / fname
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            rel = path.relative_to(src).as_posix()
            parts = PurePosixPath(rel).parts[:-1]
            label = generator or (map_label(parts[0]) if parts else None)
            rest = parts if generator else parts[1:]
            sem = semantic or next((map_semantic(p) for p in rest if map_semantic(p)), None)
            if label is None or sem is None:
                problems.append(f"{rel}: no {'generator' if label is None else 'semantic'} "
                                "in its folders (give --generator / --semantic)")
                continue
            groups.setdefault((label, sem), []).append(Item(fname, rel, _read_file(path),
                                                            source=rel))
            if generator is None and parts and parts[0] in official.OFFICIAL_FOLDERS:
                official_labels.add((label, sem))
    return [Unit(label, sem, items, "import", (label, sem) in official_labels, src.as_posix())
            for (label, sem), items in sorted(groups.items())]


def is_release(src: Path) -> bool:
    """A folder holding the Hub parquet release (data/**.parquet with its columns)."""
    data = src / "data"
    first = next(iter(sorted(data.rglob("*.parquet"))), None) if data.is_dir() else None
    return first is not None and set(RELEASE_COLUMNS) <= set(
        shards.open_parquet(first).schema_arrow.names)


def release_file_unit(path: Path, rel: str, problems: list[str]) -> Unit | None:
    """One parquet file of the Hub release: the names first, image bytes row group by row
    group when read."""
    pf = shards.open_parquet(path)
    missing = [c for c in RELEASE_COLUMNS if c not in pf.schema_arrow.names]
    if missing:
        problems.append(f"{rel}: missing column(s) {', '.join(missing)}")
        return None
    meta = pf.read(columns=["model", "main_category", "sub_category", "filename"])
    if meta.num_rows == 0:
        return None
    first = meta.slice(0, 1).to_pylist()[0]
    label = map_label(first["model"] or "")
    sem = map_semantic(first["sub_category"] or "") or map_semantic(first["main_category"] or "")
    if label is None or sem is None:
        what = [f"model {first['model']!r}"] if label is None else []
        what += [f"category {first['main_category']!r}/{first['sub_category']!r}"] \
            if sem is None else []
        problems.append(f"{rel}: unknown {' and '.join(what)} ({meta.num_rows} rows)")
        return None
    names = meta.column("filename").to_pylist()
    starts, total = [], 0
    for g in range(pf.metadata.num_row_groups):
        starts.append(total)
        total += pf.metadata.row_group(g).num_rows
    cache: dict[int, list] = {}

    def reader(i: int) -> Callable[[], bytes]:
        def read() -> bytes:
            g = max(k for k, s in enumerate(starts) if s <= i)
            if g not in cache:
                cache.clear()  # one row group in memory at a time
                cache[g] = shards.image_bytes_column(pf.read_row_group(g, columns=["image"]))
            return cache[g][i - starts[g]] or b""
        return read

    items = [Item(name or f"row{i}", f"{rel}, row {i}", reader(i)) for i, name in enumerate(names)]
    return Unit(label, sem, items, _norm(path.stem) or "part", True, rel)


def release_units(src: Path, problems: list[str]) -> Iterator[Unit]:
    for path in sorted((src / "data").rglob("*.parquet")):
        try:
            unit = release_file_unit(path, path.relative_to(src).as_posix(), problems)
        except iab.BenchmarkError as e:  # a damaged file: listed, the others imported
            problems.append(str(e))
            continue
        if unit is not None:
            yield unit


def _zip_target(stem: str) -> tuple[str, str] | None:
    """(label, subclass) of a Dataverse zip stem ``<model>_<subclass>`` (download.py accepts
    the subclass with ``-`` or ``_``, any case)."""
    for folder, label in official.OFFICIAL_FOLDERS.items():
        for sem in iab.SEMANTICS:
            for spelled in {sem, sem.replace("-", "_")}:
                if stem.lower() == f"{folder}_{spelled}".lower():
                    return label, sem
    return None


def zip_archives(src: Path) -> list[Path]:
    """The main ``.zip`` of every archive in a folder (a split archive's parts go with it)."""
    return sorted(p for p in src.iterdir() if p.is_file() and p.suffix.lower() == ".zip")


def is_dataverse(src: Path) -> bool:
    return src.is_dir() and any(_zip_target(p.stem) for p in zip_archives(src))


def zip_unit(path: Path, problems: list[str]) -> Unit | None:
    """One Dataverse archive, read in place; image files anywhere inside are flattened into
    the class folder by name, as download.py does (a name seen twice: the later one wins there,
    here both are listed and the first is kept)."""
    target = _zip_target(path.stem)
    if target is None:
        problems.append(f"{path.name}: not a <model>_<subclass>.zip of the paper's release")
        return None
    try:
        return _zip_unit(path, target, problems)
    except (zipfile.BadZipFile, iab.BenchmarkError, OSError) as e:
        problems.append(f"{path.name}: not read ({e})")
        return None


def _zip_unit(path: Path, target: tuple[str, str], problems: list[str]) -> Unit:
    parts = split_parts(path)
    if len(parts) == 1:
        z = zipfile.ZipFile(path)
        members = [(m.filename, m) for m in z.infolist() if not m.is_dir()]

        def read_member(m) -> bytes:
            if m.file_size > MAX_IMAGE_BYTES:
                raise iab.BenchmarkError(f"{m.file_size:,} bytes, over the "
                                         f"{MAX_IMAGE_BYTES:,}-byte limit for one image")
            return z.read(m)
    else:
        z = SplitZip(parts)
        members = [(m.name, m) for m in z.members if not m.is_dir]

        def read_member(m) -> bytes:
            return z.read(m, MAX_IMAGE_BYTES)
    seen: dict[str, str] = {}
    items = []
    for member_name, m in members:
        name = PurePosixPath(member_name).name
        if not name.lower().endswith(ZIP_IMAGE_SUFFIXES):
            continue
        if name in seen:
            problems.append(f"{path.name}:{member_name}: same file name as {seen[name]} "
                            "(flattened into one folder); kept the first")
            continue
        seen[name] = member_name
        items.append(Item(name, f"{path.name}:{member_name}",
                          lambda m=m: read_member(m)))
    label, sem = target
    return Unit(label, sem, items, _norm(path.stem), True, path.name, close=z.close)


def dataverse_units(src: Path, problems: list[str]) -> Iterator[Unit]:
    for path in zip_archives(src):
        unit = zip_unit(path, problems)
        if unit is not None:
            yield unit


def looks_like_hub_id(text: str) -> bool:
    return HUB_ID_RE.match(text) is not None and not Path(text).exists()
