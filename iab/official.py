"""Facts of the paper's official code (mttry/ImageAttributionBench, MIT) that imports and the
paper_exact configs depend on: folder names, file names, which caption file a release's images
came from, and which images its loader selects.

Each fact names the official file it comes from; the code itself is not copied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

import imageattributionbench as iab
from iab import prompts

# Model folders of the official releases (download.py's ALL_MODEL_CLASSES; the 2026 folders are
# gen_image_one.py's model names: SDModel.py's enum names and the OpenAI-compatible API names).
OFFICIAL_FOLDERS: dict[str, str] = {
    **{name: name for name in (
        "4o", "CogView3_PLUS", "FLUX", "KANDINSKY", "PIXART", "PLAYGROUND_2_5", "SD1_5",
        "SD2_1", "SD3", "SD3_5", "SDXL", "dalle3", "gemini", "grok3", "hidream", "hunyuan",
        "ideogram", "infinity", "janus-pro", "kling", "mid-5.2", "mid-6.0", "real")},
    "Z_IMAGE": "Z-Image-Turbo",
    "FLUX2_KLEIN": "FLUX.2-klein-4B",
    "COGVIEW4": "CogView4-6B",
    "GLM_IMAGE": "GLM-Image",
    "NEXTSTEP": "NextStep-1.1",
    "gpt-image-1": "gpt-image-1",
    "gemini-2.5-flash-image": "Gemini-2.5-Flash-Image",
    "gpt-image-1.5": "gpt-image-1.5",
    "doubao-seedream-3.0-t2i": "Seedream-3.0",
    "doubao-seedream-5.0-lite": "Seedream-5.0-lite",
    "gemini-3-pro-image": "Gemini-3-Pro-Image",
}
FOLDER_OF_LABEL: dict[str, str] = {label: folder for folder, label in OFFICIAL_FOLDERS.items()}

# dataset/ImageAttributionDataset/dataset.py: the loader's classes in its id order (model_class_
# to_label: 4o = 0 ... real = 22) and subclasses in its order with their folders.
LOADER_LABELS: tuple[str, ...] = (
    "4o", "CogView3_PLUS", "FLUX", "KANDINSKY", "PIXART", "PLAYGROUND_2_5", "SD1_5", "SD2_1",
    "SD3", "SD3_5", "SDXL", "dalle3", "gemini", "grok3", "hidream", "hunyuan", "ideogram",
    "infinity", "janus-pro", "kling", "mid-5.2", "mid-6.0", "real")
LOADER_SEMANTICS: dict[str, str] = {
    "cat": "AnimalFace/cat", "dog": "AnimalFace/dog", "wild": "AnimalFace/wild", "COCO": "COCO",
    "FFHQ": "HumanFace/FFHQ", "celebahq": "HumanFace/celebahq", "ImageNet-1k": "ImageNet-1k",
    "bedroom": "Scene/bedroom", "church": "Scene/church", "classroom": "Scene/classroom"}
PER_FOLDER = 2000  # num_images_per_semantic_per_class (train.py / test.py default)
MAX_PROMPT = 1000  # p_val < 1000
IMAGE_INDICES = {"mid-5.2": (0, 1, 2, 3), "mid-6.0": (0, 1, 2, 3)}  # others: (0, 1)
GENERATED_SUFFIXES = (".png",)
REAL_SUFFIXES = (".png", ".jpg", ".jpeg")
PROMPT_RE = re.compile(r"_p(\d+)_i(\d+)")  # dataset.py's pattern (searched, not anchored)

# File-name stems the generation loop writes (gen_image_one.py, 2026: "<base>_p<k>_i<j>.png").
BASE_NAMES: dict[str, str] = {
    "cat": "AnimalFace_cat", "dog": "AnimalFace_dog", "wild": "AnimalFace_wild",
    "COCO": "COCO-new", "FFHQ": "HumanFace_FFHQ", "celebahq": "HumanFace_celebahq",
    "ImageNet-1k": "ImageNet-1k", "bedroom": "Scene_LSUN_bedroom",
    "church": "Scene_LSUN_church", "classroom": "Scene_LSUN_classroom"}
# Stems that name the older caption files (final_captions*/COCO.csv and imagenet-1k.csv, both
# skipped by the 2026 loop); imagenet-1k-new and ImageNet-1k (2026's rename) name the current one.
LEGACY_BASES = {"COCO": "COCO", "imagenet-1k": "ImageNet-1k"}


def release_path(label: str, semantic: str, filename: str) -> str:
    """Where an image lives in the official tree (download.py's routing): the same for a tree,
    a Dataverse zip and a Hub parquet release, so rows from any form are identical."""
    folder = FOLDER_OF_LABEL.get(label, label)
    return f"{folder}/{LOADER_SEMANTICS[semantic]}/{PurePosixPath(filename).name}"


@dataclass(frozen=True)
class Link:
    """What an imported file name says about its prompt."""

    prompt_id: str
    image_index: int
    text: str | None
    caption_set: str | None  # "current", "legacy", or None when not linked


def caption_set_of(label: str, semantic: str, base: str) -> str:
    """Which caption file a generated ``<base>_p<k>_i<j>`` file was made from.

    - COCO and ImageNet-1k: the stem says it (``COCO``/``imagenet-1k``: the older 5,000-row
      files; ``COCO-new``, ``imagenet-1k-new``, ``ImageNet-1k``: the current 1,000 prompts).
    - celebahq: the 2025 code (the paper's 22 generators) read ``final_captions``, whose
      celebahq file is the legacy one (its real images are ``/home/final_dataset/real/...
      /04775.png``, the 2025 tree); the 2026 code (the newer generators) reads
      ``final_captions_new``, the current one. Both spell the stem ``HumanFace_celebahq``.
    - every other subclass: one caption file, identical in both folders.
    """
    if semantic in LEGACY_BASES.values():
        return "legacy" if LEGACY_BASES.get(base) == semantic else "current"
    if semantic == "celebahq":
        g = iab.GENERATOR_BY_NAME.get(label)
        return "legacy" if g is not None and g.in_paper else "current"
    return "current"


def link(label: str, semantic: str, filename: str) -> Link:
    """The prompt of an imported image from its file name; unlinked names get
    ``<semantic>/src:<file name>``. Real images are linked by the file they were captioned
    from (in either caption set)."""
    name = PurePosixPath(filename).name
    if label == iab.REAL:
        p = prompts.prompt_by_any_source_file(semantic).get(name)
        if p is not None:
            kind = "legacy" if isinstance(p, prompts.LegacyPrompt) else "current"
            return Link(p.prompt_id, 0, p.text, kind)
        return Link(iab.source_prompt_id(semantic, name), 0, None, None)
    m = PROMPT_RE.search(name)
    if m:
        index, image_index = int(m[1]), int(m[2])
        kind = caption_set_of(label, semantic, name[:m.start()])
        file = prompts.caption_file(semantic, kind)
        if kind == "legacy" and not file:
            kind, file = "current", prompts.official_prompts(semantic)
        if index < len(file):
            return Link(file[index].prompt_id, image_index, file[index].text, kind)
        return Link(iab.prompt_id(semantic, index) if kind == "current" else
                    f"{semantic}/legacy:{index}", image_index, None, kind)
    return Link(iab.source_prompt_id(semantic, name), 0, None, None)


def generated_file_name(semantic: str, prompt_id: str, image_index: int) -> str | None:
    """The name the official generation loop gives an image of an official prompt."""
    sem, _, index = prompt_id.partition("/")
    if sem != semantic or not index.isdigit():
        return None
    return f"{BASE_NAMES[semantic]}_p{int(index)}_i{image_index}.png"


def official_name(row: dict) -> str | None:
    """A row's file name in the official tree: the imported file's own name, else the name the
    official generation loop would give it (None where it has none)."""
    image = row.get("image")
    path = image.get("path") if isinstance(image, dict) else row.get("image_path")
    if path:
        return PurePosixPath(path).name
    if row["generator"] == iab.REAL:
        return None
    return generated_file_name(row["semantic"], row["prompt_id"], row["image_index"])


def loader_selects(label: str, names: list[str], per_folder: int = PER_FOLDER) -> list[str]:
    """The file names of one (label, subclass) folder that the official loader keeps, in its
    order (dataset.py ``_make_dataset``): sorted names; generators ``.png`` only with
    ``_p<k>_i<j>``, k < 1000, j in (0, 1) (Midjourney 0..3); real ``.png``/``.jpg``/``.jpeg``;
    the first ``per_folder`` (2,000) kept files. Labels the loader does not know: none."""
    if label not in LOADER_LABELS:
        return []
    kept: list[str] = []
    for name in sorted(names):
        if len(kept) >= per_folder:
            break
        lower = name.lower()
        if label == iab.REAL:
            if lower.endswith(REAL_SUFFIXES):
                kept.append(name)
            continue
        if not lower.endswith(GENERATED_SUFFIXES):
            continue
        m = PROMPT_RE.search(name)
        if m and int(m[1]) < MAX_PROMPT and int(m[2]) in IMAGE_INDICES.get(label, (0, 1)):
            kept.append(name)
    return kept
