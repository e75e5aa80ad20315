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
from iab.scripts import DefaultsHelpFormatter, run_script

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


def column_label(header: str) -> str:
    """A reader's name for a column (``jpeg_q30`` -> ``JPEG q30``)."""
    from harness.plots import degradation_label

    return degradation_label(header) if header in iab.DEGRADATIONS else header


# The columns before this index are the clean and degraded test splits; the rest, the
# semantic-disjoint tasks (seen subclass, then unseen ones).
SEMANTIC_FROM = 1 + len(iab.DEGRADATIONS)


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


def is_tiny(results: dict) -> bool:
    """A tiny random-weight stand-in (``init:NAME:tiny``, harness/tiny_model.py's models)?"""
    cfg = results.get("run_config") or {}
    requested = str(cfg.get("model_requested") or cfg.get("model") or "")
    model_id = str(results.get("model", {}).get("id", ""))
    return (requested.endswith(":tiny") or model_id.endswith("-tiny")
            or Path(requested).name.startswith("tiny-") or Path(model_id).name.startswith("tiny-"))


def chance_of(results: list[dict], protocol: str = "paper") -> float | None:
    """The clean test split's most frequent label share (what a constant guess scores)."""
    from harness.plots import chance_level

    clean = columns(protocol)[0][1]
    for r in results:
        m = r["protocols"].get(clean, {}).get("splits", {}).get("test")
        if m and m.get("confusion_matrix"):
            return chance_level(m)
    return None


def caption(results: list[dict], protocol: str = "paper") -> str:
    """What the table shows, its chance level, and a warning when its models are tiny."""
    chance = chance_of(results, protocol)
    tasks = ("each semantic-disjoint task's seen subclass and unseen subclasses"
             if protocol == "paper" else "each of the paper's semantic tasks (train on one "
             "subclass, test on the others; the paper's own split)")
    text = ("Top-1 accuracy (%) on the clean test split, its six degradations (the paper's "
            f"levels 1 to 6), and {tasks}; '-' not evaluated.")
    if chance is not None:
        text += f" Chance: {100 * chance:.1f}% (the most frequent label of the test split)."
    if results and any(is_tiny(r) for r in results):
        text += (" Tiny random-weight demo models trained for a few epochs on the offline "
                 "demo data: the numbers show that the pipeline runs, not how the methods "
                 "compare.")
    return text


def markdown(rows, failures=(), caption_text: str = "", protocol: str = "paper") -> str:
    """Rows of (name, values); a name in ``failures`` is a preset whose run failed. An empty
    column separates the degradations from the semantic tasks."""
    failed = {f.preset: f for f in failures}
    head = ["method"] + [column_label(c[0]) for c in columns(protocol)]
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


def table_figure(rows, caption_text: str = "", chance: float | None = None,
                 protocol: str = "paper"):
    """The table as a heat map Figure: values in percent with one decimal, one row per
    method, a colour bar, axis titles, a line between the degradations and the semantic
    tasks, the chance level marked on the colour bar, and ``caption_text`` under it."""
    import textwrap

    import numpy as np

    from harness.plots import _pyplot

    plt = _pyplot()
    cols = columns(protocol)
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
    ax.set_xlabel("test split: clean and degraded | semantic-disjoint tasks" + (
        " (seen, unseen)" if protocol == "paper" else " (unseen subclasses)"))
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


def plot(rows, path: Path, caption_text: str = "", chance: float | None = None,
         protocol: str = "paper") -> Path:
    """Save :func:`table_figure` as a PNG."""
    import matplotlib.pyplot as plt

    fig = table_figure(rows, caption_text, chance, protocol)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_table(outcomes: list, out: Path, protocol: str | None = None) -> tuple[Path, Path]:
    """The table of results files and failed presets (``PresetFailure``), in that order;
    its columns those of ``protocol`` (default: the results files' own)."""
    results = {i: json.loads(Path(o).read_text()) for i, o in enumerate(outcomes)
               if not isinstance(o, PresetFailure)}
    if protocol is None:
        ran = {r["run_config"].get("protocol") for r in results.values()}
        protocol = "paper_exact" if ran == {"paper_exact"} else "paper"
    rows, failures = [], [o for o in outcomes if isinstance(o, PresetFailure)]
    loaded = []
    for i, o in enumerate(outcomes):
        if i not in results:
            rows.append((o.preset, [None] * len(columns(protocol))))
        else:
            loaded.append(results[i])
            rows += table_rows([results[i]], protocol)
    out.mkdir(parents=True, exist_ok=True)
    md = out / TABLE_MD
    text = caption(loaded, protocol)
    md.write_text(markdown(rows, failures, text, protocol))
    return md, plot(rows, out / TABLE_PNG, text, chance_of(loaded, protocol), protocol)


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
               "batch_size", "weight_decay", "scheduler", "select", "seed")


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
        if args.keep_checkpoints:
            extra.append("--keep-checkpoints")
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
