"""The iab command line, run as a user runs it."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import imageattributionbench as iab

IAB = [str(Path(sys.executable).with_name("iab"))]


def run(*args, cwd=None):
    return subprocess.run([*IAB, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def test_info_json():
    done = run("info", "--json")
    assert done.returncode == 0
    data = json.loads(done.stdout)
    assert {"labels", "semantics", "configs"} <= set(data)
    assert [lb["name"] for lb in data["labels"]] == list(iab.LABELS)
    assert [lb["id"] for lb in data["labels"]] == list(range(len(iab.LABELS)))
    assert {"name": "FFHQ", "superclass": "HumanFace"} in data["semantics"]
    sd = next(c for c in data["configs"] if c["name"] == "semantic_disjoint")
    assert sd["splits"] == ["train", "validation", "test_seen", "test"]


def test_info_text():
    done = run("info")
    assert done.returncode == 0
    assert " 0 real: real photographs" in done.stdout
    assert "HumanFace: FFHQ, celebahq" in done.stdout
    assert "standard (default): train, validation, test" in done.stdout


def test_build_and_verify(raw_dir, tmp_path):
    out = tmp_path / "repo"
    done = run("build", raw_dir, "--out", out, "--quiet")
    assert done.returncode == 0, done.stderr
    assert "built" in done.stdout and "13 configs" in done.stdout
    ok = run("verify", out)
    assert ok.returncode == 0 and ok.stdout.startswith("OK"), ok.stdout
    again = run("build", raw_dir, "--out", out, "--quiet")
    assert again.returncode == 2 and "already holds a build" in again.stderr


def test_verify_finds_tampering(built, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(built[0], repo)
    shard = next((repo / "data" / "cat" / "train").glob("*.parquet"))
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    (repo / "stray.txt").write_text("x")
    done = run("verify", repo)
    assert done.returncode == 1
    rel = shard.relative_to(repo).as_posix()
    assert f"FAIL {rel}: sha256 differs from checksums.sha256" in done.stdout
    assert "FAIL stray.txt: not listed in checksums.sha256" in done.stdout


def test_verify_finds_a_stale_card(built, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(built[0], repo)
    readme = repo / "README.md"
    readme.write_text(readme.read_text().replace("data/cat/test/*.parquet",
                                                 "data/*/test/*.parquet", 1))
    done = run("verify", repo)
    assert done.returncode == 1
    assert "config 'semantic_disjoint' split 'test_seen' selects" in done.stdout


def test_errors_are_clear_and_exit_2(tmp_path):
    done = run("build", tmp_path / "nowhere", "--out", tmp_path / "out")
    assert done.returncode == 2 and done.stderr.startswith("error: raw input")
    assert "Traceback" not in done.stderr
    done = run("import", tmp_path, "--out", tmp_path / "raw", "--generator", "SD9")
    assert done.returncode == 2 and "valid labels: real, 4o" in done.stderr
    done = run("verify", tmp_path)
    assert done.returncode == 1 and "manifest.json missing" in done.stdout


def test_help_explains_each_command():
    done = run("--help")
    for cmd in ("build", "verify", "info", "import", "demo"):
        assert cmd in done.stdout
    assert "--overwrite" in run("build", "--help").stdout
