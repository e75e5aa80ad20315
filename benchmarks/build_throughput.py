"""How fast `iab build` turns raw shards into the Hub repo layout, and how it scales.

Writes synthetic raw shards (PNG, one label per generator, official prompt ids so that about
10% of rows fall in the test fold and get the six degradations), then times `build` with 1..N
worker processes. Prints images/s overall, and the two costs that make it up: the byte copy
with its integrity checks (every image), and decode + six degradations (test fold only).

    python benchmarks/build_throughput.py --images 400 --size 512 --procs 1,2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import imageattributionbench as iab
from iab import shards
from iab.build import build
from iab.demo import synthetic_image
from iab.prompts import official_prompts
from iab.scripts import DefaultsHelpFormatter

LABELS = ("SD1_5", "SDXL", "FLUX", "PIXART")


def write_raw(root: Path, n_images: int, size: int) -> tuple[list[bytes], int]:
    """Raw shards laid out as generation writes them: <label>/<semantic>/0-00000.parquet."""
    per_cell = max(1, n_images // (len(LABELS) * len(iab.SEMANTICS)))
    samples, n_test = [], 0
    for label in LABELS:
        for semantic in iab.SEMANTICS:
            rows = []
            for p in official_prompts(semantic)[:per_cell]:
                data = synthetic_image(label, p.prompt_id, 0, size=size)
                rows.append(shards.make_row(data, label, semantic, p.prompt_id, prompt=p.text))
                n_test += iab.fold_of(p.prompt_id) == "test"
                samples.append(data)
            shards.write_shard(shards.rows_to_table(rows),
                               root / label / semantic / "0-00000.parquet")
    return samples, n_test


def time_it(fn, *args) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter, description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=400)
    ap.add_argument("--size", type=int, default=512, help="square image side in pixels")
    ap.add_argument("--procs", default="1,2", help="comma-separated worker counts")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw"
        samples, n_test = write_raw(raw, args.images, args.size)
        n = len(samples)
        mb = sum(map(len, samples)) / 1e6
        print(f"{n} PNG images of {args.size}x{args.size} ({mb:.1f} MB), {n_test} in the test "
              "fold (decoded and degraded six ways)")
        k = min(20, n)
        check = time_it(lambda: [shards.inspect_image(s, "bench") for s in samples[:k]]) / k
        degrade = time_it(lambda: [iab.degrade_all(s) for s in samples[:k]]) / k
        print(f"per image, one core: integrity check {check * 1e3:.1f} ms, decode + 6 "
              f"degradations {degrade * 1e3:.1f} ms")
        print(f"bound on one core if only checks and test-fold degradations cost: "
              f"{n / (n * check + n_test * degrade):.0f} images/s")
        print("\nprocs  seconds  images/s  speed-up")
        base = None
        for p in (int(x) for x in args.procs.split(",")):
            out = Path(tmp) / f"out{p}"
            secs = time_it(lambda: build([raw], out, num_proc=p, progress=False))
            base = base or secs
            print(f"{p:>5}  {secs:7.2f}  {n / secs:8.1f}  {base / secs:8.2f}x")


if __name__ == "__main__":
    main()
