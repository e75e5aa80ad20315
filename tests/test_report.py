"""Results typing, validation, leaderboard numbers, the report folder and the Hub upload, on a
hand-made results dict that covers all five kinds of protocol."""

from __future__ import annotations

import copy
import json
import re

import pyarrow.parquet as pq
import pytest
import yaml
from huggingface_hub import metadata_load
from PIL import Image

import imageattributionbench as iab
from harness.report import (
    EVAL_RESULTS_PATH,
    eval_results_entries,
    push_report,
    results_repo_path,
    write_report,
    write_samples,
)
from harness.results import RESULTS_SCHEMA_VERSION, leaderboard_values
from harness.results_check import validate_results
from harness.results_io import load_results, write_results

from leaderboard_fixtures import LABELS, confusion, open_confusion

CREATED_AT = "2026-11-27T23:59:00Z"
ISO = "2026-11-27T23-59-00Z"
SHA = "5503434ddd753f426f4b38109466949a1217c2bb"


def split_metrics(correct: int, **extra) -> dict:
    acc = correct / 100
    return {
        "n_samples": 100, "accuracy": acc, "macro_f1": acc * 0.9, "macro_auroc": 0.95,
        "mean_ap": 0.9,
        "per_class_accuracy": {"real": 1.0, "SD1_5": None, "FLUX": 0.5},
        "per_semantic_accuracy": {"cat": acc, "bedroom": acc},
        "confusion_matrix": confusion(correct), "labels": list(LABELS), **extra,
    }


DEGRADED_CORRECT = {"down_x2": 85, "down_x4": 70, "jpeg_q65": 80, "jpeg_q30": 60,
                    "blur_s3": 75, "blur_s5": 50}
SEMANTIC_CORRECT = {"semantic_disjoint": (92, 60), "semantic_disjoint_bedroom": (88, 55),
                    "semantic_disjoint_ffhq": (90, 70)}  # (test_seen, test)


def make_results(model_id: str = "acme/vit-tiny") -> dict:
    protocols = {
        "standard": {"splits": {"validation": split_metrics(91), "test": split_metrics(90)},
                     "summary": {}},
        "degraded": {
            "splits": {d: split_metrics(c) for d, c in DEGRADED_CORRECT.items()},
            "summary": {
                "clean_accuracy": 0.9,
                "per_degradation": {d: {"accuracy": c / 100, "drop": 0.9 - c / 100}
                                    for d, c in DEGRADED_CORRECT.items()},
                "mean_accuracy": sum(DEGRADED_CORRECT.values()) / 600,
                "worst_accuracy": 0.5, "worst": "blur_s5",
            },
        },
        "open_set": {
            "splits": {"test": split_metrics(
                80, auroc_unknown=0.8765, known_accuracy=0.83, oscr=0.71,
                rejection_threshold=0.42, open_set_accuracy=0.6, known_rejection_rate=0.05,
                unknown_rejection_rate=0.7, open_set_confusion_matrix=open_confusion(80))},
            "summary": {"auroc_unknown": 0.8765, "known_accuracy": 0.83, "oscr": 0.71},
        },
    }
    for name, (seen, unseen) in SEMANTIC_CORRECT.items():
        protocols[name] = {
            "splits": {"test_seen": split_metrics(seen), "test": split_metrics(unseen)},
            "summary": {"seen": seen / 100, "unseen": unseen / 100, "gap": (seen - unseen) / 100},
        }
    return {
        "schema_version": 2, "benchmark": "ImageAttributionBench",
        "benchmark_version": iab.BENCHMARK_VERSION,
        "created_at": CREATED_AT,
        "dataset": {"repo": "ImageAttributionBench/ImageAttributionBench", "revision": SHA,
                    "local": False, "fingerprint": "f" * 64, "hub_copy_of": None},
        "model": {"id": model_id, "revision": None, "parameters": 5_000_000,
                  "local": "/" not in model_id},
        "method": "finetune",
        "run_config": {"epochs": 3, "lr": 1e-4},
        "checkpoint_selection": "best validation accuracy over epochs (test never used)",
        "protocols": protocols,
        "environment": {"git_hash": "deadbeef", "libraries": {"torch": "2.13.0"},
                        "hardware": "cpu", "num_processes": 1},
        "n_samples": {f"{p}/{s}": 100 for p, pr in protocols.items() for s in pr["splits"]},
    }


