"""attributor_hifi_net at inference: its HRNet feature extractor (``FENet``: a colour stem and
a Laplacian-pyramid frequency stem at full resolution, merged, a bottleneck stage and three
4-branch HRNet stages with exchange units) and, of its NLC head (``SegNet``), the parts the
fine-grained prediction reads: the non-local mask branch (its partial convolutions' output is
a feature of the last level) and the level-4 classifier over all 23 labels. Levels 1-3 only
train (their outputs never reach level 4's logits).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from methods.official.layers import Bottleneck

HIFI = {"stem": 64, "stage1_planes": 64, "stage1_blocks": 2, "channels": [18, 36, 72, 144],
        "blocks": 2, "scales": [2, 4, 8]}


def _conv_bn(c_in, c_out, kernel, stride, relu: bool) -> nn.Sequential:
    layers = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
              nn.BatchNorm2d(c_out)]
    return nn.Sequential(*layers, nn.ReLU(inplace=False)) if relu else nn.Sequential(*layers)


class BasicBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(out + x)


class HighResolutionModule(nn.Module):
    """Parallel branches of basic blocks, then every branch's output summed into each branch
    (1x1 conv + BN + bilinear up-sampling from lower resolutions, chains of strided 3x3
    convs from higher ones)."""

    def __init__(self, channels, blocks: int):
        super().__init__()
        n = len(channels)
        self.branches = nn.ModuleList(nn.Sequential(*[BasicBlock(c) for _ in range(blocks)])
                                      for c in channels)
        fuse = []
        for i in range(n):
            row = []
            for j in range(n):
                if j > i:
                    row.append(_conv_bn(channels[j], channels[i], 1, 1, relu=False))
                elif j == i:
                    row.append(None)
                else:
                    chain = [_conv_bn(channels[j], channels[j], 3, 2, relu=True)
                             for _ in range(i - j - 1)]
                    chain.append(_conv_bn(channels[j], channels[i], 3, 2, relu=False))
                    row.append(nn.Sequential(*chain))
            fuse.append(nn.ModuleList(row))
        self.fuse_layers = nn.ModuleList(fuse)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        out = []
        for i, row in enumerate(self.fuse_layers):
            y = xs[0] if i == 0 else row[0](xs[0])
            for j in range(1, len(xs)):
                if i == j:
                    y = y + xs[j]
                elif j > i:
                    y = y + F.interpolate(row[j](xs[j]), size=list(xs[i].shape[-2:]),
                                          mode="bilinear", align_corners=True)
                else:
                    y = y + row[j](xs[j])
            out.append(torch.relu(y))
        return out


class GaussianSmoothing(nn.Module):
    """Depthwise Gaussian blur without padding (its kernel is a saved buffer, ``weight``)."""

    def __init__(self, channels: int, size: int, sigma: float):
        super().__init__()
        grid = torch.arange(size, dtype=torch.float32)
        g = torch.exp(-((grid - (size - 1) / 2) / sigma) ** 2 / 2) / (sigma * math.sqrt(2 * math.pi))
        kernel = g[:, None] * g[None, :]
        kernel = kernel / kernel.sum()
        self.register_buffer("weight", kernel.expand(channels, 1, size, size).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, groups=self.weight.shape[0])


class LaplacianMs(nn.Module):
    def __init__(self, c: int, scales):
        super().__init__()
        self.scales = list(scales)
        self.smoothing = nn.ModuleDict({f"scale-{s}": GaussianSmoothing(c, 3, s)
                                        for s in self.scales})
        self.conv_1x1 = nn.Sequential(nn.Conv2d(c * len(self.scales), c, 1, bias=False),
                                      nn.BatchNorm2d(c), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        diffs = []
        for s in self.scales:
            sm = F.interpolate(self.smoothing[f"scale-{s}"](x), scale_factor=1 / s,
                               mode="bilinear", align_corners=False)
            sm = F.interpolate(sm, size=(x.shape[2], x.shape[3]), mode="bilinear",
                               align_corners=False)
            diffs.append(x - sm)
        return self.conv_1x1(torch.cat(diffs, dim=1))  # then dropout: inactive at test


class FENet(nn.Module):
    def __init__(self, spec: dict):
        super().__init__()
        stem, ch = spec["stem"], spec["channels"]
        for suffix in ("", "fre"):
            setattr(self, f"conv1{suffix}", nn.Conv2d(3, stem, 3, 1, 1, bias=False))
            setattr(self, f"bn1{suffix}", nn.BatchNorm2d(stem))
            setattr(self, f"conv2{suffix}", nn.Conv2d(stem, stem, 3, 1, 1, bias=False))
            setattr(self, f"bn2{suffix}", nn.BatchNorm2d(stem))
        self.laplacian = LaplacianMs(stem, spec["scales"])
        self.conv_1x1_merge = nn.Sequential(nn.Conv2d(2 * stem, stem, 1, bias=False, groups=2),
                                            nn.BatchNorm2d(stem), nn.ReLU(inplace=True))
        planes = spec["stage1_planes"]
        blocks = [Bottleneck(stem, planes)]
        blocks += [Bottleneck(planes * 4, planes) for _ in range(spec["stage1_blocks"] - 1)]
        self.layer1 = nn.Sequential(*blocks)
        c1 = planes * 4
        trans = [_conv_bn(c1, ch[0], 3, 1, relu=True)]
        for i in range(1, len(ch)):
            trans.append(nn.Sequential(*[_conv_bn(c1, ch[i] if k == i - 1 else c1, 3, 2, True)
                                         for k in range(i)]))
        self.transition1 = nn.ModuleList(trans)
        for name in ("stage2", "stage3", "stage4"):
            setattr(self, name, nn.Sequential(HighResolutionModule(ch, spec["blocks"])))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        fre = torch.relu(self.bn1fre(self.conv1fre(x)))
        fre = torch.relu(self.bn2fre(self.conv2fre(self.laplacian(fre))))
        x = torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))
        x = self.layer1(self.conv_1x1_merge(torch.cat([x, fre], dim=1)))
        xs = [t(x) for t in self.transition1]
        for stage in (self.stage2, self.stage3, self.stage4):
            xs = stage[0](xs)  # transitions 2 and 3 are identities (equal widths)
        return xs


class PartialConv(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.input_conv = nn.Conv2d(c_in, c_out, 3, 2)
        self.mask_conv = nn.Conv2d(c_in, c_out, 3, 2, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor):
        out = self.input_conv(x)
        bias = self.input_conv.bias.view(1, -1, 1, 1).expand_as(out)
        with torch.no_grad():
            out_mask = self.mask_conv(mask)
        holes = out_mask == 0
        out = ((out - bias) / out_mask.masked_fill(holes, 1.0) + bias).masked_fill(holes, 0.0)
        return out, torch.ones_like(out).masked_fill(holes, 0.0)


class NonLocalMask(nn.Module):
    def __init__(self, c: int, r: int = 4):
        super().__init__()
        self.r, ic = r, c * r * r
        self.g, self.theta, self.phi = (nn.Conv2d(ic, ic, 1) for _ in range(3))
        self.W_s = nn.Conv2d(c, c, 1)
        self.gamma_s = nn.Parameter(torch.ones(1))
        self.getmask = nn.Sequential(nn.Conv2d(c, 16, 3, 1, 1), nn.ReLU(),
                                     nn.Conv2d(16, 1, 3, 1, 1))
        self.Pconv_1, self.Pconv_2, self.Pconv_3 = (PartialConv(3, 3), PartialConv(3, 3),
                                                    PartialConv(3, 1))

    def forward(self, x: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        x1 = x.reshape(b, c * self.r * self.r, h // self.r, w // self.r)  # a plain reshape
        g = self.g(x1).view(b, x1.shape[1], -1).permute(0, 2, 1)
        theta = self.theta(x1).view(b, x1.shape[1], -1).permute(0, 2, 1)
        phi = self.phi(x1).view(b, x1.shape[1], -1)
        y = torch.matmul(torch.softmax(torch.matmul(theta, phi), dim=-1), g)
        y = y.permute(0, 2, 1).contiguous().view(b, c, h, w)
        mask = torch.sigmoid(self.getmask(x + self.gamma_s * self.W_s(y))).repeat(1, 3, 1, 1)
        out, m = self.Pconv_1(img * mask, mask)
        out, m = self.Pconv_2(out, m)
        return self.Pconv_3(out, m)[0]


class BranchCLS(nn.Module):
    def __init__(self, c_in: int, classes: int):
        super().__init__()
        self.branch_cls = nn.Sequential(nn.Conv2d(c_in, 32, 3, 1, 1), nn.ReLU(inplace=True),
                                        nn.Conv2d(32, 18, 3, 1, 1), nn.ReLU(inplace=True))
        self.bn = nn.BatchNorm1d(18)
        self.fc = nn.Linear(18, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.bn(F.adaptive_avg_pool2d(self.branch_cls(x), 1).flatten(1)))


class SegNet(nn.Module):
    def __init__(self, channels, classes: int):
        super().__init__()
        self.getmask = NonLocalMask(channels[0], 4)
        self.branch_cls_level_4 = BranchCLS(sum(channels) + 1, classes)

    def forward(self, feats: list[torch.Tensor], img: torch.Tensor) -> torch.Tensor:
        s1, s2, s3, s4 = feats

        def up(t, like):
            return F.interpolate(t, size=like.shape[2:], mode="bilinear", align_corners=True)

        pconv = up(self.getmask(s1, img).detach(), s1)
        s3_in = torch.cat([up(s4, s3), s3], dim=1)
        s2_in = torch.cat([up(s3_in, s2), s2], dim=1)
        return self.branch_cls_level_4(torch.cat([up(s2_in, s1), s1, pconv], dim=1))


class HiFiNet(nn.Module):
    def __init__(self, config):
        super().__init__()
        spec = {**HIFI, **config.official.get("hrnet", {})}
        self.FENet = FENet(spec)
        self.SegNet = SegNet(spec["channels"], config.num_labels)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.SegNet(self.FENet(pixels), pixels)
