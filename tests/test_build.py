"""iab build: layout, determinism, stored bytes, folds, and refusal of bad input."""

import json
import shutil

import pyarrow.parquet as pq
import pytest

import imageattributionbench as iab
from iab import shards
from iab.build import build
from iab.demo import write_demo_raw

from conftest import BASE_LABELS, SMALL
from helpers import huge_png, png, row, shard_rows, tree_files, write_rows


def _raw_images(raw_dir):
    """(label, prompt_id, image_index) -> image bytes, read straight from the raw shards."""
    out = {}
    for f in sorted(raw_dir.rglob("*.parquet")):
        t = pq.read_table(f)
        for r, data in zip(t.to_pylist(), shards.image_bytes_column(t)):
            out[(r["generator"], r["prompt_id"], r["image_index"])] = data
    return out


def test_layout_follows_the_hub_repo_design(built):
    repo, report = built
    files = tree_files(repo)
    assert {"README.md", "eval.yaml", "manifest.json", "checksums.sha256"} <= set(files)
    assert not any(f.endswith(".py") for f in files)  # datasets refuses loading scripts
    for f in files:
        if f.endswith(".parquet"):
            key = iab.parse_shard_path(f)
            assert key is not None, f
            assert key.label in BASE_LABELS and key.semantic in iab.SEMANTICS
            meta = pq.ParquetFile(repo / f).metadata
            assert all(meta.row_group(g).num_rows <= iab.ROWS_PER_ROW_GROUP
                       for g in range(meta.num_row_groups))
    degraded = [f for f in files if f.startswith("degraded/")]
    assert {f.split("/")[1] for f in degraded} == set(iab.DEGRADATIONS)
    assert report.rows == len(BASE_LABELS) * len(iab.SEMANTICS) * sum(SMALL.values())


def test_stored_image_bytes_equal_the_raw_bytes(built, raw_dir):
    repo, _ = built
    raw = _raw_images(raw_dir)
    seen = 0
    for f in sorted((repo / "data").rglob("*.parquet")):
        t = pq.read_table(f)
        for r, data in zip(t.to_pylist(), shards.image_bytes_column(t)):
            assert iab.sha256_hex(data) == iab.sha256_hex(raw[(r["generator"], r["prompt_id"],
                                                                r["image_index"])])
            assert r["sha256"] == iab.sha256_hex(data)
            seen += 1
    assert seen == len(raw)


def test_folds_are_disjoint_by_prompt(built):
    repo, _ = built
    folds, labels = {}, {}
    for f in sorted((repo / "data").rglob("*.parquet")):
        key = iab.parse_shard_path(f.relative_to(repo).as_posix())
        for r in shard_rows(f):
            folds.setdefault(r["prompt_id"], set()).add(key.fold)
            labels.setdefault(r["prompt_id"], set()).add(r["generator"])
            assert iab.fold_of(r["prompt_id"]) == key.fold
    assert folds and all(len(v) == 1 for v in folds.values())
    # every prompt's real image and generated images were there to be kept together
    assert all(v == set(BASE_LABELS) for v in labels.values())


def test_degraded_rows_are_the_test_rows_degraded(built, raw_dir):
    repo, _ = built
    raw = _raw_images(raw_dir)
    for name in iab.DEGRADATIONS:
        n = 0
        for f in sorted((repo / "degraded" / name).rglob("*.parquet")):
            t = pq.read_table(f)
            for r, data in zip(t.to_pylist(), shards.image_bytes_column(t)):
                assert iab.fold_of(r["prompt_id"]) == "test"
                source = raw[(r["generator"], r["prompt_id"], r["image_index"])]
                assert data == iab.degrade(source, name)
                assert r["format"] == iab.DEGRADATIONS[name].output_format
                assert r["sha256"] == iab.sha256_hex(data)
                n += 1
        assert n == sum(1 for k in raw if iab.fold_of(k[1]) == "test")


def test_building_twice_gives_byte_identical_files(raw_dir, built, tmp_path):
    again = build([raw_dir], tmp_path / "again", progress=False, num_proc=2)
    assert tree_files(again.out) == tree_files(built[0])


def test_adding_a_generator_moves_no_existing_row(raw_dir, built, tmp_path):
    extra = tmp_path / "extra"
    write_demo_raw(extra, labels=("SDXL",), per_fold=SMALL)
    bigger = build([raw_dir, extra], tmp_path / "bigger", progress=False)
    before, after = tree_files(built[0]), tree_files(bigger.out)
    shard_files = [f for f in before if f.endswith(".parquet")]
    assert all(after.get(f) == before[f] for f in shard_files)
    assert any("SDXL-" in f for f in after)
    assert bigger.rows == built[1].rows + len(iab.SEMANTICS) * sum(SMALL.values())


def _assert_nothing_written(tmp_path, out):
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


