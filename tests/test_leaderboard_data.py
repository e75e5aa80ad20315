"""The leaderboard's data layer, no browser: loading, rejecting, the latest-file rule, the
dataset-revision check, the table's order and filters, chart tables, the model detail tables,
and a results file pushed with push_report (HfApi faked) showing up after a reload."""

from __future__ import annotations

import shutil

import pytest
from leaderboard_fixtures import (
    EVIL,
    MODELS,
    ORDER,
    REVISION,
    make_results,
    write_results_folder,
)

import imageattributionbench as iab
from harness.report import push_report
from harness.results_io import write_results
from leaderboard import charts
from leaderboard.data import (
    MODEL_COLUMN,
    TASK_COLUMNS,
    confusion_table,
    load_board,
    main_table,
    model_info_table,
    per_generator_table,
    per_semantic_table,
    rejected_table,
    robustness_table,
    semantic_table,
)
from leaderboard.ui import Source, about_markdown

STD = TASK_COLUMNS["standard_accuracy"]


@pytest.fixture
def root(tmp_path):
    return write_results_folder(tmp_path / "results")


@pytest.fixture
def board(root):
    return load_board(root, dataset_revision=REVISION)


def test_valid_models_are_loaded_and_bad_files_rejected_with_reasons(board):
    assert sorted(e.model_id for e in board.entries) == sorted(MODELS)
    reasons = {r.path: r.reason for r in board.rejected}
    assert set(reasons) == {"broken/json/results_2026-11-27T23-59-00Z.json",
                            "broken/range/results_2026-11-27T23-59-00Z.json",
                            "delta/old-rev/results_2026-11-27T23-59-00Z.json"}
    assert reasons["broken/json/results_2026-11-27T23-59-00Z.json"].startswith(
        "not a readable JSON file")
    assert "protocols.standard.splits.test.accuracy: 1.5 is outside [0, 1]" in \
        reasons["broken/range/results_2026-11-27T23-59-00Z.json"]
    assert "'0ld' is not 'abc123'" in reasons["delta/old-rev/results_2026-11-27T23-59-00Z.json"]
    assert list(rejected_table(board).columns) == ["File", "Reason"]


def test_without_a_revision_every_revision_is_ranked(root):
    board = load_board(root)
    assert "delta/old-rev" in {e.model_id for e in board.entries}
    assert len(board.rejected) == 2


def test_the_latest_valid_file_per_model_wins(board):
    acme = board.entry("acme/vit-small")
    assert acme.created_at == "2026-11-27T23:59:00Z" and acme.values["standard_accuracy"] == 90.0
    assert [e.created_at for e in board.superseded] == ["2026-01-01T00:00:00Z"]


def test_a_newer_invalid_file_does_not_hide_the_older_valid_one(root):
    shutil.copy(root / "broken/json/results_2026-11-27T23-59-00Z.json",
                root / "acme/vit-small/results_2027-01-01T00-00-00Z.json")
    board = load_board(root, REVISION)
    assert board.entry("acme/vit-small").values["standard_accuracy"] == 90.0


def test_table_is_ordered_by_standard_accuracy_with_all_columns(board):
    df = main_table(board)
    assert list(df[MODEL_COLUMN]) == ORDER
    assert list(df[STD]) == [90.0, 80.0, 75.0]
    assert list(df.columns) == ["Model", "Method", *TASK_COLUMNS.values()]
    # a model without the protocol has no value there (not a zero)
    gamma = df.set_index(MODEL_COLUMN).loc[f"gamma/{EVIL}"]
    assert gamma.isna()[TASK_COLUMNS["degraded_mean_accuracy"]]
    assert gamma[TASK_COLUMNS["semantic_disjoint_mean_accuracy"]] == 55.0  # 60, 55, 50


def test_sorting_by_another_task_puts_missing_values_last(board):
    df = main_table(board, sort_by="degraded_worst_accuracy")
    assert list(df[MODEL_COLUMN]) == ["acme/vit-small", "beta/clip-probe", f"gamma/{EVIL}"]
    asc = main_table(board, sort_by="standard_accuracy", descending=False)
    assert list(asc[MODEL_COLUMN]) == ORDER[::-1]
    assert list(main_table(board, sort_by="model")[MODEL_COLUMN]) == sorted(MODELS)


def test_filters_by_method_and_protocol(board):
    assert list(main_table(board, methods=["linear_probe", "score"])[MODEL_COLUMN]) == ORDER[1:]
    assert list(main_table(board, protocol="degraded")[MODEL_COLUMN]) == \
        ["acme/vit-small", "beta/clip-probe"]
    assert list(main_table(board, protocol="open_set")[MODEL_COLUMN]) == ["acme/vit-small"]
    assert main_table(board, methods=[]).empty
    with pytest.raises(iab.BenchmarkError, match="valid: finetune"):
        main_table(board, methods=["zero_shot"])
    with pytest.raises(iab.BenchmarkError, match="valid: standard"):
        main_table(board, protocol="nope")


