"""The official code's torchvision ResNet-50 attributors at test time: SSP and RepMix (and the
layout both share), module names as the official attributors'.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from methods.official.layers import RESNET50, TorchvisionResNet, resnet_stages, resnet_stem
from methods.texture import grid_patches, texture_diversity

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def _spec(config) -> dict:
    return {**RESNET50, **config.official.get("resnet", {})}


def simplest_patch_u8(pixels: torch.Tensor, patch: int, stride: int, mean, std) -> torch.Tensor:
    """(B, C, patch, patch) of normalised pixels: each image's patch of least texture
    diversity, measured as the official ``compute`` does, on the 0-255 integer pixels (which
    the normalised batch gives back exactly)."""
    m = torch.tensor(mean, device=pixels.device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=pixels.device).view(1, -1, 1, 1)
    u8 = torch.round((pixels * s + m) * 255).double()
    scores = texture_diversity(grid_patches(u8, patch, stride).double())
    first = scores.argmin(dim=1)  # the first of the least diverse, in grid order
    return grid_patches(pixels, patch, stride)[torch.arange(len(pixels)), first]


class SSPNet(nn.Module):
    """attributor_ssp: a 32 x 32 patch of the 256 crop (ImageNet-normalised), bilinearly
    up-sampled to 256 x 256, through a torchvision ResNet-50 and ``fc``; the SRM filter it
    builds (``srm``) is never applied. The official loader picks the least diverse of 64
    random patches; here the least diverse on a half-overlapping grid (deterministic)."""

    def __init__(self, config):
        super().__init__()
        spec = _spec(config)
        self.patch = config.official.get("patch_size", 32)
        self.backbone = TorchvisionResNet(spec["width"], spec["depths"])
        self.fc = nn.Linear(self.backbone.features, config.num_labels)
        self.mean, self.std = list(config.input_mean), list(config.input_std)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if pixels.shape[-1] != self.patch:  # a crop: choose its simplest patch
            pixels = simplest_patch_u8(pixels, self.patch, self.patch // 2, self.mean, self.std)
        x = F.interpolate(pixels, (256, 256), mode="bilinear")
        return self.fc(self.backbone(x))


class ResnetMixup(nn.Module):
    """RepMix's backbone as a ModuleList: the stem, layer1-4, the (test-time unused) mixing
    layer, then average pool + flatten + fc to the embedding (``backbone.model.*``)."""

    def __init__(self, spec: dict, embedding: int):
        super().__init__()
        stages = resnet_stages(spec["width"], spec["depths"])
        features = spec["width"] * 8 * 4
        self.model = nn.ModuleList([nn.Sequential(*resnet_stem(spec["width"])), *stages,
                                    nn.Identity(),  # MixupLayer: skipped at inference
                                    nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1),
                                                  nn.Linear(features, embedding))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.model:
            x = layer(x)
        return x


class RepMixNet(nn.Module):
    """attributor_repmix at inference (no mixing): attribution logits gated by the detection
    softmax, as its code does: label 0 (its ``4o``) by P(detection class 0), every other label
    by P(class 1). Its detection targets are 1 for generated images, so ``4o`` is gated by
    P(real) and ``real`` by P(generated). The official evaluation applies softmax twice
    (``double_softmax`` gives the probabilities, whose softmax is then the official one). Its
    test loader flips and crops at random; the input policy takes the centre crop."""

    def __init__(self, config):
        super().__init__()
        embedding = config.official.get("d_embed", 256)
        self.backbone = ResnetMixup(_spec(config), embedding)
        self.attribution = nn.Linear(embedding, config.num_labels)
        self.detection = nn.Linear(embedding, 2)
        self.double_softmax = bool(config.official.get("double_softmax", False))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        features = self.backbone(pixels)
        attribution = self.attribution(features)
        p = torch.softmax(self.detection(features), dim=1)
        out = torch.cat([(attribution[:, 0] * p[:, 0]).unsqueeze(1),
                         attribution[:, 1:] * p[:, 1].unsqueeze(1)], dim=1)
        return torch.softmax(out, dim=1) if self.double_softmax else out
