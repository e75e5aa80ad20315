"""What every method shares: the benchmark's label space, the paper's record (reference,
input policy, training hyper-parameters) in the config, He initialisation, and one forward
contract the harness trains through.

``forward(pixel_values, labels=None, label_mask=None)`` returns an ``ImageClassifierOutput``
whose logits follow the method's own inference rule (e.g. averaged patch predictions) and
whose loss, in training mode with labels, is the method's own training objective (patch-wise
cross-entropy, contrastive terms, mixed representations ...). ``label_mask`` (bool, one per
benchmark label) restricts training to known labels (open set).

Every method has two variants, a config value (``variant``): ``paper`` (the default) follows
the method's own paper; ``official`` is the network of the paper's official code
(mttry/ImageAttributionBench, ``methods/official/``), with its module names, so that its
released checkpoints load one to one (``python -m methods.convert_official``), its 23-class
output order and its inference rule, defects included.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import ImageClassifierOutput

import imageattributionbench as iab


VARIANTS = ("paper", "official")


class MethodConfig(PretrainedConfig):
    """A method's config: architecture fields in subclasses; the paper's record here."""

    reference = ""       # the paper, in each subclass
    paper_hyperparameters = {}  # the paper's training settings, in each subclass

    def __init__(self, num_channels: int = 3, input_policy: str = "native_crop",
                 crop_size: int = 256, hyperparameters: dict | None = None,
                 input_mean=(0.5, 0.5, 0.5), input_std=(0.5, 0.5, 0.5),
                 variant: str = "paper", official: dict | None = None, **kwargs):
        kwargs.setdefault("id2label", dict(enumerate(iab.LABELS)))
        kwargs.setdefault("label2id", dict(iab.LABEL_IDS))
        super().__init__(**kwargs)
        self.num_channels = num_channels
        self.input_policy = input_policy
        self.crop_size = crop_size
        # the normalisation the image processor applies before the model (methods/init.py)
        self.input_mean = list(input_mean)
        self.input_std = list(input_std)
        self.hyperparameters = dict(self.paper_hyperparameters if hyperparameters is None
                                    else hyperparameters)
        if variant not in VARIANTS:
            raise ValueError(f"variant {variant!r}: choose from {', '.join(VARIANTS)}")
        self.variant = variant
        # the official network's settings (widths, double_softmax ...): methods/official
        self.official = dict(official or {})

    def to_dict(self) -> dict:
        out = super().to_dict()
        out["reference"] = self.reference  # written to config.json, for people reading it
        return out


def masked(logits: torch.Tensor, label_mask: torch.Tensor | None) -> torch.Tensor:
    """Logits with labels outside the mask pushed out of reach (open-set training)."""
    if label_mask is None:
        return logits
    return logits.masked_fill(~label_mask.to(logits.device), -1e4)


def cross_entropy(logits, labels, label_mask=None) -> torch.Tensor:
    return F.cross_entropy(masked(logits.float(), label_mask), labels)


class MethodModel(PreTrainedModel):
    """Base of every method: subclasses define ``logits`` and may override ``training_loss``."""

    config_class = MethodConfig
    main_input_name = "pixel_values"
    has_training_objective = True  # the harness trains with this model's own loss

    def __init__(self, config: MethodConfig):
        super().__init__(config)
        self.is_official = getattr(config, "variant", "paper") == "official"
        if self.is_official:  # subclasses return from __init__ right after this
            from methods.official import build_network

            self.official = build_network(config)
            self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if self.is_official:  # the official networks initialise themselves, as its code does
            return
        # He init for ReLU convolutions: the library default (std 0.02) starves them
        if isinstance(module, nn.Conv2d) and module.weight.requires_grad:
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.01)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)) and module.weight is not None:
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def padding_value(self, like: torch.Tensor) -> torch.Tensor:
        """(1, C, 1, 1): what the harness's zero padding of small images becomes after
        normalisation; methods that rank patches must not mistake it for flat texture."""
        mean = torch.tensor(self.config.input_mean, device=like.device, dtype=like.dtype)
        std = torch.tensor(self.config.input_std, device=like.device, dtype=like.dtype)
        return (-mean / std).view(1, -1, 1, 1)

    def logits(self, pixel_values: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def training_loss(self, pixel_values, labels, label_mask):
        """(logits, loss) of one training batch: plain cross-entropy unless overridden."""
        logits = self.logits(pixel_values)
        return logits, cross_entropy(logits, labels, label_mask)

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None,
                label_mask: torch.Tensor | None = None, **kwargs) -> ImageClassifierOutput:
        pixel_values = pixel_values.float()
        if self.is_official:  # inference networks: fine-tuning one uses cross-entropy
            logits = self.official(pixel_values)
            loss = cross_entropy(logits, labels, label_mask) if labels is not None else None
        elif labels is not None and self.training:
            logits, loss = self.training_loss(pixel_values, labels, label_mask)
        else:
            logits = self.logits(pixel_values)
            loss = cross_entropy(logits, labels, label_mask) if labels is not None else None
        return ImageClassifierOutput(loss=loss, logits=logits)


def conv_bn_relu(c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class BasicBlock(nn.Module):
    """ResNet's basic block (He et al. 2016)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True), nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
            nn.BatchNorm2d(c_out))
        self.skip = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


def resnet_stages(c_in: int, widths, first_stride: int = 1) -> nn.Sequential:
    """One basic block per width, each after the first halving the resolution."""
    blocks, channels = [], c_in
    for i, width in enumerate(widths):
        blocks.append(BasicBlock(channels, width, first_stride if i == 0 else 2))
        channels = width
    return nn.Sequential(*blocks)