EXPECTED_VALUES = {
    "standard_accuracy": 90.0,
    "degraded_mean_accuracy": 70.0,
    "degraded_worst_accuracy": 50.0,
    "semantic_disjoint_mean_accuracy": 61.67,  # (60 + 55 + 70) / 3, two decimals
    "open_set_auroc": 87.65,
}


@pytest.fixture
def results():
    return make_results()


# ---------------------------------------------------------------------------------------------
# Validation and the results file
# ---------------------------------------------------------------------------------------------


def test_fixture_is_valid_and_covers_the_paper_protocols(results):
    assert validate_results(results) == []
    assert RESULTS_SCHEMA_VERSION == results["schema_version"]
    assert set(iab.PAPER_SEMANTIC_TASKS) <= set(results["protocols"])


def _set_accuracy(r):
    r["protocols"]["standard"]["splits"]["test"]["accuracy"] = 1.5


def _drop_model_id(r):
    del r["model"]["id"]


def _unknown_protocol(r):
    r["protocols"]["bogus"] = copy.deepcopy(r["protocols"]["standard"])


def _schema_version(r):
    r["schema_version"] = 3


def _absolute_model_path(r):
    r["model"]["id"] = "/home/alice/models/vit"


def _branch_not_sha(r):
    r["dataset"]["revision"] = "main"


def _local_with_revision(r):
    r["dataset"].update(repo="demo/repo", local=True)


def _benchmark_version(r):
    r["benchmark_version"] = "0.9.0"


def _unknown_split(r):
    r["protocols"]["standard"]["splits"]["test_seen"] = split_metrics(90)


def _bad_confusion(r):
    r["protocols"]["standard"]["splits"]["test"]["confusion_matrix"][0][0] += 1


def _missing_open_set_auroc(r):
    del r["protocols"]["open_set"]["splits"]["test"]["auroc_unknown"]


def _missing_oscr(r):
    del r["protocols"]["open_set"]["splits"]["test"]["oscr"]


def _open_confusion_without_rejected_column(r):
    m = r["protocols"]["open_set"]["splits"]["test"]
    m["open_set_confusion_matrix"] = [row[:-1] for row in m["open_set_confusion_matrix"]]


@pytest.mark.parametrize("mutate, where, words", [
    (_set_accuracy, "protocols.standard.splits.test.accuracy", "1.5"),
    (_drop_model_id, "model.id", "missing key"),
    (_unknown_protocol, "protocols.bogus", "unknown protocol 'bogus'"),
    (_schema_version, "schema_version", "3 is not one of 1, 2"),
    (_absolute_model_path, "model.id", "absolute path"),
    (_branch_not_sha, "dataset.revision", "not a commit sha"),
    (_local_with_revision, "dataset.revision", "a local build has no revision"),
    (_benchmark_version, "benchmark_version", "0.9.0"),
    (_unknown_split, "protocols.standard.splits.test_seen", "unknown split"),
    (_bad_confusion, "protocols.standard.splits.test.confusion_matrix", "sum to 101"),
    (_missing_open_set_auroc, "protocols.open_set.splits.test.auroc_unknown", "missing key"),
    (_missing_oscr, "protocols.open_set.splits.test.oscr", "missing key"),
    (_open_confusion_without_rejected_column,
     "protocols.open_set.splits.test.open_set_confusion_matrix", "must be 3x4"),
])
def test_validate_names_each_injected_problem(results, mutate, where, words):
    mutate(results)
    problems = validate_results(results)
    assert len(problems) == 1, problems
    assert problems[0].startswith(where + ":") and words in problems[0], problems


