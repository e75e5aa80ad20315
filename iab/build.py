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
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Iterable

from iab.progress import progress as progress_bar

import imageattributionbench as iab
from iab import card, install, official, paper_split, shards
from iab.faults import fault_point
from iab.procs import die_with_parent

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
    name: str | None = None  # the file name in the official tree (iab.official.official_name)
    paper: str | None = None  # the paper-split code (iab.PAPER_CODES), None: not selected


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
    paper_split: dict = field(default_factory=dict)
    # per published image: what the card's tables and its shortcut baseline are computed from
    image_stats: list[shards.ImageStat] = field(default_factory=list)


# ------------------------------------------------------------------------- pass 1: metadata


def _where(path: Path, row: int) -> str:
    return f"{path}, row {row}"


def _check_row(path: Path, i: int, r: dict, limit: int) -> RowRef:
    problem = iab.row_problem(r)
    if problem:
        raise iab.BenchmarkError(f"{_where(path, i)}: {problem}")
    if r["width"] * r["height"] > limit:
        raise shards.too_big_error(_where(path, i), f"the row says {r['width']}x{r['height']}",
                              limit)
    return RowRef(-1, i, r["generator"], r["semantic"], r["prompt_id"], r["image_index"],
                  r["sha256"], iab.fold_of(r["prompt_id"]))


def scan_raw(files: list[Path], progress: bool = True, limit: int | None = None
             ) -> tuple[list[RowRef], int]:
    """Check every raw row's metadata; returns the rows to publish and the duplicates dropped.

    A row is identified by (generator, prompt_id, image_index): the same row twice with the
    same bytes (a job rerun) is kept once; with different bytes it is an error.
    """
    refs: dict[tuple[str, str, int], RowRef] = {}
    duplicates = 0
    limit = shards.max_pixels(limit)
    for fi, path in enumerate(progress_bar(files, desc="scan raw shards", unit="shard",
                                           disable=not progress or len(files) < 20)):
        pf = shards.open_parquet(path)
        shards.check_columns(path, pf.schema_arrow)
        table = shards.read_table(path, columns=_META_COLUMNS)
        names = _image_names(path, table.num_rows)
        for i, r in enumerate(table.to_pylist()):
            ref = _check_row(path, i, r, limit)
            ref = replace(ref, file=fi, name=official.official_name({**r, "image": {
                "path": names[i]}}))
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


def _image_names(path: Path, n: int) -> list[str | None]:
    """The image file names of a raw shard (the ``image.path`` field, no bytes read)."""
    try:
        col = shards.open_parquet(path).read(columns=["image.path"]).column("image")
        return [c.as_py() for chunk in col.chunks for c in chunk.field("path")]
    except (KeyError, ValueError, TypeError, AttributeError):
        return [None] * n


def assign_paper_split(refs: list[RowRef], keep_codes: bool = True
                       ) -> tuple[list[RowRef], dict]:
    """Each row's code in the paper's own split (iab/paper_split.py; None for every row unless
    ``keep_codes``), and what the card says about it: how many rows the official loader
    selects, per code, and how many paper-split test images share a prompt with one of its
    training images (reported either way)."""
    entries = [paper_split.Entry(r.label, r.semantic, r.name, i)
               for i, r in enumerate(refs) if r.name]
    codes = paper_split.paper_codes(entries)
    shared, n_test = paper_split.shared_prompt_count(
        codes, {i: refs[i].prompt_id for i in codes})
    if keep_codes:
        refs = [replace(r, paper=codes.get(i)) for i, r in enumerate(refs)]
    counts: dict[str, int] = defaultdict(int)
    for c in codes.values():
        counts[c] += 1
    summary = {"selected": len(codes), "rows": len(refs), "codes": dict(sorted(counts.items())),
               "test": n_test, "test_sharing_a_train_prompt": shared, "configs": keep_codes}
    return refs, summary


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


def _build_group(task: tuple[str, str, list[tuple[str, list[RowRef]]], str, int]
                 ) -> tuple[list[ShardRecord], list[shards.ImageStat]]:
    """Publish one (label, semantic): fold shards, degraded shards, and per-image stats."""
    label, semantic, by_file, root, limit = task
    fault_point("build.worker")  # kill tests (iab/faults.py): a worker at work
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
            facts = shards.inspect_image(data, where, limit=limit)
            if (facts.format, facts.width, facts.height) != (row["format"], row["width"],
                                                             row["height"]):
                raise iab.BenchmarkError(
                    f"{where}: image is {facts.format} {facts.width}x{facts.height} but the row "
                    f"says {row['format']} {row['width']}x{row['height']}")
            row["image"] = {"bytes": data, "path": name}
            published.append((ref, row))
            stats.append(shards.ImageStat(label, semantic, ref.fold, facts.format,
                                          facts.width, facts.height, len(data),
                                          facts.jpeg_quality, row.get("model_id"),
                                          row.get("num_inference_steps"),
                                          row.get("guidance_scale"), row.get("source")))
    published.sort(key=lambda p: (p[0].prompt_id, p[0].image_index))
    records = _publish(published, root_path, label, semantic)
    return records, stats


