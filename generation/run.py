"""Generate a generator's images for the official prompts into resumable raw shards.

    accelerate launch generation/run.py --generator SDXL --semantics all --out raw/
    python generation/run.py --generator FLUX --semantics cat,dog --limit 10 --out raw/ --tiny

One process per GPU under ``accelerate launch``; plain ``python`` runs one process. Rows go to
``<out>/<generator>/<semantic>/<rank>-<k>.parquet``; rerunning the same command skips what is
done and completes what is not. ``--tiny`` runs the same pipeline classes with tiny random
weights on CPU (tests and the README demo). API generators run through their adapters
(keys from the environment).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import imageattributionbench as iab
from iab.scripts import DefaultsHelpFormatter, run_script
from generation import work
from generation.pipelines import (Settings, generate, load_pipeline, resolve_settings,
                                  tiny_revision)
from generation.writer import ShardWriter, free_cpu_threads, remove_stale_temp_files


# Pipelines whose images depend on the rest of their batch: CogView4 pads prompts to the
# longest with no attention mask; GLM-Image seeds its first stage from generator[0] only.
# (Tiny CogView4 prompts all fill its short token limit, so tiny batches are safe.)
SOLO_PIPELINES = frozenset({"CogView4Pipeline", "GlmImagePipeline"})


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(formatter_class=DefaultsHelpFormatter, 
        description="Generate images for the benchmark's prompts into resumable raw shards "
                    "(one subfolder per subclass; rerun the same command to resume).")
    what = p.add_argument_group("what to generate")
    what.add_argument("--generator", required=True,
                      help="a label from `iab info` that runs through diffusers or an API")
    what.add_argument("--semantics", default="all", help="'all' or e.g. cat,dog (default all)")
    what.add_argument("--images-per-prompt", type=int, default=2, help="default 2")
    what.add_argument("--limit", type=int, help="first N prompts of each subclass only")
    what.add_argument("--prompts", default="official",
                      help="'official' (default) or a .csv/.parquet with prompt, semantic")
    what.add_argument("--out", required=True, help="raw shard folder (RAW_DIR)")
    how = p.add_argument_group("how (defaults: the generator's registry entry)")
    how.add_argument("--steps", type=int, help="num_inference_steps")
    how.add_argument("--guidance", type=float, help="guidance_scale")
    how.add_argument("--resolution", type=int, help="square image side in pixels")
    how.add_argument("--dtype", choices=("float32", "float16", "bfloat16"))
    how.add_argument("--revision", help="model revision (default: the Hub's current commit)")
    how.add_argument("--tiny", action="store_true",
                     help="tiny random weights of the same pipeline class, offline, on CPU")
    run = p.add_argument_group("running")
    run.add_argument("--batch-size", type=int, default=4, help="images per pipeline call")
    run.add_argument("--shard-size", type=int, default=100, help="images per shard file")
    run.add_argument("--cpu-offload", action="store_true",
                     help="model CPU offload (also used when the weights do not fit the GPU)")
    run.add_argument("--vae-tiling", action="store_true", help="tiled VAE decode")
    run.add_argument("--threads", type=int, help="torch CPU threads (fix it for bitwise "
                                                  "reproducible CPU runs)")
    run.add_argument("--requests-per-minute", type=float, help="API generators: rate limit")
    run.add_argument("--api-base-url", help="API generators: another endpoint (a proxy, a stub)")
    args = p.parse_args(argv)
    if args.batch_size < 1 or args.images_per_prompt < 1 or args.shard_size < 1:
        p.error("--batch-size, --images-per-prompt and --shard-size must be at least 1")
    return args


def runnable_generator(name: str, tiny: bool = False) -> iab.Generator:
    """The registry entry of a generator this job can run (with ``tiny``: one with a tiny
    pipeline); otherwise an error listing the ones it can, and ``iab import`` for the rest."""
    from generation.tiny import TINY_BUILDERS

    def can(g: iab.Generator) -> bool:
        return g.pipeline in TINY_BUILDERS if tiny else g.runs != "external"

    runnable = [g.name for g in iab.GENERATORS if can(g)]
    others = ", ".join(g.name for g in iab.GENERATORS if not can(g))
    rest = f"; the others ({others}) " + ("have no tiny pipeline" if tiny else
                                          "are imported from their images with `iab import`")
    g = iab.GENERATOR_BY_NAME.get(name)
    if g is None:
        err = iab.unknown_name("generator", name, runnable)
        raise iab.BenchmarkError(str(err).replace("valid generators", "runnable generators" +
                                                  (" with --tiny" if tiny else "")) + rest)
    if not can(g):
        why = (f"has no tiny pipeline (it runs as {g.runs})" if tiny else
               "cannot be run from here: its images are imported with `iab import`")
        raise iab.BenchmarkError(f"{g.name} {why}; runnable generators"
                                 + (" with --tiny" if tiny else "") + f": {', '.join(runnable)}")
    return g


def _rows_meta(g: iab.Generator, item: work.WorkItem, model_id: str, revision: str | None,
               pipeline: str, settings: Settings | None) -> dict:
    return {
        "generator": g.name, "semantic": item.semantic, "prompt_id": item.prompt_id,
        "prompt": item.prompt, "image_index": item.image_index, "seed": item.seed,
        "model_id": model_id, "model_revision": revision, "pipeline": pipeline,
        "num_inference_steps": settings.steps if settings else None,
        "guidance_scale": settings.guidance if settings else None,
        "width": settings.width if settings else None,
        "height": settings.height if settings else None,
    }


def main(args: argparse.Namespace) -> int:
    import torch
    from accelerate import PartialState
    from diffusers.utils import logging as diffusers_logging
    from iab.progress import progress, quiet_library_bars
    from transformers.utils import logging as transformers_logging

    # CLIP text encoders cut prompts at 77 tokens and say so for every batch: the job's
    # rows keep the full prompt, and the card documents the cut, so the warning is noise.
    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
    quiet_library_bars()  # a log file gets plain progress lines, not redrawn bars

    g = runnable_generator(args.generator, args.tiny)
    semantics = work.parse_semantics(args.semantics)
    prompts, prompt_set = work.load_prompts(args.prompts, semantics)
    if args.threads:
        torch.set_num_threads(args.threads)
    state = PartialState(cpu=args.tiny or not torch.cuda.is_available())
    device = str(state.device)

    api = None
    settings = None
    if g.runs == "api":
        from generation.api import api_client

        api = api_client(g.api, g.api_model, base_url=args.api_base_url,
                         requests_per_minute=args.requests_per_minute)
        model_id, revision, pipeline_name = g.api_model, None, f"api:{g.api}"
        api_size = 1024
    else:
        settings = resolve_settings(g, tiny=args.tiny, device=device, steps=args.steps,
                                    guidance=args.guidance, resolution=args.resolution,
                                    dtype=args.dtype)
        pipeline_name = g.pipeline
        model_id = f"tiny-random/{g.name}" if args.tiny else g.hub_id
        revision = None

    batch_size = args.batch_size
    if not args.tiny and g.pipeline in SOLO_PIPELINES and batch_size > 1:
        # these pipelines make an image depend on its batch neighbours (see SOLO_PIPELINES)
        print(f"{g.pipeline}: batch size 1, so that each image depends on its own seed only")
        batch_size = 1
    out = Path(args.out) / g.name
    batches = work.plan(g.name, prompts, args.images_per_prompt, args.limit, batch_size)
    if state.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(out)
    state.wait_for_everyone()
    done = work.done_keys(out)
    pending = [b for b in batches if any(it.key not in done for it in b)]

    pipe = extra = None
    if settings is not None and pending:
        pipe, model_id, revision, extra = load_pipeline(
            g, settings, tiny=args.tiny, device=device, revision=args.revision,
            cpu_offload=args.cpu_offload, vae_tiling=args.vae_tiling)
    if settings is not None:
        # the revision asked for (tiny: the weights seed), known before anything is loaded
        asked = tiny_revision(g.name) if args.tiny else args.revision
        work.JobConfig(g.name, model_id, asked, pipeline_name, settings.steps,
                       settings.guidance, settings.width, settings.height, settings.dtype,
                       prompt_set).check_or_write(out)
    else:
        work.JobConfig(g.name, model_id, None, pipeline_name, None, None, None, None, None,
                       prompt_set).check_or_write(out)

    writer = ShardWriter(out, state.process_index, args.shard_size, free_cpu_threads())
    todo = sum(1 for b in pending for it in b if it.key not in done)
    started = time.perf_counter()
    with state.split_between_processes(pending) as mine:
        mine_todo = sum(1 for b in mine for it in b if it.key not in done)
        bar = progress(total=mine_todo, unit="img", desc=f"{g.name}",
                   disable=not state.is_local_main_process)
        for batch in mine:
            if api is not None:
                _api_batch(api, g, batch, done, writer, model_id, pipeline_name,
                           args.resolution or api_size)
            else:
                images = generate(pipe, [it.prompt for it in batch], [it.seed for it in batch],
                                  settings, extra)
                for item, image in zip(batch, images):
                    if item.key not in done:  # a partly written batch is redone whole
                        writer.add(_rows_meta(g, item, model_id, revision, pipeline_name,
                                              settings), image)
            # keep one batch encoding in the background while the next one generates
            writer.end_batch(keep_pending=batch_size)
            bar.update(sum(1 for it in batch if it.key not in done))
            bar.set_postfix(img_s=f"{bar.n / max(time.perf_counter() - started, 1e-9):.2f}")
        writer.close()
        bar.close()
    state.wait_for_everyone()
    if state.is_main_process:
        total = len(work.done_keys(out))
        secs = time.perf_counter() - started
        print(f"{g.name}: {todo} images to make over {state.num_processes} process(es), "
              f"{secs:.1f} s ({todo / max(secs, 1e-9):.2f} images/s); rejected by this "
              f"process: {writer.rejected} (see {out / 'rejects.jsonl'}); {total} rows in {out}")
    return 0


def _api_batch(api, g: iab.Generator, batch: list[work.WorkItem], done: set, writer: ShardWriter,
               model_id: str, pipeline_name: str, size: int) -> None:
    """API images are kept as the provider returned them (no decode/re-encode); one that does
    not decode is rejected and logged like a black pipeline image."""
    from generation.api import PromptRefused
    from iab import shards

    for item in batch:
        if item.key in done:
            continue
        seen = {"prompt_id": item.prompt_id, "image_index": item.image_index, "seed": item.seed}
        try:
            data = api.generate(item.prompt, seed=item.seed, width=size, height=size)
        except PromptRefused as e:  # the provider's safety filter: logged, like a black image
            writer.reject(seen, f"refused: {e}")
            continue
        try:
            row = shards.make_row(data, g.name, item.semantic, item.prompt_id,
                                  image_index=item.image_index, prompt=item.prompt,
                                  seed=item.seed, model_id=model_id, pipeline=pipeline_name,
                                  where=f"{g.name} {item.prompt_id} #{item.image_index}")
        except iab.BenchmarkError as e:
            writer.reject(seen, str(e))
            continue
        writer.buffers[item.semantic].append(row)


if __name__ == "__main__":
    run_script(lambda: main(parse_args()))
