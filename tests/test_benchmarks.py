"""The method benchmark scripts run and report every method (their figures are not asserted:
speed lives in benchmarks, not in tests)."""

import json
import subprocess
import sys
from pathlib import Path

import methods

ROOT = Path(__file__).resolve().parents[1]


def test_method_throughput_reports_every_method(tmp_path):
    out = tmp_path / "figures.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "method_throughput.py"),
                    "--tiny", "--steps", "1", "--warmup", "0", "--batch-size", "2",
                    "--json", str(out)], check=True, cwd=tmp_path)
    figures = json.loads(out.read_text())
    assert list(figures["methods"]) == ["resnet50", *methods.METHODS]
    for f in figures["methods"].values():
        assert f["train_images_per_s"] > 0 and f["inference_images_per_s"] > 0
        assert f["parameters"] > 0
    assert figures["methods"]["repmix"]["crop"] == 224  # its paper's resize-and-crop


def test_gpu_harness_smoke_times_the_methods_too(tmp_path):
    out = tmp_path / "figures.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_harness.py"), "--smoke",
                    "--models", "resnet50", "--methods", "dna-det,ssp", "--json", str(out)],
                   check=True, cwd=tmp_path)
    figures = json.loads(out.read_text())
    assert set(figures["methods"]) == {"dna-det", "ssp"}


def test_method_throughput_times_the_official_variants_inference(tmp_path):
    out = tmp_path / "figures.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "method_throughput.py"),
                    "--official", "--tiny", "--methods", "dct-cnn,defl", "--steps", "1",
                    "--warmup", "0", "--batch-size", "2", "--json", str(out)],
                   check=True, cwd=tmp_path)
    figures = json.loads(out.read_text())
    assert figures["official"] and list(figures["methods"]) == ["dct-cnn", "defl"]
    assert figures["methods"]["defl"]["crop"] == 462  # its two packed views
    assert all(f["train_images_per_s"] is None and f["inference_images_per_s"] > 0
               for f in figures["methods"].values())
