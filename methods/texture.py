"""Texture tools shared by PatchCraft and SSP: patch texture diversity, patch selection and
the SRM high-pass filter bank (Fridrich & Kodovsky, "Rich Models for Steganalysis of Digital
Images", IEEE TIFS 2012).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def texture_diversity(patches: torch.Tensor) -> torch.Tensor:
    """PatchCraft's texture diversity of (..., C, P, P) patches: the sum of absolute
    differences between neighbouring pixels along the horizontal, vertical, diagonal and
    anti-diagonal directions (summed over channels)."""
    x = patches.float()
    horizontal = (x[..., :, 1:] - x[..., :, :-1]).abs().sum(dim=(-3, -2, -1))
    vertical = (x[..., 1:, :] - x[..., :-1, :]).abs().sum(dim=(-3, -2, -1))
    diagonal = (x[..., 1:, 1:] - x[..., :-1, :-1]).abs().sum(dim=(-3, -2, -1))
    anti = (x[..., 1:, :-1] - x[..., :-1, 1:]).abs().sum(dim=(-3, -2, -1))
    return horizontal + vertical + diagonal + anti


def grid_patches(images: torch.Tensor, patch: int, stride: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, N, C, patch, patch): every patch on a stride grid, native pixels."""
    b, c = images.shape[:2]
    cols = F.unfold(images, patch, stride=stride)  # (B, C*P*P, N)
    return cols.transpose(1, 2).reshape(b, -1, c, patch, patch)


def padding_patches(images: torch.Tensor, patch: int, stride: int,
                    pad_value: torch.Tensor | None) -> torch.Tensor:
    """(B, N) bool, N as grid_patches: patches that reach into the padding the harness adds
    below and right of an image smaller than the crop (rows and columns wholly of the
    padding value)."""
    b, _, h, w = images.shape
    tops = torch.arange(0, h - patch + 1, stride, device=images.device)
    lefts = torch.arange(0, w - patch + 1, stride, device=images.device)
    if pad_value is None:
        return torch.zeros(b, len(tops) * len(lefts), dtype=torch.bool, device=images.device)
    content = (images != pad_value.view(1, -1, 1, 1)).any(dim=1)  # (B, H, W)

    def extent(any_along):  # 1 + the last index holding content, per image
        idx = torch.arange(1, any_along.shape[1] + 1, device=images.device)
        return (any_along * idx).amax(dim=1)

    own_h, own_w = extent(content.any(dim=2)), extent(content.any(dim=1))
    inside = (tops[None, :, None] + patch <= own_h[:, None, None]) & \
        (lefts[None, None, :] + patch <= own_w[:, None, None])
    return ~inside.flatten(1)


def rank_patches(images: torch.Tensor, patch: int, stride: int,
                 pad_value: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Grid patches, their order from the richest texture to the poorest (stable) among
    the image's own patches, and how many of those each image has: padding patches are
    ranked last for every purpose."""
    patches = grid_patches(images, patch, stride)
    with torch.autocast(images.device.type, enabled=False):
        diversity = texture_diversity(patches.float())
    padding = padding_patches(images, patch, stride, pad_value)
    order = torch.sort(diversity.masked_fill(padding, -1.0), dim=1, descending=True,
                       stable=True).indices
    return patches, order, (~padding).sum(dim=1)


def tile(patches: torch.Tensor, side: int) -> torch.Tensor:
    """(B, side*side, C, P, P) -> (B, C, side*P, side*P), patches in row-major order."""
    b, n, c, p, _ = patches.shape
    assert n == side * side, (n, side)
    grid = patches.reshape(b, side, side, c, p, p).permute(0, 3, 1, 4, 2, 5)
    return grid.reshape(b, c, side * p, side * p)


def _rotations(kernel: torch.Tensor) -> list[torch.Tensor]:
    return [torch.rot90(kernel, k, dims=(0, 1)) for k in range(4)]


def _embed(values, center=(2, 2)) -> torch.Tensor:
    """A 5x5 kernel from a dict {(row offset, col offset): weight} around the centre."""
    k = torch.zeros(5, 5, dtype=torch.float64)
    for (dr, dc), v in values.items():
        k[center[0] + dr, center[1] + dc] = v
    return k


def srm_kernels() -> torch.Tensor:
    """The 30 basic SRM high-pass residual kernels as (30, 5, 5), each summing to zero:
    8 first-order, 4 second-order, 8 third-order, SQUARE 3x3, 4 EDGE 3x3, SQUARE 5x5 and
    4 EDGE 5x5 (PatchCraft's filter bank)."""
    directions8 = [(0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1)]
    kernels = []
    for dr, dc in directions8:  # 1st order: x[neighbour] - x[centre]
        kernels.append(_embed({(0, 0): -1, (dr, dc): 1}))
    for dr, dc in directions8[:4]:  # 2nd order: (x[-d] - 2 x + x[+d]) / 2
        kernels.append(_embed({(-dr, -dc): 0.5, (0, 0): -1, (dr, dc): 0.5}))
    for dr, dc in directions8:  # 3rd order: (-x[-d] + 3 x - 3 x[+d] + x[+2d]) / 3
        kernels.append(_embed({(-dr, -dc): -1 / 3, (0, 0): 1, (dr, dc): -1,
                               (2 * dr, 2 * dc): 1 / 3}))
    square3 = torch.tensor([[-1, 2, -1], [2, -4, 2], [-1, 2, -1]], dtype=torch.float64) / 4
    kernels.append(F.pad(square3, (1, 1, 1, 1)))
    edge3 = square3.clone()
    edge3[2] = 0  # SQUARE 3x3 without its bottom row
    kernels += [F.pad(k, (1, 1, 1, 1)) for k in _rotations(edge3)]
    square5 = torch.tensor([[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2],
                            [2, -6, 8, -6, 2], [-1, 2, -2, 2, -1]], dtype=torch.float64) / 12
    kernels.append(square5)
    edge5 = square5.clone()
    edge5[3:] = 0  # SQUARE 5x5 without its bottom two rows
    kernels += _rotations(edge5)
    return torch.stack(kernels).float()


def srm3_kernels() -> torch.Tensor:
    """The three SRM kernels most detectors (and SSP) use: SQUARE 3x3, SQUARE 5x5 and the
    horizontal second-order residual, as (3, 5, 5)."""
    all30 = srm_kernels()
    return torch.stack([all30[20], all30[25], all30[8]])


def high_pass(images: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Each kernel over the colour channels of (B, C, H, W) images (one kernel repeated on
    every input channel, as the papers' SRM convolutions do), same size: (B, K, H, W)."""
    with torch.autocast(images.device.type, enabled=False):  # residuals below bf16's step
        x = images.float()
        weight = kernels.to(x)[:, None].expand(-1, x.shape[1], -1, -1)
        return F.conv2d(x, weight, padding=kernels.shape[-1] // 2)
