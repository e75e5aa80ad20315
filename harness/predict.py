"""Running a model over a split: batches from decoded crops (or a stream), gathered across
processes with ``gather_for_metrics`` so that N processes give exactly 1 process's results."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from harness.data import (CorruptImage, DecodedSplit, Geometry, StreamingSplit, crop,
                          normalize, stream_batches)


class EpochShuffle(Sampler):
    """The same seeded order on every process, different each epoch: resuming at epoch k
    sees exactly the batches an uninterrupted run would."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


def loader(split: DecodedSplit, geo: Geometry, batch_size: int, *, shuffle_seed=None,
           workers: int = 0) -> DataLoader:
    """Batches of (pixels, labels, row index) from a decoded split."""
    def collate(indices):
        idx = np.asarray(indices)
        order = np.argsort(idx)  # memmap reads in file order
        images = np.empty((len(idx),) + split.images.shape[1:], np.uint8)
        images[order] = split.images[idx[order]]
        return (normalize(images, geo), torch.as_tensor(split.labels[idx]),
                torch.as_tensor(idx))

    sampler = EpochShuffle(len(split.labels), shuffle_seed) if shuffle_seed is not None \
        else None
    return DataLoader(range(len(split.labels)), batch_size=batch_size, sampler=sampler,
                      collate_fn=collate, num_workers=workers)


class StreamCrops(torch.utils.data.IterableDataset):
    """Training crops from a stream, reshuffled each epoch through a seeded buffer."""

    def __init__(self, split: StreamingSplit, seed: int, buffer_size: int = 1000):
        self.split, self.seed, self.buffer_size, self.epoch = split, seed, buffer_size, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        from datasets import IterableDataset

        ds = self.split.ds
        if isinstance(ds, IterableDataset):
            ds = ds.shuffle(seed=self.seed * 100_003 + self.epoch, buffer_size=self.buffer_size)
        for row in ds:
            try:
                image = crop(row["image"]["bytes"], self.split.policy, self.split.side,
                             self.split.processor)
            except CorruptImage as e:
                if self.split.on_corrupt == "fail":
                    from imageattributionbench import BenchmarkError

                    raise BenchmarkError(f"streamed image {row.get('sha256')}: undecodable "
                                         f"({e}); rerun with --on-corrupt skip") from e
                continue
            yield image, row["label"]


def stream_loader(crops: StreamCrops, geo: Geometry, batch_size: int) -> DataLoader:
    def collate(items):
        images = np.stack([i for i, _ in items])
        labels = torch.as_tensor([lb for _, lb in items])
        return normalize(images, geo), labels, torch.full((len(items),), -1)

    return DataLoader(crops, batch_size=batch_size, collate_fn=collate)


@dataclass
class Predictions:
    """Per-image outputs of one split, in dataset order."""

    probabilities: np.ndarray  # (N, num_labels) float32
    labels: np.ndarray
    semantics: list[str]
    generators: list[str]
    sha256: list[str]
    skipped: list[str] = field(default_factory=list)
    prompt_ids: list[str] = field(default_factory=list)  # with generators: the row identity
    image_indices: list[int] = field(default_factory=list)

    @property
    def predictions(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)


def _probs(logits: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor:
    logits = logits.float()
    if allowed is not None:  # open set: only known labels can be predicted
        logits = logits.masked_fill(~allowed.to(logits.device), float("-inf"))
    return torch.softmax(logits, dim=-1)


@torch.no_grad()
def predict(accelerator, model, split: DecodedSplit, geo: Geometry, batch_size: int,
            allowed: torch.Tensor | None = None) -> Predictions:
    model.eval()
    dl = accelerator.prepare(loader(split, geo, batch_size))
    probs, order = [], []
    for pixels, _, idx in dl:
        p = _probs(model(pixels), allowed)
        p, idx = accelerator.gather_for_metrics((p, idx))
        probs.append(p.cpu())
        order.append(idx.cpu())
    probabilities = torch.cat(probs).numpy() if probs else np.zeros((0, 0), np.float32)
    idx = torch.cat(order).numpy() if order else np.zeros(0, int)
    back = np.argsort(idx)
    return Predictions(probabilities[back], split.labels[idx[back]],
                       [split.semantics[i] for i in idx[back]],
                       [split.generators[i] for i in idx[back]],
                       [split.sha256[i] for i in idx[back]], list(split.skipped),
                       [split.prompt_ids[i] for i in idx[back]] if split.prompt_ids else [],
                       [split.image_indices[i] for i in idx[back]] if split.image_indices
                       else [])


@torch.no_grad()
def predict_stream(accelerator, model, ds, policy: str, geo: Geometry, batch_size: int,
                   on_corrupt: str, allowed: torch.Tensor | None = None,
                   processor=None) -> Predictions:
    """Streaming: each process takes its share of the stream; results gathered as objects."""
    from datasets.distributed import split_dataset_by_node

    model.eval()
    mine = split_dataset_by_node(ds, accelerator.process_index, accelerator.num_processes)
    rows, skipped = [], []
    device = accelerator.device
    for images, meta, skip in stream_batches(mine, policy, geo.size, batch_size, on_corrupt,
                                             processor):
        skipped += skip
        if len(images) == 0:
            continue
        p = _probs(model(normalize(images, geo).to(device)), allowed).cpu().numpy()
        rows += [(meta["sha256"][i], p[i], meta["label"][i], meta["semantic"][i],
                  meta["generator"][i], meta["prompt_id"][i], int(meta["image_index"][i]))
                 for i in range(len(images))]
    gathered = accelerator.gather_object([(rows, skipped)]) if accelerator.num_processes > 1 \
        else [(rows, skipped)]
    all_rows = sorted((r for part, _ in gathered for r in part), key=lambda r: r[0])
    all_skipped = [s for _, part in gathered for s in part]
    n = len(all_rows)
    probs = np.stack([r[1] for r in all_rows]) if n else np.zeros((0, 0), np.float32)
    return Predictions(probs, np.array([r[2] for r in all_rows]), [r[3] for r in all_rows],
                       [r[4] for r in all_rows], [r[0] for r in all_rows], all_skipped,
                       [r[5] for r in all_rows], [r[6] for r in all_rows])
