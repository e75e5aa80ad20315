"""The paper's settings by name (harness/presets.py) and the methods x protocols table."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import imageattributionbench as iab
from harness import paper_table
from harness import run as harness_run
from harness.train import TrainConfig, _scheduler
from helpers import assert_above_chance


def test_resnet50_preset_is_the_papers_setting_and_flags_still_win():
    args = harness_run.parse_args(["--preset", "resnet50"])
    assert (args.model, args.method, args.preprocess) == ("microsoft/resnet-50", "finetune",
                                                          "paper_resnet")
    assert (args.lr, args.weight_decay, args.epochs, args.batch_size, args.scheduler,
            args.select) == (1e-3, 0.0, 10, 32, "step", "last")
    ours = harness_run.parse_args(["--preset", "resnet50-ours"])
    assert (ours.epochs, ours.select) == (30, "best")
    args = harness_run.parse_args(["--preset", "resnet50", "--model", "tiny", "--epochs", "2"])
    assert (args.model, args.epochs, args.preprocess) == ("tiny", 2, "paper_resnet")


def test_clip_lr_and_method_presets(tmp_path):
    args = harness_run.parse_args(["--preset", "clip-lr"])
    assert args.method == "linear_probe" and args.model.startswith("laion/CLIP-ViT-H-14")
    args = harness_run.parse_args(["--preset", "dna-det"])
    assert (args.model, args.lr, args.epochs, args.scheduler) == ("init:dna-det", 1e-4, 10,
                                                                   "constant")
    ours = harness_run.parse_args(["--preset", "dna-det-ours"])
    assert (ours.model, ours.lr, ours.epochs, ours.select) == ("init:dna-det", 1e-4, 50, "best")
    assert args.preprocess is None  # the model's own input policy decides
    config = tmp_path / "run.yaml"
    config.write_text("preset: ssp\nepochs: 3\n")
    args = harness_run.parse_args(["--config", str(config)])
    assert (args.model, args.epochs, args.lr) == ("init:ssp", 3, 1e-4)


# The official scripts (training/scripts/*.bash, config/model/*.yaml, train.py, trainer.py)
OFFICIAL_SETTINGS = {  # epochs, lr, batch size, scheduler
    "resnet50": (10, 1e-3, 32, "step"), "dct-cnn": (10, 1e-3, 32, "constant"),
    "patch-forensics": (20, 1e-3, 32, "constant"), "gfd": (15, 1e-3, 16, "step"),
    "dna-det": (10, 1e-4, 32, "constant"), "repmix": (10, 1e-4, 32, "constant"),
    "hifi-net": (10, 1e-3, 8, "constant"), "ucf": (10, 2e-4, 32, "constant"),
    "pose": (10, 1e-4, 32, "step500"), "patchcraft": (15, 1e-3, 32, "step"),
    "ssp": (10, 1e-4, 32, "constant"), "defl": (10, 1e-3, 8, "constant"),
}


def test_presets_are_the_official_scripts_settings():
    from harness.presets import preset_names

    assert preset_names() == ["resnet50", "clip-lr", "dct-cnn", "patch-forensics", "gfd",
                              "dna-det", "repmix", "hifi-net", "ucf", "pose", "patchcraft",
                              "ssp", "defl"]
    for name, want in OFFICIAL_SETTINGS.items():
        args = harness_run.parse_args(["--preset", name])
        assert (args.epochs, args.lr, args.batch_size, args.scheduler) == want, name
        assert (args.weight_decay, args.select) == (0.0, "last"), name
        ours = harness_run.parse_args(["--preset", f"{name}-ours"])
        assert ours.select == "best" and ours.scheduler in ("constant", "step"), name
    args = harness_run.parse_args(["--preset", "clip-lr"])
    assert (args.method, args.probe) == ("linear_probe", "lbfgs")


def test_pose_schedule_decays_every_500_batches():
    param = torch.nn.Parameter(torch.zeros(1))
    for procs in (1, 2):  # accelerate steps a prepared scheduler once per process
        opt = torch.optim.AdamW([param], lr=1.0)
        sched = _scheduler(opt, TrainConfig(3, 8, 1.0, 0.0, 0, 0, None, "step500"),
                           steps=3000, steps_per_epoch=700, streaming=False, procs=procs)
        rates = []
        for _ in range(1001 * procs):
            rates.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        np.testing.assert_allclose(rates[::procs][499:502], [1.0, 0.9, 0.9])
        np.testing.assert_allclose(rates[::procs][1000], 0.81)


def test_official_presets_test_the_last_epoch(tiny_bench, tmp_path):
    out = tmp_path / "out"
    assert harness_run.main(harness_run.parse_args(
        ["--preset", "dct-cnn", "--model", "init:dct-cnn:tiny", "--protocol", "standard",
         "--dataset", str(tiny_bench), "--epochs", "2", "--output-dir", str(out)])) == 0
    (path,) = out.glob("results_*.json")
    results = json.loads(path.read_text())
    assert results["checkpoint_selection"].startswith("the last epoch")
    assert results["run_config"]["training"]["standard"]["chosen_epoch"] == 1


def test_unknown_preset_and_missing_model():
    with pytest.raises(iab.BenchmarkError, match="valid presets: resnet50, clip-lr, dct-cnn"):
        harness_run.parse_args(["--preset", "gfd-net"])
    with pytest.raises(SystemExit):
        harness_run.parse_args(["--protocol", "standard"])


def test_step_schedule_decays_by_a_tenth_each_epoch():
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([param], lr=1.0)
    sched = _scheduler(opt, TrainConfig(3, 8, 1.0, 0.0, 0, 0, None, "step"), steps=15,
                       steps_per_epoch=5, streaming=False)
    rates = []
    for _ in range(15):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    np.testing.assert_allclose(rates, [1.0] * 5 + [0.9] * 5 + [0.81] * 5)


def _fake_results(model: str, preset: str, acc: float) -> dict:
    protocols = {"standard": {"splits": {"test": {"accuracy": acc}}},
                 "degraded": {"splits": {d: {"accuracy": acc / 2} for d in iab.DEGRADATIONS}}}
    return {"model": {"id": model}, "run_config": {"preset": preset}, "protocols": protocols}


def test_table_has_the_papers_columns_and_marks_what_was_not_run(tmp_path):
    files = []
    for i, (name, acc) in enumerate([("dct-cnn", 0.5), ("ssp", 0.25)]):
        files.append(tmp_path / f"r{i}.json")
        files[-1].write_text(json.dumps(_fake_results(f"iab-{name}", name, acc)))
    md, png = paper_table.write_table(files, tmp_path / "table")
    lines = md.read_text().splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[:3] == ["method", "clean", "down-up 1/2"]
    assert header[8] == ""  # between the degradations and the semantic tasks
    assert header[9:] == ["cat seen", "cat->others", "bedroom seen", "bedroom->others",
                          "FFHQ seen", "FFHQ->others"]
    assert lines[2].split("|")[1:4] == [" dct-cnn ", " 50.0 ", " 25.0 "]
    assert lines[3].count(" - ") == 6  # the semantic tasks were not run
    with Image.open(png) as im:
        assert im.format == "PNG" and im.width > 400


def test_paper_protocol_over_presets_on_a_benchmark_with_every_subclass(built, tmp_path):
    """The table's own runs: resumable (a second call trains nothing)."""
    repo, _ = built
    out = tmp_path / "table"
    args = paper_table.parse_args(["--dataset", str(repo), "--out", str(out), "--tiny",
                                   "--presets", "resnet50,patch-forensics", "--epochs", "3",
                                   "--lr", "0.01", "--batch-size", "16"])
    assert paper_table.main(args) == 0
    rows = [r for r in (out / paper_table.TABLE_MD).read_text().splitlines()[2:]
            if r.startswith("|")]
    assert [r.split("|")[1].strip() for r in rows] == ["resnet50", "patch-forensics"]
    assert all(" - " not in r for r in rows)  # every column evaluated
    first = sorted((out / "patch-forensics").glob("results_*.json"))
    results = json.loads(first[-1].read_text())
    assert results["run_config"]["preset"] == "patch-forensics"
    assert results["run_config"]["preprocess"]["policy"] == "native_crop"
    paper_table.main(args)
    assert sorted((out / "patch-forensics").glob("results_*.json")) == first
    other = paper_table.parse_args(["--dataset", str(repo), "--out", str(out), "--tiny",
                                    "--presets", "resnet50", "--epochs", "2", "--lr", "0.01",
                                    "--batch-size", "16"])
    with pytest.raises(iab.BenchmarkError, match="epochs: 3 there, 2 now"):
        paper_table.main(other)


