"""``iab build``: raw shards -> a folder laid out exactly as the Hub dataset repo.

Two passes. The first reads every raw shard's metadata columns (no image bytes) and checks each
row against the benchmark definition, so that bad input fails before anything is written. The
second works one (label, semantic) group at a time, in parallel: it copies image bytes as they
are into fold shards, checks that they decode, and decodes only the test fold, which the
degraded splits need. The result is written to a temporary folder beside the output and moved
into place only when complete.
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_right
from itertools import accumulate
import os
import shutil
import tempfile
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Iterable

from iab.progress import progress as progress_bar

import imageattributionbench as iab
from iab import card, shards

# Files and folders a build owns in the output folder; anything else there is left alone
# (a git clone's .git and .gitattributes) or, if unknown, makes the build refuse the folder.
BUILD_ENTRIES = ("data", "degraded", "README.md", "eval.yaml", "manifest.json",
                 "checksums.sha256")
FOREIGN_OK = (".git", ".gitattributes", ".cache")
MANIFEST = "manifest.json"
_META_COLUMNS = [c for c in iab.COLUMN_NAMES if c != "image"]


@dataclass(frozen=True)
class RowRef:
    """Where one raw row lives and what the definition says about it."""

    file: int
    row: int
    label: str
    semantic: str
    prompt_id: str
    image_index: int
    sha256: str
    fold: str


@dataclass
class ShardRecord:
    path: str
    rows: int
    bytes: int
    sha256: str


@dataclass
class BuildReport:
    out: Path
    rows: int
    duplicates_dropped: int
    shards: list[ShardRecord]
    configs: dict[str, dict[str, int]]
    skipped_configs: dict[str, str]
    fingerprint: str
    # per published image: what the card's tables and its shortcut baseline are computed from
    image_stats: list[shards.ImageStat] = field(default_factory=list)


# ------------------------------------------------------------------------- pass 1: metadata


def _where(path: Path, row: int) -> str:
    return f"{path}, row {row}"


def _check_row(path: Path, i: int, r: dict) -> RowRef:
    for c in iab.REQUIRED_VALUES:
        if c != "image" and r.get(c) is None:
            raise iab.BenchmarkError(f"{_where(path, i)}: column {c!r} is null; it must hold a "
                                     "value in every row (DESIGN section 3)")
    gen, sem = r["generator"], r["semantic"]
    if gen not in iab.LABEL_IDS:
        raise iab.BenchmarkError(f"{_where(path, i)}: unknown generator {gen!r}; valid "
                                 f"generators: {', '.join(iab.LABELS)}")
    if sem not in iab.SUPERCLASS_OF:
        raise iab.BenchmarkError(f"{_where(path, i)}: unknown semantic {sem!r}; valid "
                                 f"semantics: {', '.join(iab.SEMANTICS)}")
    if r["label"] != iab.LABEL_IDS[gen]:
        raise iab.BenchmarkError(
            f"{_where(path, i)}: label {r['label']!r} does not match generator {gen!r} (label id "
            f"{iab.LABEL_IDS[gen]}); label ids are fixed by imageattributionbench.LABELS")
    if r["superclass"] != iab.SUPERCLASS_OF[sem]:
        raise iab.BenchmarkError(f"{_where(path, i)}: superclass {r['superclass']!r} does not "
                                 f"match semantic {sem!r} (expected {iab.SUPERCLASS_OF[sem]!r})")
    pid = r["prompt_id"]
    if not pid.startswith(f"{sem}/") or pid == f"{sem}/":
        raise iab.BenchmarkError(f"{_where(path, i)}: prompt_id {pid!r} must start with its "
                                 f"semantic: '{sem}/<index>' or '{sem}/src:<file name>'")
    return RowRef(-1, i, gen, sem, pid, r["image_index"], r["sha256"], iab.fold_of(pid))


def scan_raw(files: list[Path], progress: bool = True) -> tuple[list[RowRef], int]:
    """Check every raw row's metadata; returns the rows to publish and the duplicates dropped.

    A row is identified by (generator, prompt_id, image_index): the same row twice with the
    same bytes (a job rerun) is kept once; with different bytes it is an error.
    """
    refs: dict[tuple[str, str, int], RowRef] = {}
    duplicates = 0
    for fi, path in enumerate(progress_bar(files, desc="scan raw shards", unit="shard",
                                           disable=not progress or len(files) < 20)):
        pf = shards.open_parquet(path)
        shards.check_columns(path, pf.schema_arrow)
        table = shards.read_table(path, columns=_META_COLUMNS)
        for i, r in enumerate(table.to_pylist()):
            ref = _check_row(path, i, r)
            ref = replace(ref, file=fi)
            key = (ref.label, ref.prompt_id, ref.image_index)
            if key in refs:
                if refs[key].sha256 != ref.sha256:
                    first = refs[key]
                    raise iab.BenchmarkError(
                        f"{_where(path, i)}: {key} also appears in {_where(files[first.file], first.row)} "
                        "with different image bytes; remove one of the two")
                duplicates += 1
                continue
            refs[key] = ref
    if not refs:
        raise iab.BenchmarkError("the raw shards hold no rows: nothing to build")
    return list(refs.values()), duplicates


# ---------------------------------------------------------------------- pass 2: one group


def _read_rows(path: Path, wanted: list[int]) -> dict[int, dict]:
    """The wanted rows of one raw shard, reading only the row groups that hold them."""
    pf = shards.open_parquet(path)
    sizes = [pf.metadata.row_group(g).num_rows for g in range(pf.metadata.num_row_groups)]
    starts = list(accumulate([0] + sizes[:-1]))
    group_of = {r: bisect_right(starts, r) - 1 for r in wanted}
    groups = sorted(set(group_of.values()))
    table = shards.read_table(path, row_groups=groups)
    # where each read group begins in the concatenated table
    offset = dict(zip(groups, accumulate([0] + [sizes[g] for g in groups[:-1]])))
    local = [offset[group_of[r]] + r - starts[group_of[r]] for r in wanted]
    return dict(zip(wanted, table.take(local).to_pylist()))


def _image_of(row: dict) -> tuple[bytes | None, str | None]:
    img = row["image"]
    if isinstance(img, dict):
        return img.get("bytes"), img.get("path")
    return img, None


def _split_by_size(rows: list[dict]) -> list[list[dict]]:
    parts, cur, size = [], [], 0
    for r in rows:
        n = len(r["image"]["bytes"])
        if cur and size + n > iab.MAX_SHARD_BYTES:
            parts.append(cur)
            cur, size = [], 0
        cur.append(r)
        size += n
    return parts + [cur] if cur else parts


def _write_parts(rows: list[dict], root: Path, path_of) -> list[ShardRecord]:
    parts = _split_by_size(rows)
    records = []
    for k, part in enumerate(parts):
        rel = path_of(k, len(parts))
        dest = root / rel
        shards.write_shard(shards.rows_to_table(part), dest)
        data = dest.read_bytes()
        records.append(ShardRecord(rel, len(part), len(data), iab.sha256_hex(data)))
    return records


def _build_group(task: tuple[str, str, list[tuple[str, list[RowRef]]], str]
                 ) -> tuple[list[ShardRecord], list[shards.ImageStat]]:
    """Publish one (label, semantic): fold shards, degraded shards, and per-image stats."""
    label, semantic, by_file, root = task
    root_path = Path(root)
    published: list[tuple[RowRef, dict]] = []
    stats: list[shards.ImageStat] = []
    for file, refs in by_file:
        path = Path(file)
        rows = _read_rows(path, [r.row for r in refs])
        for ref in refs:
            row = rows[ref.row]
            data, name = _image_of(row)
            where = _where(path, ref.row)
            if not data:
                raise iab.BenchmarkError(f"{where}: image has no bytes; every row stores the "
                                         "image bytes themselves, not a path")
            if iab.sha256_hex(data) != row["sha256"]:
                raise iab.BenchmarkError(f"{where}: image bytes do not match the row's sha256 "
                                         "(corrupt or altered); regenerate or re-import it")
            facts = shards.inspect_image(data, where)
            if (facts.format, facts.width, facts.height) != (row["format"], row["width"],
                                                             row["height"]):
                raise iab.BenchmarkError(
                    f"{where}: image is {facts.format} {facts.width}x{facts.height} but the row "
                    f"says {row['format']} {row['width']}x{row['height']}")
            row["image"] = {"bytes": data, "path": name}
            published.append((ref, row))
            stats.append(shards.ImageStat(label, semantic, ref.fold, facts.format,
                                          facts.width, facts.height, len(data),
                                          facts.jpeg_quality))
    published.sort(key=lambda p: (p[0].prompt_id, p[0].image_index))

    records: list[ShardRecord] = []
    for fold in iab.FOLDS:
        rows = [row for ref, row in published if ref.fold == fold]
        if rows:
            records += _write_parts(rows, root_path, lambda k, n, f=fold:
                                    iab.data_shard_path(semantic, f, label, k, n))
    test_rows = [row for ref, row in published if ref.fold == "test"]
    degraded: dict[str, list[dict]] = defaultdict(list)
    for row in test_rows:
        for name, data in iab.degrade_all(row["image"]["bytes"]).items():
            degraded[name].append({**row, "image": {"bytes": data, "path": None},
                                   "format": iab.DEGRADATIONS[name].output_format,
                                   "sha256": iab.sha256_hex(data)})
    for name, rows in degraded.items():
        records += _write_parts(rows, root_path, lambda k, n, d=name:
                                iab.degraded_shard_path(d, semantic, label, k, n))
    return records, stats


# ------------------------------------------------------------------------ configs and output


def config_splits(shard_paths: list[str], rows_of: dict[str, int]
                  ) -> tuple[dict[str, dict[str, list[str]]], dict[str, str]]:
    """The files of every split of every config; configs with an empty split are skipped
    (with the reason), since load_dataset cannot serve an empty split."""
    configs, skipped = {}, {}
    for proto in iab.PROTOCOLS.values():
        splits = {s.name: iab.split_files(s, shard_paths) for s in proto.splits}
        empty = [name for name, files in splits.items() if not files]
        if empty:
            skipped[proto.name] = f"no rows for split(s) {', '.join(empty)}"
        else:
            configs[proto.name] = splits
    return configs, skipped


def _check_out(out: Path, overwrite: bool) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise iab.BenchmarkError(f"{out} exists and is not a folder; choose a folder path")
    present = sorted(p.name for p in out.iterdir() if p.name not in FOREIGN_OK)
    if not present:
        return
    foreign = [n for n in present if n not in BUILD_ENTRIES]
    if foreign or not (out / MANIFEST).is_file():
        raise iab.BenchmarkError(
            f"{out} holds files that are not a benchmark build ({', '.join(foreign or present)}); "
            "choose an empty or new folder")
    if not overwrite:
        try:
            old = json.loads((out / MANIFEST).read_text())
            what = f"{old.get('rows', '?')} rows, fingerprint {old.get('fingerprint', '?')[:12]}"
        except (OSError, ValueError):
            what = "unreadable manifest"
        raise iab.BenchmarkError(f"{out} already holds a build ({what}); pass --overwrite to "
                                 "replace it, or choose an empty folder")


def _install(tmp: Path, out: Path) -> None:
    """Move a finished build into place; an earlier build's entries are swapped out first."""
    if not out.exists():
        os.replace(tmp, out)
        return
    trash = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
    for name in BUILD_ENTRIES:
        if (out / name).exists():
            os.replace(out / name, trash / name)
    for entry in tmp.iterdir():
        os.replace(entry, out / entry.name)
    shutil.rmtree(trash)
    tmp.rmdir()


