"""The official prompt set: 10 subclasses x 1,000 captions (MIT, see prompts/NOTICE.md)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import imageattributionbench as iab


@dataclass(frozen=True)
class Prompt:
    semantic: str
    index: int
    text: str
    source_file: str  # file name of the real image the caption was made from
    imagenet_label: str | None = None

    @property
    def prompt_id(self) -> str:
        return iab.prompt_id(self.semantic, self.index)


@lru_cache(maxsize=None)
def official_prompts(semantic: str) -> tuple[Prompt, ...]:
    """The official prompts of one subclass, in file order (index = row number from 0)."""
    iab.superclass_of(semantic)  # validates the name
    text = resources.files("iab.prompt_set").joinpath(f"{semantic}.csv").read_text("utf-8")
    return tuple(
        Prompt(semantic, i, row["Caption"], row["ImgPath"].rsplit("/", 1)[-1], row.get("Label"))
        for i, row in enumerate(csv.DictReader(io.StringIO(text)))
    )


@lru_cache(maxsize=None)
def prompt_by_source_file(semantic: str) -> dict[str, Prompt]:
    """Official prompts of a subclass keyed by the real image file they were captioned from."""
    return {p.source_file: p for p in official_prompts(semantic)}


# The older caption files the paper's code also shipped (prompts/legacy/, see its NOTICE.md):
# which releases used them is decided in iab/official.py (caption_set_of).
LEGACY_FILES = {
    "celebahq": "final_captions_HumanFace_celebahq.csv",
    "COCO": "COCO_5000.csv",
    "ImageNet-1k": "imagenet-1k_5056.csv",
}
CAPTION_SETS = ("current", "legacy")


@lru_cache(maxsize=None)
def legacy_prompts(semantic: str) -> tuple[Prompt, ...]:
    """The legacy caption file of a subclass (empty where it has none), in file order.

    A legacy caption that is also an official prompt (same caption of the same real image)
    keeps the official prompt's id and index, so that both spellings of one prompt share a
    fold; the others get ids ``<semantic>/legacy:<row>`` (index = the row).
    """
    iab.superclass_of(semantic)
    name = LEGACY_FILES.get(semantic)
    if name is None:
        return ()
    text = resources.files("iab.prompt_set").joinpath("legacy", name).read_text("utf-8")
    current = {(p.source_file, p.text): p for p in official_prompts(semantic)}
    out = []
    for i, row in enumerate(csv.DictReader(io.StringIO(text))):
        src = row["ImgPath"].rsplit("/", 1)[-1]
        same = current.get((src, row["Caption"]))
        out.append(same or LegacyPrompt(semantic, i, row["Caption"], src, row.get("Label")))
    return tuple(out)


@dataclass(frozen=True)
class LegacyPrompt(Prompt):
    """A caption of a legacy file that is not an official prompt."""

    @property
    def prompt_id(self) -> str:
        return f"{self.semantic}/legacy:{self.index}"


def caption_file(semantic: str, caption_set: str) -> tuple[Prompt, ...]:
    """The prompts of one caption set of a subclass ("current" is prompts/<semantic>.csv)."""
    if caption_set not in CAPTION_SETS:
        raise iab.BenchmarkError(f"unknown caption set {caption_set!r}; valid caption sets: "
                                 + ", ".join(CAPTION_SETS))
    return official_prompts(semantic) if caption_set == "current" else legacy_prompts(semantic)


@lru_cache(maxsize=None)
def prompt_by_any_source_file(semantic: str) -> dict[str, Prompt]:
    """Prompts of both caption sets keyed by the real image they were captioned from (the
    current set wins where a file is in both)."""
    out = {p.source_file: p for p in legacy_prompts(semantic)}
    out.update(prompt_by_source_file(semantic))
    return out
