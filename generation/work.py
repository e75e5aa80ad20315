"""What a generation job has to do: prompts -> work items -> fixed batches, and what is done.

Batches are cut from the full, ordered list of a subclass's work before anything is skipped or
split between processes, so every image is always generated in the same batch with the same
neighbours: one process or eight, interrupted or not, the bytes come out the same.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow.parquet as pq

import imageattributionbench as iab
from iab.prompts import official_prompts

PROMPT_COLUMNS = ("prompt", "semantic")


@dataclass(frozen=True)
class PromptRow:
    semantic: str
    prompt_id: str
    text: str


@dataclass(frozen=True)
class WorkItem:
    semantic: str
    prompt_id: str
    prompt: str
    image_index: int
    seed: int

    @property
    def key(self) -> tuple[str, int]:
        return self.prompt_id, self.image_index


def parse_semantics(text: str) -> list[str]:
    """``all`` or a comma-separated list of subclasses, validated."""
    if text.strip() == "all":
        return list(iab.SEMANTICS)
    names = [s.strip() for s in text.split(",") if s.strip()]
    for s in names:
        iab.superclass_of(s)
    if not names:
        raise iab.BenchmarkError("--semantics is empty; give 'all' or names like cat,dog")
    return names


def load_prompts(source: str, semantics: list[str]) -> tuple[dict[str, list[PromptRow]], str]:
    """Prompts per subclass, and a fingerprint of the set (``official`` or a file's sha256).

    A custom file (.csv or .parquet) needs columns ``prompt`` and ``semantic``; ``prompt_id``
    is optional (default: ``<semantic>/custom-<sha256 of the text>``, so that a custom prompt
    never shares a fold key with an official one).
    """
    if source == "official":
        return {s: [PromptRow(s, p.prompt_id, p.text) for p in official_prompts(s)]
                for s in semantics}, "official"
    path = Path(source)
    if not path.is_file():
        raise iab.BenchmarkError(f"prompts file {source!r} not found; give 'official' or a "
                                 ".csv/.parquet file with columns prompt, semantic")
    if path.suffix == ".parquet":
        rows = pq.read_table(path).to_pylist()
        columns = pq.read_schema(path).names
    else:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            rows, columns = list(reader), reader.fieldnames or []
    missing = [c for c in PROMPT_COLUMNS if c not in columns]
    if missing:
        raise iab.BenchmarkError(f"{path}: missing column(s) {', '.join(missing)}; a prompts "
                                 "file needs prompt and semantic (prompt_id optional)")
    out: dict[str, list[PromptRow]] = {s: [] for s in semantics}
    for i, r in enumerate(rows):
        iab.superclass_of(r["semantic"])
        if r["semantic"] not in out:
            continue
        pid = r.get("prompt_id") or \
            f"{r['semantic']}/custom-{hashlib.sha256(r['prompt'].encode()).hexdigest()[:16]}"
        problem = iab.prompt_id_problem(pid, r["semantic"])
        if problem:
            raise iab.BenchmarkError(f"{path}, row {i}: {problem}")
        out[r["semantic"]].append(PromptRow(r["semantic"], pid, r["prompt"]))
    return out, hashlib.sha256(path.read_bytes()).hexdigest()


def plan(generator: str, prompts: dict[str, list[PromptRow]], images_per_prompt: int,
         limit: int | None, batch_size: int) -> list[list[WorkItem]]:
    """Every batch of the job, in a fixed order (subclass, prompt, image index)."""
    batches = []
    for semantic, rows in prompts.items():
        items = [WorkItem(semantic, p.prompt_id, p.text, k,
                          iab.image_seed(generator, p.prompt_id, k))
                 for p in rows[:limit] for k in range(images_per_prompt)]
        batches += [items[i:i + batch_size] for i in range(0, len(items), batch_size)]
    return batches


def done_keys(generator_dir: Path) -> set[tuple[str, int]]:
    """(prompt_id, image_index) of every row already written (shards are atomic)."""
    done = set()
    for f in sorted(generator_dir.rglob("*.parquet")):
        t = pq.read_table(f, columns=["prompt_id", "image_index"])
        done.update(zip(t.column("prompt_id").to_pylist(), t.column("image_index").to_pylist()))
    return done


@dataclass(frozen=True)
class JobConfig:
    """What decides the images: a rerun into the same folder must not change any of it."""

    generator: str
    model_id: str
    model_revision: str | None
    pipeline: str
    num_inference_steps: int | None
    guidance_scale: float | None
    width: int | None
    height: int | None
    dtype: str | None
    prompts: str

    def check_or_write(self, generator_dir: Path) -> None:
        path = generator_dir / "job.json"
        mine = asdict(self)
        if path.exists():
            theirs = json.loads(path.read_text())
            diff = {k: (theirs.get(k), v) for k, v in mine.items() if theirs.get(k) != v}
            if diff:
                what = "; ".join(f"{k}: folder has {a!r}, this run {b!r}"
                                 for k, (a, b) in diff.items())
                raise iab.BenchmarkError(
                    f"{generator_dir} holds images from another generator config ({what}); "
                    "rerun with the same settings to resume, or choose another --out")
            return
        generator_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(mine, indent=1) + "\n")
        tmp.replace(path)
