"""The leaderboard Space as built by `python -m leaderboard.space`: its card's front matter,
pinned requirements from PyPI only, a folder whose code runs on its own (nothing taken from
this checkout), and a push through the recording Hub."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import yaml
from hub_writes import RecordingHub

import imageattributionbench as iab
from leaderboard import space

ROOT = Path(__file__).resolve().parents[1]


def _front_matter(text: str) -> dict:
    return yaml.safe_load(text.split("---\n")[1])


def test_the_card_configures_a_leaderboard_space(tmp_path):
    out = space.build(tmp_path / "space")
    meta = _front_matter((out / "README.md").read_text())
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    assert 0 < len(meta["short_description"]) <= 60  # the Hub's limit
    assert "leaderboard" in meta["tags"] and meta["datasets"] == [iab.HUB_REPO_ID]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pin = next(r for r in pyproject["project"]["optional-dependencies"]["leaderboard"]
               if r.startswith("gradio=="))
    assert meta["sdk_version"] == pin.split("==")[1] == version("gradio")
    # the card in the tree is the card that is pushed
    assert _front_matter((ROOT / "leaderboard" / "README.md").read_text()) == meta


def test_requirements_are_pinned_packages_from_the_index(tmp_path):
    out = space.build(tmp_path / "space")
    lines = [ln for ln in (out / "requirements.txt").read_text().splitlines()
             if ln and not ln.startswith("#")]
    assert lines and all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][\w.+-]*", ln) for ln in lines), \
        lines  # no git URL, no unpinned name, nothing to build from source
    assert {ln.split("==")[0] for ln in lines} == set(space.PACKAGES)


def test_the_space_folder_runs_on_its_own_code(tmp_path):
    out = space.build(tmp_path / "space")
    probe = ("import sys, leaderboard.app, leaderboard.ui, harness.metrics as m; m.load_metric();"
             "import app;"
             f"mods = [x.__file__ for x in list(sys.modules.values()) "
             f"if (getattr(x, '__file__', None) or '').startswith({str(ROOT)!r})"
             " and '.venv' not in x.__file__];"
             "print('OUTSIDE', mods)")
    done = subprocess.run([sys.executable, "-c", probe], cwd=out, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "OUTSIDE []" in done.stdout  # every module came from the Space folder


def test_push_uploads_the_folder(tmp_path):
    hub = RecordingHub(tmp_path / "hub", users={"tok": ("bench", ["ImageAttributionBench"])})
    hub.start()
    try:
        from huggingface_hub import HfApi

        out = space.build(tmp_path / "space")
        space.push(out, "ImageAttributionBench/leaderboard",
                   HfApi(endpoint=hub.endpoint, token="tok"))
        files = hub.files("space", "ImageAttributionBench/leaderboard")
        assert {"app.py", "README.md", "requirements.txt", "leaderboard/ui.py",
                "imageattributionbench.py"} <= set(files)
        assert not any(p.startswith("leaderboard/backend") for p in files)  # runs elsewhere
    finally:
        hub.stop()