@pytest.mark.parametrize("bad,message", [
    ({"generator": "SD9"}, r"unknown generator 'SD9'; valid generators: real, 4o"),
    ({"semantic": "horse"}, r"unknown semantic 'horse'; valid semantics: cat, dog"),
    ({"label": 3}, r"label 3 does not match generator 'SD1_5'"),
    ({"superclass": "Scene"}, r"superclass 'Scene' does not match semantic 'cat'"),
    ({"prompt_id": "dog/1"}, r"prompt_id 'dog/1' must start with its semantic"),
    ({"sha256": None}, r"column 'sha256' is null"),
    # value domains (imageattributionbench.row_problem)
    ({"prompt_id": "cat/../../etc"}, r"has an empty, '\.' or '\.\.' part"),
    ({"prompt_id": "cat/src:.."}, r"has an empty, '\.' or '\.\.' part"),
    ({"prompt_id": "cat/1\nx"}, r"holds a control character"),
    ({"prompt_id": "cat/1\x00"}, r"holds a control character"),
    ({"prompt_id": "cat/" + "9" * 1001}, r"characters long \(at most 1000\)"),
    ({"image_index": -1}, r"'image_index' is -1; it must be at least 0"),
    ({"seed": -5}, r"'seed' is -5; it must be at least 0"),
    ({"width": 0}, r"'width' is 0; it must be at least 1"),
    ({"num_inference_steps": 0}, r"'num_inference_steps' is 0"),
    ({"guidance_scale": float("nan")}, r"guidance_scale nan must be a finite number"),
    ({"format": "png"}, r"format 'png' is not an image format name"),
    ({"sha256": "ABC"}, r"sha256 'ABC' is not 64 lowercase hexadecimal digits"),
    ({"model_id": "org/m\nx"}, r"column 'model_id' holds a control character"),
    ({"prompt": "a cat\x00"}, r"prompt holds a control character"),
])
def test_bad_rows_are_refused_naming_file_and_row(tmp_path, bad, message):
    raw = tmp_path / "raw"
    bad_row = row(index=1, seed=1)
    bad_row.update(bad)
    write_rows(raw / "a.parquet", [row(index=0), bad_row])
    out = tmp_path / "out"
    with pytest.raises(iab.BenchmarkError, match=message) as e:
        build([raw], out, progress=False)
    assert "a.parquet, row 1" in str(e.value)
    _assert_nothing_written(tmp_path, out)


def test_missing_column_is_refused(tmp_path):
    raw = tmp_path / "raw"
    table = shards.rows_to_table([row()]).drop(["seed", "source"])
    raw.mkdir()
    pq.write_table(table, raw / "a.parquet")
    with pytest.raises(iab.BenchmarkError, match=r"missing column\(s\) seed, source"):
        build([raw], tmp_path / "out", progress=False)
    _assert_nothing_written(tmp_path, tmp_path / "out")


def test_undecodable_image_is_reported_with_file_and_row(tmp_path):
    raw = tmp_path / "raw"
    broken = png(7)[:-40]  # truncated PNG, with a matching sha256 so only decoding catches it
    bad = row(index=2, seed=7)
    bad.update(image={"bytes": broken, "path": None}, sha256=iab.sha256_hex(broken))
    write_rows(raw / "gen" / "b.parquet", [row(index=0), row(index=1, seed=1), bad])
    # a second label whose group is written before the bad one fails: still nothing written
    write_rows(raw / "gen" / "a.parquet", [row(label="FLUX", index=0, seed=9)])
    with pytest.raises(iab.BenchmarkError, match=r"b\.parquet, row 2: undecodable image"):
        build([raw], tmp_path / "out", progress=False)
    _assert_nothing_written(tmp_path, tmp_path / "out")


def test_altered_bytes_are_refused(tmp_path):
    raw = tmp_path / "raw"
    write_rows(raw / "a.parquet", [row(sha256="0" * 64)])
    with pytest.raises(iab.BenchmarkError, match="do not match the row's sha256"):
        build([raw], tmp_path / "out", progress=False)


def test_truncated_parquet_is_refused(tmp_path):
    raw = tmp_path / "raw"
    path = write_rows(raw / "a.parquet", [row()])
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(iab.BenchmarkError, match="not a readable parquet file.*truncated"):
        build([raw], tmp_path / "out", progress=False)


def test_empty_input_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(iab.BenchmarkError, match="no raw shards found"):
        build([tmp_path / "empty"], tmp_path / "out", progress=False)
    write_rows(tmp_path / "raw" / "a.parquet", [])
    with pytest.raises(iab.BenchmarkError, match="hold no rows"):
        build([tmp_path / "raw"], tmp_path / "out", progress=False)
    with pytest.raises(iab.BenchmarkError, match="does not exist"):
        build([tmp_path / "nowhere"], tmp_path / "out", progress=False)
    _assert_nothing_written(tmp_path, tmp_path / "out")


