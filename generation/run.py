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
from contextlib import ExitStack
from pathlib import Path

import imageattributionbench as iab
from iab.faults import fault_point
from iab.scripts import DefaultsHelpFormatter, run_script
from generation import work
from generation.pipelines import (Settings, generate, hub_id_of, load_pipeline,
                                  resolve_settings, tiny_revision)
from generation.lock import FolderLock
from generation.writer import (ShardWriter, check_image, free_cpu_threads, recover_spool,
                               remove_stale_temp_files)


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
    how.add_argument("--profile", choices=iab.PROFILES,
                     help="paper (default where the paper's code has the generator: its model, "
                          "steps, guidance, size, negative prompt) or model_card (the model "
                          "card's recommended settings); the flags below override either")
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
    run.add_argument("--max-retries", type=int, default=6,
                     help="API generators: retries of a request that failed transiently "
                          "(HTTP 429/5xx, timeouts), with exponential backoff (default 6)")
    run.add_argument("--max-failures", type=int, default=5,
                     help="API generators: stop after this many failed requests in a row "
                          "(default 5); each failure is logged to rejects.jsonl")
    args = p.parse_args(argv)
    if min(args.batch_size, args.images_per_prompt, args.shard_size, args.max_failures) < 1:
        p.error("--batch-size, --images-per-prompt, --shard-size and --max-failures must be "
                "at least 1")
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
        "profile": settings.profile if settings else None,
        "settings": settings.record() if settings else None,
        "generator": g.name, "semantic": item.semantic, "prompt_id": item.prompt_id,
        "prompt": item.prompt, "image_index": item.image_index, "seed": item.seed,
        "model_id": model_id, "model_revision": revision, "pipeline": pipeline,
        "num_inference_steps": settings.steps if settings else None,
        "guidance_scale": settings.guidance if settings else None,
        "width": settings.width if settings else None,
        "height": settings.height if settings else None,
    }


def main(args: argparse.Namespace) -> int:
    with ExitStack() as cleanup:  # the folder lock is released however the job ends
        return _main(args, cleanup)


def _main(args: argparse.Namespace, cleanup: ExitStack) -> int:
    import torch
    from accelerate import PartialState
    from iab.progress import progress, quiet_library_bars

    g = runnable_generator(args.generator, args.tiny)
    quiet_library_bars()  # a log file gets plain progress lines, not redrawn bars
    if g.runs == "diffusers":  # (API jobs need neither library: they start faster)
        from diffusers.utils import logging as diffusers_logging
        from transformers.utils import logging as transformers_logging

        # CLIP text encoders cut prompts at 77 tokens and say so for every batch: the job's
        # rows keep the full prompt, and the card documents the cut, so the warning is noise.
        diffusers_logging.set_verbosity_error()
        transformers_logging.set_verbosity_error()
    semantics = work.parse_semantics(args.semantics)
    prompts, prompt_set = work.load_prompts(args.prompts, semantics)
    if args.threads:
        torch.set_num_threads(args.threads)
    state = PartialState(cpu=args.tiny or not torch.cuda.is_available())
    device = str(state.device)

    api = None
    settings = None
    api_call = None
    if g.runs == "api":
        from generation.api import api_client

        api_call = _api_profile(g, args.profile, args.resolution)
        api = api_client(g.api, g.api_model, base_url=args.api_base_url,
                         requests_per_minute=args.requests_per_minute,
                         max_retries=args.max_retries, options=api_call["options"])
        cleanup.callback(api.close)
        model_id, revision, pipeline_name = g.api_model, None, f"api:{g.api}"
        api_size = api_call["size"]
    else:
        settings = resolve_settings(g, tiny=args.tiny, device=device, profile=args.profile,
                                    steps=args.steps, guidance=args.guidance,
                                    resolution=args.resolution, dtype=args.dtype)
        pipeline_name = g.pipeline
        model_id = f"tiny-random/{g.name}" if args.tiny else hub_id_of(g, settings)
        revision = None

    batch_size = args.batch_size
    if not args.tiny and g.pipeline in SOLO_PIPELINES and batch_size > 1:
        # these pipelines make an image depend on its batch neighbours (see SOLO_PIPELINES)
        print(f"{g.pipeline}: batch size 1, so that each image depends on its own seed only")
        batch_size = 1
    out = Path(args.out) / g.name
    batches = work.plan(g.name, prompts, args.images_per_prompt, args.limit, batch_size)
    lock = FolderLock(out)
    if state.is_main_process:
        cleanup.enter_context(lock)  # one job per folder: a second one stops here, naming it
        recovered = recover_spool(out)  # answered images a killed job had spooled
        if recovered:
            print(f"{g.name}: {recovered} image(s) recovered from the spool of a killed run")
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
                       prompt_set, settings.record()).check_or_write(out)
    else:
        work.JobConfig(g.name, model_id, None, pipeline_name, None, None, None, None, None,
                       prompt_set, api_call["record"]).check_or_write(out)

    # API images cost money: each is on disk before the next request (the spool)
    writer = ShardWriter(out, state.process_index, args.shard_size, free_cpu_threads(),
                         spool=api is not None)
    todo = sum(1 for b in pending for it in b if it.key not in done)
    started = time.perf_counter()
    calls = ApiCalls(args.max_failures)
    with state.split_between_processes(pending) as mine:
        mine_todo = sum(1 for b in mine for it in b if it.key not in done)
        bar = progress(total=mine_todo, unit="img", desc=f"{g.name}",
                   disable=not state.is_local_main_process)
        try:
            for batch in mine:
                if api is not None:
                    _api_batch(api, g, batch, done, writer, model_id, pipeline_name,
                               api_size, calls, api_call)
                else:
                    images = generate(pipe, [it.prompt for it in batch],
                                      [it.seed for it in batch], settings, extra)
                    for item, image in zip(batch, images):
                        if item.key not in done:  # a partly written batch is redone whole
                            writer.add(_rows_meta(g, item, model_id, revision, pipeline_name,
                                                  settings), image)
                # keep one batch encoding in the background while the next one generates
                writer.end_batch(keep_pending=batch_size)
                bar.update(sum(1 for it in batch if it.key not in done))
                bar.set_postfix(img_s=f"{bar.n / max(time.perf_counter() - started, 1e-9):.2f}")
        finally:  # whatever stopped the loop, every image made so far reaches a shard
            writer.close()
            bar.close()
    state.wait_for_everyone()
    if state.is_main_process:
        total = len(work.done_keys(out))
        secs = time.perf_counter() - started
        failed = f", failed requests: {calls.failed}" if api is not None else ""
        print(f"{g.name}: {todo} images to make over {state.num_processes} process(es), "
              f"{secs:.1f} s ({todo / max(secs, 1e-9):.2f} images/s); rejected by this "
              f"process: {writer.rejected}{failed} (see {out / 'rejects.jsonl'}); {total} rows "
              f"in {out}")
    return 0


