"""Every method of the paper under ``--protocol paper``, and one methods x protocols table of
accuracies (markdown and PNG) shaped like the paper's: clean test, the six degradations, and
seen/unseen for each semantic task.

    python -m harness.paper_table --dataset ImageAttributionBench/ImageAttributionBench \\
        --out paper_table                          # the paper's settings (GPU)
    python -m harness.paper_table --dataset demo/repo --out demo/paper_table --tiny
    python -m harness.paper_table --from-results runs/*/results_*.json --out table

Each method's run goes to <out>/<preset>/ and is kept: a rerun skips presets whose results
exist (resumable), so an interrupted table continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import imageattributionbench as iab
from iab.scripts import run_script

TABLE_MD, TABLE_PNG = "paper_table.md", "paper_table.png"


def columns() -> list[tuple[str, str, str]]:
    """(header, protocol, split) of each column, in the paper's order."""
    cols = [("clean", "standard", "test")]
    cols += [(name, "degraded", name) for name in iab.DEGRADATIONS]
    for task in iab.PAPER_SEMANTIC_TASKS:
        seen = iab.protocol(task).splits[0].semantics[0]
        cols += [(f"{seen} seen", task, "test_seen"), (f"{seen}->others", task, "test")]
    return cols


def table_rows(results: list[dict]) -> list[tuple[str, list[float | None]]]:
    """(row name, accuracy per column or None where not evaluated) per results file."""
    rows = []
    for r in results:
        values = []
        for _, protocol, split in columns():
            m = r["protocols"].get(protocol, {}).get("splits", {}).get(split)
            values.append(None if m is None else m["accuracy"])
        rows.append((r["run_config"].get("preset") or r["model"]["id"], values))
    return rows


def markdown(rows, failures=()) -> str:
    """Rows of (name, values); a name in ``failures`` is a preset whose run failed."""
    failed = {f.preset: f for f in failures}
    head = ["method"] + [c[0] for c in columns()]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, values in rows:
        cells = ["failed" if name in failed else "-" if v is None else f"{100 * v:.1f}"
                 for v in values]
        lines.append("| " + " | ".join([name] + cells) + " |")
    notes = [f"- {f.preset}: the run failed ({f.reason()}); see {f.log}" for f in failures]
    return "\n".join(lines) + "\n" + ("\n" + "\n".join(notes) + "\n" if notes else "")


def plot(rows, path: Path) -> Path:
    """The table as a heat map, values in percent, one row per method."""
    import numpy as np

    from harness.plots import _pyplot, _save

    plt = _pyplot()
    cols = columns()
    data = np.array([[np.nan if v is None else 100 * v for v in values] for _, values in rows],
                    dtype=float).reshape(len(rows), len(cols))
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(cols), 1.2 + 0.45 * len(rows)))
    ax.imshow(np.nan_to_num(data, nan=0.0), cmap="viridis", vmin=0, vmax=100, aspect="auto")
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            text = "-" if np.isnan(data[i, j]) else f"{data[i, j]:.0f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if np.nan_to_num(data[i, j]) < 60 else "black")
    ax.set_xticks(range(len(cols)), [c[0] for c in cols], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), [name for name, _ in rows], fontsize=8)
    ax.set_title("Accuracy (%) per method and protocol", fontsize=10)
    return _save(fig, path)


def write_table(outcomes: list, out: Path) -> tuple[Path, Path]:
    """The table of results files and failed presets (``PresetFailure``), in that order."""
    rows, failures = [], [o for o in outcomes if isinstance(o, PresetFailure)]
    for o in outcomes:
        rows += [(o.preset, [None] * len(columns()))] if isinstance(o, PresetFailure) else \
            table_rows([json.loads(Path(o).read_text())])
    out.mkdir(parents=True, exist_ok=True)
    md = out / TABLE_MD
    md.write_text(markdown(rows, failures))
    return md, plot(rows, out / TABLE_PNG)


def _tiny_model(preset: str, folder: Path) -> str:
    """The offline stand-in for a preset's model (tiny random weights, same classes)."""
    from harness.tiny_model import tiny_classifier, tiny_clip

    if preset == "resnet50":
        return str(tiny_classifier(folder / "tiny-resnet"))
    if preset == "clip-lr":
        return str(tiny_clip(folder / "tiny-clip"))
    return f"init:{preset}:tiny"


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


def _run_child(argv: list[str], log: Path) -> int:
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