def test_duplicates(tmp_path):
    raw = tmp_path / "raw"
    write_rows(raw / "a.parquet", [row(index=i, seed=i) for i in range(12)])
    write_rows(raw / "b.parquet", [row(index=3, seed=3)])  # a rerun wrote the same row again
    report = build([raw], tmp_path / "out", progress=False)
    assert report.duplicates_dropped == 1 and report.rows == 12
    write_rows(raw / "c.parquet", [row(index=4, seed=99)])  # same identity, other bytes
    with pytest.raises(iab.BenchmarkError, match="with different image bytes"):
        build([raw], tmp_path / "out2", progress=False)


def test_output_folder_holding_another_build(raw_dir, built, tmp_path):
    out = tmp_path / "repo"
    shutil.copytree(built[0], out)
    (out / ".git").mkdir()  # a clone of the Hub repo keeps its .git
    with pytest.raises(iab.BenchmarkError, match="already holds a build.*--overwrite"):
        build([raw_dir], out, progress=False)
    extra = tmp_path / "extra"
    write_demo_raw(extra, labels=("SDXL",), semantics=("cat",), per_fold=SMALL)
    report = build([raw_dir, extra], out, overwrite=True, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows"] == report.rows == built[1].rows + sum(SMALL.values())
    assert (out / ".git").is_dir()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".repo.")]


def test_output_folder_with_foreign_files_is_refused(raw_dir, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(iab.BenchmarkError, match=r"not a benchmark build \(notes.txt\)"):
        build([raw_dir], out, overwrite=True, progress=False)
    assert (out / "notes.txt").read_text() == "keep me"


def test_configs_with_an_empty_split_are_left_out(tmp_path):
    raw = tmp_path / "raw"
    # one subclass only: no semantic_disjoint config has a non-empty "test" split
    write_rows(raw / "a.parquet", [row(index=i, seed=i) for i in range(40)])
    report = build([raw], tmp_path / "out", progress=False)
    assert "standard" in report.configs and "degraded" in report.configs
    assert report.skipped_configs["semantic_disjoint"] == "no rows for split(s) test"
    assert "semantic_disjoint_dog" in report.skipped_configs


def test_damaged_parquet_data_is_refused(tmp_path):
    raw = tmp_path / "raw"
    path = write_rows(raw / "a.parquet", [row(index=i, seed=i) for i in range(3)])
    data = bytearray(path.read_bytes())
    at = data.index(b"AnimalFace")  # inside the superclass column's pages
    data[at:at + 4] = b"\xa0\xa0\xa0\xa0"
    path.write_bytes(bytes(data))
    with pytest.raises(iab.BenchmarkError, match=r"a\.parquet: damaged parquet data"):
        build([raw], tmp_path / "out", progress=False)
    _assert_nothing_written(tmp_path, tmp_path / "out")


def test_a_column_of_the_wrong_type_names_shard_and_column(tmp_path):
    import pyarrow as pa

    raw = tmp_path / "raw"
    table = shards.rows_to_table([row(index=0), row(index=1, seed=1)])
    at = table.schema.get_field_index("image_index")
    table = table.set_column(at, "image_index", pa.array(["0", "1"]))
    raw.mkdir()
    pq.write_table(table, raw / "a.parquet")
    with pytest.raises(iab.BenchmarkError, match=r"a\.parquet: column 'image_index' has type "
                                                 r"string, the row schema says int32"):
        build([raw], tmp_path / "out", progress=False)
    _assert_nothing_written(tmp_path, tmp_path / "out")


def _huge_row(data: bytes, honest: bool) -> dict:
    import struct

    w, h = struct.unpack(">II", data[16:24]) if honest else (16, 16)  # IHDR's size
    return row(index=1, seed=1, image={"bytes": data, "path": None},
               sha256=iab.sha256_hex(data), width=w, height=h)


@pytest.mark.parametrize("size, valid", [((30000, 30000), False), ((11000, 10000), True)])
@pytest.mark.parametrize("honest", [True, False])  # the row tells the size, or lies
def test_a_decompression_bomb_or_huge_image_is_refused(tmp_path, size, valid, honest):
    raw = tmp_path / "raw"
    data = huge_png(*size, valid=valid)
    write_rows(raw / "a.parquet", [row(index=0), _huge_row(data, honest)])
    with pytest.raises(iab.BenchmarkError, match=r"a\.parquet, row 1: image too large .*"
                                                 r"pixel limit is 50,000,000.*--max-pixels"):
        build([raw], tmp_path / "out", progress=False)
    _assert_nothing_written(tmp_path, tmp_path / "out")


def test_the_pixel_limit_can_be_changed(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    write_rows(raw / "a.parquet", [row(index=i, seed=i) for i in range(12)])  # 16x16 images
    with pytest.raises(iab.BenchmarkError, match=r"row 0: image too large .*limit is 255"):
        build([raw], tmp_path / "a", progress=False, max_pixels=255)
    assert build([raw], tmp_path / "b", progress=False, max_pixels=256).rows == 12
    monkeypatch.setenv("IAB_MAX_PIXELS", "100")
    with pytest.raises(iab.BenchmarkError, match=r"limit is 100 "):
        build([raw], tmp_path / "c", progress=False)
