"""The official code's test-time input pipelines (mttry/ImageAttributionBench,
``dataset/ImageAttributionDataset``), pixel for pixel, for the official variants' input
policies (harness/data.py ``crop``):

- torchvision's ``Resize(n)`` on a PIL image: the shorter side to n, the longer to
  ``int(n * long / short)`` (truncated: 640 x 427 -> 383 x 256), PIL's resampling;
  ``CenterCrop(n)``: offsets ``int(round((size - n) / 2))``.
- PatchCraft's rich/poor-texture reconstructions, from the full-resolution image.
- DEFL's two views: the 256 crop and CLIP's own 384 px bicubic crop.

Policies that give a model several views pack them into one square uint8 image: the views'
pixels one after another in row-major order, the rest zero (``pack``); the model unpacks them
(methods/official/layers.py ``unpack_views``).
"""

from __future__ import annotations

import math

import numpy as np

PATCH, GRID, VIEW = 32, 8, 256  # PatchCraft: 32 px patches, 8 x 8 of them per view
DEFL_SIDES = (256, 384)


def packed_side(sides) -> int:
    """Side of the square that holds views of these sides."""
    return math.isqrt(sum(s * s for s in sides) - 1) + 1


def pack(views: list[np.ndarray]) -> np.ndarray:
    flat = np.concatenate([v.reshape(-1, 3) for v in views])
    side = packed_side([v.shape[0] for v in views])
    out = np.zeros((side * side, 3), np.uint8)
    out[:len(flat)] = flat
    return out.reshape(side, side, 3)


def tv_resize(img, short: int, resample):
    """torchvision ``Resize(short)`` of a PIL image."""
    w, h = img.size
    if w <= h:
        size = (short, int(short * h / w))
    else:
        size = (int(short * w / h), short)
    return img if size == (w, h) else img.resize(size, resample)


def tv_center_crop(img, side: int):
    """torchvision ``CenterCrop(side)`` of a PIL image at least ``side`` on each side."""
    w, h = img.size
    top, left = int(round((h - side) / 2.0)), int(round((w - side) / 2.0))
    return img.crop((left, top, left + side, top + side))


def texture_diversity(patches: np.ndarray) -> np.ndarray:
    """(N,) int64: PatchCraft's ``compute`` of (N, P, P, 3) uint8 patches (absolute
    differences of horizontal, vertical and both diagonal neighbours, all channels)."""
    p = patches.astype(np.int64)
    return (np.abs(p[:, :, :-1] - p[:, :, 1:]).sum(axis=(1, 2, 3))
            + np.abs(p[:, :-1] - p[:, 1:]).sum(axis=(1, 2, 3))
            + np.abs(p[:, :-1, :-1] - p[:, 1:, 1:]).sum(axis=(1, 2, 3))
            + np.abs(p[:, 1:, :-1] - p[:, :-1, 1:]).sum(axis=(1, 2, 3)))


def patchcraft_views(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rich, poor) 256 x 256 reconstructions of an (H, W, 3) uint8 image, as the official
    ``split_and_reconstruct_image``: the full 32 px patches of a grid from the top left,
    ranked by texture diversity; the poorest and richest third, at most 64 each (richest
    first), tiled 8 x 8 and repeated to fill. Equally diverse patches are taken in raster
    order (a stable sort): the official code's order for them is numpy's unstable default
    sort's, which differs between numpy versions and CPUs."""
    h, w = arr.shape[:2]
    rows, cols = h // PATCH, w // PATCH
    if rows == 0 or cols == 0:  # no patch: the official code returns black images
        blank = np.zeros((VIEW, VIEW, 3), np.uint8)
        return blank, blank.copy()
    patches = arr[:rows * PATCH, :cols * PATCH].reshape(rows, PATCH, cols, PATCH, 3)
    patches = patches.transpose(0, 2, 1, 3, 4).reshape(-1, PATCH, PATCH, 3)
    order = np.argsort(texture_diversity(patches), kind="stable")
    count = max(1, len(patches) // 3)
    poor = order[:count][:GRID * GRID]
    rich = order[-count:][-GRID * GRID:][::-1]

    def tile(idx):
        chosen = patches[[idx[k % len(idx)] for k in range(GRID * GRID)]]
        return chosen.reshape(GRID, GRID, PATCH, PATCH, 3).transpose(0, 2, 1, 3, 4).reshape(
            VIEW, VIEW, 3)

    return tile(rich), tile(poor)


def official_views(img, policy: str) -> np.ndarray:
    """The packed views of a decoded RGB PIL image under a multi-view policy."""
    from PIL import Image

    if policy == "patchcraft_views":
        return pack(list(patchcraft_views(np.asarray(img))))
    if policy == "defl_views":
        image = tv_center_crop(tv_resize(img, 256, Image.Resampling.BILINEAR), 256)
        clip = tv_center_crop(tv_resize(img, 384, Image.Resampling.BICUBIC), 384)
        return pack([np.asarray(image), np.asarray(clip)])
    raise ValueError(policy)


VIEW_SIDES = {"patchcraft_views": packed_side((VIEW, VIEW)),
              "defl_views": packed_side(DEFL_SIDES)}
