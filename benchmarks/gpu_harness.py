"""Training images/s on a GPU, fed from tensors already on the device against the harness's cache.

ResNet-50 and ViT-B/16 at 224 (random weights from transformers' ``ResNetConfig()`` and
``ViTConfig()`` defaults), bf16 autocast through ``Accelerator(mixed_precision="bf16")``. The
harness feed takes the path harness/train.py takes from the second epoch on: a ``DecodedSplit``
memory-mapped uint8 file through ``harness.predict.loader`` (memmap read + ``normalize``),
prepared by accelerate, and the same training step (loss logged every step). The cache file is
random uint8 written directly: first-pass decoding is measured by harness_throughput.py.
Goal: the cache feed at >= 80% of the in-memory feed.

    python benchmarks/gpu_harness.py                  # on a GPU machine
    python benchmarks/gpu_harness.py --smoke          # tiny configs on CPU: checks that it runs

``--methods`` (default: every method of the paper) then times each method's training step
(its own objective) and inference at its paper size, as benchmarks/method_throughput.py does.
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import imageattributionbench as iab
from harness.data import DecodedSplit, Geometry, normalize
from harness.models import Classifier
from harness.predict import loader
from iab.scripts import DefaultsHelpFormatter

MODELS = ("resnet50", "vit_b16")
SMOKE = {"images": 64, "batch_size": 8, "steps": 3, "warmup": 1, "size": 64, "workers": "0,2",
         "method_batch_size": 2}


def model_config(name: str, size: int, smoke: bool):
    """transformers config: the defaults are ResNet-50 and ViT-B/16 at 224; --smoke is tiny."""
    from transformers import ResNetConfig, ViTConfig

    labels = {"num_labels": len(iab.LABELS)}
    if name == "resnet50":
        return ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
                            **labels) if smoke else ResNetConfig(**labels)
    if name == "vit_b16":
        if smoke:
            return ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                             intermediate_size=64, image_size=size, **labels)
        return ViTConfig(image_size=size, **labels)
    raise iab.BenchmarkError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}")


def cache_split(folder: Path, n: int, side: int, num_labels: int) -> DecodedSplit:
    """A DecodedSplit over a memory-mapped uint8 file, as decode_split leaves it."""
    path = folder / "split.u8"
    images = np.memmap(path, np.uint8, "w+", shape=(n, side, side, 3))
    rng = np.random.default_rng(0)
    for s in range(0, n, 256):
        images[s:s + 256] = rng.integers(0, 256, images[s:s + 256].shape, np.uint8)
    images.flush()
    del images
    labels = rng.integers(0, num_labels, n)
    return DecodedSplit(np.memmap(path, np.uint8, "r", shape=(n, side, side, 3)), labels,
                        [""] * n, [""] * n, [""] * n, [])


def timed_steps(accelerator, model, optimizer, batches, warmup: int, steps: int) -> float:
    """Images/s of harness/train.py's training step over ``steps`` batches after ``warmup``."""
    model.train()
    count, start = 0, None
    for i, (pixels, labels) in enumerate(itertools.islice(batches, warmup + steps)):
        if i == warmup:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            start = time.perf_counter()
        with accelerator.accumulate(model):
            loss = F.cross_entropy(model(pixels).float(), labels)
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
        loss.item()  # train.py logs the loss every step (a device sync, as there)
        count += len(labels) if i >= warmup else 0
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return count / (time.perf_counter() - start)


