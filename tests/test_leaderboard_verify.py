"""The board's recomputation of every number from a run's samples, against the harness's own
numbers on the same samples: every protocol the harness scores, every headline metric and
summary; and the ways a results file or its samples can fail to support each other."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import BASE_LABELS

import imageattributionbench as iab
from harness import run as harness_run
from harness.metrics import load_metric
from harness.report import samples_filename
from harness.results import leaderboard_values
from harness.tiny_model import tiny_classifier
from leaderboard.data import Verifier
from leaderboard.reference import ReferenceLabels, dataset_ref
from leaderboard.verify import (SELF_REPORTED, VERIFIED, _read_samples, _same,
                                recompute_split, recompute_summaries, verify)

HEADLINE = ("n_samples", "accuracy", "macro_f1", "macro_auroc", "mean_ap", "per_class_accuracy",
            "per_semantic_accuracy", "confusion_matrix", "labels")
OPEN_SET = ("auroc_unknown", "known_accuracy")


@pytest.fixture(scope="module")
def scored(built, tmp_path_factory):
    """A tiny attributor over the build's five labels, scored on every protocol (paper +
    open_set) by the harness itself."""
    repo, _ = built
    model = tiny_classifier(tmp_path_factory.mktemp("attributor"), list(BASE_LABELS), seed=3)
    out = tmp_path_factory.mktemp("scored")
    assert harness_run.main(harness_run.parse_args(
        ["--model", str(model), "--method", "score", "--protocol", "all", "--dataset",
         str(repo), "--output-dir", str(out)])) == 0
    (path,) = out.glob("results_*.json")
    return path, json.loads(path.read_text())


@pytest.fixture(scope="module")
def labels(built, tmp_path_factory):
    # results name a local build by its folder's name and fingerprint, never by an absolute
    # path: the board finds it among its LOCAL_BUILDS
    return ReferenceLabels(tmp_path_factory.mktemp("labels"), local_builds=[built[0].parent])


@pytest.fixture(scope="module")
def metric():
    return load_metric()


def test_every_protocol_and_headline_number_matches_the_harness(scored, labels, metric):
    path, results = scored
    assert set(results["protocols"]) == {"standard", "degraded", *iab.PAPER_SEMANTIC_TASKS,
                                         "open_set"}
    ref = dataset_ref(results)
    assert ref.local and labels.why_not(ref) == ""
    again = copy.deepcopy(results)
    for protocol, proto in results["protocols"].items():
        samples = _read_samples(_samples(path, protocol))
        for split, theirs in proto["splits"].items():
            ours = recompute_split(samples, protocol, split, labels.split(ref, protocol, split),
                                   metric)
            keys = HEADLINE + (OPEN_SET if protocol == "open_set" else ())
            for k in keys:
                assert k in ours and k in theirs, (protocol, split, k)
                assert _same(ours[k], theirs[k]), (protocol, split, k, ours[k], theirs[k])
            again["protocols"][protocol]["splits"][split] = ours
        assert None not in samples["prompt_id"] and None not in samples["image_index"]
    for protocol, summary in recompute_summaries(again["protocols"]).items():
        assert _same(summary, {k: results["protocols"][protocol]["summary"][k]
                               for k in summary}), protocol
        again["protocols"][protocol]["summary"] = summary
    assert set(recompute_summaries(again["protocols"])) == set(results["protocols"]) - {
        "standard"}
    values = leaderboard_values(results)
    assert set(values) == {t.id for t in iab.LEADERBOARD_TASKS}  # every headline number
    assert leaderboard_values(again) == values
    # the tiny model is no oracle: the numbers checked are not trivially 0 or 1
    assert 0 < results["protocols"]["standard"]["splits"]["test"]["accuracy"] < 1
    assert verify(results, path, labels, metric).status == VERIFIED


def _copy_run(scored, dest: Path) -> tuple[Path, dict]:
    path, results = scored
    dest.mkdir(parents=True)
    for f in path.parent.glob("*_20*"):
        if f.suffix in (".json", ".parquet"):
            shutil.copy(f, dest / f.name)
    return dest / path.name, copy.deepcopy(results)


def _samples(path: Path, protocol: str) -> Path:
    return path.parent / samples_filename(protocol, json.loads(path.read_text())["created_at"])


def _rewrite_samples(path: Path, protocol: str, change) -> None:
    f = _samples(path, protocol)
    table = pq.read_table(f)
    pq.write_table(change(table), f)


def _check(path: Path, results: dict, labels, metric):
    path.write_text(json.dumps(results))
    return verify(results, path, labels, metric)


def test_a_hand_edited_number_is_not_verified(scored, labels, metric, tmp_path):
    path, results = _copy_run(scored, tmp_path / "acc")
    results["protocols"]["standard"]["splits"]["test"]["accuracy"] = 0.99
    check = _check(path, results, labels, metric)
    assert check.status == SELF_REPORTED
    assert "standard/test accuracy: the file says 0.99, the samples give" in check.reason
    path, results = _copy_run(scored, tmp_path / "gap")
    results["protocols"]["semantic_disjoint_ffhq"]["summary"]["gap"] = -0.5
    check = _check(path, results, labels, metric)
    assert "semantic_disjoint_ffhq summary gap: the file says -0.5" in check.reason


@pytest.mark.parametrize("how, expected", [
    ("drop", "the samples cover 49 of the split's 50 images"),
    ("twice", "1 more than once"),
    ("label", "carry another label than the benchmark's"),
    ("prediction", "are not the most probable label"),
    ("missing", "no samples file samples_open_set_"),
])
def test_samples_that_do_not_cover_the_split_are_not_verified(scored, labels, metric, tmp_path,
                                                               how, expected):
    path, results = _copy_run(scored, tmp_path / how)
    protocol = "open_set" if how == "missing" else "standard"

    def change(t: pa.Table) -> pa.Table:
        rows = t.to_pylist()
        if how == "drop":
            rows = rows[1:]
        elif how == "twice":
            rows = rows + rows[:1]
        elif how == "label":
            rows[0]["label"] = next(x for x in BASE_LABELS if x != rows[0]["label"])
        elif how == "prediction":
            rows[0]["prediction"] = next(x for x in BASE_LABELS if x != rows[0]["prediction"])
        return pa.Table.from_pylist(rows, schema=t.schema)

    if how == "missing":
        _samples(path, "open_set").unlink()
    else:
        _rewrite_samples(path, protocol, change)
    check = _check(path, results, labels, metric)
    assert check.status == SELF_REPORTED and expected in check.reason, check.reason


def test_samples_written_before_the_identity_columns_match_by_sha256(scored, labels, metric,
                                                                     tmp_path):
    path, results = _copy_run(scored, tmp_path / "old")
    for protocol in results["protocols"]:
        _rewrite_samples(path, protocol, lambda t: t.drop_columns(["prompt_id", "image_index"]))
    assert _check(path, results, labels, metric).status == VERIFIED


def test_an_unknown_dataset_is_self_reported_with_the_reason(scored, labels, metric, tmp_path):
    path, results = _copy_run(scored, tmp_path / "hub")
    results["dataset"] = {"repo": iab.HUB_REPO_ID, "revision": None}
    check = _check(path, results, labels, metric)
    assert check.status == SELF_REPORTED and "revision is not recorded" in check.reason
    results["dataset"] = {"repo": str(tmp_path / "gone" / "build"), "revision": None}
    check = _check(path, results, labels, metric)
    assert "local build" in check.reason and "cannot read" in check.reason
    # a file cannot send the board to read labels from a dataset of its choosing
    results["dataset"] = {"repo": "mallory/huge-dataset", "revision": "0" * 40}
    check = _check(path, results, labels, metric)
    assert check.reason == ("scored on mallory/huge-dataset; this board checks results "
                            "against ImageAttributionBench/ImageAttributionBench only")


def test_the_verifier_checks_a_file_once_until_it_changes(scored, labels, metric, tmp_path):
    path, results = _copy_run(scored, tmp_path / "cache")
    verifier = Verifier(labels, metric)
    assert verifier(results, path).status == VERIFIED
    assert len(verifier._done) == 1
    verifier(results, path)
    assert len(verifier._done) == 1
    results["protocols"]["standard"]["splits"]["test"]["accuracy"] = 0.99
    path.write_text(json.dumps(results) + " ")  # another size: another version of the file
    assert verifier(results, path).status == SELF_REPORTED


def test_a_board_that_requires_verified_numbers_rejects_the_others(scored, labels, metric,
                                                                   tmp_path):
    from leaderboard.data import load_board

    _copy_run(scored, tmp_path / "results" / "good")
    path, results = _copy_run(scored, tmp_path / "results" / "edited")
    results["protocols"]["standard"]["splits"]["test"]["accuracy"] = 0.99
    path.write_text(json.dumps(results))
    board = load_board(tmp_path / "results", verifier=Verifier(labels, metric),
                       require_verified=True)
    assert [e.folder for e in board.entries] == ["good"]
    assert board.entry("good").conflict == ""  # a rejected file claims nothing
    (rejected,) = board.rejected
    assert rejected.path.startswith("edited/") and rejected.reason.startswith(
        "not verified: standard/test accuracy: the file says 0.99")
