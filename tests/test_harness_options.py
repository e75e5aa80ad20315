"""harness/run.py's habits of Hugging Face scripts: both option spellings, every default in
--help, real gradient accumulation, accelerate's device, trackers and logger, one clean
Accelerator state per job, and no secret or absolute path in what it writes."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import imageattributionbench as iab
from harness import options
from iab.scripts import DefaultsHelpFormatter
from harness import run as harness_run


def _reset_accelerate():
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def test_both_spellings_of_every_option():
    dashed = options.parse_args(
        ["--model", "m", "--batch-size", "8", "--output-dir", "o", "--push-to-hub",
         "--hub-model-id", "me/x", "--gradient-accumulation-steps", "2", "--report-to",
         "tensorboard,wandb", "--hub-private-repo", "--num-workers", "2"])
    underscored = options.parse_args(
        ["--model", "m", "--batch_size", "8", "--output_dir", "o", "--push_to_hub",
         "--hub_model_id", "me/x", "--gradient_accumulation_steps", "2", "--report_to",
         "tensorboard,wandb", "--hub_private_repo", "--num_workers", "2"])
    assert vars(dashed) == vars(underscored)
    parser = options.build_parser()
    for action in parser._actions:
        long = [o for o in action.option_strings if o.startswith("--")]
        if "-" in action.dest or "_" in action.dest:
            assert f"--{action.dest.replace('_', '-')}" in long, long
            assert f"--{action.dest}" in long, long
    with pytest.raises(SystemExit):
        options.parse_args(["--model", "m", "--report-to", "mlflow"])


def test_help_shows_every_default():
    parser = options.build_parser()
    assert parser.formatter_class is DefaultsHelpFormatter
    for action in parser._actions:
        if action.dest != "help":
            assert action.help, f"{action.option_strings} has no help (so no default shown)"
    text = " ".join(parser.format_help().split())
    for shown in ("training epochs (default: 3)", "(default: finetune)",
                  f"(default: {iab.HUB_REPO_ID})", "(default: onecycle)", "(default: none)",
                  "batches per optimiser step (accelerator.accumulate) (default: 1)"):
        assert shown in text, shown


def test_accelerate_chooses_the_device(monkeypatch, tmp_path):
    import accelerate

    seen = {}

    class Capture:
        def __init__(self, **kwargs):
            seen.update(kwargs)

    monkeypatch.setattr(accelerate, "Accelerator", Capture)
    harness_run._accelerator(options.parse_args(["--model", "m", "--report-to", "tensorboard"]),
                             tmp_path)
    assert "cpu" not in seen  # not forced to CPU where CUDA is missing (MPS, XPU ...)
    assert seen["log_with"] == ["tensorboard"] and seen["gradient_accumulation_steps"] == 1


def test_secrets_and_paths_stay_out_of_the_run_config(tmp_path):
    args = options.parse_args(["--model", str(tmp_path / "m"), "--hub-token", "hf_secret",
                               "--dataset", str(tmp_path / "bench"),
                               "--output-dir", str(tmp_path / "out")])
    (tmp_path / "m").mkdir()
    (tmp_path / "bench").mkdir()
    config = harness_run._run_config(args, args.model, tmp_path / "out")
    assert "hub_token" not in config and "hf_secret" not in json.dumps(config)
    assert (config["model"], config["dataset"], config["output_dir"]) == ("m", "bench", "out")


def _vit_classifier(seed: int):
    import torch
    from transformers import ViTConfig, ViTForImageClassification

    from harness.models import Classifier

    torch.manual_seed(seed)
    config = ViTConfig(image_size=32, patch_size=16, hidden_size=16, num_hidden_layers=1,
                       num_attention_heads=2, intermediate_size=32, num_labels=4)
    return Classifier(ViTForImageClassification(config))  # LayerNorm only: no batch statistics


def _split(n: int, seed: int):
    from harness.data import DecodedSplit

    rng = np.random.default_rng(seed)
    return DecodedSplit(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
                        rng.integers(0, 4, n), ["cat"] * n, ["SD1_5"] * n,
                        [f"{i:064x}" for i in range(n)], [])


@pytest.mark.parametrize("batch, accumulate", [(16, 1), (8, 2), (4, 4)])
def test_gradient_accumulation_is_real(tmp_path, batch, accumulate):
    """batch b with a steps of accumulation reaches batch a*b's weights, in a*b/b fewer
    optimiser steps than batches."""
    import torch
    from accelerate import Accelerator

    from harness.data import Geometry
    from harness.train import TrainConfig, fit

    _reset_accelerate()
    accelerator = Accelerator(cpu=True, gradient_accumulation_steps=accumulate)
    model = _vit_classifier(0)
    geo = Geometry(32, (0.5,) * 3, (0.5,) * 3)
    cfg = TrainConfig(1, batch, 1e-3, 0.0, 0, 0, None, "constant")
    model, log = fit(accelerator, model, _split(64, 1), _split(8, 2), geo, cfg, tmp_path, False)
    weights = torch.cat([p.detach().flatten() for p in
                         accelerator.unwrap_model(model).parameters()])
    assert log["epochs"][0]["optimizer_steps"] == 64 // 16
    _reset_accelerate()
    ref_acc = Accelerator(cpu=True)
    ref, _ = fit(ref_acc, _vit_classifier(0), _split(64, 1), _split(8, 2), geo,
                 TrainConfig(1, 16, 1e-3, 0.0, 0, 0, None, "constant"), tmp_path / "ref",
                 False)
    ref_weights = torch.cat([p.detach().flatten() for p in
                             ref_acc.unwrap_model(ref).parameters()])
    _reset_accelerate()
    # float summation order differs; without accumulation they differ by ~1e-3
    assert torch.allclose(weights, ref_weights, atol=1e-5), \
        (weights - ref_weights).abs().max()


@pytest.fixture(scope="module")
def two_job_run(tiny_bench, classifier, tmp_path_factory):
    """A two-job protocol (both semantic tasks of the tiny benchmark) with a model in a home
    folder, an absolute output folder and tensorboard logging."""
    root = tmp_path_factory.mktemp("jobs")
    home_model = root / "home" / "alice" / "models" / "tiny"
    shutil.copytree(classifier, home_model)
    out = root / "out"
    jobs = [options.Job(p, ((p, ("test_seen", "test")),))
            for p in ("semantic_disjoint", "semantic_disjoint_bedroom")]
    original = harness_run.jobs_for
    harness_run.jobs_for = lambda protocol: jobs
    try:
        code = harness_run.main(harness_run.parse_args(
            ["--model", str(home_model), "--dataset", str(tiny_bench), "--protocol",
             "semantic_disjoint", "--epochs", "1", "--batch_size", "16",
             "--report_to", "tensorboard", "--output_dir", str(out)]))
    finally:
        harness_run.jobs_for = original
    assert code == 0
    return root, out


def test_each_job_checkpoints_its_own_model_only(two_job_run):
    _, out = two_job_run
    for job in ("semantic_disjoint", "semantic_disjoint_bedroom"):
        files = {p.name for p in (out / "checkpoints" / job / "epoch_0").iterdir()}
        assert "model.safetensors" in files and "optimizer.bin" in files, files
        # an Accelerator that kept the first job's objects saves them again as model_1 ...
        assert not any(re.match(r"(model|optimizer|scheduler)_\d", f) for f in files), files


def test_tensorboard_gets_the_training_curves(two_job_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, out = two_job_run
    tags = set()
    for events in (out / "logs").rglob("events.out.tfevents.*"):  # scalars, and hparams
        acc = EventAccumulator(str(events))
        acc.Reload()
        tags |= set(acc.Tags()["scalars"])
    assert {"semantic_disjoint/train_loss", "semantic_disjoint_bedroom/validation_accuracy"} \
        <= tags, tags


def test_no_absolute_path_in_results_or_card(two_job_run):
    root, out = two_job_run
    (results,) = out.glob("results_*.json")
    for path in (results, out / "README.md"):
        text = path.read_text()
        assert str(root) not in text and "/home/alice" not in text, path.name
        assert str(Path.home()) not in text or str(Path.home()) == "/", path.name
    data = json.loads(results.read_text())
    assert data["model"] == {**data["model"], "id": "tiny", "local": True}
    assert data["run_config"]["output_dir"] == "out"
    assert data["dataset"]["repo"] == "repo" and data["dataset"]["local"] is True