def test_schema_1_files_without_the_open_set_scores_still_validate(results):
    results["schema_version"] = 1
    test = results["protocols"]["open_set"]["splits"]["test"]
    for key in ("oscr", "rejection_threshold", "open_set_accuracy", "known_rejection_rate",
                "unknown_rejection_rate", "open_set_confusion_matrix"):
        del test[key]
    results["protocols"]["open_set"]["summary"] = {"auroc_unknown": 0.8765}
    assert validate_results(results) == []
    results["schema_version"] = 2  # the same file claiming schema 2 lacks the new keys
    assert [p.split(":")[0] for p in validate_results(results)] == [
        "protocols.open_set.splits.test.oscr",
        "protocols.open_set.splits.test.rejection_threshold"]


def test_validate_reports_several_problems_and_refuses_non_objects(results):
    _set_accuracy(results)
    _schema_version(results)
    results["protocols"]["degraded"]["summary"]["worst"] = "blur_s9"
    problems = validate_results(results)
    assert len(problems) == 3
    assert any("blur_s9" in p for p in problems)
    assert validate_results([]) != []


def test_write_results_is_atomic_and_round_trips(results, tmp_path):
    path = write_results(results, tmp_path)
    assert path.name == f"results_{ISO}.json"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left
    assert load_results(path) == results


def test_invalid_results_are_refused_on_write_and_load(results, tmp_path):
    _set_accuracy(results)
    with pytest.raises(iab.BenchmarkError, match=r"accuracy.*1\.5"):
        write_results(results, tmp_path)
    assert list(tmp_path.iterdir()) == []
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(results))
    with pytest.raises(iab.BenchmarkError, match="not a valid"):
        load_results(bad)
    assert load_results(bad, validate=False)["schema_version"] == 2


# ---------------------------------------------------------------------------------------------
# Leaderboard values
# ---------------------------------------------------------------------------------------------


def test_leaderboard_values_are_exact_percentages(results):
    values = leaderboard_values(results)
    assert values == EXPECTED_VALUES
    assert list(values) == [t.id for t in iab.LEADERBOARD_TASKS]


def test_leaderboard_leaves_out_tasks_without_their_protocols(results):
    del results["protocols"]["semantic_disjoint_ffhq"]  # only two of the three paper tasks
    del results["protocols"]["degraded"]
    del results["protocols"]["open_set"]
    assert leaderboard_values(results) == {"standard_accuracy": 90.0}
    results["protocols"] = {"open_set": make_results()["protocols"]["open_set"]}
    assert leaderboard_values(results) == {"open_set_auroc": 87.65}


# ---------------------------------------------------------------------------------------------
# The report folder
# ---------------------------------------------------------------------------------------------


def sample_rows(n: int = 4) -> list[dict]:
    # label as an id, prediction as a name: both are stored as names
    return [{"split": "test", "sha256": f"{i:064x}", "generator": LABELS[i % 3],
             "semantic": "cat", "label": iab.label_id(LABELS[i % 3]),
             "prediction": LABELS[(i + 1) % 3], "probabilities": [0.2, 0.7, 0.1]}
            | ({"score": 0.25} if i == 0 else {"prompt_id": f"cat/{i}", "image_index": i})
            for i in range(n)]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    paths = write_report(make_results(), out, samples={"standard": sample_rows()})
    return out, paths


