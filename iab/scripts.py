"""What every command-line script of the project shares: one way to exit, one ``--help`` style.

It imports nothing of the project but the benchmark definition, so that generation/, harness/
and methods/ can use it without importing the ``iab`` command (which sits on top of them).
"""

from __future__ import annotations

import argparse
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


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """``--help`` that shows every option's default: "(default: X)" is added to each option
    with a default (not None or False) whose help does not already name it."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (default is None or default is False or default is argparse.SUPPRESS
                or not action.option_strings or "default" in text.lower()):
            return text
        shown = ",".join(map(str, default)) if isinstance(default, (list, tuple)) else default
        return f"{text} (default: {str(shown).replace('%', '%%')})".strip()
