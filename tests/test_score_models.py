"""harness/run.py --method score refuses a model whose head does not fit its labels."""

from __future__ import annotations

import json

import pytest

import imageattributionbench as iab
from harness import models
from harness import run as harness_run
from harness.tiny_model import tiny_classifier


def _relabel(folder, labels):
    """Rewrite the saved config's label maps (the weights stay as saved)."""
    cfg = json.loads((folder / "config.json").read_text())
    cfg["id2label"] = {str(i): n for i, n in enumerate(labels)}
    cfg["label2id"] = {n: i for i, n in enumerate(labels)}
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def _score(folder, tmp_path):
    harness_run.main(harness_run.parse_args(
        ["--model", str(folder), "--method", "score", "--dataset", str(tmp_path / "unused"),
         "--output-dir", str(tmp_path / "out")]))


def test_a_head_whose_size_differs_from_its_config(tmp_path):
    model = _relabel(tiny_classifier(tmp_path / "m"), list(iab.LABELS)[:20])  # head has 31
    with pytest.raises(iab.BenchmarkError, match=r"weights do not match its config \("
                                                 r"classifier\.1\.bias: checkpoint \(31,\), "
                                                 r"config \(20,\).*20 labels"):
        _score(model, tmp_path)


def test_duplicated_label_names_are_refused_naming_them(tmp_path):
    labels = list(iab.LABELS)[:31]
    labels[5] = labels[2]  # two outputs called the same: one would be dropped
    labels[30] = labels[2]
    labels[9] = labels[7]
    model = _relabel(tiny_classifier(tmp_path / "m"), labels)
    with pytest.raises(iab.BenchmarkError, match=(
            rf"one name to several outputs: '{labels[2]}' \(outputs 2, 5, 30\); "
            rf"'{labels[7]}' \(outputs 7, 9\)")):
        _score(model, tmp_path)


def test_a_checkpoint_without_its_head(tmp_path):
    from safetensors.torch import load_file, save_file

    folder = tiny_classifier(tmp_path / "m")
    weights = load_file(folder / "model.safetensors")
    save_file({k: v for k, v in weights.items() if not k.startswith("classifier.")},
              folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(iab.BenchmarkError, match=r"lacks classifier\.1\.bias, "
                                                 r"classifier\.1\.weight; --method score needs"):
        models.build("score", str(folder), None, 64)


def test_a_fitting_model_loads(tmp_path):
    model = models.build("score", str(tiny_classifier(tmp_path / "m")), None, 64)
    assert model.index.tolist() == list(range(len(iab.LABELS)))