def _api_profile(g: iab.Generator, profile: str | None, resolution: int | None) -> dict:
    """What an API generator's profile changes in its requests: the image size, the prompt
    template, further request fields (e.g. DALL-E 3's style and quality), and the record."""
    import json

    p = iab.profile_of(g, profile)
    size = resolution or p.width or 1024
    template = p.prompt_template or "{prompt}"
    options = dict(p.extra)
    record = json.dumps({"profile": p.name, "model": p.model, "api_model": g.api_model,
                         "width": size, "height": size, "prompt_template": p.prompt_template,
                         "extra": options, "note": p.note}, sort_keys=True)
    return {"size": size, "template": template, "options": options, "record": record,
            "profile": p.name}


class ApiCalls:
    """Counts an API job's failed requests; too many in a row stop the job (a dead key, an
    outage, a spent quota), with a summary instead of a traceback."""

    def __init__(self, max_in_a_row: int):
        self.max_in_a_row, self.in_a_row, self.failed, self.kept = max_in_a_row, 0, 0, 0

    def answered(self) -> None:
        self.in_a_row = 0

    def failure(self, error: Exception) -> None:
        self.failed += 1
        self.in_a_row += 1
        if self.in_a_row >= self.max_in_a_row:
            raise iab.BenchmarkError(
                f"stopped after {self.in_a_row} failed requests in a row; last: {error}. This "
                f"run kept {self.kept} image(s), {self.failed} request(s) failed (logged in "
                "rejects.jsonl); every kept image is in the output folder: rerun the same "
                "command to resume")


def _api_batch(api, g: iab.Generator, batch: list[work.WorkItem], done: set, writer: ShardWriter,
               model_id: str, pipeline_name: str, size: int, calls: ApiCalls,
               call: dict) -> None:
    """API images are kept as the provider returned them (no decode/re-encode), each spooled to
    disk as soon as it is checked; one that does not decode, has the wrong size, or is black
    or blank is rejected and logged like a pipeline image, and so is a failed request."""
    from generation.api import ImageAPIError, PromptRefused
    from iab import shards

    for item in batch:
        if item.key in done:
            continue
        seen = {"prompt_id": item.prompt_id, "image_index": item.image_index, "seed": item.seed}
        try:
            data = api.generate(call["template"].replace("{prompt}", item.prompt),
                                seed=item.seed, width=size, height=size)
        except PromptRefused as e:  # the provider's safety filter: logged, like a black image
            writer.reject(seen, f"refused: {e}")
            calls.answered()
            continue
        except ImageAPIError as e:  # retries spent, or an answer without an image
            writer.reject(seen, f"request failed: {e}")
            calls.failure(e)
            continue
        fault_point("api.answer")  # kill tests: an answered image, not yet on disk
        try:
            row = shards.make_row(data, g.name, item.semantic, item.prompt_id,
                                  image_index=item.image_index, prompt=item.prompt,
                                  seed=item.seed, model_id=model_id, pipeline=pipeline_name,
                                  profile=call["profile"], settings=call["record"],
                                  where=f"{g.name} {item.prompt_id} #{item.image_index}")
            why = _unfit(data, size)
        except iab.BenchmarkError as e:
            why = str(e)
        calls.answered()  # the API works, whatever this image is worth
        if why:
            writer.reject(seen, why)
            continue
        writer.keep(row)
        calls.kept += 1


def _unfit(data: bytes, size: int) -> str | None:
    """Why a decodable API image must not be kept (the pipeline images' checks), or None."""
    import io

    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        if im.size != (size, size):  # before decoding: the size is in the header
            return f"wrong size {im.size[0]}x{im.size[1]}, expected {size}x{size}"
        try:
            pixels = np.asarray(im.convert("RGB"), dtype=np.float32) / 255
        except (OSError, ValueError) as e:
            return f"undecodable image ({e})"
    return check_image(pixels, size, size)


if __name__ == "__main__":
    run_script(lambda: main(parse_args()))
