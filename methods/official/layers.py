"""Building blocks of the official code's networks, written here from its architecture (layer
types, sizes, order and module names, so that its state dicts load one to one): torchvision's
ResNet-50 layout, the Xception blocks of Patch-Forensics and UCF, DNA-Det's and POSE's plain
CNN, and the packed multi-view input some official variants read.
"""

from __future__ import annotations

import torch
from torch import nn

# torchvision's ResNet-50: stem width and bottleneck blocks per stage
RESNET50 = {"width": 64, "depths": [3, 4, 6, 3]}


class Bottleneck(nn.Module):
    """torchvision's ResNet bottleneck (stride in the 3x3 convolution)."""

    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int = 1):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(c_in, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or c_in != out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, out, 1, stride, bias=False),
                                            nn.BatchNorm2d(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


def resnet_stages(width: int, depths, c_in: int | None = None) -> list[nn.Sequential]:
    """torchvision's layer1 ... layer4 (widths w, 2w, 4w, 8w; strides 1, 2, 2, 2)."""
    stages, channels = [], width if c_in is None else c_in
    for i, depth in enumerate(depths):
        planes = width * 2 ** i
        blocks = [Bottleneck(channels, planes, 1 if i == 0 else 2)]
        channels = planes * Bottleneck.expansion
        blocks += [Bottleneck(channels, planes) for _ in range(depth - 1)]
        stages.append(nn.Sequential(*blocks))
    return stages


def resnet_stem(width: int) -> list[nn.Module]:
    """conv1, bn1, relu, maxpool of torchvision's ResNet."""
    return [nn.Conv2d(3, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width),
            nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]


class TorchvisionResNet(nn.Module):
    """torchvision's ``resnet50()`` with ``fc`` replaced by nn.Identity (as the official code
    does): (B, 3, H, W) -> (B, 8 * 4 * width) pooled features. Keys conv1, bn1, layer1-4."""

    def __init__(self, width: int = 64, depths=(3, 4, 6, 3)):
        super().__init__()
        self.conv1, self.bn1, self.relu, self.maxpool = resnet_stem(width)
        self.layer1, self.layer2, self.layer3, self.layer4 = resnet_stages(width, depths)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Identity()
        self.features = width * 8 * Bottleneck.expansion

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class SeparableConv2d(nn.Module):
    """Depthwise then pointwise convolution (keys conv1, pointwise)."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 1, stride: int = 1,
                 padding: int = 0):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_in, kernel, stride, padding, groups=c_in, bias=False)
        self.pointwise = nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.conv1(x))


class XceptionBlock(nn.Module):
    """Xception's block as Cadene's and FaceForensics' ports build it: ``rep`` holds
    (ReLU, separable 3x3, BN) per repetition, the first ReLU dropped unless
    ``start_with_relu``, a 3x3 max-pool when strided; ``skip``/``skipbn`` a 1x1 shortcut
    when the shape changes. The module indices inside ``rep`` follow that construction."""

    def __init__(self, c_in: int, c_out: int, reps: int, stride: int = 1,
                 start_with_relu: bool = True, grow_first: bool = True):
        super().__init__()
        self.skip = self.skipbn = None
        if c_out != c_in or stride != 1:
            self.skip = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)
            self.skipbn = nn.BatchNorm2d(c_out)
        rep, channels = [], c_in
        if grow_first:
            rep += [nn.ReLU(inplace=True), SeparableConv2d(c_in, c_out, 3, 1, 1),
                    nn.BatchNorm2d(c_out)]
            channels = c_out
        for _ in range(reps - 1):
            rep += [nn.ReLU(inplace=True), SeparableConv2d(channels, channels, 3, 1, 1),
                    nn.BatchNorm2d(channels)]
        if not grow_first:
            rep += [nn.ReLU(inplace=True), SeparableConv2d(c_in, c_out, 3, 1, 1),
                    nn.BatchNorm2d(c_out)]
        if start_with_relu:
            rep[0] = nn.ReLU(inplace=False)  # the input is also the shortcut's
        else:
            rep = rep[1:]
        if stride != 1:
            rep.append(nn.MaxPool2d(3, stride, 1))
        self.rep = nn.Sequential(*rep)

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        skip = inp if self.skip is None else self.skipbn(self.skip(inp))
        return self.rep(inp) + skip


# Xception's channels: conv1, conv2, block1 ... block12 outputs, conv3, conv4
XCEPTION_CHANNELS = [3, 32, 64, 128, 256, 728, 728, 728, 728, 728, 728, 728, 728, 728, 1024,
                     1536, 2048]


def xception_entry(ch) -> list[tuple[str, nn.Module]]:
    """(name, module) of Xception's entry flow up to block2 (Patch-Forensics' cut)."""
    return [("conv1", nn.Conv2d(ch[0], ch[1], 3, 2, 0, bias=False)),
            ("bn1", nn.BatchNorm2d(ch[1])), ("relu1", nn.ReLU(inplace=True)),
            ("conv2", nn.Conv2d(ch[1], ch[2], 3, bias=False)),
            ("bn2", nn.BatchNorm2d(ch[2])), ("relu2", nn.ReLU(inplace=True)),
            ("block1", XceptionBlock(ch[2], ch[3], 2, 2, start_with_relu=False)),
            ("block2", XceptionBlock(ch[3], ch[4], 2, 2))]


def xception_middle_and_exit(ch) -> list[tuple[str, nn.Module]]:
    """block3 ... block12, conv3/bn3, conv4/bn4 (activations applied by the caller)."""
    blocks = [("block3", XceptionBlock(ch[4], ch[5], 2, 2))]
    blocks += [(f"block{i}", XceptionBlock(ch[i + 1], ch[i + 2], 3, 1)) for i in range(4, 12)]
    blocks += [("block12", XceptionBlock(ch[13], ch[14], 2, 2, grow_first=False)),
               ("conv3", SeparableConv2d(ch[14], ch[15], 3, 1, 1)),
               ("bn3", nn.BatchNorm2d(ch[15])),
               ("conv4", SeparableConv2d(ch[15], ch[16], 3, 1, 1)),
               ("bn4", nn.BatchNorm2d(ch[16]))]
    return blocks


class DCGANConv(nn.Module):
    """DNA-Det's and POSE's down-sampling unit: 4x4 stride-2 conv, BN, LeakyReLU(0.2)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.main = nn.Sequential(nn.Conv2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out),
                                  nn.LeakyReLU(0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class VGGLayer(DCGANConv):
    """3x3 conv, BN, LeakyReLU(0.2)."""

    def __init__(self, c_in: int, c_out: int):
        nn.Module.__init__(self)
        self.main = nn.Sequential(nn.Conv2d(c_in, c_out, 3, 1, 1), nn.BatchNorm2d(c_out),
                                  nn.LeakyReLU(0.2))


class SimpleCNN(nn.Module):
    """DNA-Det's and POSE's ``Simple_CNN``: four (DCGANConv, VGGLayer) stages of widths
    nf, 2nf, 4nf, 8nf, global average pooling, dropout and a linear head (``main``, ``pool``,
    ``classification_head.1``). Returns (logits, pooled features)."""

    def __init__(self, classes: int, nf: int = 64):
        super().__init__()
        layers, c = [], 3
        for w in (nf, nf * 2, nf * 4, nf * 8):
            layers += [DCGANConv(c, w), VGGLayer(w, w)]
            c = w
        self.main = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classification_head = nn.Sequential(nn.Dropout(0.2), nn.Linear(c, classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feature = self.pool(self.main(x)).flatten(1)
        return self.classification_head(feature), feature


def unpack_views(pixels: torch.Tensor, sides) -> list[torch.Tensor]:
    """The square views of a packed input (harness/official_inputs.py): (B, C, S, S) holds
    the views' pixels one after another in row-major order; returns (B, C, s, s) each."""
    flat = pixels.flatten(2)
    views, start = [], 0
    for s in sides:
        views.append(flat[:, :, start:start + s * s].reshape(*pixels.shape[:2], s, s))
        start += s * s
    return views


def normalise(x: torch.Tensor, mean, std) -> torch.Tensor:
    """torchvision's Normalize on (B, C, H, W): (x - mean) / std per channel."""
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s
