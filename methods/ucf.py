"""UCF: Yan et al., "UCF: Uncovering Common Features for Generalizable Deepfake Detection",
ICCV 2023, as the paper runs it for attribution.

Two encoders of the same image: a forgery encoder, whose features split into a
label-specific part (classified over every label: the prediction) and a common part
(classified real vs generated), and a content encoder. A conditional decoder (AdaIN of the
content by the forgery features, up-sampling convolutions, tanh) must rebuild an image from
its own forgery and content features, and also from another image's forgery features and its
own content: content lives in the content encoder, traces in the forgery encoder. The loss:
1.0 CE(specific) + 0.1 CE(common) + 0.6 L1 reconstruction + 0.05 contrastive (batch-hard
triplets, margin 3: specific features by label, common ones by real/generated).

The paper uses two ImageNet Xceptions; transformers has no Xception, so both encoders are
ResNet-50s (``python -m methods.init ucf DIR --backbone-weights microsoft/resnet-50``
starts the forgery encoder from ImageNet). Left out: the paper's random shuffling of common
features within each half-batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import imageattributionbench as iab
from methods.backbone import RESNET50, feature_size, resnet
from methods.base import MethodConfig, MethodModel, conv_bn_relu, cross_entropy
from methods.pose import batch_hard_triplet


class UCFConfig(MethodConfig):
    model_type = "iab-ucf"
    reference = ("Yan et al., UCF: Uncovering Common Features for Generalizable Deepfake "
                 "Detection, ICCV 2023")
    paper_hyperparameters = {"optimizer": "Adam", "lr": 2e-4, "weight_decay": 0.0,
                             "epochs": 25, "batch_size": 32,
                             "loss_weights": {"specific": 1.0, "common": 0.1,
                                              "reconstruction": 0.6, "contrastive": 0.05}}

    def __init__(self, backbone_spec=None, width: int = 512, decoder_widths=(256, 128, 64),
                 loss_weights=None, triplet_margin: float = 3.0, **kwargs):
        super().__init__(**kwargs)
        self.backbone_spec = dict(backbone_spec if backbone_spec is not None else RESNET50)
        self.width = width
        self.decoder_widths = list(decoder_widths)
        self.loss_weights = dict(loss_weights or self.paper_hyperparameters["loss_weights"])
        self.triplet_margin = triplet_margin


def adain(content: torch.Tensor, style: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Content maps re-scaled to the style maps' per-channel mean and deviation."""
    c_mean, c_std = content.mean((-2, -1), keepdim=True), content.std((-2, -1), keepdim=True)
    s_mean, s_std = style.mean((-2, -1), keepdim=True), style.std((-2, -1), keepdim=True)
    return (content - c_mean) / (c_std + eps) * s_std + s_mean


class Head(nn.Sequential):
    def __init__(self, c_in: int, classes: int):
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, 2 * c_in),
                         nn.LeakyReLU(0.2), nn.Dropout(0.2), nn.Linear(2 * c_in, classes))


class UCFForImageClassification(MethodModel):
    config_class = UCFConfig

    def __init__(self, config: UCFConfig):
        super().__init__(config)
        if self.is_official:  # the official network (methods/official) replaces this one
            return
        spec, w = config.backbone_spec, config.width
        self.backbone = resnet(spec, config.num_channels)  # forgery encoder
        self.content_encoder = resnet(spec, config.num_channels)
        self.adjust = nn.Conv2d(feature_size(spec), w, 1)
        self.adjust_content = nn.Conv2d(feature_size(spec), w, 1)
        half = w // 2

        def split():
            return nn.Sequential(nn.Conv2d(w, half, 1), nn.LeakyReLU(0.2),
                                 nn.Conv2d(half, half, 1))

        self.specific, self.common = split(), split()
        self.head_specific = Head(half, config.num_labels)
        self.head_common = Head(half, 2)
        layers, channels = [], w
        for width in config.decoder_widths:
            layers.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                        conv_bn_relu(channels, width),
                                        conv_bn_relu(width, width)))
            channels = width
        self.decoder = nn.ModuleList(layers)
        self.to_image = nn.Conv2d(channels, config.num_channels, 1)
        self.register_buffer("real_label", torch.tensor(config.label2id.get(iab.REAL, 0)))
        self.post_init()

    def encode(self, pixel_values: torch.Tensor):
        forgery = self.adjust(self.backbone(pixel_values=pixel_values).last_hidden_state)
        return self.specific(forgery), self.common(forgery)

    def logits(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.head_specific(self.encode(pixel_values)[0])

    def decode(self, forgery: torch.Tensor, content: torch.Tensor, size) -> torch.Tensor:
        x = adain(content, forgery)
        for layer in self.decoder:
            x = layer(x)
        x = torch.tanh(self.to_image(x))
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    def training_loss(self, pixel_values, labels, label_mask):
        cfg, weights = self.config, self.config.loss_weights
        specific, common = self.encode(pixel_values)
        content = self.adjust_content(
            self.content_encoder(pixel_values=pixel_values).last_hidden_state)
        logits = self.head_specific(specific)
        generated = (labels != self.real_label).long()
        loss = weights["specific"] * cross_entropy(logits, labels, label_mask)
        loss = loss + weights["common"] * F.cross_entropy(self.head_common(common).float(),
                                                          generated)
        forgery = torch.cat([specific, common], dim=1)
        partner = torch.randperm(len(labels), device=labels.device)
        size = pixel_values.shape[-2:]
        target = pixel_values.clamp(-1, 1)  # the decoder's tanh range
        rebuilt = self.decode(forgery, content, size)  # its own traces and content
        crossed = self.decode(forgery[partner], content, size)  # another's traces
        reconstruction = F.l1_loss(rebuilt, target) + F.l1_loss(crossed, target)
        pooled = lambda f: f.mean(dim=(-2, -1))  # noqa: E731  (unnormalised: margin 3)
        contrastive = batch_hard_triplet(pooled(specific), labels, cfg.triplet_margin) + \
            batch_hard_triplet(pooled(common), generated, cfg.triplet_margin)
        loss = loss + weights["reconstruction"] * reconstruction + \
            weights["contrastive"] * contrastive
        return logits.detach(), loss
