"""Tiny diffusers pipelines: the real classes, built offline, seeded, batch-invariant."""

from __future__ import annotations

from functools import lru_cache

import diffusers
import numpy as np
import pytest
import torch

import imageattributionbench as iab
from generation.tiny import TINY_BUILDERS, TINY_RESOLUTION, call_kwargs, tiny_pipeline
from iab.prompts import official_prompts

REQUIRED = (
    "StableDiffusionPipeline", "StableDiffusionXLPipeline", "PixArtAlphaPipeline", "FluxPipeline",
    "StableDiffusion3Pipeline", "ZImagePipeline", "Flux2KleinPipeline", "CogView4Pipeline",
)
# Registry classes with no tiny pipeline, and why: GLM-Image samples prior tokens with a
# vision-language model and its processor, too much to fake offline.
WITHOUT_TINY = {"GlmImagePipeline"}

CLASSES = sorted(TINY_BUILDERS)
# Each class with every guidance scale the registry gives it: the job passes those.
CLASS_GUIDANCE = sorted({
    (g.pipeline, g.guidance) for g in iab.GENERATORS
    if g.runs == "diffusers" and g.pipeline in TINY_BUILDERS
})
GUIDANCE = dict(CLASS_GUIDANCE)  # one registry guidance per class, for the other tests

# Real captions (26 and 55 words): longer than every tiny tokenizer's limit, so all truncate.
# Truncation also gives both the same token count, which CogView4 needs for batch == solo (it
# pads prompts without an attention mask).
PROMPTS = (official_prompts("cat")[0].text, official_prompts("FFHQ")[0].text)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Same images to the bit needs the same reduction order, i.e. a fixed thread count.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@lru_cache(maxsize=None)
def cached(pipeline_class: str, seed: int = 0):
    return tiny_pipeline(pipeline_class, seed)


def generate(pipe, pipeline_class: str, prompts, seeds, guidance=None) -> np.ndarray:
    guidance = GUIDANCE[pipeline_class] if guidance is None else guidance
    out = pipe(
        prompt=list(prompts),  # a fresh list: ZImagePipeline rewrites it in place
        generator=[torch.Generator().manual_seed(s) for s in seeds],
        num_inference_steps=2, guidance_scale=guidance, height=TINY_RESOLUTION,
        width=TINY_RESOLUTION, output_type="np", **call_kwargs(pipeline_class),
    )
    return out.images


def test_required_and_registry_classes_have_tiny_pipelines():
    assert set(REQUIRED) <= set(TINY_BUILDERS)
    registry = {g.pipeline for g in iab.GENERATORS if g.runs == "diffusers"}
    assert registry - set(TINY_BUILDERS) == WITHOUT_TINY
    assert set(TINY_BUILDERS) <= registry  # no builder for a class the benchmark never runs


@pytest.mark.parametrize("pipeline_class,guidance", CLASS_GUIDANCE)
def test_builds_the_real_class_and_generates(pipeline_class, guidance):
    pipe = cached(pipeline_class)
    assert type(pipe) is getattr(diffusers, pipeline_class)
    for name, component in pipe.components.items():
        if isinstance(component, torch.nn.Module):
            assert not component.training, name
            assert all(p.dtype == torch.float32 and p.device.type == "cpu"
                       for p in component.parameters()), name
    assert getattr(pipe, "safety_checker", None) is None

    images = generate(pipe, pipeline_class, PROMPTS, [3, 4], guidance)
    assert images.shape == (2, TINY_RESOLUTION, TINY_RESOLUTION, 3)
    assert np.isfinite(images).all() and images.min() >= 0.0 and images.max() <= 1.0
    assert all(img.std() > 0.01 for img in images)  # not a constant picture
    # The same noise with another prompt gives another image: the text reaches the denoiser.
    # Random weights condition weakly (FLUX.2 [klein] moves pixels by ~0.004), but far above
    # float rounding (~1e-5).
    same_noise = generate(pipe, pipeline_class, PROMPTS, [3, 3], guidance)
    assert np.abs(same_noise[0] - same_noise[1]).max() > 1e-3


@pytest.mark.parametrize("pipeline_class", CLASSES)
def test_weights_and_images_depend_only_on_the_seeds(pipeline_class):
    torch.manual_seed(1234)
    expected_draw = torch.rand(3)
    torch.manual_seed(1234)
    first = tiny_pipeline(pipeline_class, seed=0)
    assert torch.equal(torch.rand(3), expected_draw)  # the caller's RNG is left alone

    a = generate(first, pipeline_class, PROMPTS, [5, 6])
    b = generate(tiny_pipeline(pipeline_class, seed=0), pipeline_class, PROMPTS, [5, 6])
    assert np.array_equal(a, b)
    other = generate(tiny_pipeline(pipeline_class, seed=1), pipeline_class, PROMPTS, [5, 6])
    assert np.abs(a - other).max() > 0.05


@pytest.mark.parametrize("pipeline_class", CLASSES)
def test_each_image_of_a_batch_matches_it_made_alone(pipeline_class):
    # Per-sample generators make an image independent of its batch, up to float rounding
    # (batched matmuls sum in another order), so within one 8-bit level, not byte for byte.
    pipe = cached(pipeline_class)
    batch = generate(pipe, pipeline_class, PROMPTS, [11, 12])
    for i, seed in enumerate((11, 12)):
        alone = generate(pipe, pipeline_class, PROMPTS[i : i + 1], [seed])
        assert np.abs(batch[i] - alone[0]).max() <= 1 / 255, i


def test_tiny_cogview4_gives_every_official_prompt_the_same_token_count():
    # CogView4 pads a batch's prompts to its longest without an attention mask, so an image
    # depends on its batch unless all prompts have the same token count. In tiny mode every
    # official prompt fills max_sequence_length, so the demo's images do not.
    tokenizer = cached("CogView4Pipeline").tokenizer
    limit = call_kwargs("CogView4Pipeline")["max_sequence_length"]
    texts = [p.text for s in iab.SEMANTICS for p in official_prompts(s)]
    lengths = {len(ids) for ids in tokenizer(texts, max_length=limit, truncation=True).input_ids}
    assert lengths == {limit}


def test_unknown_class_lists_the_supported_ones():
    for call in (lambda: tiny_pipeline("StableDiffusion9Pipeline", 0),
                 lambda: call_kwargs("StableDiffusion9Pipeline")):
        with pytest.raises(iab.BenchmarkError, match="StableDiffusion9Pipeline") as err:
            call()
        assert all(name in str(err.value) for name in TINY_BUILDERS)
