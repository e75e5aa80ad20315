"""``iab import``: existing images -> raw shards, for generators we cannot run.

Two sources:
- a folder tree of image files: ``SRC/<generator>/.../<semantic>/...`` (or give ``--generator``
  and/or ``--semantic`` for what the tree does not say);
- the paper's own parquet release: ``data/<model>/<main_category>/<sub_category>.parquet`` with
  columns image, model, main_category, sub_category, filename.

File names carrying ``_p<prompt>_i<image>`` (the paper's generation loop) link an image to an
official prompt; a real image is linked by its file name to the prompt captioned from it. What
cannot be mapped onto our labels and subclasses is listed, never guessed.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import imageattributionbench as iab
from iab import shards
from iab.prompts import official_prompts, prompt_by_source_file

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
ROWS_PER_RAW_SHARD = 1000
RELEASE_COLUMNS = ("image", "model", "main_category", "sub_category", "filename")
_PROMPT_RE = re.compile(r"_p(\d+)_i(\d+)")


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
    **{_norm(label): label for label in iab.LABELS},
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
class ImportReport:
    rows: int = 0
    shards: list[Path] = field(default_factory=list)
    skipped_done: list[Path] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    unlinked_prompts: int = 0


def prompt_of(label: str, semantic: str, filename: str) -> tuple[str, int, str | None]:
    """(prompt_id, image_index, prompt text) for an imported file name."""
    stem = Path(filename).name
    if label == iab.REAL:
        p = prompt_by_source_file(semantic).get(stem)
        if p is not None:
            return p.prompt_id, 0, p.text
        return iab.source_prompt_id(semantic, stem), 0, None
    m = _PROMPT_RE.search(stem)
    if m:
        index, image_index = int(m[1]), int(m[2])
        prompts = official_prompts(semantic)
        text = prompts[index].text if index < len(prompts) else None
        return iab.prompt_id(semantic, index), image_index, text
    return iab.source_prompt_id(semantic, stem), 0, None


def crop_watermark(data: bytes, crop: iab.WatermarkCrop) -> bytes:
    """Cut a visible watermark off; PNG stays PNG, JPEG is re-saved with its own quantization
    tables and subsampling so that its compression traces change as little as possible."""
    from PIL import Image, JpegImagePlugin

    with Image.open(io.BytesIO(data)) as im:
        w, h = im.size
        box = (crop.left, crop.top, w - crop.right, h - crop.bottom)
        out = im.crop(box)
        buf = io.BytesIO()
        if im.format == "JPEG":
            out.save(buf, "JPEG", qtables=im.quantization,
                     subsampling=JpegImagePlugin.get_sampling(im))
        else:
            out.save(buf, "PNG")
    return buf.getvalue()


def image_row(data: bytes, label: str, semantic: str, filename: str, source: str, where: str,
         crop: bool, report: ImportReport) -> dict:
    """A raw row for one imported image (watermark cropped where the registry says)."""
    g = iab.GENERATOR_BY_NAME.get(label)
    if crop and g is not None and g.watermark_crop is not None:
        data = crop_watermark(data, g.watermark_crop)
        c = g.watermark_crop
        source += f" (watermark cropped: left {c.left}, top {c.top}, right {c.right}, " \
                  f"bottom {c.bottom} px)"
    pid, image_index, text = prompt_of(label, semantic, filename)
    if "/src:" in pid:
        report.unlinked_prompts += 1
    meta = {}
    if g is not None:
        meta = {"model_id": g.hub_id, "pipeline": g.pipeline}
    return shards.make_row(data, label, semantic, pid, image_index=image_index, prompt=text,
                           image_path=Path(filename).name, where=where, source=source, **meta)


def write_unit(rows: Iterator[dict], dest_dir: Path, stem: str, report: ImportReport) -> None:
    batch, k = [], 0
    for row in rows:
        batch.append(row)
        if len(batch) == ROWS_PER_RAW_SHARD:
            _flush(batch, dest_dir / f"{stem}-{k:05d}.parquet", report)
            batch, k = [], k + 1
    if batch:
        _flush(batch, dest_dir / f"{stem}-{k:05d}.parquet", report)


def _flush(rows: list[dict], path: Path, report: ImportReport) -> None:
    shards.write_shard(shards.rows_to_table(rows), path)
    report.shards.append(path)
    report.rows += len(rows)


def _is_release(src: Path) -> bool:
    first = next(iter(sorted((src / "data").rglob("*.parquet"))), None) if (src / "data").is_dir() \
        else None
    return first is not None and set(RELEASE_COLUMNS) <= set(shards.open_parquet(first).schema_arrow.names)


def import_release(src: Path, out: Path, crop: bool, report: ImportReport) -> None:
    """The paper's parquet release: one raw unit per source file, mapped by its columns."""
    for path in sorted((src / "data").rglob("*.parquet")):
        rel = path.relative_to(src).as_posix()
        pf = shards.open_parquet(path)
        missing = [c for c in RELEASE_COLUMNS if c not in pf.schema_arrow.names]
        if missing:
            report.unmapped.append(f"{rel}: missing column(s) {', '.join(missing)}")
            continue
        table = pf.read(columns=["model", "main_category", "sub_category"])
        if table.num_rows == 0:
            continue
        first = table.slice(0, 1).to_pylist()[0]
        label = map_label(first["model"])
        semantic = map_semantic(first["sub_category"] or "") or map_semantic(
            first["main_category"] or "")
        if label is None or semantic is None:
            what = [f"model {first['model']!r}"] if label is None else []
            what += [f"category {first['main_category']!r}/{first['sub_category']!r}"] \
                if semantic is None else []
            report.unmapped.append(f"{rel}: unknown {' and '.join(what)} ({table.num_rows} rows)")
            continue
        dest = out / label / semantic
        stem = _norm(path.stem) or "part"
        if any(dest.glob(f"{stem}-*.parquet")):
            report.skipped_done.append(dest)
            continue
        full = pf.read()
        images = shards.image_bytes_column(full)
        names = full.column("filename").to_pylist()

        def rows() -> Iterator[dict]:
            for i, (data, name) in enumerate(zip(images, names)):
                where = f"{rel}, row {i}"
                try:
                    yield image_row(data or b"", label, semantic, name or f"row{i}",
                               f"{rel}:{name}", where, crop, report)
                except iab.BenchmarkError as e:
                    report.unmapped.append(str(e))

        write_unit(rows(), dest, stem, report)


