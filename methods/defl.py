"""DEFL: Li et al., "Are Handcrafted Filters Helpful for Attributing AI-generated Images?",
ACM Multimedia 2024.

Four levels of two branches at full resolution: a "directional enhanced" convolution whose
3x3 kernels start as handcrafted filters (the 254 compositions of the 8 first-order
directional differences, 64 per level) and are then learned, beside a standard
conv + BN + ReLU; a 1x1 projection; ResNet-50's four stages without its stem (full
resolution in, global pooling out); optionally a frozen CLIP image embedding (semantics)
concatenated; a 2048-d fingerprint; an MLP classifier. The loss is cross-entropy plus a
dual-margin contrastive loss on fingerprints: same label pulled together, same architecture
group (methods/hierarchy.py) kept at least 5 apart, other groups at least 10.

The paper uses OpenAI's CLIP RN50x16; transformers has CLIP ViTs only, so ``clip_config``
is a CLIP vision tower (``python -m methods.init defl DIR --clip-weights
openai/clip-vit-base-patch16``), or None for no semantic branch.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from methods.backbone import RESNET50, feature_size, resnet
from methods.base import MethodConfig, MethodModel, cross_entropy
from methods.hierarchy import level_tables

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CLIP_B16 = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
            "num_attention_heads": 12, "image_size": 224, "patch_size": 16,
            "projection_dim": 512}


class DEFLConfig(MethodConfig):
    model_type = "iab-defl"
    reference = ("Li et al., Are Handcrafted Filters Helpful for Attributing AI-generated "
                 "Images?, ACM Multimedia 2024")
    paper_hyperparameters = {"optimizer": "Adam", "lr": 1e-3, "weight_decay": 0.0,
                             "epochs": 10, "batch_size": 8, "margins": [5.0, 10.0]}

    def __init__(self, level_width: int = 64, backbone_spec=None, fingerprint: int = 2048,
                 clip_config: dict | None = CLIP_B16, margins=(5.0, 10.0), **kwargs):
        super().__init__(**kwargs)
        self.level_width = level_width
        self.backbone_spec = dict(backbone_spec if backbone_spec is not None else RESNET50)
        self.fingerprint = fingerprint
        self.clip_config = dict(clip_config) if clip_config else None
        self.margins = list(margins)


def directional_filters() -> torch.Tensor:
    """(254, 3, 3): every composition (1 to 7 of 8) of the first-order directional
    differences (centre -1, one neighbour +1), each a 'same'-size 3x3 convolution chain."""
    base = []
    for dr, dc in [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]:
        k = torch.zeros(3, 3, dtype=torch.float64)
        k[1, 1], k[1 + dr, 1 + dc] = -1, 1
        base.append(k)
    out = []
    for n in range(1, 8):
        for combo in itertools.combinations(base, n):
            k = combo[0]
            for nxt in combo[1:]:  # full convolution, then the centre 3x3 ('same')
                full = F.conv2d(F.pad(k, (2, 2, 2, 2))[None, None], nxt.flip(0, 1)[None, None])
                k = full[0, 0, 1:4, 1:4]
            out.append(k)
    return torch.stack(out).float()


def dual_margin_contrastive(features, labels, groups, margins) -> torch.Tensor:
    """Mean over pairs: distance for the same label; hinge to margins[0] for the same group;
    hinge to margins[1] otherwise."""
    d = torch.cdist(features, features)
    same_label = labels[:, None] == labels[None, :]
    same_group = groups[:, None] == groups[None, :]
    per_pair = torch.where(same_label, d, torch.where(
        same_group, F.relu(margins[0] - d), F.relu(margins[1] - d)))
    upper = torch.triu(torch.ones_like(d, dtype=torch.bool), diagonal=1)
    return per_pair[upper].mean() if upper.any() else features.sum() * 0


class DEFLForImageClassification(MethodModel):
    config_class = DEFLConfig

    def __init__(self, config: DEFLConfig):
        super().__init__(config)
        if self.is_official:  # the official network (methods/official) replaces this one
            return
        w, channels = config.level_width, config.num_channels
        self.directional, self.standard = nn.ModuleList(), nn.ModuleList()
        for _ in range(4):
            self.directional.append(nn.Conv2d(channels, w, 3, padding=1, bias=False))
            self.standard.append(nn.Sequential(nn.Conv2d(channels, w, 3, padding=1),
                                               nn.BatchNorm2d(w), nn.ReLU()))
            channels = 2 * w
        self.project = nn.Conv2d(channels, config.backbone_spec["embedding_size"], 1)
        self.backbone = resnet(config.backbone_spec, config.num_channels)
        del self.backbone.embedder  # no stem: the stages see the full-resolution levels
        clip_dim = 0
        self.clip = None
        if config.clip_config:
            from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

            self.clip = CLIPVisionModelWithProjection(CLIPVisionConfig(**config.clip_config))
            self.clip.requires_grad_(False)
            clip_dim = config.clip_config["projection_dim"]
        self.fingerprint = nn.Linear(feature_size(config.backbone_spec) + clip_dim,
                                     config.fingerprint)
        self.classifier = nn.Sequential(nn.Linear(config.fingerprint, 512), nn.ReLU(),
                                        nn.Linear(512, 256), nn.ReLU(),
                                        nn.Linear(256, config.num_labels))
        self.register_buffer("groups", level_tables(config.id2label)[2])
        self.post_init()
        self.load_handcrafted_filters()  # after post_init, which would re-initialise them

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        model = super().from_pretrained(*args, **kwargs)
        if getattr(model, "clip", None) is not None:  # loading unfreezes it: freeze again
            model.clip.requires_grad_(False)
        return model

    def load_handcrafted_filters(self) -> None:
        """The directional convolutions start as the handcrafted bank, 64 (level_width)
        kernels a level, each spread evenly over the input channels."""
        bank = directional_filters()
        for i, conv in enumerate(self.directional):
            idx = torch.arange(i * conv.out_channels, (i + 1) * conv.out_channels)
            with torch.no_grad():
                conv.weight.copy_(bank[idx % len(bank)][:, None].expand_as(conv.weight)
                                  / conv.in_channels)

    def semantics(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The frozen CLIP image embedding of the same crop, in CLIP's normalisation."""
        cfg = self.config
        mean = torch.tensor(cfg.input_mean, device=pixel_values.device).view(1, 3, 1, 1)
        std = torch.tensor(cfg.input_std, device=pixel_values.device).view(1, 3, 1, 1)
        x = pixel_values * std + mean
        x = F.interpolate(x, size=(cfg.clip_config["image_size"],) * 2, mode="bicubic",
                          align_corners=False)
        x = (x - torch.tensor(CLIP_MEAN, device=x.device).view(1, 3, 1, 1)) / \
            torch.tensor(CLIP_STD, device=x.device).view(1, 3, 1, 1)
        self.clip.eval()  # frozen, BN/dropout included
        with torch.no_grad():
            return self.clip(pixel_values=x).image_embeds

    def fingerprints(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = pixel_values.float()
        with torch.autocast(x.device.type, enabled=False):  # filter residuals need fp32
            for directional, standard in zip(self.directional, self.standard):
                x = torch.cat([F.relu(directional(x)), standard(x)], dim=1)
        x = self.backbone.encoder(self.project(x)).last_hidden_state.mean(dim=(-2, -1))
        if self.clip is not None:
            x = torch.cat([x, self.semantics(pixel_values)], dim=1)
        return self.fingerprint(x)

    def logits(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.fingerprints(pixel_values))

    def training_loss(self, pixel_values, labels, label_mask):
        f = self.fingerprints(pixel_values)
        logits = self.classifier(f)
        contrast = dual_margin_contrastive(f.float(), labels, self.groups[labels],
                                           self.config.margins)
        return logits.detach(), cross_entropy(logits, labels, label_mask) + contrast
