"""Training and inference images/s of each of the paper's methods at its paper size.

Each method at its paper configuration (random weights) and crop size, fed random pixels of
that size: a training step is the harness's (the method's own objective through
``harness.models.Classifier``, backward, AdamW step, loss read back); inference is the
forward pass the harness's prediction runs. ResNet-50 (the paper's fine-tuning baseline)
is included for scale. On a GPU: bf16 autocast, cudnn benchmark; on CPU: fp32.

    python benchmarks/method_throughput.py                    # here: CPU
    python benchmarks/method_throughput.py --batch-size 64    # on a GPU machine
    python benchmarks/method_throughput.py --tiny --steps 2   # the tiny variants (quick check)
    python benchmarks/method_throughput.py --official --batch-size 64  # the 13 official
                                                       # variants, inference only (scoring)
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import nullcontext
from pathlib import Path

import torch

import imageattributionbench as iab
from iab.scripts import DefaultsHelpFormatter


def build_official(name: str, tiny: bool):
    """(the official variant as the harness scores it, its input side)."""
    from transformers import AutoModelForImageClassification

    import methods  # noqa: F401
    from harness.models import Scored, label_index
    from methods.official import official_config

    config = official_config(name, tiny)
    model = AutoModelForImageClassification.from_config(config)
    side = 224 if config.input_policy == "paper_resnet" else config.crop_size
    return Scored(model, label_index(config.id2label)), side


def build(name: str, tiny: bool):
    """(module whose forward gives logits or (logits, loss), crop side)."""
    from transformers import AutoModelForImageClassification, ResNetConfig

    import methods
    from harness.models import Classifier
    from methods.init import TINY, TINY_RESNET

    if name == "resnet50":
        spec = TINY_RESNET if tiny else {}
        model = AutoModelForImageClassification.from_config(
            ResNetConfig(num_labels=len(iab.LABELS), **spec))
        return Classifier(model), 224
    if name not in methods.METHODS:
        raise iab.BenchmarkError(f"unknown method {name!r}; valid: resnet50, "
                                 f"{', '.join(methods.METHODS)}")
    config_class, model_class = methods.METHODS[name].classes()
    config = config_class(**(TINY[name] if tiny else {}))
    side = 224 if config.input_policy == "paper_resnet" else config.crop_size
    return Classifier(model_class(config)), side


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def rate(step, batch: int, warmup: int, steps: int, device) -> float:
    for _ in range(warmup):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return batch * steps / (time.perf_counter() - start)


def measure(name: str, args, device) -> dict:
    torch.manual_seed(0)
    official = getattr(args, "official", False)  # gpu_harness.py passes its own options
    model, side = (build_official if official else build)(name, args.tiny)
    model.to(device)
    pixels = torch.randn(args.batch_size, 3, side, side, device=device)
    labels = torch.randint(0, len(iab.LABELS), (args.batch_size,), device=device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    autocast = torch.autocast("cuda", torch.bfloat16) if device.type == "cuda" else nullcontext()

    def train_step():
        with autocast:
            _, loss = model(pixels, labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        loss.item()  # the harness logs every step

    @torch.no_grad()
    def infer_step():
        with autocast:
            model(pixels).float().softmax(-1).cpu()

    train = None
    if not official:  # official variants score converted checkpoints: no training
        model.train()
        train = rate(train_step, args.batch_size, args.warmup, args.steps, device)
    model.eval()
    infer = rate(infer_step, args.batch_size, args.warmup, args.steps, device)
    params = sum(p.numel() for p in model.parameters())
    return {"crop": side, "parameters": params, "train_images_per_s": train,
            "inference_images_per_s": infer}


def parse_args(argv=None) -> argparse.Namespace:
    import methods

    from methods.official import OFFICIAL

    names = ["resnet50", *methods.METHODS]
    ap = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter, description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", help=", ".join(names) + " (default: all; with --official: "
                                      + ", ".join(OFFICIAL) + ")")
    ap.add_argument("--official", action="store_true",
                    help="the official variants (methods/official), inference only")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=5, help="timed steps")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--tiny", action="store_true", help="the tiny variants instead")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    args.methods = args.methods or ",".join(OFFICIAL if args.official else names)
    return args


def main(args: argparse.Namespace) -> dict:
    from tqdm.auto import tqdm

    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    if cuda:
        torch.backends.cudnn.benchmark = True
    where = torch.cuda.get_device_name() if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"{where}, torch {torch.__version__}, {'bf16 autocast' if cuda else 'fp32'}, "
          f"batch {args.batch_size}, {args.steps} timed steps after {args.warmup}"
          + (", tiny variants" if args.tiny else ", paper sizes"))
    figures = {"device": where, "batch_size": args.batch_size, "tiny": args.tiny,
               "official": args.official, "methods": {}}
    for name in tqdm(args.methods.split(","), desc="methods", unit="method"):
        figures["methods"][name] = measure(name, args, device)
        if cuda:
            torch.cuda.empty_cache()
    print(f"\n{'method':<16} {'crop':>5} {'parameters':>12} {'train img/s':>12} "
          f"{'infer img/s':>12}")
    for name, f in figures["methods"].items():
        train = "-" if f["train_images_per_s"] is None else f"{f['train_images_per_s']:.1f}"
        print(f"{name:<16} {f['crop']:>5} {f['parameters']:>12,} {train:>12} "
              f"{f['inference_images_per_s']:>12.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return figures


if __name__ == "__main__":
    main(parse_args())
