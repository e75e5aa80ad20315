"""Fine-tune, linear-probe or score a Hub model on the benchmark's protocols.

    accelerate launch harness/run.py --model microsoft/resnet-50 --method finetune \\
        --protocol paper --dataset ImageAttributionBench/ImageAttributionBench
    python harness/run.py --model ./my-attributor --method score --protocol standard \\
        --dataset demo/repo

Writes results_<time>.json (DESIGN section 5), per-image samples_<protocol>_<time>.parquet,
confusion-matrix and robustness PNGs, a model card with model-index, and
.eval_results/imageattributionbench.yaml to --output-dir; --push-to-hub uploads them.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import imageattributionbench as iab
from iab.scripts import DefaultsHelpFormatter, run_script
from iab.faults import fault_point
from harness.data import DEFAULT_POLICY, POLICIES, POLICY_TEXT
from harness.presets import SCHEDULERS

PROTOCOLS = ("standard", "open_set", "paper", "all") + tuple(
    name for name in iab.PROTOCOLS if name.startswith("semantic_disjoint"))
DEGRADED = tuple(iab.DEGRADATIONS)


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
    return [Job(protocol, ((protocol, ("test_seen", "test")),))]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter, description=__doc__.split("\n\n")[0])
    p.add_argument("--config", help="YAML file whose keys set defaults for these options")
    p.add_argument("--preset", help="the paper's settings by name: resnet50, clip-lr, or a "
                                    "method (dct-cnn, patch-forensics, dna-det, repmix, "
                                    "patchcraft, pose, ssp, defl, hifi-net, ucf); --config "
                                    "and flags still win")
    what = p.add_argument_group("what")
    what.add_argument("--model", help="Hub id or local path; init:METHOD[:tiny] starts a "
                                      "paper method from scratch in <output-dir>/init")
    what.add_argument("--model-revision", help="revision of a Hub model")
    what.add_argument("--method", default="finetune", help="finetune | linear_probe | score")
    what.add_argument("--protocol", default="standard",
                      help=" | ".join(PROTOCOLS[:4]) + " | semantic_disjoint[_<subclass>] "
                           "(paper: standard + degraded + the three semantic tasks; all: paper "
                           "+ open_set)")
    what.add_argument("--dataset", default=iab.HUB_REPO_ID,
                      help="dataset repo id or a folder built by `iab build`")
    what.add_argument("--revision", help="dataset revision (commit sha or branch)")
    what.add_argument("--streaming", action="store_true",
                      help="read the dataset as a stream: no download, bounded memory")
    train = p.add_argument_group("training")
    train.add_argument("--epochs", type=int, default=3, help="training epochs")
    train.add_argument("--batch-size", type=int, default=32, help="images per step and process")
    train.add_argument("--lr", type=float, default=1e-3, help="(peak) learning rate")
    train.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay")
    train.add_argument("--scheduler", choices=SCHEDULERS, default="onecycle",
                       help="learning rate: onecycle (warm-up then cosine, per step), step "
                            "(x0.9 each epoch, the paper's ResNet-50), constant")
    train.add_argument("--seed", type=int, default=0, help="seeds weights, order and crops")
    train.add_argument("--probe", choices=("adamw", "lbfgs"), default="adamw",
                       help="linear_probe head: adamw (epochs of AdamW) or lbfgs (the paper's "
                            "CLIP-LR: standardised multinomial logistic regression, C=1)")
    train.add_argument("--preprocess", choices=POLICIES,
                       help="default: the method model's own input policy, else "
                            "native_crop for finetune and processor otherwise")
    train.add_argument("--num-workers", type=int, default=1, help="decode workers")
    train.add_argument("--resume", action="store_true", help="continue from the last epoch")
    train.add_argument("--keep-checkpoints", action="store_true",
                       help="keep every epoch's accelerate state (default: only the chosen "
                            "epoch's, and the last one while training)")
    train.add_argument("--stop-after-epoch", type=int,
                       help="stop cleanly after this epoch (preemptible machines); rerun "
                            "with --resume")
    train.add_argument("--on-corrupt", choices=("skip", "fail"), default="fail",
                       help="an undecodable image: skip it (counted) or stop (default)")
    out = p.add_argument_group("output")
    out.add_argument("--output-dir", default="outputs",
                     help="results, samples, plots, model card and the model")
    out.add_argument("--push-to-hub", action="store_true")
    out.add_argument("--hub-model-id", help="model repo to push to (default: --model's name)")
    out.add_argument("--results-repo", help="also upload the results JSON to this dataset repo")
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
    from harness.models import check_method

    check_method(args.method)
    jobs_for(args.protocol)
    if args.probe == "lbfgs" and (args.method != "linear_probe" or args.streaming):
        p.error("--probe lbfgs (the clip-lr preset's) fits a linear_probe head on all "
                "training embeddings at once: use it with --method linear_probe and without "
                "--streaming, or pass --probe adamw")
    return args


def _git_hash() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _environment(accelerator) -> dict:
    import accelerate
    import datasets
    import torch
    import transformers

    hardware = torch.cuda.get_device_name() if torch.cuda.is_available() else \
        f"CPU ({platform.processor() or platform.machine()})"
    return {"git_hash": _git_hash(), "hardware": hardware,
            "num_processes": accelerator.num_processes,
            "libraries": {"torch": torch.__version__, "transformers": transformers.__version__,
                          "datasets": datasets.__version__, "accelerate": accelerate.__version__,
                          "python": platform.python_version()}}


def _save_model(accelerator, model, processor, folder: Path) -> None:
    """A fine-tuned model as a Hub model folder; a linear probe as its head's weights."""
    from safetensors.torch import save_file

    from harness.models import Classifier

    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return
    folder.mkdir(parents=True, exist_ok=True)
    inner = accelerator.unwrap_model(model)
    if isinstance(inner, Classifier):
        inner.model.save_pretrained(folder)
        processor.save_pretrained(folder)
    else:
        save_file({k: v.contiguous() for k, v in inner.head.state_dict().items()},
                  str(folder / "linear_probe_head.safetensors"))


