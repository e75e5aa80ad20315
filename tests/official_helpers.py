"""Tiny random checkpoints in the official code's format (trainer dict, its key names,
DataParallel's ``module.`` where it saves one), from our official networks: their names are
the official ones (tests/test_official.py checks them at full size against the names
recorded from the official code)."""

from __future__ import annotations

from pathlib import Path

import torch

from methods import ALL_METHODS
from methods.official import OFFICIAL, official_config

# a few keys of the training-only parts, which the converter must accept and leave out
TRAINING_ONLY = {"dna-det": {"awl.params": (2,)}, "gfd": {"discriminator.model.0.weight":
                                                        (4, 3, 4, 4)},
                 "repmix": {"det_ce.weight": (2,)}, "ssp": {"srm.kernel": (3, 3, 5, 5)},
                 "ucf": {"encoder_c.conv1.weight": (4, 3, 3, 3)},
                 "clip-lr": {"clip_model.text_model.embeddings.token_embedding.weight": (9, 4),
                             "clip_model.logit_scale": ()}}


def tiny_official_state(method: str, seed: int = 0) -> dict:
    """A random tiny state dict with the official attributor's key names."""
    torch.manual_seed(seed)
    config = official_config(method, tiny=True)
    if method == "resnet50":
        from methods.official.layers import TorchvisionResNet

        net = TorchvisionResNet(4, [1, 1, 1, 1])
        state = {f"backbone.{k}": v for k, v in net.state_dict().items()}
        state.update({"fc.weight": torch.randn(23, net.features), "fc.bias": torch.randn(23)})
    else:
        model = ALL_METHODS[method].classes()[1](config)
        state = {k.removeprefix("official."): v for k, v in model.state_dict().items()}
    for k, v in list(state.items()):
        if v.is_floating_point() and "num_batches" not in k:
            state[k] = v + 0.05 * torch.randn_like(v)  # BN statistics and all: not defaults
    if method == "patch-forensics":
        state = {k.replace("net_D.", "net_D.module.", 1): v for k, v in state.items()}
    if method == "clip-lr":
        state = {k.replace("clip.", "clip_model.", 1): v for k, v in state.items()
                 if k.startswith("clip.")}
        dim = config.official["clip"]["projection_dim"]
        state.update({"scaler.mean_": torch.randn(dim, dtype=torch.float64),
                      "scaler.scale_": torch.rand(dim, dtype=torch.float64) + 0.5,
                      "linear_probe.coef_": torch.randn(23, dim, dtype=torch.float64),
                      "linear_probe.intercept_": torch.randn(23, dtype=torch.float64),
                      "linear_probe.classes_": torch.arange(23)})
    for k, shape in TRAINING_ONLY.get(method, {}).items():
        state[k] = torch.randn(shape)
    return state


def save_official(method: str, path: Path, seed: int = 0) -> Path:
    """torch.save the trainer's checkpoint dict, as train.py's save_checkpoint does."""
    state = tiny_official_state(method, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model_state_dict": state, "optimizer_state_dict": {"state": {}, "param_groups":
                [{"lr": 0.001, "params": [0, 1]}]}, "scheduler_state_dict": None,
                "best_metrics": {"val_metric": 0.5}, "epoch": 10}, path)
    return path


def official_file(root: Path, method: str, split: str = "default", seed: int = 0) -> Path:
    name = OFFICIAL[method].name
    return save_official(method, root / name / f"{name}_{split}.pth", seed)
