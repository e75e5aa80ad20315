"""Loading a generator's diffusers pipeline (Hub weights or tiny random ones) and calling it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

import imageattributionbench as iab

TINY_STEPS = 2
DTYPES = ("float32", "float16", "bfloat16")


# Hub ids the paper's code used that have moved since (same weights, new home).
HUB_MOVED = {"runwayml/stable-diffusion-v1-5": "stable-diffusion-v1-5/stable-diffusion-v1-5"}


@dataclass(frozen=True)
class Settings:
    """How each image is made; recorded in every row (columns, and ``settings`` as JSON)."""

    steps: int
    guidance: float
    width: int
    height: int
    dtype: str
    profile: str = "model_card"
    negative_prompt: str | None = None
    extra: tuple[tuple[str, object], ...] = ()
    model: str | None = None  # the profile's model (Hub id as the profile names it)

    def record(self) -> str:
        """The row's ``settings`` column: everything passed to the pipeline, as JSON."""
        return json.dumps({"profile": self.profile, "model": self.model, "steps": self.steps,
                           "guidance": self.guidance, "width": self.width,
                           "height": self.height, "dtype": self.dtype,
                           "negative_prompt": self.negative_prompt, "extra": dict(self.extra)},
                          sort_keys=True)

    @classmethod
    def from_row(cls, row: dict, dtype: str) -> "Settings":
        """The settings a row was made with (its columns, and its ``settings`` JSON if any)."""
        rec = json.loads(row["settings"]) if row.get("settings") else {}
        return cls(row["num_inference_steps"], row["guidance_scale"], row["width"],
                   row["height"], dtype, rec.get("profile", "model_card"),
                   rec.get("negative_prompt"), tuple(rec.get("extra", {}).items()),
                   rec.get("model"))


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


def resolve_settings(g: iab.Generator, *, tiny: bool, device: str, profile: str | None = None,
                     steps: int | None = None, guidance: float | None = None,
                     resolution: int | None = None, dtype: str | None = None) -> Settings:
    """The generator's profile (``paper`` by default where it has one, see
    ``iab.profile_of``), overridden by flags. Tiny pipelines run 2 steps at 64 px in float32;
    guidance, negative prompt and call arguments still come from the profile."""
    from generation.tiny import TINY_RESOLUTION

    p = iab.profile_of(g, profile)
    size = resolution or (TINY_RESOLUTION if tiny else p.width)
    chosen = dtype or ("float32" if tiny else p.dtype or g.dtype)
    if chosen not in DTYPES:
        raise iab.BenchmarkError(f"unknown dtype {chosen!r}; valid dtypes: {', '.join(DTYPES)}")
    if device == "cpu":
        chosen = "float32"  # half precision on CPU is slow or unsupported by many kernels
    if size is None or (p.steps is None and not tiny and steps is None):
        raise iab.BenchmarkError(f"{g.name}'s {p.name!r} profile does not say how to run it "
                                 f"({p.note or 'no steps or size'}); use --profile model_card")
    return Settings(steps or (TINY_STEPS if tiny else p.steps),
                    p.guidance if guidance is None else guidance, size, size, chosen, p.name,
                    p.negative_prompt, p.extra, p.model)


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

    hub_id = hub_id_of(g, settings)
    revision = revision or _resolve_revision(hub_id)
    cls = getattr(diffusers, g.pipeline)
    pipe = cls.from_pretrained(hub_id, revision=revision,
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
    return pipe, hub_id, revision, {}


def hub_id_of(g: iab.Generator, settings: Settings) -> str:
    """The Hub id to load: the profile's model (where it moved: its new home)."""
    model = settings.model or g.hub_id
    return HUB_MOVED.get(model, model)


def _resolve_revision(hub_id: str) -> str | None:
    """The commit the weights come from, so every row can be regenerated from the same one."""
    try:
        from huggingface_hub import HfApi

        return HfApi().model_info(hub_id).sha
    except Exception:  # offline or a local path: from_pretrained still decides
        return None


def call_arguments(settings: Settings, extra: dict, batch: int) -> dict:
    """Pipeline arguments beside prompt, seeds, steps, guidance and size: the profile's
    negative prompt and call arguments; ``extra`` (what a tiny pipeline needs) wins."""
    kwargs = dict(settings.extra)
    if settings.negative_prompt is not None:
        kwargs["negative_prompt"] = [settings.negative_prompt] * batch
    kwargs.update(extra)
    return kwargs


def generate(pipe, prompts: list[str], seeds: list[int], settings: Settings,
             extra: dict) -> np.ndarray:
    """Images (B, H, W, 3) in [0, 1]: one CPU torch.Generator per sample, so each image
    depends on its own seed only (and the same noise comes out on any device)."""
    import torch

    generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
    with torch.inference_mode():
        out = pipe(prompt=list(prompts), generator=generators,
                   num_inference_steps=settings.steps, guidance_scale=settings.guidance,
                   height=settings.height, width=settings.width, output_type="np",
                   **call_arguments(settings, extra, len(prompts)))
    images = out.images
    if isinstance(images, torch.Tensor):
        images = images.float().cpu().numpy()
    return np.asarray(images, dtype=np.float32)
