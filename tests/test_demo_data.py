"""The demo benchmark (issue 15, section 1): real photographs in every subclass and every split,
at the generated images' size, and nothing but pixel traces to tell the labels apart: the
card's metadata-only shortcut baseline sits at chance, and colour statistics do far worse than
the pixels did before the tiny generators were calibrated (100%)."""

from __future__ import annotations

import io

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

import imageattributionbench as iab
from generation.demo import DEMO_GENERATORS, DEMO_SEMANTICS, make_demo_data
from generation.tiny_calibration import TARGET_MEAN, TARGET_PNG_BYTES_PER_PIXEL
from iab.shortcut import knn_predict, scores


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return out, make_demo_data(out)


def _raw_rows(out):
    return [r for f in sorted((out / "raw").rglob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def test_real_is_in_every_split_of_every_config(demo):
    out, report = demo
    assert set(report.configs) == {"standard", "degraded", "open_set", "semantic_disjoint",
                                   "semantic_disjoint_bedroom", "semantic_disjoint_ffhq",
                                   "semantic_disjoint_coco"}
    for config in report.configs:
        for split, ds in iab.load(config, repo=str(report.out)).items():
            generators = set(ds["generator"])
            assert iab.REAL in generators, (config, split)
            if config != "open_set" or split == "test":
                assert generators == {iab.REAL, *DEMO_GENERATORS}, (config, split)


def test_real_crops_are_at_the_generated_size_and_say_where_they_come_from(demo):
    out, _ = demo
    rows = _raw_rows(out)
    real = [r for r in rows if r["generator"] == iab.REAL]
    assert len(real) == len(rows) // (1 + len(DEMO_GENERATORS))  # one per prompt
    assert {r["semantic"] for r in real} == set(DEMO_SEMANTICS)
    assert {(r["width"], r["height"], r["format"]) for r in rows} == {(64, 64, "PNG")}
    for r in real:
        assert r["source"].startswith("demo-crop: scikit-")
        assert ", scale " in r["source"] and ", crop 64x64 at (" in r["source"]
        assert "/src:" not in r["prompt_id"]  # linked to the prompt it stands beside
    assert any("chelsea.png (CC0" in r["source"] for r in real if r["semantic"] == "cat")


def test_shortcut_baseline_sits_at_chance(demo):
    _, report = demo
    found = scores(report.image_stats)
    assert [s.protocol for s in found] == ["standard", "semantic_disjoint",
                                           "semantic_disjoint_bedroom", "semantic_disjoint_ffhq"]
    for s in found:
        assert s.chance == pytest.approx(1 / (1 + len(DEMO_GENERATORS)))
        assert not s.leaks, s  # the card's own rule: not more than 5 points and 1.5x above


def _colour_features(rows):
    feats = []
    for r in rows:
        px = np.asarray(Image.open(io.BytesIO(r["image"]["bytes"])).convert("RGB"),
                        float).reshape(-1, 3) / 255
        c = np.corrcoef(px.T)
        feats.append([*px.mean(0), *px.std(0), c[0, 1], c[1, 2], c[0, 2]])
    return np.array(feats)


def test_generators_share_one_colour_and_file_size(demo):
    out, _ = demo
    rows = _raw_rows(out)
    target = TARGET_PNG_BYTES_PER_PIXEL * 64 * 64
    for g in DEMO_GENERATORS:
        mine = [r for r in rows if r["generator"] == g]
        mean = _colour_features(mine)[:, :3].mean(0)
        assert mean == pytest.approx(TARGET_MEAN, abs=0.015), g
        sizes = [len(r["image"]["bytes"]) for r in mine]
        assert np.mean(sizes) == pytest.approx(target, rel=0.02), g
    real = [len(r["image"]["bytes"]) for r in rows if r["generator"] == iab.REAL]
    assert np.mean(real) == pytest.approx(target, rel=0.02)


def test_colour_statistics_alone_tell_little(demo):
    """k-NN on per-image colour mean, spread and channel correlation, trained on cat and
    scored on the other subclasses (semantic_disjoint): 99% before the calibration."""
    out, _ = demo
    rows = _raw_rows(out)
    x = _colour_features(rows)
    y = np.array([iab.LABEL_IDS[r["generator"]] for r in rows])
    train = np.array([r["semantic"] == "cat" and iab.fold_of(r["prompt_id"]) == "train"
                      for r in rows])
    test = np.array([r["semantic"] != "cat" for r in rows])
    accuracy = (knn_predict(x[train], y[train], x[test]) == y[test]).mean()
    assert accuracy < 0.4  # chance is 1/9; measured 0.21


def test_rerun_adds_nothing(demo, capsys):
    out, _ = demo
    before = {p: p.stat().st_mtime_ns for p in (out / "raw").rglob("*.parquet")}
    make_demo_data(out)
    assert "real: photograph crops already there" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in (out / "raw").rglob("*.parquet")} == before
