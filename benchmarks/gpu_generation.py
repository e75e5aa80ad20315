"""Generation speed on a GPU: denoiser-only bounds, batch 1 vs the best batch, and the whole job.

Full-size architectures with random weights, initialised directly on the GPU in bf16: the same
compute as the real checkpoints, with nothing to download.

- denoiser bound: seconds per denoising step of the SDXL UNet (1024 px, classifier-free
  guidance doubles the batch), the FLUX.1 transformer (1024 px, 4096 image + 512 text tokens,
  no CFG) and the SD3.5-Large transformer (1024 px, CFG) at several batch sizes, and the
  images/s that gives at each model's default step count;
- whole job: the generation job's own path (generation.pipelines.generate, then the background
  PNG encoder and shard writer of generation/writer.py) on a full-size SDXL pipeline (real
  UNet, VAE and both CLIP text encoders at their published sizes; a byte-level tokenizer), in
  images/s against the UNet bound at the same batch.

    python benchmarks/gpu_generation.py                 # on a GPU machine
    python benchmarks/gpu_generation.py --smoke         # tiny configs on CPU: checks the script
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from iab.scripts import DefaultsHelpFormatter

SDXL_UNET = dict(
    sample_size=128, in_channels=4, out_channels=4, layers_per_block=2,
    block_out_channels=(320, 640, 1280), attention_head_dim=(5, 10, 20),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    transformer_layers_per_block=(1, 2, 10), cross_attention_dim=2048,
    addition_embed_type="text_time", addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816, use_linear_projection=True)
FLUX = dict(patch_size=1, in_channels=64, num_layers=19, num_single_layers=38,
            attention_head_dim=128, num_attention_heads=24, joint_attention_dim=4096,
            pooled_projection_dim=768, guidance_embeds=False, axes_dims_rope=(16, 56, 56))
SD35_LARGE = dict(sample_size=128, patch_size=2, in_channels=16, num_layers=38,
                  attention_head_dim=64, num_attention_heads=38, joint_attention_dim=4096,
                  caption_projection_dim=2432, pooled_projection_dim=2048, out_channels=16,
                  pos_embed_max_size=192, qk_norm="rms_norm")
SDXL_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, sample_size=1024,
                block_out_channels=(128, 256, 512, 512), layers_per_block=2,
                down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4, scaling_factor=0.13025)
CLIP_L = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
              num_attention_heads=12, projection_dim=768, hidden_act="quick_gelu")
CLIP_G = dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
              num_attention_heads=20, projection_dim=1280, hidden_act="gelu")

# --smoke: the same code paths with toy sizes, on CPU, in seconds.
SMOKE = {
    "sdxl": dict(SDXL_UNET, sample_size=16, block_out_channels=(32, 64, 64),
                 attention_head_dim=(2, 4, 4), transformer_layers_per_block=(1, 1, 1),
                 cross_attention_dim=64, addition_time_embed_dim=8,
                 projection_class_embeddings_input_dim=6 * 8 + 32, norm_num_groups=8,
                 layers_per_block=1),
    "flux": dict(FLUX, num_layers=1, num_single_layers=1, attention_head_dim=16,
                 num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32,
                 axes_dims_rope=(4, 6, 6)),
    "sd35": dict(SD35_LARGE, sample_size=16, num_layers=2, attention_head_dim=8,
                 num_attention_heads=2, joint_attention_dim=32, caption_projection_dim=16,
                 pooled_projection_dim=32, pos_embed_max_size=16),
    "vae": dict(SDXL_VAE, block_out_channels=(8, 8, 8, 8), layers_per_block=1,
                norm_num_groups=4, sample_size=128),
    "clip_l": dict(CLIP_L, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                   num_attention_heads=2, projection_dim=32),
    "clip_g": dict(CLIP_G, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                   num_attention_heads=2, projection_dim=32),
}


def timed(fn, device, repeats: int) -> float:
    fn()  # warm-up (kernels, allocator)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / repeats


def denoiser_steps(name: str, cfg: dict, batch: int, device, dtype):
    """A callable running one denoising step of ``batch`` images, and the default steps."""
    from diffusers import FluxTransformer2DModel, SD3Transformer2DModel, UNet2DConditionModel

    with torch.device(device):
        if name == "sdxl":
            model = UNet2DConditionModel(**cfg).to(dtype).eval()
            n, s = 2 * batch, cfg["sample_size"]  # CFG: conditional + unconditional
            x = torch.randn(n, 4, s, s, dtype=dtype)
            ctx = torch.randn(n, 77, cfg["cross_attention_dim"], dtype=dtype)
            add = {"text_embeds": torch.randn(n, cfg["projection_class_embeddings_input_dim"]
                                              - 6 * cfg["addition_time_embed_dim"], dtype=dtype),
                   "time_ids": torch.randn(n, 6, dtype=dtype)}
            t = torch.full((n,), 500.0)
            return (lambda: model(x, t, encoder_hidden_states=ctx, added_cond_kwargs=add)), 50
        if name == "flux":
            model = FluxTransformer2DModel(**cfg).to(dtype).eval()
            tokens = 4096 if cfg["num_layers"] > 1 else 64
            x = torch.randn(batch, tokens, cfg["in_channels"], dtype=dtype)
            ctx = torch.randn(batch, 512 if tokens == 4096 else 16, cfg["joint_attention_dim"],
                              dtype=dtype)
            pooled = torch.randn(batch, cfg["pooled_projection_dim"], dtype=dtype)
            img_ids, txt_ids = torch.zeros(tokens, 3), torch.zeros(ctx.shape[1], 3)
            t = torch.full((batch,), 0.5, dtype=dtype)
            return (lambda: model(hidden_states=x, encoder_hidden_states=ctx,
                                  pooled_projections=pooled, timestep=t, img_ids=img_ids,
                                  txt_ids=txt_ids)), 4
        model = SD3Transformer2DModel(**cfg).to(dtype).eval()
        n, s = 2 * batch, cfg["sample_size"]
        x = torch.randn(n, cfg["in_channels"], s, s, dtype=dtype)
        ctx = torch.randn(n, 333, cfg["joint_attention_dim"], dtype=dtype)
        pooled = torch.randn(n, cfg["pooled_projection_dim"], dtype=dtype)
        t = torch.full((n,), 500.0, dtype=dtype)
        return (lambda: model(hidden_states=x, encoder_hidden_states=ctx,
                              pooled_projections=pooled, timestep=t)), 28


def full_sdxl_pipeline(smoke: bool, device, dtype):
    """A StableDiffusionXLPipeline of published sizes with random weights, built on device."""
    import diffusers
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from generation.tiny import clip_tokenizer

    unet = SMOKE["sdxl"] if smoke else SDXL_UNET
    vae = SMOKE["vae"] if smoke else SDXL_VAE
    clip_l, clip_g = (SMOKE["clip_l"], SMOKE["clip_g"]) if smoke else (CLIP_L, CLIP_G)
    tok, tok2 = clip_tokenizer(), clip_tokenizer()
    with torch.device(device):
        pipe = diffusers.StableDiffusionXLPipeline(
            vae=diffusers.AutoencoderKL(**vae),
            text_encoder=CLIPTextModel(CLIPTextConfig(vocab_size=49408, **clip_l)),
            text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig(vocab_size=49408,
                                                                      **clip_g)),
            tokenizer=tok, tokenizer_2=tok2, unet=diffusers.UNet2DConditionModel(**unet),
            scheduler=diffusers.EulerDiscreteScheduler(
                beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                timestep_spacing="leading", steps_offset=1),
            add_watermarker=False)
    pipe = pipe.to(device, dtype)
    pipe.vae.to(torch.float32)  # SDXL's VAE overflows in half precision
    pipe.set_progress_bar_config(disable=True)
    for c in pipe.components.values():
        if isinstance(c, torch.nn.Module):
            c.eval()
    return pipe


def whole_job(smoke: bool, batch: int, steps: int, n_images: int, device, dtype) -> float:
    """images/s of the job's generate -> check -> PNG -> shard path on full-size SDXL."""
    import imageattributionbench as iab
    from generation.pipelines import Settings, generate
    from generation.writer import ShardWriter, free_cpu_threads
    from iab.prompts import official_prompts

    pipe = full_sdxl_pipeline(smoke, device, dtype)
    size = 128 if smoke else 1024
    settings = Settings(steps, 5.0, size, size, str(dtype).removeprefix("torch."))
    prompts = [p.text for p in official_prompts("cat")[:n_images]]
    generate(pipe, prompts[:batch], list(range(batch)), settings, {})  # warm-up
    with tempfile.TemporaryDirectory() as tmp:
        writer = ShardWriter(Path(tmp), 0, 100, free_cpu_threads())
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for i in range(0, n_images, batch):
            images = generate(pipe, prompts[i:i + batch], list(range(i, i + batch)), settings,
                              {})
            for k, image in enumerate(images):
                writer.add({"generator": "SDXL", "semantic": "cat", "prompt_id": f"cat/{i + k}",
                            "prompt": prompts[i + k], "image_index": 0, "seed": i + k,
                            "model_id": "random/sdxl", "model_revision": None,
                            "pipeline": "StableDiffusionXLPipeline", "num_inference_steps": steps,
                            "guidance_scale": 5.0, "width": size, "height": size}, image)
            writer.end_batch(keep_pending=batch)
        writer.close()
        secs = time.perf_counter() - t
    assert iab.LABELS  # the job wrote real rows of the schema
    return n_images / secs


