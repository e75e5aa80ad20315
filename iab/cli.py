"""The ``iab`` command: build, verify, info, import and demo.

Run ``iab <command> --help`` for each command's options.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import imageattributionbench as iab
from iab.scripts import DefaultsHelpFormatter

MAX_PIXELS_HELP = ("refuse images above N pixels before decoding them (default: "
                   "IAB_MAX_PIXELS, else 50,000,000)")


def _cmd_build(args: argparse.Namespace) -> int:
    from iab.build import build

    report = build(args.raw, args.out, overwrite=args.overwrite, num_proc=args.num_proc,
                   repo_id=args.repo_id, progress=not args.quiet, max_pixels=args.max_pixels,
                   paper_split=args.paper_split)
    print(f"built {report.out}: {report.rows:,} rows in {len(report.shards)} shards, "
          f"{len(report.configs)} configs (fingerprint {report.fingerprint[:12]})")
    if report.duplicates_dropped:
        print(f"dropped {report.duplicates_dropped} duplicate rows (same generator, prompt, "
              "image index and bytes)")
    paper_only = [n for n, why in report.skipped_configs.items() if "--paper-split" in why]
    for name, why in report.skipped_configs.items():
        if name not in paper_only:
            print(f"config {name} not built: {why}")
    if paper_only:
        print(f"{len(paper_only)} paper_exact configs not built (`--paper-split` adds them: "
              "the paper's own split, see docs/PAPER.md)")
    paper = report.paper_split
    if paper.get("selected"):
        print(f"the official loader selects {paper['selected']:,} of the {report.rows:,} rows; "
              f"{paper['test_sharing_a_train_prompt']:,} of its {paper['test']:,} test images "
              "share a prompt with one of its training images")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from iab.verify import verify

    problems, summary = verify(args.repo, quick=args.quick, max_pixels=args.max_pixels)
    for p in problems:
        print(f"FAIL {p}")
    if problems:
        print(f"{len(problems)} problem(s) in {args.repo}")
        return 1
    print(f"OK {args.repo}: {summary['rows']:,} rows in {summary['shards']} shards, "
          f"{summary['configs']} configs, fingerprint {summary['fingerprint'][:12]}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    data = iab.info()
    if args.json:
        print(json.dumps(data, indent=1))
        return 0
    print(f"{data['benchmark']} {data['version']}\n\nlabels (id name: how it runs, its "
          "defaults, released)")
    for lb in data["labels"]:
        print(f"  {lb['id']:>2} {lb['name']}: {_how_it_runs(lb)}" + (
            f", released {lb['released']}" if lb.get("released") else ""))
    print("\nsemantics (superclass: subclasses)")
    for sup, subs in iab.SUPERCLASSES.items():
        print(f"  {sup}: {', '.join(subs)}")
    print("\nconfigs (name: splits)")
    for c in data["configs"]:
        print(f"  {c['name']}{' (default)' if c['default'] else ''}: {', '.join(c['splits'])}")
    return 0


def _how_it_runs(lb: dict) -> str:
    """One label's line of ``iab info``: for a diffusers generator its pipeline, Hub id and
    the defaults generation/run.py uses (steps, guidance, resolution, dtype)."""
    if lb["runs"] is None:
        return "real photographs"
    if lb["runs"] == "diffusers":
        return (f"diffusers {lb['pipeline']} {lb['hub_id']}, {lb['steps']} steps, guidance "
                f"{lb['guidance']:g}, {lb['resolution']} px, {lb['dtype']}")
    if lb["runs"] == "api":
        return f"API ({lb['api']} adapter, model {lb['api_model']})"
    return "imported images (`iab import`)" + (f", weights {lb['hub_id']}" if lb.get("hub_id")
                                                 else "")


def _cmd_import(args: argparse.Namespace) -> int:
    from iab.importer import import_images

    report = import_images(args.src, args.out, generator=args.generator,
                           semantic=args.semantic, crop=not args.no_crop,
                           selection=args.selection, revision=args.revision,
                           keep_downloads=args.keep_downloads)
    print(f"imported {report.rows:,} images ({report.form}, selection {report.selection}) into "
          f"{len(report.shards)} raw shards under {args.out}")
    if report.already_imported:
        print(f"{report.already_imported:,} image(s) already imported (kept, not read again)")
    if report.not_selected:
        print(f"{report.not_selected:,} image(s) left out: not in the official loader's subset "
              "(--selection paper)")
    for (sem, kind), n in sorted(report.caption_sets.items()):
        if kind == "legacy":
            print(f"{n:,} {sem} image(s) linked to the legacy caption file "
                  "(prompt_id '<semantic>/legacy:<row>' where not an official prompt)")
    if report.unlinked_prompts:
        print(f"{report.unlinked_prompts} image(s) not linked to an official prompt "
              "(prompt_id '<semantic>/src:<file name>')")
    if report.skipped:
        print(f"skipped {len(report.skipped)} file(s), kept the others:")
        for item in report.skipped:
            print(f"  {item}")
    if report.unmapped:
        print(f"could not map {len(report.unmapped)} item(s):")
        for item in report.unmapped:
            print(f"  {item}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.synthetic:
        from iab.demo import run_demo
    else:
        try:
            from generation.demo import run_demo
        except ImportError as e:
            raise iab.BenchmarkError(f"the demo runs the generation jobs ({e}): install the "
                                     "demo extra, pip install -e '.[demo]' -c "
                                     "constraints-cpu.txt, or run `iab demo --synthetic`") from e
    run_demo(Path(args.out), num_proc=args.num_proc)
    if not args.synthetic and not args.no_harness:
        from harness.demo import run_harness_demo

        results = run_harness_demo(Path(args.out) / "repo", Path(args.out),
                                   keep_checkpoints=args.keep_checkpoints)
        print(f"\nharness results, plots and model card: {results}")
        if not args.no_paper_table:
            from harness import paper_table

            # every method of the paper, tiny, under --protocol paper: one table
            return paper_table.main(paper_table.parse_args(
                ["--dataset", str(Path(args.out) / "repo"), "--out",
                 str(Path(args.out) / "paper_table"), "--tiny", "--epochs", "6", "--lr",
                 "0.01", "--batch-size", "16"]
                + (["--keep-checkpoints"] if args.keep_checkpoints else [])))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter,
        prog="iab", description="ImageAttributionBench: build, check and inspect the benchmark.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, **kwargs) -> argparse.ArgumentParser:
        return sub.add_parser(name, formatter_class=DefaultsHelpFormatter, **kwargs)

    b = add("build", help="raw shards -> a folder laid out as the Hub dataset repo",
            description="Build the Hub dataset repo folder (data/, degraded/, "
                        "README.md card, eval.yaml, manifest.json, checksums.sha256) "
                        "from raw shards. Nothing is written unless the whole build "
                        "succeeds.")
    b.add_argument("raw", nargs="+", metavar="RAW", help="folders or .parquet files of raw shards")
    b.add_argument("--out", required=True, help="output folder (new, empty, or an earlier build)")
    b.add_argument("--overwrite", action="store_true", help="replace an earlier build in --out")
    b.add_argument("--num-proc", type=int, default=1, help="worker processes (default 1)")
    b.add_argument("--repo-id", default=iab.HUB_REPO_ID,
                   help=f"Hub id used in the card's examples (default {iab.HUB_REPO_ID})")
    b.add_argument("--paper-split", action="store_true",
                   help="also the paper_exact configs: the official code's own split of the "
                        "images its loader selects (membership depends on every image)")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.add_argument("--max-pixels", type=int, metavar="N", help=MAX_PIXELS_HELP)
    b.set_defaults(func=_cmd_build)

    v = add("verify", help="check a built repo folder",
            description="Check checksums, row counts, schema and value domains, "
                        "folders, fold disjointness, degraded splits and the card's "
                        "configs, and decode every image and compare its format and "
                        "size with its row. Exit status 1 when anything is wrong.")
    v.add_argument("repo", help="a folder built by `iab build` (or a clone of the Hub repo)")
    v.add_argument("--quick", action="store_true",
                   help="check hashes, not images: no image is decoded (much faster)")
    v.add_argument("--max-pixels", type=int, metavar="N", help=MAX_PIXELS_HELP)
    v.set_defaults(func=_cmd_verify)

    i = add("info", help="labels, semantics and configs")
    i.add_argument("--json", action="store_true",
                   help="one JSON object with keys labels, semantics, configs (and more)")
    i.set_defaults(func=_cmd_info)

    im = add("import", help="existing images -> raw shards",
             description="Turn a folder tree of images (SRC/<generator>/.../<semantic>/"
                         "...), the paper's parquet release (a folder holding "
                         "data/<model>/<main_category>/<sub_category>.parquet, or its "
                         "Hub repo id, e.g. multiitsuki/ImageAttributionBench), or a "
                         "folder of its Dataverse zips (<model>_<subclass>.zip, split "
                         "ones .z01 ... .zip read in place) into raw shards. Lists "
                         "what it cannot map or read; rerun to resume, image by image.")
    im.add_argument("src", help="folder of images, release folder, zip folder, or Hub id")
    im.add_argument("--out", required=True, help="raw shard folder to write into")
    im.add_argument("--generator", help="label of every image (else from the first folder)")
    im.add_argument("--semantic", help="subclass of every image (else from folder names)")
    im.add_argument("--selection", choices=("all", "paper"), default="all",
                    help="all (default): every image; paper: only those the official loader "
                         "uses (.png, prompt < 1000, image 0-1 or Midjourney 0-3, first 2,000 "
                         "per folder; real: first 2,000 .png/.jpg/.jpeg)")
    im.add_argument("--revision", help="Hub release: commit or branch (default: main)")
    im.add_argument("--keep-downloads", action="store_true",
                    help="Hub release: keep each downloaded file (default: delete once imported)")
    im.add_argument("--no-crop", action="store_true",
                    help="keep visible watermarks the registry says to crop (e.g. grok3)")
    im.set_defaults(func=_cmd_import)

    d = add("demo", help="the offline demo benchmark, end to end",
            description="Generate images with tiny random-weight pipelines of eight "
                        "generator families on official prompts, add real photographs "
                        "(scikit-image's samples), build, verify, load every config "
                        "with datasets.load_dataset, then fine-tune a tiny classifier "
                        "with accelerate launch and score every protocol, and run "
                        "every method of the paper (tiny) under the paper protocol "
                        "into one table. No GPU, no network. Rerunning resumes: "
                        "finished images, runs and table rows are reused.")
    d.add_argument("--out", default="demo", help="folder for raw/ and repo/ (default ./demo)")
    d.add_argument("--synthetic", action="store_true",
                   help="painted synthetic images instead of the generation jobs (no torch)")
    d.add_argument("--no-harness", action="store_true",
                   help="stop after loading the benchmark (no fine-tuning and scoring)")
    d.add_argument("--no-paper-table", action="store_true",
                   help="skip the methods x protocols table of the paper's methods")
    d.add_argument("--num-proc", type=int, default=1, help="build worker processes")
    d.add_argument("--keep-checkpoints", action="store_true",
                   help="keep every epoch's training state (default: the chosen epoch's only)")
    d.set_defaults(func=_cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    from iab.progress import quiet_library_bars

    args = parser().parse_args(argv)
    quiet_library_bars()  # a log file gets plain progress lines, not redrawn bars
    try:
        return args.func(args)
    except iab.BenchmarkError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