def test_a_crashing_preset_costs_its_row_not_the_table(built, tmp_path, monkeypatch):
    """Each preset runs in its own process: a native crash (SIGSEGV, as torch's AVX-512
    kernels gave) in one is reported in its row, the others finish, and a rerun retries it."""
    repo, _ = built
    out = tmp_path / "table"
    argv = ["--dataset", str(repo), "--out", str(out), "--tiny", "--presets",
            "dct-cnn,resnet50", "--epochs", "1", "--batch-size", "16"]
    monkeypatch.setenv("IAB_FAULT", "harness.run.dct-cnn:segv")
    assert paper_table.main(paper_table.parse_args(argv)) == 1
    lines = (out / paper_table.TABLE_MD).read_text().splitlines()
    assert lines[2].split("|")[1:3] == [" dct-cnn ", " failed "]
    assert lines[3].split("|")[1].strip() == "resnet50" and "failed" not in lines[3]
    assert any("dct-cnn: the run failed (killed by SIGSEGV)" in line for line in lines)
    assert "Tiny random-weight demo models" in lines[-1]  # the caption
    assert (out / "dct-cnn" / "run.log").exists()
    monkeypatch.delenv("IAB_FAULT")
    assert paper_table.main(paper_table.parse_args(argv)) == 0  # retried, resnet50 kept
    rows = [r for r in (out / paper_table.TABLE_MD).read_text().splitlines()[2:]
            if r.startswith("|")]
    assert [r.split("|")[1].strip() for r in rows] == ["dct-cnn", "resnet50"]
    assert "failed" not in "".join(rows)


