"""Batched generation vs one prompt at a time (the paper's own loop), tiny pipelines on CPU.

For each tiny pipeline class: images/s generating N images one call per image, and in batches
of B with one torch.Generator per sample (what generation/run.py does). Tiny models are all
overhead and no compute, so this measures the per-call cost that batching removes; on a GPU
with full-size models see benchmarks/gpu_generation.py.

    python benchmarks/generation_batching.py --images 16 --batch-size 8
"""

from __future__ import annotations

import argparse
import time

import torch

import imageattributionbench as iab
from generation.pipelines import generate, resolve_settings, tiny_weights_seed
from generation.tiny import TINY_BUILDERS, call_kwargs, tiny_pipeline
from iab.prompts import official_prompts
from iab.scripts import DefaultsHelpFormatter

GENERATORS = ("SD1_5", "SDXL", "PIXART", "FLUX", "SD3", "Z-Image-Turbo", "FLUX.2-klein-4B",
              "CogView4-6B")


def rate(pipe, prompts, seeds, settings, extra, batch: int) -> float:
    generate(pipe, prompts[:batch], seeds[:batch], settings, extra)  # warm-up
    t = time.perf_counter()
    for i in range(0, len(prompts), batch):
        generate(pipe, prompts[i:i + batch], seeds[i:i + batch], settings, extra)
    return len(prompts) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter, description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()  # the 77-token cut is said for every call
    transformers_logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    prompts = [p.text for p in official_prompts("cat")[:args.images]]
    print(f"{args.images} images, 64x64, 2 steps, {args.threads} torch thread(s)\n")
    print(f"{'generator':<17} {'pipeline':<27} {'1/call img/s':>12} "
          f"{'batch ' + str(args.batch_size) + ' img/s':>14} {'speed-up':>9}")
    for name in GENERATORS:
        g = iab.generator(name)
        assert g.pipeline in TINY_BUILDERS
        pipe = tiny_pipeline(g.pipeline, tiny_weights_seed(name))
        settings = resolve_settings(g, tiny=True, device="cpu")
        seeds = [iab.image_seed(name, f"cat/{i}", 0) for i in range(args.images)]
        extra = call_kwargs(g.pipeline)
        one = rate(pipe, prompts, seeds, settings, extra, 1)
        many = rate(pipe, prompts, seeds, settings, extra, args.batch_size)
        print(f"{name:<17} {g.pipeline:<27} {one:12.1f} {many:14.1f} {many / one:8.2f}x")


if __name__ == "__main__":
    main()
