"""The registry's paper profiles equal what the paper's official code uses (a table transcribed
from its SDModel.py and API scripts, commit 19bb7d8), and generation passes them on: to the
real diffusers pipeline classes (tiny weights) and to the image APIs (a local stub)."""

import inspect
import json

import diffusers
import pyarrow.parquet as pq
import pytest

import imageattributionbench as iab
from generation import run
from generation.pipelines import call_arguments, hub_id_of, resolve_settings
from generation.tiny import TINY_BUILDERS, TINY_RESOLUTION

from api_stub import ApiStub

# dataset_construction/t2i_generator/diffuser_models/SDModel.py: generate()'s neg_prompt
NEG = ("cartoon, anime, drawing, painting, unrealistic, deformed features, blurry, low "
       "resolution, oversaturated, watermark, text")
DEFAULT = "the pipeline's default"  # the official call does not pass it

# What SDModel.py's pipeline calls receive (model id, steps, guidance, size, torch dtype after
# loading, negative prompt if passed, other arguments), per generator.
OFFICIAL_DIFFUSERS = {
    "SD1_5": ("runwayml/stable-diffusion-v1-5", 30, 7.5, 512, "float16", NEG, {}),
    "SD2_1": ("stabilityai/stable-diffusion-2-1", 30, 7.5, 768, "float16", NEG, {}),
    "SD3": ("stabilityai/stable-diffusion-3-medium-diffusers", 28, 7.0, 1024, "float16", NEG, {}),
    "SDXL": ("stabilityai/stable-diffusion-xl-base-1.0", 30, 5.0, 1024, "float16", NEG, {}),
    "PLAYGROUND_2_5": ("playgroundai/playground-v2.5-1024px-aesthetic", 50, 3.0, 1024,
                       "float16", NEG, {}),
    # pipe(prompt=...) only: PixArtAlphaPipeline's defaults (1024 px: its sample size 128 x 8)
    "PIXART": ("PixArt-alpha/PixArt-XL-2-1024-MS", DEFAULT, DEFAULT, 1024, "float16", None, {}),
    # pipe(prompt=, generator=, width=768, height=768): steps and guidance are the defaults
    "KANDINSKY": ("kandinsky-community/kandinsky-3", DEFAULT, DEFAULT, 768, "float16", None, {}),
    # loaded in bfloat16, then pipe.to(torch.float16); negative prompt not passed
    "FLUX": ("black-forest-labs/FLUX.1-schnell", 4, 3.5, 512, "float16", None,
             {"max_sequence_length": 256}),
    "SD3_5": ("stabilityai/stable-diffusion-3.5-medium", 40, 4.5, 1024, "float16", NEG, {}),
    "CogView3_PLUS": ("THUDM/CogView3-Plus-3B", 50, 7.0, 1024, "bfloat16", NEG, {}),
    "Z-Image-Turbo": ("Tongyi-MAI/Z-Image-Turbo", 9, 0.0, 1024, "bfloat16", None, {}),
    "FLUX.2-klein-4B": ("black-forest-labs/FLUX.2-klein-4B", 4, 1.0, 1024, "bfloat16", None, {}),
    "CogView4-6B": ("THUDM/CogView4-6B", 50, 3.5, 1024, "bfloat16", None, {}),
    "GLM-Image": ("zai-org/GLM-Image", 50, 1.5, 1024, "bfloat16", None, {}),
    "NextStep-1.1": ("stepfun-ai/NextStep-1.1", 28, 7.5, 512, "bfloat16", NEG,
                     {"cfg_img": 1.0, "cfg_schedule": "constant", "use_norm": False,
                      "timesteps_shift": 1.0, "positive_prompt": ""}),
}
# The API scripts: model name, image size asked for, request fields, prompt wrapping.
OFFICIAL_API = {
    "4o": ("gpt-4o-all", 1024, {}, "Generate a realistic and natural style image with a "
           "resolution of 1024x1024 pixels based on this prompt: {prompt}"),
    "dalle3": ("dall-e-3", 1024, {"style": "natural", "quality": "standard"}, None),
    "gemini": ("gemini-2.0-flash-exp-image-generation", 1024, {},
               "MUST generate a realistic and natural style image **exactly** with a resolution "
               "of 1024x1024 pixels based on this prompt: {prompt}"),
    "grok3": ("grok-3-image", 1024, {}, "Please generate a 1024x1024 image with a 1:1 aspect "
              "ratio of {prompt}"),
    "ideogram": ("V_1_TURBO", None, {"aspect_ratio": "ASPECT_1_1", "magic_prompt_option": "OFF"},
                 "a realistic picture of {prompt}"),
    "kling": ("kling-image", None, {"aspect_ratio": "1:1"}, None),
    "mid-5.2": ("midjourney --v 5.2", None, {}, "{prompt} --v 5.2 --ar 1:1 --q 2"),
    "mid-6.0": ("midjourney --v 6.0", None, {}, "{prompt} --v 6.0 --ar 1:1 --q 2"),
    "gpt-image-1": ("gpt-image-1", 1024, {}, None),
    "gpt-image-1.5": ("gpt-image-1.5", 1024, {}, None),
    "Seedream-3.0": ("doubao-seedream-3.0-t2i", 1024, {}, None),
    # new_gen_image.py: MODEL_MIN_PIXELS 3,686,400 -> a 1920x1920 request
    "Seedream-5.0-lite": ("doubao-seedream-5.0-lite", 1920, {}, None),
    "Gemini-2.5-Flash-Image": ("gemini-2.5-flash-image", 1024, {}, "COMPLETIONS"),
    "Gemini-3-Pro-Image": ("gemini-3-pro-image", 1024, {}, "COMPLETIONS"),
}
COMPLETIONS = ("Generate exactly one image for the following prompt. Target image size: "
               "1024x1024. Return the image output directly if this completions endpoint "
               "supports image generation.\n\nPrompt: {prompt}")


