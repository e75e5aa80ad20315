"""A tiny image classifier with random weights, saved like a Hub model (offline demo, tests).

    python -m harness.tiny_model demo/tiny-resnet
"""

from __future__ import annotations

import sys
from pathlib import Path

import imageattributionbench as iab


def tiny_classifier(folder: str | Path, labels: list[str] | None = None, size: int = 64,
                    seed: int = 0) -> Path:
    """A two-stage ResNet (a few thousand weights) over ``labels`` (default: the benchmark's)
    and an image processor of ``size`` px, saved to ``folder``."""
    import torch
    from transformers import ResNetConfig, ResNetForImageClassification, ViTImageProcessor

    torch.manual_seed(seed)
    labels = labels or list(iab.LABELS)
    config = ResNetConfig(num_channels=3, embedding_size=8, hidden_sizes=[8, 16],
                          depths=[1, 1], layer_type="basic", num_labels=len(labels),
                          id2label=dict(enumerate(labels)),
                          label2id={n: i for i, n in enumerate(labels)})
    folder = Path(folder)
    ResNetForImageClassification(config).save_pretrained(folder)
    ViTImageProcessor(size={"height": size, "width": size}, image_mean=[0.5] * 3,
                      image_std=[0.5] * 3).save_pretrained(folder)
    return folder


def tiny_clip(folder: str | Path, size: int = 224, seed: int = 0) -> Path:
    """A CLIP with a one-layer ViT and text tower (random weights) and CLIP's image processor,
    saved to ``folder``: the offline stand-in for the paper's CLIP ViT-H/14 (CLIP-LR)."""
    import torch
    from transformers import CLIPConfig, CLIPModel, ViTImageProcessor

    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config={"vocab_size": 99, "hidden_size": 16, "intermediate_size": 32,
                     "num_hidden_layers": 1, "num_attention_heads": 2,
                     "max_position_embeddings": 16, "bos_token_id": 0, "eos_token_id": 1,
                     "pad_token_id": 1},
        vision_config={"image_size": size, "patch_size": 32, "hidden_size": 32,
                       "intermediate_size": 64, "num_hidden_layers": 1,
                       "num_attention_heads": 2},
        projection_dim=16)
    folder = Path(folder)
    CLIPModel(config).save_pretrained(folder)
    # CLIP's own normalisation; ViT's processor needs no torchvision
    ViTImageProcessor(size={"height": size, "width": size},
                      image_mean=[0.48145466, 0.4578275, 0.40821073],
                      image_std=[0.26862954, 0.26130258, 0.27577711]).save_pretrained(folder)
    return folder


if __name__ == "__main__":
    print(tiny_classifier(sys.argv[1] if len(sys.argv) > 1 else "tiny-resnet"))
