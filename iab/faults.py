"""Named fault-injection points, for tests that kill a job at an exact moment.

A job calls ``fault_point("build.swap.2")`` where a kill would be interesting; nothing happens
unless the environment variable ``IAB_FAULT`` names that point:

    IAB_FAULT=build.swap.2            # SIGKILL this process when it reaches that point
    IAB_FAULT=build.swap.2:segv       # die by SIGSEGV instead (a crashing native kernel)
    IAB_FAULT=api.answer:3            # the third time the point is reached, not the first
    IAB_FAULT=build.worker:stop       # SIGSTOP: the process hangs there (a busy worker)

Kill tests then need no sleeps and no timing: the same point is hit on every machine.
"""

from __future__ import annotations

import os
import signal

_hits: dict[str, int] = {}
SIGNALS = {"kill": signal.SIGKILL, "segv": signal.SIGSEGV, "term": signal.SIGTERM,
           "stop": signal.SIGSTOP}


def _wanted() -> tuple[str, int, int] | None:
    spec = os.environ.get("IAB_FAULT")
    if not spec:
        return None
    name, _, rest = spec.partition(":")
    sig, nth = signal.SIGKILL, 1
    for part in filter(None, rest.split(":")):
        if part.isdigit():
            nth = int(part)
        elif part in SIGNALS:
            sig = SIGNALS[part]
        else:
            raise ValueError(f"IAB_FAULT={spec!r}: {part!r} is neither a count nor one of "
                             f"{', '.join(SIGNALS)}")
    return name, int(sig), nth


def fault_point(name: str) -> None:
    """Die here if ``IAB_FAULT`` names this point (and this is the wanted hit)."""
    wanted = _wanted()
    if wanted is None or wanted[0] != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] == wanted[2]:
        if wanted[1] == signal.SIGSEGV:  # as a native crash does: no handler, no cleanup
            signal.signal(signal.SIGSEGV, signal.SIG_DFL)
        os.kill(os.getpid(), wanted[1])
