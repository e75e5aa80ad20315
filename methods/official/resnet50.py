"""The official ResNet-50 baseline (attributor_resnet50: torchvision's resnet50, ``fc``
replaced by nn.Identity, then its own ``fc`` over 23 labels) as a transformers
ResNetForImageClassification, the model our resnet50 preset fine-tunes
(microsoft/resnet-50): the same network, torchvision's key names mapped to transformers'.
"""

from __future__ import annotations

import re

REFERENCE = ("He et al., Deep Residual Learning for Image Recognition, CVPR 2016 (the "
             "paper's ResNet-50 baseline)")


def resnet50_config(settings: dict, tiny: bool = False):
    from transformers import ResNetConfig

    sizes = {"embedding_size": 64, "hidden_sizes": [256, 512, 1024, 2048],
             "depths": [3, 4, 6, 3]}
    if tiny:
        sizes = {"embedding_size": 4, "hidden_sizes": [16, 32, 64, 128], "depths": [1, 1, 1, 1]}
    settings = {k: v for k, v in settings.items() if k != "official"}
    # the method record the harness reads (input policy, reference) rides in the config
    return ResNetConfig(layer_type="bottleneck", reference=REFERENCE, hyperparameters={},
                        official={}, **sizes, **settings)


_BLOCK = re.compile(r"^backbone\.layer(\d)\.(\d+)\.(conv|bn)(\d)\.(.+)$")
_DOWN = re.compile(r"^backbone\.layer(\d)\.(\d+)\.downsample\.(\d)\.(.+)$")


def rename(key: str) -> str | None:
    """transformers' name of an official (torchvision layout) ResNet-50 key."""
    stem = {"backbone.conv1.": "resnet.embedder.embedder.convolution.",
            "backbone.bn1.": "resnet.embedder.embedder.normalization.",
            "fc.": "classifier.1."}
    for old, new in stem.items():
        if key.startswith(old):
            return new + key[len(old):]
    if m := _BLOCK.match(key):
        stage, block, kind, idx, rest = m.groups()
        part = "convolution" if kind == "conv" else "normalization"
        return (f"resnet.encoder.stages.{int(stage) - 1}.layers.{block}.layer."
                f"{int(idx) - 1}.{part}.{rest}")
    if m := _DOWN.match(key):
        stage, block, idx, rest = m.groups()
        part = "convolution" if idx == "0" else "normalization"
        return f"resnet.encoder.stages.{int(stage) - 1}.layers.{block}.shortcut.{part}.{rest}"
    return key  # unknown: reported as unexpected
