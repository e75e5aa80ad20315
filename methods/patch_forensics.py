"""Patch-Forensics: Chai et al., "What makes fake images detectable? Understanding properties
that generalize", ECCV 2020.

An Xception truncated after its second block (``xception_block2``), so that each output
position sees only a small patch (43 px with the paper's widths), and a 1x1 convolution that
classifies every patch. Training puts the image's label on every patch (patch-wise
cross-entropy); an image's prediction is the average of its patches' softmax. Inputs are
native-resolution crops: resizing would blur the local traces the patches look at.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from methods.base import MethodConfig, MethodModel, masked


class PatchForensicsConfig(MethodConfig):
    model_type = "iab-patch-forensics"
    reference = ("Chai et al., What makes fake images detectable? Understanding properties "
                 "that generalize, ECCV 2020")
    paper_hyperparameters = {"optimizer": "Adam", "lr": 1e-3, "weight_decay": 0.0,
                             "epochs": 30, "batch_size": 32, "model": "xception_block2"}

    def __init__(self, widths=(32, 64, 128, 256), **kwargs):
        super().__init__(**kwargs)
        self.widths = list(widths)  # conv1, conv2, block1, block2 (Xception's entry flow)


def receptive_field(config: PatchForensicsConfig) -> int:
    """Side in pixels of the patch one output sees: conv1 (3x3, stride 2), conv2 (3x3), then
    per block two 3x3 separable convolutions and a 3x3 stride-2 max-pool. A k x k layer adds
    (k - 1) x the spacing of its inputs; a stride multiplies that spacing."""
    rf, jump = 3, 2
    rf += 2 * jump
    for _ in config.widths[2:]:
        rf += 2 * (2 * jump) + 2 * jump
        jump *= 2
    return rf


class SeparableConv(nn.Sequential):
    def __init__(self, c_in: int, c_out: int):
        super().__init__(nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False),
                         nn.Conv2d(c_in, c_out, 1, bias=False))


class XceptionBlock(nn.Module):
    """Xception's entry-flow block: two separable convolutions, a stride-2 max-pool, and a
    strided 1x1 shortcut (Chollet 2017)."""

    def __init__(self, c_in: int, c_out: int, start_with_relu: bool):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU() if start_with_relu else nn.Identity(), SeparableConv(c_in, c_out),
            nn.BatchNorm2d(c_out), nn.ReLU(), SeparableConv(c_out, c_out),
            nn.BatchNorm2d(c_out), nn.MaxPool2d(3, 2, 1))
        self.skip = nn.Sequential(nn.Conv2d(c_in, c_out, 1, 2, bias=False),
                                  nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


def average_patches(patch_logits: torch.Tensor) -> torch.Tensor:
    """Image logits whose softmax is the mean of the patches' softmax (log-mean-exp)."""
    log_probs = F.log_softmax(patch_logits.float(), dim=1).flatten(2)
    return torch.logsumexp(log_probs, dim=-1) - math.log(log_probs.shape[-1])


class PatchForensicsForImageClassification(MethodModel):
    config_class = PatchForensicsConfig

    def __init__(self, config: PatchForensicsConfig):
        super().__init__(config)
        if self.is_official:  # the official network (methods/official) replaces this one
            return
        c1, c2, *blocks = config.widths
        layers = [nn.Conv2d(config.num_channels, c1, 3, 2, bias=False), nn.BatchNorm2d(c1),
                  nn.ReLU(), nn.Conv2d(c1, c2, 3, bias=False), nn.BatchNorm2d(c2), nn.ReLU()]
        channels = c2
        for i, width in enumerate(blocks):
            layers.append(XceptionBlock(channels, width, start_with_relu=i > 0))
            channels = width
        # truncated here: no global layer before the head, so every output sees one patch
        self.features = nn.Sequential(*layers)
        self.patch_classifier = nn.Conv2d(channels, config.num_labels, 1)
        self.post_init()

    def patch_logits(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, labels, h, w): one prediction per receptive-field patch."""
        return self.patch_classifier(self.features(pixel_values))

    def logits(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return average_patches(self.patch_logits(pixel_values))

    def training_loss(self, pixel_values, labels, label_mask):
        patches = self.patch_logits(pixel_values).float()
        b, c, h, w = patches.shape
        flat = masked(patches.permute(0, 2, 3, 1).reshape(-1, c), label_mask)
        loss = F.cross_entropy(flat, labels.repeat_interleave(h * w))
        return average_patches(patches.detach()), loss
