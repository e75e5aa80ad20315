"""The README's main job, offline on CPU: the real pipeline, end to end, on a small scale.

Tiny random-weight versions of eight generator families (the real diffusers pipeline classes)
paint official prompts of four subclasses (the paper's task subclasses cat, bedroom, FFHQ, and
COCO); real photographs come from scikit-image's sample
images; `iab build` makes the Hub repo folder, `iab verify` checks it, and `load_dataset` loads
every config. The same code with Hub weights on GPUs makes the real benchmark.
"""

from __future__ import annotations

import csv
import shutil
import time
from importlib import resources
from pathlib import Path

import imageattributionbench as iab
from iab.demo import build_verify_load, demo_prompt_indices
from iab.prompts import official_prompts

DEMO_GENERATORS = ("SD1_5", "SDXL", "PIXART", "FLUX", "SD3", "Z-Image-Turbo",
                   "FLUX.2-klein-4B", "CogView4-6B")
# The paper's three semantic tasks train on cat, bedroom and FFHQ; COCO adds a fourth subclass.
DEMO_SEMANTICS = ("cat", "bedroom", "FFHQ", "COCO")
PER_FOLD = {"train": 8, "validation": 2, "test": 2}
# Photographs shipped inside scikit-image, by the subclass they look like.
REAL_PHOTOS = {
    "cat": ("chelsea.png",),
    "COCO": ("coffee.png", "motorcycle_left.png", "motorcycle_right.png"),
    "FFHQ": ("astronaut.png",),
}


def write_demo_prompts(path: Path) -> Path:
    """The official prompts the demo uses (each fold represented), with their official ids."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["prompt_id", "semantic", "prompt"])
        for s in DEMO_SEMANTICS:
            prompts = official_prompts(s)
            for i in demo_prompt_indices(s, PER_FOLD):
                w.writerow([prompts[i].prompt_id, s, prompts[i].text])
    return path


def copy_real_photos(dest: Path) -> dict[str, Path]:
    """scikit-image's sample photographs as files (their bytes untouched), one folder each."""
    try:
        data = resources.files("skimage") / "data"
    except ModuleNotFoundError as e:
        raise iab.BenchmarkError("the demo's real photographs come from scikit-image: install "
                                 "the demo extra (pip install -e '.[demo]')") from e
    folders = {}
    for semantic, names in REAL_PHOTOS.items():
        folder = dest / semantic
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            (folder / name).write_bytes((data / name).read_bytes())
        folders[semantic] = folder
    return folders


def run_demo(out: Path, num_proc: int = 1) -> None:
    from generation import run
    from generation.real import import_real

    started = time.perf_counter()
    raw, repo = out / "raw", out / "repo"
    prompts = write_demo_prompts(out / "demo_prompts.csv")
    for name in DEMO_GENERATORS:
        args = run.parse_args(["--generator", name, "--tiny", "--prompts", str(prompts),
                               "--semantics", ",".join(DEMO_SEMANTICS), "--images-per-prompt",
                               "1", "--batch-size", "4", "--out", str(raw)])
        run.main(args)
    photos = out / "real_photos"
    if photos.exists():
        shutil.rmtree(photos)
    for semantic, folder in copy_real_photos(photos).items():
        import_real(str(folder), semantic, raw, source_name="scikit-image")
    build_verify_load(raw, repo, num_proc)
    test = iab.load("standard", split="test", repo=str(repo))
    labels = test.features["label"]
    print("\nstandard/test labels: " + ", ".join(
        f"{labels.int2str(i)} {n}" for i, n in sorted(_count(test["label"]).items())))
    print(f"\ndone in {time.perf_counter() - started:.0f} s. The dataset card is "
          f"{repo / 'README.md'}; publish with `python generation/publish.py {repo} "
          "--repo-id ORG/NAME --dry-run`.")


def _count(values) -> dict:
    counts: dict = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return counts
