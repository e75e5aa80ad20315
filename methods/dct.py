"""DCT spectrum + CNN: Frank et al., "Leveraging Frequency Analysis for Deep Fake Image
Recognition", ICML 2020.

The image's 2-D type-II DCT (orthonormal, per colour channel, over the whole native-resolution
crop), log-scaled magnitude log(|DCT| + eps), standardised with statistics estimated on the
training data (a non-affine BatchNorm's running mean and variance), then a small CNN. Generators'
up-sampling leaves grid artefacts that are sharp peaks in this spectrum.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import ImageClassifierOutput

import imageattributionbench as iab


class DCTConfig(PretrainedConfig):
    model_type = "iab-dct-cnn"

    def __init__(self, num_channels: int = 3, hidden_sizes=(16, 32, 64), eps: float = 1e-6,
                 input_policy: str = "native_crop", reference: str =
                 "Frank et al., Leveraging Frequency Analysis for Deep Fake Image Recognition, "
                 "ICML 2020", **kwargs):
        kwargs.setdefault("id2label", dict(enumerate(iab.LABELS)))
        kwargs.setdefault("label2id", dict(iab.LABEL_IDS))
        super().__init__(**kwargs)
        self.num_channels = num_channels
        self.hidden_sizes = list(hidden_sizes)
        self.eps = eps
        self.input_policy = input_policy  # full-resolution crops: resizing destroys the peaks
        self.reference = reference


def dct_matrix(n: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """The orthonormal DCT-II matrix D (n x n): dct(x) = D @ x."""
    k = torch.arange(n, device=device, dtype=torch.float64)[:, None]
    i = torch.arange(n, device=device, dtype=torch.float64)[None, :]
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2 / n)
    d[0] /= math.sqrt(2)
    return d.to(dtype)


def log_dct_spectrum(pixels: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """log |DCT-II| of (B, C, H, W) images, per channel, orthonormal."""
    h, w = pixels.shape[-2:]
    dh = dct_matrix(h, pixels.device, pixels.dtype)
    dw = dct_matrix(w, pixels.device, pixels.dtype)
    coeffs = dh @ pixels @ dw.T
    return torch.log(coeffs.abs() + eps)


class DCTForImageClassification(PreTrainedModel):
    config_class = DCTConfig
    main_input_name = "pixel_values"

    def __init__(self, config: DCTConfig):
        super().__init__(config)
        # momentum=None: a cumulative average, i.e. the training set's statistics
        self.standardise = nn.BatchNorm2d(config.num_channels, affine=False, momentum=None)
        layers, channels = [], config.num_channels
        for width in config.hidden_sizes:
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(),
                       nn.MaxPool2d(2, ceil_mode=True)]
            channels = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, config.num_labels)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        # He init for the ReLU convolutions: the library default (std 0.02) starves them
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.01)
            nn.init.zeros_(module.bias)

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None,
                **kwargs) -> ImageClassifierOutput:
        x = self.standardise(log_dct_spectrum(pixel_values.float(), self.config.eps))
        logits = self.classifier(self.features(x).mean(dim=(-2, -1)))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return ImageClassifierOutput(loss=loss, logits=logits)
