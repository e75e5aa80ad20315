"""Loading a generator's diffusers pipeline (Hub weights or tiny random ones) and calling it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

import imageattributionbench as iab

TINY_STEPS = 2
DTYPES = ("float32", "float16", "bfloat16")


@dataclass(frozen=True)
class Settings:
    """How each image is made; recorded in every row."""

    steps: int
    guidance: float
    width: int
    height: int
    dtype: str


def tiny_weights_seed(generator_name: str) -> int:
    """Each tiny generator gets its own random weights, hence its own fingerprint."""
    return int.from_bytes(hashlib.sha256(f"tiny:{generator_name}".encode()).digest()[:8],
                          "big") % 2**31


def tiny_model_id(generator_name: str) -> str:
    return f"tiny-random/{generator_name}"


def tiny_revision(generator_name: str) -> str:
    """What tiny rows record as ``model_revision``: the weights seed and the calibration
    (generation/tiny_calibration.py), so a folder of older tiny images is not resumed."""
    from generation.tiny_calibration import CALIBRATION_VERSION

    return f"seed-{tiny_weights_seed(generator_name)}+{CALIBRATION_VERSION}"


def resolve_settings(g: iab.Generator, *, tiny: bool, device: str, steps: int | None = None,
                     guidance: float | None = None, resolution: int | None = None,
                     dtype: str | None = None) -> Settings:
    """The registry's defaults, overridden by flags; tiny pipelines run 2 steps at 64 px."""
    from generation.tiny import TINY_RESOLUTION

    size = resolution or (TINY_RESOLUTION if tiny else g.resolution)
    chosen = dtype or ("float32" if tiny else g.dtype)
    if chosen not in DTYPES:
        raise iab.BenchmarkError(f"unknown dtype {chosen!r}; valid dtypes: {', '.join(DTYPES)}")
    if device == "cpu":
        chosen = "float32"  # half precision on CPU is slow or unsupported by many kernels
    return Settings(steps or (TINY_STEPS if tiny else g.steps),
                    g.guidance if guidance is None else guidance, size, size, chosen)


def _model_bytes(pipe) -> int:
    import torch

    return sum(p.numel() * p.element_size() for c in pipe.components.values()
               if isinstance(c, torch.nn.Module) for p in c.parameters())


def load_pipeline(g: iab.Generator, settings: Settings, *, tiny: bool, device, revision=None,
                  cpu_offload: bool = False, vae_tiling: bool = False):
    """(pipeline, model_id, model_revision, extra call kwargs) for a diffusers generator.

    Model CPU offload is used when asked, or when the weights do not fit in 80% of the free
    GPU memory; VAE tiling only when asked.
    """
    import torch

    if g.runs != "diffusers":
        raise iab.BenchmarkError(f"{g.name} runs as {g.runs!r}, not through diffusers")
    if tiny:
        from generation.tiny import call_kwargs, tiny_pipeline

        from generation.tiny_calibration import calibrate

        seed = tiny_weights_seed(g.name)
        # photo-like colour and PNG size, the same for every tiny generator: only traces differ
        pipe = calibrate(tiny_pipeline(g.pipeline, seed), g.pipeline, seed, settings.steps,
                         settings.guidance, settings.width, settings.height)
        return pipe.to(device), tiny_model_id(g.name), tiny_revision(g.name), \
            call_kwargs(g.pipeline)
    import diffusers

    revision = revision or _resolve_revision(g.hub_id)
    cls = getattr(diffusers, g.pipeline)
    pipe = cls.from_pretrained(g.hub_id, revision=revision,
                               torch_dtype=getattr(torch, settings.dtype))
    pipe.set_progress_bar_config(disable=True)
    on_gpu = torch.device(device).type == "cuda"
    if on_gpu and not cpu_offload:
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        cpu_offload = _model_bytes(pipe) > 0.8 * free
    if on_gpu and cpu_offload:
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe = pipe.to(device)
    if vae_tiling and hasattr(pipe, "vae"):
        pipe.vae.enable_tiling()
    return pipe, g.hub_id, revision, {}


def _resolve_revision(hub_id: str) -> str | None:
    """The commit the weights come from, so every row can be regenerated from the same one."""
    try:
        from huggingface_hub import HfApi

        return HfApi().model_info(hub_id).sha
    except Exception:  # offline or a local path: from_pretrained still decides
        return None


def generate(pipe, prompts: list[str], seeds: list[int], settings: Settings,
             extra: dict) -> np.ndarray:
    """Images (B, H, W, 3) in [0, 1]: one CPU torch.Generator per sample, so each image
    depends on its own seed only (and the same noise comes out on any device)."""
    import torch

    generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
    with torch.inference_mode():
        out = pipe(prompt=list(prompts), generator=generators,
                   num_inference_steps=settings.steps, guidance_scale=settings.guidance,
                   height=settings.height, width=settings.width, output_type="np", **extra)
    images = out.images
    if isinstance(images, torch.Tensor):
        images = images.float().cpu().numpy()
    return np.asarray(images, dtype=np.float32)
