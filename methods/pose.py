"""POSE: Yang et al., "Progressive Open Space Expansion for Open-Set Model Attribution",
ICCV 2023.

DNA-Det's plain CNN (four stages of a 4x4 stride-2 and a 3x3 convolution, BN, LeakyReLU(0.2))
on the native-resolution crop, flattened through a 512-d feature layer to the classifier.
Training expands the open space around the known labels: every step draws a fresh, randomly
initialised shallow augmentation network (conv 3x3, 3 -> 32 -> 3) that re-synthesises the
batch's low-level traces at a fixed small strength, keeping the content; the augmented images
are new "unknown" models. The loss is cross-entropy on the real batch plus a batch-hard triplet
loss (margin 0.3) on the features, in which the augmented images of each label form a new
class (label + number of labels), so known generators stay compact and the expanded open space
stays apart from them. Open-set rejection uses the maximum softmax over the known labels.

Simplified: POSE also trains each augmentation network (reconstruction, closeness-to-known and
diversity terms) and keeps them across epochs; here they are random and drawn per step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from methods.base import MethodConfig, MethodModel, cross_entropy
from methods.dna_det import simple_cnn


class POSEConfig(MethodConfig):
    model_type = "iab-pose"
    reference = ("Yang et al., Progressive Open Space Expansion for Open-Set Model "
                 "Attribution, ICCV 2023")
    paper_hyperparameters = {"optimizer": "Adam", "lr": 1e-4, "weight_decay": 0.0,
                             "epochs": 30, "batch_size": 32, "triplet_margin": 0.3}

    def __init__(self, widths=(64, 128, 256, 512), feature_size: int = 512,
                 map_size: int = 8, triplet_margin: float = 0.3, triplet_weight: float = 1.0,
                 augment_strength: float = 0.1, dropout: float = 0.2, **kwargs):
        super().__init__(**kwargs)
        self.widths = list(widths)
        self.feature_size = feature_size
        self.map_size = map_size  # the last stage is pooled to map_size x map_size
        self.triplet_margin = triplet_margin
        self.triplet_weight = triplet_weight
        self.augment_strength = augment_strength
        self.dropout = dropout


def batch_hard_triplet(features: torch.Tensor, labels: torch.Tensor, margin: float):
    """Hermans et al. 2017: per anchor, the farthest positive against the nearest negative."""
    dist = torch.cdist(features, features, compute_mode="donot_use_mm_for_euclid_dist")
    same = labels[:, None] == labels[None, :]
    itself = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    hardest_pos = dist.masked_fill(~same | itself, 0).max(1).values
    hardest_neg = dist.masked_fill(same, float("inf")).min(1).values
    valid = torch.isfinite(hardest_neg)
    if not valid.any():
        return features.sum() * 0
    return F.relu(hardest_pos - hardest_neg + margin)[valid].mean()


def random_augmentation(images: torch.Tensor, strength: float) -> torch.Tensor:
    """A fresh random shallow network's traces added to the images at RMS ``strength``."""
    c = images.shape[1]
    w1 = torch.randn(32, c, 3, 3, device=images.device) / (3 * c) ** 0.5
    w2 = torch.randn(c, 32, 3, 3, device=images.device) / (3 * 32) ** 0.5
    with torch.no_grad():
        trace = F.conv2d(F.relu(F.conv2d(images, w1, padding=1)), w2, padding=1)
        trace = trace - trace.mean(dim=(-2, -1), keepdim=True)  # traces, not colour shifts
        trace = trace / trace.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt().clamp_min(1e-6)
    return images + strength * trace


class POSEForImageClassification(MethodModel):
    config_class = POSEConfig

    def __init__(self, config: POSEConfig):
        super().__init__(config)
        if self.is_official:  # the official network (methods/official) replaces this one
            return
        channels = config.widths[-1]
        self.backbone = nn.Sequential(simple_cnn(config.num_channels, config.widths),
                                      nn.AdaptiveAvgPool2d(config.map_size), nn.Flatten())
        self.feature = nn.Linear(channels * config.map_size ** 2, config.feature_size)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.feature_size, config.num_labels)
        self.post_init()

    def features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.feature(self.backbone(pixel_values))

    def logits(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.features(pixel_values)))

    def training_loss(self, pixel_values, labels, label_mask):
        cfg = self.config
        augmented = random_augmentation(pixel_values, cfg.augment_strength)
        f = self.features(torch.cat([pixel_values, augmented]))
        known = f[:len(labels)]
        logits = self.classifier(self.dropout(known))
        ce = cross_entropy(logits, labels, label_mask)
        open_labels = torch.cat([labels, labels + cfg.num_labels])
        triplet = batch_hard_triplet(F.normalize(f, dim=1), open_labels, cfg.triplet_margin)
        return logits.detach(), ce + cfg.triplet_weight * triplet
