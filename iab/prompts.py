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
