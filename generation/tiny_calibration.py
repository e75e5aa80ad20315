"""Photo-like colour and file size for tiny random-weight pipelines.

A tiny pipeline's random VAE decoder paints every image in its own palette (one generator all
purple, another all green) at its own PNG size. A classifier then needs no generator trace at
all: the mean colour, or the file size (the dataset card's metadata-only shortcut baseline),
names the generator. So, once per pipeline, the decoder's last convolution is re-weighted:

- an affine colour map (3x3 matrix and offset) gives every tiny generator the same per-channel
  mean, standard deviation and channel correlation, those of a typical photograph;
- a sharpness blend of its 3x3 kernels (towards their spatial mean, or away from it) gives every
  tiny generator the same mean PNG size per pixel, :data:`TARGET_PNG_BYTES_PER_PIXEL`.

What is left to tell generators apart is the spatial texture each random decoder leaves, which
is what attribution methods are meant to find. The map is fitted on fixed prompts and seeds with
the run's own settings, so it is a function of the weights seed and the settings only.
"""

from __future__ import annotations

import io
import numpy as np

# Recorded in tiny rows' model_revision: bump it when the calibration changes the images.
CALIBRATION_VERSION = "photo-calibrated-1"
# A typical photograph's colour: channel means, one standard deviation, channel correlation.
TARGET_MEAN = (0.47, 0.44, 0.40)
TARGET_STD = 0.18
TARGET_CORRELATION = 0.85
# PNG bytes per pixel every tiny generator is brought to (about 9,500 bytes at 64 x 64): a
# size real 64 px photo crops reach too (generation/real.py photo_crops matches them).
TARGET_PNG_BYTES_PER_PIXEL = 2.32
# Fixed calibration inputs: official prompts of six subclasses (none of the demo's four), each
# with seeds of its own. An image's colour and PNG size depend on its noise more than on its
# prompt, and 36 images pin the mean colour to about 0.002 (one image varies by about 0.01).
CALIBRATION_PROMPTS = tuple((s, 0) for s in ("dog", "wild", "church", "classroom", "celebahq",
                                             "ImageNet-1k"))
CALIBRATION_SEEDS_PER_PROMPT = 6
_SHARPNESS_RANGE = (-1.0, 3.0)  # -1: each kernel replaced by its mean (a box filter)
_BISECTION_STEPS = 10


def png_bytes_per_pixel(images: np.ndarray) -> float:
    """Mean PNG size per pixel of images (N, H, W, 3) in [0, 1], encoded as the job does."""
    from PIL import Image

    sizes = []
    for image in images:
        buf = io.BytesIO()
        Image.fromarray((image * 255).round().clip(0, 255).astype(np.uint8), "RGB").save(
            buf, "PNG")
        sizes.append(len(buf.getvalue()))
    return float(np.mean(sizes)) / (images.shape[1] * images.shape[2])


def _target_covariance() -> np.ndarray:
    c = TARGET_CORRELATION
    return TARGET_STD ** 2 * (c * np.ones((3, 3)) + (1 - c) * np.eye(3))


