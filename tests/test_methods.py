"""The paper's methods as transformers models (issue 6, first method: DCT spectrum + CNN)."""

import json

import numpy as np
import pytest
import torch
import yaml
from scipy.fft import dctn
from transformers import AutoConfig, AutoModelForImageClassification

import imageattributionbench as iab
import methods  # noqa: F401  (registers)
from harness import run as harness_run
from methods.dct import DCTConfig, DCTForImageClassification, log_dct_spectrum
from methods.init import init_checkpoint


def test_forward_shapes_and_labels():
    model = DCTForImageClassification(DCTConfig()).eval()
    out = model(torch.rand(3, 3, 48, 40))
    assert out.logits.shape == (3, len(iab.LABELS))
    assert model.config.id2label[0] == "real" and model.config.num_labels == len(iab.LABELS)
    assert "Frank et al." in model.config.reference


def test_preprocessing_is_the_log_magnitude_dct_of_the_native_image():
    x = torch.randn(2, 3, 37, 64, dtype=torch.float64)
    ref = np.log(np.abs(dctn(x.numpy(), type=2, norm="ortho", axes=(-2, -1))) + 1e-6)
    np.testing.assert_allclose(log_dct_spectrum(x, 1e-6).numpy(), ref, atol=1e-8)
    assert DCTConfig().input_policy == "native_crop"


def test_save_load_round_trip_through_the_auto_classes(tmp_path):
    model = DCTForImageClassification(DCTConfig()).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert isinstance(AutoConfig.from_pretrained(tmp_path), DCTConfig)
    loaded = AutoModelForImageClassification.from_pretrained(tmp_path).eval()
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(loaded(x).logits, model(x).logits)


def test_trains_on_the_tiny_benchmark_and_its_card_has_model_index(tiny_bench, tmp_path):
    ckpt = init_checkpoint("dct-cnn", tmp_path / "init", size=64)
    out = tmp_path / "out"
    assert harness_run.main(harness_run.parse_args(
        ["--model", str(ckpt), "--method", "finetune", "--protocol", "standard", "--dataset",
         str(tiny_bench), "--epochs", "10", "--batch-size", "16", "--lr", "0.02",
         "--output-dir", str(out)])) == 0
    (path,) = out.glob("results_*.json")
    results = json.loads(path.read_text())
    assert results["protocols"]["standard"]["splits"]["test"]["accuracy"] >= 0.4  # chance 1/4
    card = (out / "README.md").read_text().split("---\n")[1]
    assert yaml.safe_load(card)["model-index"]
    reloaded = AutoModelForImageClassification.from_pretrained(out)
    assert isinstance(reloaded, DCTForImageClassification)


def test_unknown_preset():
    with pytest.raises(iab.BenchmarkError, match="valid presets: dct-cnn"):
        init_checkpoint("patchcraft", "unused")
