"""The dataset card as the Hub reads it: huggingface_hub parses its YAML, which carries the
spec's fields only (hub-docs datasetcard.md); the paper is linked (the Hub tags linked papers);
uses, out-of-scope uses, personal information and the citation; a demo build says it is one."""

from __future__ import annotations

from huggingface_hub import DatasetCard

import imageattributionbench as iab

# hub-docs datasetcard.md
DATASET_CARD_KEYS = {"language", "license", "license_name", "license_link", "license_details",
                     "tags", "annotations_creators", "language_creators", "language_details",
                     "pretty_name", "size_categories", "source_datasets", "task_categories",
                     "task_ids", "paperswithcode_id", "configs", "dataset_info",
                     "extra_gated_fields", "extra_gated_prompt", "train-eval-index"}


def test_card_yaml_is_the_specs(built):
    repo, _ = built
    card = DatasetCard.load(repo / "README.md")
    meta = card.data.to_dict()
    assert set(meta) <= DATASET_CARD_KEYS, set(meta) - DATASET_CARD_KEYS
    assert meta["license"] == "other" and meta["license_link"].startswith("https://")
    # every subclass is in this build: every source of the paper's real photographs
    assert meta["source_datasets"] == ["AFHQ", "COCO", "CelebA-HQ", "FFHQ", "ImageNet", "LSUN"]
    text = card.text
    assert f"https://arxiv.org/abs/{iab.PAPER_ARXIV}" in text
    for heading in ("## Uses", "### Out-of-scope use", "## Personal and Sensitive Information",
                    "## Licenses", "## Citation"):
        assert heading in text, heading
    assert "author        = {Mou, Tingshu and others}" in text
    assert "How Far Are We from Generalizable Attribution?" in text
    assert "This is a demo build" not in text


def test_a_demo_build_says_so_and_shows_its_rows(tiny_bench):
    card = DatasetCard.load(tiny_bench / "README.md")
    meta = card.data.to_dict()
    assert meta["pretty_name"] == "ImageAttributionBench (demo build)"
    assert "source_datasets" not in meta  # its real images are not the paper's sources
    assert "> **This is a demo build**" in card.text
    sd15 = f"| {iab.LABEL_IDS['SD1_5']} | `SD1_5` |"
    row = next(line for line in card.text.splitlines() if line.startswith(sd15))
    # the registry's settings, and what the rows hold: tiny weights, 64 px
    assert "`tiny-random/SD1_5`" in row and "64x64" in row