def test_write_report_writes_every_file(report):
    out, paths = report
    results = make_results()
    n_splits = sum(len(p["splits"]) for p in results["protocols"].values())
    confusions = {k: v for k, v in paths.items() if k.startswith("confusion/")}
    assert len(confusions) == n_splits == 15
    assert confusions["confusion/degraded/blur_s5"].name == "confusion_degraded_blur_s5.png"
    assert paths["results"].name == f"results_{ISO}.json"
    assert paths["samples/standard"].name == f"samples_standard_{ISO}.parquet"
    assert paths["robustness"].name == "robustness.png"
    assert paths["model_card"] == out / "README.md"
    assert paths["eval_results"] == out / EVAL_RESULTS_PATH
    for p in paths.values():
        assert p.is_file() and p.stat().st_size > 0
    on_disk = {p.relative_to(out) for p in out.rglob("*") if p.is_file()}
    assert on_disk == {p.relative_to(out) for p in paths.values()}  # nothing stray, no temp


def test_pngs_open_and_have_sensible_sizes(report):
    _, paths = report
    for key, p in paths.items():
        if p.suffix != ".png":
            continue
        with Image.open(p) as im:
            assert im.format == "PNG"
            w, h = im.size
            assert 300 <= w <= 4000 and 300 <= h <= 4000, (key, im.size)


def test_samples_parquet(report, tmp_path):
    _, paths = report
    table = pq.read_table(paths["samples/standard"])
    assert table.column_names == ["protocol", "split", "sha256", "generator", "prompt_id",
                                  "image_index", "semantic", "label", "prediction", "score",
                                  "probabilities"]
    rows = table.to_pylist()
    assert (rows[1]["prompt_id"], rows[1]["image_index"]) == ("cat/1", 1)  # the row identity
    assert (rows[0]["prompt_id"], rows[0]["image_index"]) == (None, None)  # not given: null
    assert [r["protocol"] for r in rows] == ["standard"] * 4
    assert [r["label"] for r in rows] == ["real", "SD1_5", "FLUX", "real"]  # ids -> names
    assert rows[0]["score"] == pytest.approx(0.25)  # given
    assert rows[1]["score"] == pytest.approx(0.7)  # defaults to the top probability
    assert rows[2]["probabilities"] == pytest.approx([0.2, 0.7, 0.1])
    with pytest.raises(iab.BenchmarkError, match="unknown config 'nope'"):
        write_samples(sample_rows(), tmp_path, "nope", CREATED_AT)
    with pytest.raises(iab.BenchmarkError, match="row 0: missing sha256"):
        write_samples([{k: v for k, v in sample_rows()[0].items() if k != "sha256"}],
                      tmp_path, "standard", CREATED_AT)
    with pytest.raises(iab.BenchmarkError, match="'Dalle9'"):
        write_samples([sample_rows()[0] | {"prediction": "Dalle9"}], tmp_path, "standard",
                      CREATED_AT)


def test_model_card_metadata_and_model_index(report):
    out, _ = report
    meta = metadata_load(out / "README.md")
    assert meta["tags"] == ["image-classification", "image-attribution", "imageattributionbench"]
    assert meta["datasets"] == ["ImageAttributionBench/ImageAttributionBench"]
    (index,) = meta["model-index"]
    assert index["name"] == "acme/vit-tiny"
    got = {}
    for r in index["results"]:
        assert r["task"]["type"] == "image-classification"
        assert r["dataset"]["type"] == "ImageAttributionBench/ImageAttributionBench"
        assert r["dataset"]["name"] == "ImageAttributionBench"
        assert r["dataset"]["revision"] == SHA
        (metric,) = r["metrics"]
        got[(r["dataset"]["config"], r["dataset"].get("split"), metric["type"])] = metric["value"]
    assert got == {
        ("standard", "test", "accuracy"): 90.0,
        **{("degraded", d, "accuracy"): float(c) for d, c in DEGRADED_CORRECT.items()},
        **{(p, "test", "accuracy"): float(u) for p, (_, u) in SEMANTIC_CORRECT.items()},
        ("open_set", "test", "roc_auc"): 87.65,  # a Hub metric id (hf.co/metrics)
    }
    assert set(meta["metrics"]) == {"accuracy", "roc_auc"}
    assert "model_name" not in meta  # not a model-card field: the model-index carries it