def test_chart_tables_and_figures(board):
    rob = robustness_table(board)
    assert set(rob["model"]) == {"acme/vit-small", "beta/clip-probe"}
    acme = rob[rob["model"] == "acme/vit-small"].set_index("condition")["accuracy"]
    assert list(acme.index) == ["clean", *iab.DEGRADATIONS]
    assert acme["clean"] == 90.0 and acme[list(iab.DEGRADATIONS)[-1]] == 60.0
    sem = semantic_table(board)
    assert len(sem) == 2 * len(iab.PAPER_SEMANTIC_TASKS)
    row = sem[(sem["model"] == "acme/vit-small") & (sem["task"] == "semantic_disjoint")].iloc[0]
    assert (row["seen"], row["unseen"], row["gap"]) == (90.0, 70.0, 20.0)
    for fig in (charts.robustness_figure(rob), charts.semantic_figure(sem),
                charts.robustness_figure(rob.iloc[:0])):
        assert fig.axes


def test_model_detail_tables(board):
    entry = board.entry("acme/vit-small")
    cm = confusion_table(entry)
    assert list(cm.index) == ["real", "SD1_5", "FLUX"] and int(cm.to_numpy().sum()) == 100
    sem = per_semantic_table(entry)
    assert list(sem["semantic"]) == ["cat", "bedroom"]
    assert sem.set_index("semantic").loc["cat", "standard/test"] == 90.0
    gen = per_generator_table(entry).set_index("label")
    assert gen.loc["FLUX", "standard/test"] == 50.0
    info = dict(model_info_table(board.entry(f"gamma/{EVIL}")).to_numpy().tolist())
    assert info["model"] == f"gamma/{EVIL}"  # kept as text; the UI shows it as text
    with pytest.raises(iab.BenchmarkError, match="its splits: standard/test"):
        confusion_table(entry, "standard/nope")


def test_about_gives_the_submit_command():
    md = about_markdown()
    assert ("accelerate launch harness/run.py --model <hub id> --method finetune --protocol all "
            "--dataset ImageAttributionBench/ImageAttributionBench --push-to-hub --results-repo "
            "ImageAttributionBench/ImageAttributionBench-results") in md
    assert all(p in md for p in iab.PROTOCOLS)


class FakeHfApi:
    """The HfApi calls push_report makes for a results repo; commits write into a local
    'repo'. (The push paths against the Hub's write API: tests/test_hub_push.py.)"""

    token = "hf_fake"
    endpoint = "https://huggingface.co"

    def __init__(self, repo_root):
        self.repo_root = repo_root

    def whoami(self):
        return {"name": "epsilon"}

    def create_commit(self, repo_id, operations, *, repo_type, **kw):
        assert repo_type == "dataset"
        for op in operations:
            dest = self.repo_root / op.path_in_repo
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(op.path_or_fileobj, dest)
        return type("CommitInfo", (), {"pr_revision": None, "pr_url": None})()


def test_a_pushed_results_file_appears_after_reload(root, tmp_path):
    fetched = []

    def fetch(repo_id):
        fetched.append(repo_id)
        return root

    sha = "5503434ddd753f426f4b38109466949a1217c2bb"
    source = Source(results_repo="ImageAttributionBench/ImageAttributionBench-results",
                    dataset_revision=sha, fetch=fetch)
    assert "epsilon/new-model" not in {e.model_id for e in source.board().entries}
    out = tmp_path / "run"
    results = make_results("epsilon/new-model", standard=95, created_at="2026-12-01T00:00:00Z",
                           revision=sha)
    results["schema_version"] = 2  # results that name their dataset revision can be pushed
    results["dataset"].update(local=False, fingerprint=None, hub_copy_of=None)
    results["model"]["local"] = False
    write_results(results, out)
    push_report(out, "epsilon/new-model", api=FakeHfApi(root), model=False,
                results_repo="ImageAttributionBench/ImageAttributionBench-results")
    assert (root / "epsilon/new-model/results_2026-12-01T00-00-00Z.json").is_file()
    assert "epsilon/new-model" not in {e.model_id for e in source.board().entries}  # cached
    board = source.reload()
    assert main_table(board)[MODEL_COLUMN].iloc[0] == "epsilon/new-model"
    assert fetched == ["ImageAttributionBench/ImageAttributionBench-results"] * 2
