"""HiFi-Net: Guo et al., "Hierarchical Fine-Grained Image Forgery Detection and
Localization", CVPR 2023.

Two stems at full resolution, a colour one (two 3x3 convolutions) and a frequency one (a
3x3 convolution, then a multi-scale Laplacian of its maps: each minus its blurred, down- and
up-sampled self at scales 2, 4 and 8), fused and fed to four branches at 1, 1/2, 1/4 and 1/8
resolution (HRNet's widths 18, 36, 72, 144). Classification is hierarchical, coarse to fine:
real vs generated from the coarsest branch; real / closed / open weights from it plus the
next; the architecture group (methods/hierarchy.py) adding the next; the label from all four
at full resolution. The loss is the sum of the four levels' cross-entropies; the prediction
is the finest level.

Left out: the forgery localisation mask branch (the benchmark has no masks, and the paper's
code gives that branch no gradient) and HRNet's cross-resolution exchange units (the
branches here are a plain strided chain).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from methods.base import BasicBlock, MethodConfig, MethodModel, conv_bn_relu, cross_entropy
from methods.hierarchy import level_tables


class HiFiNetConfig(MethodConfig):
    model_type = "iab-hifi-net"
    reference = ("Guo et al., Hierarchical Fine-Grained Image Forgery Detection and "
                 "Localization, CVPR 2023")
    paper_hyperparameters = {"optimizer": "Adam", "lr": 1e-3, "weight_decay": 0.0,
                             "epochs": 10, "batch_size": 8}

    def __init__(self, stem_width: int = 64, widths=(18, 36, 72, 144),
                 laplacian_scales=(2, 4, 8), **kwargs):
        super().__init__(**kwargs)
        if len(widths) != 4:
            raise ValueError(f"HiFi-Net has four branches, one per level: widths {widths!r} "
                             "must list four")
        self.stem_width = stem_width
        self.widths = list(widths)
        self.laplacian_scales = list(laplacian_scales)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """3x3 Gaussian blur, per channel, reflect-padded."""
    t = torch.arange(-1, 2, dtype=x.dtype, device=x.device)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = (k[:, None] * k[None, :]) / k.sum() ** 2
    c = x.shape[1]
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), k.expand(c, 1, 3, 3), groups=c)


def laplacian_residuals(x: torch.Tensor, scales) -> torch.Tensor:
    """x minus its blurred, down-sampled (1/s) and up-sampled self, for each scale s."""
    h, w = x.shape[-2:]
    out = []
    with torch.autocast(x.device.type, enabled=False):  # residuals finer than bf16's step
        x = x.float()
        for s in scales:
            low = F.interpolate(gaussian_blur(x, s), scale_factor=1 / s, mode="bilinear",
                                align_corners=False)
            out.append(x - F.interpolate(low, size=(h, w), mode="bilinear",
                                         align_corners=False))
    return torch.cat(out, dim=1)


class BatchNorm1dAnyBatch(nn.BatchNorm1d):
    """BatchNorm1d that also takes a one-image training batch (a split's last batch), using
    the running statistics for it instead of failing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] == 1:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                False, 0.0, self.eps)
        return super().forward(x)


class LevelHead(nn.Sequential):
    """HiFi-Net's BranchCLS: two 3x3 convolutions, global pooling, BN, linear."""

    def __init__(self, c_in: int, classes: int):
        super().__init__(nn.Conv2d(c_in, 32, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(32, 18, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), BatchNorm1dAnyBatch(18),
                         nn.Linear(18, classes))


class HiFiNetForImageClassification(MethodModel):
    config_class = HiFiNetConfig

    def __init__(self, config: HiFiNetConfig):
        super().__init__(config)
        if self.is_official:  # the official network (methods/official) replaces this one
            return
        w, c = config.stem_width, config.num_channels
        self.colour_stem = nn.Sequential(conv_bn_relu(c, w), conv_bn_relu(w, w))
        self.frequency_in = conv_bn_relu(c, w)
        self.frequency_out = conv_bn_relu(w * len(config.laplacian_scales), w, kernel=1)
        self.fuse = nn.Sequential(conv_bn_relu(2 * w, w, kernel=1), nn.Dropout(0.2))
        branches, channels = [], w
        for i, width in enumerate(config.widths):
            branches.append(BasicBlock(channels, width, stride=1 if i == 0 else 2))
            channels = width
        self.branches = nn.ModuleList(branches)
        widths = config.widths
        sizes = [sum(widths[3 - i:]) for i in range(4)]  # coarse to fine, concatenated
        self.heads = nn.ModuleList(LevelHead(sizes[i], k) for i, k in
                                   enumerate((2, 3, 6, config.num_labels)))
        self.register_buffer("levels", level_tables(config.id2label))
        self.post_init()

    def level_logits(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """Logits at the four levels, coarse to fine."""
        freq = laplacian_residuals(self.frequency_in(pixel_values),
                                   self.config.laplacian_scales)
        x = self.fuse(torch.cat([self.colour_stem(pixel_values), self.frequency_out(freq)], 1))
        feats = []
        for branch in self.branches:
            x = branch(x)
            feats.append(x)
        out, joined = [], None
        for head, f in zip(self.heads, reversed(feats)):
            if joined is not None:
                joined = F.interpolate(joined, size=f.shape[-2:], mode="bilinear",
                                       align_corners=False)
            joined = f if joined is None else torch.cat([joined, f], dim=1)
            out.append(head(joined))
        return out

    def logits(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.level_logits(pixel_values)[-1]

    def training_loss(self, pixel_values, labels, label_mask):
        *coarse, fine = self.level_logits(pixel_values)
        loss = cross_entropy(fine, labels, label_mask)
        for level, logits in enumerate(coarse):
            loss = loss + F.cross_entropy(logits.float(), self.levels[level][labels])
        return fine.detach(), loss