def _default(pipeline: str, name: str):
    return inspect.signature(getattr(diffusers, pipeline).__call__).parameters[name].default


def test_diffusers_profiles_equal_the_official_code():
    assert iab.PAPER_NEGATIVE_PROMPT == NEG
    for name, (model, steps, guidance, size, dtype, negative, extra) in OFFICIAL_DIFFUSERS.items():
        g = iab.generator(name)
        p = g.paper
        if steps == DEFAULT:  # not passed: the registry holds the pipeline's own defaults
            steps = _default(g.pipeline, "num_inference_steps")
            guidance = _default(g.pipeline, "guidance_scale")
        assert (p.model, p.steps, p.guidance, p.width, p.height, p.dtype, p.negative_prompt,
                dict(p.extra)) == (model, steps, guidance, size, size, dtype, negative, extra), \
            name
        assert p.source.endswith("diffuser_models/SDModel.py")


def test_api_profiles_equal_the_official_code():
    for name, (model, size, extra, template) in OFFICIAL_API.items():
        p = iab.generator(name).paper
        template = COMPLETIONS if template == "COMPLETIONS" else template
        assert (p.model, p.width, dict(p.extra), p.prompt_template) == (model, size, extra,
                                                                        template), name
    assert iab.generator("Seedream").paper is None  # ours (4.0): not in the official code
    with pytest.raises(iab.BenchmarkError, match="not in the paper's code"):
        iab.profile_of(iab.generator("Seedream"), "paper")


def test_a_hub_run_passes_the_paper_settings():
    """What generation/run.py hands the pipeline without --tiny: the paper profile by default,
    the model card's on --profile model_card."""
    for name, (model, steps, guidance, size, dtype, negative, extra) in OFFICIAL_DIFFUSERS.items():
        g = iab.generator(name)
        if g.runs != "diffusers":
            continue
        s = resolve_settings(g, tiny=False, device="cuda")
        assert (s.profile, s.steps, s.guidance, s.width, s.dtype) == (
            "paper", g.paper.steps, g.paper.guidance, size, dtype), name
        want = dict(extra) | ({"negative_prompt": [negative] * 2} if negative else {})
        assert call_arguments(s, {}, 2) == want, name
    sd35 = iab.generator("SD3_5")
    assert hub_id_of(sd35, resolve_settings(sd35, tiny=False, device="cuda")) == \
        "stabilityai/stable-diffusion-3.5-medium"
    card = resolve_settings(sd35, tiny=False, device="cuda", profile="model_card")
    assert (hub_id_of(sd35, card), card.steps, card.guidance, card.negative_prompt) == (
        "stabilityai/stable-diffusion-3.5-large", 28, 3.5, None)
    sd15 = iab.generator("SD1_5")  # runwayml's repo moved; same weights under its new id
    assert hub_id_of(sd15, resolve_settings(sd15, tiny=False, device="cuda")) == \
        "stable-diffusion-v1-5/stable-diffusion-v1-5"


TINY_PAPER = [n for n in OFFICIAL_DIFFUSERS if iab.generator(n).runs == "diffusers"
              and iab.generator(n).pipeline in TINY_BUILDERS]


