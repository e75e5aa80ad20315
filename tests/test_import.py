"""iab import: image folder trees and the paper's parquet release -> raw shards."""

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

import imageattributionbench as iab
from iab.build import build
from iab.importer import import_images
from iab.prompts import official_prompts

from helpers import png


def jpeg(w, h, quality=85, seed=0):
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _rows(raw):
    return [r for f in sorted(raw.rglob("*.parquet")) for r in pq.read_table(f).to_pylist()]


@pytest.fixture
def tree(tmp_path):
    src = tmp_path / "src"
    files = {
        "ideogram/AnimalFace/cat/AnimalFace_cat_p3_i1.png": png(1),
        "ideogram/AnimalFace/cat/AnimalFace_cat_p4_i0.png": png(2),
        "ideogram/AnimalFace/cat/broken_p5_i0.png": png(3)[:50],
        "grok3/Scene/LSUN_bedroom/Scene_LSUN_bedroom_p10_i0.jpg": jpeg(300, 200, 80),
        f"real/COCO/{official_prompts('COCO')[500].source_file}": jpeg(64, 48),
        "real/COCO/not_captioned.jpg": jpeg(64, 48, seed=1),
        "somemodel/cat/a.png": png(4),
        "ideogram/notes/readme.png": png(5),
    }
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    return src


def test_import_tree(tree, tmp_path, raw_dir, built):
    raw = tmp_path / "raw"
    report = import_images(tree, raw)
    rows = {(r["generator"], r["prompt_id"], r["image_index"]): r for r in _rows(raw)}
    assert report.rows == len(rows) == 5
    cat = official_prompts("cat")
    r = rows[("ideogram", "cat/3", 1)]
    assert r["prompt"] == cat[3].text and r["superclass"] == "AnimalFace"
    assert r["source"] == "ideogram/AnimalFace/cat/AnimalFace_cat_p3_i1.png"
    # a real image is linked to the prompt captioned from it by its file name
    assert rows[("real", "COCO/500", 0)]["prompt"] == official_prompts("COCO")[500].text
    assert ("real", "COCO/src:not_captioned.jpg", 0) in rows
    assert report.unlinked_prompts == 1
    # grok3's watermark is cropped (100 px right, 50 px bottom), JPEG tables kept
    g = rows[("grok3", "bedroom/10", 0)]
    assert (g["width"], g["height"], g["format"]) == (200, 150, "JPEG")
    assert "watermark cropped" in g["source"]
    with Image.open(io.BytesIO(g["image"]["bytes"])) as im, \
            Image.open(tree / "grok3/Scene/LSUN_bedroom/Scene_LSUN_bedroom_p10_i0.jpg") as orig:
        assert im.quantization == orig.quantization
    # what could not be mapped is listed, with the reason
    text = "\n".join(report.unmapped)
    assert "somemodel/cat/a.png: no generator" in text
    assert "ideogram/notes/readme.png: no semantic" in text
    assert "broken_p5_i0.png: undecodable image" in "\n".join(report.skipped)
    # the imported shards build, beside others
    assert build([raw_dir, raw], tmp_path / "repo", progress=False).rows == built[1].rows + 5


def test_import_resumes_without_duplicates(tree, tmp_path):
    raw = tmp_path / "raw"
    first = import_images(tree, raw)
    again = import_images(tree, raw)
    assert again.rows == 0 and again.already_imported == first.rows
    assert len(_rows(raw)) == first.rows


def test_import_with_flags_and_no_crop(tmp_path):
    src = tmp_path / "flat"
    src.mkdir()
    (src / "x_p7_i0.jpg").write_bytes(jpeg(300, 200))
    report = import_images(src, tmp_path / "raw", generator="grok3", semantic="church",
                           crop=False)
    (row,) = _rows(tmp_path / "raw")
    assert report.rows == 1 and row["prompt_id"] == "church/7"
    assert (row["width"], row["height"]) == (300, 200)


def _release_file(path, model, main, sub, images):
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({
        "image": pa.array([{"bytes": b, "path": n} for n, b in images],
                          pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
        "model": [model] * len(images), "main_category": [main] * len(images),
        "sub_category": [sub] * len(images), "filename": [n for n, _ in images]})
    pq.write_table(table, path)


def test_import_release(tmp_path, raw_dir, built):
    src = tmp_path / "release"
    _release_file(src / "data/FLUX2_KLEIN/AnimalFace/cat.parquet", "FLUX2_KLEIN", "AnimalFace",
                  "cat", [("AnimalFace_cat_p0_i0.png", png(1)), ("AnimalFace_cat_p0_i1.png",
                                                                  png(2))])
    _release_file(src / "data/mid-6.0/ImageNet-1k/ImageNet-1k.parquet", "mid-6.0",
                  "ImageNet-1k", "", [("ImageNet-1k_p9_i3.png", png(3))])
    _release_file(src / "data/real/HumanFace/FFHQ.parquet", "real", "HumanFace", "FFHQ",
                  [(official_prompts("FFHQ")[500].source_file, png(4))])
    _release_file(src / "data/mystery/AnimalFace/cat.parquet", "mystery", "AnimalFace", "cat",
                  [("a_p0_i0.png", png(5))])
    _release_file(src / "data/SD1_5/Scene/tower.parquet", "SD1_5", "Scene", "tower",
                  [("Scene_LSUN_tower_p0_i0.png", png(6))])
    report = import_images(src, tmp_path / "raw")
    rows = {(r["generator"], r["prompt_id"], r["image_index"]) for r in _rows(tmp_path / "raw")}
    assert rows == {("FLUX.2-klein-4B", "cat/0", 0), ("FLUX.2-klein-4B", "cat/0", 1),
                    ("mid-6.0", "ImageNet-1k/9", 3), ("real", "FFHQ/500", 0)}
    text = "\n".join(report.unmapped)
    assert "data/mystery/AnimalFace/cat.parquet: unknown model 'mystery' (1 rows)" in text
    assert "data/SD1_5/Scene/tower.parquet: unknown category 'Scene'/'tower'" in text
    assert build([raw_dir, tmp_path / "raw"], tmp_path / "repo",
                 progress=False).rows == built[1].rows + 4


def test_import_of_nothing_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(iab.BenchmarkError, match="nothing imported"):
        import_images(tmp_path / "empty", tmp_path / "raw")
    with pytest.raises(iab.BenchmarkError, match="valid semantics"):
        import_images(tmp_path / "empty", tmp_path / "raw", semantic="Cats")
