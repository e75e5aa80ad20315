"""DCT spectrum + CNN: Frank et al., "Leveraging Frequency Analysis for Deep Fake Image
Recognition", ICML 2020.

The image's 2-D type-II DCT (orthonormal, per colour channel, over the whole native-resolution
crop), log-scaled magnitude log(|DCT| + eps), each coefficient standardised with its own
statistics estimated on the training data (a non-affine BatchNorm's running mean and
variance), then a small CNN. Generators'
up-sampling leaves grid artefacts that are sharp peaks in this spectrum.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from methods.base import MethodConfig, MethodModel


class DCTConfig(MethodConfig):
    model_type = "iab-dct-cnn"
    reference = ("Frank et al., Leveraging Frequency Analysis for Deep Fake Image Recognition, "
                 "ICML 2020")
    paper_hyperparameters = {"optimizer": "Adam", "lr": 1e-3, "weight_decay": 0.0,
                             "epochs": 30, "batch_size": 32}

    def __init__(self, hidden_sizes=(16, 32, 64), eps: float = 1e-6, **kwargs):
        super().__init__(**kwargs)  # native crops: resizing destroys the spectral peaks
        self.hidden_sizes = list(hidden_sizes)
        self.eps = eps


def dct_matrix(n: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """The orthonormal DCT-II matrix D (n x n): dct(x) = D @ x."""
    k = torch.arange(n, device=device, dtype=torch.float64)[:, None]
    i = torch.arange(n, device=device, dtype=torch.float64)[None, :]
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2 / n)
    d[0] /= math.sqrt(2)
    return d.to(dtype)


def log_dct_spectrum(pixels: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """log |DCT-II| of (B, C, H, W) images, per channel, orthonormal; always in float32 or
    better (bf16 rounding is as large as the high-frequency coefficients)."""
    with torch.autocast(pixels.device.type, enabled=False):
        x = pixels if pixels.dtype == torch.float64 else pixels.float()
        h, w = x.shape[-2:]
        coeffs = dct_matrix(h, x.device, x.dtype) @ x @ dct_matrix(w, x.device, x.dtype).T
        return torch.log(coeffs.abs() + eps)


class DCTForImageClassification(MethodModel):
    config_class = DCTConfig

    def __init__(self, config: DCTConfig):
        super().__init__(config)
        if self.is_official:  # the official network (methods/official) replaces this one
            return
        # every coefficient standardised by its own training-set mean and variance (momentum
        # None: a cumulative average), as Frank et al.: so crops are exactly crop_size
        side = config.crop_size
        self.standardise = nn.BatchNorm1d(config.num_channels * side * side, affine=False,
                                          momentum=None)
        layers, channels = [], config.num_channels
        for width in config.hidden_sizes:
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(),
                       nn.MaxPool2d(2, ceil_mode=True)]
            channels = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, config.num_labels)
        self.post_init()

    def logits(self, pixel_values: torch.Tensor) -> torch.Tensor:
        side = self.config.crop_size
        if pixel_values.shape[-2:] != (side, side):
            raise ValueError(f"the DCT model standardises each of a {side} x {side} crop's "
                             f"coefficients; got {tuple(pixel_values.shape[-2:])} images: "
                             f"crop them to {side} (the harness does, from its processor)")
        spectrum = log_dct_spectrum(pixel_values, self.config.eps)
        x = self.standardise(spectrum.flatten(1)).view_as(spectrum)
        return self.classifier(self.features(x).mean(dim=(-2, -1)))
