"""attributor_clip_lr at inference: CLIP ViT-H/14 (LAION-2B) image embeddings of the
mean/std 0.5-normalised 224 crop (not CLIP's own normalisation), scikit-learn's
StandardScaler and multinomial LogisticRegression, its ``predict_proba`` as the output; the
official evaluation applies softmax to those probabilities once more (``double_softmax``).
The scaler and regression are folded into one linear layer (``head``).
"""

from __future__ import annotations

import torch
from torch import nn

# laion/CLIP-ViT-H-14-laion2B-s32B-b79K's vision tower (its config.json)
LAION_VIT_H14 = {"hidden_size": 1280, "intermediate_size": 5120, "num_hidden_layers": 32,
                 "num_attention_heads": 16, "patch_size": 14, "image_size": 224,
                 "projection_dim": 1024, "hidden_act": "gelu", "layer_norm_eps": 1e-5}


class CLIPLRNet(nn.Module):
    def __init__(self, config):
        super().__init__()
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

        clip = {**LAION_VIT_H14, **config.official.get("clip", {})}
        self.clip = CLIPVisionModelWithProjection(CLIPVisionConfig(**clip))
        self.head = nn.Linear(clip["projection_dim"], config.num_labels)
        self.double_softmax = bool(config.official.get("double_softmax", False))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            embeds = self.clip(pixel_values=pixels).image_embeds
        logits = self.head(embeds)
        return torch.softmax(logits, dim=1) if self.double_softmax else logits


def fold_logistic_regression(mean, scale, coef, intercept, classes, num_labels: int):
    """(weight, bias) of one linear layer over raw embeddings equal to scikit-learn's
    StandardScaler + LogisticRegression (multinomial) decision function; labels the
    regression never saw get a bias of -1e4 (never predicted)."""
    mean, scale = torch.as_tensor(mean).double(), torch.as_tensor(scale).double()
    coef, intercept = torch.as_tensor(coef).double(), torch.as_tensor(intercept).double()
    weight = torch.zeros(num_labels, coef.shape[1], dtype=torch.float64)
    bias = torch.full((num_labels,), -1e4, dtype=torch.float64)
    rows = torch.as_tensor(classes).long()
    weight[rows] = coef / scale
    bias[rows] = intercept - (coef / scale) @ mean
    return weight.float(), bias.float()
