"""The README's main job, offline on CPU: the real pipeline, end to end, on a small scale.

Tiny random-weight versions of eight generator families (the real diffusers pipeline classes,
calibrated to one photo-like colour and PNG size: generation/tiny_calibration.py) paint official
prompts of four subclasses (the paper's task subclasses cat, bedroom, FFHQ, and COCO); each of
those prompts also gets a real image, a 64 px crop of a photograph that ships inside
scikit-image or scikit-learn (generation/real.py import_photo_crops), so `real` is in every
fold; `iab build` makes the Hub repo folder, `iab verify` checks it, and `load_dataset` loads
every config. The same code with Hub weights on GPUs makes the real benchmark.
"""

from __future__ import annotations

import csv
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
# Photographs that ship inside PyPI packages, by the subclass they stand in for: (package,
# folder, file, licence). No bedroom photograph ships in one: a scene stands in for it.
REAL_PHOTOS = {
    "cat": (("skimage", "data", "chelsea.png", "CC0, Stefan van der Walt"),),
    "FFHQ": (("skimage", "data", "astronaut.png", "public domain, NASA"),),
    "bedroom": (("sklearn", "datasets/images", "china.jpg",
                 "CC BY 2.0, danielbuechele on Flickr"),),
    "COCO": (("skimage", "data", "coffee.png", "CC0, Rachel Michetti"),
             ("sklearn", "datasets/images", "flower.jpg", "CC BY 2.0, vultilion on Flickr")),
}
PACKAGE_NAMES = {"skimage": "scikit-image", "sklearn": "scikit-learn"}
REAL_SOURCE = "demo-crop"


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


def demo_photos(semantic: str) -> list:
    """The photographs a subclass's real crops come from (``generation.real.Photo``)."""
    from generation.real import Photo

    photos = []
    for package, folder, name, licence in REAL_PHOTOS[semantic]:
        try:
            data = (resources.files(package).joinpath(folder) / name).read_bytes()
        except ModuleNotFoundError as e:
            raise iab.BenchmarkError(
                f"the demo's real photographs come from {PACKAGE_NAMES[package]}: install the "
                "demo extra (pip install -e '.[demo]' -c constraints-cpu.txt)") from e
        photos.append(Photo(name, data, PACKAGE_NAMES[package], licence))
    return photos


def add_real_crops(raw: Path, prompts_csv: Path, size: int) -> int:
    """One real crop per demo prompt, at the generated images' size and PNG size (resumable);
    returns the number of real rows written now."""
    from generation.real import import_photo_crops
    from generation.tiny_calibration import TARGET_PNG_BYTES_PER_PIXEL

    chosen = _read_prompts(prompts_csv)
    written = 0
    for semantic in DEMO_SEMANTICS:
        report = import_photo_crops(demo_photos(semantic), semantic, chosen[semantic], raw,
                                    size=size, source_name=REAL_SOURCE,
                                    match_png_bytes=TARGET_PNG_BYTES_PER_PIXEL * size * size)
        written += report.rows
    return written


def _read_prompts(path: Path) -> dict[str, list]:
    by_id = {p.prompt_id: p for s in DEMO_SEMANTICS for p in official_prompts(s)}
    chosen: dict[str, list] = {s: [] for s in DEMO_SEMANTICS}
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            chosen[row["semantic"]].append(by_id[row["prompt_id"]])
    return chosen


def make_demo_data(out: Path, num_proc: int = 1):
    """Generate (resuming), add the real crops, build, verify and load: the benchmark part of
    the demo. Returns the build report."""
    from generation import run
    from generation.tiny import TINY_RESOLUTION

    raw, repo = out / "raw", out / "repo"
    prompts = write_demo_prompts(out / "demo_prompts.csv")
    for name in DEMO_GENERATORS:
        args = run.parse_args(["--generator", name, "--tiny", "--prompts", str(prompts),
                               "--semantics", ",".join(DEMO_SEMANTICS), "--images-per-prompt",
                               "1", "--batch-size", "4", "--out", str(raw)])
        run.main(args)
    added = add_real_crops(raw, prompts, TINY_RESOLUTION)
    print(f"real: {added} photograph crops added" if added else
          "real: photograph crops already there")
    return build_verify_load(raw, repo, num_proc)


def run_demo(out: Path, num_proc: int = 1) -> None:
    started = time.perf_counter()
    repo = out / "repo"
    make_demo_data(out, num_proc)
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
