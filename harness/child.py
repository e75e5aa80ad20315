"""``python -m harness.run ARGV`` in a child process (the paper table's runs): a native crash
or an out-of-memory kill costs that run, not the table."""

from __future__ import annotations

import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class PresetFailure:
    """A preset whose run died or failed: its row in the table says so."""

    preset: str
    returncode: int
    log: Path

    def reason(self) -> str:
        if self.returncode < 0:
            try:
                return f"killed by {signal.Signals(-self.returncode).name}"
            except ValueError:
                return f"killed by signal {-self.returncode}"
        return f"exit status {self.returncode}"


def run_child(argv: list[str], log: Path) -> int:
    """``python -m harness.run ARGV`` in its own process, its output shown and kept in log.

    One process per preset: a native crash (a segfaulting CPU kernel) or an out-of-memory kill
    costs that preset's row, not the table.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as keep:
        child = subprocess.Popen([sys.executable, "-m", "harness.run", *argv],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 errors="replace")
        for line in child.stdout:
            sys.stdout.write(line)
            keep.write(line)
        return child.wait()
