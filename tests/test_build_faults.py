"""iab build killed at every step of the final swap, and with worker processes.

Each kill is a real SIGKILL at a named point (iab/faults.py). The in-process cases fork the
test process (no re-import: fast); one case runs the `iab` command itself.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from iab import install
from iab.build import build
from iab.demo import write_demo_raw

from helpers import tree_files

SMALL = {"train": 3, "validation": 1, "test": 1}
IAB = str(Path(sys.executable).with_name("iab"))
FOREIGN = {".git/HEAD": b"ref: refs/heads/main\n", ".gitattributes": b"*.parquet lfs\n"}


@pytest.fixture(scope="module")
def raws(tmp_path_factory):
    """Raw shards of an old build (real, SD1_5) and of the rows a new build adds (FLUX)."""
    root = tmp_path_factory.mktemp("swap")
    write_demo_raw(root / "old", labels=("real", "SD1_5"), semantics=("cat",), per_fold=SMALL)
    write_demo_raw(root / "add", labels=("FLUX",), semantics=("cat",), per_fold=SMALL)
    old = build([root / "old"], root / "ref_old", progress=False).out
    new = build([root / "old", root / "add"], root / "ref_new", progress=False).out
    return root, tree_files(old), tree_files(new)


def _build_entries(repo: Path) -> dict[str, bytes]:
    return {k: v for k, v in tree_files(repo).items() if not k.startswith(".git")}


def _old_repo(raws, tmp_path) -> Path:
    root, old, _ = raws
    repo = tmp_path / "repo"
    for rel, data in {**old, **FOREIGN}.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_bytes(data)
    return repo


def _killed_build(point: str, inputs, repo: Path, two_renames: bool = False) -> int:
    """Run build() in a forked child that SIGKILLs itself at ``point``; its exit code."""
    def child():
        os.environ["IAB_FAULT"] = point
        if two_renames:
            install.exchange = None
        build(inputs, repo, overwrite=True, progress=False)

    proc = multiprocessing.get_context("fork").Process(target=child)
    proc.start()
    proc.join(120)
    return proc.exitcode


def _siblings(repo: Path) -> list[str]:
    return sorted(p.name for p in repo.parent.iterdir() if p.name.startswith(f".{repo.name}."))


# One swap: foreign entries (.git, .gitattributes) into the staging folder, one atomic
# exchange, then the old build removed entry by entry (6 entries).
EXCHANGE_POINTS = ["build.swap.foreign:1", "build.swap.foreign:2", "build.swap.exchange",
                   "build.swap.cleanup", "build.swap.remove:1", "build.swap.remove:4",
                   "build.swap.remove:6", "build.worker"]
# The two-rename swap (systems without renameat2 RENAME_EXCHANGE).
TWO_RENAME_POINTS = ["build.swap.foreign:2", "build.swap.exchange", "build.swap.install",
                     "build.swap.cleanup", "build.swap.remove:3"]


@pytest.mark.parametrize("two_renames, point", [(False, p) for p in EXCHANGE_POINTS] +
                         [(True, p) for p in TWO_RENAME_POINTS])
def test_kill_during_overwrite_loses_nothing(raws, tmp_path, two_renames, point):
    root, old, new = raws
    repo = _old_repo(raws, tmp_path)
    inputs = [root / "old", root / "add"]
    assert _killed_build(point, inputs, repo, two_renames) == -signal.SIGKILL
    if two_renames and point == "build.swap.install":
        # between the two renames: no folder at all, the old build whole in its sibling
        assert not repo.exists()
        (retired,) = [p for p in repo.parent.iterdir() if ".repo.old-" in p.name]
        assert _build_entries(retired) == old
    else:
        state = _build_entries(repo)
        assert state == old or state == new, f"half-replaced build after a kill at {point}"
        assert state == (new if point.startswith(("build.swap.cleanup", "build.swap.remove"))
                         else old)
    assert _siblings(repo), "the kill left the staging folder behind"
    # the same command, again: it completes, keeps .git, and removes the stale siblings
    build(inputs, repo, overwrite=True, progress=False)
    assert tree_files(repo) == {**new, **FOREIGN}
    assert _siblings(repo) == []


def test_kill_of_a_first_build_then_rerun(raws, tmp_path):
    root, _, new = raws
    repo = tmp_path / "repo"
    assert _killed_build("build.swap.install", [root / "old", root / "add"], repo) == \
        -signal.SIGKILL
    assert not repo.exists() and _siblings(repo)
    build([root / "old", root / "add"], repo, progress=False)
    assert tree_files(repo) == new and _siblings(repo) == []


def test_the_iab_command_killed_at_the_exchange(raws, tmp_path):
    root, old, new = raws
    repo = _old_repo(raws, tmp_path)
    cmd = [IAB, "build", str(root / "old"), str(root / "add"), "--out", str(repo),
           "--overwrite", "--quiet"]
    killed = subprocess.run(cmd, env={**os.environ, "IAB_FAULT": "build.swap.exchange"},
                            capture_output=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL
    assert _build_entries(repo) == old and not (repo / ".git").exists()  # .git: in staging
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert tree_files(repo) == {**new, **FOREIGN} and _siblings(repo) == []


def test_a_live_build_keeps_its_staging_folder(raws, tmp_path):
    root, _, new = raws
    repo = tmp_path / "repo"
    live = tmp_path / f".repo.build-{os.getppid()}-abcd1234"  # the pid of a running process
    legacy = tmp_path / ".repo.old-k2j4x9_q"  # an older version's name, no pid: stale
    live.mkdir()
    legacy.mkdir()
    build([root / "old", root / "add"], repo, progress=False)
    assert live.is_dir() and not legacy.exists()
    shutil.rmtree(live)


def _pids_with_marker(marker: str) -> list[int]:
    """Processes whose environment carries ``marker`` (the build and its workers)."""
    found = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if marker.encode() in (p / "environ").read_bytes():
                    state = (p / "stat").read_text().rsplit(")", 1)[1].split()[0]
                    if state != "Z":
                        found.append(int(p.name))
            except OSError:
                pass
    return found


def _stopped(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] \
            == "T"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killed_parallel_build_leaves_no_workers(raws, tmp_path):
    root, _, _ = raws
    marker = f"IAB_TEST_MARK=workers-{os.getpid()}-{tmp_path.name}"
    key, value = marker.split("=")
    # each worker stops itself (SIGSTOP) at its first group: busy for ever, as a worker on a
    # big group is; then the build is killed
    env = {**os.environ, key: value, "IAB_FAULT": "build.worker:stop"}
    proc = subprocess.Popen([IAB, "build", str(root / "old"), str(root / "add"), "--out",
                             str(tmp_path / "repo"), "--num-proc", "2", "--quiet"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        workers, deadline = [], time.monotonic() + 120
        while len(workers) < 2:  # both workers have reached their first group
            assert proc.poll() is None, "the build ended before its workers started"
            assert time.monotonic() < deadline, "the workers never reached their first group"
            time.sleep(0.05)
            workers = [p for p in _pids_with_marker(marker) if p != proc.pid and _stopped(p)]
        proc.kill()
        proc.wait()
        left = _wait_gone(workers)
        assert left == [], f"workers {left} outlived the killed build"
    finally:
        for pid in _pids_with_marker(marker):
            os.kill(pid, signal.SIGKILL)


def _wait_gone(pids: list[int], seconds: float = 30) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = [p for p in pids if Path(f"/proc/{p}").exists() and not _zombie(p)]
        if not alive:
            return []
        time.sleep(0.05)
    return alive


def _zombie(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] \
            == "Z"
    except OSError:
        return True
