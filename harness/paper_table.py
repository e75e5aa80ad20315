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
from iab.scripts import DefaultsHelpFormatter, run_script

TABLE_MD, TABLE_PNG = "paper_table.md", "paper_table.png"


def columns() -> list[tuple[str, str, str]]:
    """(header, protocol, split) of each column, in the paper's order."""
    cols = [("clean", "standard", "test")]
    cols += [(name, "degraded", name) for name in iab.DEGRADATIONS]
    for task in iab.PAPER_SEMANTIC_TASKS:
        seen = iab.protocol(task).splits[0].semantics[0]
        cols += [(f"{seen} seen", task, "test_seen"), (f"{seen}->others", task, "test")]
    return cols


def column_label(header: str) -> str:
    """A reader's name for a column (``jpeg_q30`` -> ``JPEG q30``)."""
    from harness.plots import degradation_label

    return degradation_label(header) if header in iab.DEGRADATIONS else header


# The columns before this index are the clean and degraded test splits; the rest, the
# semantic-disjoint tasks (seen subclass, then unseen ones).
SEMANTIC_FROM = 1 + len(iab.DEGRADATIONS)


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


def is_tiny(results: dict) -> bool:
    """A tiny random-weight stand-in (``init:NAME:tiny``, harness/tiny_model.py's models)?"""
    cfg = results.get("run_config") or {}
    requested = str(cfg.get("model_requested") or cfg.get("model") or "")
    model_id = str(results.get("model", {}).get("id", ""))
    return (requested.endswith(":tiny") or model_id.endswith("-tiny")
            or Path(requested).name.startswith("tiny-") or Path(model_id).name.startswith("tiny-"))


def chance_of(results: list[dict]) -> float | None:
    """The clean test split's most frequent label share (what a constant guess scores)."""
    from harness.plots import chance_level

    for r in results:
        m = r["protocols"].get("standard", {}).get("splits", {}).get("test")
        if m and m.get("confusion_matrix"):
            return chance_level(m)
    return None


def caption(results: list[dict]) -> str:
    """What the table shows, its chance level, and a warning when its models are tiny."""
    chance = chance_of(results)
    text = ("Top-1 accuracy (%) on the clean test split, its six degradations (the paper's "
            "levels 1 to 6), and each semantic-disjoint task's seen subclass and unseen "
            "subclasses; '-' not evaluated.")
    if chance is not None:
        text += f" Chance: {100 * chance:.1f}% (the most frequent label of the test split)."
    if results and any(is_tiny(r) for r in results):
        text += (" Tiny random-weight demo models trained for a few epochs on the offline "
                 "demo data: the numbers show that the pipeline runs, not how the methods "
                 "compare.")
    return text


def markdown(rows, failures=(), caption_text: str = "") -> str:
    """Rows of (name, values); a name in ``failures`` is a preset whose run failed. An empty
    column separates the degradations from the semantic tasks."""
    failed = {f.preset: f for f in failures}
    head = ["method"] + [column_label(c[0]) for c in columns()]
    head.insert(1 + SEMANTIC_FROM, "")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, values in rows:
        cells = ["failed" if name in failed else "-" if v is None else f"{100 * v:.1f}"
                 for v in values]
        cells.insert(SEMANTIC_FROM, "")
        lines.append("| " + " | ".join([name] + cells) + " |")
    notes = [f"- {f.preset}: the run failed ({f.reason()}); see {f.log}" for f in failures]
    text = "\n".join(lines) + "\n" + ("\n" + "\n".join(notes) + "\n" if notes else "")
    return text + (f"\n{caption_text}\n" if caption_text else "")


def table_figure(rows, caption_text: str = "", chance: float | None = None):
    """The table as a heat map Figure: values in percent with one decimal, one row per
    method, a colour bar, axis titles, a line between the degradations and the semantic
    tasks, the chance level marked on the colour bar, and ``caption_text`` under it."""
    import textwrap

    import numpy as np

    from harness.plots import _pyplot

    plt = _pyplot()
    cols = columns()
    data = np.array([[np.nan if v is None else 100 * v for v in values] for _, values in rows],
                    dtype=float).reshape(len(rows), len(cols))
    fig, ax = plt.subplots(figsize=(2.5 + 0.8 * len(cols), 2.6 + 0.45 * len(rows)))
    im = ax.imshow(np.ma.masked_invalid(data), cmap="viridis", vmin=0, vmax=100,
                   aspect="auto")
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            text = "-" if np.isnan(data[i, j]) else f"{data[i, j]:.1f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if np.nan_to_num(data[i, j]) < 60 else "black")
    ax.axvline(SEMANTIC_FROM - 0.5, color="white", linewidth=3)
    ax.set_xticks(range(len(cols)), [column_label(c[0]) for c in cols], rotation=45,
                  ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), [name for name, _ in rows], fontsize=8)
    ax.set_xlabel("test split: clean and degraded | semantic-disjoint tasks (seen, unseen)")
    ax.set_ylabel("method (preset)")
    ax.set_title("Accuracy (%) per method and protocol" + (
        f"; chance {100 * chance:.1f}% (red line on the colour bar)" if chance is not None
        else ""), fontsize=10)
    bar = fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02, label="accuracy (%)")
    if chance is not None:
        bar.ax.axhline(100 * chance, color="red", linewidth=2)
    if caption_text:  # about 14 characters of 7 pt text per inch
        width = int(14 * fig.get_figwidth())
        fig.text(0.01, 0.01, "\n".join(textwrap.wrap(caption_text, width)), fontsize=7,
                 va="bottom", ha="left")
    fig.tight_layout(rect=(0, 0.08 if caption_text else 0, 1, 1))
    return fig


def plot(rows, path: Path, caption_text: str = "", chance: float | None = None) -> Path:
    """Save :func:`table_figure` as a PNG."""
    import matplotlib.pyplot as plt

    fig = table_figure(rows, caption_text, chance)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_table(outcomes: list, out: Path) -> tuple[Path, Path]:
    """The table of results files and failed presets (``PresetFailure``), in that order."""
    rows, failures = [], [o for o in outcomes if isinstance(o, PresetFailure)]
    loaded = []
    for o in outcomes:
        if isinstance(o, PresetFailure):
            rows.append((o.preset, [None] * len(columns())))
        else:
            loaded.append(json.loads(Path(o).read_text()))
            rows += table_rows(loaded[-1:])
    out.mkdir(parents=True, exist_ok=True)
    md = out / TABLE_MD
    text = caption(loaded)
    md.write_text(markdown(rows, failures, text))
    return md, plot(rows, out / TABLE_PNG, text, chance_of(loaded))


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
        finished = reusable_results(folder, args)
        if finished is not None:
            outcomes.append(finished)
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


def reusable_results(folder: Path, args) -> Path | None:
    """The latest results file in ``folder`` of a run with the settings ``args`` (parsed by
    harness/run.py), so that a rerun reuses it; None when there is none. A run with other
    settings is an error that says how to proceed."""
    done = sorted(Path(folder).glob("results_*.json"))
    if not done:
        return None
    _check_same_settings(done[-1], args)
    return done[-1]


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

    p = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter, description=__doc__.split("\n\n")[0])
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
    p.add_argument("--keep-checkpoints", action="store_true",
                   help="keep every epoch's state of every run (default: the chosen one only)")
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
        if args.keep_checkpoints:
            extra.append("--keep-checkpoints")
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
