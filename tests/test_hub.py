"""load_dataset by Hub repo id, through an offline Hub endpoint (olah), with a pinned revision."""

import json
import os
import subprocess
import sys

import pytest

from iab.build import build
from iab.demo import write_demo_raw

from conftest import SMALL
from expected import expected_counts, raw_index
from hub_server import HubServer, commit_folder

REPO_ID = "ImageAttributionBench/ImageAttributionBench"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    server = HubServer(tmp_path_factory.mktemp("hub")).start()
    yield server
    server.stop()


# Run in a fresh interpreter, as a user would: huggingface_hub and datasets read HF_ENDPOINT
# when they are imported.
LOAD_SCRIPT = """
import json, sys
from datasets import load_dataset
import imageattributionbench as iab
repo, revision = sys.argv[1], sys.argv[2] or None
ds = load_dataset(repo, "semantic_disjoint", revision=revision)
blur = iab.load("degraded", split="blur_s5", repo=repo, revision=revision)
print(json.dumps({"splits": {k: len(v) for k, v in ds.items()},
                  "generators": sorted(set(ds["test"]["generator"])), "blur_s5": len(blur)}))
"""


def _load_via_hub(hub, tmp_path, revision=""):
    env = {**os.environ, "HF_ENDPOINT": hub.endpoint, "HF_HOME": str(tmp_path / "hf"),
           "HF_HUB_DISABLE_TELEMETRY": "1"}
    env.pop("HF_HUB_OFFLINE", None)
    env.pop("HF_DATASETS_OFFLINE", None)
    done = subprocess.run([sys.executable, "-c", LOAD_SCRIPT, REPO_ID, revision], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_load_by_repo_id_and_pinned_revision(hub, built, raw_dir, tmp_path):
    repo_dir = hub.dataset_repo(REPO_ID)
    first = commit_folder(built[0], repo_dir, "first build")
    # a second build with one more generator becomes the new main
    extra = tmp_path / "extra"
    write_demo_raw(extra, labels=("SDXL",), per_fold=SMALL)
    second_build = build([raw_dir, extra], tmp_path / "second", progress=False)
    commit_folder(second_build.out, repo_dir, "add SDXL")
    old_rows, new_rows = raw_index(raw_dir), raw_index(raw_dir) + raw_index(extra)

    latest = _load_via_hub(hub, tmp_path)
    assert latest["splits"] == expected_counts("semantic_disjoint", new_rows)
    assert "SDXL" in latest["generators"]

    pinned = _load_via_hub(hub, tmp_path, revision=first)
    assert pinned["splits"] == expected_counts("semantic_disjoint", old_rows)
    assert "SDXL" not in pinned["generators"]
    assert pinned["blur_s5"] == expected_counts("degraded", old_rows)["blur_s5"]