def main(args: argparse.Namespace) -> int:
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from harness import data, models
    from harness.metrics import (degradation_drop, load_metric, rejection_threshold,
                                 seen_unseen_gap)
    from harness.results import OPEN_SET_SUMMARY, RESULTS_SCHEMA_VERSION
    from harness.predict import predict, predict_stream
    from harness.report import push_report, write_report
    from harness.train import SELECTION_RULE, TrainConfig, fit
    from iab.progress import quiet_library_bars

    quiet_library_bars()  # a log file gets plain progress lines, not redrawn bars
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    fault_point(f"harness.run.{args.preset or 'main'}")  # kill tests (iab/faults.py)
    set_seed(args.seed)
    out_dir = Path(args.output_dir)
    model_name = requested = args.model  # as results and the Hub will know it
    if args.model.startswith("init:"):  # a paper method from scratch
        from methods.init import PRETRAINED, check_name, init_checkpoint

        _, name, *scale = args.model.split(":")
        check_name(name)
        if scale not in ([], ["tiny"], ["scratch"]):
            raise iab.BenchmarkError(f"{args.model}: write init:{name} (the paper's start, "
                                     f"ImageNet/CLIP weights where it uses them), "
                                     f"init:{name}:scratch or init:{name}:tiny")
        model_name = f"iab-{name}" + (f"-{scale[0]}" if scale else "")
        with accelerator.local_main_process_first():  # each node writes its own copy
            if accelerator.is_local_main_process:
                weights = {} if scale else PRETRAINED.get(name, {})
                init_checkpoint(name, out_dir / "init", tiny=scale == ["tiny"], seed=args.seed,
                                **weights)
        args.model = str(out_dir / "init")
    record = models.method_record(args.model, args.model_revision)  # read once, used twice
    policy = args.preprocess or (record or {}).get("input_policy") or \
        DEFAULT_POLICY[args.method]
    processor = models.load_processor(args.model, args.model_revision)
    geo = data.geometry(processor, policy)
    metric = load_metric()
    created = datetime.now(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    cfg = TrainConfig(args.epochs, args.batch_size, args.lr, args.weight_decay, args.seed,
                      0, args.stop_after_epoch, args.scheduler, args.keep_checkpoints)
    protocols, samples, n_samples, training = {}, {}, {}, {}
    dataset_revision = args.revision
    n_params = None
    started = time.perf_counter()

    def decoded(config: str, split: str):
        ds = data.load_split(args.dataset, config, split, args.revision)
        key = f"{args.dataset}|{args.revision}|{ds._fingerprint}|{config}|{split}"
        with accelerator.main_process_first():  # one process decodes, the others reuse
            return data.decode_split(ds, key, policy, geo.size, args.num_workers,
                                     args.on_corrupt, accelerator.is_local_main_process)

    def evaluate(model, config: str, split: str, allowed):
        if args.streaming:
            ds = data.load_split(args.dataset, config, split, args.revision, streaming=True)
            return predict_stream(accelerator, model, ds, policy, geo, args.batch_size,
                                  args.on_corrupt, allowed)
        return predict(accelerator, model, decoded(config, split), geo, args.batch_size,
                       allowed)

    for job in jobs_for(args.protocol):
        proto = iab.protocol(job.train_config)
        known = proto.extra.get("known_labels")
        allowed = None
        if known:
            allowed = torch.zeros(len(iab.LABELS), dtype=torch.bool)
            allowed[[iab.LABEL_IDS[k] for k in known]] = True
        model = models.build(args.method, args.model, args.model_revision, geo.size)
        n_params = models.parameter_count(model)
        if args.method != "score":
            if args.streaming:
                train, val = (data.open_stream(args.dataset, job.train_config, s, args.revision,
                                               policy, geo.size, args.on_corrupt)
                              for s in ("train", "validation"))
            else:
                train, val = decoded(job.train_config, "train"), decoded(job.train_config,
                                                                         "validation")
            if args.method == "linear_probe" and args.probe == "lbfgs":
                from harness.probe import fit_probe

                model, log = fit_probe(accelerator, model, train, val, geo, args.batch_size,
                                       allowed)
            else:
                model, log = fit(accelerator, model, train, val, geo, cfg,
                                 out_dir / "checkpoints" / job.train_config, args.resume,
                                 allowed)
            training[job.train_config] = log
            if log.get("stopped_early"):
                accelerator.print(f"stopped after epoch {args.stop_after_epoch}; rerun with "
                                  "--resume to continue")
                return 0
            # the chosen weights: the first job's at the root (the model repo), others beside
            first = job == jobs_for(args.protocol)[0]
            _save_model(accelerator, model, processor,
                        out_dir if first else out_dir / "models" / job.train_config)
        else:
            model = accelerator.prepare(model)
        threshold = None
        if known:  # open set: reject below the confidence that accepts 95% of known validation
            val_pred = evaluate(model, job.train_config, "validation", allowed)
            threshold = rejection_threshold(val_pred.probabilities[:, allowed.numpy()].max(1))
        for config, splits in job.evals:
            result = {"splits": {}, "summary": {}}
            for split in splits:
                pred = evaluate(model, config, split, allowed)
                if pred.skipped:
                    accelerator.print(f"{config}/{split}: skipped {len(pred.skipped)} "
                                      f"undecodable image(s), e.g. {pred.skipped[0]}")
                if accelerator.is_main_process:
                    metrics = metric.compute(
                        predictions=pred.predictions.tolist(), references=pred.labels.tolist(),
                        scores=pred.probabilities.tolist(), semantics=pred.semantics,
                        labels=list(iab.LABELS), known_labels=known,
                        rejection_threshold=threshold)
                    metrics["skipped"] = len(pred.skipped)
                    result["splits"][split] = metrics
                    n_samples[f"{config}/{split}"] = len(pred.labels)
                    samples.setdefault(config, []).extend(
                        {"protocol": config, "split": split, "sha256": pred.sha256[i],
                         "generator": pred.generators[i], "semantic": pred.semantics[i],
                         "label": int(pred.labels[i]), "prediction": int(pred.predictions[i]),
                         "score": float(pred.probabilities[i].max()),
                         "probabilities": pred.probabilities[i].tolist()}
                        for i in range(len(pred.labels)))
            protocols[config] = result
        if accelerator.is_main_process:
            if "degraded" in protocols and "standard" in protocols:
                summary = degradation_drop(
                    protocols["standard"]["splits"]["test"]["accuracy"],
                    {s: m["accuracy"] for s, m in protocols["degraded"]["splits"].items()})
                summary["clean_accuracy"] = summary.pop("clean")
                protocols["degraded"]["summary"] = summary
            for name, res in protocols.items():
                if name.startswith("semantic_disjoint"):
                    res["summary"] = seen_unseen_gap(res["splits"]["test_seen"]["accuracy"],
                                                     res["splits"]["test"]["accuracy"])
                if name == "open_set":
                    res["summary"] = {k: res["splits"]["test"][k] for k in OPEN_SET_SUMMARY}

    if not accelerator.is_main_process:
        return 0
    run_config = {k: v for k, v in vars(args).items()}
    run_config["model_requested"] = requested  # init:NAME before it became a folder
    run_config["preprocess"] = {"policy": policy, "description": POLICY_TEXT[policy],
                                "size": geo.size, "mean": list(geo.mean), "std": list(geo.std)}
    run_config["training"] = training
    if record:
        run_config["method_record"] = record
    run_config["seconds"] = round(time.perf_counter() - started, 1)
    results = {
        "schema_version": RESULTS_SCHEMA_VERSION, "benchmark": iab.BENCHMARK_NAME,
        "benchmark_version": iab.BENCHMARK_VERSION, "created_at": created,
        "dataset": {"repo": args.dataset, "revision": dataset_revision},
        "model": {"id": model_name, "revision": args.model_revision, "parameters": n_params},
        "method": args.method, "run_config": run_config,
        "checkpoint_selection": SELECTION_RULE if args.method != "score" else
        "none: the model is scored as it is",
        "protocols": protocols, "environment": _environment(accelerator),
        "n_samples": n_samples,
    }
    paths = write_report(results, out_dir, samples)
    print(console_summary(protocols) + f"\nwrote {len(paths)} files to {out_dir}")
    if args.push_to_hub:
        repo_id = args.hub_model_id or Path(model_name).name
        push_report(out_dir, repo_id, results_repo=args.results_repo)
        print(f"pushed to {repo_id}")
    return 0


def console_summary(protocols: dict) -> str:
    """What a run prints at the end: accuracy per split; for the open set, the scores that
    mean something there (its plain accuracy counts every unknown image as an error)."""
    closed = ", ".join(f"{p}/{s} {m['accuracy']:.3f}" for p, r in protocols.items()
                       if p != "open_set" for s, m in r["splits"].items())
    lines = [f"accuracy: {closed}"] if closed else []
    test = protocols.get("open_set", {}).get("splits", {}).get("test")
    if test is not None:
        def f(x):
            return "n/a" if x is None else f"{x:.3f}"

        lines.append(f"open_set/test: known-class accuracy {f(test['known_accuracy'])}, AUROC "
                     f"of rejecting unknown generators {f(test['auroc_unknown'])}, OSCR "
                     f"{f(test['oscr'])} (unknown images rejected at the validation threshold: "
                     f"{f(test.get('unknown_rejection_rate'))})")
    return "\n".join(lines)


if __name__ == "__main__":
    run_script(lambda: main(parse_args()))
