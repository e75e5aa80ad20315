"""PatchCraft: Zhong et al., "PatchCraft: Exploring Texture Patch for Efficient AI-generated
Image Detection" (rich/poor texture contrast), arXiv 2311.12397, 2023.

Smash & Reconstruction: the native-resolution image is cut into a non-overlapping grid of
patches, ranked by texture diversity; the richest third (at most grid_side**2 patches, richest
first) is tiled into a "rich" image and the poorest third (poorest first) into a "poor" one,
cycling when there are too few. Both go through the 30 SRM high-pass filters (frozen) and one
shared learnable conv + BN + Hardtanh block; their difference, the inter-pixel correlation
contrast, is classified by a plain 32-channel CNN.
"""

from __future__ import annotations

import torch
from torch import nn

from methods.base import MethodConfig, MethodModel, conv_bn_relu
from methods.texture import high_pass, rank_patches, srm_kernels, tile


class PatchCraftConfig(MethodConfig):
    model_type = "iab-patchcraft"
    reference = ("Zhong et al., PatchCraft: Exploring Texture Patch for Efficient "
                 "AI-generated Image Detection, arXiv 2311.12397, 2023")
    paper_hyperparameters = {"optimizer": "Adam", "lr": 1e-3, "batch_size": 32}

    def __init__(self, patch_size: int = 32, grid_side: int = 8, width: int = 32,
                 crop_size: int = 512, **kwargs):
        super().__init__(crop_size=crop_size, **kwargs)
        self.patch_size = patch_size
        self.grid_side = grid_side  # the rich/poor images are grid_side x grid_side patches
        self.width = width


def rich_and_poor(images: torch.Tensor, patch: int, grid_side: int,
                  pad_value: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The rich- and poor-texture reconstructions of (B, C, H, W) images, from each image's
    own patches (padding of images smaller than the crop is never picked)."""
    patches, order, n_own = rank_patches(images, patch, patch, pad_value)
    n_own = n_own.clamp(min=1)
    want = grid_side * grid_side
    # the richest and poorest thirds, at most ``want`` of each, cycled if fewer
    count = (n_own // 3).clamp(min=1, max=want)
    cycle = torch.arange(want, device=images.device)[None] % count[:, None]
    rich_idx = order.gather(1, cycle)  # own patches come first, richest first
    poor_idx = order.gather(1, n_own[:, None] - 1 - cycle)  # back from the poorest own one

    def gather(idx):
        return tile(torch.take_along_dim(patches, idx[:, :, None, None, None], dim=1),
                    grid_side)

    return gather(rich_idx), gather(poor_idx)


class PatchCraftForImageClassification(MethodModel):
    config_class = PatchCraftConfig

    def __init__(self, config: PatchCraftConfig):
        super().__init__(config)
        if self.is_official:  # the official network (methods/official) replaces this one
            return
        self.register_buffer("srm", srm_kernels())  # fixed, not learnt; saved with the weights
        self.texture = nn.Sequential(nn.Conv2d(30, config.width, 3, padding=1),
                                     nn.BatchNorm2d(config.width), nn.Hardtanh())
        w = config.width
        blocks = []
        for convs in (4, 2, 2):
            blocks += [conv_bn_relu(w, w) for _ in range(convs)] + [nn.AvgPool2d(2)]
        blocks += [conv_bn_relu(w, w), conv_bn_relu(w, w)]
        self.classifier_cnn = nn.Sequential(*blocks)
        self.classifier = nn.Linear(w, config.num_labels)
        self.post_init()

    def contrast(self, pixel_values: torch.Tensor) -> torch.Tensor:
        rich, poor = rich_and_poor(pixel_values, self.config.patch_size, self.config.grid_side,
                                   self.padding_value(pixel_values))
        return self.texture(high_pass(rich, self.srm)) - self.texture(high_pass(poor, self.srm))

    def logits(self, pixel_values: torch.Tensor) -> torch.Tensor:
        features = self.classifier_cnn(self.contrast(pixel_values))
        return self.classifier(features.mean(dim=(-2, -1)))