def _publish(published: list[tuple[RowRef, dict]], root: Path, label: str, semantic: str
             ) -> list[ShardRecord]:
    """Fold shards, one set per (fold, paper-split code), and degraded shards of every row in
    the standard test fold or in the paper's test split (the two degraded configs)."""
    records: list[ShardRecord] = []
    groups: dict[tuple[str, str | None], list[dict]] = defaultdict(list)
    for ref, row in published:
        groups[(ref.fold, ref.paper)].append(row)
    for (fold, code), rows in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        records += _write_parts(rows, root, lambda k, n, f=fold, c=code:
                                iab.data_shard_path(semantic, f, label, k, n, paper=c))
    degraded: dict[tuple[str, str, str | None], list[dict]] = defaultdict(list)
    for ref, row in published:
        if ref.fold != "test" and (ref.paper or "").split("-")[0] != "test":
            continue
        for name, data in iab.degrade_all(row["image"]["bytes"]).items():
            degraded[(name, ref.fold, ref.paper)].append(
                {**row, "image": {"bytes": data, "path": None},
                 "format": iab.DEGRADATIONS[name].output_format, "sha256": iab.sha256_hex(data)})
    for (name, fold, code), rows in sorted(degraded.items(),
                                           key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or "")):
        records += _write_parts(rows, root, lambda k, n, d=name, f=fold, c=code:
                                iab.degraded_shard_path(d, semantic, label, k, n, fold=f,
                                                        paper=c))
    return records


# ------------------------------------------------------------------------ configs and output


def config_splits(shard_paths: list[str], rows_of: dict[str, int]
                  ) -> tuple[dict[str, dict[str, list[str]]], dict[str, str]]:
    """The files of every split of every config; configs with an empty split are skipped
    (with the reason), since load_dataset cannot serve an empty split."""
    configs, skipped = {}, {}
    for proto in iab.PROTOCOLS.values():
        splits = {s.name: iab.split_files(s, shard_paths) for s in proto.splits}
        empty = [name for name, files in splits.items() if not files]
        if proto.name.startswith("paper_exact") and all(not f for f in splits.values()):
            skipped[proto.name] = ("built by `iab build --paper-split` only (the paper's own "
                                   "split; see docs/PAPER.md)")
        elif empty:
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


def fingerprint(refs: Iterable[RowRef]) -> str:
    """sha256 over every published row's identity and image hash, independent of raw files."""
    h = hashlib.sha256()
    for key in sorted((r.label, r.prompt_id, r.image_index, r.sha256) for r in refs):
        h.update(json.dumps(key).encode() + b"\n")
    return h.hexdigest()


def _tasks(refs: list[RowRef], files: list[Path], root: Path, limit: int) -> list[tuple]:
    groups: dict[tuple[str, str], dict[int, list[RowRef]]] = defaultdict(lambda: defaultdict(list))
    for r in refs:
        groups[(r.label, r.semantic)][r.file].append(r)
    # Largest groups first so that parallel workers finish together.
    ordered = sorted(groups.items(), key=lambda kv: (-sum(map(len, kv[1].values())), kv[0]))
    return [(label, sem, [(str(files[f]), rs) for f, rs in sorted(by_file.items())], str(root),
             limit) for (label, sem), by_file in ordered]


def build(inputs: Iterable[str | os.PathLike], out: str | os.PathLike, *, overwrite: bool = False,
          num_proc: int = 1, repo_id: str = iab.HUB_REPO_ID, progress: bool = True,
          max_pixels: int | None = None, paper_split: bool = False) -> BuildReport:
    """Build the Hub repo folder ``out`` from raw shards (files or folders of .parquet).

    ``paper_split=True`` adds the paper_exact configs (the official code's own split, whose
    membership depends on every image of the build, so adding images moves rows between its
    folders; off by default, keeping the guarantee that adding images moves no row).

    Nothing is written unless the whole build succeeds; ``out`` must be new, empty, or hold an
    earlier build (then ``overwrite=True`` replaces it). Building twice from the same raw rows
    gives byte-identical files. A kill at any moment leaves ``out`` with the complete old or
    new build, and the next build cleans up after it (``iab.install``). Images above
    ``max_pixels`` (default ``shards.max_pixels()``) are refused before they are decoded.
    """
    out = Path(out)
    inputs = list(inputs)
    limit = shards.max_pixels(max_pixels)
    install.clean_stale(out, FOREIGN_OK)
    _check_out(out, overwrite)
    files = shards.find_raw_shards(inputs)
    refs, duplicates = scan_raw(files, progress, limit)
    refs, paper = assign_paper_split(refs, keep_codes=paper_split)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = install.staging_folder(out)
    try:
        tasks = _tasks(refs, files, tmp, limit)
        records: list[ShardRecord] = []
        stats: list[shards.ImageStat] = []
        bar = progress_bar(total=len(refs), desc="build", unit="img", disable=not progress)
        if num_proc > 1:
            # workers die with this process: a killed build leaves none running
            with ProcessPoolExecutor(num_proc, mp_context=get_context("spawn"),
                                     initializer=die_with_parent,
                                     initargs=(os.getpid(),)) as pool:
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
                                                        repo_id, paper))
        (tmp / "eval.yaml").write_text(card.render_eval_yaml(configs))
        manifest = {
            "benchmark": iab.BENCHMARK_NAME, "version": iab.BENCHMARK_VERSION,
            "fingerprint": fp, "rows": len(refs), "configs": counts, "skipped_configs": skipped,
            "paper_split": paper,
            "shards": [asdict(r) for r in records],
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        _write_checksums(tmp, {r.path: r.sha256 for r in records})
        install.install(tmp, out, FOREIGN_OK)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return BuildReport(out, len(refs), duplicates, records, counts, skipped, fp, paper, stats)


def _write_checksums(root: Path, known: dict[str, str]) -> None:
    """checksums.sha256 (``sha256sum -c`` format) over every file; shards' hashes are known."""
    lines = []
    for p in sorted(root.rglob("*"), key=lambda q: q.relative_to(root).as_posix()):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and rel != "checksums.sha256":
            lines.append(f"{known.get(rel) or iab.sha256_hex(p.read_bytes())}  {rel}")
    (root / "checksums.sha256").write_text("\n".join(lines) + "\n")

