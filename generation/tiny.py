"""Tiny randomly initialised diffusers pipelines, built offline, for the generation ``--tiny`` mode.

Tests and the README demo must exercise the real pipeline classes (``diffusers.FluxPipeline``
and so on: their prompt encoding, schedulers, batching and VAE decoding) on a CPU with no network.
So each pipeline here is the real diffusers class assembled from the real component classes
(UNet or the family's transformer, VAE, transformers text encoders, tokenizer classes) with tiny
configs, random weights and in-memory vocabularies. The generation job calls it exactly as it
calls a pipeline loaded from a Hub id; only the weights, and so the images, differ.

    >>> import torch
    >>> pipe = tiny_pipeline("FluxPipeline", seed=0)
    >>> prompts, seeds = ["A cat on a sofa.", "A red church under a grey sky."], [0, 1]
    >>> images = pipe(prompt=list(prompts), num_inference_steps=2, guidance_scale=0.0,
    ...               generator=[torch.Generator().manual_seed(s) for s in seeds],
    ...               height=TINY_RESOLUTION, width=TINY_RESOLUTION, output_type="np",
    ...               **call_kwargs("FluxPipeline")).images
    >>> images.shape
    (2, 64, 64, 3)

Weights depend only on the seed: the same seed gives the same pipeline (and, with a fixed torch
thread count, the same images), a different seed a different one.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import imageattributionbench as iab
from generation import tiny_components as parts
from generation.tiny_components import TINY_RESOLUTION

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline


def _stable_diffusion(seed: int):
    import diffusers

    with parts.seeded(seed):
        tokenizer = parts.clip_tokenizer()
        return parts.ready(diffusers.StableDiffusionPipeline(
            vae=parts.vae(4), text_encoder=parts.clip_text(tokenizer), tokenizer=tokenizer,
            unet=parts.unet(cross_attention_dim=32),
            scheduler=diffusers.PNDMScheduler(
                beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                skip_prk_steps=True, steps_offset=1),
            safety_checker=None, feature_extractor=None, requires_safety_checker=False,
        ))


def _stable_diffusion_xl(seed: int):
    import diffusers

    with parts.seeded(seed):
        tokenizer, tokenizer_2 = parts.clip_tokenizer(), parts.clip_tokenizer()
        return parts.ready(diffusers.StableDiffusionXLPipeline(
            vae=parts.vae(4), text_encoder=parts.clip_text(tokenizer),
            text_encoder_2=parts.clip_text(tokenizer_2, with_projection=True),
            tokenizer=tokenizer, tokenizer_2=tokenizer_2,
            # SDXL cross-attends to both encoders' hidden states, concatenated (32 + 32).
            unet=parts.unet(cross_attention_dim=64, sdxl=True),
            scheduler=diffusers.EulerDiscreteScheduler(
                beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                timestep_spacing="leading", steps_offset=1),
            add_watermarker=False,
        ))


def _pixart_alpha(seed: int):
    import diffusers

    with parts.seeded(seed):
        tokenizer = parts.t5_tokenizer()
        return parts.ready(diffusers.PixArtAlphaPipeline(
            tokenizer=tokenizer, text_encoder=parts.t5_encoder(tokenizer), vae=parts.vae(4),
            transformer=diffusers.PixArtTransformer2DModel(
                sample_size=parts.LATENT, num_layers=2, patch_size=2, attention_head_dim=8,
                num_attention_heads=2, caption_channels=32, in_channels=4,
                cross_attention_dim=16, out_channels=8),
            scheduler=diffusers.DPMSolverMultistepScheduler(),
        ))


def _flux(seed: int):
    import diffusers

    with parts.seeded(seed):
        tokenizer, tokenizer_2 = parts.clip_tokenizer(), parts.t5_tokenizer()
        return parts.ready(diffusers.FluxPipeline(
            scheduler=diffusers.FlowMatchEulerDiscreteScheduler(),
            vae=parts.vae(16, flow=True), text_encoder=parts.clip_text(tokenizer), tokenizer=tokenizer,
            text_encoder_2=parts.t5_encoder(tokenizer_2), tokenizer_2=tokenizer_2,
            transformer=diffusers.FluxTransformer2DModel(
                patch_size=1, in_channels=64, num_layers=1, num_single_layers=1,
                attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                pooled_projection_dim=32, axes_dims_rope=(4, 4, 8)),
        ))


def _stable_diffusion_3(seed: int):
    import diffusers

    with parts.seeded(seed):
        tok, tok_2, tok_3 = parts.clip_tokenizer(), parts.clip_tokenizer(), parts.t5_tokenizer()
        return parts.ready(diffusers.StableDiffusion3Pipeline(
            # Joint attention sees both CLIPs' hidden states side by side (32 + 32), padded to T5's.
            transformer=diffusers.SD3Transformer2DModel(
                sample_size=parts.LATENT, patch_size=2, in_channels=16, num_layers=1,
                attention_head_dim=8, num_attention_heads=4, joint_attention_dim=64,
                caption_projection_dim=32, pooled_projection_dim=64, out_channels=16,
                pos_embed_max_size=parts.LATENT),
            scheduler=diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0),
            vae=parts.vae(16, flow=True),
            text_encoder=parts.clip_text(tok, with_projection=True), tokenizer=tok,
            text_encoder_2=parts.clip_text(tok_2, with_projection=True), tokenizer_2=tok_2,
            text_encoder_3=parts.t5_encoder(tok_3, d_model=64), tokenizer_3=tok_3,
        ))


def _z_image(seed: int):
    import diffusers

    with parts.seeded(seed):
        tokenizer = parts.qwen_tokenizer()
        return parts.ready(diffusers.ZImagePipeline(
            scheduler=diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0),
            vae=parts.vae(16, flow=True), text_encoder=parts.qwen3(tokenizer, causal_lm=False),
            tokenizer=tokenizer,
            transformer=diffusers.ZImageTransformer2DModel(
                in_channels=16, dim=32, n_layers=1, n_refiner_layers=1, n_heads=2,
                n_kv_heads=2, cap_feat_dim=32, axes_dims=[4, 6, 6], axes_lens=[256, 32, 32]),
        ))


def _flux2_klein(seed: int):
    import diffusers

    with parts.seeded(seed):
        tokenizer = parts.qwen_tokenizer()
        return parts.ready(diffusers.Flux2KleinPipeline(
            scheduler=diffusers.FlowMatchEulerDiscreteScheduler(),
            vae=diffusers.AutoencoderKLFlux2(
                block_out_channels=(8, 8, 8, 8), layers_per_block=1, norm_num_groups=4,
                latent_channels=32, sample_size=TINY_RESOLUTION),
            text_encoder=parts.qwen3(tokenizer, causal_lm=True, num_layers=3), tokenizer=tokenizer,
            # Joint attention sees the text encoder's three chosen layers stacked (3 x 32).
            transformer=diffusers.Flux2Transformer2DModel(
                patch_size=1, in_channels=128, num_layers=1, num_single_layers=1,
                attention_head_dim=16, num_attention_heads=2, joint_attention_dim=96,
                timestep_guidance_channels=32, axes_dims_rope=(4, 4, 4, 4),
                guidance_embeds=False),
            is_distilled=True,
        ))


def _cogview4(seed: int):
    import diffusers
    from transformers import GlmConfig, GlmModel

    with parts.seeded(seed):
        tokenizer = parts.glm_tokenizer()
        return parts.ready(diffusers.CogView4Pipeline(
            tokenizer=tokenizer,
            text_encoder=GlmModel(GlmConfig(
                vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37,
                num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                pad_token_id=tokenizer.pad_token_id, max_position_embeddings=512)),
            vae=parts.vae(16, flow=True),
            transformer=diffusers.CogView4Transformer2DModel(
                patch_size=2, in_channels=16, out_channels=16, num_layers=1,
                attention_head_dim=8, num_attention_heads=2, text_embed_dim=32,
                time_embed_dim=8, condition_dim=4, pos_embed_max_size=parts.LATENT,
                sample_size=parts.LATENT, rope_axes_dim=(4, 4)),
            scheduler=diffusers.FlowMatchEulerDiscreteScheduler(
                base_shift=0.25, max_shift=0.75, base_image_seq_len=256,
                use_dynamic_shifting=True, time_shift_type="linear"),
        ))


def _kandinsky3(seed: int):
    import diffusers

    with parts.seeded(seed):
        tokenizer = parts.t5_tokenizer()
        return parts.ready(diffusers.Kandinsky3Pipeline(
            tokenizer=tokenizer, text_encoder=parts.t5_encoder(tokenizer),
            unet=diffusers.Kandinsky3UNet(
                # Its up blocks break with one layer per block: two is the least that works.
                in_channels=4, time_embedding_dim=4, groups=2, attention_head_dim=4,
                layers_per_block=2, block_out_channels=(16, 32), cross_attention_dim=4,
                encoder_hid_dim=32),
            scheduler=diffusers.DDPMScheduler(
                beta_schedule="squaredcos_cap_v2", clip_sample=True, steps_offset=1,
                thresholding=False, variance_type="fixed_small"),
            # The pipeline always works at 1/8 scale, so MoVQ needs four blocks; its spatial
            # norm has 32 groups, hence 32 channels.
            movq=diffusers.VQModel(
                down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(32,) * 4,
                layers_per_block=1, latent_channels=4, num_vq_embeddings=16, vq_embed_dim=4,
                norm_num_groups=4, norm_type="spatial", sample_size=TINY_RESOLUTION),
        ))


def _cogview3_plus(seed: int):
    import diffusers

    with parts.seeded(seed):
        tokenizer = parts.t5_tokenizer()
        return parts.ready(diffusers.CogView3PlusPipeline(
            tokenizer=tokenizer, text_encoder=parts.t5_encoder(tokenizer), vae=parts.vae(16),
            transformer=diffusers.CogView3PlusTransformer2DModel(
                patch_size=2, in_channels=16, num_layers=1, attention_head_dim=8,
                num_attention_heads=2, out_channels=16, text_embed_dim=32, time_embed_dim=8,
                condition_dim=4, pos_embed_max_size=parts.LATENT, sample_size=parts.LATENT),
            scheduler=diffusers.CogVideoXDDIMScheduler(
                beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                prediction_type="v_prediction", rescale_betas_zero_snr=True,
                set_alpha_to_one=True, snr_shift_scale=4.0, timestep_spacing="trailing"),
        ))


def _hunyuan_dit(seed: int):
    import diffusers
    from transformers import BertConfig, BertModel

    with parts.seeded(seed):
        tokenizer, tokenizer_2 = parts.bert_tokenizer(), parts.t5_tokenizer()
        return parts.ready(diffusers.HunyuanDiTPipeline(
            vae=parts.vae(4),
            text_encoder=BertModel(BertConfig(
                vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                num_attention_heads=4, intermediate_size=37,
                max_position_embeddings=parts.CLIP_MAX_LENGTH, pad_token_id=tokenizer.pad_token_id),
                add_pooling_layer=False),
            tokenizer=tokenizer,
            # The pipeline always encodes 77 BERT and 256 mT5 tokens: text_len(_t5) must match.
            transformer=diffusers.HunyuanDiT2DModel(
                num_attention_heads=2, attention_head_dim=8, in_channels=4, patch_size=2,
                sample_size=parts.LATENT, hidden_size=16, num_layers=2, cross_attention_dim=32,
                cross_attention_dim_t5=32, pooled_projection_dim=16, text_len=parts.CLIP_MAX_LENGTH,
                text_len_t5=256, use_style_cond_and_image_meta_size=False),
            scheduler=diffusers.DDPMScheduler(
                beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.018,
                clip_sample=False, steps_offset=1, prediction_type="v_prediction"),
            safety_checker=None, feature_extractor=None, requires_safety_checker=False,
            text_encoder_2=parts.t5_encoder(tokenizer_2), tokenizer_2=tokenizer_2,
        ))


def _hidream(seed: int):
    import diffusers
    from transformers import LlamaConfig, LlamaForCausalLM

    with parts.seeded(seed):
        tok, tok_2, tok_3, tok_4 = (parts.clip_tokenizer(), parts.clip_tokenizer(), parts.t5_tokenizer(),
                                    parts.llama_tokenizer())
        pipe = diffusers.HiDreamImagePipeline(
            scheduler=diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0),
            vae=parts.vae(16, flow=True),
            text_encoder=parts.clip_text(tok, with_projection=True), tokenizer=tok,
            text_encoder_2=parts.clip_text(tok_2, with_projection=True), tokenizer_2=tok_2,
            text_encoder_3=parts.t5_encoder(tok_3), tokenizer_3=tok_3,
            text_encoder_4=LlamaForCausalLM(LlamaConfig(
                vocab_size=len(tok_4), hidden_size=32, intermediate_size=37,
                num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                pad_token_id=tok_4.pad_token_id, bos_token_id=tok_4.bos_token_id,
                eos_token_id=tok_4.eos_token_id, max_position_embeddings=512,
                # The pipeline asks for attention maps, which only eager attention returns.
                attn_implementation="eager")),
            tokenizer_4=tok_4,
            # One Llama layer per transformer block; pooled text is both CLIPs' (32 + 32).
            transformer=diffusers.HiDreamImageTransformer2DModel(
                patch_size=2, in_channels=16, out_channels=16, num_layers=1,
                num_single_layers=1, attention_head_dim=8, num_attention_heads=2,
                caption_channels=[32, 32], text_emb_dim=64, num_routed_experts=2,
                num_activated_experts=1, axes_dims_rope=(4, 2, 2),
                max_resolution=(parts.LATENT, parts.LATENT), llama_layers=[0, 1]),
        )
    # HiDream rescales every request to the area of default_sample_size latents (128: 1024 px).
    pipe.default_sample_size = parts.LATENT
    return parts.ready(pipe)


# Registry classes without one: GlmImagePipeline (its prior tokens come from sampling a GLM
# vision-language model through GlmImageProcessor's chat template; too much to fake offline).
TINY_BUILDERS: dict[str, Callable[[int], "DiffusionPipeline"]] = {
    "StableDiffusionPipeline": _stable_diffusion,
    "StableDiffusionXLPipeline": _stable_diffusion_xl,
    "PixArtAlphaPipeline": _pixart_alpha,
    "FluxPipeline": _flux,
    "StableDiffusion3Pipeline": _stable_diffusion_3,
    "ZImagePipeline": _z_image,
    "Flux2KleinPipeline": _flux2_klein,
    "CogView4Pipeline": _cogview4,
    "Kandinsky3Pipeline": _kandinsky3,
    "CogView3PlusPipeline": _cogview3_plus,
    "HunyuanDiTPipeline": _hunyuan_dit,
    "HiDreamImagePipeline": _hidream,
}

# Extra call arguments per class, so every class is called the same way (see call_kwargs).
_CALL_KWARGS: dict[str, dict] = {
    "StableDiffusionPipeline": {},
    "StableDiffusionXLPipeline": {},
    # Binning would snap 64x64 to the nearest aspect-ratio bucket of the 1024 model. Caption
    # cleaning needs bs4 and ftfy, which are not dependencies: without them the pipeline warns
    # on every call and skips it anyway.
    "PixArtAlphaPipeline": {"use_resolution_binning": False, "clean_caption": False,
                            "max_sequence_length": parts.MAX_SEQUENCE_LENGTH},
    "FluxPipeline": {"max_sequence_length": parts.MAX_SEQUENCE_LENGTH},
    "StableDiffusion3Pipeline": {"max_sequence_length": parts.MAX_SEQUENCE_LENGTH},
    "ZImagePipeline": {"max_sequence_length": parts.MAX_SEQUENCE_LENGTH},
    # The tiny Qwen3 has three layers, not the real 36: feed the transformer all three.
    "Flux2KleinPipeline": {"max_sequence_length": parts.MAX_SEQUENCE_LENGTH,
                           "text_encoder_out_layers": (1, 2, 3)},
    "CogView4Pipeline": {"max_sequence_length": parts.MAX_SEQUENCE_LENGTH},
    "Kandinsky3Pipeline": {},
    "CogView3PlusPipeline": {"max_sequence_length": parts.MAX_SEQUENCE_LENGTH},
    "HunyuanDiTPipeline": {"use_resolution_binning": False},
    "HiDreamImagePipeline": {"max_sequence_length": parts.MAX_SEQUENCE_LENGTH},
}


def _check(pipeline_class: str) -> None:
    if pipeline_class not in TINY_BUILDERS:
        raise iab.BenchmarkError(
            f"no tiny pipeline for {pipeline_class!r}; tiny pipelines exist for: "
            f"{', '.join(sorted(TINY_BUILDERS))}"
        )


def tiny_pipeline(pipeline_class: str, seed: int) -> "DiffusionPipeline":
    """The diffusers class ``pipeline_class`` with tiny random weights drawn from ``seed``.

    float32 on CPU, every component in eval mode, no safety checker, no progress bar.
    Unknown classes raise BenchmarkError listing the supported ones.
    """
    _check(pipeline_class)
    return TINY_BUILDERS[pipeline_class](seed)


def call_kwargs(pipeline_class: str) -> dict:
    """Keyword arguments a tiny ``pipeline_class`` needs on every call, beside the common ones.

    Call every class the same way, by keyword, with a fresh list of prompts::

        pipe(prompt=list(prompts), generator=[torch.Generator().manual_seed(s) for s in seeds],
             num_inference_steps=n, guidance_scale=g, height=TINY_RESOLUTION,
             width=TINY_RESOLUTION, output_type="np", **call_kwargs(pipeline_class))

    ``prompt=`` by keyword because Flux2KleinPipeline's first parameter is ``image``; a copy of
    the list because ZImagePipeline rewrites the prompts it is given in place (chat template).
    One generator per sample makes each image independent of its batch.
    """
    _check(pipeline_class)
    return dict(_CALL_KWARGS[pipeline_class])


def clip_tokenizer():
    """A real CLIPTokenizer over an in-memory byte vocabulary (ids below CLIP's 49,408), for
    full-size random-weight pipelines that need a tokenizer but no trained vocabulary."""
    return parts.clip_tokenizer()
