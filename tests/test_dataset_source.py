"""--dataset: local paths are checked first (a typo is a clear error with the folders it may
have meant, not a Hub lookup), a Hub id fails fast offline or unreachable, and results record
a local build by its fingerprint, never by an absolute path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import imageattributionbench as iab
from harness.dataset_source import looks_like_path, portable_path, resolve_dataset

ROOT = Path(__file__).resolve().parents[1]


def _folder_build(path: Path, fingerprint: str = "ab" * 32) -> Path:
    path.mkdir(parents=True)
    (path / "manifest.json").write_text(json.dumps({"fingerprint": fingerprint}))
    return path


def test_a_typo_of_a_local_folder_names_the_folder_it_meant(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _folder_build(tmp_path / "demo" / "repo")
    (tmp_path / "demo" / "results").mkdir()
    assert looks_like_path("demo/rpeo") and not looks_like_path("org/name")
    with pytest.raises(iab.BenchmarkError, match=r"'demo/rpeo': the local folder does not "
                                                 r"exist; did you mean 'demo/repo'\?"):
        resolve_dataset("demo/rpeo")
    with pytest.raises(iab.BenchmarkError, match=r"'./no_such_build': the local folder does "
                                                 r"not exist; folders in '.': demo"):
        resolve_dataset("./no_such_build")
    (tmp_path / "plain").mkdir()
    with pytest.raises(iab.BenchmarkError, match="holds no manifest.json.*iab build"):
        resolve_dataset("plain")
    with pytest.raises(iab.BenchmarkError, match="--revision 'main' applies to Hub datasets"):
        resolve_dataset("demo/repo", "main")


def test_a_local_build_is_recorded_by_fingerprint_and_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _folder_build(tmp_path / "demo" / "repo", "cd" * 32)
    source = resolve_dataset(str(tmp_path / "demo" / "repo"), out_dir=tmp_path / "demo" / "out")
    assert source.record() == {"repo": "demo/repo", "revision": None, "local": True,
                               "fingerprint": "cd" * 32, "hub_copy_of": None}
    assert source.hub_target is None
    # outside the working directory and the output: the folder's name, never the path
    elsewhere = _folder_build(tmp_path.parent / f"{tmp_path.name}-x" / "build")
    assert portable_path(elsewhere, tmp_path / "out") == "build"
    assert portable_path(tmp_path / "out" / "init", tmp_path / "out") == "init"


def _cli(args, env_extra, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_ENDPOINT")}
    env.update(env_extra)
    began = time.monotonic()
    done = subprocess.run([sys.executable, str(ROOT / "harness" / "run.py"), "--model", "m",
                           *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)
    return done, time.monotonic() - began


@pytest.mark.parametrize("dataset, env, words", [
    ("demo/rpeo", {}, "did you mean 'demo/repo'?"),
    ("./no_such_build", {}, "the local folder does not exist"),
    ("someone/iab-copy", {"HF_HUB_OFFLINE": "1"}, "HF_HUB_OFFLINE=1"),
    # nothing listens on port 9: an unreachable Hub fails at once, saying what to do
    ("someone/iab-copy", {"HF_ENDPOINT": "http://127.0.0.1:9"}, "set HF_HUB_OFFLINE=1"),
])
def test_the_cli_fails_fast_with_the_reason(tmp_path, dataset, env, words):
    _folder_build(tmp_path / "demo" / "repo")
    done, seconds = _cli(["--dataset", dataset, "--output-dir", "out"],
                         {"HF_HOME": str(tmp_path / "hf"), **env}, tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert words in done.stderr and "Traceback" not in done.stderr
    assert seconds < 30  # was 29 s of retries and a traceback; here 2-6 s, before torch loads
    assert not (tmp_path / "out").exists()
