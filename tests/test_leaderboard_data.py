"""The leaderboard's data layer, no browser: loading, rejecting, the latest-file rule, the
ranked dataset revision, the table's columns, order, ranks and filters, chart tables and
figures, the model detail tables, the About tab, and a results file pushed with push_report
(HfApi faked) showing up after a reload."""

from __future__ import annotations

import shutil

import plotly.graph_objects as go
import pytest
from leaderboard_fixtures import EVIL, MODELS, ORDER, REVISION, make_results, write_entry, \
    write_results_folder

import imageattributionbench as iab
from harness.report import push_report
from harness.results_io import write_results
from leaderboard import charts
from leaderboard.data import load_board
from leaderboard.source import Source
from leaderboard.tables import (COLUMNS, MODEL, PARAMS, RANK, REVISION as REV_COL,
                                TASK_COLUMNS, confusion_table, display_name, family,
                                generator_table, main_table, model_info_table,
                                per_generator_table, per_semantic_table, rejected_table,
                                robustness_table, semantic_table, unranked_table)
from leaderboard.ui import about_markdown, blanks_note

STD = TASK_COLUMNS["standard_accuracy"]


@pytest.fixture
def root(tmp_path):
    return write_results_folder(tmp_path / "results")


@pytest.fixture
def board(root):
    return load_board(root, dataset_revision=REVISION)


def test_valid_models_are_loaded_and_bad_files_rejected_with_reasons(board):
    assert sorted(e.model_id for e in board.entries) == sorted([*MODELS, "delta/old-rev"])
    reasons = {r.path: r.reason for r in board.rejected}
    assert set(reasons) == {"broken/json/results_2026-11-27T23-59-00Z.json",
                            "broken/range/results_2026-11-27T23-59-00Z.json"}
    assert reasons["broken/json/results_2026-11-27T23-59-00Z.json"].startswith(
        "not a readable JSON file")
    assert "protocols.standard.splits.test.accuracy: 1.5 is outside [0, 1]" in \
        reasons["broken/range/results_2026-11-27T23-59-00Z.json"]
    assert list(rejected_table(board).columns) == ["File", "Reason"]


def test_another_dataset_revision_is_listed_but_not_ranked(board):
    assert sorted(e.model_id for e in board.ranked()) == sorted(MODELS)
    old = board.entry("delta/old-rev")
    assert "at 0ld; the board ranks ImageAttributionBench/ImageAttributionBench at abc123" in \
        board.unranked_reason(old)
    unranked = unranked_table(board)
    assert list(unranked[MODEL]) == ["delta/old-rev"] and RANK not in unranked.columns
    assert unranked.iloc[0][REV_COL] == "0ld"


def test_without_a_revision_the_most_used_one_is_ranked(root):
    board = load_board(root)
    assert board.ranked_dataset.revision == REVISION and len(board.ranked()) == 3


def test_the_latest_valid_file_per_folder_wins(board):
    acme = board.entry("acme/vit-small")
    assert acme.created_at == "2026-11-27T23:59:00Z" and acme.values["standard_accuracy"] == 90.0
    assert [e.created_at for e in board.superseded] == ["2026-01-01T00:00:00Z"]


def test_a_newer_invalid_file_does_not_hide_the_older_valid_one(root):
    shutil.copy(root / "broken/json/results_2026-11-27T23-59-00Z.json",
                root / "acme/vit-small/results_2027-01-01T00-00-00Z.json")
    board = load_board(root, REVISION)
    assert board.entry("acme/vit-small").values["standard_accuracy"] == 90.0


def test_table_has_rank_date_revision_parameters_and_one_decimal(board):
    df = main_table(board)
    assert list(df.columns) == COLUMNS
    assert list(df[MODEL]) == ORDER
    assert list(df[RANK]) == [1, 2, 3]
    assert list(df[STD]) == [90.0, 80.0, 75.0]
    assert set(df["Date"]) == {"2026-11-27"} and set(df[REV_COL]) == {REVISION}
    assert set(df[PARAMS]) == {"5.0M"}
    assert set(df["Verified"]) == {"not checked yet"}  # no verifier given
    # a model without the protocol has no value there (not a zero)
    gamma = df.set_index(MODEL).loc[f"gamma/{EVIL}"]
    assert gamma.isna()[TASK_COLUMNS["degraded_mean_accuracy"]]
    assert gamma[TASK_COLUMNS["semantic_disjoint_mean_accuracy"]] == 55.0  # 60, 55, 50
    # open-set AUROC 87.65 in the file: one decimal on the board
    assert df.set_index(MODEL).loc["acme/vit-small", TASK_COLUMNS["open_set_auroc"]] == 87.7


def test_ties_share_a_rank(root):
    write_entry(root, make_results("zeta/tie", standard=80))
    df = main_table(load_board(root, REVISION))
    assert list(df[RANK]) == [1, 2, 2, 4]
    assert list(df[MODEL])[1:3] == sorted([f"gamma/{EVIL}", "zeta/tie"])


