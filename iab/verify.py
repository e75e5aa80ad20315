"""``iab verify``: check a built repo folder before it is pushed, or after it is downloaded.

Checks checksums, row counts against the manifest, every shard's schema and every row's value
domains, that every row sits in the folder its label, semantic and fold say, that image bytes
match their sha256, decode, and have the format, width and height their row says (``quick``:
hashes only, nothing decoded), that no prompt is in two folds, that the degraded splits hold
exactly the standard test rows, and that the card's data_files select the row counts it
reports.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import yaml

import imageattributionbench as iab
from iab import shards
from iab.card import expand_patterns


def _card_configs(readme: Path) -> list[dict]:
    text = readme.read_text()
    if not text.startswith("---\n"):
        raise ValueError("README.md has no YAML front matter")
    try:
        meta = yaml.safe_load(text.split("---\n", 2)[1])
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 2}" if where is not None else ""  # +1: 0-based, +1: ---
        raise ValueError(f"its YAML front matter does not parse{at} "
                         f"({getattr(e, 'problem', None) or e}); rebuild the card with "
                         "`iab build`") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("configs", []), list):
        raise ValueError("its YAML front matter is not a mapping with a 'configs' list")
    return meta.get("configs", [])


def _check_image(data: bytes | None, row: dict, where: str, quick: bool, limit: int
                 ) -> str | None:
    """Why an image does not fit its row: sha256, and unless ``quick``, decoding, format
    and size."""
    if data is None or iab.sha256_hex(data) != row["sha256"]:
        return f"{where}: image bytes do not match their sha256"
    if quick:
        return None
    try:
        facts = shards.inspect_image(data, where, limit=limit, decode=True)
    except iab.BenchmarkError as e:
        return str(e)
    if (facts.format, facts.width, facts.height) != (row["format"], row["width"],
                                                     row["height"]):
        return (f"{where}: image is {facts.format} {facts.width}x{facts.height} but the row "
                f"says {row['format']} {row['width']}x{row['height']}")
    return None


def verify(repo: str | Path, quick: bool = False, max_pixels: int | None = None
           ) -> tuple[list[str], dict]:
    """Problems found in a built repo folder (empty when it is sound), and a summary.

    Every image is decoded and its format and size compared with its row; ``quick=True``
    checks hashes only. Images above ``max_pixels`` (``shards.max_pixels``) are refused
    before decoding.
    """
    repo = Path(repo)
    limit = shards.max_pixels(max_pixels)
    problems: list[str] = []
    try:
        manifest = json.loads((repo / "manifest.json").read_text())
    except (OSError, ValueError) as e:
        return [f"manifest.json missing or unreadable ({e}): is {repo} a folder built by "
                "`iab build`?"], {}
    entries = manifest.get("shards", []) if isinstance(manifest, dict) else None
    if not isinstance(entries, list) or not all(
            isinstance(r, dict) and {"path", "rows"} <= set(r) for r in entries):
        return ["manifest.json is not a build manifest (an object whose 'shards' list "
                "entries have 'path' and 'rows'): rebuild with `iab build`"], {}

    listed: dict[str, str] = {}
    try:
        for line in (repo / "checksums.sha256").read_text().splitlines():
            digest, _, name = line.partition("  ")
            listed[name] = digest
    except OSError as e:
        problems.append(f"checksums.sha256 missing or unreadable ({e})")
    present = {p.relative_to(repo).as_posix() for p in repo.rglob("*")
               if p.is_file() and not {".git", ".cache"} & set(p.relative_to(repo).parts)}
    for name in sorted(present - set(listed) - {"checksums.sha256"}):
        problems.append(f"{name}: not listed in checksums.sha256 (a file added after the build)")
    for name, digest in sorted(listed.items()):
        if name not in present:
            problems.append(f"{name}: listed in checksums.sha256 but missing")
        elif iab.sha256_hex((repo / name).read_bytes()) != digest:
            problems.append(f"{name}: sha256 differs from checksums.sha256 (corrupt or altered)")

    expected_schema = shards.arrow_schema().remove_metadata()
    folds_of_prompt: dict[str, set[str]] = defaultdict(set)
    test_rows: set[tuple] = set()
    degraded_rows: dict[str, set[tuple]] = defaultdict(set)
    rows_of: dict[str, int] = {}
    for rec in manifest.get("shards", []):
        path, key = rec["path"], iab.parse_shard_path(rec["path"])
        if key is None or not (repo / path).is_file():
            problems.append(f"{path}: listed in manifest.json but missing or misnamed")
            continue
        try:
            table = shards.read_table(repo / path)
            images = shards.image_bytes_column(table)
            metadata = table.drop(["image"]).to_pylist()
        except Exception as e:  # any damage: bad pages, bytes that are not UTF-8 ...
            problems.append(f"{path}: unreadable ({type(e).__name__}: {e})")
            continue
        rows_of[path] = table.num_rows
        if table.schema.remove_metadata() != expected_schema:
            problems.append(f"{path}: schema differs from the benchmark's row schema")
            continue
        if table.num_rows != rec["rows"]:
            problems.append(f"{path}: {table.num_rows} rows, manifest says {rec['rows']}")
        for i, (row, data) in enumerate(zip(metadata, images)):
            where = f"{path}, row {i}"
            problem = iab.row_problem(row)
            if problem:
                problems.append(f"{where}: {problem}")
                continue
            if row["generator"] != key.label or row["label"] != iab.LABEL_IDS.get(key.label):
                problems.append(f"{where}: label {row['generator']!r} in a {key.label!r} shard")
            if row["semantic"] != key.semantic:
                problems.append(f"{where}: semantic {row['semantic']!r} in a {key.semantic!r} "
                                "folder")
            fold = iab.fold_of(row["prompt_id"])
            if fold != key.fold:
                problems.append(f"{where}: prompt {row['prompt_id']!r} belongs to fold {fold!r}, "
                                f"not {key.fold!r}")
            problem = _check_image(data, row, where, quick, limit)
            if problem:
                problems.append(problem)
            ident = (row["generator"], row["prompt_id"], row["image_index"])
            if key.degradation:
                degraded_rows[key.degradation].add(ident)
            else:
                folds_of_prompt[row["prompt_id"]].add(key.fold)
                if key.fold == "test":
                    test_rows.add(ident)

    for pid, folds in sorted(folds_of_prompt.items()):
        if len(folds) > 1:
            problems.append(f"prompt {pid!r} is in several folds: {', '.join(sorted(folds))}")
    for name in iab.DEGRADATIONS:
        if degraded_rows.get(name, set()) != test_rows:
            problems.append(f"degraded/{name}: rows differ from the standard test split "
                            f"({len(degraded_rows.get(name, ()))} vs {len(test_rows)})")

    try:
        for cfg in _card_configs(repo / "README.md"):
            counts = manifest.get("configs", {}).get(cfg["config_name"], {})
            for split in cfg["data_files"]:
                pats = split["path"] if isinstance(split["path"], list) else [split["path"]]
                n = sum(rows_of[f] for f in expand_patterns(pats, set(rows_of)))
                if n != counts.get(split["split"]):
                    problems.append(f"README.md: config {cfg['config_name']!r} split "
                                    f"{split['split']!r} selects {n} rows, manifest says "
                                    f"{counts.get(split['split'])}")
    except (OSError, ValueError, KeyError, TypeError) as e:
        problems.append(f"README.md: configs unreadable ({e})")

    summary = {"shards": len(rows_of), "rows": manifest.get("rows"),
               "configs": len(manifest.get("configs", {})),
               "fingerprint": manifest.get("fingerprint")}
    return problems, summary