def _sqrtm(c: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(c)
    return (v * np.sqrt(np.maximum(w, 1e-12))) @ v.T


def decoder_output_conv(pipe):
    """The convolution that makes the image: the VAE's (or Kandinsky's MoVQ's) last layer."""
    auto = pipe.components.get("vae") or pipe.components.get("movq")
    return auto.decoder.conv_out


def _fit(features, weight, bias, stride, padding):
    """(weight, bias) giving the target colour and PNG size on ``features`` (the decoder's
    last input for the calibration images).

    The layer is linear, so its output for any sharpness and colour map is a per-pixel mix of
    two convolutions computed once: of the kernels and of their spatial means.
    """
    import torch
    import torch.nn.functional as F

    target = _sqrtm(_target_covariance())
    mean = np.asarray(TARGET_MEAN)
    box = weight.mean(dim=(2, 3), keepdim=True).expand_as(weight).contiguous()
    sharp = F.conv2d(features, weight, None, stride, padding).permute(0, 2, 3, 1).numpy()
    smooth = F.conv2d(features, box, None, stride, padding).permute(0, 2, 3, 1).numpy()
    b0 = bias.numpy()

    def colour_matched(sharpness):
        """(M, t) with output z = M (conv of the blended kernels + bias) + t, and its images."""
        base = (1 + sharpness) * sharp - sharpness * smooth + b0
        m_total, t_total = np.eye(3), np.zeros(3)
        for _ in range(3):  # clamping to [0, 1] makes one affine step slightly off
            z = base @ m_total.T + t_total
            y = np.clip(z / 2 + 0.5, 0, 1).reshape(-1, 3)
            a = target @ np.linalg.inv(_sqrtm(np.cov(y.T)))
            # y' = mean + a (y - m), y = z / 2 + 0.5, so z' = a z + 2 (mean - 0.5) - a (2m - 1)
            c = 2 * (mean - 0.5) - a @ (2 * y.mean(0) - 1)
            m_total, t_total = a @ m_total, a @ t_total + c
        images = np.clip((base @ m_total.T + t_total) / 2 + 0.5, 0, 1)
        return m_total, t_total, images

    goal = TARGET_PNG_BYTES_PER_PIXEL
    lo, hi = _SHARPNESS_RANGE
    for _ in range(_BISECTION_STEPS):  # PNG size grows with sharpness
        mid = (lo + hi) / 2
        if png_bytes_per_pixel(colour_matched(mid)[2]) < goal:
            lo = mid
        else:
            hi = mid
    sharpness = (lo + hi) / 2
    m_total, t_total, _ = colour_matched(sharpness)
    m = torch.from_numpy(m_total)
    blended = weight + sharpness * (weight - box)
    return (torch.einsum("ij,jkxy->ikxy", m, blended),
            m @ bias + torch.from_numpy(t_total))


def _measure_and_fit(pipe, pipeline_class, steps, guidance, width, height):
    import torch

    from generation.tiny import call_kwargs

    conv = decoder_output_conv(pipe)
    captured = []
    hook = conv.register_forward_hook(lambda m, inputs, out: captured.append(inputs[0]))
    from iab.prompts import official_prompts

    prompts = [official_prompts(s)[i].text for s, i in CALIBRATION_PROMPTS
               for _ in range(CALIBRATION_SEEDS_PER_PROMPT)]
    seeds = [1000 + k for k in range(len(prompts))]
    try:
        with torch.inference_mode():
            pipe(prompt=prompts, generator=[torch.Generator().manual_seed(s) for s in seeds],
                 num_inference_steps=steps, guidance_scale=guidance, height=height,
                 width=width, output_type="np", **call_kwargs(pipeline_class))
    finally:
        hook.remove()
    features = torch.cat(captured).double()
    weight, bias = _fit(features, conv.weight.detach().double(), conv.bias.detach().double(),
                        conv.stride, conv.padding)
    return weight.float(), bias.float()


# (pipeline class, weights seed, steps, guidance, width, height) -> fitted (weight, bias)
_FITTED: dict[tuple, tuple] = {}


def calibrate(pipe, pipeline_class: str, weights_seed: int, steps: int, guidance: float,
              width: int, height: int):
    """Re-weight the freshly built tiny ``pipe``'s decoder output layer in place (see the
    module docstring) for images made with these settings. The fit depends on the weights
    seed and the settings only, so it is kept for the process. Returns ``pipe``."""
    import torch

    key = (pipeline_class, weights_seed, steps, float(guidance), width, height)
    if key not in _FITTED:
        _FITTED[key] = _measure_and_fit(pipe, pipeline_class, steps, guidance, width, height)
    weight, bias = _FITTED[key]
    conv = decoder_output_conv(pipe)
    with torch.no_grad():
        conv.weight.copy_(weight.to(conv.weight.device, conv.weight.dtype))
        conv.bias.copy_(bias.to(conv.bias.device, conv.bias.dtype))
    return pipe