def main() -> None:
    ap = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter, description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="toy sizes on CPU (checks the script)")
    ap.add_argument("--batches", default="1,2,4,8")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--models", default="sdxl,flux,sd35")
    ap.add_argument("--job-images", type=int, default=32)
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()  # CLIP's 77-token cut, said for every batch
    transformers_logging.set_verbosity_error()
    device = torch.device("cpu" if args.smoke or not torch.cuda.is_available() else "cuda")
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    torch.backends.cuda.matmul.allow_tf32 = True
    print(f"device {torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}, {dtype}")
    figures: dict = {"device": str(device), "denoiser": {}, "job": {}}
    full = {"sdxl": SDXL_UNET, "flux": FLUX, "sd35": SD35_LARGE}
    print(f"\n{'model':<6} {'batch':>5} {'s/step':>8} {'s/img-step':>10} {'img/s':>7}")
    for name in args.models.split(","):
        cfg = SMOKE[name] if args.smoke else full[name]
        rows = {}
        for b in (int(x) for x in args.batches.split(",")):
            try:
                step, steps = denoiser_steps(name, cfg, b, device, dtype)
                with torch.inference_mode():
                    secs = timed(step, device, args.repeats)
            except torch.OutOfMemoryError:
                print(f"{name:<6} {b:>5} out of memory")
                break
            finally:
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            rows[b] = {"s_per_step": secs, "images_per_s": b / (secs * steps), "steps": steps}
            print(f"{name:<6} {b:>5} {secs:8.3f} {secs / b:10.3f} {b / (secs * steps):7.2f}")
        best = max(rows, key=lambda b: rows[b]["images_per_s"])
        print(f"{name:<6} best batch {best}: {rows[best]['images_per_s'] / rows[1]['images_per_s']:.2f}x"
              " batch 1")
        figures["denoiser"][name] = rows
    if "sdxl" in args.models:
        steps = 2 if args.smoke else 30
        for b in (1, max(figures["denoiser"]["sdxl"], key=lambda b: figures["denoiser"]["sdxl"][b][
                "images_per_s"])):
            with torch.inference_mode():
                rate = whole_job(args.smoke, b, steps, max(args.job_images, b), device, dtype)
            bound = b / (figures["denoiser"]["sdxl"][b]["s_per_step"] * steps)
            figures["job"][b] = {"images_per_s": rate, "unet_bound": bound}
            print(f"\nwhole job, SDXL {steps} steps, batch {b}: {rate:.2f} img/s = "
                  f"{100 * rate / bound:.0f}% of the UNet-only bound ({bound:.2f} img/s)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
