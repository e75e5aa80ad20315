"""Process bookkeeping shared by the tools: is a pid alive, and worker processes that die with
their parent (a killed ``iab build --num-proc N`` or harness decode leaves no workers behind).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this machine (a zombie counts as gone)."""
    if pid <= 0:
        return False
    if os.name != "posix":  # os.kill(pid, 0) would terminate it on Windows: assume alive
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    try:  # Linux: a killed child not yet reaped by its parent is a zombie, i.e. dead
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def die_with_parent(parent_pid: int) -> None:
    """Make this (worker) process die when ``parent_pid`` does: a ProcessPoolExecutor
    initializer. Linux: the kernel sends SIGKILL (PR_SET_PDEATHSIG); elsewhere a daemon thread
    watches the parent pid once a second."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                if os.getppid() != parent_pid:  # the parent died before prctl took effect
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid or not pid_alive(parent_pid):
                os._exit(1)
            time.sleep(1.0)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()
