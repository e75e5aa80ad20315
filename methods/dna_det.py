"""DNA-Det: Yang et al., "Deepfake Network Architecture Attribution", AAAI 2022.

A plain CNN (four stages of a 4x4 stride-2 convolution and a 3x3 convolution, BN and
LeakyReLU(0.2)) trained on small random crops: each image gives ``train_crops`` native-pixel
crops of ``train_crop_size``, every crop carries the image's label, and the loss is the crops'
cross-entropy plus a supervised contrastive loss (temperature 0.07) that pulls together the
projected features of crops from the same label, the two weighted by learned uncertainty
(AutomaticWeightedLoss). The network is fully convolutional, so at test time it sees the whole
crop at once. Architecture traces are local and globally consistent, which random crops
exploit and semantics cannot shortcut.

Left out: the paper's first stage, pre-training on classifying 170 image transformations.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from methods.base import MethodConfig, MethodModel, cross_entropy


class DNADetConfig(MethodConfig):
    model_type = "iab-dna-det"
    reference = "Yang et al., Deepfake Network Architecture Attribution, AAAI 2022"
    paper_hyperparameters = {"optimizer": "Adam", "lr": 1e-4, "weight_decay": 0.0,
                             "epochs": 50, "batch_size": 32, "train_crops": 16,
                             "train_crop_size": 64, "contrastive_temperature": 0.07}

    def __init__(self, widths=(64, 128, 256, 512), projection: int = 128,
                 train_crops: int = 16, train_crop_size: int = 64,
                 contrastive_temperature: float = 0.07, dropout: float = 0.2, **kwargs):
        super().__init__(**kwargs)
        self.widths = list(widths)
        self.projection = projection
        self.train_crops = train_crops
        self.train_crop_size = train_crop_size
        self.contrastive_temperature = contrastive_temperature
        self.dropout = dropout


def supervised_contrastive(features: torch.Tensor, labels: torch.Tensor,
                           temperature: float) -> torch.Tensor:
    """Khosla et al. 2020's SupCon loss over L2-normalised (N, D) features: for each anchor,
    the mean log-probability of its same-label positives among all other samples."""
    sim = features @ features.T / temperature
    n = len(features)
    self_mask = torch.eye(n, dtype=torch.bool, device=features.device)
    sim = sim.masked_fill(self_mask, float("-inf"))
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    positives = (labels[:, None] == labels[None, :]) & ~self_mask
    count = positives.sum(1)
    keep = count > 0
    mean_pos = log_prob.masked_fill(~positives, 0).sum(1)[keep] / count[keep]
    return -mean_pos.mean() if keep.any() else features.sum() * 0


def random_crops(images: torch.Tensor, n: int, size: int) -> torch.Tensor:
    """(B * n, C, size, size): n independent random crops per image, native pixels."""
    b, c, h, w = images.shape
    size = min(size, h, w)
    tops = torch.randint(0, h - size + 1, (b, n)).tolist()
    lefts = torch.randint(0, w - size + 1, (b, n)).tolist()
    return torch.stack([images[i, :, top:top + size, left:left + size]
                        for i in range(b) for top, left in zip(tops[i], lefts[i])])


def simple_cnn(channels: int, widths) -> nn.Sequential:
    """DNA-Det's plain CNN (also POSE's): per width a 4x4 stride-2 convolution and a 3x3
    convolution, each with BN and LeakyReLU(0.2)."""
    layers = []
    for width in widths:
        layers += [nn.Conv2d(channels, width, 4, 2, 1), nn.BatchNorm2d(width),
                   nn.LeakyReLU(0.2), nn.Conv2d(width, width, 3, 1, 1),
                   nn.BatchNorm2d(width), nn.LeakyReLU(0.2)]
        channels = width
    return nn.Sequential(*layers)


class DNADetForImageClassification(MethodModel):
    config_class = DNADetConfig

    def __init__(self, config: DNADetConfig):
        super().__init__(config)
        if self.is_official:  # the official network (methods/official) replaces this one
            return
        self.features = simple_cnn(config.num_channels, config.widths)
        channels = config.widths[-1]
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(channels, config.num_labels)
        self.projector = nn.Sequential(nn.Linear(channels, channels), nn.ReLU(),
                                       nn.Linear(channels, config.projection))
        self.loss_log_weights = nn.Parameter(torch.zeros(2))  # AutomaticWeightedLoss, p = 1
        self.post_init()

    def embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.features(pixel_values).mean(dim=(-2, -1))

    def logits(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.embed(pixel_values)))

    def training_loss(self, pixel_values, labels, label_mask):
        cfg = self.config
        crops = random_crops(pixel_values, cfg.train_crops, cfg.train_crop_size)
        crop_labels = labels.repeat_interleave(cfg.train_crops)
        h = self.embed(crops)
        crop_logits = self.classifier(self.dropout(h))
        ce = cross_entropy(crop_logits, crop_labels, label_mask)
        z = F.normalize(self.projector(h), dim=1)
        con = supervised_contrastive(z, crop_labels, cfg.contrastive_temperature)
        p2 = torch.exp(2 * self.loss_log_weights)  # p_i^2 with p_i = exp(log_weight)
        loss = sum(0.5 / p2[i] * term + torch.log1p(p2[i]) for i, term in enumerate((ce, con)))
        image_logits = crop_logits.detach().view(len(labels), cfg.train_crops, -1).mean(1)
        return image_logits, loss
