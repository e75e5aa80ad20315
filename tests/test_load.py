"""load_dataset on a built folder: every config, its splits and row counts, features, streaming."""

import pytest
from datasets import ClassLabel, load_dataset
from PIL import Image

import imageattributionbench as iab
from expected import expected_counts, raw_index


@pytest.fixture(scope="module")
def raw_rows(raw_dir):
    return raw_index(raw_dir)


# paper_exact* configs are built with --paper-split only (tests/test_paper_split.py loads them)
@pytest.mark.parametrize("config", [p for p in iab.PROTOCOLS if not p.startswith("paper_exact")])
def test_every_config_loads_with_the_right_splits_and_counts(built, raw_rows, config):
    repo, _ = built
    ds = load_dataset(str(repo), config)
    assert {split: len(d) for split, d in ds.items()} == expected_counts(config, raw_rows)
    first = next(iter(ds.values()))
    assert isinstance(first.features["label"], ClassLabel)
    assert first.features["label"].names == list(iab.LABELS)
    row = first[0]
    assert isinstance(row["image"], Image.Image) and row["image"].size == (32, 32)
    assert first.features["label"].int2str(row["label"]) == row["generator"]


def test_load_helper_and_default_config(built, raw_rows):
    repo, _ = built
    test = iab.load(split="test", repo=str(repo))
    assert len(test) == expected_counts("standard", raw_rows)["test"]
    assert set(test["semantic"]) == set(iab.SEMANTICS)
    default = load_dataset(str(repo), split="validation")  # the card's default config
    assert len(default) == expected_counts("standard", raw_rows)["validation"]


def test_streaming(built, raw_rows):
    repo, _ = built
    stream = load_dataset(str(repo), "semantic_disjoint", split="test", streaming=True)
    n = 0
    for row in stream:
        assert row["semantic"] != "cat" and isinstance(row["image"], Image.Image)
        n += 1
    assert n == expected_counts("semantic_disjoint", raw_rows)["test"]
    jpeg = load_dataset(str(repo), "degraded", split="jpeg_q30", streaming=True)
    assert next(iter(jpeg))["image"].format == "JPEG"
