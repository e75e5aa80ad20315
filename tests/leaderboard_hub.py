"""An offline Hub for the leaderboard's queue: olah serves reads, tests/hub_writes.py's
RecordingHub takes the writes. It holds the benchmark (a tiny build), an empty requests repo
and results repo, and a few models a user might submit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import BASE_LABELS
from helpers import tree_files
from hub_writes import RecordingHub

import imageattributionbench as iab
from harness.tiny_model import tiny_classifier

REPO_ROOT = Path(__file__).resolve().parents[1]
SPACE_TOKEN = "tok-space"  # the Space's and the backend's token: writes the queue and results
USERS = {SPACE_TOKEN: ("space-bot", ["ImageAttributionBench"]), "tok-alice": ("alice", [])}
REQUESTS = f"{iab.HUB_REPO_ID}-requests"
RESULTS = f"{iab.HUB_REPO_ID}-results"
MODEL = "alice/tiny-attributor"  # fits: benchmark labels, a license
NO_LICENSE = "alice/no-license"
WRONG_LABELS = "alice/cat-or-dog"
CARD = "---\nlicense: {}\nlibrary_name: transformers\n---\n# A tiny attributor\n"


def _model(hub: RecordingHub, tmp: Path, repo_id: str, labels, license_: str | None) -> None:
    folder = tiny_classifier(tmp / repo_id.replace("/", "--"), list(labels), seed=3)
    if license_:
        (folder / "README.md").write_text(CARD.format(license_))
    hub.put_files("model", repo_id, tree_files(folder))


def start_hub(root: Path, build: Path) -> RecordingHub:
    """The Hub with the benchmark ``build`` as the official dataset repo."""
    hub = RecordingHub(root, users=USERS).start()
    hub.put_files("dataset", iab.HUB_REPO_ID, tree_files(build), "the benchmark")
    hub.create_repo("dataset", REQUESTS)
    hub.create_repo("dataset", RESULTS)
    _model(hub, root / "models", MODEL, BASE_LABELS, "mit")
    _model(hub, root / "models", NO_LICENSE, BASE_LABELS, None)
    _model(hub, root / "models", WRONG_LABELS, ["cat", "dog"], "mit")
    return hub


def backend(hub: RecordingHub, work: Path, *args: str, fault: str | None = None,
            timeout: float = 600, wait: bool = True):
    """``python -m leaderboard.backend`` against this Hub, on the CPU, one process: its
    CompletedProcess, or with ``wait=False`` the running Popen."""
    env = hub.env(SPACE_TOKEN, OMP_NUM_THREADS="1", ACCELERATE_USE_CPU="1",
                  GRADIO_ANALYTICS_ENABLED="False")
    env.pop("IAB_FAULT", None)
    if fault:
        env["IAB_FAULT"] = fault
    cmd = [sys.executable, "-m", "leaderboard.backend", "--requests-repo", REQUESTS,
           "--results-repo", RESULTS, "--protocol", "standard", "--work-dir", str(work),
           "--accelerate-args", "--num_processes 1 --num_machines 1 --dynamo_backend no",
           *args]
    if not wait:
        return subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)