def time_methods(args, device) -> dict:
    """Each method's training and inference images/s at its paper size (tiny with --smoke)."""
    from method_throughput import measure  # the sibling script

    opts = argparse.Namespace(batch_size=args.method_batch_size, warmup=args.warmup,
                              steps=args.steps, tiny=args.smoke)
    print(f"\nmethods at batch {args.method_batch_size}:\n"
          f"{'method':<16} {'crop':>5} {'train img/s':>12} {'infer img/s':>12}")
    out = {}
    for name in args.methods.split(","):
        try:
            f = out[name] = measure(name, opts, device)
        except torch.cuda.OutOfMemoryError:  # one method too big must not lose the rest
            out[name] = {"error": f"out of memory at batch {args.method_batch_size}"}
            print(f"{name:<16} out of memory at batch {args.method_batch_size}")
            torch.cuda.empty_cache()
            continue
        print(f"{name:<16} {f['crop']:>5} {f['train_images_per_s']:>12.1f} "
              f"{f['inference_images_per_s']:>12.1f}")
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return out


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter, description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(MODELS), help=f"some of {', '.join(MODELS)}")
    ap.add_argument("--images", type=int, default=2048, help="images in the cached split")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=30, help="timed steps per feed")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    ap.add_argument("--workers", default="0,8",
                    help="loader worker counts to try (harness/run.py uses 0)")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny configs and sizes on CPU: checks that the script runs")
    ap.add_argument("--methods", default="all",
                    help="the paper's methods to time after the feeds: all, none, or names")
    ap.add_argument("--method-batch-size", type=int, default=16,
                    help="batch for the methods (at paper sizes; DEFL and HiFi-Net run "
                         "full-resolution stages)")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    if args.methods == "all":
        import methods

        args.methods = ",".join(methods.METHODS)
    if args.smoke:
        for k, v in SMOKE.items():
            setattr(args, k, v)
    return args


def main(args: argparse.Namespace) -> dict:
    from accelerate import Accelerator
    from transformers import AutoModelForImageClassification

    cuda = torch.cuda.is_available() and not args.smoke
    if not cuda and not args.smoke:
        raise iab.BenchmarkError("no CUDA device: run on a GPU machine, or with --smoke on CPU")
    if cuda:
        torch.backends.cudnn.benchmark = True
    accelerator = Accelerator(cpu=not cuda, mixed_precision="bf16" if cuda else "no")
    device = accelerator.device
    name = torch.cuda.get_device_name() if cuda else "cpu"
    geo = Geometry(args.size, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    workers = [int(w) for w in args.workers.split(",")]
    print(f"{name}, torch {torch.__version__}, {'bf16 autocast' if cuda else 'fp32 (smoke)'}; "
          f"{args.images} cached images at {args.size}, batch {args.batch_size}, "
          f"{args.steps} timed steps after {args.warmup}")
    figures: dict = {"device": name, "images": args.images, "size": args.size,
                     "batch_size": args.batch_size, "steps": args.steps, "models": {}}
    with tempfile.TemporaryDirectory(prefix="iab-gpu-bench-") as tmp:
        split = cache_split(Path(tmp), args.images, args.size, len(iab.LABELS))
        pixels_all = normalize(np.array(split.images), geo).to(device)  # what the loader yields
        labels_all = torch.as_tensor(split.labels).to(device)

        def from_memory():
            for epoch in itertools.count():
                g = torch.Generator().manual_seed(epoch)
                order = torch.randperm(args.images, generator=g).to(device)
                for s in range(0, args.images, args.batch_size):
                    idx = order[s:s + args.batch_size]
                    yield pixels_all[idx], labels_all[idx]

        def from_cache(dl):
            for epoch in itertools.count():
                dl.set_epoch(epoch)
                for pixels, labels, _ in dl:
                    yield pixels, labels

        print("\nmodel      feed                    images/s  of in-memory")
        for model_name in args.models.split(","):
            torch.manual_seed(0)
            model = Classifier(AutoModelForImageClassification.from_config(
                model_config(model_name, args.size, args.smoke)))
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
            model, optimizer = accelerator.prepare(model, optimizer)
            rates = {"in-memory tensors": timed_steps(accelerator, model, optimizer,
                                                      from_memory(), args.warmup, args.steps)}
            for w in workers:
                dl = accelerator.prepare(loader(split, geo, args.batch_size, shuffle_seed=0,
                                                workers=w))
                rates[f"cache loader, {w} workers"] = timed_steps(
                    accelerator, model, optimizer, from_cache(dl), args.warmup, args.steps)
            base = rates["in-memory tensors"]
            for feed, r in rates.items():
                print(f"{model_name:<10} {feed:<22} {r:9.1f}  {r / base:11.0%}")
            figures["models"][model_name] = {
                "images_per_s": rates, "ratio": {k: v / base for k, v in rates.items()}}
            del model, optimizer
            accelerator.free_memory()
            if cuda:
                torch.cuda.empty_cache()
    print("goal: a cache-loader feed at >= 80% of in-memory")
    if args.json:  # the feed figures are safe before the methods run
        Path(args.json).write_text(json.dumps(figures, indent=1))
    if args.methods != "none":
        figures["methods"] = time_methods(args, device)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return figures


if __name__ == "__main__":
    main(parse_args())
