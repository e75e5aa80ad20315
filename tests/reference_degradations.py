"""An independent implementation of the benchmark's degradations, in numpy.

It follows the definitions, not imageattributionbench's code: nearest sampling by pixel
centres (positions accumulated as PIL does), and PIL's Gaussian blur as it is specified in Pillow's BoxBlur.c (three passes of an
extended box blur whose fractional radius comes from Gwosdek et al., SSVM 2011), in the same
float32 and 24-bit fixed-point arithmetic.
"""

from __future__ import annotations

import numpy as np


def _nearest_positions(n_out: int, n_in: int) -> np.ndarray:
    """Source index of each output pixel: pixel centres (x + 0.5) * n_in / n_out, which PIL
    accumulates by repeated addition in double precision (Geometry.c, ImagingScaleAffine),
    so the reference does the same with a sequential cumsum."""
    step = n_in / n_out
    centres = np.cumsum(np.r_[step * 0.5, np.full(n_out - 1, step)])
    return np.minimum(np.floor(centres).astype(int), n_in - 1)


def nearest_resize(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    h0, w0 = arr.shape[:2]
    return arr[_nearest_positions(height, h0)][:, _nearest_positions(width, w0)]


def down_up(arr: np.ndarray, scale: float) -> np.ndarray:
    h, w = arr.shape[:2]
    small = nearest_resize(arr, max(1, int(w * scale)), max(1, int(h * scale)))
    return nearest_resize(small, w, h)


def _box_radius(radius: float, passes: int) -> np.float32:
    f = np.float32
    sigma2 = f(f(radius) * f(radius) / f(passes))
    length = f(np.sqrt(12.0 * float(sigma2) + 1.0))
    whole = f(np.floor((float(length) - 1.0) / 2.0))
    frac = f(f(f(2) * whole + f(1)) * f(whole * f(whole + f(1)) - f(3) * sigma2))
    frac = f(frac / f(f(6) * f(sigma2 - f(whole + f(1)) * f(whole + f(1)))))
    return f(whole + frac)


def _box_pass(a: np.ndarray, radius: np.float32) -> np.ndarray:
    """One extended box blur along the last axis, edges clamped."""
    r = int(radius)
    ww = np.uint64(int(np.float32(np.float32(1 << 24) / (radius * np.float32(2) + np.float32(1)))))
    fw = (np.uint64(1 << 24) - np.uint64(2 * r + 1) * ww) // np.uint64(2)
    n = a.shape[-1]
    idx = np.arange(n)
    a64 = a.astype(np.uint64)
    acc = sum(a64[..., np.clip(idx + k, 0, n - 1)] for k in range(-r, r + 1))
    far = a64[..., np.clip(idx - r - 1, 0, n - 1)] + a64[..., np.clip(idx + r + 1, 0, n - 1)]
    return ((acc * ww + far * fw + np.uint64(1 << 23)) >> np.uint64(24)).astype(np.uint8)


def gaussian_blur(arr: np.ndarray, radius: float, passes: int = 3) -> np.ndarray:
    r = _box_radius(radius, passes)
    out = arr
    for axis in (1, 0):  # horizontal passes first, then vertical
        for _ in range(passes):
            out = np.moveaxis(_box_pass(np.moveaxis(out, axis, -1), r), -1, axis)
    return out


IJG_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69,
    56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81,
    104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99])


def ijg_luma_table(quality: int) -> np.ndarray:
    """libjpeg's luminance quantization table at a quality (jcparam.c)."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((IJG_LUMA * scale + 50) // 100, 1, 255)
