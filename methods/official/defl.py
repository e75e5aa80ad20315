"""attributor_defl at inference: the DEFL network (four levels of a directional and a standard
3x3 convolution, concatenated) on the 256 crop, a 1x1 convolution to 64 channels, ResNet-50's
four stages without their stem (``resnet_for_defl``), OpenAI CLIP RN50x16's image encoder on
its own 384 px view (bicubic, CLIP's normalisation: ``clip.load``'s preprocessing), a fusion
layer over both and a 3-layer MLP. Both views come packed in one input (input policy
``defl_views``).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from methods.official.layers import RESNET50, normalise, resnet_stages, unpack_views

HALF = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
CLIP_NORM = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
# OpenAI CLIP RN50x16's image encoder (clip/model.py build_model for that checkpoint)
RN50X16 = {"layers": [6, 8, 18, 8], "width": 96, "output_dim": 768, "heads": 48,
           "resolution": 384}
DEFL_VIEWS = (256, 384)


class CLIPBottleneck(nn.Module):
    """CLIP's anti-aliased bottleneck: every conv stride 1, an average pool before conv3 (and
    in the shortcut) when strided."""

    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.avgpool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu3 = nn.ReLU(inplace=True)
        self.downsample = None
        if stride > 1 or c_in != planes * 4:
            self.downsample = nn.Sequential(OrderedDict([
                ("-1", nn.AvgPool2d(stride)),
                ("0", nn.Conv2d(c_in, planes * 4, 1, stride=1, bias=False)),
                ("1", nn.BatchNorm2d(planes * 4))]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(self.avgpool(out)))
        return self.relu3(out + identity)


class AttentionPool2d(nn.Module):
    def __init__(self, side: int, dim: int, heads: int, out: int):
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.randn(side * side + 1, dim) / dim ** 0.5)
        self.k_proj, self.q_proj, self.v_proj = (nn.Linear(dim, dim) for _ in range(3))
        self.c_proj = nn.Linear(dim, out)
        self.num_heads = heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(start_dim=2).permute(2, 0, 1)  # (HW, N, C)
        x = torch.cat([x.mean(dim=0, keepdim=True), x], dim=0)
        x = x + self.positional_embedding[:, None, :].to(x.dtype)
        x, _ = F.multi_head_attention_forward(
            query=x[:1], key=x, value=x, embed_dim_to_check=x.shape[-1],
            num_heads=self.num_heads, q_proj_weight=self.q_proj.weight,
            k_proj_weight=self.k_proj.weight, v_proj_weight=self.v_proj.weight,
            in_proj_weight=None,
            in_proj_bias=torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias]),
            bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0,
            out_proj_weight=self.c_proj.weight, out_proj_bias=self.c_proj.bias,
            use_separate_proj_weight=True, training=self.training, need_weights=False)
        return x.squeeze(0)


class ModifiedResNet(nn.Module):
    """CLIP's image ResNet: a 3-convolution stem with an average pool, anti-aliased
    bottlenecks, attention pooling (``visual.*`` of a CLIP checkpoint)."""

    def __init__(self, layers, width: int, output_dim: int, heads: int, resolution: int):
        super().__init__()
        half = width // 2
        self.conv1 = nn.Conv2d(3, half, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(half)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(half, half, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(half)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(half, width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.relu3 = nn.ReLU(inplace=True)
        self.avgpool = nn.AvgPool2d(2)
        channels = width
        for i, depth in enumerate(layers):
            planes, stride = width * 2 ** i, 1 if i == 0 else 2
            blocks = [CLIPBottleneck(channels, planes, stride)]
            channels = planes * 4
            blocks += [CLIPBottleneck(channels, planes) for _ in range(depth - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.attnpool = AttentionPool2d(resolution // 32, width * 32, heads, output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.type(self.conv1.weight.dtype)
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        x = self.avgpool(self.relu3(self.bn3(self.conv3(x))))
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return self.attnpool(x)


class DirectionalBlock(nn.Module):
    def __init__(self, c_in: int, width: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, width, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(x))


class StandardBlock(nn.Module):
    def __init__(self, c_in: int, width: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class DEFLNetwork(nn.Module):
    def __init__(self, width: int = 64):
        super().__init__()
        c = 3
        for level in range(1, 5):
            setattr(self, f"level{level}_dcb", DirectionalBlock(c, width))
            setattr(self, f"level{level}_scb", StandardBlock(c, width))
            c = 2 * width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for level in range(1, 5):
            x = torch.cat((getattr(self, f"level{level}_dcb")(x),
                           getattr(self, f"level{level}_scb")(x)), dim=1)
        return x


class SemanticFeatureExtractor(nn.Module):
    def __init__(self, width: int, resnet: dict, clip: dict):
        super().__init__()
        self.clip_model = nn.Module()
        self.clip_model.visual = ModifiedResNet(**clip)
        self.adjust_channels = nn.Conv2d(2 * width, resnet["width"], 1)
        stages = resnet_stages(resnet["width"], resnet["depths"])
        self.resnet_for_defl = nn.Sequential(*stages, nn.AdaptiveAvgPool2d(1), nn.Identity(),
                                             nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())
        features = resnet["width"] * 8 * 4
        self.fusion_layer = nn.Linear(features + clip["output_dim"], features)


class SimpleNNClassifier(nn.Module):
    def __init__(self, c_in: int, classes: int):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(c_in, 512), nn.Linear(512, 256), \
            nn.Linear(256, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class DEFLNet(nn.Module):
    def __init__(self, config):
        super().__init__()
        width = config.official.get("level_width", 64)
        resnet = {**RESNET50, **config.official.get("resnet", {})}
        clip = {**RN50X16, **config.official.get("clip", {})}
        self.defl_model = DEFLNetwork(width)
        self.semantic_extractor = SemanticFeatureExtractor(width, resnet, clip)
        self.nn_classifier = SimpleNNClassifier(resnet["width"] * 8 * 4, config.num_labels)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        image, clip_image = unpack_views(pixels, DEFL_VIEWS)
        image, clip_image = normalise(image, *HALF), normalise(clip_image, *CLIP_NORM)
        se = self.semantic_extractor
        adjusted = se.adjust_channels(self.defl_model(image))
        with torch.no_grad():  # frozen, as the official code
            semantic = se.clip_model.visual(clip_image)
        fused = se.fusion_layer(torch.cat((se.resnet_for_defl(adjusted), semantic.float()),
                                          dim=1))
        return self.nn_classifier(fused)