def test_model_card_body_embeds_existing_images_and_tables(report):
    out, _ = report
    text = (out / "README.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert "robustness.png" in links
    assert len([x for x in links if x.startswith("confusion_")]) == 15
    for link in links:
        assert not link.startswith(("/", "http")) and (out / link).is_file(), link
    for name in make_results()["protocols"]:
        assert f"### `{name}`" in text
    assert "| `blur_s5` | 6 | 50.00 | 40.00 |" in text  # degradation, level, accuracy, drop
    assert "gap 32.00 points" in text  # semantic_disjoint: seen 92, unseen 60


EXPECTED_HUB_VALUES = {
    "standard_accuracy": 90.0,
    **{f"degraded_{d}_accuracy": float(c) for d, c in DEGRADED_CORRECT.items()},
    **{f"{p}_accuracy": float(u) for p, (_, u) in SEMANTIC_CORRECT.items()},
    "open_set_auroc": 87.65,
}


def test_eval_results_yaml(report):
    out, _ = report
    entries = yaml.safe_load((out / EVAL_RESULTS_PATH).read_text())
    assert [e["dataset"]["task_id"] for e in entries] == [t.id for t in iab.HUB_TASKS]
    for e in entries:
        assert e["dataset"] == {"id": iab.HUB_REPO_ID, "task_id": e["dataset"]["task_id"],
                                "revision": SHA}
        assert e["value"] == EXPECTED_HUB_VALUES[e["dataset"]["task_id"]]
        assert 1 < e["value"] <= 100  # percent, not fractions
        assert e["date"] == CREATED_AT and e["notes"] == "finetune"
        assert "source" not in e  # known once pushed


def test_a_local_build_has_no_leaderboard_entries(results, tmp_path):
    results["dataset"] = {"repo": "demo/repo", "revision": None, "local": True,
                          "fingerprint": "a" * 64, "hub_copy_of": None}
    assert validate_results(results) == []
    assert eval_results_entries(results, "2026-11-28") == []
    paths = write_report(results, tmp_path)
    assert "eval_results" not in paths and not (tmp_path / EVAL_RESULTS_PATH).exists()
    meta = metadata_load(tmp_path / "README.md")
    assert "model-index" not in meta and "datasets" not in meta
    assert "local build" in (tmp_path / "README.md").read_text()
    # a verified copy of a Hub revision counts for that revision
    results["dataset"]["hub_copy_of"] = {"repo": "someone/iab-mirror", "revision": SHA}
    entries = eval_results_entries(results, "2026-11-28", source_url="https://example.org/r")
    assert entries[0] == {
        "dataset": {"id": "someone/iab-mirror", "task_id": "standard_accuracy",
                    "revision": SHA},
        "value": 90.0, "date": "2026-11-28",
        "source": {"url": "https://example.org/r", "name": "ImageAttributionBench results file"},
        "notes": "finetune",
    }


def test_version_1_files_are_read_but_never_count_for_the_hub(results):
    from harness.results import hub_dataset

    results["schema_version"] = 1
    results["dataset"] = {"repo": iab.HUB_REPO_ID, "revision": "abc123"}
    del results["model"]["local"]
    assert validate_results(results) == []
    assert hub_dataset(results) is None and eval_results_entries(results, "x") == []


# ---------------------------------------------------------------------------------------------
# Upload (the push paths end to end: tests/test_hub_push.py)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model_id, expected_dir", [
    ("acme/vit-tiny", "acme/vit-tiny"),
    ("resnet-tiny", "community/resnet-tiny"),
])
def test_results_repo_path(model_id, expected_dir):
    assert results_repo_path(make_results(model_id)) == f"{expected_dir}/results_{ISO}.json"