def test_sorting_by_another_task_puts_missing_values_last(board):
    df = main_table(board, sort_by="degraded_worst_accuracy")
    assert list(df[MODEL]) == ["acme/vit-small", "beta/clip-probe", f"gamma/{EVIL}"]
    assert list(df[RANK])[:2] == [1, 2] and df[RANK].isna().iloc[2]
    asc = main_table(board, sort_by="standard_accuracy", descending=False)
    assert list(asc[MODEL]) == ORDER[::-1]
    assert list(main_table(board, sort_by="model")[MODEL]) == sorted(MODELS)


def test_filters_by_method_family_and_protocol(board):
    assert list(main_table(board, methods=["linear_probe", "score"])[MODEL]) == ORDER[1:]
    assert list(main_table(board, protocol="degraded")[MODEL]) == \
        ["acme/vit-small", "beta/clip-probe"]
    assert list(main_table(board, protocol="open_set")[MODEL]) == ["acme/vit-small"]
    assert main_table(board, methods=[]).empty
    assert main_table(board, families=["patchcraft"]).empty
    with pytest.raises(iab.BenchmarkError, match="valid: finetune"):
        main_table(board, methods=["zero_shot"])
    with pytest.raises(iab.BenchmarkError, match="valid: standard"):
        main_table(board, protocol="nope")


def test_family_comes_from_the_method_record_and_presets_are_named():
    r = make_results("x/y")
    assert family(r) == "other"
    r["run_config"]["method_record"] = {"model_type": "iab-patchcraft", "reference": "Zhong"}
    assert family(r) == "patchcraft"
    p = make_results("demo/paper_table/models/tiny-resnet")
    p["run_config"]["preset"] = "resnet50"
    assert family(p) == "resnet50"
    assert display_name(p) == "resnet50 preset (tiny-resnet, local)"
    assert display_name(make_results("/home/me/runs/tiny-resnet")) == "tiny-resnet (local)"
    assert display_name(make_results("acme/vit-small")) == "acme/vit-small"


def test_chart_tables_carry_n_and_chance(board):
    rob = robustness_table(board)
    assert set(rob["model"]) == {"acme/vit-small", "beta/clip-probe"}
    acme = rob[rob["model"] == "acme/vit-small"].set_index("condition")
    assert list(acme.index) == ["clean", *iab.DEGRADATIONS]
    assert acme.loc["clean", "accuracy"] == 90.0 and acme.iloc[-1]["accuracy"] == 60.0
    assert set(acme["n"]) == {100} and set(acme["chance"]) == {34.0}  # 34 of 100 are 'real'
    sem = semantic_table(board)
    assert len(sem) == 2 * len(iab.PAPER_SEMANTIC_TASKS)
    row = sem[(sem["model"] == "acme/vit-small") & (sem["task"] == "semantic_disjoint")].iloc[0]
    assert (row["seen"], row["unseen"], row["gap"], row["n unseen"]) == (90.0, 70.0, 20.0, 100)


def _many_models(root, n):
    for i in range(n):
        write_entry(root, make_results(f"org/model-{i:02d}", standard=50 + i))
    return load_board(root, REVISION)


def test_figures_are_interactive_and_readable_with_many_models(root):
    board = _many_models(root, 14)
    fig = charts.robustness_figure(robustness_table(board))
    assert isinstance(fig, go.Figure)
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert len(lines) == 16  # 14, acme and beta (gamma has no degraded results)
    colours = [t.line.color for t in lines]
    assert len(set(colours)) == len(colours)  # distinct colours for every model
    assert fig.layout.legend.x > 1  # the legend sits beside the axes, not over the data
    assert "n = %{customdata[1]}" in lines[0].hovertemplate  # value, n and model on hover
    assert any(s.line.dash == "dot" for s in fig.layout.shapes)  # the chance line
    sem = charts.semantic_figure(semantic_table(board))
    assert {t.name for t in sem.data if t.mode == "markers"} == {"seen", "unseen"}
    cm = charts.confusion_figure(confusion_table(board.entry("acme/vit-small")), "acme")
    heat = cm.data[0]
    assert heat.type == "heatmap" and heat.texttemplate == "%{text}"
    assert heat.colorbar.title.text.startswith("% of the true")
    assert heat.textfont.color is None  # plotly picks a contrasting colour per cell


def test_names_in_figures_are_plain_text():
    assert charts.plain("<b>x</b>") == "&lt;b&gt;x&lt;/b&gt;"
    assert charts.plain("$x$") == "\u200b$x$"  # never typeset as TeX


