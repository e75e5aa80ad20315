"""attributor_ucf at inference: the forgery encoder (FaceForensics' Xception in its
``adjust_channel`` mode, 2048 -> 512 channels), the specific-feature block and head; the
prediction is the specific head's logits (``out_spe``). The content encoder, the conditional
decoder and the common head only train.
"""

from __future__ import annotations

import torch
from torch import nn

from methods.official.layers import XCEPTION_CHANNELS, xception_entry, xception_middle_and_exit


class UCFXception(nn.Module):
    """Xception features: entry flow (conv1/bn1, conv2/bn2, ReLU after each), blocks 1-12,
    conv3/bn3 + ReLU, conv4/bn4, then ``adjust_channel`` (1x1 conv, BN, ReLU)."""

    def __init__(self, channels, out: int):
        super().__init__()
        for name, module in xception_entry(channels) + xception_middle_and_exit(channels):
            if not name.startswith("relu"):
                setattr(self, name, module)
        self.relu = nn.ReLU(inplace=True)
        self.adjust_channel = nn.Sequential(nn.Conv2d(channels[16], out, 1, 1),
                                            nn.BatchNorm2d(out), nn.ReLU(inplace=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        for i in range(1, 13):
            x = getattr(self, f"block{i}")(x)
        x = self.relu(self.bn3(self.conv3(x)))
        return self.adjust_channel(self.bn4(self.conv4(x)))


class Conv2d1x1(nn.Module):
    def __init__(self, c_in: int, hidden: int, c_out: int):
        super().__init__()
        self.conv2d = nn.Sequential(nn.Conv2d(c_in, hidden, 1, 1), nn.LeakyReLU(inplace=True),
                                    nn.Conv2d(hidden, hidden, 1, 1), nn.LeakyReLU(inplace=True),
                                    nn.Conv2d(hidden, c_out, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2d(x)


class Head(nn.Module):
    def __init__(self, c_in: int, hidden: int, c_out: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(c_in, hidden), nn.LeakyReLU(inplace=True),
                                 nn.Linear(hidden, c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # its dropout is inactive at test time
        return self.mlp(nn.functional.adaptive_avg_pool2d(x, 1).flatten(1))


class UCFNet(nn.Module):
    def __init__(self, config):
        super().__init__()
        channels = config.official.get("channels", XCEPTION_CHANNELS)
        feat = config.official.get("encoder_feat_dim", 512)
        self.encoder_f = UCFXception(channels, feat)
        self.block_spe = Conv2d1x1(feat, feat // 2, feat // 2)
        self.head_spe = Head(feat // 2, feat, config.num_labels)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.head_spe(self.block_spe(self.encoder_f(pixels)))