def import_tree(src: Path, out: Path, generator: str | None, semantic: str | None, crop: bool,
                report: ImportReport) -> None:
    """A folder tree of image files; labels and subclasses from flags or folder names."""
    units: dict[tuple[str, str], list[Path]] = {}
    for path in sorted(p for p in src.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        parts = path.relative_to(src).parts[:-1]
        label = generator or (map_label(parts[0]) if parts else None)
        rest = parts if generator else parts[1:]
        sem = semantic or next((map_semantic(p) for p in rest if map_semantic(p)), None)
        if label is None or sem is None:
            report.unmapped.append(f"{path.relative_to(src).as_posix()}: no "
                                   f"{'generator' if label is None else 'semantic'} "
                                   "in its folders (give --generator / --semantic)")
            continue
        units.setdefault((label, sem), []).append(path)
    for (label, sem), paths in sorted(units.items()):
        dest = out / label / sem
        if any(dest.glob("import-*.parquet")):
            report.skipped_done.append(dest)
            continue

        def rows(paths=paths, label=label, sem=sem) -> Iterator[dict]:
            for p in paths:
                rel = p.relative_to(src).as_posix()
                try:
                    yield image_row(p.read_bytes(), label, sem, p.name, rel, rel, crop, report)
                except iab.BenchmarkError as e:
                    report.unmapped.append(str(e))

        write_unit(rows(), dest, "import", report)


def import_images(src: str | Path, out: str | Path, generator: str | None = None,
                  semantic: str | None = None, crop: bool = True) -> ImportReport:
    """Turn a folder of images or the paper's parquet release into raw shards under ``out``.

    Units already imported (their shards exist: writes are atomic) are skipped, so an
    interrupted import resumes by running it again.
    """
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise iab.BenchmarkError(f"{src} is not a folder: give a folder of images or the "
                                 "root of a parquet release (holding data/)")
    if generator is not None:
        iab.label_id(generator)
    if semantic is not None:
        iab.superclass_of(semantic)
    report = ImportReport()
    if _is_release(src):
        import_release(src, out, crop, report)
    else:
        import_tree(src, out, generator, semantic, crop, report)
    if not report.shards and not report.skipped_done:
        raise iab.BenchmarkError(
            f"nothing imported from {src}: " + ("; ".join(report.unmapped[:5]) or
                                                "no image files or release shards found"))
    return report
