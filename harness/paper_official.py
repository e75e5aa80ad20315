"""The paper's table from its released checkpoints (``python -m harness.paper_table
--official-checkpoints DIR``): no training, only inference.

DIR holds the release's files, ``<name>/<name>_{default,split1,split2,split3}.pth`` with the
official attributors' names (``dna/dna_split2.pth``). Each is converted
(methods.convert_official) into ``<out>/converted/<name>_<split>`` and scored with
``harness/run.py --method score``, each in its own process: the default checkpoint on the
paper protocol's standard job (clean and degraded test sets), split k on its semantic task k.
The protocol is ``paper_exact`` (the paper's own split: a build with ``--paper-split``) when
harness/run.py has it, else ``paper``; ``--protocol`` chooses. A method's four runs are merged into ``<out>/<method>/results_official.json``, one
row of the table; a missing file leaves its columns empty, a failed run marks the row.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import imageattributionbench as iab

SPLIT_ORDER = ("default", "split1", "split2", "split3")  # the protocol's jobs, in order


def table_protocol() -> str:
    from harness import run as harness_run

    return "paper_exact" if "paper_exact" in harness_run.PROTOCOLS else "paper"


def official_jobs(protocol: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """split -> (the protocol to run its checkpoint with, the eval configs it fills)."""
    from harness import run as harness_run

    jobs = harness_run.jobs_for(protocol)
    if len(jobs) != len(SPLIT_ORDER):
        raise iab.BenchmarkError(f"protocol {protocol} has {len(jobs)} jobs; the release has "
                                 f"one checkpoint per job of {len(SPLIT_ORDER)}")
    out = {}
    for split, job in zip(SPLIT_ORDER, jobs):
        # a job's own training config is a protocol of that job alone (else run them all)
        alone = job.train_config if job.train_config in harness_run.PROTOCOLS and \
            len(harness_run.jobs_for(job.train_config)) == 1 else protocol
        out[split] = (alone, tuple(config for config, _ in job.evals))
    return out


def find_checkpoints(folder: Path) -> dict[str, dict[str, Path]]:
    """method -> split -> file, in the paper's row order; unknown names are refused."""
    from harness.presets import PAPER_ORDER
    from methods.official import BY_OFFICIAL_NAME

    if not folder.is_dir():
        raise iab.BenchmarkError(f"--official-checkpoints {folder}: not a folder")
    found: dict[str, dict[str, Path]] = {}
    pattern = re.compile(rf"(.+)_({'|'.join(SPLIT_ORDER)})\.pth")
    for path in sorted(folder.glob("*/*.pth")):
        m = pattern.fullmatch(path.name)
        if not m or m.group(1) != path.parent.name or m.group(1) not in BY_OFFICIAL_NAME:
            raise iab.BenchmarkError(
                f"{path}: not one of the release's files (<name>/<name>_<split>.pth, name one "
                f"of {', '.join(BY_OFFICIAL_NAME)}, split one of {', '.join(SPLIT_ORDER)})")
        found.setdefault(BY_OFFICIAL_NAME[m.group(1)], {})[m.group(2)] = path
    if not found:
        raise iab.BenchmarkError(f"{folder} holds no <name>/<name>_<split>.pth checkpoints")
    return {m: found[m] for m in PAPER_ORDER if m in found}


def _converted(method: str, path: Path, folder: Path, tiny: bool) -> Path:
    """The converted checkpoint, reused if it was converted from the same file."""
    from methods.convert_official import convert, sha256

    config = folder / "config.json"
    if config.exists():
        source = json.loads(config.read_text()).get("converted_from", {})
        if source.get("sha256") == sha256(path):
            return folder
    return convert(method, path, folder, tiny=tiny)


def run_official(dataset: str, out: Path, folder: Path, tiny: bool, extra: list[str],
                 protocol: str | None = None) -> list:
    """Per method found: its merged results file, or a ``PresetFailure``; ``protocol``
    defaults to ``table_protocol()``."""
    from harness.child import PresetFailure, run_child

    protocol = protocol or table_protocol()
    jobs = official_jobs(protocol)
    outcomes = []
    for method, files in find_checkpoints(folder).items():
        merged = {"model": {"id": f"official/{method}"},
                  "run_config": {"preset": method, "protocol": protocol},
                  "protocols": {}, "sources": {}}
        failure = None
        for split, path in files.items():
            run_protocol, configs = jobs[split]
            model = _converted(method, path, out / "converted" / path.stem, tiny)
            run_dir = out / method / split
            done = sorted(run_dir.glob("results_*.json"))
            if not done:
                argv = ["--model", str(model), "--method", "score", "--protocol",
                        run_protocol, "--dataset", dataset, "--output-dir", str(run_dir), *extra]
                print(f"\n== {method} {split}: harness/run.py {' '.join(argv)}", flush=True)
                code = run_child(argv, run_dir / "run.log")
                done = sorted(run_dir.glob("results_*.json"))
                if code != 0 or not done:
                    failure = PresetFailure(method, code, run_dir / "run.log")
                    print(f"== {method} {split} failed ({failure.reason()})", flush=True)
                    break
            results = json.loads(done[-1].read_text())
            for config in configs:
                if config in results["protocols"]:
                    merged["protocols"][config] = results["protocols"][config]
            merged["sources"][split] = json.loads((model / "config.json").read_text())[
                "converted_from"]
        if failure is not None:
            outcomes.append(failure)
            continue
        target = out / method / "results_official.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(merged, indent=1))
        outcomes.append(target)
    return outcomes
