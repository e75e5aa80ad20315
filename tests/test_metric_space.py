"""The metric module works as evaluate.evaluator and evaluate.combine call it (predictions and
references only), and its folder is a Hub metric Space: the template's files and front matter."""

from __future__ import annotations

import re
import runpy
import tomllib
from pathlib import Path

import pytest

from harness.metrics import METRIC_PATH, load_metric

ROOT = Path(__file__).resolve().parents[1]
# hub-docs spaces-config-reference.md, plus the keys of evaluate's module template
SPACE_KEYS = {"title", "emoji", "colorFrom", "colorTo", "sdk", "python_version", "sdk_version",
              "suggested_hardware", "suggested_storage", "app_file", "app_port", "base_path",
              "fullWidth", "models", "datasets", "tags", "pinned", "custom_headers",
              "short_description", "license", "description"}


@pytest.fixture(scope="module")
def metric():
    return load_metric()


def test_predictions_and_references_are_enough(metric):
    out = metric.compute(predictions=[0, 1, 2, 2], references=[0, 1, 1, 2])
    assert out["accuracy"] == 0.75 and out["n_samples"] == 4
    assert out["labels"] == ["0", "1", "2"] and out["confusion_matrix"][1] == [0, 1, 1]
    assert out["macro_auroc"] is None and out["mean_ap"] is None  # need scores
    assert out["per_semantic_accuracy"] is None  # needs semantics
    with_scores = metric.compute(predictions=[0, 1], references=[0, 1],
                                 scores=[[0.8, 0.2], [0.3, 0.7]], labels=["real", "SD1_5"])
    assert with_scores["macro_auroc"] == 1.0 and with_scores["labels"] == ["real", "SD1_5"]
    with pytest.raises(ValueError, match=r"scores\[1\] is missing"):
        metric.compute(predictions=[0, 1], references=[0, 1], scores=[[0.8, 0.2], []])


def test_combine_and_batches(metric):
    import evaluate

    combined = evaluate.combine([metric]).compute(predictions=[0, 1, 1], references=[0, 1, 0])
    assert combined["accuracy"] == pytest.approx(2 / 3)
    metric.add_batch(predictions=[0, 1], references=[0, 0], scores=[[0.6, 0.4], [0.3, 0.7]])
    metric.add_batch(predictions=[1], references=[1], scores=[[0.2, 0.8]])
    out = metric.compute(labels=["a", "b"])
    assert out["accuracy"] == pytest.approx(2 / 3) and out["macro_auroc"] == 1.0


def _front_matter(path: Path) -> dict:
    from huggingface_hub import SpaceCard

    return SpaceCard.load(path).data.to_dict()


def test_the_folder_is_a_hub_metric_space():
    files = {p.name for p in METRIC_PATH.iterdir() if p.is_file()}
    assert {"README.md", "app.py", "requirements.txt", "attribution_metrics.py"} <= files
    meta = _front_matter(METRIC_PATH / "README.md")
    assert set(meta) <= SPACE_KEYS, set(meta) - SPACE_KEYS
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    assert {"evaluate", "metric"} <= set(meta["tags"]) and meta["pinned"] is False
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["leaderboard"]
    assert f"gradio=={meta['sdk_version']}" in pins  # the Gradio the app is tested with
    body = (METRIC_PATH / "README.md").read_text()
    for heading in ("## Metric Description", "## How to Use", "### Inputs", "### Output Values",
                    "### Examples", "## Limitations and Bias", "## Citation"):
        assert heading in body, heading
    requirements = (METRIC_PATH / "requirements.txt").read_text()
    assert re.search(r"^evaluate\b", requirements, re.M)


def test_the_space_app_scores_its_form():
    import pandas as pd

    app = runpy.run_path(str(METRIC_PATH / "app.py"), run_name="space")  # not __main__: no launch
    table = pd.DataFrame([[0, 0], [1, 1], [1, 0], ["", ""]], columns=["predictions",
                                                                      "references"])
    assert app["score"](table)["accuracy"] == pytest.approx(2 / 3)
    assert app["demo"].fns  # a built Gradio interface
