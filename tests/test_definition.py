"""The benchmark definition: labels, semantics, folds, protocols."""

import pytest

import imageattributionbench as iab
from iab.prompts import official_prompts

# Published label ids: this list may only grow at its end.
PUBLISHED_LABELS = [
    "real", "4o", "CogView3_PLUS", "FLUX", "KANDINSKY", "PIXART", "PLAYGROUND_2_5", "SD1_5",
    "SD2_1", "SD3", "SD3_5", "SDXL", "dalle3", "gemini", "grok3", "hidream", "hunyuan",
    "ideogram", "infinity", "janus-pro", "kling", "mid-5.2", "mid-6.0", "Z-Image-Turbo",
    "FLUX.2-klein-4B", "CogView4-6B", "GLM-Image", "NextStep-1.1", "gpt-image-1", "Seedream",
    "Gemini-2.5-Flash-Image",
]


def test_label_ids_are_append_only():
    assert list(iab.LABELS[: len(PUBLISHED_LABELS)]) == PUBLISHED_LABELS
    assert [g.label_id for g in iab.GENERATORS] == list(range(1, len(iab.GENERATORS) + 1))
    assert iab.label_id("real") == 0 and iab.label_id("SDXL") == 11


def test_registry_covers_the_paper_and_newer_generators():
    in_paper = {g.name for g in iab.GENERATORS if g.in_paper}
    assert len(in_paper) == 22
    assert {"Z-Image-Turbo", "FLUX.2-klein-4B", "CogView4-6B", "GLM-Image", "NextStep-1.1",
            "gpt-image-1", "Seedream", "Gemini-2.5-Flash-Image"} <= set(iab.LABELS)
    for g in iab.GENERATORS:
        assert g.runs in iab.RUNS
        if g.runs == "diffusers":
            assert g.hub_id and g.pipeline and g.steps > 0 and g.guidance >= 0 and g.resolution
        if g.runs == "api":
            assert g.api
    assert iab.generator("grok3").watermark_crop == iab.WatermarkCrop(right=100, bottom=50)


def test_diffusers_pipeline_classes_exist():
    diffusers = pytest.importorskip("diffusers")
    for g in iab.GENERATORS:
        if g.pipeline:
            assert hasattr(diffusers, g.pipeline), g.pipeline


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(iab.BenchmarkError, match="valid generators: 4o, CogView3_PLUS"):
        iab.generator("SD9")
    with pytest.raises(iab.BenchmarkError, match="valid semantics: cat, dog, wild"):
        iab.superclass_of("Cat")
    with pytest.raises(iab.BenchmarkError, match="valid configs: standard, semantic_disjoint"):
        iab.protocol("semantic-disjoint")
    with pytest.raises(iab.BenchmarkError, match="valid degradations: down_x2"):
        iab.degradation("jpeg_q90")


def test_semantics_and_superclasses():
    assert len(iab.SEMANTICS) == 10 and len(iab.SUPERCLASSES) == 5
    assert iab.superclass_of("FFHQ") == "HumanFace"
    assert iab.superclass_of("church") == "Scene"
    for s in iab.SEMANTICS:
        assert len(official_prompts(s)) == 1000


def test_fold_is_a_fixed_function_of_the_prompt_id():
    # Pinned values: a change to the fold function would move published rows between folds.
    assert [iab.fold_of(f"cat/{i}") for i in range(12)] == [
        "validation", "train", "validation", "train", "train", "train", "validation", "train",
        "train", "train", "test", "train"]
    assert iab.fold_position("cat/0") == 0.8325717685367313
    assert iab.fold_position("FFHQ/src:003638.png") == 0.37421925331673106
    with pytest.raises(iab.BenchmarkError, match="prompt_id is empty"):
        iab.fold_of("")


def test_fold_proportions_over_the_official_prompts():
    folds = [iab.fold_of(p.prompt_id) for s in iab.SEMANTICS for p in official_prompts(s)]
    share = {f: folds.count(f) / len(folds) for f in iab.FOLDS}
    assert share["train"] == pytest.approx(0.8, abs=0.015)
    assert share["validation"] == pytest.approx(0.1, abs=0.01)
    assert share["test"] == pytest.approx(0.1, abs=0.01)


def test_protocols():
    names = list(iab.PROTOCOLS)
    assert names[0] == "standard" and iab.PROTOCOLS["standard"].default
    assert "semantic_disjoint_imagenet_1k" in names and "semantic_disjoint_cat" not in names
    assert len([n for n in names if n.startswith("semantic_disjoint")]) == 10
    sd = iab.protocol("semantic_disjoint")
    assert sd.train_semantic == "cat" and [s.name for s in sd.splits] == [
        "train", "validation", "test_seen", "test"]
    assert "cat" not in sd.split("test").semantics and sd.split("test").folds == iab.FOLDS
    assert iab.PAPER_SEMANTIC_TASKS == ("semantic_disjoint", "semantic_disjoint_bedroom",
                                        "semantic_disjoint_ffhq")
    assert [s.name for s in iab.protocol("degraded").splits] == [
        "down_x2", "down_x4", "jpeg_q65", "jpeg_q30", "blur_s3", "blur_s5"]
    known = iab.protocol("open_set").split("train").labels
    assert "real" in known and "SDXL" in known and "Z-Image-Turbo" not in known
    assert iab.protocol("open_set").split("test").labels is None


def test_split_membership_follows_the_protocol():
    key = iab.parse_shard_path("data/dog/test/SD1_5-00000-of-00001.parquet")
    assert key == iab.ShardKey("dog", "SD1_5", "test", None)
    sd = iab.protocol("semantic_disjoint")
    assert iab.split_contains(sd.split("test"), key)
    assert not iab.split_contains(sd.split("test_seen"), key)
    deg = iab.parse_shard_path("degraded/jpeg_q30/cat/FLUX.2-klein-4B-00001-of-00002.parquet")
    assert deg == iab.ShardKey("cat", "FLUX.2-klein-4B", "test", "jpeg_q30")
    assert iab.split_contains(iab.protocol("degraded").split("jpeg_q30"), deg)
    assert not iab.split_contains(iab.protocol("standard").split("test"), deg)
    assert iab.parse_shard_path("README.md") is None


def test_load_checks_names_before_loading():
    with pytest.raises(iab.BenchmarkError, match="valid configs"):
        iab.load("semantic_disjoint_horse", repo="unused")
    with pytest.raises(iab.BenchmarkError, match="config 'standard' has no split 'test_seen'; its splits: train, validation, test"):
        iab.load("standard", split="test_seen", repo="unused")


def test_importing_the_definition_stays_light():
    import subprocess
    import sys

    code = ("import sys, imageattributionbench; "
            "print(sorted(m for m in ('datasets', 'PIL', 'numpy', 'torch', 'pyarrow', 'iab') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