def test_model_detail_tables(board):
    entry = board.entry("acme/vit-small")
    cm = confusion_table(entry)
    assert list(cm.index) == ["real", "SD1_5", "FLUX"] and int(cm.to_numpy().sum()) == 100
    sem = per_semantic_table(entry)
    assert list(sem["semantic"]) == ["cat", "bedroom"]
    assert sem.set_index("semantic").loc["cat", "standard/test"] == 90.0
    gen = per_generator_table(entry).set_index("label")
    assert gen.loc["FLUX", "standard/test"] == 50.0
    confused = generator_table(entry).set_index("label")
    # confusion(90): real 34/34, SD1_5 33/33, FLUX 23/33 with 10 taken for real
    assert confused.loc["FLUX", "accuracy"] == 69.7
    assert confused.loc["FLUX", "most confused with"] == "real"
    assert confused.loc["FLUX", "confused share"] == 30.3
    info = dict(model_info_table(board, board.entry(f"gamma/{EVIL}")).to_numpy().tolist())
    assert info["model"] == f"gamma/{EVIL}"  # kept as text; the UI shows it as text
    with pytest.raises(iab.BenchmarkError, match="its splits: standard/test"):
        confusion_table(entry, "standard/nope")


def test_about_says_which_dataset_is_ranked(board, root, tmp_path):
    source = Source(results_dir=root, verify=False)
    md = about_markdown(board, source)
    assert "ImageAttributionBench/ImageAttributionBench) at revision `abc123`" in md
    assert "--push-to-hub --results-repo ImageAttributionBench/ImageAttributionBench-results" \
        in md
    assert all(p in md for p in iab.PROTOCOLS)
    local = tmp_path / "local"
    built = tmp_path / "my-build"
    built.mkdir()
    r = make_results("acme/local")
    r["dataset"] = {"repo": str(built), "revision": None}
    write_entry(local, r)
    md = about_markdown(load_board(local), Source(results_dir=local, verify=False))
    assert "a **local build** of the benchmark" in md and "not the official dataset" in md


def test_blank_cells_are_explained(board):
    note = blanks_note(board)
    assert "Open-set AUROC**: blank for 2 of 3 entries" in note
    assert "--protocol all or open_set" in note


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
                    dataset_revision=sha, fetch=fetch, verify=False)
    assert "epsilon/new-model" not in {e.model_id for e in source.board().entries}
    out = tmp_path / "run"
    results = make_results("epsilon/new-model", standard=95, created_at="2026-12-01T00:00:00Z",
                           revision=sha)
    results["schema_version"] = 2  # results that name their dataset revision can be pushed
    results["dataset"].update(local=False, fingerprint=None, hub_copy_of=None)
    results["model"]["local"] = False
    write_results(results, out)
    (out / "samples_standard_2026-12-01T00-00-00Z.parquet").write_bytes(b"PAR1")
    (out / "samples_standard_2025-01-01T00-00-00Z.parquet").write_bytes(b"another run's")
    push_report(out, "epsilon/new-model", api=FakeHfApi(root), model=False,
                results_repo="ImageAttributionBench/ImageAttributionBench-results")
    assert (root / "epsilon/new-model/results_2026-12-01T00-00-00Z.json").is_file()
    # its samples go beside it (the board verifies from them), another run's do not
    assert sorted(p.name for p in (root / "epsilon/new-model").glob("samples_*")) == [
        "samples_standard_2026-12-01T00-00-00Z.parquet"]
    assert "epsilon/new-model" not in {e.model_id for e in source.board().entries}  # cached
    board = source.reload()
    assert main_table(board)[MODEL].iloc[0] == "epsilon/new-model"
    assert fetched == ["ImageAttributionBench/ImageAttributionBench-results"] * 2


def test_an_unreachable_results_repo_keeps_the_page_up(root):
    calls = []

    def fetch(repo_id):
        calls.append(repo_id)
        if len(calls) == 1:
            raise ConnectionError("the Hub is down")
        return root

    source = Source(results_repo="org/results", fetch=fetch, verify=False, retry_s=7)
    board = source.reload()  # never raises
    assert board.entries == [] and source.needs_retry()
    assert "could not be read from the results repo org/results** (ConnectionError: the Hub " \
        "is down)" in source.banner() and "retrying every 7 s" in source.banner()
    version = source.version
    board = source.reload()
    assert len(board.ranked()) == 3 and source.version == version + 1
    assert not source.needs_retry() and source.banner().startswith("Results from the results")


def test_the_page_starts_before_the_check_and_the_check_follows(root):
    source = Source(results_dir=root)
    board = source.reload(check=False)  # what the app shows at once
    assert {e.verification.status for e in board.entries} == {"not checked yet"}
    assert "Checking 4 entries against their samples" in source.banner()
    board = source.reload()  # the refresher's first round
    assert {e.verification.status for e in board.entries} == {"self-reported"}
    assert "no samples file" in board.entry("acme/vit-small").verification.reason
    assert "Checking" not in source.banner()