def run_presets(dataset: str, out: Path, presets: list[str], tiny: bool,
                extra: list[str]) -> list:
    """``harness/run.py --preset P --protocol paper`` for each preset, each in a child process;
    per preset, its results file or a ``PresetFailure``."""
    from harness import run as harness_run

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise iab.BenchmarkError("paper_table runs the presets one after another: start it "
                                 "with python, not accelerate launch (each preset alone: "
                                 "accelerate launch harness/run.py --preset P)")
    outcomes = []
    for name in presets:
        folder = out / name
        argv = ["--preset", name, "--protocol", "paper", "--dataset", dataset,
                "--output-dir", str(folder), *extra]
        if tiny:
            argv += ["--model", _tiny_model(name, out / "models")]
        args = harness_run.parse_args(argv)  # bad settings fail here, before any child runs
        done = sorted(folder.glob("results_*.json"))
        if done:
            _check_same_settings(done[-1], args)
            outcomes.append(done[-1])
            continue
        # --resume: an interrupted (or crashed) preset continues from its last epoch
        print(f"\n== {name}: harness/run.py {' '.join(argv)} --resume", flush=True)
        code = _run_child([*argv, "--resume"], folder / "run.log")
        done = sorted(folder.glob("results_*.json"))
        if code != 0 or not done:
            outcomes.append(PresetFailure(name, code, folder / "run.log"))
            print(f"== {name} failed ({outcomes[-1].reason()}); the table goes on without it "
                  f"(log: {folder / 'run.log'})", flush=True)
            continue
        outcomes.append(done[-1])
    return outcomes


RESUME_KEYS = ("preset", "protocol", "dataset", "revision", "method", "epochs", "lr",
               "batch_size", "weight_decay", "scheduler", "seed")


def _check_same_settings(results_file: Path, args) -> None:
    """Reuse an earlier run only if it ran with these settings; else say how to proceed."""
    earlier = json.loads(results_file.read_text())["run_config"]
    differ = [k for k in RESUME_KEYS if earlier.get(k) != getattr(args, k)]
    if earlier.get("model_requested", earlier.get("model")) != args.model:
        differ.append("model")
    if differ:
        changes = ", ".join(f"{k}: {earlier.get(k)!r} there, {getattr(args, k)!r} now"
                            for k in differ if k != "model")
        if "model" in differ:
            changes += (", " if changes else "") + f"model: other than {args.model!r}"
        raise iab.BenchmarkError(
            f"{results_file.parent} holds a run with other settings ({changes}); pick another "
            "--out, or delete that folder to run it again")


def parse_args(argv=None) -> argparse.Namespace:
    from harness.presets import preset_names

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default=iab.HUB_REPO_ID,
                   help="dataset repo id or a folder built by `iab build`")
    p.add_argument("--out", default="paper_table", help="folder for the runs and the table")
    p.add_argument("--presets", default=",".join(preset_names()),
                   help="comma-separated (default: every one: " + ", ".join(preset_names())
                   + ")")
    p.add_argument("--tiny", action="store_true",
                   help="tiny random-weight models of the same classes (CPU, offline)")
    p.add_argument("--from-results", nargs="+", type=Path,
                   help="only tabulate these results files (no training)")
    p.add_argument("--epochs", type=int, help="override every preset's epochs")
    p.add_argument("--lr", type=float, help="override every preset's learning rate")
    p.add_argument("--batch-size", type=int, help="override every preset's batch size")
    args = p.parse_args(argv)
    from harness.presets import preset

    args.presets = [s for s in args.presets.split(",") if s]
    for name in args.presets:
        preset(name)  # an unknown name fails here, naming the valid ones
    return args


def main(args: argparse.Namespace) -> int:
    from iab.progress import quiet_library_bars

    quiet_library_bars()  # a log file gets plain progress lines, not redrawn bars
    out = Path(args.out)
    outcomes = args.from_results
    if not outcomes:
        extra = []
        for flag in ("epochs", "lr", "batch_size"):
            if getattr(args, flag) is not None:
                extra += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
        outcomes = run_presets(args.dataset, out, args.presets, args.tiny, extra)
    md, png = write_table(outcomes, out)
    failures = [o for o in outcomes if isinstance(o, PresetFailure)]
    print("\n" + md.read_text() + f"\nwrote {md} and {png}")
    if failures:
        print(f"{len(failures)} preset(s) failed: {', '.join(f.preset for f in failures)}; "
              "rerun the same command to retry them (finished presets are kept)")
        return 1
    return 0


if __name__ == "__main__":
    run_script(lambda: main(parse_args()))
