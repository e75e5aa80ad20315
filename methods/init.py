"""Write a freshly initialised method checkpoint (weights + image processor) to fine-tune:

    python -m methods.init dct-cnn checkpoints/dct --size 256
    accelerate launch harness/run.py --model checkpoints/dct --method finetune --protocol paper
"""

from __future__ import annotations

import argparse
from pathlib import Path

import imageattributionbench as iab
from iab.cli import run_script

PRESETS = {"dct-cnn": "Frank et al., ICML 2020: log |DCT| spectrum + CNN, native crops"}


def init_checkpoint(preset: str, out: str | Path, size: int = 256, seed: int = 0) -> Path:
    import torch
    from transformers import ViTImageProcessor

    from methods.dct import DCTConfig, DCTForImageClassification

    if preset not in PRESETS:
        raise iab.BenchmarkError(f"unknown preset {preset!r}; valid presets: "
                                 f"{', '.join(PRESETS)}")
    torch.manual_seed(seed)
    out = Path(out)
    DCTForImageClassification(DCTConfig()).save_pretrained(out)
    # No normalisation beyond [0, 1]: the spectrum is standardised inside the model.
    ViTImageProcessor(size={"height": size, "width": size}, image_mean=[0.0] * 3,
                      image_std=[1.0] * 3).save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("preset", help=", ".join(f"{k} ({v})" for k, v in PRESETS.items()))
    p.add_argument("out", help="folder to write")
    p.add_argument("--size", type=int, default=256, help="crop side the harness feeds it")
    args = p.parse_args(argv)
    print(init_checkpoint(args.preset, args.out, args.size))
    return 0


if __name__ == "__main__":
    run_script(main)
