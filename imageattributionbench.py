"""ImageAttributionBench: the benchmark definition, the single source of truth.

Everything the rest of the project agrees on lives here as plain data and pure functions:
the labels (``real`` plus one per generator, append-only ids), the semantic subclasses and
their superclasses, the fold of a prompt, the protocols (dataset configs and their splits), the
degradations, and the row schema. Heavy libraries are imported only inside the functions that
need them, so ``import imageattributionbench`` stays fast.

    >>> import imageattributionbench as iab
    >>> iab.LABELS[:3]
    ('real', '4o', 'CogView3_PLUS')
    >>> iab.fold_of("cat/0")
    'train'
    >>> ds = iab.load("semantic_disjoint", split="test")   # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import io
import json
import numbers
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:  # only for type hints: datasets is imported lazily
    import datasets

BENCHMARK_NAME = "ImageAttributionBench"
# Bumped when a published row or split can change meaning; results record it.
BENCHMARK_VERSION = "1.1.0"
HUB_REPO_ID = "ImageAttributionBench/ImageAttributionBench"
PAPER_ARXIV = "2605.12967"


class BenchmarkError(ValueError):
    """Bad input to the benchmark: the message says what is wrong and how to fix it."""


def close_matches(name: object, valid: Iterable[str], n: int = 2) -> list[str]:
    """The valid names closest to a mistyped one, case ignored (``sdxl`` finds ``SDXL``)."""
    import difflib

    by_lower: dict[str, str] = {}
    for v in valid:
        by_lower.setdefault(str(v).lower(), str(v))
    hits = difflib.get_close_matches(str(name).lower(), list(by_lower), n=n, cutoff=0.6)
    return [by_lower[h] for h in hits]


def unknown_name(kind: str, name: object, valid: Iterable[str]) -> BenchmarkError:
    """The error for a name that is not one of ``valid``: a "did you mean" when one is close,
    then every valid name (``unknown config 'standrd'; did you mean 'standard'? valid
    configs: ...``)."""
    valid = [str(v) for v in valid]
    near = close_matches(name, valid)
    hint = f"did you mean {' or '.join(map(repr, near))}? " if near else ""
    return BenchmarkError(f"unknown {kind} {name!r}; {hint}valid {kind}s: {', '.join(valid)}")


_unknown = unknown_name


# ---------------------------------------------------------------------------------------------
# Generators and labels
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WatermarkCrop:
    """Pixels cut from each edge to remove a visible watermark before an image is used."""

    left: int = 0
    top: int = 0
    right: int = 0
    bottom: int = 0


# The negative prompt the paper's code gives every Stable-Diffusion-family pipeline call
# (SDModel.py, ``neg_prompt``); the API models' own ones are in their profiles.
PAPER_NEGATIVE_PROMPT = ("cartoon, anime, drawing, painting, unrealistic, deformed features, "
                         "blurry, low resolution, oversaturated, watermark, text")
_API_NEGATIVE_PROMPT = PAPER_NEGATIVE_PROMPT + (", illustration, flat design, vector art, 2D, "
                                                "simple, minimalistic, graphic design, stylized")
PROFILES = ("paper", "model_card")


@dataclass(frozen=True)
class Profile:
    """How one generator's images are made under a named profile (``PROFILES``).

    ``paper``: what the paper's official code passes (``source`` names the file; ``None`` where
    the code leaves a value to the pipeline or the service); ``model_card``: each model card's
    recommended defaults. ``model`` is the Hub id or the API's model name, ``extra`` further
    call arguments, ``prompt_template`` how the code wrapped the caption (``{prompt}``), and
    ``note`` what a setting cannot say (e.g. how the original run was seeded).
    """

    name: str
    model: str | None
    steps: int | None = None
    guidance: float | None = None
    width: int | None = None
    height: int | None = None
    dtype: str | None = None
    negative_prompt: str | None = None
    extra: tuple[tuple[str, object], ...] = ()
    prompt_template: str | None = None
    note: str = ""
    source: str = ""

    def settings(self) -> dict:
        """Everything the profile sets, JSON-ready (what a row's ``settings`` records)."""
        out = {"profile": self.name, "model": self.model, "steps": self.steps,
               "guidance": self.guidance, "width": self.width, "height": self.height,
               "dtype": self.dtype, "negative_prompt": self.negative_prompt,
               "extra": dict(self.extra), "prompt_template": self.prompt_template}
        return {k: v for k, v in out.items() if v not in (None, {}, "")}


@dataclass(frozen=True)
class Generator:
    """One label of the benchmark other than ``real``.

    ``runs`` says how images are made: ``diffusers`` (``pipeline`` class + ``hub_id``, with the
    model card's ``steps``, ``guidance`` and square ``resolution``), ``api`` (an adapter named
    by ``api``), or ``external`` (images are imported with ``iab import``). ``paper`` is the
    profile of the paper's official code (None for generators it does not have); see
    ``profile_of``.
    """

    label_id: int
    name: str
    display_name: str
    organization: str
    family: str
    released: str  # ISO date of public release; open_set splits known/unknown by it
    runs: str
    hub_id: str | None = None
    pipeline: str | None = None
    steps: int | None = None
    guidance: float | None = None
    resolution: int | None = None
    dtype: str | None = None
    api: str | None = None
    api_model: str | None = None
    watermark_crop: WatermarkCrop | None = None
    in_paper: bool = True
    paper: Profile | None = None


RUNS = ("diffusers", "api", "external")


def _d(label_id, name, display, org, family, released, hub_id, pipeline, steps, guidance, res,
       dtype="bfloat16", in_paper=True, paper=None):
    return Generator(label_id, name, display, org, family, released, "diffusers", hub_id,
                     pipeline, steps, guidance, res, dtype, in_paper=in_paper, paper=paper)


def _ext(label_id, name, display, org, family, released, runs="external", api=None, hub_id=None,
         crop=None, in_paper=True, api_model=None, paper=None):
    return Generator(label_id, name, display, org, family, released, runs, hub_id=hub_id, api=api,
                     api_model=api_model, watermark_crop=crop, in_paper=in_paper, paper=paper)


_SD = "dataset_construction/t2i_generator/diffuser_models/SDModel.py"
_API = "dataset_construction/t2i_generator/API/"
_NEW_API = _API + "new_gen_image.py"
_GEN = "dataset_construction/t2i_generator/gen_image_one.py"
_UNSEEDED = "unseeded (a fresh random draw per call)"
_SHARED_0 = ("one torch.Generator seeded 0 when the pipeline is loaded, shared by every call "
             "of the run (so an image depends on its place in the run)")


def _pd(model, steps, guidance, res, dtype, negative=PAPER_NEGATIVE_PROMPT, extra=(), note=""):
    """A paper profile of a diffusers model (SDModel.py: what its pipeline call receives)."""
    return Profile("paper", model, steps, guidance, res, res, dtype, negative, tuple(extra),
                   note=note or _UNSEEDED, source=_SD)


def _pa(model, source, size=1024, negative=None, extra=(), template=None, note=""):
    """A paper profile of a service (an API, or an open model the code runs outside diffusers)."""
    return Profile("paper", model, None, None, size, size, None, negative, tuple(extra),
                   template, note or _UNSEEDED, source)


_GPT4O = ("Generate a realistic and natural style image with a resolution of 1024x1024 pixels "
          "based on this prompt: {prompt}")
_GEMINI2 = ("MUST generate a realistic and natural style image **exactly** with a resolution "
            "of 1024x1024 pixels based on this prompt: {prompt}")
_COMPLETIONS = ("Generate exactly one image for the following prompt. Target image size: "
                "{size}. Return the image output directly if this completions endpoint supports "
                "image generation.\n\nPrompt: {prompt}")
_NEW_NOTE = ("through an OpenAI-compatible proxy (OPENAI_BASE_URL), {how}; unseeded")


# Append-only: a published label id never changes meaning; a new generator takes the next id.
# Steps/guidance/resolution are each model card's recommended defaults (the model_card profile);
# ``paper=`` is what the paper's official code used (the paper profile, the default).
GENERATORS: tuple[Generator, ...] = (
    # ChatGPT's GPT-4o images, imported: the API's model for it is gpt-image-1 (label 28).
    _ext(1, "4o", "GPT-4o image generation (ChatGPT)", "OpenAI", "autoregressive (closed)",
         "2025-03-25", paper=_pa("gpt-4o-all", _API + "AIModel.py", template=_GPT4O,
                                 note="chat completions through a proxy; unseeded")),
    _d(2, "CogView3_PLUS", "CogView3-Plus-3B", "Zhipu AI", "DiT", "2024-10-13",
       "THUDM/CogView3-Plus-3B", "CogView3PlusPipeline", 50, 7.0, 1024,
       paper=_pd("THUDM/CogView3-Plus-3B", 50, 7.0, 1024, "bfloat16",
                 note="both images of a prompt in one call (num_images_per_prompt=2); "
                      "unseeded")),
    _d(3, "FLUX", "FLUX.1 [schnell]", "Black Forest Labs", "MMDiT (rectified flow)", "2024-08-01",
       "black-forest-labs/FLUX.1-schnell", "FluxPipeline", 4, 0.0, 1024,
       # loaded in bfloat16, then pipe.to(torch.float16); the negative prompt is not passed
       paper=_pd("black-forest-labs/FLUX.1-schnell", 4, 3.5, 512, "float16", negative=None,
                 extra=(("max_sequence_length", 256),), note=_SHARED_0)),
    _d(4, "KANDINSKY", "Kandinsky 3", "Sber AI", "UNet diffusion", "2023-11-22",
       "kandinsky-community/kandinsky-3", "Kandinsky3Pipeline", 25, 3.0, 1024, "float16",
       # the call passes prompt, generator, width and height only: steps and guidance are
       # Kandinsky3Pipeline's defaults
       paper=_pd("kandinsky-community/kandinsky-3", 25, 3.0, 768, "float16", negative=None,
                 note=_SHARED_0)),
    _d(5, "PIXART", "PixArt-alpha XL-2 1024", "PixArt", "DiT", "2023-11-24",
       "PixArt-alpha/PixArt-XL-2-1024-MS", "PixArtAlphaPipeline", 20, 4.5, 1024, "float16",
       # the call passes the prompt only: everything else is PixArtAlphaPipeline's defaults
       paper=_pd("PixArt-alpha/PixArt-XL-2-1024-MS", 20, 4.5, 1024, "float16", negative=None,
                 note="the prompt only is passed (the pipeline's defaults); unseeded")),
    _d(6, "PLAYGROUND_2_5", "Playground v2.5", "Playground", "UNet diffusion (SDXL)", "2024-02-16",
       "playgroundai/playground-v2.5-1024px-aesthetic", "StableDiffusionXLPipeline", 50, 3.0,
       1024, "float16",
       paper=_pd("playgroundai/playground-v2.5-1024px-aesthetic", 50, 3.0, 1024, "float16")),
    _d(7, "SD1_5", "Stable Diffusion 1.5", "Runway / Stability AI", "UNet diffusion",
       "2022-10-20", "stable-diffusion-v1-5/stable-diffusion-v1-5", "StableDiffusionPipeline",
       50, 7.5, 512, "float16",
       paper=_pd("runwayml/stable-diffusion-v1-5", 30, 7.5, 512, "float16")),
    _d(8, "SD2_1", "Stable Diffusion 2.1", "Stability AI", "UNet diffusion", "2022-12-07",
       "stabilityai/stable-diffusion-2-1", "StableDiffusionPipeline", 50, 7.5, 768, "float16",
       paper=_pd("stabilityai/stable-diffusion-2-1", 30, 7.5, 768, "float16")),
    _d(9, "SD3", "Stable Diffusion 3 Medium", "Stability AI", "MMDiT (rectified flow)",
       "2024-06-12", "stabilityai/stable-diffusion-3-medium-diffusers",
       "StableDiffusion3Pipeline", 28, 7.0, 1024, "float16",
       paper=_pd("stabilityai/stable-diffusion-3-medium-diffusers", 28, 7.0, 1024, "float16")),
    _d(10, "SD3_5", "Stable Diffusion 3.5 Large", "Stability AI", "MMDiT (rectified flow)",
       "2024-10-22", "stabilityai/stable-diffusion-3.5-large", "StableDiffusion3Pipeline", 28,
       3.5, 1024,
       # the paper used 3.5 Medium, loaded in bfloat16 then pipe.to(torch.float16)
       paper=_pd("stabilityai/stable-diffusion-3.5-medium", 40, 4.5, 1024, "float16")),
    _d(11, "SDXL", "Stable Diffusion XL 1.0", "Stability AI", "UNet diffusion (SDXL)",
       "2023-07-26", "stabilityai/stable-diffusion-xl-base-1.0", "StableDiffusionXLPipeline",
       50, 5.0, 1024, "float16",
       paper=_pd("stabilityai/stable-diffusion-xl-base-1.0", 30, 5.0, 1024, "float16")),
    _ext(12, "dalle3", "DALL-E 3", "OpenAI", "diffusion (closed)", "2023-10-03", runs="api",
         api="openai", api_model="dall-e-3",
         paper=_pa("dall-e-3", _API + "AIModel.py",
                   extra=(("style", "natural"), ("quality", "standard")))),
    _ext(13, "gemini", "Gemini 2.0 Flash image generation", "Google", "closed", "2025-03-12",
         runs="api", api="gemini", api_model="gemini-2.0-flash-preview-image-generation",
         paper=_pa("gemini-2.0-flash-exp-image-generation", _API + "Gemini_model.py",
                   template=_GEMINI2, note="chat completions through a proxy; unseeded")),
    # The paper crops grok3 outputs to remove the visible watermark in the bottom-right corner.
    _ext(14, "grok3", "Grok 3 (Aurora)", "xAI", "autoregressive (closed)", "2025-02-17",
         crop=WatermarkCrop(right=100, bottom=50),
         paper=_pa("grok-3-image", _API + "grok_model.py",
                   template="Please generate a 1024x1024 image with a 1:1 aspect ratio of "
                            "{prompt}")),
    _d(15, "hidream", "HiDream-I1 Full", "HiDream.ai", "sparse DiT (rectified flow)",
       "2025-04-07", "HiDream-ai/HiDream-I1-Full", "HiDreamImagePipeline", 50, 5.0, 1024,
       paper=_pa("HiDream-I1 nf4 (github.com/hykilpikonna/HiDream-I1-nf4, hdi1)", _GEN,
                 size=None, note="run through the hdi1 package (4-bit weights); its settings "
                                 "are in a submodule the official repository does not store")),
    _d(16, "hunyuan", "HunyuanDiT v1.2", "Tencent", "DiT", "2024-05-14",
       "Tencent-Hunyuan/HunyuanDiT-v1.2-Diffusers", "HunyuanDiTPipeline", 50, 5.0, 1024,
       "float16",
       paper=_pa("HunyuanDiT (github.com/Tencent-Hunyuan/HunyuanDiT, modified)", _GEN,
                 size=None, note="run from its own repository with the authors' changes, "
                                 "which the official repository does not store")),
    _ext(17, "ideogram", "Ideogram 2.0", "Ideogram", "closed", "2024-08-21",
         paper=_pa("V_1_TURBO", _API + "ideogram_model.py", size=None,
                   negative=_API_NEGATIVE_PROMPT, template="a realistic picture of {prompt}",
                   extra=(("aspect_ratio", "ASPECT_1_1"), ("magic_prompt_option", "OFF")))),
    _ext(18, "infinity", "Infinity 2B", "ByteDance", "bitwise autoregressive", "2024-12-05",
         hub_id="FoundationVision/Infinity",
         paper=_pa("Infinity (github.com/FoundationVision/Infinity, modified)", _GEN, size=None,
                   note="run from its own repository; settings not stored")),
    _ext(19, "janus-pro", "Janus-Pro 7B", "DeepSeek", "autoregressive", "2025-01-27",
         hub_id="deepseek-ai/Janus-Pro-7B",
         paper=_pa("Janus-Pro (github.com/deepseek-ai/Janus, modified)", _GEN, size=None,
                   note="run from its own repository; settings not stored")),
    _ext(20, "kling", "Kling (Kolors image)", "Kuaishou", "closed", "2024-07-06",
         paper=_pa("kling-image", _API + "kling_model.py", size=None,
                   negative=_API_NEGATIVE_PROMPT, extra=(("aspect_ratio", "1:1"),))),
    _ext(21, "mid-5.2", "Midjourney v5.2", "Midjourney", "closed", "2023-06-22",
         paper=_pa("midjourney --v 5.2", _API + "mid_gen_image.py", size=None,
                   template="{prompt} --v 5.2 --ar 1:1 --q 2")),
    _ext(22, "mid-6.0", "Midjourney v6.0", "Midjourney", "closed", "2023-12-21",
         paper=_pa("midjourney --v 6.0", _API + "mid_gen_image.py", size=None,
                   template="{prompt} --v 6.0 --ar 1:1 --q 2")),
    _d(23, "Z-Image-Turbo", "Z-Image-Turbo", "Alibaba Tongyi", "single-stream DiT", "2025-11-26",
       "Tongyi-MAI/Z-Image-Turbo", "ZImagePipeline", 9, 0.0, 1024, in_paper=False,
       paper=_pd("Tongyi-MAI/Z-Image-Turbo", 9, 0.0, 1024, "bfloat16", negative=None)),
    _d(24, "FLUX.2-klein-4B", "FLUX.2 [klein] 4B", "Black Forest Labs", "MMDiT (rectified flow)",
       "2026-01-15", "black-forest-labs/FLUX.2-klein-4B", "Flux2KleinPipeline", 4, 1.0, 1024,
       in_paper=False,
       paper=_pd("black-forest-labs/FLUX.2-klein-4B", 4, 1.0, 1024, "bfloat16", negative=None,
                 note=_SHARED_0)),
    _d(25, "CogView4-6B", "CogView4-6B", "Zhipu AI", "DiT", "2025-03-04", "THUDM/CogView4-6B",
       "CogView4Pipeline", 50, 3.5, 1024, in_paper=False,
       paper=_pd("THUDM/CogView4-6B", 50, 3.5, 1024, "bfloat16", negative=None,
                 note="both images of a prompt in one call (num_images_per_prompt=2); "
                      "unseeded")),
    _d(26, "GLM-Image", "GLM-Image", "Zhipu AI", "autoregressive + diffusion decoder",
       "2026-01-14", "zai-org/GLM-Image", "GlmImagePipeline", 50, 1.5, 1024, in_paper=False,
       paper=_pd("zai-org/GLM-Image", 50, 1.5, 1024, "bfloat16", negative=None,
                 note="a torch.Generator seeded 42 for every call (both images of a prompt in "
                      "one call)")),
    _ext(27, "NextStep-1.1", "NextStep-1.1", "StepFun", "autoregressive (continuous tokens)",
         "2025-12-01", hub_id="stepfun-ai/NextStep-1.1", in_paper=False,
         paper=Profile("paper", "stepfun-ai/NextStep-1.1", 28, 7.5, 512, 512, "bfloat16",
                       PAPER_NEGATIVE_PROMPT,
                       (("cfg_img", 1.0), ("cfg_schedule", "constant"), ("use_norm", False),
                        ("timesteps_shift", 1.0), ("positive_prompt", "")),
                       note="NextStepPipeline.generate_image with seed 3407 for every call",
                       source=_SD)),
    _ext(28, "gpt-image-1", "gpt-image-1", "OpenAI", "autoregressive (closed)", "2025-04-23",
         runs="api", api="openai", api_model="gpt-image-1", in_paper=False,
         paper=_pa("gpt-image-1", _NEW_API,
                   note=_NEW_NOTE.format(how="images endpoint, n=2 per request"))),
    # Not in the official code: this project's own Seedream 4.0 (no paper profile).
    _ext(29, "Seedream", "Seedream 4.0", "ByteDance", "closed", "2025-09-09", runs="api",
         api="seedream", api_model="seedream-4-0-250828", in_paper=False),
    _ext(30, "Gemini-2.5-Flash-Image", "Gemini 2.5 Flash Image", "Google", "closed",
         "2025-08-26", runs="api", api="gemini", api_model="gemini-2.5-flash-image",
         in_paper=False,
         paper=_pa("gemini-2.5-flash-image", _NEW_API,
                   template=_COMPLETIONS.replace("{size}", "1024x1024"),
                   note=_NEW_NOTE.format(how="completions endpoint, one image per request"))),
    # The official code's newer OpenAI-compatible API models (gen_image_one.py, 2026).
    _ext(31, "gpt-image-1.5", "GPT Image 1.5", "OpenAI", "autoregressive (closed)",
         "2025-12-16", runs="api", api="openai", api_model="gpt-image-1.5", in_paper=False,
         paper=_pa("gpt-image-1.5", _NEW_API,
                   note=_NEW_NOTE.format(how="images endpoint, n=2 per request"))),
    _ext(32, "Seedream-3.0", "Seedream 3.0 (text-to-image)", "ByteDance", "closed",
         "2025-04-15", runs="api", api="seedream", api_model="seedream-3-0-t2i-250415",
         in_paper=False,
         paper=_pa("doubao-seedream-3.0-t2i", _NEW_API,
                   note=_NEW_NOTE.format(how="images endpoint, one image per request"))),
    _ext(33, "Seedream-5.0-lite", "Seedream 5.0 lite", "ByteDance", "closed", "2026-01-28",
         runs="api", api="openai_compatible", api_model="doubao-seedream-5.0-lite",
         in_paper=False,
         # new_gen_image.py raises any size below 3,686,400 pixels to 1920x1920
         paper=_pa("doubao-seedream-5.0-lite", _NEW_API, size=1920,
                   note=_NEW_NOTE.format(how="images endpoint, one image per request"))),
    _ext(34, "Gemini-3-Pro-Image", "Gemini 3 Pro Image", "Google", "closed", "2025-11-20",
         runs="api", api="gemini", api_model="gemini-3-pro-image-preview", in_paper=False,
         paper=_pa("gemini-3-pro-image", _NEW_API,
                   template=_COMPLETIONS.replace("{size}", "1024x1024"),
                   note=_NEW_NOTE.format(how="completions endpoint, one image per request"))),
)

REAL = "real"
LABELS: tuple[str, ...] = (REAL,) + tuple(g.name for g in GENERATORS)
LABEL_IDS: dict[str, int] = {name: i for i, name in enumerate(LABELS)}
GENERATOR_BY_NAME: dict[str, Generator] = {g.name: g for g in GENERATORS}


def generator(name: str) -> Generator:
    """The registry entry of a generator; an unknown name lists the valid ones."""
    try:
        return GENERATOR_BY_NAME[name]
    except KeyError:
        raise _unknown("generator", name, GENERATOR_BY_NAME) from None


def profile_of(g: Generator, name: str | None = None) -> Profile:
    """A generator's named profile; ``None`` means the default: ``paper`` where the official
    code has the generator and says how to run it here (hidream and hunyuan it ran from other
    repositories, settings unknown), else ``model_card``. Unknown names list the valid ones."""
    if name is None:
        runnable = g.paper is not None and (g.runs != "diffusers" or g.paper.steps is not None)
        name = "paper" if runnable else "model_card"
    if name == "paper":
        if g.paper is None:
            raise BenchmarkError(f"{g.name} is not in the paper's code, so it has no 'paper' "
                                 "profile; use --profile model_card")
        return g.paper
    if name == "model_card":
        return Profile("model_card", g.hub_id if g.runs == "diffusers" else g.api_model,
                       g.steps, g.guidance, g.resolution, g.resolution, g.dtype,
                       note="per-image seeds (image_seed)")
    raise _unknown("profile", name, PROFILES)


def label_id(name: str) -> int:
    """The ClassLabel id of ``real`` or a generator name."""
    try:
        return LABEL_IDS[name]
    except KeyError:
        raise _unknown("label", name, LABELS) from None


# ---------------------------------------------------------------------------------------------
# Semantics
# ---------------------------------------------------------------------------------------------

SUPERCLASSES: dict[str, tuple[str, ...]] = {
    "AnimalFace": ("cat", "dog", "wild"),
    "COCO": ("COCO",),
    "HumanFace": ("FFHQ", "celebahq"),
    "ImageNet-1k": ("ImageNet-1k",),
    "Scene": ("bedroom", "church", "classroom"),
}
SEMANTICS: tuple[str, ...] = tuple(s for subs in SUPERCLASSES.values() for s in subs)
SUPERCLASS_OF: dict[str, str] = {s: sup for sup, subs in SUPERCLASSES.items() for s in subs}


def superclass_of(semantic: str) -> str:
    """The superclass of a semantic subclass; an unknown name lists the valid ones."""
    try:
        return SUPERCLASS_OF[semantic]
    except KeyError:
        raise _unknown("semantic", semantic, SEMANTICS) from None


def config_slug(semantic: str) -> str:
    """Config-name form of a subclass: lowercase, other characters become ``_``."""
    return re.sub(r"[^a-z0-9]", "_", semantic.lower())


# ---------------------------------------------------------------------------------------------
# Folds
# ---------------------------------------------------------------------------------------------

FOLDS: tuple[str, ...] = ("train", "validation", "test")


def fold_position(prompt_id: str) -> float:
    """sha256 of the prompt id mapped to [0, 1): the fold is a fixed function of it."""
    digest = hashlib.sha256(prompt_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def fold_of(prompt_id: str) -> str:
    """``train`` (80%), ``validation`` (10%) or ``test`` (10%) for every image of a prompt.

    All images of one prompt, from every generator, and the real image it was captioned from
    share a fold, and adding images never moves an existing one.
    """
    if not prompt_id:
        raise BenchmarkError("prompt_id is empty: every row needs '<semantic>/<index>' or "
                             "'<semantic>/src:<file name>'")
    x = fold_position(prompt_id)
    return "train" if x < 0.8 else "validation" if x < 0.9 else "test"


def prompt_id(semantic: str, index: int) -> str:
    """The id of an official prompt: ``<semantic>/<row index in its CSV>``."""
    return f"{semantic}/{index}"


def image_seed(generator_name: str, prompt_id: str, image_index: int) -> int:
    """The seed of one generated image: a fixed function of (generator, prompt, image index),
    below 2**31 so that every library and API accepts it."""
    key = f"{generator_name}\n{prompt_id}\n{image_index}".encode("utf-8")
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % 2**31


def source_prompt_id(semantic: str, file_name: str) -> str:
    """The id of an image that no official prompt was captioned from."""
    return f"{semantic}/src:{file_name}"


# ---------------------------------------------------------------------------------------------
# Degradations
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Degradation:
    """A post-processing applied to the standard test split; ``level`` is the paper's."""

    name: str
    kind: str  # "down_up" | "jpeg" | "blur"
    param: float  # scale, JPEG quality, or blur radius
    level: int
    description: str
    output_format: str


DEGRADATIONS: dict[str, Degradation] = {
    d.name: d
    for d in (
        Degradation("down_x2", "down_up", 0.5, 1,
                    "NEAREST resize to (int(w*0.5), int(h*0.5)), at least 1 px, then NEAREST back "
                    "to (w, h)", "PNG"),
        Degradation("down_x4", "down_up", 0.25, 2,
                    "NEAREST resize to (int(w*0.25), int(h*0.25)), at least 1 px, then NEAREST "
                    "back to (w, h)", "PNG"),
        Degradation("jpeg_q65", "jpeg", 65, 3, "RGB JPEG at quality 65 (PIL defaults: 4:2:0)",
                    "JPEG"),
        Degradation("jpeg_q30", "jpeg", 30, 4, "RGB JPEG at quality 30 (PIL defaults: 4:2:0)",
                    "JPEG"),
        Degradation("blur_s3", "blur", 3, 5, "PIL GaussianBlur, radius 3", "PNG"),
        Degradation("blur_s5", "blur", 5, 6, "PIL GaussianBlur, radius 5", "PNG"),
    )
}


def _rgb(image_bytes: bytes):
    from PIL import Image

    with Image.open(io.BytesIO(image_bytes)) as im:
        return im.convert("RGB")


# Degraded PNGs are encoded with zlib level 1: 4-5x faster than PIL's default 6 for about 10-20%
# more bytes. Pixels are the same at any level, and the stored bytes are what everyone uses.
PNG_COMPRESS_LEVEL = 1


def _encode(img, fmt: str, quality: int | None = None) -> bytes:
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.save(buf, "JPEG", quality=quality)
    else:
        img.save(buf, "PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def apply_degradation(img, name: str):
    """Degrade a decoded RGB PIL image; returns (PIL image, format, JPEG quality or None)."""
    from PIL import Image, ImageFilter

    d = degradation(name)
    if d.kind == "down_up":
        w, h = img.size
        small = img.resize((max(1, int(w * d.param)), max(1, int(h * d.param))),
                           Image.Resampling.NEAREST)
        return small.resize((w, h), Image.Resampling.NEAREST), "PNG", None
    if d.kind == "jpeg":
        return img, "JPEG", int(d.param)
    return img.filter(ImageFilter.GaussianBlur(d.param)), "PNG", None


def degrade(image_bytes: bytes, name: str) -> bytes:
    """The bytes of one degraded version of an image (any format PIL reads; RGB out)."""
    img, fmt, quality = apply_degradation(_rgb(image_bytes), name)
    return _encode(img, fmt, quality)


def degrade_all(image_bytes: bytes) -> dict[str, bytes]:
    """Every degradation of one image, decoding it once."""
    rgb = _rgb(image_bytes)
    out = {}
    for name in DEGRADATIONS:
        img, fmt, quality = apply_degradation(rgb, name)
        out[name] = _encode(img, fmt, quality)
    return out


def degradation(name: str) -> Degradation:
    """A degradation by name; an unknown name lists the valid ones."""
    try:
        return DEGRADATIONS[name]
    except KeyError:
        raise _unknown("degradation", name, DEGRADATIONS) from None


# ---------------------------------------------------------------------------------------------
# Protocols: dataset configs as data
# ---------------------------------------------------------------------------------------------

# open_set: generators released before this date are "known" (trained on); all are tested.
OPEN_SET_CUTOFF = "2025-01-01"


@dataclass(frozen=True)
class SplitSpec:
    """Which rows make one split: shards of these semantics and folds (None: all semantics),
    only these labels (None: all), only rows with these paper-split codes (None: any row, see
    ``PAPER_CODES``), or a degraded copy (of the standard test fold, or of the paper's)."""

    name: str
    folds: tuple[str, ...] = ()
    semantics: tuple[str, ...] | None = None
    labels: tuple[str, ...] | None = None
    degradation: str | None = None
    paper: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Protocol:
    """One dataset config: ``load_dataset(repo, name, split=...)``."""

    name: str
    description: str
    splits: tuple[SplitSpec, ...]
    default: bool = False
    train_semantic: str | None = None
    paper_task: int | None = None
    extra: dict = field(default_factory=dict)

    def split(self, name: str) -> SplitSpec:
        for s in self.splits:
            if s.name == name:
                return s
        raise BenchmarkError(f"config {self.name!r} has no split {name!r}; its splits: "
                             + ", ".join(s.name for s in self.splits))


def known_labels(cutoff: str = OPEN_SET_CUTOFF) -> tuple[str, ...]:
    """``real`` and the generators released before ``cutoff`` (open_set's known classes)."""
    return (REAL,) + tuple(g.name for g in GENERATORS if g.released < cutoff)


def _semantic_disjoint(train: str, name: str, paper_task: int | None) -> Protocol:
    others = tuple(s for s in SEMANTICS if s != train)
    return Protocol(
        name,
        f"Train on {train} only; test_seen is {train}'s test fold, test is every other subclass "
        "(all folds).",
        (
            SplitSpec("train", ("train",), (train,)),
            SplitSpec("validation", ("validation",), (train,)),
            SplitSpec("test_seen", ("test",), (train,)),
            SplitSpec("test", FOLDS, others),
        ),
        train_semantic=train,
        paper_task=paper_task,
    )


_PAPER_TASKS = {"cat": 1, "bedroom": 2, "FFHQ": 3}

# The paper's own split (its dataloader.py), reproduced exactly beside our folds. A row the
# official loader selects gets a code: its standard-split part ("train", "validation", "test",
# or "dropped": cut to make the train list even) and, for a row of a task's training subclass
# (cat, bedroom, FFHQ), "-" and its part in that task ("train", "validation" or "dropped").
# Rows the loader does not select have no code and are in no paper_exact split.
PAPER_STD_PARTS = ("train", "validation", "test", "dropped")
PAPER_TASK_PARTS = ("train", "validation", "dropped")
PAPER_TASK_SEMANTICS: tuple[str, ...] = tuple(_PAPER_TASKS)
PAPER_CODES: tuple[str, ...] = PAPER_STD_PARTS + tuple(
    f"{std}-{task}" for std in PAPER_STD_PARTS for task in PAPER_TASK_PARTS)


def paper_code(std: str, task: str | None = None) -> str:
    """The code of a row in the paper's split (see PAPER_CODES)."""
    if std not in PAPER_STD_PARTS or task not in (None, *PAPER_TASK_PARTS):
        raise BenchmarkError(f"no paper-split code for ({std!r}, {task!r}); parts: "
                             f"{', '.join(PAPER_STD_PARTS)} and {', '.join(PAPER_TASK_PARTS)}")
    return std if task is None else f"{std}-{task}"


def _codes(std: str | None = None, task: str | None = None) -> tuple[str, ...]:
    return tuple(c for c in PAPER_CODES
                 if (std is None or c.split("-")[0] == std)
                 and (task is None or c.partition("-")[2] == task))


def _paper_exact() -> list[Protocol]:
    protos = [
        Protocol("paper_exact",
                 "The paper's own split (its dataloader.py: per label a seeded shuffle, 80/10/10 "
                 "by truncation, train cut to even length) of the images its loader selects.",
                 tuple(SplitSpec(part, FOLDS, paper=_codes(std=part))
                       for part in ("train", "validation", "test"))),
        Protocol("paper_exact_degraded",
                 "The paper_exact test split after each post-processing (its degraded levels "
                 "1-6).",
                 tuple(SplitSpec(d, FOLDS, degradation=d, paper=_codes(std="test"))
                       for d in DEGRADATIONS)),
    ]
    for train, task in _PAPER_TASKS.items():
        others = tuple(s for s in SEMANTICS if s != train)
        protos.append(Protocol(
            f"paper_exact_semantic_{config_slug(train)}",
            f"The paper's semantic task {task} as its code splits it: {train}, per label a "
            "seeded 80/20 train/validation split (train cut to even length); test is every "
            "other subclass, all selected images.",
            (SplitSpec("train", FOLDS, (train,), paper=_codes(task="train")),
             SplitSpec("validation", FOLDS, (train,), paper=_codes(task="validation")),
             SplitSpec("test", FOLDS, others, paper=PAPER_CODES)),
            train_semantic=train, paper_task=task, extra={"paper_exact": True}))
    return protos


def _protocols() -> dict[str, Protocol]:
    protos = [
        Protocol(
            "standard",
            "All subclasses; train / validation / test by fold.",
            tuple(SplitSpec(f, (f,)) for f in FOLDS),
            default=True,
        ),
        _semantic_disjoint("cat", "semantic_disjoint", 1),
    ]
    protos += [
        _semantic_disjoint(s, f"semantic_disjoint_{config_slug(s)}", _PAPER_TASKS.get(s))
        for s in SEMANTICS
        if s != "cat"
    ]
    protos.append(
        Protocol(
            "degraded",
            "The standard test split after each post-processing (one split per degradation).",
            tuple(SplitSpec(d, ("test",), degradation=d) for d in DEGRADATIONS),
        )
    )
    known = known_labels()
    protos.append(
        Protocol(
            "open_set",
            f"Train / validation on real and the generators released before {OPEN_SET_CUTOFF} "
            "(known); test on every label: attribute the known, reject the unknown.",
            (
                SplitSpec("train", ("train",), labels=known),
                SplitSpec("validation", ("validation",), labels=known),
                SplitSpec("test", ("test",)),
            ),
            extra={"cutoff": OPEN_SET_CUTOFF, "known_labels": list(known)},
        )
    )
    protos += _paper_exact()
    return {p.name: p for p in protos}


PROTOCOLS: dict[str, Protocol] = _protocols()
DEFAULT_CONFIG = "standard"


def protocol(name: str) -> Protocol:
    """A protocol (dataset config) by name; an unknown name lists the valid ones."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise _unknown("config", name, PROTOCOLS) from None


# ---------------------------------------------------------------------------------------------
# Repo layout: which shard files make each split
# ---------------------------------------------------------------------------------------------

ROWS_PER_ROW_GROUP = 100  # small row groups keep the Hub viewer fast
MAX_SHARD_BYTES = 500 * 1000**2


def shard_name(label: str, k: int, n: int) -> str:
    return f"{label}-{k:05d}-of-{n:05d}.parquet"


def _paper_folder(paper: str | None) -> str:
    if paper is None:
        return ""
    if paper not in PAPER_CODES:
        raise BenchmarkError(f"unknown paper-split code {paper!r}; valid codes: "
                             + ", ".join(PAPER_CODES))
    return f"paper-{paper}/"


def data_shard_path(semantic: str, fold: str, label: str, k: int, n: int,
                    paper: str | None = None) -> str:
    """``data/<semantic>/<fold>/[paper-<code>/]<label>-<k>-of-<n>.parquet``."""
    return f"data/{semantic}/{fold}/{_paper_folder(paper)}{shard_name(label, k, n)}"


def degraded_shard_path(degradation_name: str, semantic: str, label: str, k: int, n: int,
                        fold: str = "test", paper: str | None = None) -> str:
    """``degraded/<degradation>/<semantic>/[<fold>/][paper-<code>/]<label>-<k>-of-<n>.parquet``:
    the fold folder only for paper-test rows outside the standard test fold."""
    fold_part = "" if fold == "test" else f"{fold}/"
    return (f"degraded/{degradation_name}/{semantic}/{fold_part}{_paper_folder(paper)}"
            f"{shard_name(label, k, n)}")


_SHARD_RE = re.compile(
    r"^(?:data/(?P<semantic>[^/]+)/(?P<fold>train|validation|test)|degraded/"
    r"(?P<degradation>[^/]+)/(?P<dsemantic>[^/]+)(?:/(?P<dfold>train|validation))?)"
    r"(?:/paper-(?P<paper>[a-z-]+))?/(?P<label>[^/]+)-(?P<k>\d{5})-of-(?P<n>\d{5})\.parquet$"
)


@dataclass(frozen=True)
class ShardKey:
    """What a shard path says about its rows."""

    semantic: str
    label: str
    fold: str
    degradation: str | None
    paper: str | None = None


def parse_shard_path(path: str) -> ShardKey | None:
    """The key of a data/ or degraded/ shard path in repo layout, or None for other files."""
    m = _SHARD_RE.match(path)
    if not m or (m["paper"] is not None and m["paper"] not in PAPER_CODES):
        return None
    if m["degradation"]:
        return ShardKey(m["dsemantic"], m["label"], m["dfold"] or "test", m["degradation"],
                        m["paper"])
    return ShardKey(m["semantic"], m["label"], m["fold"], None, m["paper"])


def split_contains(spec: SplitSpec, key: ShardKey) -> bool:
    """Whether the rows of a shard belong to a split."""
    if spec.degradation != key.degradation:
        return False
    if spec.semantics is not None and key.semantic not in spec.semantics:
        return False
    if spec.labels is not None and key.label not in spec.labels:
        return False
    if spec.paper is not None and key.paper not in spec.paper:
        return False
    return key.fold in spec.folds


def split_files(spec: SplitSpec, shard_paths: Iterable[str]) -> list[str]:
    """The shard files (repo-relative) of one split, sorted."""
    keys = ((p, parse_shard_path(p)) for p in shard_paths)
    return sorted(p for p, k in keys if k is not None and split_contains(spec, k))


# ---------------------------------------------------------------------------------------------
# Row schema
# ---------------------------------------------------------------------------------------------

# (column, datasets Value dtype or special), in DESIGN section 3 order.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("image", "image"),
    ("label", "label"),
    ("generator", "string"),
    ("semantic", "string"),
    ("superclass", "string"),
    ("prompt", "string"),
    ("prompt_id", "string"),
    ("image_index", "int32"),
    ("seed", "int64"),
    ("model_id", "string"),
    ("model_revision", "string"),
    ("pipeline", "string"),
    ("num_inference_steps", "int32"),
    ("guidance_scale", "float32"),
    ("width", "int32"),
    ("height", "int32"),
    ("format", "string"),
    ("sha256", "string"),
    ("source", "string"),
    ("profile", "string"),
    ("settings", "string"),
)
# Columns added later: a raw shard written before them reads them as null.
ADDED_COLUMNS: tuple[str, ...] = ("profile", "settings")
COLUMN_NAMES: tuple[str, ...] = tuple(c for c, _ in COLUMNS)
# Columns that must hold a value in every row (the rest may be null, never "" or -1).
REQUIRED_VALUES: tuple[str, ...] = (
    "image", "label", "generator", "semantic", "superclass", "prompt_id", "image_index",
    "width", "height", "format", "sha256",
)

# Value domains (beyond type and nullability), checked by row_problem for every raw and
# published row. Text columns hold no control characters (prompts may hold newlines and tabs).
MAX_ID_CHARS = 1000  # prompt_id, model_id, model_revision, pipeline, source
MAX_PROMPT_CHARS = 20_000
_INT_COLUMNS = {c for c, t in COLUMNS if t.startswith("int") or t == "label"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PROMPT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_FORMAT_NAME = re.compile(r"[A-Z][A-Z0-9]{1,9}")  # PIL's names: PNG, JPEG, WEBP ...
_ID_SEPARATORS = re.compile(r"[/\\:]")


def prompt_id_problem(prompt_id: object, semantic: str) -> str | None:
    """Why ``prompt_id`` is not a valid id for a row of ``semantic``, or None.

    Valid: ``<semantic>/<rest>`` with a non-empty rest of at most MAX_ID_CHARS characters, no
    control character (newline, NUL ...), and no empty, ``.`` or ``..`` part between ``/``,
    ``\\`` or ``:`` (ids must never read as a path out of a folder).
    """
    if not isinstance(prompt_id, str):
        return f"prompt_id {prompt_id!r} is not a string"
    shape = f"'{semantic}/<index>' or '{semantic}/src:<file name>'"
    if not prompt_id.startswith(f"{semantic}/") or prompt_id == f"{semantic}/":
        return f"prompt_id {prompt_id!r} must start with its semantic: {shape}"
    if len(prompt_id) > MAX_ID_CHARS:
        return f"prompt_id is {len(prompt_id)} characters long (at most {MAX_ID_CHARS})"
    if _CONTROL.search(prompt_id):
        return f"prompt_id {prompt_id!r} holds a control character (newline, NUL ...)"
    rest = prompt_id[len(semantic) + 1:]
    if any(part in ("", ".", "..") for part in _ID_SEPARATORS.split(rest)):
        return (f"prompt_id {prompt_id!r} has an empty, '.' or '..' part: ids must not read as "
                f"paths; use {shape}")
    return None


def row_problem(row: dict) -> str | None:
    """Why a row (a dict of the schema's columns) breaks the row schema's value domains, or
    None. Checks: required columns hold values; generator, semantic, label and superclass
    agree; ``prompt_id`` (``prompt_id_problem``); ``image_index``, ``seed`` >= 0; ``width``,
    ``height``, ``num_inference_steps`` >= 1; ``guidance_scale`` finite and >= 0; ``format``
    a PIL format name; ``sha256`` 64 lowercase hex digits; text columns free of control
    characters and at most MAX_ID_CHARS (``prompt``: MAX_PROMPT_CHARS, newlines allowed).
    A row without an ``image`` key (metadata read alone) is checked without it."""
    for c in REQUIRED_VALUES:
        if row.get(c) is None and (c != "image" or "image" in row):
            return f"column {c!r} is null; it must hold a value in every row (DESIGN section 3)"
    for c, t in COLUMNS:
        v = row.get(c)
        if v is None or c == "image":
            continue
        want, kind = ((numbers.Integral, "an integer") if c in _INT_COLUMNS else
                      (numbers.Real, "a number") if t.startswith("float") else (str, "text"))
        if not isinstance(v, want) or isinstance(v, bool):
            return f"column {c!r} holds {v!r} ({type(v).__name__}); it must be {kind}"
    gen, sem = row["generator"], row["semantic"]
    if gen not in LABEL_IDS:
        return f"unknown generator {gen!r}; valid generators: {', '.join(LABELS)}"
    if sem not in SUPERCLASS_OF:
        return f"unknown semantic {sem!r}; valid semantics: {', '.join(SEMANTICS)}"
    if row["label"] != LABEL_IDS[gen]:
        return (f"label {row['label']!r} does not match generator {gen!r} (label id "
                f"{LABEL_IDS[gen]}); label ids are fixed by imageattributionbench.LABELS")
    if row["superclass"] != SUPERCLASS_OF[sem]:
        return (f"superclass {row['superclass']!r} does not match semantic {sem!r} (expected "
                f"{SUPERCLASS_OF[sem]!r})")
    problem = prompt_id_problem(row["prompt_id"], sem)
    if problem:
        return problem
    for c, low in (("image_index", 0), ("seed", 0), ("width", 1), ("height", 1),
                   ("num_inference_steps", 1)):
        if row.get(c) is not None and row[c] < low:
            return f"column {c!r} is {row[c]}; it must be at least {low}"
    for c, t in COLUMNS:
        if t in ("int32", "int64") and row.get(c) is not None and row[c] >= 2 ** (
                int(t[3:]) - 1):
            return f"column {c!r} is {row[c]}, too large for its type {t}"
    g = row.get("guidance_scale")
    if g is not None and not 0 <= g < float("inf"):
        return f"guidance_scale {g!r} must be a finite number >= 0"
    if not _FORMAT_NAME.fullmatch(row["format"]):
        return f"format {row['format']!r} is not an image format name (PNG, JPEG, WEBP ...)"
    if not _SHA256_HEX.fullmatch(row["sha256"]):
        return f"sha256 {row['sha256']!r} is not 64 lowercase hexadecimal digits"
    for c in ("model_id", "model_revision", "pipeline", "source"):
        v = row.get(c)
        if v is not None and (len(v) > MAX_ID_CHARS or _CONTROL.search(v)):
            return (f"column {c!r} holds a control character or more than {MAX_ID_CHARS} "
                    f"characters: {v[:80]!r}")
    p = row.get("prompt")
    if p is not None and (len(p) > MAX_PROMPT_CHARS or _PROMPT_CONTROL.search(p)):
        return (f"prompt holds a control character (NUL ...) or more than {MAX_PROMPT_CHARS} "
                f"characters: {p[:80]!r}")
    if row.get("profile") is not None and row["profile"] not in PROFILES:
        return f"profile {row['profile']!r} is not one of {', '.join(PROFILES)}"
    st = row.get("settings")
    if st is not None:
        try:
            ok = isinstance(json.loads(st), dict) and len(st) <= MAX_PROMPT_CHARS
        except ValueError:
            ok = False
        if not ok or _CONTROL.search(st):
            return f"settings must be a JSON object of at most {MAX_PROMPT_CHARS} characters: " \
                   f"{st[:80]!r}"
    return None


def features() -> "datasets.Features":
    """The datasets Features of every row (raw and published shards alike)."""
    import datasets

    def feature(dtype: str):
        if dtype == "image":
            return datasets.Image()
        if dtype == "label":
            return datasets.ClassLabel(names=list(LABELS))
        return datasets.Value(dtype)

    return datasets.Features({name: feature(dtype) for name, dtype in COLUMNS})


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------------
# Leaderboard tasks (eval.yaml) and loading
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeaderboardTask:
    """One headline number of the benchmark, as registered in the dataset repo's eval.yaml."""

    id: str
    name: str
    config: str
    splits: tuple[str, ...]
    metric: str
    aggregate: str  # how the splits' metric values combine into the one number
    description: str


LEADERBOARD_TASKS: tuple[LeaderboardTask, ...] = (
    LeaderboardTask("standard_accuracy", "Standard accuracy", "standard", ("test",), "accuracy",
                    "value", "Top-1 attribution accuracy (%) on the standard test split."),
    LeaderboardTask("degraded_mean_accuracy", "Degraded accuracy (mean)", "degraded",
                    tuple(DEGRADATIONS), "accuracy", "mean",
                    "Mean top-1 accuracy (%) over the six degraded test splits."),
    LeaderboardTask("degraded_worst_accuracy", "Degraded accuracy (worst)", "degraded",
                    tuple(DEGRADATIONS), "accuracy", "min",
                    "Worst top-1 accuracy (%) over the six degraded test splits."),
    LeaderboardTask("semantic_disjoint_mean_accuracy", "Semantic-disjoint accuracy (mean)",
                    "semantic_disjoint", ("test",), "accuracy", "mean",
                    "Mean top-1 accuracy (%) on unseen subclasses over the paper's three tasks "
                    "(train on cat, bedroom, FFHQ): configs semantic_disjoint, "
                    "semantic_disjoint_bedroom, semantic_disjoint_ffhq."),
    LeaderboardTask("open_set_auroc", "Open-set AUROC", "open_set", ("test",), "auroc_unknown",
                    "value", "AUROC (%) of known-vs-unknown generator rejection on the open_set "
                    "test split."),
)
PAPER_SEMANTIC_TASKS: tuple[str, ...] = tuple(
    p.name for p in sorted(PROTOCOLS.values(), key=lambda p: p.paper_task or 99)
    if p.paper_task and not p.extra.get("paper_exact"))
PAPER_EXACT_TASKS: tuple[str, ...] = tuple(
    p.name for p in sorted(PROTOCOLS.values(), key=lambda p: p.paper_task or 99)
    if p.paper_task and p.extra.get("paper_exact"))


@dataclass(frozen=True)
class HubTask:
    """One task of the dataset repo's eval.yaml: a leaderboard on the Hub for one number, read
    from one config and one split (the spec takes one of each). The means and the worst of
    LEADERBOARD_TASKS span several splits or configs, so they live in model cards and the
    Gradio leaderboard instead."""

    id: str
    config: str
    split: str
    metric: str  # the split's metric: "accuracy" or "auroc_unknown" (fractions in results)
    name: str


HUB_TASKS: tuple[HubTask, ...] = (
    HubTask("standard_accuracy", "standard", "test", "accuracy", "Standard accuracy"),
    *(HubTask(f"degraded_{d}_accuracy", "degraded", d, "accuracy",
              f"Degraded accuracy ({d})") for d in DEGRADATIONS),
    *(HubTask(f"{p}_accuracy", p, "test", "accuracy",
              f"Unseen-subclass accuracy, trained on {PROTOCOLS[p].train_semantic}")
      for p in PAPER_SEMANTIC_TASKS),
    HubTask("open_set_auroc", "open_set", "test", "auroc_unknown",
            "Open-set AUROC (rejecting unknown generators)"),
)


def load(config: str = DEFAULT_CONFIG, split: str | None = None, repo: str = HUB_REPO_ID,
         revision: str | None = None, **kwargs):
    """``datasets.load_dataset`` for a benchmark config, checking the names first.

    ``repo`` is a Hub dataset id or a local folder built by ``iab build``; other keyword
    arguments (``streaming=True``, ``cache_dir`` ...) go to ``load_dataset`` unchanged. A
    config that a local build left out is refused with the build's configs; a Hub that cannot
    be reached fails at once, naming ``HF_HUB_OFFLINE`` (see :func:`check_hub_reachable`).
    """
    import os

    proto = protocol(config)
    if split is not None:
        proto.split(split.split("[")[0])  # validates the name; slicing syntax passes through
    local = os.path.isdir(repo)
    if local:
        _check_built_config(repo, config)
    else:
        check_hub_reachable(f"loading {repo}")
    from datasets import load_dataset

    try:
        return load_dataset(repo, config, split=split, revision=revision, **kwargs)
    except ValueError as e:
        if "BuilderConfig" not in str(e):
            raise
        # a Hub copy built without this config: datasets lists what it has
        have = re.search(r"Available: \[(.*)\]", str(e))
        raise BenchmarkError(
            f"{repo} has no config {config!r}" + (f"; its configs: {have.group(1)}" if have
                                                  else "") +
            " (a build leaves out a config with an empty split)") from None
    except ConnectionError as e:
        if not hub_offline():
            raise
        raise BenchmarkError(
            f"{repo} ({config}) is not in the local cache and HF_HUB_OFFLINE is set, so the "
            "Hub is not asked: unset HF_HUB_OFFLINE on a machine with network access (or "
            "load it there once to fill the cache), or pass repo=<a folder built by "
            "`iab build`>") from e


def _check_built_config(folder: str, config: str) -> None:
    """A local build lists its configs (and the ones it left out, with why) in manifest.json."""
    import json
    import os

    path = os.path.join(folder, "manifest.json")
    if not os.path.isfile(path):
        return  # a plain folder: datasets decides
    with open(path, encoding="utf-8") as f:
        manifest = json.load(f)
    built = list(manifest.get("configs", {}))
    if config in built:
        return
    why = manifest.get("skipped_configs", {}).get(config)
    raise BenchmarkError(
        f"{folder} was built without config {config!r}" + (f" ({why})" if why else "") +
        f"; its configs: {', '.join(built)}")


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set to a true value (huggingface_hub's own reading)."""
    import os

    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def check_hub_reachable(what: str, endpoint: str | None = None, timeout: float = 5.0) -> None:
    """Fail at once, naming ``HF_HUB_OFFLINE``, when the Hub endpoint (``endpoint``, else
    ``HF_ENDPOINT``) cannot be reached, instead of letting every Hub call retry for half a
    minute. Does nothing with ``HF_HUB_OFFLINE`` set (the caller then works from the local
    cache, as huggingface_hub does)."""
    if hub_offline():
        return
    import httpx
    from huggingface_hub import constants

    endpoint = endpoint or constants.ENDPOINT
    try:
        httpx.head(endpoint, timeout=timeout)  # any HTTP answer means the Hub is there
    except httpx.TransportError as e:
        raise BenchmarkError(
            f"{what}: cannot reach the Hub at {endpoint} ({type(e).__name__}: {e}). Check the "
            "network (or HF_ENDPOINT), set HF_HUB_OFFLINE=1 to work from the local cache only, "
            "or use a local folder built by `iab build`") from None


def info() -> dict:
    """The taxonomy and protocols as one JSON-ready object (``iab info --json``)."""
    return {
        "benchmark": BENCHMARK_NAME,
        "version": BENCHMARK_VERSION,
        "labels": [
            {"id": 0, "name": REAL, "runs": None}
        ] + [
            {"id": g.label_id, "name": g.name, "display_name": g.display_name,
             "organization": g.organization, "family": g.family, "released": g.released,
             "runs": g.runs, "hub_id": g.hub_id, "pipeline": g.pipeline, "steps": g.steps,
             "api_model": g.api_model,
             "guidance": g.guidance, "resolution": g.resolution, "dtype": g.dtype, "api": g.api,
             "watermark_crop": None if g.watermark_crop is None else vars(g.watermark_crop),
             "in_paper": g.in_paper,
             "profiles": {name: {**profile_of(g, name).settings(),
                                 "note": profile_of(g, name).note,
                                 "source": profile_of(g, name).source}
                          for name in PROFILES if name != "paper" or g.paper is not None}}
            for g in GENERATORS
        ],
        "semantics": [{"name": s, "superclass": SUPERCLASS_OF[s]} for s in SEMANTICS],
        "configs": [
            {"name": p.name, "default": p.default, "description": p.description,
             "splits": [s.name for s in p.splits], **p.extra}
            for p in PROTOCOLS.values()
        ],
        "degradations": [vars(d) for d in DEGRADATIONS.values()],
    }
