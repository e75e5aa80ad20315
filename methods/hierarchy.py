"""The label hierarchy that HiFi-Net and DEFL train with, derived from the generator registry:
level 1 real / generated, level 2 real / closed service / open weights, level 3 the
architecture group (real, closed, UNet diffusion, MMDiT, DiT, autoregressive), then the label.
"""

from __future__ import annotations

import torch

import imageattributionbench as iab

LEVEL2 = ("real", "closed", "open")
GROUPS = ("real", "closed", "UNet", "MMDiT", "DiT", "autoregressive")


def group(label: str) -> str:
    """The architecture group of a label, from its registry family."""
    if label == iab.REAL:
        return "real"
    family = iab.generator(label).family
    if "closed" in family:
        return "closed"
    for name in ("UNet", "MMDiT", "DiT", "autoregressive"):
        if name in family:
            return name
    raise iab.BenchmarkError(f"{label}'s family {family!r} fits no group of {GROUPS}")


def level_tables(id2label: dict) -> torch.Tensor:
    """(3, num_labels) long: each label's class at levels 1 (2 classes), 2 (3), 3 (6)."""
    names = [id2label[i] for i in sorted(id2label, key=int)]
    rows = [[0 if n == iab.REAL else 1 for n in names],
            [LEVEL2.index("real" if n == iab.REAL else
                          "closed" if group(n) == "closed" else "open") for n in names],
            [GROUPS.index(group(n)) for n in names]]
    return torch.tensor(rows)
