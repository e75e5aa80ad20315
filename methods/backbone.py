"""ResNet backbones for the methods that the paper runs on ResNet-50 (SSP, RepMix): the
transformers ResNet, sized by a config dict, optionally started from Hub weights."""

from __future__ import annotations

import torch
from torch import nn

# He et al. 2016's ResNet-50, as microsoft/resnet-50 has it
RESNET50 = {"embedding_size": 64, "hidden_sizes": [256, 512, 1024, 2048],
            "depths": [3, 4, 6, 3], "layer_type": "bottleneck"}


def resnet(spec: dict, num_channels: int = 3) -> nn.Module:
    from transformers import ResNetConfig, ResNetModel

    return ResNetModel(ResNetConfig(num_channels=num_channels, **spec))


def pooled(backbone: nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """(B, features): the backbone's global-average-pooled last stage."""
    return backbone(pixel_values=pixels).pooler_output.flatten(1)


def feature_size(spec: dict) -> int:
    return spec["hidden_sizes"][-1]


def load_pretrained(backbone: nn.Module, model_id: str) -> None:
    """Copy a Hub ResNet's weights (e.g. microsoft/resnet-50, ImageNet) into ``backbone``;
    the paper starts its ResNet-50 methods from ImageNet weights. Parts the backbone does not
    have (DEFL drops the stem) are skipped; every part it has must be covered."""
    from transformers import ResNetModel

    source = ResNetModel.from_pretrained(model_id).state_dict()
    target = backbone.state_dict()
    missing = [k for k in target if k not in source or source[k].shape != target[k].shape]
    if missing:
        import imageattributionbench as iab

        raise iab.BenchmarkError(f"{model_id} does not fit this backbone: {len(missing)} "
                                 f"weights missing or of another shape (e.g. {missing[0]}); "
                                 "pass a ResNet with the same depths and widths")
    backbone.load_state_dict({k: source[k] for k in target})
