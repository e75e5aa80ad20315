"""An offline Hugging Face Hub endpoint for tests: olah serving local git repos.

olah's offline mode serves ``<mirrors>/datasets/<org>/<name>`` (a git repo with committed
files, no LFS) under the Hub's HTTP API, so ``load_dataset("<org>/<name>", ...)`` and
``revision=`` run through the real Hub client code paths.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _olah_command() -> list[str]:
    script = Path(sys.executable).with_name("olah-cli")
    return [str(script)] if script.exists() else [shutil.which("olah-cli") or "olah-cli"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=iab-tests", "-c", "user.email=tests@example.invalid",
         "-c", "commit.gpgsign=false", *args],
        cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def commit_folder(src: Path, repo: Path, message: str) -> str:
    """Make ``repo`` hold exactly ``src``'s files as a new commit; returns its sha."""
    if not (repo / ".git").exists():
        repo.mkdir(parents=True, exist_ok=True)
        git(repo, "init", "-q", "-b", "main")
    for entry in repo.iterdir():
        if entry.name != ".git":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    shutil.copytree(src, repo, dirs_exist_ok=True)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


class HubServer:
    """olah on a free loopback port; ``endpoint`` is what HF_ENDPOINT should be."""

    def __init__(self, root: Path):
        self.root = root
        self.mirrors = root / "mirrors"
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def dataset_repo(self, repo_id: str) -> Path:
        return self.mirrors / "datasets" / repo_id

    def start(self, timeout: float = 60) -> "HubServer":
        self.root.mkdir(parents=True, exist_ok=True)
        cfg = self.root / "olah.toml"
        cfg.write_text(
            "[basic]\n"
            f'host = "127.0.0.1"\nport = {self.port}\n'
            f'mirror-netloc = "127.0.0.1:{self.port}"\n'
            f'mirror-lfs-netloc = "127.0.0.1:{self.port}"\n'
            f'mirrors-path = ["{self.mirrors.as_posix()}"]\n'
            f'repos-path = "{(self.root / "repos").as_posix()}"\n'
            "[accessibility]\noffline = true\n")
        self.mirrors.mkdir(parents=True, exist_ok=True)
        log = open(self.root / "olah.log", "wb")
        self.proc = subprocess.Popen([*_olah_command(), "-c", str(cfg)], cwd=self.root,
                                     stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"olah exited: {(self.root / 'olah.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(self.endpoint, timeout=2)
                return self
            except urllib.error.HTTPError:
                return self  # answering, even if with 404 at "/"
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"olah did not start within {timeout} s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
