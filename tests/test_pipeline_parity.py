"""What the harness evaluates is what a Hub user runs: the `processor` policy is the model's own
AutoImageProcessor, pixel for pixel; the other policies are saved as an image processor that
reproduces them; and `pipeline("image-classification", model=OUT)` on a pushed folder gives
the harness's own predictions on the same images."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

import imageattributionbench as iab
from harness import data
from harness import run as harness_run


def _photo(width: int = 640, height: int = 480, fmt: str = "JPEG") -> bytes:
    """A real photograph (scikit-image's coffee), resized to width x height, as encoded
    bytes."""
    from skimage import data as skdata

    img = Image.fromarray(skdata.coffee()).resize((width, height), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, fmt, quality=90)
    return buf.getvalue()


def _pixels(data_bytes: bytes, policy: str, geo, processor=None) -> np.ndarray:
    u8 = data.crop(data_bytes, policy, geo.size, processor)
    return data.normalize(u8[None], geo).numpy()[0]


def _processor_pixels(processor, data_bytes: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data_bytes)) as im:
        img = im.convert("RGB")
    return processor(images=img, return_tensors="np")["pixel_values"][0]


def _clip_processor():
    from transformers import CLIPImageProcessor

    # openai/clip-vit-base-patch32's preprocessor_config.json
    return CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224,
                                                                        "width": 224},
                              resample=3, image_mean=[0.48145466, 0.4578275, 0.40821073],
                              image_std=[0.26862954, 0.26130258, 0.27577711])


@pytest.mark.parametrize("make", ["clip", "vit"])
@pytest.mark.parametrize("size", [(640, 480), (480, 640), (333, 500)])
def test_processor_policy_is_the_models_own_image_processor(make, size):
    from transformers import ViTImageProcessor

    processor = _clip_processor() if make == "clip" else ViTImageProcessor()
    geo = data.geometry(processor, "processor")
    assert geo.size == 224
    photo = _photo(*size)
    ours = _pixels(photo, "processor", geo, processor)
    theirs = _processor_pixels(processor, photo)
    assert ours.shape == theirs.shape == (3, 224, 224)
    assert np.abs(ours - theirs).max() < 1e-5  # the same pixels (float rounding only)


def test_the_cache_tells_processors_of_the_same_size_apart():
    from transformers import ViTImageProcessor

    assert data.processor_key(_clip_processor(), "processor") != \
        data.processor_key(ViTImageProcessor(), "processor")
    assert data.processor_key(_clip_processor(), "native_crop") == "native_crop"


@pytest.mark.parametrize("policy", ["native_crop", "paper_resnet"])
@pytest.mark.parametrize("size", [(640, 480), (333, 500), (41, 70), (64, 64)])
def test_saved_processor_reproduces_the_policy(policy, size):
    """saved_processor is what a pushed model folder holds: it gives the harness's pixels,
    including zero padding around small images (native_crop)."""
    geo = data.Geometry(64 if policy == "native_crop" else 224, (0.5, 0.4, 0.3),
                        (0.2, 0.25, 0.3))
    saved = data.saved_processor(policy, None, geo)
    photo = _photo(*size, fmt="PNG")
    ours = _pixels(photo, policy, geo)
    theirs = _processor_pixels(saved, photo)
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() < 1e-5


@pytest.fixture(scope="module")
def finetuned_folder(tiny_bench, classifier, tmp_path_factory):
    out = tmp_path_factory.mktemp("pipeline") / "out"
    code = harness_run.main(harness_run.parse_args(
        ["--model", str(classifier), "--method", "finetune", "--protocol", "standard",
         "--dataset", str(tiny_bench), "--epochs", "2", "--batch-size", "16", "--lr", "0.01",
         "--output-dir", str(out)]))
    assert code == 0
    return out


@pytest.mark.parametrize("config, split", [("standard", "test"), ("degraded", "jpeg_q30"),
                                           ("degraded", "down_x4")])
def test_pipeline_on_the_output_folder_gives_the_harness_predictions(
        finetuned_folder, tiny_bench, config, split):
    from datasets import load_dataset
    from transformers import pipeline

    out = finetuned_folder
    assert json.loads((out / "preprocessor_config.json").read_text())["do_resize"] is False
    (samples,) = out.glob(f"samples_{config}_*.parquet")
    rows = {r["sha256"]: r for r in pq.read_table(samples).to_pylist() if r["split"] == split}
    ds = load_dataset(str(tiny_bench), config, split=split)
    classify = pipeline("image-classification", model=str(out))
    outputs = classify(list(ds["image"]), top_k=len(iab.LABELS))
    assert len(outputs) == len(rows) == len(ds)
    worst = 0.0
    for sha, scores in zip(ds["sha256"], outputs):
        harness = rows[sha]
        assert scores[0]["label"] == harness["prediction"]
        by_label = {s["label"]: s["score"] for s in scores}
        probs = np.array([by_label[name] for name in iab.LABELS])
        worst = max(worst, float(np.abs(probs - np.array(harness["probabilities"])).max()))
    assert worst < 1e-4, worst


def test_the_metric_scores_pipeline_labels_like_the_harness(finetuned_folder, tiny_bench):
    """What evaluate.evaluator("image-classification") does (its own call fails on
    transformers 5 with evaluate 0.4.6: it imports TFPreTrainedModel): pipeline labels mapped
    to ids, then compute(predictions=..., references=...) only; evaluate.combine likewise."""
    import evaluate
    from datasets import load_dataset
    from transformers import pipeline

    from harness.metrics import load_metric

    out = finetuned_folder
    results = json.loads(next(out.glob("results_*.json")).read_text())
    ds = load_dataset(str(tiny_bench), "standard", split="test")
    labels = [iab.LABEL_IDS[o[0]["label"]] for o in
              pipeline("image-classification", model=str(out))(list(ds["image"]), top_k=1)]
    metric = load_metric()
    got = metric.compute(predictions=labels, references=ds["label"])
    assert got["accuracy"] == pytest.approx(
        results["protocols"]["standard"]["splits"]["test"]["accuracy"], abs=1e-12)
    assert got["macro_auroc"] is None and got["per_semantic_accuracy"] is None  # not made up
    combined = evaluate.combine([metric]).compute(predictions=labels, references=ds["label"])
    assert combined["accuracy"] == got["accuracy"]
