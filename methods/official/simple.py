"""The official code's smaller attributors, as it runs them at test time (its defects kept):
DCT, Patch-Forensics, DNA-Det, POSE, GFD and PatchCraft. Module names follow the official
attributors' attributes, so their state dicts load one to one. Each network maps the batch
the harness gives it (the official variant's input policy and normalisation, methods/official)
to scores whose softmax is the official evaluation's probabilities.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from methods.official.layers import SimpleCNN, normalise, unpack_views, xception_entry

HALF = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


def _dct_matrix(n: int, device) -> torch.Tensor:
    k = torch.arange(n, dtype=torch.float64, device=device)[:, None]
    i = torch.arange(n, dtype=torch.float64, device=device)[None, :]
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2 / n)
    d[0] /= math.sqrt(2)
    return d


class DCTNet(nn.Module):
    """attributor_dct: its dataset turns the 256 x 256 crop's pixels (0-255, not scaled) into
    |DCT-II| (scipy, orthonormal, per channel) and feeds that raw, with no log and no
    standardisation, to a 4-convolution CNN (``feature_extractor``)."""

    def __init__(self, config):
        super().__init__()
        side, classes = config.crop_size, config.num_labels
        self.feature_extractor = nn.Module()
        fe = self.feature_extractor
        fe.conv1 = nn.Conv2d(3, 3, 3, padding=1)
        fe.conv2 = nn.Conv2d(3, 8, 3, padding=1)
        fe.conv3 = nn.Conv2d(8, 16, 3, padding=1)
        fe.conv4 = nn.Conv2d(16, 32, 3, padding=1)
        fe.fc = nn.Linear(32 * (side // 4) * (side // 4), classes)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        # the harness gives x / 255 (mean 0, std 1): back to the integers the dataset used
        x = torch.round(pixels.double() * 255)
        h, w = x.shape[-2:]
        spectrum = (_dct_matrix(h, x.device) @ x @ _dct_matrix(w, x.device).T).abs().float()
        fe = self.feature_extractor
        x = F.avg_pool2d(F.relu(fe.conv2(F.relu(fe.conv1(spectrum)))), 2)
        x = F.relu(fe.conv4(F.avg_pool2d(F.relu(fe.conv3(x)), 2)))
        return fe.fc(x.flatten(1))


class PatchNet(nn.Module):
    """attributor_patch: Xception cut after block2 and a 1x1 convolution (``net_D``); the
    official evaluation scores an image by its patches' mean softmax (no second softmax), so
    the output is the log of that mean."""

    def __init__(self, config):
        super().__init__()
        ch = config.official.get("channels", [3, 32, 64, 128, 256])
        self.net_D = nn.Sequential()
        for name, module in xception_entry(ch):
            self.net_D.add_module(name, module)
        self.net_D.add_module("convout", nn.Conv2d(ch[4], config.num_labels, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return torch.log(torch.softmax(self.net_D(pixels), dim=1).mean(dim=(2, 3)))


class DNANet(nn.Module):
    """attributor_dna at inference: the 256 crop resized to 512 (the input policy does) through
    ``Simple_CNN``, whose forward ends in a softmax; the official evaluation applies softmax
    to those probabilities once more. Scores: the logits, or (``double_softmax``) the
    probabilities, whose softmax is then the official evaluation's."""

    def __init__(self, config):
        super().__init__()
        self.backbone = SimpleCNN(config.num_labels, config.official.get("nf", 64))
        self.double_softmax = bool(config.official.get("double_softmax", False))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        logits = self.backbone(pixels)[0]
        return torch.softmax(logits, dim=1) if self.double_softmax else logits


def torch_dct_2d(x: torch.Tensor) -> torch.Tensor:
    """The unnormalised 2-D DCT-II as the torch-dct package computes it (Makhoul's FFT
    algorithm along the last axis, then along the other): POSE's official inference."""
    def dct(v: torch.Tensor) -> torch.Tensor:
        shape, n = v.shape, v.shape[-1]
        v = v.contiguous().view(-1, n)
        v = torch.cat([v[:, ::2], v[:, 1::2].flip([1])], dim=1)
        vc = torch.view_as_real(torch.fft.fft(v, dim=1))
        k = -torch.arange(n, dtype=v.dtype, device=v.device)[None, :] * np.pi / (2 * n)
        out = vc[:, :, 0] * torch.cos(k) - vc[:, :, 1] * torch.sin(k)
        return 2 * out.view(*shape)

    return dct(dct(x).transpose(-1, -2)).transpose(-1, -2)


