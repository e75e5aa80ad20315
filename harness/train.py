"""Training with accelerate: fine-tuning and linear probes, checkpoints chosen on validation.

Each epoch ends with ``accelerator.save_state`` (model, optimiser, scheduler, RNG states) and a
validation score; the checkpoint kept for testing is the best on validation (or, with
``select="last"``, the last epoch's, as the official scripts test), never chosen on test.
``--resume`` restarts from the last saved epoch and, with the seeded per-epoch order, reaches the
same weights as an uninterrupted run. Only the last epoch's state (to resume from) and the best
one are kept while training, and the best one alone at the end, unless ``keep_checkpoints``.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate.logging import get_logger

from harness.data import DecodedSplit, Geometry, StreamingSplit
from harness.predict import StreamCrops, loader, predict, predict_stream, stream_loader

SELECTION_RULES = {
    "best": "best validation accuracy over epochs (test splits never used)",
    "last": "the last epoch (the official scripts' post-training test; test splits never used)"}
SELECTION_RULE = SELECTION_RULES["best"]
logger = get_logger(__name__)


@dataclass
class TrainConfig:
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    seed: int
    workers: int
    stop_after_epoch: int | None = None
    scheduler: str = "onecycle"
    select: str = "best"
    keep_checkpoints: bool = False  # every epoch's state, not just the chosen one


def _accuracy(pred) -> float:
    return float((pred.predictions == pred.labels).mean()) if len(pred.labels) else 0.0


def _validate(accelerator, model, val, geo: Geometry, batch_size: int, allowed):
    if isinstance(val, StreamingSplit):
        return predict_stream(accelerator, model, val.ds, val.policy, geo, batch_size,
                              val.on_corrupt, allowed, val.processor)
    return predict(accelerator, model, val, geo, batch_size, allowed)


def _scheduler(optimizer, cfg: TrainConfig, steps: int, steps_per_epoch: int, streaming: bool,
               procs: int = 1):
    """Stepped once per batch on each of ``procs`` processes. ``step`` is the paper's
    ResNet-50 schedule (x0.9 per epoch), ``step500`` the official POSE's (x0.9 every 500
    batches)."""
    if cfg.scheduler == "step":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.9 ** (step // steps_per_epoch))
    if cfg.scheduler == "step500":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.9 ** (step // (500 * procs)))
    if cfg.scheduler == "constant" or streaming:  # a stream's length is not known exactly
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr,
                                               total_steps=max(steps, 1), pct_start=0.1)


def fit(accelerator, model, train: DecodedSplit | StreamingSplit,
        val: DecodedSplit | StreamingSplit, geo: Geometry,
        cfg: TrainConfig, ckpt_dir: Path, resume: bool, allowed=None,
        tracker_prefix: str = "train"):
    """Train ``model``; loads the best-on-validation weights before returning.

    One optimiser step per ``accelerator.gradient_accumulation_steps`` batches
    (``accelerator.accumulate``: gradients are summed, the loss scaled, the step and the
    scheduler skipped in between). Per-epoch loss and validation accuracy go to the
    accelerate trackers (``--report-to``) under ``tracker_prefix``.

    Returns the prepared model and the training log (per-epoch loss and validation accuracy,
    the optimiser steps, and the chosen epoch).
    """
    from iab.progress import progress

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    stream = None
    if isinstance(train, StreamingSplit):
        stream = StreamCrops(train, cfg.seed)
        train_dl = stream_loader(stream, geo, cfg.batch_size)
        n_train = train.num_examples or 1
    else:
        train_dl = loader(train, geo, cfg.batch_size, shuffle_seed=cfg.seed,
                          workers=cfg.workers)
        n_train = len(train.labels)
    procs = accelerator.num_processes
    accumulate = accelerator.gradient_accumulation_steps
    batches = math.ceil(n_train / (cfg.batch_size * procs))  # per process and epoch
    updates = max(1, math.ceil(batches / accumulate))  # the last batch of an epoch steps too
    # accelerate steps a prepared scheduler once per process for each optimiser step
    scheduler = _scheduler(optimizer, cfg, cfg.epochs * updates * procs,
                           steps_per_epoch=procs * updates, streaming=stream is not None,
                           procs=procs)
    model, optimizer, train_dl, scheduler = accelerator.prepare(model, optimizer, train_dl,
                                                                scheduler)
    log_path = ckpt_dir / "training_log.json"
    log = {"epochs": [], "best_epoch": None, "best_validation_accuracy": -1.0,
           "selection": SELECTION_RULES[cfg.select], "gradient_accumulation_steps": accumulate}
    start = 0
    if resume and log_path.exists():
        log = json.loads(log_path.read_text())
        done = [e["epoch"] for e in log["epochs"]]
        if done:
            start = done[-1] + 1
            if start < cfg.epochs:  # a finished run keeps only its chosen epoch, loaded below
                accelerator.load_state(str(ckpt_dir / f"epoch_{done[-1]}"))
                logger.info(f"resumed from {ckpt_dir / f'epoch_{done[-1]}'}")
    for epoch in range(start, cfg.epochs):
        model.train()
        if stream is not None:
            stream.set_epoch(epoch)
        else:
            train_dl.set_epoch(epoch)
        total, count, steps = 0.0, 0, 0
        bar = progress(train_dl, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch",
                       disable=not accelerator.is_local_main_process)
        for pixels, labels, _ in bar:
            with accelerator.accumulate(model):
                # the model's own objective; open set: the head learns the known labels only
                _, loss = model(pixels, labels, allowed)
                accelerator.backward(loss)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                steps += accelerator.sync_gradients  # an optimiser step was taken
            total += loss.item() * len(labels)
            count += len(labels)
            bar.set_postfix(loss=f"{total / max(count, 1):.4f}")
        val_acc = _accuracy(_validate(accelerator, model, val, geo, cfg.batch_size, allowed))
        accelerator.save_state(str(ckpt_dir / f"epoch_{epoch}"))
        log["epochs"].append({"epoch": epoch, "train_loss": total / max(count, 1),
                              "validation_accuracy": val_acc, "optimizer_steps": steps})
        accelerator.log({f"{tracker_prefix}/train_loss": total / max(count, 1),
                         f"{tracker_prefix}/validation_accuracy": val_acc}, step=epoch)
        if val_acc > log["best_validation_accuracy"]:
            log["best_validation_accuracy"], log["best_epoch"] = val_acc, epoch
        if accelerator.is_main_process:
            tmp = log_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(log, indent=1))
            tmp.replace(log_path)
        accelerator.wait_for_everyone()
        if not cfg.keep_checkpoints and accelerator.is_main_process:
            _prune(ckpt_dir, keep={epoch, log["best_epoch"]})
        logger.info(f"epoch {epoch + 1}: train loss {total / max(count, 1):.4f}, "
                    f"validation accuracy {val_acc:.4f}")
        if cfg.stop_after_epoch is not None and epoch + 1 >= cfg.stop_after_epoch \
                and epoch + 1 < cfg.epochs:
            log["stopped_early"] = True
            return model, log
    chosen = cfg.epochs - 1 if cfg.select == "last" else log["best_epoch"]
    if chosen is not None:
        log["chosen_epoch"] = chosen
        if chosen != cfg.epochs - 1 or start >= cfg.epochs:  # the model holds another epoch
            accelerator.load_state(str(ckpt_dir / f"epoch_{chosen}"))
        accelerator.wait_for_everyone()
        if not cfg.keep_checkpoints and accelerator.is_main_process:
            _prune(ckpt_dir, keep={chosen})
    return model, log


def _prune(ckpt_dir: Path, keep: set) -> None:
    """Delete the epoch states other than ``keep`` (epoch numbers)."""
    for folder in ckpt_dir.glob("epoch_*"):
        suffix = folder.name.removeprefix("epoch_")
        if suffix.isdigit() and int(suffix) not in keep:
            shutil.rmtree(folder, ignore_errors=True)


def clear_checkpoints(ckpt_dir: Path) -> None:
    if ckpt_dir.exists():
        shutil.rmtree(ckpt_dir)
