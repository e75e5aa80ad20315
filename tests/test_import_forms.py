"""Every form the paper's data ships in imports to the same rows: its tree, its Dataverse zips
(split archives read in place) and its Hub parquet release, in a folder or by repo id through
an offline Hub endpoint (olah), resumably."""

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

import imageattributionbench as iab
from iab import official
from iab.importer import import_images
from iab.prompts import legacy_prompts, official_prompts

import paper_replica as rep
from hub_server import HubServer, commit_folder

SEMANTICS = ("cat", "COCO", "celebahq")
HUB_ID = "multiitsuki/ImageAttributionBench"


def forms_files() -> dict[str, bytes]:
    """Two images per official model folder (all 34 generators' and real) and subclass."""
    names = []
    for model in official.OFFICIAL_FOLDERS:
        for sem in SEMANTICS:
            base = rep.folder(model, sem)
            if model == "real":
                names += [f"{base}/{n}" for n in rep.real_names(sem, 2)]
            else:
                names += [f"{base}/{rep.BASES_2025[sem]}_p{p}_i0.png" for p in (0, 1)]
    # grok3's watermark crop (100 x 50 px) needs images larger than that
    return {n: rep.image_bytes(n, i, 160 if n.startswith("grok3/") else 8)
            for i, n in enumerate(names)}


