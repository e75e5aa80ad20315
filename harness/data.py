"""From a benchmark split to model-ready arrays: decode once, keep uint8 crops, reuse them.

The first pass over a split decodes every image with all workers and keeps exactly what the
model needs, uint8 crops at the policy's size, in a memory-mapped file keyed by the dataset's
fingerprint (repo, revision, config, split), the preprocessing policy and the size. Later
epochs, protocols and models evaluated on the same split read that file instead of decoding
PNGs again. ``--streaming`` reads from the Hub without the cache, in bounded memory.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

import imageattributionbench as iab
from harness.official_inputs import VIEW_SIDES, official_views, tv_center_crop, tv_resize
from iab.faults import fault_point
from iab.procs import die_with_parent, pid_alive

POLICIES = ("native_crop", "processor", "paper_resnet", "paper_center", "patchcraft_views",
            "defl_views")
DEFAULT_POLICY = {"finetune": "native_crop", "linear_probe": "processor", "score": "processor"}
POLICY_TEXT = {
    "native_crop": "center crop at native resolution (no resizing: keeps high-frequency "
                   "traces); images smaller than the crop are zero-padded around the centre",
    "processor": "the model's own image processor (AutoImageProcessor: its resize and crop)",
    "paper_resnet": "the paper's ResNet-50 setting: shorter side resized to 256, center crop "
                    "224 (torchvision's geometry)",
    "paper_center": "the paper's loaders' Resize(256) + CenterCrop(256) (torchvision's "
                    "geometry); then resized to the model's side (bicubic) if that is not 256 "
                    "(DNA-Det's 512)",
    "patchcraft_views": "the official PatchCraft's rich/poor-texture reconstructions of the "
                        "full image, two 256 px views packed in one square",
    "defl_views": "the official DEFL's 256 crop and CLIP's 384 px bicubic crop, packed in "
                  "one square",
}
# What metrics and the samples file need per image; (generator, prompt_id, image_index) is the
# row's identity, by which the leaderboard matches samples to the benchmark's own labels.
META_COLUMNS = ("label", "generator", "semantic", "sha256", "prompt_id", "image_index")


class CorruptImage(Exception):
    """An image in a shard that does not decode."""


@dataclass(frozen=True)
class Geometry:
    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def _processor_output(processor, image) -> np.ndarray:
    """uint8 (H, W, 3): the processor's resize and crop, before rescaling and normalising."""
    out = processor(images=image, do_rescale=False, do_normalize=False, return_tensors="np")
    chw = np.asarray(out["pixel_values"][0])
    return np.ascontiguousarray(chw.transpose(1, 2, 0)).round().clip(0, 255).astype(np.uint8)


def geometry(processor, policy: str) -> Geometry:
    """Input size and normalisation from the model's own image processor.

    Under ``processor`` the size is what the processor itself outputs (it must be square);
    otherwise the processor's crop (or input) size, 224 for ``paper_resnet``.
    """
    size = getattr(processor, "crop_size", None) or getattr(processor, "size", None) or {}
    get = (lambda k: getattr(size, k, None)) if not isinstance(size, dict) else size.get
    side = get("height") or get("shortest_edge") or 224
    if policy == "paper_resnet":
        side = 224
    elif policy in VIEW_SIDES:
        side = VIEW_SIDES[policy]  # packed views: harness/official_inputs.py
    elif policy == "processor":
        from PIL import Image

        h, w = _processor_output(processor, Image.new("RGB", (301, 199))).shape[:2]
        if h != w:
            raise iab.BenchmarkError(
                f"the model's image processor gives {w}x{h} inputs for a 301x199 image; the "
                "harness needs square inputs: use --preprocess native_crop or paper_resnet")
        side = h
    mean = tuple(getattr(processor, "image_mean", None) or (0.5, 0.5, 0.5))
    std = tuple(getattr(processor, "image_std", None) or (0.5, 0.5, 0.5))
    return Geometry(int(side), mean, std)


def processor_key(processor, policy: str) -> str:
    """What of the processor decides the cached crops (its whole config under ``processor``)."""
    if policy != "processor":
        return policy
    return hashlib.sha256(processor.to_json_string().encode()).hexdigest()[:16]