def test_lbfgs_probe_is_sklearns_logistic_regression():
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from harness.probe import fit_logistic_regression

    rng = np.random.default_rng(0)
    labels = rng.choice([0, 2, 5], 120)  # labels 1, 3, 4 ... never seen
    features = rng.normal(0, 1, (120, 6)) * [1, 10, 0.1, 1, 1, 1] + labels[:, None] * 0.7
    features[:, 5] = 3.0  # a constant feature, as StandardScaler leaves it
    weight, bias, iterations = fit_logistic_regression(
        torch.as_tensor(features), torch.as_tensor(labels), num_labels=8)
    scaler = StandardScaler().fit(features)
    ref = LogisticRegression(C=1.0, max_iter=1000).fit(scaler.transform(features), labels)
    ours = torch.softmax(torch.as_tensor(features).float() @ weight.T + bias, dim=1).numpy()
    np.testing.assert_allclose(ours[:, [0, 2, 5]],
                               ref.predict_proba(scaler.transform(features)), atol=2e-3)
    assert ours[:, [1, 3, 4, 6, 7]].max() < 1e-30 and iterations > 0


def test_clip_lr_preset_fits_the_logistic_regression_probe(tiny_bench, tmp_path):
    from harness.tiny_model import tiny_clip

    clip = tiny_clip(tmp_path / "clip")
    out = tmp_path / "out"
    assert harness_run.main(harness_run.parse_args(
        ["--preset", "clip-lr", "--model", str(clip), "--protocol", "standard",
         "--dataset", str(tiny_bench), "--output-dir", str(out)])) == 0
    (path,) = out.glob("results_*.json")
    results = json.loads(path.read_text())
    log = results["run_config"]["training"]["standard"]
    assert log["solver"].startswith("lbfgs") and log["train_embeddings"] == 96
    test = results["protocols"]["standard"]["splits"]["test"]
    assert_above_chance(test["accuracy"], test["n_samples"], chance=1 / 4)
    assert (out / "linear_probe_head.safetensors").exists()
    with pytest.raises(SystemExit):
        harness_run.parse_args(["--preset", "clip-lr", "--streaming"])
    # the official CLIP-LR evaluation: softmax of the probabilities; accuracy unchanged
    double = tmp_path / "double"
    assert harness_run.main(harness_run.parse_args(
        ["--preset", "clip-lr", "--model", str(clip), "--protocol", "standard",
         "--dataset", str(tiny_bench), "--output-dir", str(double), "--double-softmax"])) == 0
    (path,) = double.glob("results_*.json")
    twice = json.loads(path.read_text())
    assert "softmax of the probabilities" in twice["run_config"]["training"]["standard"]["scores"]
    assert twice["protocols"]["standard"]["splits"]["test"]["accuracy"] == test["accuracy"]
    import pyarrow.parquet as pq

    (samples,) = double.glob("samples_standard_*.parquet")
    probs = np.array(pq.read_table(samples).column("probabilities").to_pylist())
    assert probs.max() < np.e / (np.e + len(iab.LABELS) - 1) + 1e-6  # softmax of values in [0, 1]
    with pytest.raises(SystemExit):
        harness_run.parse_args(["--model", "m", "--double-softmax"])


def test_command_line_preset_beats_the_config_files_and_choices_are_checked(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("preset: ssp\n")
    args = harness_run.parse_args(["--config", str(config), "--preset", "dna-det"])
    assert (args.preset, args.model) == ("dna-det", "init:dna-det")
    config.write_text("model: m\nscheduler: cosine\n")
    with pytest.raises(SystemExit):
        harness_run.parse_args(["--config", str(config)])


def test_init_spec_is_checked(tiny_bench, tmp_path):
    with pytest.raises(iab.BenchmarkError, match="init:ssp:scratch or init:ssp:tiny"):
        harness_run.main(harness_run.parse_args(
            ["--model", "init:ssp:huge", "--dataset", str(tiny_bench), "--output-dir",
             str(tmp_path)]))
