"""Build (and push) the leaderboard's Hugging Face Space: a folder that runs with nothing but
PyPI packages at pinned versions and this checkout's own code.

    python -m leaderboard.space build space/                  # the folder
    python -m leaderboard.space build space/ --push ORG/ImageAttributionBench-leaderboard
    python -m leaderboard.space requirements                  # rewrite leaderboard/requirements.txt

The folder holds ``app.py``, the modules the board imports (``imageattributionbench.py``,
``harness``'s results schema and metric module, ``leaderboard/``), ``requirements.txt`` and the
README whose front matter configures the Space. Nothing is installed from a git URL: the code
is pinned by the Space's own commit, the packages by ``==`` versions, the ones CI tests with.
"""

from __future__ import annotations

import argparse
import shutil
from importlib.metadata import version
from pathlib import Path

import imageattributionbench as iab
from iab.scripts import run_script

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements.txt"
# What the Space imports (tests/test_leaderboard_space.py checks the list is complete).
CODE = ["imageattributionbench.py", "harness/__init__.py", "harness/labels.py",
        "harness/metrics/__init__.py", "harness/metrics/attribution_metrics",
        "harness/model_card.py", "harness/plots.py", "harness/report.py", "harness/results.py",
        "harness/results_check.py", "harness/results_io.py", "iab/__init__.py",
        "iab/scripts.py"]
LEADERBOARD = ["__init__.py", "app.py", "charts.py", "data.py", "intake.py", "reference.py",
               "source.py", "submissions.py", "tables.py", "ui.py", "ui_submit.py", "verify.py"]
PACKAGES = ["gradio", "plotly", "pandas", "numpy", "pyarrow", "huggingface_hub", "datasets",
            "evaluate", "pyyaml"]
APP = '''"""The ImageAttributionBench leaderboard Space (built by `python -m leaderboard.space`)."""

from leaderboard.app import main, parse_args

if __name__ == "__main__":
    main(parse_args(["--host", "0.0.0.0"]))
'''


def pinned_requirements() -> str:
    """requirements.txt: every package the board imports, at the version installed here."""
    lines = [f"{name}=={version(name)}" for name in PACKAGES]
    return ("# Written by `python -m leaderboard.space requirements` from the versions CI tests\n"
            "# with; the Space installs exactly these from PyPI.\n" + "\n".join(lines) + "\n")


def drift() -> list[str]:
    """Pinned packages whose installed version differs (the Space would run other code than
    the tests here did)."""
    out = []
    for line in REQUIREMENTS.read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, pin = line.split("==")
            if version(name) != pin:
                out.append(f"{name} {pin} is pinned, {version(name)} is installed")
    return out


def front_matter() -> str:
    return f"""---
title: ImageAttributionBench Leaderboard
emoji: 🔎
colorFrom: blue
colorTo: gray
sdk: gradio
sdk_version: {version("gradio")}
python_version: "3.11"
app_file: app.py
pinned: true
license: mit
short_description: Which generator made this image? Verified scores
tags:
- leaderboard
- image-attribution
datasets:
- {iab.HUB_REPO_ID}
---
"""


def build(out: Path) -> Path:
    """Write the Space folder ``out`` (emptied first); returns it."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for rel in CODE:
        src, dest = ROOT / rel, out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest)
    (out / "leaderboard").mkdir()
    for name in LEADERBOARD:
        shutil.copy2(HERE / name, out / "leaderboard" / name)
    (out / "app.py").write_text(APP)
    (out / "requirements.txt").write_text(REQUIREMENTS.read_text())
    body = (HERE / "README.md").read_text().split("---\n", 2)[-1]
    (out / "README.md").write_text(front_matter() + body)
    return out


def push(folder: Path, space_id: str, api=None) -> str:
    """Upload the folder to the Space ``space_id`` (created if needed); returns its URL."""
    from huggingface_hub import HfApi

    api = api or HfApi()
    url = api.create_repo(space_id, repo_type="space", space_sdk="gradio", exist_ok=True)
    api.upload_folder(repo_id=space_id, repo_type="space", folder_path=str(folder),
                      commit_message="Leaderboard Space", delete_patterns=["**/*.py"])
    return str(url)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write the Space folder")
    b.add_argument("out")
    b.add_argument("--push", metavar="SPACE_ID", help="then upload it to this Space")
    sub.add_parser("requirements", help=f"rewrite {REQUIREMENTS.relative_to(ROOT)} with the "
                                        "versions installed here")
    return p.parse_args(argv)


def main(args: argparse.Namespace) -> int:
    if args.command == "requirements":
        REQUIREMENTS.write_text(pinned_requirements())
        print(f"wrote {REQUIREMENTS}")
        return 0
    for line in drift():
        print(f"note: {line}; `python -m leaderboard.space requirements` pins what is "
              "installed here")
    out = build(Path(args.out))
    print(f"wrote the Space to {out}")
    if args.push:
        print(push(out, args.push))
    return 0


if __name__ == "__main__":
    run_script(lambda: main(parse_args()))