def test_files_to_push_is_an_allow_list(report, tmp_path):
    import shutil

    from harness.report import files_to_push

    out, paths = report
    folder = tmp_path / "out"
    shutil.copytree(out, folder)
    for stray in ("checkpoints/standard/epoch_0/optimizer.bin", "init/model.safetensors",
                  "models/open_set/model.safetensors", ".env", "logs/events.out",
                  "results_2020-01-01T00-00-00Z.json", "notes.txt"):
        (folder / stray).parent.mkdir(parents=True, exist_ok=True)
        (folder / stray).write_bytes(b"x")
    got = files_to_push(folder, make_results())
    assert got == sorted({p.relative_to(out).as_posix() for p in paths.values()})


class _NeverCalled:
    token = None

    def __getattr__(self, name):
        raise AssertionError(f"{name} called")


def test_push_report_without_token_calls_nothing(report, monkeypatch):
    import huggingface_hub

    out, _ = report
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(iab.BenchmarkError, match=r"hf auth login.*HF_TOKEN"):
        push_report(out, "me/vit-iab", api=_NeverCalled(),
                    results_repo="ImageAttributionBench/results")


def test_push_report_refuses_local_build_results(tmp_path):
    results = make_results()
    results["dataset"] = {"repo": "demo/repo", "revision": None, "local": True,
                          "fingerprint": "a" * 64, "hub_copy_of": None}
    write_results(results, tmp_path)
    with pytest.raises(iab.BenchmarkError, match="local build"):
        push_report(tmp_path, "me/x", api=_NeverCalled(), token="hf_x")


# ---------------------------------------------------------------------------------------------
# What the card says about the pushed repo: base model, license, how to load it
# ---------------------------------------------------------------------------------------------


def _card_args(**over):
    from harness.options import parse_args

    return parse_args(["--model", "m", *sum(([f"--{k}", v] for k, v in over.items()), [])])


def test_card_info_names_the_base_model_and_inherits_its_license(tmp_path, monkeypatch):
    from harness import publish

    monkeypatch.setattr(publish, "_card_license",
                        lambda model, rev: {"license": "apache-2.0"} if model ==
                        "microsoft/resnet-50" else {})
    info = publish.card_info(_card_args(), "microsoft/resnet-50", False, "me/r50-iab", None)
    assert (info.base_model, info.license, info.repo_id, info.library_name) == (
        "microsoft/resnet-50", "apache-2.0", "me/r50-iab", "transformers")
    assert publish.card_info(_card_args(license="mit"), "microsoft/resnet-50", False, None,
                             None).license == "mit"  # --license wins
    ssp = publish.card_info(_card_args(), "init:ssp", True, None, None)
    assert ssp.base_model == "microsoft/resnet-50"  # the paper's start: ImageNet weights
    assert publish.card_info(_card_args(), "init:ssp:tiny", True, None, None).base_model is None
    local = tmp_path / "mine"
    local.mkdir()
    (local / "README.md").write_text("---\nlicense: cc-by-4.0\n---\n# mine\n")
    monkeypatch.undo()
    info = publish.card_info(_card_args(), str(local), True, None, None)
    assert info.base_model is None and info.license == "cc-by-4.0"  # a local start's own card
    probe = publish.card_info(_card_args(method="linear_probe"), str(local), True, None, None)
    assert probe.library_name is None  # a head's weights: no library loads the folder alone


def test_a_method_checkpoint_card_says_how_to_load_it():
    from harness.model_card import CardInfo, model_card

    results = make_results()
    results["run_config"]["method_record"] = {
        "model_type": "iab-ssp", "reference": "Chen et al., 2024", "input_policy": "native_crop",
        "paper_hyperparameters": {"lr": 1e-4}, "architecture": {"patch_size": 32}}
    card = model_card(results, CardInfo(repo_id="me/ssp-iab", base_model="microsoft/resnet-50",
                                        license="mit", library_name="transformers"))
    assert card.data.base_model == "microsoft/resnet-50" and card.data.license == "mit"
    text = str(card)
    assert "import methods" in text and "no remote" in text and 'pip install -e ".[harness]"' \
        in text
    assert 'pipeline("image-classification", model="me/ssp-iab")' in text
