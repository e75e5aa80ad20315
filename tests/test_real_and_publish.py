"""generation/real.py (real images from any datasets source) and generation/publish.py."""

from __future__ import annotations

import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import imageattributionbench as iab
from generation.publish import plan_upload, publish
from generation.real import import_real
from iab.build import build
from iab.demo import write_demo_raw
from iab.prompts import official_prompts

from conftest import SMALL
from helpers import png
from hub_server import HubServer, commit_folder
from test_hub import REPO_ID, _load_via_hub


def _rows(folder):
    return [r for f in sorted(folder.rglob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def test_real_images_from_a_local_folder(tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    captioned = official_prompts("cat")[7].source_file  # a file an official prompt came from
    files = {captioned: png(1, 24), "holiday.png": png(2, 24), "broken.png": png(3)[:40]}
    for name, data in files.items():
        (src / name).write_bytes(data)
    report = import_real(str(src), "cat", tmp_path / "raw")
    rows = {r["image"]["path"]: r for r in _rows(tmp_path / "raw")}
    assert set(rows) == {captioned, "holiday.png"} and report.rows == 2
    assert rows[captioned]["image"]["bytes"] == files[captioned]  # bytes kept exactly
    assert rows[captioned]["prompt_id"] == "cat/7"
    assert rows[captioned]["prompt"] == official_prompts("cat")[7].text
    assert rows["holiday.png"]["prompt_id"] == "cat/src:holiday.png"
    assert rows["holiday.png"]["label"] == 0 and rows["holiday.png"]["source"] == \
        "photos:holiday.png"
    assert any("broken.png" in u and "undecodable" in u for u in report.unmapped)
    again = import_real(str(src), "cat", tmp_path / "raw")
    assert again.rows == 0 and again.already_imported == report.rows


def test_real_images_from_a_datasets_repo_folder(tmp_path):
    """A Hub-style dataset (parquet with an image column) loads through load_dataset."""
    repo = tmp_path / "hub_like" / "data"
    repo.mkdir(parents=True)
    pq.write_table(pa.table({
        "img": pa.array([{"bytes": png(i, 20), "path": f"im{i}.png"} for i in range(3)],
                        pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
        "caption": ["a", "b", "c"]}), repo / "train-00000.parquet")
    with pytest.raises(iab.BenchmarkError, match="no column 'image'.*img, caption"):
        import_real(str(tmp_path / "hub_like"), "COCO", tmp_path / "raw", limit=2)
    report = import_real(str(tmp_path / "hub_like"), "COCO", tmp_path / "raw",
                         image_column="img", limit=2, source_name="my/photos")
    rows = _rows(tmp_path / "raw")
    assert report.rows == 2 and [r["image"]["bytes"] for r in rows] == [png(0, 20), png(1, 20)]
    assert rows[0]["source"] == "my/photos:im0.png"


class RecordingApi:
    """The Hub's write API, which has no offline equivalent: calls are recorded."""

    def __init__(self, remote: dict[str, str] | None = None):
        self.calls = []
        self.remote = remote or {}

    def hf_hub_download(self, *args, **kwargs):
        import httpx
        from huggingface_hub.errors import RepositoryNotFoundError

        response = httpx.Response(404, request=httpx.Request("GET", "http://hub.invalid"))
        raise RepositoryNotFoundError("no such repo", response=response)

    def create_repo(self, *args, **kwargs):
        self.calls.append(("create_repo", args, kwargs))

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", (), kwargs))


def test_publish_uploads_a_verified_build(built, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    api = RecordingApi()
    plan = publish(built[0], "org/bench", private=True, api=api)
    (name, args, kwargs), (name2, _, up) = api.calls
    assert name == "create_repo" and args == ("org/bench",)
    assert kwargs == {"repo_type": "dataset", "private": True, "exist_ok": True}
    assert name2 == "upload_folder" and up["repo_type"] == "dataset"
    assert up["folder_path"] == built[0] and up["delete_patterns"] is None
    assert ".cache/**" in up["ignore_patterns"]
    files = {p.relative_to(built[0]).as_posix() for p in built[0].rglob("*") if p.is_file()}
    assert set(plan.added) == files and not plan.changed and not plan.deleted


def test_publish_refuses_without_token_or_with_a_broken_build(built, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "nohome"))
    api = RecordingApi()
    with pytest.raises(iab.BenchmarkError, match="no Hugging Face token: run `hf auth login`"):
        publish(built[0], "org/bench", api=api)
    broken = tmp_path / "broken"
    shutil.copytree(built[0], broken)
    (broken / "eval.yaml").write_text("tampered")
    with pytest.raises(iab.BenchmarkError, match="fails verification"):
        publish(broken, "org/bench", api=api, token="x")
    assert api.calls == []


def test_dry_run_against_the_hub_copy_then_load_it(built, raw_dir, tmp_path):
    """The Hub holds the first build (served by olah); a second build adds SDXL."""
    hub = HubServer(tmp_path / "hub").start()
    try:
        commit_folder(built[0], hub.dataset_repo(REPO_ID), "first build")
        extra = tmp_path / "extra"
        write_demo_raw(extra, labels=("SDXL",), semantics=("cat", "dog"), per_fold=SMALL)
        second = build([raw_dir, extra], tmp_path / "second", progress=False).out
        plan = publish(second, REPO_ID, dry_run=True, endpoint=hub.endpoint)
        assert plan.added and all("SDXL" in f for f in plan.added)
        assert {"README.md", "manifest.json", "checksums.sha256"} <= set(plan.changed)
        assert not plan.deleted and plan.unchanged > 0
        # the same folder, once on the Hub, loads by repo id
        commit_folder(second, hub.dataset_repo(REPO_ID), "second build")
        loaded = _load_via_hub(hub, tmp_path)
        manifest = json.loads((second / "manifest.json").read_text())
        assert loaded["splits"] == manifest["configs"]["semantic_disjoint"]
    finally:
        hub.stop()


def test_plan_lists_deletions(built, tmp_path):
    remote = {"data/old/train/gone-00000-of-00001.parquet": "ab" * 32}
    plan = plan_upload(built[0], remote)
    assert plan.deleted == ["data/old/train/gone-00000-of-00001.parquet"]


def test_photo_crops_are_linked_to_their_prompts_sized_and_sourced(tmp_path):
    import io

    import numpy as np
    from PIL import Image, ImageFilter

    from generation.real import Photo, import_photo_crops
    from iab.prompts import official_prompts

    buf = io.BytesIO()
    arr = np.random.default_rng(0).integers(0, 256, (150, 200, 3), dtype=np.uint8)
    Image.fromarray(arr).filter(ImageFilter.GaussianBlur(1)).save(buf, "PNG")
    photos = [Photo("noise.png", buf.getvalue(), "test-package", "CC0")]
    prompts = official_prompts("cat")[:5]
    report = import_photo_crops(photos, "cat", prompts, tmp_path / "raw", size=32,
                                source_name="demo-crop", match_png_bytes=2500)
    rows = _rows(tmp_path / "raw")
    assert report.rows == 5 and [r["prompt_id"] for r in rows] == [p.prompt_id for p in prompts]
    assert {(r["width"], r["height"], r["format"], r["generator"]) for r in rows} == {
        (32, 32, "PNG", "real")}
    assert rows[0]["source"].startswith("demo-crop: test-package noise.png (CC0), scale ")
    assert ", crop 32x32 at (" in rows[0]["source"]
    sizes = [len(r["image"]["bytes"]) for r in rows]
    unmatched = import_photo_crops(photos, "cat", prompts, tmp_path / "plain", size=32,
                                   source_name="demo-crop")  # first candidate, no matching
    assert unmatched.rows == 5
    plain = [len(r["image"]["bytes"]) for r in _rows(tmp_path / "plain")]
    assert np.mean(np.abs(np.array(sizes) - 2500)) < np.mean(np.abs(np.array(plain) - 2500))
    # a rerun keeps what is there; an interrupted one completes crop by crop, and the same
    # prompts give the same crops
    again = import_photo_crops(photos, "cat", prompts, tmp_path / "raw", size=32,
                               source_name="demo-crop", match_png_bytes=2500)
    assert again.already_imported == 5 and again.rows == 0
    partial = import_photo_crops(photos, "cat", prompts[:2], tmp_path / "partial", size=32,
                                 source_name="demo-crop", match_png_bytes=2500)
    rest = import_photo_crops(photos, "cat", prompts, tmp_path / "partial", size=32,
                              source_name="demo-crop", match_png_bytes=2500)
    assert (partial.rows, rest.already_imported, rest.rows) == (2, 2, 3)
    assert sorted(r["sha256"] for r in _rows(tmp_path / "partial")) == sorted(
        r["sha256"] for r in rows)
