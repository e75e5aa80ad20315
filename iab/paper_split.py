"""The paper's own split, reproduced exactly: which images its loader selects and where its
split puts each one (the paper_exact configs).

The official code (dataset/ImageAttributionDataset/dataset.py and dataloader.py) lists the
selected files label by label (its label order), subclass by subclass, in sorted name order;
then ``set_seed(42)`` and, per label, one ``np.random.shuffle`` of that label's sample indices
cut 80/10/10 by truncation (``int(n * 0.8)``, ``int(n * 0.1)``, the rest); then the train,
validation and test lists are shuffled and the train list is cut to even length (its last
element dropped). A semantic task shuffles each (label, subclass) list: the training
subclass's is cut 80/20 into train/validation, every other subclass's goes to test whole.
All draws come from one seeded NumPy generator, so a label's split depends on every label
before it: the membership is a function of the whole file set, as in the official code.

``tests/data/paper_split/`` holds the official code's own output on a test file list; the
tests check this module against it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Hashable, Iterable

import numpy as np

import imageattributionbench as iab
from iab import official

SEED = 42  # dataloader.py: get_dataloader(seed=42); train.py init_seed(config manualSeed 42)
TRAIN_RATIO, VAL_RATIO = 0.8, 0.1
SEMANTIC_TRAIN_RATIO = 0.8  # get_dataloader passes its train_ratio (0.8) to the semantic split


@dataclass(frozen=True)
class Entry:
    """One image as the official loader would see it: (label, subclass, file name) and a key
    the caller uses to find its row again."""

    label: str
    semantic: str
    name: str
    key: Hashable


def loader_samples(entries: Iterable[Entry]) -> list[Entry]:
    """The official loader's sample list over these images, in its order."""
    by_folder: dict[tuple[str, str], dict[str, list[Entry]]] = defaultdict(lambda: defaultdict(list))
    for e in entries:
        by_folder[(e.label, e.semantic)][e.name].append(e)
    samples: list[Entry] = []
    for label in official.LOADER_LABELS:
        for semantic in official.LOADER_SEMANTICS:
            folder = by_folder.get((label, semantic))
            if not folder:
                continue
            for name in official.loader_selects(label, list(folder)):
                samples += folder[name][:1]  # one file per name in a folder
    return samples


def _shuffled(rng: np.random.RandomState, indices: list[int]) -> np.ndarray:
    arr = np.array(indices)
    rng.shuffle(arr)
    return arr


def _even_train(rng: np.random.RandomState, train: list, val: list, test: list) -> set[int]:
    """The official tail: shuffle the three lists, cut train to even length; returns the
    dropped train index (if any)."""
    rng.shuffle(train)
    rng.shuffle(val)
    rng.shuffle(test)
    return {int(train[-1])} if len(train) % 2 else set()


def standard_split(samples: list[Entry]) -> dict[int, str]:
    """stratified_split_by_label: sample index -> train / validation / test / dropped."""
    rng = np.random.RandomState(SEED)
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(samples):
        by_label[e.label].append(i)
    train: list = []
    val: list = []
    test: list = []
    for indices in by_label.values():
        arr = _shuffled(rng, indices)
        n_train, n_val = int(len(arr) * TRAIN_RATIO), int(len(arr) * VAL_RATIO)
        train.extend(arr[:n_train])
        val.extend(arr[n_train:n_train + n_val])
        test.extend(arr[n_train + n_val:])
    dropped = _even_train(rng, train, val, test)
    out = {int(i): "validation" for i in val} | {int(i): "test" for i in test}
    out |= {int(i): "dropped" if int(i) in dropped else "train" for i in train}
    return out


def semantic_split(samples: list[Entry], train_semantic: str) -> dict[int, str]:
    """split_dataset_trainval_by_label_semantics for one task (train on ``train_semantic``,
    test on every other subclass): sample index -> train / validation / test / dropped."""
    rng = np.random.RandomState(SEED)
    by_label: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, e in enumerate(samples):
        by_label[e.label][e.semantic].append(i)
    train: list = []
    val: list = []
    test: list = []
    for by_semantic in by_label.values():
        for semantic, indices in by_semantic.items():
            arr = _shuffled(rng, indices)  # drawn for test subclasses too, as the code does
            if semantic != train_semantic:
                test.extend(arr.tolist())
            else:
                n_train = int(len(arr) * SEMANTIC_TRAIN_RATIO)
                train.extend(arr[:n_train].tolist())
                val.extend(arr[n_train:].tolist())
    dropped = _even_train(rng, train, val, test)
    out = {int(i): "validation" for i in val} | {int(i): "test" for i in test}
    out |= {int(i): "dropped" if int(i) in dropped else "train" for i in train}
    return out


def paper_codes(entries: Iterable[Entry]) -> dict[Hashable, str]:
    """The paper-split code (iab.PAPER_CODES) of every image the official loader selects, by
    its entry's key; images it does not select are absent."""
    samples = loader_samples(entries)
    std = standard_split(samples)
    tasks = {s: semantic_split(samples, s) for s in iab.PAPER_TASK_SEMANTICS}
    codes = {}
    for i, e in enumerate(samples):
        task = tasks[e.semantic][i] if e.semantic in tasks else None
        codes[e.key] = iab.paper_code(std[i], task)
    return codes


def shared_prompt_count(codes: dict[Hashable, str], prompt_of: dict[Hashable, str]
                        ) -> tuple[int, int]:
    """(test images of paper_exact sharing a prompt with one of its training images, test
    images): the leakage our prompt-grouped folds rule out."""
    train_prompts = {prompt_of[k] for k, c in codes.items() if c.split("-")[0] == "train"}
    test = [k for k, c in codes.items() if c.split("-")[0] == "test"]
    return sum(prompt_of[k] in train_prompts for k in test), len(test)
