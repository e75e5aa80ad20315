"""RepMix: Bui et al., "RepMix: Representation Mixing for Robust Attribution of Synthesized
Images", ECCV 2022.

A ResNet-50 whose last-stage feature maps of two images are mixed, h = w1 h(x1) + w2 h(x2) with
(w1, w2) ~ Dirichlet(1, 1), before pooling and a 256-d embedding; two heads over the embedding,
attribution (every label) and detection (real vs generated), and a hierarchical loss: the
mixture-weighted cross-entropy of each head, the detection term with class weights
(1, 1 / (labels - 1)) so that the many generators do not swamp "real". The prediction gates the
attribution logits by the detection probabilities: the real label's by P(real), the generators'
by P(generated). At test time nothing is mixed. Input: resize 256, crop 224 (the paper's
ResNet setting).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import imageattributionbench as iab
from methods.backbone import RESNET50, feature_size, resnet
from methods.base import MethodConfig, MethodModel, masked


class RepMixConfig(MethodConfig):
    model_type = "iab-repmix"
    reference = ("Bui et al., RepMix: Representation Mixing for Robust Attribution of "
                 "Synthesized Images, ECCV 2022")
    paper_hyperparameters = {"optimizer": "Adam", "lr": 1e-3, "weight_decay": 0.0,
                             "batch_size": 32, "mixup_samples": 2, "mix_weights":
                             "Dirichlet(1, 1)", "backbone_init": "microsoft/resnet-50 "
                             "(ImageNet)"}

    def __init__(self, backbone_spec=None, embedding: int = 256,
                 input_policy: str = "paper_resnet", crop_size: int = 224, **kwargs):
        super().__init__(input_policy=input_policy, crop_size=crop_size, **kwargs)
        self.backbone_spec = dict(backbone_spec if backbone_spec is not None else RESNET50)
        self.embedding = embedding


class RepMixForImageClassification(MethodModel):
    config_class = RepMixConfig

    def __init__(self, config: RepMixConfig):
        super().__init__(config)
        if self.is_official:  # the official network (methods/official) replaces this one
            return
        self.backbone = resnet(config.backbone_spec, config.num_channels)
        self.embed = nn.Linear(feature_size(config.backbone_spec), config.embedding)
        self.attribution = nn.Linear(config.embedding, config.num_labels)
        self.detection = nn.Linear(config.embedding, 2)  # 0 real, 1 generated
        real = torch.zeros(config.num_labels, dtype=torch.bool)
        real[config.label2id.get(iab.REAL, 0)] = True
        self.register_buffer("real_label", real)
        self.post_init()

    def feature_maps(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.backbone(pixel_values=pixel_values).last_hidden_state

    def heads(self, maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gated attribution logits and detection logits from last-stage feature maps."""
        e = self.embed(maps.mean(dim=(-2, -1)))
        attribution, detection = self.attribution(e), self.detection(e)
        p = torch.softmax(detection.float(), dim=1)
        gate = torch.where(self.real_label, p[:, :1], p[:, 1:])
        return attribution * gate, detection

    def logits(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.heads(self.feature_maps(pixel_values))[0]

    def training_loss(self, pixel_values, labels, label_mask):
        maps = self.feature_maps(pixel_values)
        partner = torch.randperm(len(labels), device=labels.device)
        w = torch.distributions.Dirichlet(torch.ones(2)).sample((len(labels),)).to(maps)
        mixed = w[:, 0, None, None, None] * maps + w[:, 1, None, None, None] * maps[partner]
        attribution, detection = self.heads(mixed)
        attribution = masked(attribution.float(), label_mask)
        det_weight = torch.tensor([1.0, 1.0 / max(1, self.config.num_labels - 1)],
                                  device=maps.device)
        loss = 0.0
        for weight, target in ((w[:, 0], labels), (w[:, 1], labels[partner])):
            is_fake = (~self.real_label[target]).long()
            loss = loss + (weight * F.cross_entropy(attribution, target, reduction="none")).mean()
            loss = loss + (weight * F.cross_entropy(detection.float(), is_fake,
                                                    weight=det_weight, reduction="none")).mean()
        return attribution.detach(), loss
