"""Regenerate a row's image from its recorded metadata, and compare it with the stored one.

    python generation/regenerate.py raw/SDXL/cat/0-00000.parquet --row 3

Every generated row records its model id and revision, pipeline, steps, guidance, size, prompt
and seed; that is all it takes to make the image again (within 1/255 per pixel: the same seed
in another batch differs by rounding only).
"""

from __future__ import annotations

import argparse
import io

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

import imageattributionbench as iab
from iab.scripts import DefaultsHelpFormatter, run_script
from generation.pipelines import Settings, generate, load_pipeline, tiny_model_id


def regenerate(row: dict, device: str = "cpu") -> np.ndarray:
    """The image (H, W, 3) uint8 that the row's metadata produces."""
    g = iab.generator(row["generator"])
    if g.runs != "diffusers":
        raise iab.BenchmarkError(f"{g.name} images are not regenerable here ({g.runs})")
    tiny = row["model_id"] == tiny_model_id(g.name)
    settings = Settings.from_row(row, "float32" if tiny or device == "cpu" else g.dtype)
    pipe, _, revision, extra = load_pipeline(
        g, settings, tiny=tiny, device=device,
        revision=None if tiny else row["model_revision"])
    if tiny and revision != row["model_revision"]:
        raise iab.BenchmarkError(f"tiny weights {revision} differ from the row's "
                                 f"{row['model_revision']}")
    image = generate(pipe, [row["prompt"]], [row["seed"]], settings, extra)[0]
    return (image * 255).round().clip(0, 255).astype(np.uint8)


def stored_pixels(row: dict) -> np.ndarray:
    with Image.open(io.BytesIO(row["image"]["bytes"])) as im:
        return np.asarray(im.convert("RGB"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter, description=__doc__.split("\n\n")[0])
    p.add_argument("shard", help="a raw or published shard")
    p.add_argument("--row", type=int, default=0, help="row number in the shard (default 0)")
    p.add_argument("--device", default="cpu", help="where the pipeline runs")
    args = p.parse_args(argv)
    row = pq.read_table(args.shard).slice(args.row, 1).to_pylist()[0]
    diff = np.abs(regenerate(row, args.device).astype(int) - stored_pixels(row).astype(int))
    print(f"{row['generator']} {row['prompt_id']} #{row['image_index']} seed {row['seed']}: "
          f"max pixel difference {diff.max()}/255, mean {diff.mean():.4f}")
    return 0 if diff.max() <= 1 else 1


if __name__ == "__main__":
    run_script(main)