def rows_of(raw):
    rows = [r for f in sorted(raw.rglob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    return sorted(rows, key=lambda r: (r["generator"], r["prompt_id"], r["image_index"]))


@pytest.fixture(scope="module")
def files():
    return forms_files()


@pytest.fixture(scope="module")
def tree_rows(files, tmp_path_factory):
    root = tmp_path_factory.mktemp("forms")
    report = import_images(rep.write_tree(root / "tree", files), root / "raw")
    assert report.unmapped == [] and report.skipped == [] and report.form == "tree"
    return rows_of(root / "raw")


def test_tree_maps_every_official_folder(tree_rows, files):
    assert len(tree_rows) == len(files)
    assert {r["generator"] for r in tree_rows} == set(iab.LABELS) - {"Seedream"}
    assert {r["source"].split(" ")[0] for r in tree_rows} == set(files)
    by = {(r["generator"], r["prompt_id"]): r for r in tree_rows}
    # paper-release provenance: the paper's model and settings, not the model card's
    sd35 = by[("SD3_5", "cat/0")]
    assert sd35["model_id"] == "stabilityai/stable-diffusion-3.5-medium"
    assert (sd35["num_inference_steps"], sd35["guidance_scale"], sd35["profile"]) == (40, 4.5,
                                                                                    "paper")
    assert json.loads(sd35["settings"])["negative_prompt"] == iab.PAPER_NEGATIVE_PROMPT
    assert by[("4o", "cat/0")]["model_id"] == "gpt-4o-all"
    assert by[("Seedream-5.0-lite", "cat/1")]["model_id"] == "doubao-seedream-5.0-lite"


def test_celebahq_links_to_the_caption_file_of_its_code(tree_rows):
    """The 2025 code (the paper's generators) read final_captions: celebahq _p<k> is the
    legacy file's row k; the 2026 code (newer generators) read final_captions_new (ours)."""
    by = {(r["generator"], r["semantic"], r["image_index"], r["source"]): r for r in tree_rows}
    legacy, current = legacy_prompts("celebahq"), official_prompts("celebahq")
    assert legacy[1].text != current[1].text
    for gen, folder, expected, pid in (("SD1_5", "SD1_5", legacy[1].text, "celebahq/legacy:1"),
                                       ("Z-Image-Turbo", "Z_IMAGE", current[1].text,
                                        "celebahq/1")):
        src = f"{folder}/HumanFace/celebahq/HumanFace_celebahq_p1_i0.png"
        row = by[(gen, "celebahq", 0, src)]
        assert (row["prompt"], row["prompt_id"]) == (expected, pid)
    real = by[("real", "celebahq", 0, "real/HumanFace/celebahq/" + legacy[0].source_file)]
    assert (real["prompt_id"], real["prompt"]) == ("celebahq/legacy:0", legacy[0].text)
    coco = by[("FLUX", "COCO", 0, "FLUX/COCO/COCO-new_p1_i0.png")]
    assert (coco["prompt_id"], coco["prompt"]) == ("COCO/1", official_prompts("COCO")[1].text)


def test_dataverse_zips_and_hub_parquet_give_the_same_rows(files, tree_rows, tmp_path):
    zips = rep.write_dataverse(tmp_path / "dataverse", files)
    # one class ships as a split archive: .z01 ... .zip, read without unpacking
    (zips / "SD1_5_cat.zip").unlink()
    members = {f"SD1_5_cat/{k.split('/')[-1]}": v for k, v in files.items()
               if k.startswith("SD1_5/AnimalFace/cat/")}
    parts = rep.write_split_zip(zips / "SD1_5_cat.zip", members, part_size=40)
    assert len(parts) > 2
    report = import_images(zips, tmp_path / "raw_zip")
    assert (report.form, report.unmapped, report.skipped) == ("dataverse", [], [])
    assert rows_of(tmp_path / "raw_zip") == tree_rows

    release = rep.write_hub_parquet(tmp_path / "hub", files)
    report = import_images(release, tmp_path / "raw_parquet")
    assert (report.form, report.unmapped, report.skipped) == ("parquet", [], [])
    assert rows_of(tmp_path / "raw_parquet") == tree_rows


def test_split_archive_with_a_part_missing_says_so(files, tmp_path):
    members = {k.split("/")[-1]: v for k, v in files.items() if k.startswith("SD1_5/")}
    parts = rep.write_split_zip(tmp_path / "SD1_5_cat.zip", members, part_size=40)
    parts[1].unlink()
    with pytest.raises(iab.BenchmarkError, match=r"part SD1_5_cat\.z02 is missing"):
        import_images(tmp_path, tmp_path / "raw")


def _iab(args, env_extra, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "IAB_FAULT")}
    env.update(env_extra, HF_HUB_DISABLE_TELEMETRY="1")
    return subprocess.run([sys.executable, "-m", "iab.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_hub_release_by_repo_id_resumes_after_a_kill(files, tree_rows, tmp_path):
    hub = HubServer(tmp_path / "olah").start()
    try:
        commit_folder(rep.write_hub_parquet(tmp_path / "release", files),
                      hub.dataset_repo(HUB_ID), "the paper's Hub release, replica")
        env = {"HF_ENDPOINT": hub.endpoint, "HF_HOME": str(tmp_path / "hf")}
        raw = tmp_path / "raw"
        # killed after the first release file is imported (a deterministic kill point)
        killed = _iab(["import", HUB_ID, "--out", str(raw)], {**env, "IAB_FAULT": "import.unit"},
                      tmp_path)
        assert killed.returncode == -9, killed.stderr[-2000:]
        state = json.loads((raw / ".import-hub-multiitsuki--ImageAttributionBench.json")
                           .read_text())
        assert len(state["files"]) == 1
        done = _iab(["import", HUB_ID, "--out", str(raw)], env, tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "already imported" in done.stdout and "could not map" not in done.stdout
    finally:
        hub.stop()
    assert rows_of(raw) == tree_rows
    # downloads lived beside the raw folder, one file at a time, and are gone
    assert not (tmp_path / ".raw.hub-download").exists()


def test_caption_linking_follows_the_file_names_stem():
    """COCO and ImageNet-1k: the stem names the caption file (docs/PAPER.md row 14)."""
    coco_old, coco = legacy_prompts("COCO"), official_prompts("COCO")
    assert official.link("SD1_5", "COCO", "COCO-new_p5_i1.png") == official.Link(
        "COCO/5", 1, coco[5].text, "current")
    # the older 5,000-row file: its first 1,000 rows are the current prompts, the rest its own
    assert official.link("SD1_5", "COCO", "COCO_p5_i0.png").prompt_id == "COCO/5"
    old = official.link("SD1_5", "COCO", "COCO_p1500_i0.png")
    assert (old.prompt_id, old.text, old.caption_set) == ("COCO/legacy:1500",
                                                          coco_old[1500].text, "legacy")
    inet_old, inet = legacy_prompts("ImageNet-1k"), official_prompts("ImageNet-1k")
    assert official.link("FLUX", "ImageNet-1k", "ImageNet-1k_p3_i0.png").text == inet[3].text
    assert official.link("FLUX", "ImageNet-1k", "imagenet-1k-new_p3_i0.png").text == inet[3].text
    legacy3 = official.link("FLUX", "ImageNet-1k", "imagenet-1k_p3_i0.png")
    assert legacy3.text == inet_old[3].text != inet[3].text
    # a caption both files have keeps one prompt id (one fold) whichever file named it
    shared = next(i for i, p in enumerate(inet_old) if "legacy" not in p.prompt_id)
    assert official.link("FLUX", "ImageNet-1k", f"imagenet-1k_p{shared}_i0.png").prompt_id == \
        inet_old[shared].prompt_id == f"ImageNet-1k/{inet_old[shared].index}"
    # other subclasses have one caption file
    assert official.link("SD1_5", "cat", "AnimalFace_cat_p9_i0.png").text == \
        official_prompts("cat")[9].text


def test_dataverse_zip_names_map_like_download_py():
    from iab.import_sources import _zip_target

    assert _zip_target("SD1_5_ImageNet_1k") == _zip_target("sd1_5_imagenet-1k") == \
        ("SD1_5", "ImageNet-1k")
    assert _zip_target("PLAYGROUND_2_5_bedroom") == ("PLAYGROUND_2_5", "bedroom")
    assert _zip_target("mid-5.2_celebahq") == ("mid-5.2", "celebahq")
    assert _zip_target("doubao-seedream-3.0-t2i_cat") == ("Seedream-3.0", "cat")
    assert _zip_target("SD1_5_tower") is None