def fingerprint(refs: Iterable[RowRef]) -> str:
    """sha256 over every published row's identity and image hash, independent of raw files."""
    h = hashlib.sha256()
    for key in sorted((r.label, r.prompt_id, r.image_index, r.sha256) for r in refs):
        h.update(json.dumps(key).encode() + b"\n")
    return h.hexdigest()


def _tasks(refs: list[RowRef], files: list[Path], root: Path) -> list[tuple]:
    groups: dict[tuple[str, str], dict[int, list[RowRef]]] = defaultdict(lambda: defaultdict(list))
    for r in refs:
        groups[(r.label, r.semantic)][r.file].append(r)
    # Largest groups first so that parallel workers finish together.
    ordered = sorted(groups.items(), key=lambda kv: (-sum(map(len, kv[1].values())), kv[0]))
    return [(label, sem, [(str(files[f]), rs) for f, rs in sorted(by_file.items())], str(root))
            for (label, sem), by_file in ordered]


def build(inputs: Iterable[str | os.PathLike], out: str | os.PathLike, *, overwrite: bool = False,
          num_proc: int = 1, repo_id: str = iab.HUB_REPO_ID, progress: bool = True
          ) -> BuildReport:
    """Build the Hub repo folder ``out`` from raw shards (files or folders of .parquet).

    Nothing is written unless the whole build succeeds; ``out`` must be new, empty, or hold an
    earlier build (then ``overwrite=True`` replaces it). Building twice from the same raw rows
    gives byte-identical files.
    """
    out = Path(out)
    inputs = list(inputs)
    _check_out(out, overwrite)
    files = shards.find_raw_shards(inputs)
    refs, duplicates = scan_raw(files, progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.build-"))
    try:
        tasks = _tasks(refs, files, tmp)
        records: list[ShardRecord] = []
        stats: list[shards.ImageStat] = []
        bar = progress_bar(total=len(refs), desc="build", unit="img", disable=not progress)
        if num_proc > 1:
            with ProcessPoolExecutor(num_proc, mp_context=get_context("spawn")) as pool:
                for task, (recs, st) in zip(tasks, pool.map(_build_group, tasks)):
                    records += recs
                    stats += st
                    bar.update(len(st))
        else:
            for task in tasks:
                recs, st = _build_group(task)
                records += recs
                stats += st
                bar.update(len(st))
        bar.close()
        records.sort(key=lambda r: r.path)
        rows_of = {r.path: r.rows for r in records}
        configs, skipped = config_splits(list(rows_of), rows_of)
        if not configs:
            raise iab.BenchmarkError("no config has rows in every split: " +
                                     "; ".join(f"{k}: {v}" for k, v in skipped.items()))
        counts = {name: {split: sum(rows_of[f] for f in files) for split, files in splits.items()}
                  for name, splits in configs.items()}
        fp = fingerprint(refs)
        sizes = {r.path: r.bytes for r in records}
        (tmp / "README.md").write_text(card.render(configs, counts, skipped, stats, sizes, fp,
                                                        repo_id))
        (tmp / "eval.yaml").write_text(card.render_eval_yaml())
        manifest = {
            "benchmark": iab.BENCHMARK_NAME, "version": iab.BENCHMARK_VERSION,
            "fingerprint": fp, "rows": len(refs), "configs": counts, "skipped_configs": skipped,
            "shards": [asdict(r) for r in records],
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        _write_checksums(tmp, {r.path: r.sha256 for r in records})
        _install(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return BuildReport(out, len(refs), duplicates, records, counts, skipped, fp, stats)


def _write_checksums(root: Path, known: dict[str, str]) -> None:
    """checksums.sha256 (``sha256sum -c`` format) over every file; shards' hashes are known."""
    lines = []
    for p in sorted(root.rglob("*"), key=lambda q: q.relative_to(root).as_posix()):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and rel != "checksums.sha256":
            lines.append(f"{known.get(rel) or iab.sha256_hex(p.read_bytes())}  {rel}")
    (root / "checksums.sha256").write_text("\n".join(lines) + "\n")

