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
import logging
import platform
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import imageattributionbench as iab
from iab.scripts import run_script
from iab.faults import fault_point
from harness.data import DEFAULT_POLICY, POLICY_TEXT
from harness.options import (DEGRADED, PROTOCOLS, SECRET_OPTIONS, Job,  # noqa: F401 (API)
                             jobs_for, parse_args)

logger = logging.getLogger(__name__)


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
    """A fine-tuned model as a Hub model folder (with the image processor it was evaluated
    with); a linear probe as its head's weights."""
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


def _setup_logging() -> None:
    """Log lines as the transformers and diffusers example scripts do (accelerate's logger
    writes on the main process only)."""
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
                        datefmt="%m/%d/%Y %H:%M:%S", level=logging.INFO)
    # a line per saved file and sampler of every epoch's state: noise in a run's log
    for name in ("accelerate.checkpointing", "accelerate.accelerator"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _accelerator(args: argparse.Namespace, out_dir: Path):
    """One Accelerator for the run; the device is accelerate's choice (CUDA, MPS, XPU, CPU)."""
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration

    trackers = None if args.report_to == "none" else \
        ("all" if args.report_to == "all" else args.report_to.split(","))
    return Accelerator(gradient_accumulation_steps=args.gradient_accumulation_steps,
                       log_with=trackers,
                       project_config=ProjectConfiguration(project_dir=str(out_dir),
                                                           logging_dir=str(out_dir / "logs")))


def _run_config(args: argparse.Namespace, requested: str, out_dir: Path) -> dict:
    """The resolved options as results record them: no secrets, no absolute paths."""
    from harness.dataset_source import portable_path, recorded_path

    config = {k: v for k, v in vars(args).items() if k not in SECRET_OPTIONS}
    config["dataset"] = recorded_path(args.dataset, out_dir)
    config["output_dir"] = portable_path(args.output_dir)
    if args.config:
        config["config"] = portable_path(args.config, out_dir)
    config["model"] = config["model_requested"] = recorded_path(requested, out_dir)
    return config


def main(args: argparse.Namespace) -> int:
    from harness.dataset_source import portable_path, resolve_dataset

    out_dir = Path(args.output_dir)
    # first, before torch loads: a mistyped folder or an unreachable Hub fails in a second
    source = [resolve_dataset(args.dataset, args.revision, out_dir=out_dir,
                              hub_dataset=args.hub_dataset,
                              hub_revision=args.hub_dataset_revision)]
    import torch
    from accelerate.logging import get_logger
    from accelerate.utils import broadcast_object_list, set_seed

    from harness import data, models
    from harness.metrics import (degradation_drop, load_metric, rejection_threshold,
                                 score_split, seen_unseen_gap)
    from harness.predict import predict, predict_stream
    from harness.publish import card_info, check_push, push
    from harness.report import write_report
    from harness.results import OPEN_SET_SUMMARY, RESULTS_SCHEMA_VERSION
    from harness.train import SELECTION_RULES, TrainConfig, fit
    from iab.progress import quiet_library_bars

    quiet_library_bars()  # a log file gets plain progress lines, not redrawn bars
    _setup_logging()
    accelerator = _accelerator(args, out_dir)
    log = get_logger(__name__)
    fault_point(f"harness.run.{args.preset or 'main'}")  # kill tests (iab/faults.py)
    set_seed(args.seed)
    if accelerator.num_processes > 1:  # every process reads the sha the main one resolved
        broadcast_object_list(source)
    source = source[0]
    requested = args.model  # as the user gave it
    model_local = args.model.startswith("init:") or Path(args.model).expanduser().exists()
    model_name = args.model if not model_local else portable_path(args.model, out_dir)
    hub_repo = check_push(args, source, model_local) if (
        args.push_to_hub or args.results_repo) else None  # before hours of training
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
    model_processor = processor if policy == "processor" else None
    metric = load_metric()
    created = datetime.now(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    cfg = TrainConfig(args.epochs, args.batch_size, args.lr, args.weight_decay, args.seed,
                      0, args.stop_after_epoch, args.scheduler, args.select,
                      args.keep_checkpoints)
    run_config = _run_config(args, requested, out_dir)
    if args.report_to != "none":
        accelerator.init_trackers(iab.BENCHMARK_NAME, config={
            k: v for k, v in run_config.items() if isinstance(v, (int, float, str, bool))})
    protocols, samples, n_samples, training = {}, {}, {}, {}
    n_params = None
    started = time.perf_counter()

    def decoded(config: str, split: str):
        ds = data.load_split(source.load_path, config, split, source.revision)
        key = f"{source.load_path}|{source.revision}|{ds._fingerprint}|{config}|{split}"
        with accelerator.main_process_first():  # one process decodes, the others reuse
            return data.decode_split(ds, key, policy, geo.size, args.num_workers,
                                     args.on_corrupt, accelerator.is_local_main_process,
                                     model_processor)

    def evaluate(model, config: str, split: str, allowed):
        if args.streaming:
            ds = data.load_split(source.load_path, config, split, source.revision,
                                 streaming=True)
            return predict_stream(accelerator, model, ds, policy, geo, args.batch_size,
                                  args.on_corrupt, allowed, model_processor)
        return predict(accelerator, model, decoded(config, split), geo, args.batch_size,
                       allowed)

    jobs = jobs_for(args.protocol)
    for job in jobs:
        # each job starts clean: the Accelerator drops the models, optimisers and schedulers
        # it prepared before, so a job's checkpoints hold its own model only
        accelerator.free_memory()
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
                train, val = (data.open_stream(source.load_path, job.train_config, s,
                                               source.revision, policy, geo.size,
                                               args.on_corrupt, model_processor)
                              for s in ("train", "validation"))
            else:
                train, val = decoded(job.train_config, "train"), decoded(job.train_config,
                                                                         "validation")
            if args.method == "linear_probe" and args.probe == "lbfgs":
                from harness.probe import fit_probe

                model, log_ = fit_probe(accelerator, model, train, val, geo, args.batch_size,
                                        allowed, double_softmax=args.double_softmax)
            else:
                model, log_ = fit(accelerator, model, train, val, geo, cfg,
                                  out_dir / "checkpoints" / job.train_config, args.resume,
                                  allowed, tracker_prefix=job.train_config)
            training[job.train_config] = log_
            if log_.get("stopped_early"):
                log.info(f"stopped after epoch {args.stop_after_epoch}; rerun with --resume "
                         "to continue")
                accelerator.end_training()
                return 0
            # the chosen weights: the first job's at the root (the model repo), others beside
            _save_model(accelerator, model, data.saved_processor(policy, processor, geo),
                        out_dir if job == jobs[0] else out_dir / "models" / job.train_config)
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
                    log.warning(f"{config}/{split}: skipped {len(pred.skipped)} undecodable "
                                f"image(s), e.g. {pred.skipped[0]}")
                if accelerator.is_main_process:
                    metrics = score_split(metric, pred.predictions.tolist(),
                                          pred.labels.tolist(), pred.probabilities.tolist(),
                                          pred.semantics, known, rejection_threshold=threshold)
                    metrics["skipped"] = len(pred.skipped)
                    result["splits"][split] = metrics
                    n_samples[f"{config}/{split}"] = len(pred.labels)
                    samples.setdefault(config, []).extend(
                        {"protocol": config, "split": split, "sha256": pred.sha256[i],
                         "generator": pred.generators[i], "prompt_id": pred.prompt_ids[i],
                         "image_index": pred.image_indices[i], "semantic": pred.semantics[i],
                         "label": int(pred.labels[i]), "prediction": int(pred.predictions[i]),
                         "score": float(pred.probabilities[i].max()),
                         "probabilities": pred.probabilities[i].tolist()}
                        for i in range(len(pred.labels)))
            protocols[config] = result
        if accelerator.is_main_process:
            for clean, deg in (("standard", "degraded"), ("paper_exact", "paper_exact_degraded")):
                if deg in protocols and clean in protocols:
                    summary = degradation_drop(
                        protocols[clean]["splits"]["test"]["accuracy"],
                        {s: m["accuracy"] for s, m in protocols[deg]["splits"].items()})
                    summary["clean_accuracy"] = summary.pop("clean")
                    protocols[deg]["summary"] = summary
            for name, res in protocols.items():
                if name in iab.PAPER_EXACT_TASKS:
                    res["summary"] = {"unseen": res["splits"]["test"]["accuracy"]}
                if name.startswith("semantic_disjoint"):
                    res["summary"] = seen_unseen_gap(res["splits"]["test_seen"]["accuracy"],
                                                     res["splits"]["test"]["accuracy"])
                if name == "open_set":
                    res["summary"] = {k: res["splits"]["test"][k] for k in OPEN_SET_SUMMARY}
    accelerator.end_training()
    if not accelerator.is_main_process:
        return 0
    run_config["preprocess"] = {"policy": policy, "description": POLICY_TEXT[policy],
                                "size": geo.size, "mean": list(geo.mean), "std": list(geo.std)}
    run_config["training"] = training
    if record:
        run_config["method_record"] = record
    run_config["seconds"] = round(time.perf_counter() - started, 1)
    results = {
        "schema_version": RESULTS_SCHEMA_VERSION, "benchmark": iab.BENCHMARK_NAME,
        "benchmark_version": iab.BENCHMARK_VERSION, "created_at": created,
        "dataset": source.record(),
        "model": {"id": model_name, "revision": args.model_revision, "parameters": n_params,
                  "local": model_local},
        "method": args.method, "run_config": run_config,
        "checkpoint_selection": SELECTION_RULES[args.select] if args.method != "score" else
        "none: the model is scored as it is",
        "protocols": protocols, "environment": _environment(accelerator),
        "n_samples": n_samples,
    }
    info = card_info(args, requested, model_local, hub_repo, record)
    paths = write_report(results, out_dir, samples, info)
    print(console_summary(protocols), flush=True)  # the run's answer: stdout, not the log
    log.info(f"wrote {len(paths)} files to {out_dir}")
    if args.push_to_hub or args.results_repo:
        for line in push(args, out_dir, hub_repo):
            log.info(f"pushed {line}")
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
