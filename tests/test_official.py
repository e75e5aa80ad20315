"""The official variants and their converter (issue 12): the official code's key names and
shapes (recorded from it: tests/fixtures/official_arch.json.gz, benchmarks/official_parity.py
--record-fixture), round trips of official-format checkpoints, refusals, the label order, and
its test pipelines' pixels (torchvision's geometry)."""

import gzip
import hashlib
import importlib.util
import io
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForImageClassification

import imageattributionbench as iab
import methods  # noqa: F401
from harness.data import crop
from harness.models import Scored, label_index
from harness.official_inputs import patchcraft_views, texture_diversity
from methods.convert_official import convert, fitted, main, strip_wrappers
from methods.official import (BY_OFFICIAL_NAME, OFFICIAL, OFFICIAL_LABELS, SPLITS,
                              official_config)
from methods.official.layers import unpack_views
from methods.official.simple import torch_dct_2d
from official_helpers import official_file, tiny_official_state

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = json.loads(gzip.open(ROOT / "tests/fixtures/official_arch.json.gz", "rt").read())
METHODS = list(OFFICIAL)


def _parity_images():
    spec = importlib.util.spec_from_file_location("parity", ROOT / "benchmarks/official_parity.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [module.image_array(i) for i in range(len(module.IMAGES))]


def _png(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _digest(a) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def test_thirteen_methods_and_the_official_label_order():
    assert len(OFFICIAL) == 13 and set(BY_OFFICIAL_NAME) == set(FIXTURE["state_dicts"])
    assert list(OFFICIAL_LABELS) == FIXTURE["labels"]  # dataset.py model_class_to_label
    # mapped onto our label ids by name: 4o (official 0) is our 1, real (official 22) our 0
    index = label_index(dict(enumerate(OFFICIAL_LABELS)))
    assert index[0] == iab.LABEL_IDS["4o"] and index[22] == iab.LABEL_IDS["real"]
    logits = torch.zeros(1, 23)
    logits[0, 22] = 5.0
    scored = Scored(lambda pixel_values: type("O", (), {"logits": logits}), index)
    assert scored(torch.zeros(1)).argmax().item() == iab.LABEL_IDS["real"]


@pytest.mark.parametrize("method", METHODS)
def test_official_networks_have_the_official_names_and_shapes_at_full_size(method):
    """Every key of the official attributor's state dict (recorded from its code, full size)
    maps onto our official network with its shape, or is a training-only part; nothing of
    ours is left without a tensor. Meta tensors: no memory."""
    recorded = FIXTURE["state_dicts"][OFFICIAL[method].name]
    state = {k: torch.empty(shape, device="meta") for k, shape in recorded.items()}
    if method == "clip-lr":  # its head: the sklearn arrays the parity script exports
        state.update({"scaler.mean_": torch.empty(1024, device="meta"),
                      "scaler.scale_": torch.empty(1024, device="meta"),
                      "linear_probe.coef_": torch.empty(23, 1024, device="meta"),
                      "linear_probe.intercept_": torch.empty(23, device="meta"),
                      "linear_probe.classes_": torch.arange(23)})
    model, mapped, unused = fitted(method, state, official_config(method))
    assert len(mapped) == len(model.state_dict())
    assert all(k.startswith(OFFICIAL[method].unused) or k.endswith("position_ids")
               for k in unused)


@pytest.mark.parametrize("method", METHODS)
def test_round_trip_of_an_official_checkpoint(method, tmp_path):
    path = official_file(tmp_path / "ckpt", method, "split2")
    out = convert(OFFICIAL[method].name, path, tmp_path / "out", tiny=True)
    config = json.loads((out / "config.json").read_text())
    source = config["converted_from"]
    assert source["file"] == path.name and source["split"] == "split2"
    assert source["trained_on"] == SPLITS["split2"] == "semantic_disjoint_bedroom"
    assert source["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert source["variant"] == config["variant"] == "official" and source["epoch"] == 10
    assert config["id2label"]["0"] == "4o" and config["input_policy"] == OFFICIAL[method].policy
    assert (out / "model.safetensors").exists() and (out / "preprocessor_config.json").exists()
    model = AutoModelForImageClassification.from_pretrained(out).eval()
    ours = model.state_dict()
    state = tiny_official_state(method)
    if method == "clip-lr":
        from methods.official.clip_lr import fold_logistic_regression

        w, b = fold_logistic_regression(*(state[k] for k in (
            "scaler.mean_", "scaler.scale_", "linear_probe.coef_", "linear_probe.intercept_",
            "linear_probe.classes_")), num_labels=23)
        torch.testing.assert_close(ours["official.head.weight"], w)
        torch.testing.assert_close(ours["official.head.bias"], b)
    if method == "resnet50":
        from methods.official.resnet50 import rename

        pairs = {rename(k): v for k, v in state.items()}
    elif method == "clip-lr":
        pairs = {"official." + k.replace("clip_model.", "clip.", 1): v for k, v in state.items()}
    else:
        pairs = {"official." + strip_wrappers(k): v for k, v in state.items()}
    checked = 0
    for k, v in pairs.items():
        if k in ours:
            assert torch.equal(ours[k], v.float() if v.is_floating_point() else v), k
            checked += 1
    assert checked == len([k for k in ours if not k.startswith("official.head.")])
    side = model.config.crop_size
    with torch.no_grad():
        logits = model(pixel_values=torch.rand(2, 3, side, side)).logits
    assert logits.shape == (2, 23) and torch.isfinite(logits).all()


def test_refusals(tmp_path):
    good = official_file(tmp_path / "ok", "dct-cnn")
    state = tiny_official_state("dct-cnn")
    cases = {
        "missing": {k: v for k, v in state.items() if "conv2" not in k},
        "unexpected": {**state, "feature_extractor.conv9.weight": torch.zeros(1)},
        "shape": {**state, "feature_extractor.conv1.weight": torch.zeros(3, 3, 5, 5)},
    }
    messages = {"missing": "keys it needs missing .*conv2",
                "unexpected": "keys it does not have .*conv9", "shape": "another shape"}
    for case, bad in cases.items():
        path = tmp_path / case / "dct_default.pth"
        path.parent.mkdir()
        torch.save(bad, path)
        with pytest.raises(iab.BenchmarkError, match=messages[case]):
            convert("dct", path, tmp_path / "out", tiny=True)
    # a full-size network does not take a tiny checkpoint
    with pytest.raises(iab.BenchmarkError, match="another shape"):
        convert("dct", good, tmp_path / "out")
    # pickled objects are never unpickled
    evil = tmp_path / "evil" / "dct_default.pth"
    evil.parent.mkdir()
    evil.write_bytes(pickle.dumps({"model_state_dict": state, "x": Path("/")}))
    with pytest.raises(iab.BenchmarkError, match="weights_only"):
        convert("dct", evil, tmp_path / "out", tiny=True)
    renamed = tmp_path / "mine.pth"
    renamed.write_bytes(good.read_bytes())
    with pytest.raises(iab.BenchmarkError, match="cannot tell which split.*--split"):
        convert("dct", renamed, tmp_path / "out", tiny=True)
    assert convert("dct", renamed, tmp_path / "out", split="split3", tiny=True)
    with pytest.raises(iab.BenchmarkError, match="softmax once"):
        convert("dct", good, tmp_path / "out", tiny=True, double_softmax=True)
    with pytest.raises(iab.BenchmarkError, match="official names: .*resnet50"):
        convert("xception", good, tmp_path / "out")
    no_head = {k: v for k, v in tiny_official_state("clip-lr").items()
               if not k.startswith(("scaler", "linear_probe"))}
    path = tmp_path / "clip" / "clip_lr_default.pth"
    path.parent.mkdir()
    torch.save({"model_state_dict": no_head}, path)
    with pytest.raises(iab.BenchmarkError, match="CLIP's weights only.*--preset clip-lr"):
        convert("clip_lr", path, tmp_path / "out", tiny=True)


def test_command_line(tmp_path, capsys):
    path = official_file(tmp_path, "dna-det", "split1")
    assert main(["dna", str(path), str(tmp_path / "out"), "--tiny", "--double-softmax"]) == 0
    assert "trained on semantic_disjoint" in capsys.readouterr().out
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["official"]["double_softmax"] is True
    model = AutoModelForImageClassification.from_pretrained(tmp_path / "out").eval()
    with torch.no_grad():  # its output: the probabilities (the official evaluation softmaxes)
        probs = model(pixel_values=torch.rand(2, 3, 64, 64)).logits
    torch.testing.assert_close(probs.sum(1), torch.ones(2))


def test_official_test_pipelines_pixel_for_pixel():
    """Our input policies give the official loaders' pixels (torchvision's Resize/CenterCrop
    geometry, DNA's 512 resize, PatchCraft's reconstructions, CLIP's bicubic view),
    digests recorded from the official code."""
    for i, arr in enumerate(_parity_images()):
        want = FIXTURE["pipelines"][f"img{i}"]
        data = _png(arr)
        assert _digest(crop(data, "paper_resnet", 224)) == want["resnet"], i
        assert _digest(crop(data, "paper_center", 256)) == want["center256"], i
        assert _digest(crop(data, "paper_center", 512)) == want["dna512"], i
        rich, poor = patchcraft_views(arr)
        for view, name in ((rich, "rich"), (poor, "poor")):  # tile by tile, their diversities
            tiles = view.reshape(8, 32, 8, 32, 3).transpose(0, 2, 1, 3, 4).reshape(64, 32, 32, 3)
            assert texture_diversity(tiles).tolist() == want[f"{name}_tiles"], (i, name)
        # equal diversities aside (the official order of ties is numpy's unstable sort's)
        assert _digest(rich) == want["rich"], i
        packed = torch.as_tensor(crop(data, "defl_views", 462)).permute(2, 0, 1)[None]
        image, clip = unpack_views(packed.contiguous(), (256, 384))
        assert _digest(image[0].permute(1, 2, 0).numpy()) == want["center256"], i
        assert _digest(clip[0].permute(1, 2, 0).numpy()) == want["clip384"], i
        packed = torch.as_tensor(crop(data, "patchcraft_views", 363)).permute(2, 0, 1)[None]
        views = unpack_views(packed.contiguous(), (256, 256))
        assert [_digest(v[0].permute(1, 2, 0).numpy()) for v in views] == [_digest(rich),
                                                                             _digest(poor)]


def test_resize_truncates_as_torchvision():
    from PIL import Image

    from harness.official_inputs import tv_center_crop, tv_resize

    img = tv_resize(Image.new("RGB", (640, 427)), 256, Image.Resampling.BILINEAR)
    assert img.size == (383, 256)  # int(256 * 640 / 427) = 383, where rounding gives 384
    assert tv_center_crop(img, 224).size == (224, 224)
    assert tv_resize(Image.new("RGB", (300, 256)), 256, 0).size == (300, 256)


def test_official_constants_match_the_official_constructors():
    from methods.official.hifi_net import GaussianSmoothing

    for key, kernel in FIXTURE["constants"]["hifi_net"].items():
        sigma = int(key.split("scale-")[1].split(".")[0])
        torch.testing.assert_close(GaussianSmoothing(4, 3, sigma).weight[0, 0],
                                   torch.tensor(kernel))
    filters = FIXTURE["constants"]["patchcraft"]
    assert sorted(filters) == [f"filter.filter_{c}.weight" for c in "abcdefg"]
    assert [len(v) for v in filters.values()] == [8, 8, 4, 4, 4, 1, 1]


def test_pose_inference_is_the_unnormalised_dct():
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    n = torch.arange(8, dtype=torch.float64)
    basis = 2 * torch.cos(torch.pi * n[:, None] * (2 * n[None, :] + 1) / 16)  # X_k = 2 sum ...
    torch.testing.assert_close(torch_dct_2d(x), basis @ x @ basis.T)


def test_patch_and_repmix_scores():
    config = official_config("patch-forensics", tiny=True)
    model = AutoModelForImageClassification.from_config(config).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        scores = model(pixel_values=x).logits
        maps = torch.softmax(model.official.net_D(x), dim=1)
    torch.testing.assert_close(scores.exp(), maps.mean(dim=(2, 3)))  # mean patch softmax
    for double in (False, True):
        config = official_config("repmix", tiny=True, double_softmax=double)
        torch.manual_seed(0)
        model = AutoModelForImageClassification.from_config(config).eval()
        net, x = model.official, torch.rand(2, 3, 224, 224)
        with torch.no_grad():
            features = net.backbone(x)
            out = net.attribution(features)
            p = torch.softmax(net.detection(features), dim=1)
            scores = model(pixel_values=x).logits
        # its label 0 (4o) by detection class 0 (real: its y_det is 1 for generated images)
        gated = torch.cat([out[:, :1] * p[:, :1], out[:, 1:] * p[:, 1:]], dim=1)
        torch.testing.assert_close(scores, torch.softmax(gated, 1) if double else gated)


def test_patchcraft_views_rank_and_tile_the_patches():
    arr = np.zeros((64, 96, 3), np.uint8)  # 2 x 3 patches of 32 px, distinct diversities
    checker = (np.indices((32, 32)).sum(0) % 2)[..., None]
    amplitude = {(0, 0): 10, (0, 1): 50, (0, 2): 0, (1, 0): 30, (1, 1): 20, (1, 2): 40}
    for (r, c), a in amplitude.items():
        arr[r * 32:(r + 1) * 32, c * 32:(c + 1) * 32] = checker * a
    rich, poor = patchcraft_views(arr)
    assert rich.shape == poor.shape == (256, 256, 3)

    def patch(r, c):
        return arr[r * 32:(r + 1) * 32, c * 32:(c + 1) * 32]

    # a third of 6 patches each: rich = 50, 40 (richest first), poor = 0, 10; tiled in turn
    np.testing.assert_array_equal(rich[:32, :32], patch(0, 1))
    np.testing.assert_array_equal(rich[:32, 32:64], patch(1, 2))
    np.testing.assert_array_equal(rich[32:64, :32], patch(0, 1))
    np.testing.assert_array_equal(poor[:32, :32], patch(0, 2))
    np.testing.assert_array_equal(poor[:32, 32:64], patch(0, 0))
    blank = patchcraft_views(np.zeros((20, 20, 3), np.uint8))
    assert all((v == 0).all() and v.shape == (256, 256, 3) for v in blank)


def test_paper_table_from_a_folder_of_official_checkpoints(built, tmp_path):
    """The release's layout in, the paper's table out: its columns, each checkpoint scored
    on its own split (the default one on the clean and degraded tests, split k on semantic
    task k); a rerun reuses the conversions and runs."""
    from harness import paper_table

    repo, _ = built
    ckpt = tmp_path / "ckpt"
    for i, split in enumerate(SPLITS):
        official_file(ckpt, "dct-cnn", split, seed=i)
    out = tmp_path / "table"
    argv = ["--dataset", str(repo), "--out", str(out), "--official-checkpoints", str(ckpt),
            "--tiny", "--batch-size", "16", "--protocol", "paper"]  # a build without the
    assert paper_table.main(paper_table.parse_args(argv)) == 0    # paper split
    lines = (out / paper_table.TABLE_MD).read_text().splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    labels = [paper_table.column_label(c[0]) for c in paper_table.columns()]
    sep = paper_table.SEMANTIC_FROM  # an empty column between degradations and semantic tasks
    assert header == ["method"] + labels[:sep] + [""] + labels[sep:]
    (row,) = [r for r in lines[2:] if r.startswith("|")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    del cells[1 + sep]
    assert cells[0] == "dct-cnn" and all(c not in ("-", "failed", "") for c in cells[1:])
    merged = json.loads((out / "dct-cnn" / "results_official.json").read_text())
    assert set(merged["sources"]) == set(SPLITS)
    assert merged["sources"]["split3"]["trained_on"] == "semantic_disjoint_ffhq"
    runs = {p.parent.name: json.loads(p.read_text()) for p in out.glob("dct-cnn/*/results_*.json")}
    assert sorted(runs) == sorted(SPLITS)
    assert set(runs["default"]["protocols"]) == {"standard", "degraded"}
    assert set(runs["split2"]["protocols"]) == {"semantic_disjoint_bedroom"}
    assert runs["split1"]["run_config"]["preprocess"]["policy"] == "paper_center"
    assert paper_table.main(paper_table.parse_args(argv)) == 0  # resumed: nothing reran
    assert len(list(out.glob("dct-cnn/*/results_*.json"))) == 4


def test_the_official_table_uses_the_papers_own_split_when_the_harness_has_it(monkeypatch):
    """paper_exact by default, each checkpoint scored on its own job alone (the semantic
    tasks as single protocols), the columns of that split (no seen test there)."""
    from harness import paper_official, paper_table

    assert paper_official.table_protocol() == "paper_exact"
    jobs = paper_official.official_jobs("paper_exact")
    assert jobs["split2"] == ("paper_exact_semantic_bedroom", ("paper_exact_semantic_bedroom",))
    assert jobs["default"][1] == ("paper_exact", "paper_exact_degraded")
    assert [c[0] for c in paper_table.columns("paper_exact")][-3:] == [
        "cat->others", "bedroom->others", "FFHQ->others"]
    monkeypatch.setattr("harness.run.PROTOCOLS", ("standard", "paper"))
    assert paper_official.table_protocol() == "paper"


def test_release_folder_rows_in_the_papers_order(tmp_path):
    from harness import paper_official

    for method, split in (("ssp", "default"), ("resnet50", "split2"), ("dct-cnn", "split1")):
        name = OFFICIAL[method].name
        (tmp_path / name).mkdir(exist_ok=True)
        (tmp_path / name / f"{name}_{split}.pth").write_bytes(b"")
    found = paper_official.find_checkpoints(tmp_path)
    assert list(found) == ["resnet50", "dct-cnn", "ssp"]
    assert list(found["resnet50"]) == ["split2"]
    (tmp_path / "dct" / "notes.pth").write_bytes(b"")
    with pytest.raises(iab.BenchmarkError, match="not one of the release's files"):
        paper_official.find_checkpoints(tmp_path)
    with pytest.raises(iab.BenchmarkError, match="not a folder"):
        paper_official.find_checkpoints(tmp_path / "nothing")
