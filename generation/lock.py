"""One generation job per output folder: an exclusive lock that names its holder.

Two jobs writing the same generator folder would make the same images twice and delete each
other's temporary files. ``FolderLock`` takes an OS lock (``flock``) on ``<folder>/job.lock``
and writes who holds it (pid, host, start time, command) into the file. The OS drops the lock
when its process ends, however it ends, so the lock of a killed job is simply taken over.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path

import imageattributionbench as iab

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

LOCK_FILE = "job.lock"


class FolderLock:
    """``with FolderLock(folder):`` holds the folder for this process, or raises a
    BenchmarkError naming the job that holds it."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK_FILE
        self._fd: int | None = None

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is None:
            warnings.warn("no fcntl on this system: the output folder is not locked; never "
                          "run two jobs on one --out", stacklevel=2)
        else:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _describe(os.read(fd, 65536))
                os.close(fd)
                raise iab.BenchmarkError(
                    f"{self.path.parent} is in use by another generation job ({holder}); "
                    "wait for it to finish, stop it, or choose another --out (two jobs on one "
                    "folder would make the same images twice)") from None
        me = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "command": " ".join(sys.argv)[:500]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock; the file stays (see flock(2) races)
            self._fd = None


def _describe(content: bytes) -> str:
    try:
        h = json.loads(content)
        return f"pid {h['pid']} on host {h['host']}, started {h['started']}: {h['command']}"
    except (ValueError, KeyError, TypeError):
        return "holder unknown: its lock file is unreadable"