@pytest.mark.parametrize("name", TINY_PAPER)
def test_tiny_pipelines_receive_the_paper_settings(name, tmp_path, monkeypatch):
    calls = []
    real_load = run.load_pipeline

    def spying_load(*args, **kwargs):
        pipe, model_id, revision, extra = real_load(*args, **kwargs)

        class Spy:
            def __call__(self, **kw):
                calls.append(kw)
                return pipe(**kw)
        return Spy(), model_id, revision, extra

    monkeypatch.setattr(run, "load_pipeline", spying_load)
    run.main(run.parse_args(["--generator", name, "--tiny", "--semantics", "cat", "--limit", "1",
                             "--images-per-prompt", "1", "--out", str(tmp_path)]))
    p = iab.generator(name).paper
    (kw,) = calls
    assert kw["guidance_scale"] == p.guidance
    assert (kw["num_inference_steps"], kw["width"]) == (2, TINY_RESOLUTION)  # tiny: 2 steps, 64 px
    assert kw.get("negative_prompt") == ([p.negative_prompt] if p.negative_prompt else None)
    (row,) = [r for f in tmp_path.rglob("*.parquet") for r in pq.read_table(f).to_pylist()]
    rec = json.loads(row["settings"])
    assert row["profile"] == rec["profile"] == "paper"
    assert (rec["model"], rec["guidance"], rec["negative_prompt"]) == (p.model, p.guidance,
                                                                      p.negative_prompt)
    assert row["guidance_scale"] == pytest.approx(p.guidance)


def _gradient_png(size: int) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    yy, xx = np.mgrid[0:size, 0:size]
    arr = np.stack([xx * 255 // size, yy * 255 // size, np.full_like(xx, 60)], -1)
    buf = io.BytesIO()
    Image.fromarray(arr.astype(np.uint8), "RGB").save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("name,adapter_env", [
    ("dalle3", "OPENAI_API_KEY"), ("gpt-image-1.5", "OPENAI_API_KEY"),
    ("Seedream-3.0", "ARK_API_KEY"), ("Seedream-5.0-lite", "OPENAI_API_KEY"),
    ("Gemini-3-Pro-Image", "GEMINI_API_KEY"), ("gemini", "GEMINI_API_KEY")])
def test_api_generators_send_the_paper_requests(name, adapter_env, tmp_path, monkeypatch):
    monkeypatch.setenv(adapter_env, "test-key")
    g = iab.generator(name)
    with ApiStub(image=_gradient_png(g.paper.width)) as stub:  # the size asked: kept
        run.main(run.parse_args(["--generator", name, "--semantics", "cat", "--limit", "1",
                                 "--images-per-prompt", "1", "--out", str(tmp_path),
                                 "--api-base-url", stub.url]))
        (req,) = stub.requests
    p = g.paper
    text = json.dumps(req.body)
    for key, value in p.extra:
        assert req.body[key] == value
    if "models/" in req.path:  # Gemini: no size field; the prompt carries the template
        assert req.path == f"/v1beta/models/{g.api_model}:generateContent"
        prompt = req.body["contents"][0]["parts"][0]["text"]
    else:
        assert req.body["model"] == g.api_model and req.body["size"] == f"{p.width}x{p.width}"
        prompt = req.body["prompt"]
    caption = pq.read_table(next(tmp_path.rglob("*.parquet"))).to_pylist()[0]["prompt"]
    assert prompt == (p.prompt_template or "{prompt}").replace("{prompt}", caption), text
    row = pq.read_table(next(tmp_path.rglob("*.parquet"))).to_pylist()[0]
    assert row["profile"] == "paper" and json.loads(row["settings"])["model"] == p.model


def test_openai_compatible_needs_an_endpoint(monkeypatch):
    from generation.api import api_client

    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    with pytest.raises(iab.BenchmarkError, match="--api-base-url"):
        api_client("openai_compatible", "doubao-seedream-5.0-lite")


def test_default_profile_is_paper_where_it_can_run():
    from generation.pipelines import resolve_settings

    assert iab.profile_of(iab.generator("SD3_5")).name == "paper"
    for name in ("hidream", "hunyuan"):  # run by the paper from other repositories
        g = iab.generator(name)
        assert iab.profile_of(g).name == "model_card"
        assert resolve_settings(g, tiny=False, device="cuda").profile == "model_card"
        with pytest.raises(iab.BenchmarkError, match="does not say how to run it"):
            resolve_settings(g, tiny=False, device="cuda", profile="paper")
