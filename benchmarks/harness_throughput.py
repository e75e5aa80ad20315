"""The harness's input pipeline on CPU: decode once with all workers, then read the cache.

Builds a synthetic benchmark folder (M PNGs of SxS in the standard config's train split) once,
then prints:

  (a) the decode bound: PIL decode of the same PNG bytes in a tight loop, per core (and with
      the policy's crop, which is what the harness stores);
  (b) the first pass of ``harness.data.decode_split`` with 1..N workers, a fresh cache each;
  (c) a cached pass: the memmap read + ``normalize`` through ``harness.predict.loader``;
  (d) training images/s of a small CNN fed from that loader against the same model fed from a
      float tensor already in memory (goal: the loader gives >= 80% of the tensor figure).

    python benchmarks/harness_throughput.py --images 400 --size 512 --workers 1,2
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np

import imageattributionbench as iab
from iab import shards
from iab.demo import demo_prompt_indices, synthetic_image
from iab.prompts import official_prompts
from iab.scripts import DefaultsHelpFormatter

LABELS = ("SD1_5", "SDXL", "FLUX", "PIXART")


def write_raw(root: Path, n_images: int, size: int) -> int:
    """Raw shards of train-fold rows, plus one validation and one test row per label so that
    the standard config has every split (the build decodes and degrades the test fold, which
    would only slow the set-up here). Returns the number of train rows."""
    per_cell = max(1, n_images // (len(LABELS) * len(iab.SEMANTICS)))
    n = 0
    for label in LABELS:
        for semantic in iab.SEMANTICS:
            quota = {"train": per_cell}
            if semantic == iab.SEMANTICS[0]:
                quota.update(validation=1, test=1)
            prompts = official_prompts(semantic)
            rows = []
            for i in demo_prompt_indices(semantic, quota):
                p = prompts[i]
                data = synthetic_image(label, p.prompt_id, 0, size=size)
                rows.append(shards.make_row(data, label, semantic, p.prompt_id, prompt=p.text))
            shards.write_shard(shards.rows_to_table(rows),
                               root / label / semantic / "0-00000.parquet")
            n += per_cell
    return n


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def decode_bound(samples: list[bytes], policy: str, side: int) -> tuple[float, float]:
    """Images/s on one core: bare PIL decode to RGB, and the harness's crop() of the bytes."""
    from harness.data import crop

    t = time.perf_counter()
    pil = rate(_pil_decode(samples), time.perf_counter() - t)
    t = time.perf_counter()
    for data in samples:
        crop(data, policy, side)
    return pil, rate(len(samples), time.perf_counter() - t)


def _pil_decode(samples: list[bytes]) -> int:
    from PIL import Image

    for data in samples:
        with Image.open(io.BytesIO(data)) as im:
            im.convert("RGB")
    return len(samples)


def parallel_decode(samples: list[bytes], workers: int) -> float:
    """Images/s of bare PIL decode in ``workers`` processes at once: what the cores give now
    (below workers x the one-core figure when the machine is busy or has fewer cores)."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_pil_decode, [samples[:1]] * workers))  # start the workers first
        t = time.perf_counter()
        n = sum(pool.map(_pil_decode, [samples] * workers))
        return rate(n, time.perf_counter() - t)


def train_rates(model, optimizer, feeds: dict, n_epochs: int) -> dict[str, float]:
    """Images/s of the training step harness/train.py takes, for each feed (a function of the
    epoch giving (pixels, labels) batches): one untimed warm-up epoch each, then ``n_epochs``
    timed epochs with the feeds interleaved, so that a busy machine slows them alike."""
    import torch.nn.functional as F

    def epoch(feed, e):
        count = 0
        for pixels, labels in feed(e):
            loss = F.cross_entropy(model(pixels).float(), labels)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            loss.item()  # train.py logs the loss every step
            count += len(labels)
        return count

    for feed in feeds.values():
        epoch(feed, 0)
    seconds, counts = dict.fromkeys(feeds, 0.0), dict.fromkeys(feeds, 0)
    for e in range(1, n_epochs + 1):
        for name, feed in feeds.items():
            t = time.perf_counter()
            counts[name] += epoch(feed, e)
            seconds[name] += time.perf_counter() - t
    return {name: rate(counts[name], seconds[name]) for name in feeds}


def small_cnn(num_labels: int):
    """A small random-weight CNN (a patchify stem, two strided convolutions): cheap enough on
    CPU that the input pipeline's share of each step shows."""
    from torch import nn

    def block(c_in, c_out, k, s):
        return [nn.Conv2d(c_in, c_out, k, s, padding=k // 2 if s < k else 0),
                nn.BatchNorm2d(c_out), nn.GELU()]

    return nn.Sequential(*block(3, 32, 4, 4), *block(32, 64, 3, 2), *block(64, 128, 3, 2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, num_labels))


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter, description=__doc__.split("\n\n")[0])
    data = ap.add_argument_group("data")
    data.add_argument("--images", type=int, default=400, help="images in the benchmark (M)")
    data.add_argument("--size", type=int, default=512, help="square image side in pixels")
    data.add_argument("--policy", default="native_crop", choices=("native_crop", "paper_resnet"),
                      help="input policy (processor needs a model's own image processor)")
    data.add_argument("--side", type=int, default=224, help="crop side the model takes")
    run = ap.add_argument_group("run")
    run.add_argument("--workers", default="1,2", help="comma-separated decode worker counts")
    run.add_argument("--batch-size", type=int, default=32)
    run.add_argument("--epochs", type=int, default=2, help="timed training epochs per feed")
    run.add_argument("--bound-samples", type=int, default=100,
                     help="images timed for the decode bound")
    run.add_argument("--json", help="also write the figures to this JSON file")
    return ap.parse_args(argv)


