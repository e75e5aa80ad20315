"""Peak memory of ``--streaming`` evaluation as the split grows: it should stay flat.

Builds two local benchmark folders whose standard test split holds N and 4N images of SxS,
then runs ``harness.predict.predict_stream`` over
``harness.data.load_split(folder, "standard", "test", None, streaming=True)`` in a fresh
subprocess per size (and once over a single batch, the fixed cost of imports and the model),
and prints the peak RSS (``ru_maxrss``) of each and the 4N / N ratio. Goal: within 10%.

    python benchmarks/streaming_memory.py --images 200 --size 256
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import imageattributionbench as iab
from iab import shards
from iab.demo import demo_prompt_indices, synthetic_image
from iab.prompts import official_prompts
from iab.scripts import DefaultsHelpFormatter

LABELS = ("SD1_5", "SDXL", "FLUX", "PIXART")


def write_raw(root: Path, n_test: int, size: int) -> int:
    """Raw shards with ``n_test`` test-fold rows (spread over labels and subclasses), plus one
    train and one validation row per label so that the standard config has every split.
    Returns the number of test rows written."""
    cells = [(label, semantic) for label in LABELS for semantic in iab.SEMANTICS]
    per_cell, extra = divmod(n_test, len(cells))
    n = 0
    for k, (label, semantic) in enumerate(cells):
        quota = {"test": per_cell + (k < extra)}
        if semantic == iab.SEMANTICS[0]:
            quota.update(train=1, validation=1)
        prompts = official_prompts(semantic)
        rows = []
        for i in demo_prompt_indices(semantic, quota):
            p = prompts[i]
            rows.append(shards.make_row(synthetic_image(label, p.prompt_id, 0, size=size),
                                        label, semantic, p.prompt_id, prompt=p.text))
            n += iab.fold_of(p.prompt_id) == "test"
        if rows:
            shards.write_shard(shards.rows_to_table(rows),
                               root / label / semantic / "0-00000.parquet")
    return n


def child(args: argparse.Namespace) -> None:
    """One streaming evaluation; prints its figures as a JSON line."""
    import torch
    from accelerate import Accelerator
    from transformers import AutoModelForImageClassification, ResNetConfig

    from harness.data import Geometry, load_split
    from harness.models import Classifier
    from harness.predict import predict_stream

    torch.manual_seed(0)
    accelerator = Accelerator(cpu=True)
    cfg = ResNetConfig(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1],
                       layer_type="basic", num_labels=len(iab.LABELS))
    model = Classifier(AutoModelForImageClassification.from_config(cfg))
    geo = Geometry(args.side, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    ds = load_split(args.child, "standard", "test", None, streaming=True)
    if args.limit:
        ds = ds.take(args.limit)
    t = time.perf_counter()
    pred = predict_stream(accelerator, model, ds, "native_crop", geo, args.batch_size, "fail")
    print(json.dumps({"n": len(pred.labels), "seconds": time.perf_counter() - t,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def run_child(folder: Path, args: argparse.Namespace, env: dict, limit: int = 0) -> dict:
    cmd = [sys.executable, __file__, "--child", str(folder), "--side", str(args.side),
           "--batch-size", str(args.batch_size), "--limit", str(limit)]
    done = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True)
    if done.returncode:
        raise iab.BenchmarkError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter, description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=200, help="N: test images in the smaller "
                    "folder (the larger holds 4N)")
    ap.add_argument("--size", type=int, default=256, help="square image side in pixels")
    ap.add_argument("--side", type=int, default=224, help="crop side the model takes")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--num-proc", type=int, default=os.cpu_count() or 1,
                    help="build workers")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    ap.add_argument("--child", help=argparse.SUPPRESS)  # internal: one measured evaluation
    ap.add_argument("--limit", type=int, default=0, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(args: argparse.Namespace) -> dict:
    from iab.build import build

    with tempfile.TemporaryDirectory(prefix="iab-stream-bench-") as tmp:
        tmp = Path(tmp)
        # nothing in the user's caches; streaming a local folder needs no network
        env = {**os.environ, "HF_HOME": str(tmp / "hf"), "HF_HUB_OFFLINE": "1",
               "TQDM_DISABLE": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}
        runs = {}
        for label, n in (("N", args.images), ("4N", 4 * args.images)):
            t = time.perf_counter()
            written = write_raw(tmp / f"raw{n}", n, args.size)
            build([tmp / f"raw{n}"], tmp / f"repo{n}", num_proc=args.num_proc, progress=False)
            test = (tmp / f"repo{n}" / "data").glob("*/test/*.parquet")
            mb = sum(f.stat().st_size for f in test) / 1e6
            print(f"built {label}: {written} test images of {args.size}x{args.size} "
                  f"(~{mb:.0f} MB of test shards) in {time.perf_counter() - t:.0f} s")
            runs[label] = run_child(tmp / f"repo{n}", args, env)
            if label == "N":
                runs["one batch"] = run_child(tmp / f"repo{n}", args, env,
                                              limit=args.batch_size)
    base = runs["one batch"]["peak_rss_mb"]
    print("\nrun        images  seconds  peak RSS MB  above one batch")
    for label in ("one batch", "N", "4N"):
        r = runs[label]
        print(f"{label:<9}  {r['n']:6d}  {r['seconds']:7.1f}  {r['peak_rss_mb']:11.0f}  "
              f"{r['peak_rss_mb'] - base:15.0f}")
    ratio = runs["4N"]["peak_rss_mb"] / runs["N"]["peak_rss_mb"]
    held = 3 * args.images * args.side ** 2 * 3 / 2**20
    print(f"(holding the 3N extra images' {args.side}x{args.side} uint8 crops alone would add "
          f"{held:.0f} MB to the 4N peak)")
    print(f"peak RSS 4N / N: {ratio:.3f} (goal <= 1.10: {'met' if ratio <= 1.10 else 'MISSED'})")
    figures = {"size": args.size, "side": args.side, "batch_size": args.batch_size,
               "runs": runs, "ratio": ratio}
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return figures


if __name__ == "__main__":
    a = parse_args()
    child(a) if a.child else main(a)
