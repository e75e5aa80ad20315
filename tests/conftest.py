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
