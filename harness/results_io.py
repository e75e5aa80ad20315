"""Results files on disk: written atomically after validation, read back with a check."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import imageattributionbench as iab
from harness.results import Results, iso_slug
from harness.results_check import validate_results


def results_filename(results: Results) -> str:
    return f"results_{iso_slug(results['created_at'])}.json"


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write through a temporary file in the same folder and rename it into place, so a
    reader never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _refuse_invalid(results, what: str) -> None:
    problems = validate_results(results)
    if problems:
        raise iab.BenchmarkError(f"{what}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))


def write_results(results: Results, out_dir: str | os.PathLike) -> Path:
    """Validate and write ``out_dir/results_<created_at>.json`` atomically; returns its path.

    Invalid results are refused with the list of problems (a BenchmarkError).
    """
    _refuse_invalid(results, "refusing to write invalid results")
    # allow_nan=False: NaN is not JSON, and validation has already ruled it out.
    text = json.dumps(results, indent=2, allow_nan=False) + "\n"
    return atomic_write_bytes(Path(out_dir) / results_filename(results), text.encode("utf-8"))


def load_results(path: str | os.PathLike, *, validate: bool = True) -> Results:
    """Read a results JSON file; with ``validate`` (the default) refuse one with problems."""
    with open(path, encoding="utf-8") as f:
        results = json.load(f)
    if validate:
        _refuse_invalid(results, f"{path} is not a valid {iab.BENCHMARK_NAME} results file")
    return results
