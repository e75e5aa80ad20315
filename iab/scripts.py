"""What every command-line script of the project shares: one way to exit.

It imports nothing of the project but the benchmark definition, so that generation/, harness/
and methods/ can use it without importing the ``iab`` command (which sits on top of them).
"""

from __future__ import annotations

import sys

import imageattributionbench as iab


def run_script(main_fn) -> None:
    """Run a script's ``main`` and exit with its status; a BenchmarkError (bad input) exits 2
    with its message and no traceback, as every command of the project does."""
    try:
        code = main_fn()
    except iab.BenchmarkError as e:
        print(f"error: {e}", file=sys.stderr)
        code = 2
    sys.exit(code)
