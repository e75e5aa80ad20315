"""Parity of the official variants with the paper's own code (not part of CI).

For each of the 13 official attributors: build it from a copy of the official repository
(mttry/ImageAttributionBench) with random weights (BatchNorm statistics randomised too), save
its state dict as the official trainer does, run the official test-time pipeline (its dataset
class's ``__getitem__`` and the attributor's ``forward(inference=True)``) on fixed images;
then convert the file with ``methods.convert_official`` and run ours (harness/data.py's
input policy, ``normalize``, the converted model) on the same image bytes; compare in fp32.

    # the official environment, in a scratch venv outside the project (about 5 GB):
    python3 -m venv /tmp/om-venv && /tmp/om-venv/bin/pip install torch==2.3.0 \\
        torchvision==0.18.0 "numpy<2" scipy scikit-learn==1.6.1 yacs opencv-python-headless \\
        torch-dct==0.1.6 transformers==4.51.3 tensorboard matplotlib albumentations==1.3.1 \\
        openai-clip ftfy regex pandas seaborn ipython pyyaml
    .venv/bin/python benchmarks/official_parity.py --official-python /tmp/om-venv/bin/python \\
        --work /tmp/parity [--methods dct,patch]

The official side runs in the official venv (benchmarks/official_side.py: torch 2.3, the
official code copied by ``git archive`` into <work>/src, never into the project); the
comparison in the project's. The official code needs a GPU and its pre-trained weights; the official side
swaps exactly these for CPU / random stand-ins and says so in the table: ``.cuda()`` and
``.to("cuda")`` become no-ops, torchvision's ``pretrained=True`` and ``clip.load`` build the
networks from their constructors, UCF's Xception weights file is skipped, CLIP-LR's
``from_pretrained`` builds a 2-layer random CLIP with ViT-H/14's widths; three modules the
official repository lacks (``debug.print_func``, ``imagenet_c``, ``MulticoreTSNE``) are stubs.
Randomness the official test loaders keep is replaced by its deterministic counterpart:
PatchCraft's random JPEG/blur/resize (10 % each) is off and its sort of equally diverse
patches stable (numpy's default sort orders them by numpy version and CPU), RepMix's random
flip + crop is the centre crop, SSP's 64 random patches are the half-overlapping grid.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

OFFICIAL_NAMES = ("resnet50", "clip_lr", "dct", "patch", "gfd", "dna", "repmix", "hifi_net",
                  "ucf", "pose", "patchcraft", "ssp", "defl")
IMAGES = ((256, 256), (640, 427), (300, 420))  # (width, height)


def image_array(i: int):
    """Fixed test image i (IMAGES): gradients, a flat patch and hashed integer noise, the same
    on every machine and numpy version (tests/test_official.py regenerates them)."""
    import numpy as np

    w, h = IMAGES[i]
    y, x = np.mgrid[0:h, 0:w].astype(np.int64)
    base = np.stack([x * 200 // w, y * 180 // h, (x + y) * 220 // (w + h)], axis=-1)
    c = np.arange(3, dtype=np.int64)
    noise = ((x[..., None] * 73856093) ^ (y[..., None] * 19349663) ^ (c * 83492791 + i)) % 41
    img = base + (noise - 20) * (x[..., None] > w // 3)
    img[: h // 4, : w // 4] = 128  # a flat region
    return np.clip(img, 0, 255).astype(np.uint8)


def make_images(folder: Path) -> list[Path]:
    from PIL import Image

    paths = []
    for i in range(len(IMAGES)):
        path = folder / f"img{i}.png"
        Image.fromarray(image_array(i)).save(path)
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------- our side

OURS = {"clip_lr": {"clip_config": {"num_hidden_layers": 2}}}
DOUBLE = ("dna", "repmix", "clip_lr")  # their evaluation's softmax-of-probabilities


def our_side(work: Path, names: list[str]) -> list[dict]:
    import numpy as np
    import torch

    import methods  # noqa: F401
    from harness.data import crop, geometry, normalize
    from methods.convert_official import convert
    from methods.official import BY_OFFICIAL_NAME
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    torch.set_num_threads(2)
    rows = []
    for name in names:
        folder = work / "official" / name
        ref = torch.load(folder / "output.pt", weights_only=True)
        out_dir = work / "converted" / name
        convert(name, folder / f"{name}_default.pth", out_dir,
                double_softmax=name in DOUBLE, **OURS.get(name, {}))
        model = AutoModelForImageClassification.from_pretrained(out_dir).eval()
        policy = model.config.input_policy
        geo = geometry(AutoImageProcessor.from_pretrained(out_dir), policy)
        batch = np.stack([crop((work / n).read_bytes(), policy, geo.size)
                          for n in ref["images"]])
        with torch.no_grad():
            ours = model(pixel_values=normalize(batch, geo)).logits.float()
        theirs = ref["output"]
        # the probabilities each evaluation computes its AUROC / AP from
        their_p = theirs if name == "patch" else torch.softmax(theirs, dim=1)
        our_p = torch.softmax(ours, dim=1)
        if name == "patch":  # ours: the log of the mean patch softmax
            ours = ours.exp()
        diff = (ours - theirs).abs().max().item()
        scale = theirs.abs().max().item()
        rows.append({"method": BY_OFFICIAL_NAME[name], "official": name,
                     "max_abs_diff": diff, "max_abs_output": scale,
                     "relative": diff / max(scale, 1e-12),
                     "max_abs_diff_probabilities": (our_p - their_p).abs().max().item(),
                     "argmax_equal": bool((ours.argmax(1) == theirs.argmax(1)).all())})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| method (official) | max abs diff, scores | max abs score | relative | "
             "max abs diff, probabilities | argmax |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['method']} ({r['official']}) | {r['max_abs_diff']:.2e} | "
                     f"{r['max_abs_output']:.3g} | {r['relative']:.1e} | "
                     f"{r['max_abs_diff_probabilities']:.1e} | "
                     f"{'same' if r['argmax_equal'] else 'DIFFERENT'} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--side", choices=("both", "ours"), default="both",
                   help="ours: compare what an earlier official run left in --work")
    p.add_argument("--official-repo", type=Path, required=True,
                   help="a git clone of mttry/ImageAttributionBench (a bare one will do)")
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "official-parity",
                   help="scratch folder: the official code's copy, the inputs, the figures")
    p.add_argument("--official-python", required=True,
                   help="the python of the official environment (docs/OFFICIAL_METHODS.md)")
    p.add_argument("--methods", default=",".join(OFFICIAL_NAMES),
                   help="official names, comma-separated")
    p.add_argument("--record-fixture", type=Path,
                   help="record the CI tests' facts of the official code to this file "
                        "(tests/fixtures/official_arch.json.gz) instead")
    args = p.parse_args()
    names = [n for n in args.methods.split(",") if n]
    src = args.work / "src"
    if not src.exists():  # a scratch copy of the official code, outside the project
        src.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(args.official_repo), "archive", "HEAD"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    side = str(Path(__file__).with_name("official_side.py"))
    if args.record_fixture:
        subprocess.run([args.official_python, side, "--work", str(args.work),
                        "--record-fixture", str(args.record_fixture.resolve())], check=True)
        return 0
    if args.side == "both":
        subprocess.run([args.official_python, side, "--work", str(args.work), "--methods",
                        ",".join(names)], check=True)
    rows = our_side(args.work, names)
    (args.work / "parity.json").write_text(json.dumps(rows, indent=1))
    print("\n" + table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