class POSENet(nn.Module):
    """attributor_pose at inference: ``Simple_CNN(x, data='dct')`` by default, i.e. the 2-D DCT
    of the normalised image, although it was trained on images (``input_data: img``)."""

    def __init__(self, config):
        super().__init__()
        self.model = SimpleCNN(config.num_labels, config.official.get("nf", 64))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(torch_dct_2d(pixels))[0]


def _gfd_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True), nn.Conv2d(c_out, c_out, 3, padding=1),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class GFDEncoder(nn.Module):
    """The U-Net generator's encoder, bottleneck and classification head (GFD predicts with
    ``generator.get_classifer_logits``: the decoder, discriminator and auxiliary classifier
    only train)."""

    def __init__(self, base: int, classes: int):
        super().__init__()
        self.encoder = nn.Module()
        widths = [3, base, base * 2, base * 4, base * 8]
        for i in range(4):
            setattr(self.encoder, f"enc{i + 1}", _gfd_block(widths[i], widths[i + 1]))
        self.bottleneck = _gfd_block(base * 8, base * 16)
        self.classification_head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                                 nn.Linear(base * 16, classes))

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        e = self.encoder
        skips = [e.enc1(x)]
        for i in (2, 3, 4):
            skips.append(getattr(e, f"enc{i}")(F.max_pool2d(skips[-1], 2)))
        return skips + [self.bottleneck(F.max_pool2d(skips[-1], 2))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classification_head(self.encode(x)[-1])


class GFDNet(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.generator = GFDEncoder(config.official.get("base_channels", 64), config.num_labels)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.generator(pixels)


# PatchCraft's seven fixed filter groups (out channels), as its FilterLayer builds them
PATCHCRAFT_FILTERS = {"filter_a": 8, "filter_b": 8, "filter_c": 4, "filter_d": 4,
                      "filter_e": 4, "filter_f": 1, "filter_g": 1}
PATCHCRAFT_VIEW = 256  # rich and poor reconstructions: 8 x 8 patches of 32 px


class PatchCraftNet(nn.Module):
    """attributor_patchcraft: the rich- and poor-texture reconstructions (built from the
    full-resolution image by the input policy, packed as two views) each go through the fixed
    filter bank, whose seven group means are averaged and binarised at the median + 2/255;
    one shared convolution, BN and Hardtanh; their difference is classified by a 32-channel
    CNN of 4 + 2 + 2 + 2 convolutions between average pools (``nn_classifier``). The official test loader's random JPEG / blur / down-sampling
    (10 % each) is left out: it cannot be reproduced."""

    def __init__(self, config):
        super().__init__()
        width = config.official.get("width", 32)
        self.filter = nn.Module()
        for name, out in PATCHCRAFT_FILTERS.items():
            conv = nn.Conv2d(3, out, 5, padding=2, bias=False)
            conv.weight.requires_grad_(False)
            setattr(self.filter, name, conv)
        self.conv_layer = nn.Conv2d(1, width, 3, padding=1)
        self.batch_norm = nn.BatchNorm2d(width)
        layers = []
        for stage, convs in enumerate((4, 2, 2, 2)):
            for _ in range(convs):
                layers += [nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width),
                           nn.ReLU()]
            layers.append(nn.AvgPool2d(2, 2) if stage < 3 else nn.AdaptiveAvgPool2d((1, 1)))
        layers += [nn.Flatten(), nn.Linear(width, config.num_labels)]
        self.nn_classifier = nn.Module()
        self.nn_classifier.model = nn.Sequential(*layers)

    def binarised(self, x: torch.Tensor) -> torch.Tensor:
        groups = [getattr(self.filter, name)(x) for name in PATCHCRAFT_FILTERS]
        means = [g.mean(dim=1) if g.shape[1] > 1 else g.squeeze(1) for g in groups]
        gray = (means[0] + means[1] + means[2] + means[3] + means[4] + means[5]
                + means[6]) / 7.0
        threshold = torch.median(gray.view(gray.size(0), -1), dim=1).values + 2 / 255.0
        return (gray > threshold[:, None, None]).float()

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        out = self.batch_norm(self.conv_layer(self.binarised(x).unsqueeze(1)))
        return F.hardtanh(out)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        rich, poor = (normalise(v, *HALF) for v in
                      unpack_views(pixels, (PATCHCRAFT_VIEW, PATCHCRAFT_VIEW)))
        return self.nn_classifier.model(self.branch(rich) - self.branch(poor))

