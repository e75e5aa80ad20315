"""The embedded default: a small synthetic benchmark that needs no GPU and no network.

Each label paints the official prompts of every subclass with its own fingerprint (a periodic
pattern of a label-specific period and phase over prompt-seeded noise), so the labels are
separable the way real generators are, by traces rather than content. Real images are JPEG or
PNG as their source files were. This stands in for generation/ until generated shards exist.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image

import imageattributionbench as iab
from iab import shards
from iab.prompts import official_prompts

# Open-weight, API and post-cutoff generators, so that every protocol has something to show.
DEMO_LABELS = ("real", "SD1_5", "SDXL", "FLUX", "PIXART", "dalle3", "Z-Image-Turbo")
DEMO_SIZE = 32


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "big")


def demo_prompt_indices(semantic: str, per_fold: dict[str, int]) -> list[int]:
    """The first official prompts of a subclass that fill each fold's quota, so that every
    split of every config has rows however small the demo."""
    want, picked = dict(per_fold), []
    for p in official_prompts(semantic):
        fold = iab.fold_of(p.prompt_id)
        if want.get(fold, 0) > 0:
            want[fold] -= 1
            picked.append(p.index)
        if not any(want.values()):
            break
    return sorted(picked)


def synthetic_image(label: str, prompt_id: str, image_index: int, size: int = DEMO_SIZE,
                    fmt: str = "PNG") -> bytes:
    """Encoded bytes of one synthetic image: prompt content plus the label's fingerprint."""
    rng = np.random.default_rng(_seed(prompt_id, image_index, label))
    content = np.random.default_rng(_seed(prompt_id)).integers(40, 216, (size, size, 3))
    period = 2 + iab.label_id(label) % 5
    phase = iab.label_id(label) % period
    yy, xx = np.mgrid[0:size, 0:size]
    pattern = (((xx + phase) % period == 0) | ((yy + 2 * phase) % period == 0)) * 24
    channel = np.zeros(3)
    channel[iab.label_id(label) % 3] = 1.0
    pixels = content + pattern[..., None] * channel + rng.normal(0, 3, (size, size, 3))
    img = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    buf = io.BytesIO()
    img.save(buf, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


def write_demo_raw(out: str | Path, labels=DEMO_LABELS, semantics=iab.SEMANTICS,
                   per_fold: dict[str, int] | None = None) -> list[Path]:
    """Write synthetic raw shards ``<out>/<label>/<semantic>/0-00000.parquet``."""
    per_fold = per_fold or {"train": 6, "validation": 2, "test": 2}
    written = []
    for label in labels:
        for semantic in semantics:
            prompts = official_prompts(semantic)
            rows = []
            for i in demo_prompt_indices(semantic, per_fold):
                p = prompts[i]
                if label == iab.REAL:
                    fmt = "JPEG" if p.source_file.lower().endswith((".jpg", ".jpeg")) else "PNG"
                    data = synthetic_image(label, p.prompt_id, 0, fmt=fmt)
                    rows.append(shards.make_row(data, label, semantic, p.prompt_id,
                                                image_path=p.source_file, prompt=p.text,
                                                source=f"demo-synthetic:{p.source_file}"))
                    continue
                g = iab.generator(label)
                seed = _seed(label, p.prompt_id, 0) % 2**31
                rows.append(shards.make_row(
                    synthetic_image(label, p.prompt_id, 0), label, semantic, p.prompt_id,
                    prompt=p.text, seed=seed, model_id=g.hub_id, pipeline=g.pipeline,
                    num_inference_steps=g.steps, guidance_scale=g.guidance,
                    source="demo-synthetic"))
            path = Path(out) / label / semantic / "0-00000.parquet"
            shards.write_shard(shards.rows_to_table(rows), path)
            written.append(path)
    return written


def build_verify_load(raw: Path, repo: Path, num_proc: int = 1):
    """Build (replacing an earlier demo build), verify, and load every config, printing each
    step: the part of every demo that shows the benchmark as users get it."""
    from iab.build import build
    from iab.verify import verify

    report = build([raw], repo, overwrite=(repo / "manifest.json").exists(), num_proc=num_proc)
    print(f"\nbuilt {repo}: {report.rows} images, {len(report.shards)} shards, "
          f"{len(report.configs)} configs")
    problems, _ = verify(repo)
    if problems:
        raise iab.BenchmarkError("demo build failed verification:\n" + "\n".join(problems))
    print("verified: checksums, schema, folds, degraded splits and card all consistent")
    from iab.shortcut import scores

    for sc in scores(report.image_stats):  # the card's metadata-only k-NN, above chance = a leak
        print(f"shortcut baseline (format, size, file size only) on {sc.protocol}: "
              f"{100 * sc.accuracy:.1f}% vs chance {100 * sc.chance:.1f}% "
              f"({'LEAKS' if sc.leaks else 'no leak'}, {sc.n_test} test images)")
    print(f"\nload_dataset({str(repo)!r}, <config>):")
    for name in report.configs:
        ds = iab.load(name, repo=str(repo))
        print(f"  {name:<30} " + ", ".join(f"{split} {len(d)}" for split, d in ds.items()))
    return report


def run_demo(out: Path, num_proc: int = 1) -> None:
    """The README's main job: synthetic raw shards -> build -> verify -> load every config."""
    import shutil

    raw, repo = out / "raw", out / "repo"
    if raw.exists():
        shutil.rmtree(raw)  # the demo's own synthetic shards: cheap to remake, never user data
    files = write_demo_raw(raw)
    print(f"wrote {len(files)} synthetic raw shards to {raw}")
    report = build_verify_load(raw, repo, num_proc)
    name = next(iter(report.configs))
    split = next(iter(report.configs[name]))
    rows = iab.load(name, split=split, repo=str(repo))
    sample = rows[0]
    label = rows.features["label"].int2str(sample["label"])
    print(f"\nrow 0 of {name}/{split}: label {label!r}, semantic {sample['semantic']!r}, "
          f"image {sample['image'].size} {sample['format']}, prompt {sample['prompt'][:60]!r}...")
    print(f"\nThe dataset card is {repo / 'README.md'}; publish with "
          f"`python generation/publish.py {repo} --repo-id ORG/NAME --dry-run`.")
