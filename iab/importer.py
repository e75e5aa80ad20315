"""``iab import``: existing images -> raw shards, for generators we cannot run and for the
paper's own releases (iab/import_sources.py reads each form: trees, the Hub parquet release
in a folder or by repo id, the Dataverse zips).

File names carrying ``_p<prompt>_i<image>`` (the paper's generation loop) link an image to its
prompt in the caption file its release was made from (iab/official.py ``link``); a real image
is linked by its file name to the prompt captioned from it. What cannot be mapped onto our
labels and subclasses is listed, never guessed; a file that cannot be read or decoded is
skipped and listed with the reason, and the others are kept.

Resume is per image: a row's ``source`` (its path in the release's tree) identifies it, and an
image whose source is already in the label's raw folder is not imported again. Shards are
written atomically every ``rows_per_shard`` images, so a killed import loses at most the
images of the shard being filled, and rerunning the same command imports exactly those.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import imageattributionbench as iab
from iab import official, shards
from iab import import_sources as sources
from iab.faults import fault_point

ROWS_PER_RAW_SHARD = 1000
SELECTIONS = ("all", "paper")
# Re-exported for callers of the earlier single-module importer.
map_label, map_semantic = sources.map_label, sources.map_semantic
IMAGE_SUFFIXES, RELEASE_COLUMNS = sources.IMAGE_SUFFIXES, sources.RELEASE_COLUMNS


@dataclass
class ImportReport:
    rows: int = 0
    shards: list[Path] = field(default_factory=list)
    already_imported: int = 0  # images found in the raw folder from an earlier run
    not_selected: int = 0  # images the official loader does not use (--selection paper)
    skipped: list[str] = field(default_factory=list)  # files not imported, with the reason
    unmapped: list[str] = field(default_factory=list)
    unlinked_prompts: int = 0
    caption_sets: Counter = field(default_factory=Counter)  # (semantic, set) -> images
    selection: str = "all"
    form: str = ""


def crop_watermark(data: bytes, crop: iab.WatermarkCrop) -> bytes:
    """Cut a visible watermark off; PNG stays PNG, JPEG is re-saved with its own quantization
    tables and subsampling so that its compression traces change as little as possible."""
    from PIL import Image, JpegImagePlugin

    with Image.open(io.BytesIO(data)) as im:
        w, h = im.size
        if w <= crop.left + crop.right or h <= crop.top + crop.bottom:
            raise iab.BenchmarkError(f"image is {w}x{h}, too small for the registry's watermark "
                                     f"crop ({crop.left + crop.right} x {crop.top + crop.bottom} "
                                     "px); import it with --no-crop if it has no watermark")
        box = (crop.left, crop.top, w - crop.right, h - crop.bottom)
        out = im.crop(box)
        buf = io.BytesIO()
        if im.format == "JPEG":
            out.save(buf, "JPEG", qtables=im.quantization,
                     subsampling=JpegImagePlugin.get_sampling(im))
        else:
            out.save(buf, "PNG")
    return buf.getvalue()


def _crop_note(c: iab.WatermarkCrop) -> str:
    return (f" (watermark cropped: left {c.left}, top {c.top}, right {c.right}, bottom "
            f"{c.bottom} px)")


def provenance(label: str, official_release: bool) -> dict:
    """The generation columns of an imported image. Images of the paper's releases record the
    generator's paper profile (what the official code used: recorded, not measured); images of
    other origin record what the registry knows (model id, pipeline) and no profile."""
    g = iab.GENERATOR_BY_NAME.get(label)
    if g is None:
        return {}
    if official_release and g.paper is not None:
        p = g.paper
        settings = {**p.settings(), "note": p.note, "source": p.source,
                    "recorded": "the official code's settings; imported, not generated here"}
        return {"model_id": p.model, "pipeline": g.pipeline if p.source.endswith("SDModel.py")
                else None, "num_inference_steps": p.steps, "guidance_scale": p.guidance,
                "profile": "paper", "settings": json.dumps(settings, sort_keys=True)}
    return {"model_id": g.hub_id, "pipeline": g.pipeline}


def image_row(data: bytes, label: str, semantic: str, filename: str, source: str, where: str,
              crop: bool, official_release: bool, report: ImportReport) -> dict:
    """A raw row for one imported image (watermark cropped where the registry says). An image
    over the pixel limit (a decompression bomb) or undecodable is refused before any crop."""
    shards.inspect_image(data, where)
    g = iab.GENERATOR_BY_NAME.get(label)
    if crop and g is not None and g.watermark_crop is not None:
        data = crop_watermark(data, g.watermark_crop)
    link = official.link(label, semantic, filename)
    row = shards.make_row(data, label, semantic, link.prompt_id, image_index=link.image_index,
                          prompt=link.text, image_path=Path(filename).name, where=where,
                          source=source, **provenance(label, official_release))
    if link.caption_set is None:
        report.unlinked_prompts += 1
    else:
        report.caption_sets[(semantic, link.caption_set)] += 1
    return row


def done_rows(dest: Path) -> tuple[set[str], dict[tuple[str, int], str]]:
    """The ``source`` of every row already in a label's raw folder (shards are atomic), and
    the source of each (prompt_id, image_index) there."""
    sources_done: set[str] = set()
    identities: dict[tuple[str, int], str] = {}
    for f in sorted(dest.glob("*.parquet")):
        pf = shards.open_parquet(f)
        cols = [c for c in ("source", "prompt_id", "image_index") if c in pf.schema_arrow.names]
        for r in pf.read(columns=cols).to_pylist():
            if r.get("source"):
                sources_done.add(r["source"])
            if "prompt_id" in r:
                identities[(r["prompt_id"], r["image_index"])] = r.get("source") or f.name
    return sources_done, identities


def _one_per_identity(unit: sources.Unit, items: list[sources.Item],
                      report: ImportReport) -> list[sources.Item]:
    """Two files that name the same (prompt, image index) cannot both be rows: keep the one the
    official loader would use (e.g. the .png beside a .jpg), else the first; list the other."""
    preferred = set(official.loader_selects(unit.label, [it.name for it in items]))
    chosen: dict[tuple[str, int], sources.Item] = {}
    for it in items:
        link = official.link(unit.label, unit.semantic, it.name)
        key = (link.prompt_id, link.image_index)
        other = chosen.get(key)
        if other is not None and it.name in preferred and other.name not in preferred:
            chosen[key], it, other = it, other, it
        if other is not None:
            report.skipped.append(f"{it.where}: same prompt and image index as {other.where} "
                                  f"({key[0]} #{key[1]}); not imported")
            continue
        chosen[key] = it
    kept = {id(it) for it in chosen.values()}
    return [it for it in items if id(it) in kept]


def _next_index(dest: Path, stem: str) -> int:
    taken = [int(p.stem.rsplit("-", 1)[1]) for p in dest.glob(f"{stem}-*.parquet")
             if p.stem.rsplit("-", 1)[1].isdigit()]
    return max(taken, default=-1) + 1


def import_unit(unit: sources.Unit, out: Path, crop: bool, selection: str,
                report: ImportReport, rows_per_shard: int = ROWS_PER_RAW_SHARD) -> None:
    """Import what of one unit is not in ``out`` yet, a shard every ``rows_per_shard`` rows."""
    g = iab.GENERATOR_BY_NAME.get(unit.label)
    items = unit.items
    if selection == "paper":
        keep = set(official.loader_selects(unit.label, [it.name for it in items]))
        report.not_selected += sum(it.name not in keep for it in items)
        items = [it for it in items if it.name in keep]
    if not items:
        return
    dest = out / unit.label / unit.semantic
    done, identities = done_rows(dest)
    suffix = _crop_note(g.watermark_crop) if crop and g and g.watermark_crop else ""
    k = _next_index(dest, unit.stem)
    batch: list[dict] = []
    for it in _one_per_identity(unit, items, report):
        source = (it.source or official.release_path(unit.label, unit.semantic, it.name)) + suffix
        if source in done:
            report.already_imported += 1
            continue
        link = official.link(unit.label, unit.semantic, it.name)
        if (link.prompt_id, link.image_index) in identities:
            report.skipped.append(f"{it.where}: same prompt and image index as "
                                  f"{identities[(link.prompt_id, link.image_index)]}, already in "
                                  f"{dest}; not imported")
            continue
        try:
            data = it.read()
            batch.append(image_row(data, unit.label, unit.semantic, it.name, source, it.where,
                                   crop, unit.official, report))
        except iab.BenchmarkError as e:
            report.skipped.append(str(e) if str(e).startswith(it.where) else f"{it.where}: {e}")
            continue
        except (OSError, ValueError) as e:  # e.g. a symlink loop, a file gone meanwhile
            report.skipped.append(f"{it.where}: unreadable ({type(e).__name__}: {e})")
            continue
        done.add(source)
        identities[(link.prompt_id, link.image_index)] = source
        if len(batch) == rows_per_shard:
            k = _flush(batch, dest, unit.stem, k, report)
            batch = []
    if batch:
        _flush(batch, dest, unit.stem, k, report)


def write_unit(rows, dest: Path, stem: str, report: ImportReport,
               rows_per_shard: int = ROWS_PER_RAW_SHARD) -> None:
    """Rows from a stream into ``<dest>/<stem>-<k>.parquet`` shards after the existing ones."""
    k, batch = _next_index(dest, stem), []
    for row in rows:
        batch.append(row)
        if len(batch) == rows_per_shard:
            k = _flush(batch, dest, stem, k, report)
            batch = []
    if batch:
        _flush(batch, dest, stem, k, report)


def _flush(rows: list[dict], dest: Path, stem: str, k: int, report: ImportReport) -> int:
    path = dest / f"{stem}-{k:05d}.parquet"
    shards.write_shard(shards.rows_to_table(rows), path)
    report.shards.append(path)
    report.rows += len(rows)
    fault_point("import.shard")
    return k + 1


def import_images(src: str | Path, out: str | Path, generator: str | None = None,
                  semantic: str | None = None, crop: bool = True, selection: str = "all",
                  revision: str | None = None, rows_per_shard: int = ROWS_PER_RAW_SHARD,
                  keep_downloads: bool = False) -> ImportReport:
    """Turn images into raw shards under ``out``: a folder of images, the paper's parquet
    release (a folder holding data/, or a Hub dataset repo id such as
    ``multiitsuki/ImageAttributionBench``), or a folder of its Dataverse zips.

    ``selection="paper"`` keeps only the images the official loader uses (iab/official.py
    ``loader_selects``); the default keeps everything. Rerunning resumes image by image.
    """
    if selection not in SELECTIONS:
        raise iab.BenchmarkError(f"unknown selection {selection!r}; valid selections: "
                                 + ", ".join(SELECTIONS))
    if generator is not None:
        iab.label_id(generator)
    if semantic is not None:
        iab.superclass_of(semantic)
    out = Path(out)
    report = ImportReport(selection=selection)
    if sources.looks_like_hub_id(str(src)):
        from iab.import_hub import import_hub

        report.form = "hub"
        import_hub(str(src), out, revision,
                   lambda unit: import_unit(unit, out, crop, selection, report, rows_per_shard),
                   report, keep_downloads)
        return _finish(report, str(src))
    src = Path(src)
    if not src.is_dir():
        raise iab.BenchmarkError(f"{src} is not a folder or a Hub dataset id: give a folder of "
                                 "images, the root of a parquet release (holding data/), a "
                                 "folder of the Dataverse zips, or a Hub id like org/name")
    if sources.is_release(src):
        report.form, units = "parquet", sources.release_units(src, report.unmapped)
    elif sources.is_dataverse(src) and generator is None and semantic is None:
        report.form, units = "dataverse", sources.dataverse_units(src, report.unmapped)
    else:
        report.form = "tree"
        units = iter(sources.tree_units(src, generator, semantic, report.unmapped))
    for unit in units:
        try:
            import_unit(unit, out, crop, selection, report, rows_per_shard)
        finally:
            unit.close()
        fault_point("import.unit")
    return _finish(report, src)


def _finish(report: ImportReport, src) -> ImportReport:
    if not report.shards and not report.already_imported and not report.not_selected:
        raise iab.BenchmarkError(
            f"nothing imported from {src}: " + ("; ".join((report.unmapped + report.skipped)[:5])
                                                or "no image files or release shards found"))
    return report