def main(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="iab-bench-") as tmp:
        tmp = Path(tmp)
        # load_dataset's Arrow copy and the decode cache go to the temp dir, not the user's
        os.environ["HF_HOME"] = str(tmp / "hf")
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
        import torch

        from harness.data import Geometry, decode_split, load_split, normalize
        from harness.predict import loader
        from iab.build import build

        t = time.perf_counter()
        write_raw(tmp / "raw", args.images, args.size)
        build([tmp / "raw"], tmp / "repo", num_proc=1, progress=False)
        ds = load_split(str(tmp / "repo"), "standard", "train", None)
        n = len(ds)
        samples = [row["bytes"] for row in ds.select(range(min(n, args.bound_samples)))["image"]]
        mb = sum(len(row["bytes"]) for row in ds["image"]) / 1e6
        print(f"{n} PNG images of {args.size}x{args.size} ({mb:.1f} MB), "
              f"policy {args.policy} -> {args.side}x{args.side} uint8; set-up "
              f"{time.perf_counter() - t:.0f} s; torch threads {torch.get_num_threads()}, "
              f"cpus {os.cpu_count()}")
        geo = Geometry(args.side, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
        key = f"bench|{ds._fingerprint}|standard|train"
        figures: dict = {"images": n, "size": args.size, "policy": args.policy,
                         "side": args.side, "megabytes": mb}

        pil, crop_rate = decode_bound(samples, args.policy, args.side)
        figures["decode_bound_per_core"] = {"pil_decode": pil, "crop": crop_rate}
        print(f"\n(a) decode bound, one core, {len(samples)} images: PIL decode {pil:.1f} "
              f"images/s; crop() (decode + {args.policy}) {crop_rate:.1f} images/s")

        print("\n(b) first pass: decode_split into a fresh cache")
        print("workers  seconds  images/s  w x PIL/core  of it  PIL in w procs now  of it  "
              "speed-up")
        first, base = {}, None
        for w in (int(x) for x in args.workers.split(",")):
            os.environ["IAB_CACHE"] = str(tmp / f"cache{w}")
            t = time.perf_counter()
            split = decode_split(ds, key, args.policy, args.side, w, "fail", progress=False)
            secs = time.perf_counter() - t
            assert len(split.labels) == n
            r, bound, now = rate(n, secs), w * pil, parallel_decode(samples, w)
            base = base or secs
            first[w] = {"seconds": secs, "images_per_s": r, "bound": bound,
                        "parallel_pil_decode": now}
            print(f"{w:>7}  {secs:7.2f}  {r:8.1f}  {bound:12.1f}  {r / bound:5.0%}  "
                  f"{now:18.1f}  {r / now:5.0%}  {base / secs:7.2f}x")
        figures["first_pass"] = first

        t = time.perf_counter()
        split = decode_split(ds, key, args.policy, args.side, 1, "fail", progress=False)
        reopen = time.perf_counter() - t
        t = time.perf_counter()
        count = sum(len(lab) for _, lab, _ in loader(split, geo, args.batch_size,
                                                     shuffle_seed=0))
        cached = rate(count, time.perf_counter() - t)
        figures["cached_pass"] = {"reopen_seconds": reopen, "images_per_s": cached}
        print(f"\n(c) cached pass: reopen {reopen * 1e3:.0f} ms, memmap read + normalize "
              f"through loader (shuffled, batch {args.batch_size}) {cached:.0f} images/s "
              f"({cached / crop_rate:.0f}x crop() on one core)")

        torch.manual_seed(0)
        model = small_cnn(len(iab.LABELS))
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        model.train()
        dl = loader(split, geo, args.batch_size, shuffle_seed=0)

        def from_cache(epoch):
            dl.sampler.set_epoch(epoch)
            for pixels, labels, _ in dl:
                yield pixels, labels

        pixels_all = normalize(np.array(split.images), geo)  # float32, held whole
        labels_all = torch.as_tensor(split.labels)

        def from_memory(epoch):
            g = torch.Generator().manual_seed(epoch)
            order = torch.randperm(n, generator=g)
            for s in range(0, n, args.batch_size):
                idx = order[s:s + args.batch_size]
                yield pixels_all[idx], labels_all[idx]

        steps = math.ceil(n / args.batch_size)
        rates = train_rates(model, optimizer, {"memory": from_memory, "cache": from_cache},
                            args.epochs)
        memory, cache = rates["memory"], rates["cache"]
        figures["training"] = {"from_memory": memory, "from_cache": cache,
                               "ratio": cache / memory, "epochs": args.epochs,
                               "steps_per_epoch": steps}
        print(f"\n(d) training a small CNN ({sum(p.numel() for p in model.parameters()):,}"
              f" parameters), batch {args.batch_size}, {args.epochs} timed epochs of "
              f"{steps} steps after one warm-up epoch")
        print("feed                      images/s  of in-memory")
        print(f"in-memory float tensor    {memory:8.1f}  {1:11.0%}")
        print(f"cache loader (harness)    {cache:8.1f}  {cache / memory:11.0%}")
        print(f"goal: cache loader >= 80% of in-memory: "
              f"{'met' if cache >= 0.8 * memory else 'MISSED'}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return figures


if __name__ == "__main__":
    main(parse_args())
