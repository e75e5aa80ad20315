"""Shared fixtures: a tiny raw benchmark written from the demo generator, and its build."""

from __future__ import annotations

import os
import tempfile

# Tests never touch the user's Hugging Face cache, and never report telemetry.
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="iab-test-hf-")
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

import pytest  # noqa: E402

from iab.build import build  # noqa: E402
from iab.demo import write_demo_raw  # noqa: E402

SMALL = {"train": 3, "validation": 1, "test": 1}
BASE_LABELS = ("real", "SD1_5", "FLUX", "dalle3", "Z-Image-Turbo")


@pytest.fixture(scope="session")
def raw_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("raw")
    write_demo_raw(d, labels=BASE_LABELS, per_fold=SMALL)
    return d


@pytest.fixture(scope="session")
def built(raw_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("built") / "repo"
    report = build([raw_dir], out, progress=False)
    return out, report


# A tiny benchmark made by the tiny generators: the harness and method tests train on it.
TINY_GENERATORS = ("SD1_5", "FLUX", "PIXART", "Z-Image-Turbo")
TINY_SEMANTICS = ("cat", "bedroom")
# Prompts per fold and subclass. Six test prompts give 48 test images: enough that a learning
# check can ask for a binomial tail below 1e-3 against chance, not a threshold that one CPU's
# numerics happen to clear (tests/helpers.py: assert_above_chance).
TINY_FOLDS = {"train": 12, "validation": 3, "test": 6}


@pytest.fixture(scope="session")
def tiny_bench(tmp_path_factory):
    """4 tiny generators x 2 subclasses x 21 prompts (TINY_FOLDS), built into a repo folder."""
    from generation import run as generation_run
    from iab.demo import demo_prompt_indices
    from iab.prompts import official_prompts

    root = tmp_path_factory.mktemp("tiny_bench")
    prompts = root / "prompts.csv"
    lines = ["prompt_id,semantic,prompt"]
    for s in TINY_SEMANTICS:
        for i in demo_prompt_indices(s, TINY_FOLDS):
            p = official_prompts(s)[i]
            lines.append(f'{p.prompt_id},{s},"{p.text}"')
    prompts.write_text("\n".join(lines) + "\n")
    for g in TINY_GENERATORS:
        generation_run.main(generation_run.parse_args(
            ["--generator", g, "--tiny", "--prompts", str(prompts), "--semantics",
             ",".join(TINY_SEMANTICS), "--images-per-prompt", "1", "--out", str(root / "raw")]))
    return build([root / "raw"], root / "repo", progress=False).out


@pytest.fixture(scope="session")
def classifier(tmp_path_factory):
    from harness.tiny_model import tiny_classifier

    return tiny_classifier(tmp_path_factory.mktemp("model"))
