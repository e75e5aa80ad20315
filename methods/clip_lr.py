"""CLIP-LR: Cioni et al., "Are CLIP features all you need for Universal Synthetic Image
Origin Attribution?", arXiv 2408.09153, 2024.

Logistic regression on frozen CLIP image embeddings (standardised), folded into one linear
layer over the embedding. The harness fits it as a linear probe (``--preset clip-lr``: a Hub
CLIP and ``--probe lbfgs``); this model class exists to score fitted heads as one checkpoint,
notably the paper's converted official ones (``python -m methods.convert_official clip_lr``).
"""

from __future__ import annotations

import torch
from torch import nn

from methods.base import MethodConfig, MethodModel

CLIP_NORM = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))


class CLIPLRConfig(MethodConfig):
    model_type = "iab-clip-lr"
    reference = ("Cioni et al., Are CLIP features all you need for Universal Synthetic Image "
                 "Origin Attribution?, arXiv 2408.09153, 2024")
    paper_hyperparameters = {"solver": "L-BFGS logistic regression (StandardScaler, L2, C=1)",
                             "features": "frozen CLIP image embeddings"}

    def __init__(self, clip_config: dict | None = None, input_policy: str = "processor",
                 crop_size: int = 224, input_mean=CLIP_NORM[0], input_std=CLIP_NORM[1],
                 **kwargs):
        super().__init__(input_policy=input_policy, crop_size=crop_size,
                         input_mean=input_mean, input_std=input_std, **kwargs)
        self.clip_config = dict(clip_config or {})


class CLIPLRForImageClassification(MethodModel):
    config_class = CLIPLRConfig
    has_training_objective = False  # fitted by harness/probe.py, not by gradient steps

    def __init__(self, config: CLIPLRConfig):
        super().__init__(config)
        if self.is_official:
            return
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

        self.clip = CLIPVisionModelWithProjection(CLIPVisionConfig(**config.clip_config))
        self.clip.requires_grad_(False)
        self.head = nn.Linear(self.clip.config.projection_dim, config.num_labels)
        self.post_init()

    def logits(self, pixel_values: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            embeds = self.clip(pixel_values=pixel_values).image_embeds
        return self.head(embeds)
