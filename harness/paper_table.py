"""Every method of the paper under ``--protocol paper``, and one methods x protocols table of
accuracies (markdown and PNG) shaped like the paper's: clean test, the six degradations, and
seen/unseen for each semantic task.

    python -m harness.paper_table --dataset ImageAttributionBench/ImageAttributionBench \\
        --out paper_table                          # the paper's settings (GPU)
    python -m harness.paper_table --dataset demo/repo --out demo/paper_table --tiny
    python -m harness.paper_table --from-results runs/*/results_*.json --out table
    python -m harness.paper_table --official-checkpoints ckpt --out paper_table_official

``--official-checkpoints`` scores the paper's 52 released checkpoints instead of training
(harness/paper_official.py).

Each method's run goes to <out>/<preset>/ and is kept: a rerun skips presets whose results
exist (resumable), so an interrupted table continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import imageattributionbench as iab
from harness.child import PresetFailure, run_child as _run_child
from iab.scripts import run_script

TABLE_MD, TABLE_PNG = "paper_table.md", "paper_table.png"


def columns(protocol: str = "paper") -> list[tuple[str, str, str]]:
    """(header, config, split) of each column, in the paper's order: of ``--protocol paper``
    (our folds) or ``paper_exact`` (the paper's own split, whose tasks have no seen test)."""
    if protocol == "paper_exact":
        cols = [("clean", "paper_exact", "test")]
        cols += [(name, "paper_exact_degraded", name) for name in iab.DEGRADATIONS]
        return cols + [(f"{iab.protocol(t).train_semantic}->others", t, "test")
                       for t in iab.PAPER_EXACT_TASKS]
    cols = [("clean", "standard", "test")]
    cols += [(name, "degraded", name) for name in iab.DEGRADATIONS]
    for task in iab.PAPER_SEMANTIC_TASKS:
        seen = iab.protocol(task).splits[0].semantics[0]
        cols += [(f"{seen} seen", task, "test_seen"), (f"{seen}->others", task, "test")]
    return cols


def table_rows(results: list[dict], protocol: str = "paper"
               ) -> list[tuple[str, list[float | None]]]:
    """(row name, accuracy per column or None where not evaluated) per results file."""
    rows = []
    for r in results:
        values = []
        for _, protocol_config, split in columns(protocol):
            m = r["protocols"].get(protocol_config, {}).get("splits", {}).get(split)
            values.append(None if m is None else m["accuracy"])
        rows.append((r["run_config"].get("preset") or r["model"]["id"], values))
    return rows


def markdown(rows, failures=(), protocol: str = "paper") -> str:
    """Rows of (name, values); a name in ``failures`` is a preset whose run failed."""
    failed = {f.preset: f for f in failures}
    head = ["method"] + [c[0] for c in columns(protocol)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, values in rows:
        cells = ["failed" if name in failed else "-" if v is None else f"{100 * v:.1f}"
                 for v in values]
        lines.append("| " + " | ".join([name] + cells) + " |")
    notes = [f"- {f.preset}: the run failed ({f.reason()}); see {f.log}" for f in failures]
    return "\n".join(lines) + "\n" + ("\n" + "\n".join(notes) + "\n" if notes else "")


def plot(rows, path: Path, protocol: str = "paper") -> Path:
    """The table as a heat map, values in percent, one row per method."""
    import numpy as np

    from harness.plots import _pyplot, _save

    plt = _pyplot()
    cols = columns(protocol)
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


def write_table(outcomes: list, out: Path, protocol: str | None = None) -> tuple[Path, Path]:
    """The table of results files and failed presets (``PresetFailure``), in that order;
    its columns those of ``protocol`` (default: the results files' own)."""
    results = {i: json.loads(Path(o).read_text()) for i, o in enumerate(outcomes)
               if not isinstance(o, PresetFailure)}
    if protocol is None:
        ran = {r["run_config"].get("protocol") for r in results.values()}
        protocol = "paper_exact" if ran == {"paper_exact"} else "paper"
    rows, failures = [], [o for o in outcomes if isinstance(o, PresetFailure)]
    for i, o in enumerate(outcomes):
        rows += [(o.preset, [None] * len(columns(protocol)))] if i not in results else \
            table_rows([results[i]], protocol)
    out.mkdir(parents=True, exist_ok=True)
    md = out / TABLE_MD
    md.write_text(markdown(rows, failures, protocol))
    return md, plot(rows, out / TABLE_PNG, protocol)


def _tiny_model(preset: str, folder: Path) -> str:
    """The offline stand-in for a preset's model (tiny random weights, same classes)."""
    from harness.tiny_model import tiny_classifier, tiny_clip

    if preset == "resnet50":
        return str(tiny_classifier(folder / "tiny-resnet"))
    if preset == "clip-lr":
        return str(tiny_clip(folder / "tiny-clip"))
    return f"init:{preset}:tiny"


def run_presets(dataset: str, out: Path, presets: list[str], tiny: bool,
                extra: list[str], protocol: str = "paper") -> list:
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
        argv = ["--preset", name, "--protocol", protocol, "--dataset", dataset,
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
               "batch_size", "weight_decay", "scheduler", "select", "seed")


def _check_same_settings(results_file: Path, args) -> None:
    """Reuse an earlier run only if it ran with these settings; else say how to proceed."""
    from harness.dataset_source import recorded_path

    earlier = json.loads(results_file.read_text())["run_config"]
    now = {k: getattr(args, k) for k in RESUME_KEYS}
    now["dataset"] = recorded_path(args.dataset, args.output_dir)  # results hold no abs paths
    differ = [k for k in RESUME_KEYS if earlier.get(k) != now[k]]
    if earlier.get("model_requested", earlier.get("model")) != recorded_path(
            args.model, args.output_dir):
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
    p.add_argument("--protocol", choices=("paper", "paper_exact"),
                   help="paper (our folds; the default for presets) or paper_exact (the paper's "
                        "own split: a build with --paper-split; the default with "
                        "--official-checkpoints)")
    p.add_argument("--official-checkpoints", type=Path,
                   help="a folder of the paper's released checkpoints "
                        "(<name>/<name>_<split>.pth): convert and score them, no training")
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
    out = Path(args.out)
    outcomes = args.from_results
    extra = []
    for flag in ("epochs", "lr", "batch_size"):
        if getattr(args, flag) is not None:
            extra += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    if args.official_checkpoints:
        from harness.paper_official import run_official

        batch = ["--batch-size", str(args.batch_size)] if args.batch_size else []
        outcomes = run_official(args.dataset, out, args.official_checkpoints, args.tiny, batch,
                                args.protocol)
    elif not outcomes:
        outcomes = run_presets(args.dataset, out, args.presets, args.tiny, extra,
                               args.protocol or "paper")
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
