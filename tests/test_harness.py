"""harness/run.py on a tiny benchmark made by the tiny generators: learning, outputs, equality
across accelerate processes, resume, and bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import imageattributionbench as iab
from harness import run as harness_run
from harness.results_check import validate_results
from harness.tiny_model import tiny_classifier
from helpers import assert_above_chance

ROOT = Path(__file__).resolve().parents[1]
from conftest import TINY_GENERATORS as GENERATORS
from conftest import TINY_FOLDS as FOLDS
from conftest import TINY_SEMANTICS as SEMANTICS


def _tiny_classifier(folder: Path, labels=None) -> Path:
    return tiny_classifier(folder, labels)


def _run(out: Path, *args) -> dict:
    code = harness_run.main(harness_run.parse_args([*args, "--output-dir", str(out)]))
    assert code == 0
    (path,) = sorted(out.glob("results_*.json"))[-1:]
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def finetuned(tiny_bench, classifier, tmp_path_factory):
    out = tmp_path_factory.mktemp("finetuned")
    results = _run(out, "--model", str(classifier), "--method", "finetune", "--protocol",
                   "standard", "--dataset", str(tiny_bench), "--epochs", "4",
                   "--batch-size", "16", "--lr", "0.01")
    return out, results


def test_finetuning_learns_far_above_chance(finetuned):
    _, results = finetuned
    test = results["protocols"]["standard"]["splits"]["test"]
    assert test["n_samples"] == len(GENERATORS) * len(SEMANTICS) * FOLDS["test"]
    assert_above_chance(test["accuracy"], test["n_samples"], chance=1 / 4, alpha=1e-6)
    assert set(results["protocols"]["degraded"]["splits"]) == set(iab.DEGRADATIONS)
    summary = results["protocols"]["degraded"]["summary"]
    assert summary["clean_accuracy"] == test["accuracy"]
    log = results["run_config"]["training"]["standard"]
    best = max(log["epochs"], key=lambda e: e["validation_accuracy"])
    assert log["best_epoch"] == best["epoch"]  # chosen on validation
    assert results["run_config"]["preprocess"]["policy"] == "native_crop"


def test_outputs(finetuned):
    out, results = finetuned
    assert validate_results(results) == []
    (samples,) = out.glob("samples_standard_*.parquet")
    t = pq.read_table(samples)
    assert t.num_rows == results["protocols"]["standard"]["splits"]["test"]["n_samples"]
    assert (out / "README.md").read_text().startswith("---")
    assert list(out.glob("confusion_standard_test.png")) and list(out.glob("*robust*.png"))
    # a local build: no leaderboard entries (tests/test_hub_push.py pushes Hub-dataset runs)
    assert not (out / ".eval_results").exists()
    assert results["dataset"]["local"] is True and results["dataset"]["revision"] is None
    assert (out / "config.json").exists() and (out / "model.safetensors").exists()
    # only the chosen epoch's training state is kept (the others were removed as it went)
    best = results["run_config"]["training"]["standard"]["best_epoch"]
    kept = sorted(p.name for p in (out / "checkpoints" / "standard").glob("epoch_*"))
    assert kept == [f"epoch_{best}"]


def _launch(args: list[str], processes: int, cwd: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1"}
    if processes == 1:
        cmd = [sys.executable, str(ROOT / "harness" / "run.py")]
    else:
        cmd = [str(Path(sys.executable).with_name("accelerate")), "launch", "--multi_gpu",
               "--num_processes", str(processes), "--num_machines", "1", "--mixed_precision",
               "no", "--dynamo_backend", "no", str(ROOT / "harness" / "run.py")]
    done = subprocess.run([*cmd, *args, "--output-dir", str(cwd)], capture_output=True,
                          text=True, env=env, timeout=900, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    (path,) = sorted(cwd.glob("results_*.json"))[-1:]
    return json.loads(path.read_text())


def test_two_processes_give_the_same_metrics(finetuned, tiny_bench, tmp_path):
    model_dir, _ = finetuned
    args = ["--model", str(model_dir), "--method", "score", "--protocol", "standard",
            "--dataset", str(tiny_bench), "--batch-size", "5"]  # 5: uneven shards to pad
    one = _launch(args, 1, tmp_path / "one")
    two = _launch(args, 2, tmp_path / "two")
    assert two["environment"]["num_processes"] == 2
    for proto in ("standard", "degraded"):
        for split, metrics in one["protocols"][proto]["splits"].items():
            other = two["protocols"][proto]["splits"][split]
            assert other["n_samples"] == metrics["n_samples"]
            assert other["confusion_matrix"] == metrics["confusion_matrix"]
            assert other["accuracy"] == pytest.approx(metrics["accuracy"], abs=1e-12)
            assert other["macro_auroc"] == pytest.approx(metrics["macro_auroc"], abs=1e-6)


def test_interrupted_training_resumes_to_the_same_result(tiny_bench, classifier, tmp_path):
    common = ["--model", str(classifier), "--method", "finetune", "--protocol",
              "semantic_disjoint", "--dataset", str(tiny_bench), "--epochs", "3",
              "--batch-size", "16", "--lr", "0.01"]
    full = _run(tmp_path / "full", *common, "--keep-checkpoints")
    assert len(list((tmp_path / "full" / "checkpoints" / "semantic_disjoint").glob(
        "epoch_*"))) == 3
    assert harness_run.main(harness_run.parse_args(
        [*common, "--stop-after-epoch", "1", "--output-dir", str(tmp_path / "resumed")])) == 0
    assert not list((tmp_path / "resumed").glob("results_*.json"))
    resumed = _run(tmp_path / "resumed", *common, "--resume")
    a = full["protocols"]["semantic_disjoint"]["splits"]
    b = resumed["protocols"]["semantic_disjoint"]["splits"]
    for split in ("test_seen", "test"):
        assert b[split]["confusion_matrix"] == a[split]["confusion_matrix"]
        assert b[split]["mean_ap"] == pytest.approx(a[split]["mean_ap"], abs=1e-6)
    log_a = full["run_config"]["training"]["semantic_disjoint"]["epochs"]
    log_b = resumed["run_config"]["training"]["semantic_disjoint"]["epochs"]
    assert [e["validation_accuracy"] for e in log_b] == [e["validation_accuracy"] for e in log_a]
    best = resumed["run_config"]["training"]["semantic_disjoint"]["best_epoch"]
    ckpt = tmp_path / "resumed" / "checkpoints" / "semantic_disjoint"
    assert [p.name for p in ckpt.glob("epoch_*")] == [f"epoch_{best}"]
    # resuming a finished run trains nothing and scores the chosen epoch again
    again = _run(tmp_path / "resumed", *common, "--resume")
    assert again["run_config"]["training"] == resumed["run_config"]["training"]
    assert again["protocols"]["semantic_disjoint"]["splits"]["test"]["confusion_matrix"] == \
        b["test"]["confusion_matrix"]


def test_bad_names_list_the_valid_ones():
    with pytest.raises(iab.BenchmarkError, match="valid protocols: standard, open_set, paper, all"):
        harness_run.parse_args(["--model", "m", "--protocol", "semantic"])
    with pytest.raises(iab.BenchmarkError, match="valid methods: finetune, linear_probe, score"):
        harness_run.parse_args(["--model", "m", "--method", "train"])


def test_a_model_whose_labels_do_not_fit(tiny_bench, tmp_path):
    model = _tiny_classifier(tmp_path / "m", labels=["real", "SD1_5", "stable-diffusion"])
    with pytest.raises(iab.BenchmarkError, match="'stable-diffusion' are not benchmark labels"):
        harness_run.main(harness_run.parse_args(
            ["--model", str(model), "--method", "score", "--dataset", str(tiny_bench),
             "--output-dir", str(tmp_path / "out")]))


def test_a_dataset_without_the_config(tiny_bench, classifier, tmp_path):
    with pytest.raises(iab.BenchmarkError, match="has no config 'semantic_disjoint_ffhq'"):
        harness_run.main(harness_run.parse_args(
            ["--model", str(classifier), "--method", "score", "--protocol",
             "semantic_disjoint_ffhq", "--dataset", str(tiny_bench), "--output-dir",
             str(tmp_path / "out")]))


def test_a_corrupt_image_in_a_shard(tiny_bench, finetuned, tmp_path):
    # (a distinct folder name: datasets keys its local cache on the folder's name and layout)
    repo = tmp_path / "corrupt_bench"
    shutil.copytree(tiny_bench, repo)
    shard = sorted((repo / "data" / "cat" / "test").glob("*.parquet"))[0]
    table = pq.read_table(shard)
    images = table.column("image").to_pylist()
    images[0] = {"bytes": b"\x89PNG\r\n\x1a\n broken", "path": None}
    table = table.set_column(table.schema.get_field_index("image"), "image",
                             pa.array(images, table.schema.field("image").type))
    pq.write_table(table, shard)
    model_dir, _ = finetuned
    args = ["--model", str(model_dir), "--method", "score", "--dataset", str(repo)]
    with pytest.raises(iab.BenchmarkError, match="undecodable image.*--on-corrupt skip"):
        harness_run.main(harness_run.parse_args([*args, "--output-dir", str(tmp_path / "a")]))
    results = _run(tmp_path / "b", *args, "--on-corrupt", "skip")
    test = results["protocols"]["standard"]["splits"]["test"]
    assert test["skipped"] == 1
    assert test["n_samples"] == len(GENERATORS) * len(SEMANTICS) * FOLDS["test"] - 1


def test_linear_probe_and_open_set(tiny_bench, tmp_path, capsys):
    import torch
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    torch.manual_seed(0)
    backbone = tmp_path / "vit"
    ViTModel(ViTConfig(image_size=64, patch_size=16, hidden_size=32, num_hidden_layers=1,
                       num_attention_heads=2, intermediate_size=64)).save_pretrained(backbone)
    ViTImageProcessor(size={"height": 64, "width": 64}).save_pretrained(backbone)
    results = _run(tmp_path / "lp", "--model", str(backbone), "--method", "linear_probe",
                   "--protocol", "open_set", "--dataset", str(tiny_bench), "--epochs", "5",
                   "--batch-size", "16", "--lr", "0.05")
    test = results["protocols"]["open_set"]["splits"]["test"]
    assert 0.0 <= test["auroc_unknown"] <= 1.0
    summary = results["protocols"]["open_set"]["summary"]
    assert summary == {k: test[k] for k in ("known_accuracy", "auroc_unknown", "oscr")}
    assert 0.0 <= test["oscr"] <= test["known_accuracy"]
    # the threshold was chosen on validation: 95% of its (known) images accepted
    log = results["run_config"]["training"]["open_set"]
    assert 0.0 < test["rejection_threshold"] <= 1.0 and "epochs" in log
    cm = test["open_set_confusion_matrix"]
    assert len(cm) == len(iab.LABELS) and sum(map(sum, cm)) == test["n_samples"]
    rejected = sum(row[-1] for row in cm)
    n_unknown = sum(cm[iab.LABEL_IDS["Z-Image-Turbo"]])
    assert test["unknown_rejection_rate"] == cm[iab.LABEL_IDS["Z-Image-Turbo"]][-1] / n_unknown
    assert rejected == round(test["known_rejection_rate"] * (test["n_samples"] - n_unknown)
                             + test["unknown_rejection_rate"] * n_unknown)
    printed = capsys.readouterr().out
    assert (f"open_set/test: known-class accuracy {test['known_accuracy']:.3f}, AUROC of "
            f"rejecting unknown generators {test['auroc_unknown']:.3f}, OSCR "
            f"{test['oscr']:.3f}") in printed
    assert "open_set/test " not in printed.split("accuracy: ")[-1].split("\n")[0]
    # the unknown generator (released after the cutoff) is never predicted
    assert test["confusion_matrix"][0] is not None
    unknown = iab.LABEL_IDS["Z-Image-Turbo"]
    assert all(row[unknown] == 0 for row in test["confusion_matrix"])
    assert results["run_config"]["preprocess"]["policy"] == "processor"


def test_streaming_training_and_evaluation(tiny_bench, classifier, tmp_path):
    results = _run(tmp_path / "stream", "--model", str(classifier), "--method", "finetune",
                   "--protocol", "semantic_disjoint_bedroom", "--dataset", str(tiny_bench),
                   "--epochs", "8", "--batch-size", "16", "--lr", "0.01", "--streaming")
    splits = results["protocols"]["semantic_disjoint_bedroom"]["splits"]
    assert splits["test_seen"]["n_samples"] == len(GENERATORS) * FOLDS["test"]
    assert splits["test"]["n_samples"] == len(GENERATORS) * sum(FOLDS.values())  # every cat
    # learns from the stream
    assert_above_chance(splits["test_seen"]["accuracy"], splits["test_seen"]["n_samples"], 1 / 4)


def test_demo_rerun_reuses_the_finished_harness_run(tmp_path, monkeypatch):
    """`iab demo` run twice: the second finds the first's results (same settings) and
    neither trains nor writes another results file; other settings are refused."""
    from harness import demo
    from harness.dataset_source import recorded_path

    out, calls = tmp_path / "demo", []

    def launch(cmd, **kwargs):  # stands in for accelerate launch: a finished run's results
        calls.append(cmd)
        argv = cmd[cmd.index(str(demo.RUN)) + 1:]
        assert "--resume" in argv  # an interrupted first run continues where it stopped
        args = harness_run.parse_args(argv)
        # paths as the harness records them (portable: results are published)
        config = {**vars(args), "dataset": recorded_path(args.dataset, args.output_dir),
                  "model_requested": recorded_path(args.model, args.output_dir)}
        folder = Path(args.output_dir)
        folder.mkdir(parents=True)
        (folder / "results_2026-12-01T00-00-00Z.json").write_text(
            json.dumps({"run_config": config}))

    monkeypatch.setattr(demo.subprocess, "run", launch)
    monkeypatch.setattr(demo, "tiny_classifier", lambda folder: folder)
    results = demo.run_harness_demo(tmp_path / "repo", out)
    first = sorted(results.iterdir())
    demo.run_harness_demo(tmp_path / "repo", out)
    assert len(calls) == 1 and sorted(results.iterdir()) == first
    done = json.loads(first[0].read_text())
    done["run_config"]["epochs"] = 2
    first[0].write_text(json.dumps(done))
    with pytest.raises(iab.BenchmarkError, match="epochs: 2 there, 4 now"):
        demo.run_harness_demo(tmp_path / "repo", out)
