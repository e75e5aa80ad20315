"""The options of harness/run.py, and the jobs each protocol runs.

Every option takes both spellings, ``--push-to-hub`` and ``--push_to_hub``, as
``transformers.HfArgumentParser`` scripts do; ``--help`` shows every default. Precedence:
``--preset`` < ``--config`` YAML < the command line.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import imageattributionbench as iab
from harness.data import POLICIES
from harness.presets import SCHEDULERS
from harness.results import METHODS
from iab.scripts import DefaultsHelpFormatter

PROTOCOLS = ("standard", "open_set", "paper", "all", "paper_exact") + tuple(
    name for name in iab.PROTOCOLS if name.startswith("semantic_disjoint")) + tuple(
    iab.PAPER_EXACT_TASKS)  # each task alone: a released checkpoint of that task is scored
DEGRADED = tuple(iab.DEGRADATIONS)
TRACKERS = ("tensorboard", "trackio", "wandb")
# never written to results, cards or logs: a token is a secret
SECRET_OPTIONS = ("hub_token",)


@dataclass(frozen=True)
class Job:
    """Train on one config (unless scoring), then evaluate some (config, splits)."""

    train_config: str
    evals: tuple[tuple[str, tuple[str, ...]], ...]


def jobs_for(protocol: str) -> list[Job]:
    if protocol not in PROTOCOLS:
        raise iab.unknown_name("protocol", protocol, PROTOCOLS)
    standard = Job("standard", (("standard", ("test",)), ("degraded", DEGRADED)))
    if protocol == "standard":
        return [standard]
    if protocol == "open_set":
        return [Job("open_set", (("open_set", ("test",)),))]
    paper = [standard] + [Job(p, ((p, ("test_seen", "test")),)) for p in iab.PAPER_SEMANTIC_TASKS]
    if protocol == "paper":
        return paper
    if protocol == "all":  # the paper's set and open-set rejection: every leaderboard number
        return paper + [Job("open_set", (("open_set", ("test",)),))]
    if protocol == "paper_exact":  # the paper's own split (built with iab build --paper-split)
        return [Job("paper_exact", (("paper_exact", ("test",)),
                                    ("paper_exact_degraded", DEGRADED)))] + [
            Job(p, ((p, ("test",)),)) for p in iab.PAPER_EXACT_TASKS]
    if protocol in iab.PAPER_EXACT_TASKS:
        return [Job(protocol, ((protocol, ("test",)),))]
    return [Job(protocol, ((protocol, ("test_seen", "test")),))]


def _add(group, flag: str, **kwargs):
    """``--some-option`` and ``--some_option`` for one destination."""
    flags = [flag] + (["--" + flag[2:].replace("-", "_")] if "-" in flag[2:] else [])
    return group.add_argument(*flags, **kwargs)


def _report_to(value: str) -> str:
    names = [v.strip() for v in value.split(",") if v.strip()]
    bad = [n for n in names if n not in (*TRACKERS, "all", "none")]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"{value!r}: name trackers from {', '.join(TRACKERS)} (comma-separated), all or none")
    return ",".join(names)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="harness/run.py",
        description="Fine-tune, linear-probe or score a model on the ImageAttributionBench "
                    "protocols; write results, per-image predictions, plots and a model card, "
                    "and push them to the Hub.",
        formatter_class=DefaultsHelpFormatter)
    _add(p, "--config", help="YAML file whose keys set defaults for these options")
    _add(p, "--preset", help="the official scripts' settings by name: resnet50, clip-lr, or a "
                             "method (dct-cnn, patch-forensics, gfd, dna-det, repmix, hifi-net, "
                             "ucf, pose, patchcraft, ssp, defl); NAME-ours: this project's "
                             "alternative; --config and flags still win")
    what = p.add_argument_group("what")
    _add(what, "--model", help="Hub id or local path; init:METHOD[:tiny] starts a paper "
                               "method from scratch in <output-dir>/init")
    _add(what, "--model-revision", help="revision of a Hub model")
    _add(what, "--method", default="finetune", help="finetune | linear_probe | score")
    _add(what, "--protocol", default="standard",
         help=" | ".join(PROTOCOLS[:5]) + " | semantic_disjoint[_<subclass>] (paper: standard "
              "+ degraded + the three semantic tasks; all: paper + open_set; paper_exact: the "
              "same on the paper's own split, from a build made with iab build --paper-split)")
    _add(what, "--dataset", default=iab.HUB_REPO_ID,
         help="Hub dataset id, or a folder built by `iab build` (local paths are checked "
              "first)")
    _add(what, "--revision", help="Hub dataset revision (branch, tag or sha; resolved to the "
                                  "commit sha the results record; default main)")
    _add(what, "--hub-dataset", help="the Hub repo a local --dataset folder copies: its "
                                     "manifest.json must equal that repo's, and results then "
                                     "count for that repo's leaderboard")
    _add(what, "--hub-dataset-revision", help="revision of --hub-dataset (default main)")
    _add(what, "--streaming", action="store_true",
         help="read the dataset as a stream: no download, bounded memory")
    train = p.add_argument_group("training")
    _add(train, "--epochs", type=int, default=3, help="training epochs")
    _add(train, "--batch-size", type=int, default=32, help="images per batch and process")
    _add(train, "--gradient-accumulation-steps", type=int, default=1,
         help="batches per optimiser step (accelerator.accumulate)")
    _add(train, "--lr", type=float, default=1e-3, help="peak learning rate")
    _add(train, "--weight-decay", type=float, default=0.01, help="AdamW weight decay")
    _add(train, "--scheduler", choices=SCHEDULERS, default="onecycle",
         help="learning rate: onecycle (warm-up then cosine, per step), step (x0.9 each "
              "epoch, the paper's ResNet-50), constant, step500 (x0.9 every 500 batches, the "
              "official POSE)")
    _add(train, "--select", choices=("best", "last"), default="best",
         help="the checkpoint tested: best validation accuracy, or the last epoch (the "
              "official scripts' post-training test)")
    _add(train, "--seed", type=int, default=0, help="seed of weights, order and crops")
    _add(train, "--probe", choices=("adamw", "lbfgs"), default="adamw",
         help="linear_probe head: adamw (epochs of AdamW) or lbfgs (the paper's CLIP-LR: "
              "standardised multinomial logistic regression, C=1)")
    _add(train, "--double-softmax", action="store_true",
         help="linear_probe: score with the softmax of the probe's probabilities, as the "
              "official CLIP-LR evaluation does (AUROC and AP change, accuracy does not)")
    _add(train, "--preprocess", choices=POLICIES,
         help="input policy (default: the method model's own, else native_crop for finetune "
              "and processor otherwise)")
    _add(train, "--num-workers", type=int, default=1, help="decode workers")
    _add(train, "--resume", action="store_true", help="continue from the last epoch")
    _add(train, "--keep-checkpoints", action="store_true",
         help="keep every epoch's accelerate state (default: only the chosen epoch's, and the "
              "last one while training)")
    _add(train, "--stop-after-epoch", type=int,
         help="stop cleanly after this epoch (preemptible machines); rerun with --resume")
    _add(train, "--on-corrupt", choices=("skip", "fail"), default="fail",
         help="an undecodable image: skip it (counted) or stop")
    out = p.add_argument_group("output")
    _add(out, "--output-dir", default="outputs", help="where results, plots, card and model go")
    _add(out, "--report-to", type=_report_to, default="none",
         help="experiment trackers through accelerate: " + ", ".join(TRACKERS)
              + " (comma-separated), all, or none; logs go to <output-dir>/logs")
    _add(out, "--license", help="license of the model card (default: the base model's)")
    hub = p.add_argument_group("hub")
    _add(hub, "--push-to-hub", action="store_true",
         help="push the model, card, results and plots (a scored model: a pull request with "
              "its .eval_results on the model's own repo)")
    _add(hub, "--hub-model-id", help="model repo to push to (default: your namespace, "
                                     "<model name>-imageattributionbench)")
    _add(hub, "--hub-private-repo", action="store_true", help="create the model repo private")
    _add(hub, "--hub-token", help="Hub token (default: HF_TOKEN or the saved `hf auth login`)")
    _add(hub, "--results-repo", help="also add the results JSON to this dataset repo (a pull "
                                     "request when you cannot write to it)")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    config = {}
    if args.config:
        import yaml

        config = {k.replace("-", "_"): v for k, v in
                  (yaml.safe_load(Path(args.config).read_text()) or {}).items()}
        known = {a.dest for a in p._actions}
        unknown = sorted(set(config) - known)
        if unknown:
            p.error(f"{args.config}: unknown option(s) {', '.join(unknown)}")
    name = args.preset or config.get("preset")
    if name:  # precedence: preset < --config < command line
        from harness.presets import preset

        p.set_defaults(**preset(name))
    p.set_defaults(**config)
    args = p.parse_args(argv)
    if not args.model:
        p.error("--model is required (or a --preset that names one)")
    for action in p._actions:  # values from a preset or --config skip argparse's own check
        value = getattr(args, action.dest, None)
        if action.choices and value is not None and value not in action.choices:
            p.error(f"--{action.dest.replace('_', '-')} {value!r}: choose from "
                    f"{', '.join(map(str, action.choices))}")
    if args.method not in METHODS:  # (harness.models.check_method needs torch: not yet)
        raise iab.unknown_name("method", args.method, METHODS)
    jobs_for(args.protocol)
    if args.gradient_accumulation_steps < 1:
        p.error("--gradient-accumulation-steps must be 1 or more")
    if args.double_softmax and args.method != "linear_probe":
        p.error("--double-softmax is for --method linear_probe (a converted official "
                "checkpoint records it in its config: methods.convert_official)")
    if args.probe == "lbfgs" and (args.method != "linear_probe" or args.streaming):
        p.error("--probe lbfgs (the clip-lr preset's) fits a linear_probe head on all "
                "training embeddings at once: use it with --method linear_probe and without "
                "--streaming, or pass --probe adamw")
    if args.method == "score" and args.push_to_hub and args.hub_model_id:
        p.error("--method score pushes no model: its results go to the scored model's own "
                "repo (a pull request when you cannot write to it); drop --hub-model-id")
    return args
