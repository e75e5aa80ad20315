"""The metadata-only shortcut baseline: chance on matched data, above chance on leaky data."""

import io

import numpy as np
from PIL import Image

import imageattributionbench as iab
from iab import shards, shortcut
from iab.build import build
from iab.demo import demo_prompt_indices

from helpers import png, write_rows

LABELS = ("real", "SD1_5", "FLUX", "dalle3")
PER_FOLD = {"train": 10, "validation": 2, "test": 4}


def jpeg(seed: int, size: int = 16) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _build(tmp_path, real_as_jpeg: bool):
    raw = tmp_path / "raw"
    seed = 0
    for label in LABELS:
        rows = []
        for semantic in ("cat", "dog"):
            for i in demo_prompt_indices(semantic, PER_FOLD):
                seed += 1
                # random noise: PNG sizes do not depend on the label, so only format can tell
                data = jpeg(seed) if (real_as_jpeg and label == "real") else png(seed)
                rows.append(shards.make_row(data, label, semantic, iab.prompt_id(semantic, i)))
        write_rows(raw / f"{label}.parquet", rows)
    return build([raw], tmp_path / "repo", progress=False)


def _scores(report):
    readme = (report.out / "README.md").read_text()
    return readme, {s.protocol: s for s in shortcut.scores(_stats(report.out))}


def _stats(repo):
    """ImageStat rows of a built repo's data shards, as the card saw them."""
    import pyarrow.parquet as pq

    from iab.shards import ImageStat

    out = []
    for f in sorted((repo / "data").rglob("*.parquet")):
        key = iab.parse_shard_path(f.relative_to(repo).as_posix())
        t = pq.read_table(f)
        for r, data in zip(t.drop(["image"]).to_pylist(), shards.image_bytes_column(t)):
            q = shards.inspect_image(data, "test").jpeg_quality
            out.append(ImageStat(r["generator"], r["semantic"], key.fold, r["format"],
                                 r["width"], r["height"], len(data), q))
    return out


def test_matched_formats_and_sizes_leave_the_shortcut_at_chance(tmp_path):
    readme, scores = _scores(_build(tmp_path, real_as_jpeg=False))
    for s in scores.values():
        assert not s.leaks and s.accuracy <= s.chance + 1e-9
    assert "| `standard` |" in readme and "a shortcut leaks" not in readme


def test_jpeg_real_vs_png_generated_is_caught(tmp_path):
    readme, scores = _scores(_build(tmp_path, real_as_jpeg=True))
    std = scores["standard"]
    # real is told apart perfectly; the three PNG generators stay indistinguishable
    assert std.leaks and std.accuracy >= 0.45 and std.chance == 0.25
    assert scores["semantic_disjoint"].leaks
    assert "**yes: a shortcut leaks**" in readme
