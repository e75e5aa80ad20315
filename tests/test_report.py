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

from leaderboard_fixtures import LABELS, confusion

CREATED_AT = "2026-11-27T23:59:00Z"
ISO = "2026-11-27T23-59-00Z"


def split_metrics(correct: int, **extra) -> dict:
    acc = correct / 100
    return {
        "n_samples": 100, "accuracy": acc, "macro_f1": acc * 0.9, "macro_auroc": 0.95,
        "mean_ap": 0.9,
        "per_class_accuracy": {"real": 1.0, "SD1_5": None, "FLUX": 0.5},
        "per_semantic_accuracy": {"cat": acc, "bedroom": acc},
        "confusion_matrix": confusion(correct), "labels": list(LABELS), **extra,
    }


def open_confusion(correct: int) -> list[list[int]]:
    """``confusion(correct)`` with a "rejected" column: the last label's images rejected."""
    rows = [r + [0] for r in confusion(correct)]
    rows[-1][-1], rows[-1][0] = rows[-1][0], 0
    return rows


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
        "schema_version": 2, "benchmark": "ImageAttributionBench", "benchmark_version": "1.0.0",
        "created_at": CREATED_AT,
        "dataset": {"repo": "ImageAttributionBench/ImageAttributionBench", "revision": "abc123"},
        "model": {"id": model_id, "revision": None, "parameters": 5_000_000},
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
            | ({"score": 0.25} if i == 0 else {})
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
    assert table.column_names == ["protocol", "split", "sha256", "generator", "semantic",
                                  "label", "prediction", "score", "probabilities"]
    rows = table.to_pylist()
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
        assert r["dataset"]["revision"] == "abc123"
        (metric,) = r["metrics"]
        got[(r["dataset"]["config"], r["dataset"].get("split"), metric["type"])] = metric["value"]
    assert got == {
        ("standard", "test", "accuracy"): 90.0,
        ("degraded", None, "accuracy"): 70.0,
        ("degraded", "blur_s5", "accuracy"): 50.0,
        ("semantic_disjoint", "test", "accuracy"): 61.67,
        ("open_set", "test", "auroc"): 87.65,
    }


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


def test_eval_results_yaml(report):
    out, _ = report
    entries = yaml.safe_load((out / EVAL_RESULTS_PATH).read_text())
    task_ids = {t.id for t in iab.LEADERBOARD_TASKS}
    assert {e["dataset"]["task_id"] for e in entries} == task_ids
    for e in entries:
        assert e["dataset"]["id"] == iab.HUB_REPO_ID
        assert e["dataset"]["revision"] == "abc123"
        assert e["value"] == EXPECTED_VALUES[e["dataset"]["task_id"]]
        assert 1 < e["value"] <= 100  # percent, not fractions
        assert e["date"] == CREATED_AT and e["notes"] == "finetune"
        assert "source" not in e


def test_eval_results_entries_for_a_local_dataset_with_a_source(results, tmp_path):
    results["dataset"] = {"repo": str(tmp_path), "revision": None}  # a local build
    entries = eval_results_entries(results, "2026-11-28", source_url="https://example.org/run")
    assert len(entries) == 5
    assert entries[0] == {
        "dataset": {"id": iab.HUB_REPO_ID, "task_id": "standard_accuracy"},
        "value": 90.0, "date": "2026-11-28",
        "source": {"url": "https://example.org/run", "name": "ImageAttributionBench harness"},
        "notes": "finetune",
    }
    results["dataset"]["repo"] = "someone/iab-mirror"
    assert eval_results_entries(results, "x")[0]["dataset"]["id"] == "someone/iab-mirror"


# ---------------------------------------------------------------------------------------------
# Upload, with a recording fake HfApi (the write API has no offline equivalent)
# ---------------------------------------------------------------------------------------------


class RecordingApi:
    def __init__(self):
        self.calls = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs))

    def upload_file(self, **kwargs):
        self.calls.append(("upload_file", kwargs))


@pytest.mark.parametrize("model_id, expected_dir", [
    ("acme/vit-tiny", "acme/vit-tiny"),
    ("resnet-tiny", "community/resnet-tiny"),
])
def test_push_report_calls(tmp_path, model_id, expected_dir):
    out = tmp_path / "out"
    write_results(make_results(model_id), out)  # all push_report reads; plots would only slow
    api = RecordingApi()
    url = push_report(out, "me/vit-iab", api=api, token="hf_x", private=True,
                      results_repo="ImageAttributionBench/results")
    assert url == "https://huggingface.co/me/vit-iab"
    assert [c[0] for c in api.calls] == ["create_repo", "upload_folder", "upload_file"]
    _, repo, kw = api.calls[0]
    assert repo == "me/vit-iab"
    assert kw == {"token": "hf_x", "private": True, "repo_type": "model", "exist_ok": True}
    folder = api.calls[1][1]
    assert folder["repo_id"] == "me/vit-iab" and folder["repo_type"] == "model"
    assert folder["folder_path"] == str(out) and folder["token"] == "hf_x"
    upload = api.calls[2][1]
    assert upload["repo_id"] == "ImageAttributionBench/results"
    assert upload["repo_type"] == "dataset" and upload["token"] == "hf_x"
    assert upload["path_in_repo"] == f"{expected_dir}/results_{ISO}.json"
    assert upload["path_in_repo"] == results_repo_path(make_results(model_id))
    assert upload["path_or_fileobj"] == str(out / f"results_{ISO}.json")


def test_push_report_without_results_repo_uploads_only_the_model_repo(report):
    out, _ = report
    api = RecordingApi()
    push_report(out, "me/vit-iab", api=api, token="hf_x")
    assert [c[0] for c in api.calls] == ["create_repo", "upload_folder"]
    assert api.calls[0][2]["private"] is False


def test_push_report_without_token_calls_nothing(report, monkeypatch):
    import huggingface_hub

    out, _ = report
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    api = RecordingApi()
    with pytest.raises(iab.BenchmarkError, match=r"hf auth login.*HF_TOKEN"):
        push_report(out, "me/vit-iab", api=api, results_repo="ImageAttributionBench/results")
    assert api.calls == []
