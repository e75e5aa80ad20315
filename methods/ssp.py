"""SSP: Chen et al., "A Single Simple Patch is All You Need for AI-generated Image Detection",
arXiv 2402.01123, 2024.

The simplest patch of the native-resolution image (the lowest texture diversity, PatchCraft's
measure, over a half-overlapping grid, so the choice is deterministic), through three frozen
SRM high-pass filters and a Hardtanh(-3, 3), up-sampled to 256 x 256, then a ResNet-50.
Smooth regions carry the generator's noise pattern with the least scene content.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from methods.backbone import RESNET50, feature_size, pooled, resnet
from methods.base import MethodConfig, MethodModel
from methods.texture import high_pass, rank_patches, srm3_kernels


class SSPConfig(MethodConfig):
    model_type = "iab-ssp"
    reference = ("Chen et al., A Single Simple Patch is All You Need for AI-generated Image "
                 "Detection, arXiv 2402.01123, 2024")
    paper_hyperparameters = {"optimizer": "Adam", "lr": 1e-4, "batch_size": 64, "epochs": 30,
                             "backbone_init": "microsoft/resnet-50 (ImageNet)"}

    def __init__(self, patch_size: int = 32, resize_to: int = 256, backbone_spec=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.patch_size = patch_size
        self.resize_to = resize_to
        self.backbone_spec = dict(backbone_spec if backbone_spec is not None else RESNET50)


def simplest_patch(images: torch.Tensor, patch: int,
                   pad_value: torch.Tensor | None = None) -> torch.Tensor:
    """(B, C, patch, patch): each image's lowest-texture-diversity patch, native pixels,
    never one of padding (images smaller than the crop)."""
    patches, order, n_own = rank_patches(images, patch, max(1, patch // 2), pad_value)
    poorest = order.gather(1, (n_own.clamp(min=1) - 1)[:, None])[:, 0]
    return patches[torch.arange(len(images)), poorest]


class SSPForImageClassification(MethodModel):
    config_class = SSPConfig

    def __init__(self, config: SSPConfig):
        super().__init__(config)
        if self.is_official:  # the official network (methods/official) replaces this one
            return
        self.register_buffer("srm", srm3_kernels())  # fixed; saved with the weights
        self.backbone = resnet(config.backbone_spec)
        self.classifier = nn.Linear(feature_size(config.backbone_spec), config.num_labels)
        self.post_init()

    def noise_view(self, pixel_values: torch.Tensor) -> torch.Tensor:
        patch = simplest_patch(pixel_values, self.config.patch_size,
                               self.padding_value(pixel_values))
        noise = F.hardtanh(high_pass(patch, self.srm), -3.0, 3.0)
        size = self.config.resize_to
        return F.interpolate(noise, (size, size), mode="bilinear", align_corners=False)

    def logits(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.classifier(pooled(self.backbone, self.noise_view(pixel_values)))
