"""Reading one results file at bounded cost: no file, however hostile, can take the board down.

A results file is untrusted input. Before it is parsed, its size is checked; after, its
nesting depth, every string's length, the results schema
(``harness.results_check.validate_results``) and its date. Each check costs time linear in the
file's bounded size, and every failure is a reason string, never an exception, so the caller
can list the file under *Rejected* and go on.

    >>> results, reason = read_results_file(Path("acme/vit/results_2026-11-27T23-59-00Z.json"))
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from harness.results_check import validate_results

# A --protocol all results file over the 31 labels is about 0.3 MB; 4 MiB leaves room for long
# training logs in run_config and still parses in well under a second.
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 32  # the schema nests 6 deep; run_config holds small settings records
MAX_STRING = 4096  # any string anywhere in the file (hardware names, descriptions, paths)
MAX_MODEL_ID = 200  # Hub ids are at most 96 characters a part
# Clocks of the machines that write results differ a little, never by hours.
FUTURE_TOLERANCE = timedelta(hours=1)
# Reasons are shown in a table cell: the first few problems say enough to fix a file.
MAX_PROBLEMS_SHOWN = 3
MAX_REASON = 600


def json_depth(obj) -> int:
    """The deepest nesting of lists and objects in a decoded JSON value, counted without
    recursion."""
    deepest, stack = 0, [(obj, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            depth += 1
            deepest = max(deepest, depth)
            stack.extend((v, depth) for v in (node.values() if isinstance(node, dict) else node))
    return deepest


def shorten(text: str, limit: int = MAX_REASON) -> str:
    """Text cut to ``limit`` characters, saying how much was left out."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit} more chars)"


def _long_string(obj, limit: int) -> str | None:
    """The JSON path of the first string (key or value) longer than ``limit``, else None.
    Iterative, like every walk here: a hostile file decides how deep the walk goes."""
    stack = [(obj, "results")]
    while stack:
        node, where = stack.pop()
        if isinstance(node, str):
            if len(node) > limit:
                return where
        elif isinstance(node, dict):
            for k, v in node.items():
                if len(k) > limit:
                    return f"{where}.<key of {len(k)} chars>"
                stack.append((v, f"{where}.{k}"))
        elif isinstance(node, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(node))
    return None


def _future(created_at: str, now: datetime) -> bool:
    when = datetime.strptime(created_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    return when > now + FUTURE_TOLERANCE


def check_results(results, now: datetime | None = None) -> str:
    """'' for a results object fit for the board, else the reason it is not (string lengths,
    the results schema, a date in the future)."""
    where = _long_string(results, MAX_STRING)
    if where is not None:
        return f"{shorten(where, 120)}: a string longer than {MAX_STRING} characters"
    model_id = results.get("model", {}).get("id") if isinstance(results, dict) and \
        isinstance(results.get("model"), dict) else None
    if isinstance(model_id, str) and len(model_id) > MAX_MODEL_ID:
        return f"model.id: {len(model_id)} characters, more than {MAX_MODEL_ID}"
    problems = validate_results(results)
    if problems:
        more = len(problems) - MAX_PROBLEMS_SHOWN
        shown = "; ".join(problems[:MAX_PROBLEMS_SHOWN]) + (f"; (+{more} more)" if more > 0 else "")
        return shorten(f"invalid results ({len(problems)} problem(s)): {shown}")
    if _future(results["created_at"], now or datetime.now(timezone.utc)):
        return (f"created_at {results['created_at']} is in the future: a results file is dated "
                "when its run ends")
    return ""


def read_results_file(path: Path, now: datetime | None = None) -> tuple[dict | None, str]:
    """``(results, "")`` for a good file, ``(None, reason)`` otherwise; never raises on content."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return None, (f"{size} bytes, more than the {MAX_FILE_BYTES} a results file may "
                          "have")
        data = path.read_bytes()
    except OSError as e:
        return None, f"not readable: {e}"
    try:
        results = json.loads(data.decode("utf-8"))
    except RecursionError:  # the C parser counts its depth: this is raised, never a crash
        return None, f"JSON nested deeper than the parser allows (at most {MAX_DEPTH} levels)"
    except (UnicodeDecodeError, ValueError) as e:
        return None, shorten(f"not a readable JSON file: {e}")
    depth = json_depth(results)
    if depth > MAX_DEPTH:
        return None, f"JSON nested {depth} levels deep, more than {MAX_DEPTH}"
    reason = check_results(results, now)
    return (None, reason) if reason else (results, "")
