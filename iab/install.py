"""Putting a finished build in place, so that a kill at any moment loses nothing.

``iab build`` writes into a staging folder beside the output (``.REPO.build-<pid>-*``) and
then swaps it with the output folder. On Linux the swap is one ``renameat2(RENAME_EXCHANGE)``:
at every instant ``REPO`` holds the complete old build or the complete new one. Elsewhere it is
two renames (``REPO`` -> ``.REPO.old-<pid>-*``, staging -> ``REPO``); a kill between them leaves
no ``REPO``, and the next run puts the old build back. Entries that are not the build's own
(a clone's ``.git``) move into the staging folder just before the swap.

``clean_stale`` undoes whatever a killed run left: it runs first in every build, restores
``REPO`` and its foreign entries where a kill left them in a sibling, and removes the stale
siblings (those whose pid is no longer running; a live build's are left alone).
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import secrets
import shutil
import sys
from pathlib import Path

from iab.faults import fault_point
from iab.procs import pid_alive

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _renameat2_exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux >= 3.15); False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                   ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # a file system (or kernel) without RENAME_EXCHANGE
    raise OSError(err, f"renameat2({a}, {b}, RENAME_EXCHANGE): {os.strerror(err)}")


# Replaced by None in tests to run the two-rename path; None elsewhere than Linux.
exchange = _renameat2_exchange if sys.platform.startswith("linux") else None


def _sibling_re(out: Path) -> re.Pattern:
    return re.compile(rf"^\.{re.escape(out.name)}\.(build|old)-(?:(\d+)-)?.*$")


def _sibling(out: Path, kind: str) -> Path:
    return out.parent / f".{out.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}"


def staging_folder(out: Path) -> Path:
    """A new, empty staging folder beside ``out``, named after this process. It becomes
    ``out`` itself, so it gets the permissions a new folder gets (not mkdtemp's 0700)."""
    path = _sibling(out, "build")
    path.mkdir()
    return path


def _stale_siblings(out: Path) -> list[tuple[str, Path]]:
    """(kind, path) of every sibling a build left whose process is gone; a sibling without a
    pid in its name comes from an older version of this tool and is stale too."""
    pattern, found = _sibling_re(out), []
    if not out.parent.is_dir():
        return found
    for p in sorted(out.parent.iterdir()):
        m = pattern.match(p.name)
        if m and p.is_dir() and not (m.group(2) and pid_alive(int(m.group(2)))):
            found.append((m.group(1), p))
    return found


def clean_stale(out: Path, foreign_ok: tuple[str, ...]) -> list[Path]:
    """Recover from a killed build: put a missing ``out`` back from its retired copy, give
    ``out`` back the foreign entries a kill left in a sibling, remove stale siblings."""
    stale = _stale_siblings(out)
    if not out.exists():
        old = [p for kind, p in stale if kind == "old"]
        if old:  # killed between the two renames of the fallback swap: roll back
            os.replace(old[-1], out)
            stale = [(k, p) for k, p in stale if p != old[-1]]
    for _, p in stale:
        for name in foreign_ok:
            if (p / name).exists() and out.is_dir() and not (out / name).exists():
                os.replace(p / name, out / name)
    for _, p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return [p for _, p in stale]


def _remove(folder: Path) -> None:
    """Delete a retired build entry by entry (each a named kill point for the tests)."""
    for entry in sorted(folder.iterdir()):
        fault_point("build.swap.remove")
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    folder.rmdir()


def install(staging: Path, out: Path, foreign_ok: tuple[str, ...]) -> None:
    """Swap the finished build in ``staging`` into ``out`` (new, empty, or an earlier build).

    Foreign entries of ``out`` (``foreign_ok``) are kept. A kill at any point leaves ``out``
    with the complete old or the complete new build (see the module docstring).
    """
    if not out.exists():
        fault_point("build.swap.install")
        os.replace(staging, out)  # one rename: atomic
        return
    os.chmod(staging, out.stat().st_mode & 0o7777)  # the folder keeps its permissions
    moved = []
    try:
        for name in foreign_ok:
            if (out / name).exists() or (out / name).is_symlink():
                fault_point("build.swap.foreign")
                os.replace(out / name, staging / name)
                moved.append(name)
        fault_point("build.swap.exchange")
        swapped = exchange is not None and exchange(staging, out)
    except BaseException:  # nothing swapped yet: the foreign entries go back
        for name in moved:
            os.replace(staging / name, out / name)
        raise
    if swapped:
        retired = staging  # the staging folder's name now holds the old build
    else:
        retired = _sibling(out, "old")
        os.replace(out, retired)
        try:
            fault_point("build.swap.install")
            os.replace(staging, out)
        except BaseException:
            os.replace(retired, out)
            raise
    fault_point("build.swap.cleanup")
    _remove(retired)