def _crop_axis(arr: np.ndarray, side: int, axis: int) -> np.ndarray:
    """Center crop along one axis as transformers' center_crop does: a larger image is cut at
    (n - side) // 2; a smaller one is placed at ceil((side - n) / 2) in zeros."""
    n = arr.shape[axis]
    if n >= side:
        start = (n - side) // 2
        return arr.take(range(start, start + side), axis=axis)
    shape = list(arr.shape)
    shape[axis] = side
    out = np.zeros(shape, arr.dtype)
    start = -(-(side - n) // 2)
    index = [slice(None)] * arr.ndim
    index[axis] = slice(start, start + n)
    out[tuple(index)] = arr
    return out


def _center_crop(arr: np.ndarray, side: int) -> np.ndarray:
    return np.ascontiguousarray(_crop_axis(_crop_axis(arr, side, 0), side, 1))


def crop(data: bytes, policy: str, side: int, processor=None) -> np.ndarray:
    """uint8 (side, side, 3) of encoded image bytes under a preprocessing policy
    (``processor`` needs the model's image processor)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            if policy == "native_crop" and im.format == "JPEG":
                im.draft("RGB", im.size)  # full-size decode, but straight to RGB
            img = im.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise CorruptImage(str(e)) from e
    if policy == "processor":
        if processor is None:
            raise ValueError("the processor policy needs the model's image processor")
        out = _processor_output(processor, img)
        if out.shape[:2] != (side, side):
            raise iab.BenchmarkError(f"the image processor gave {out.shape[1]}x{out.shape[0]}, "
                                     f"not the {side}x{side} it gives other images")
        return out
    if policy in ("paper_resnet", "paper_center"):
        # torchvision's Resize(256) + CenterCrop, as the paper's loaders (its truncation and
        # rounding: 640 x 427 -> 383 x 256, not 384 x 256)
        crop_side = side if policy == "paper_resnet" else 256
        img = tv_center_crop(tv_resize(img, 256, Image.Resampling.BILINEAR), crop_side)
        if img.size != (side, side):  # DNA-Det's resize to 512 (PIL's default, bicubic)
            img = img.resize((side, side), Image.Resampling.BICUBIC)
        return np.asarray(img)
    if policy in VIEW_SIDES:
        return official_views(img, policy)
    return _center_crop(np.asarray(img), side)


def saved_processor(policy: str, processor, geo: Geometry):
    """The image processor saved with a trained model: the preprocessing it was evaluated
    with, so ``pipeline("image-classification", model=folder)`` sees what the harness saw.
    ``processor`` is the model's own; the other policies become an equivalent
    CLIPImageProcessor (no resize and a center crop for ``native_crop``; shorter side 256,
    bilinear, crop 224 for ``paper_resnet``: torchvision's crop offset rounds where this one
    floors, so one pixel apart on half the odd margins, docs/PAPER.md row 24). The official
    variants' packed views and DNA-Det's 512 have no image-processor equivalent: their model
    keeps its own processor and its config names the policy."""
    if policy == "processor" or policy in VIEW_SIDES or (
            policy == "paper_center" and geo.size != 256):
        return processor
    from PIL import Image
    from transformers import CLIPImageProcessor

    common = dict(do_center_crop=True, crop_size={"height": geo.size, "width": geo.size},
                  do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
                  image_mean=list(geo.mean), image_std=list(geo.std), do_convert_rgb=True)
    if policy == "native_crop":
        return CLIPImageProcessor(do_resize=False, **common)
    return CLIPImageProcessor(do_resize=True, size={"shortest_edge": 256},
                              resample=Image.Resampling.BILINEAR, **common)


def normalize(batch_u8, geo: Geometry):
    """uint8 (B, H, W, 3) -> float32 (B, 3, H, W), scaled and normalised as the processor does.

    The result is a contiguous NCHW tensor, never an NHWC buffer seen through a permuted
    (channels-last) view: torch 2.13's CPU kernels on AVX-512 machines segfault in the backward
    of strided 1x1 convolutions fed channels-last input (docs/DESIGN.md, "Batch layout").
    """
    import torch

    x = torch.as_tensor(np.ascontiguousarray(batch_u8)).float().div_(255)
    x = (x - torch.tensor(geo.mean)) / torch.tensor(geo.std)  # NHWC: channel is the last dim
    return x.permute(0, 3, 1, 2).contiguous()


def load_split(dataset: str, config: str, split: str, revision: str | None,
               streaming: bool = False):
    """A benchmark split with undecoded images (bytes), or a clear error."""
    from datasets import Image, load_dataset

    try:
        ds = load_dataset(dataset, config, split=split, revision=revision, streaming=streaming)
    except ValueError as e:
        if "BuilderConfig" in str(e) or "config" in str(e).lower():
            raise iab.BenchmarkError(
                f"{dataset}" + (f" at revision {revision}" if revision else "") +
                f" has no config {config!r} ({e}); build it with every subclass, or pick "
                "another --protocol") from e
        raise
    return ds.cast_column("image", Image(decode=False))


@dataclass
class DecodedSplit:
    """A split as uint8 crops (memory-mapped) plus what metrics need per image."""

    images: np.ndarray  # (N, S, S, 3) uint8, memory-mapped
    labels: np.ndarray
    semantics: list[str]
    generators: list[str]
    sha256: list[str]
    skipped: list[str]
    prompt_ids: list[str] = field(default_factory=list)
    image_indices: list[int] = field(default_factory=list)


def _decode_chunk(args) -> list[np.ndarray | str]:
    items, policy, side, processor = args
    out = []
    for data, where in items:
        try:
            out.append(crop(data, policy, side, processor))
        except CorruptImage as e:
            out.append(f"{where}: undecodable image ({e})")
    return out


def cache_dir() -> Path:
    base = os.environ.get("IAB_CACHE") or Path(os.environ.get("XDG_CACHE_HOME",
                                                               Path.home() / ".cache"))
    return Path(base) / "imageattributionbench" / "decoded"


_TMP_RE = re.compile(r"^[0-9a-f]+\.(?:u8|json)\.(\d+)\.tmp$")


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Cache files a killed decode left half-written (``<digest>.u8.<pid>.tmp``): those whose
    process is gone. A decode still running elsewhere keeps its file."""
    stale = []
    for p in folder.iterdir():
        m = _TMP_RE.match(p.name)
        if m and not pid_alive(int(m.group(1))):
            p.unlink(missing_ok=True)
            stale.append(p)
    return stale


def decode_split(ds, key: str, policy: str, side: int, workers: int, on_corrupt: str,
                 progress: bool = True, processor=None) -> DecodedSplit:
    """Decode a (non-streaming) split once into the cache, or reuse an earlier decode
    (``processor``: the model's image processor, for the ``processor`` policy)."""
    from iab.progress import progress as progress_bar

    policy_key = processor_key(processor, policy) if processor is not None else policy
    digest = hashlib.sha256(f"{key}|{policy_key}|{side}".encode()).hexdigest()[:24]
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(folder)
    data_path, meta_path = folder / f"{digest}.u8", folder / f"{digest}.json"
    if meta_path.exists() and data_path.exists():
        meta = json.loads(meta_path.read_text())
        # a cache written before rows carried their identity is decoded again
        if (meta["on_corrupt"] == on_corrupt or not meta["skipped"]) and "prompt_ids" in meta:
            images = np.memmap(data_path, np.uint8, "r", shape=(meta["n"], side, side, 3))
            return DecodedSplit(images, np.array(meta["labels"]), meta["semantics"],
                                meta["generators"], meta["sha256"], meta["skipped"],
                                meta["prompt_ids"], meta["image_indices"])
    meta_cols = ds.select_columns(list(META_COLUMNS)).to_dict()
    n = len(ds)
    tmp = data_path.with_suffix(f".u8.{os.getpid()}.tmp")
    images = np.memmap(tmp, np.uint8, "w+", shape=(max(n, 1), side, side, 3))
    keep, skipped, chunk = [], [], 64
    bar = progress_bar(total=n, desc=f"decode {key.split('|')[-1]}", unit="img",
                       disable=not progress)
    def results_in_order(pool):
        """(start row, decoded chunk) in order, with a bounded number of chunks in flight so
        that workers never wait for a whole window and a split never sits in memory whole."""
        from collections import deque

        pending = deque()
        for start in range(0, n, chunk):
            batch = ds[start:start + chunk]["image"]
            args = ([(img["bytes"], f"{key} row {start + j}") for j, img in enumerate(batch)],
                    policy, side, processor)
            pending.append((start, pool.submit(_decode_chunk, args)))
            if len(pending) > 2 * max(1, workers):
                first, fut = pending.popleft()
                yield first, fut.result()
        while pending:
            first, fut = pending.popleft()
            yield first, fut.result()

    # workers die with this process: a killed run leaves none decoding
    with ProcessPoolExecutor(max(1, workers), initializer=die_with_parent,
                             initargs=(os.getpid(),)) if workers > 1 else _Inline() as pool:
        for start, results in results_in_order(pool):
            for j, res in enumerate(results):
                if isinstance(res, str):
                    if on_corrupt == "fail":
                        raise iab.BenchmarkError(res + "; rerun with --on-corrupt skip to "
                                                 "skip such images (they are counted)")
                    skipped.append(res)
                    continue
                images[len(keep)] = res
                keep.append(start + j)
            bar.update(len(results))
            fault_point("harness.decode.chunk")  # kill tests: a half-written cache file
    bar.close()
    images.flush()
    del images
    os.replace(tmp, data_path)
    meta = {"n": len(keep), "labels": [meta_cols["label"][i] for i in keep],
            "semantics": [meta_cols["semantic"][i] for i in keep],
            "generators": [meta_cols["generator"][i] for i in keep],
            "sha256": [meta_cols["sha256"][i] for i in keep], "skipped": skipped,
            "prompt_ids": [meta_cols["prompt_id"][i] for i in keep],
            "image_indices": [int(meta_cols["image_index"][i]) for i in keep],
            "on_corrupt": on_corrupt}
    meta_tmp = meta_path.with_suffix(f".json.{os.getpid()}.tmp")
    meta_tmp.write_text(json.dumps(meta))
    os.replace(meta_tmp, meta_path)
    images = np.memmap(data_path, np.uint8, "r", shape=(max(len(keep), 1), side, side, 3))
    return DecodedSplit(images[:len(keep)], np.array(meta["labels"]), meta["semantics"],
                        meta["generators"], meta["sha256"], skipped, meta["prompt_ids"],
                        meta["image_indices"])


class _Inline:
    """submit() run at once in this process, for --num-workers 1."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @staticmethod
    def submit(fn, *args):
        from concurrent.futures import Future

        fut = Future()
        fut.set_result(fn(*args))
        return fut


@dataclass
class StreamingSplit:
    """A split read as a stream (``--streaming``): nothing downloaded ahead, bounded memory."""

    ds: object  # datasets.IterableDataset with undecoded images
    policy: str
    side: int
    on_corrupt: str
    num_examples: int | None  # from the dataset card's dataset_info, when it has one
    processor: object = None  # the model's image processor, for the processor policy


def open_stream(dataset: str, config: str, split: str, revision: str | None, policy: str,
                side: int, on_corrupt: str, processor=None) -> StreamingSplit:
    ds = load_split(dataset, config, split, revision, streaming=True)
    splits = getattr(ds.info, "splits", None) or {}
    n = splits[split].num_examples if split in splits else None
    return StreamingSplit(ds, policy, side, on_corrupt, n, processor)


def stream_batches(ds, policy: str, side: int, batch_size: int, on_corrupt: str,
                   processor=None) -> Iterator[tuple[np.ndarray, dict[str, list], list[str]]]:
    """Streaming: (uint8 batch, metadata columns, skipped) in bounded memory."""
    images, meta, skipped = [], {c: [] for c in META_COLUMNS}, []
    for i, row in enumerate(ds):
        try:
            images.append(crop(row["image"]["bytes"], policy, side, processor))
        except CorruptImage as e:
            msg = f"streamed row {i} ({row.get('sha256')}): undecodable image ({e})"
            if on_corrupt == "fail":
                raise iab.BenchmarkError(msg + "; rerun with --on-corrupt skip") from e
            skipped.append(msg)
            continue
        for c in META_COLUMNS:
            meta[c].append(row[c])
        if len(images) == batch_size:
            yield np.stack(images), meta, skipped
            images, meta, skipped = [], {c: [] for c in META_COLUMNS}, []
    if images or skipped:
        yield (np.stack(images) if images else np.zeros((0, side, side, 3), np.uint8)), meta, \
            skipped
