"""One results file must never take the board down or push another model off (issue 10 §3):
TeX in a model id, JSON nested 100,000 deep, a 1 MB model id, an impostor claiming another
model's id with a date in 9999. Each is read at bounded cost and listed under Rejected, or
shown as a conflict; the page still builds and the victim keeps its own numbers."""

from __future__ import annotations

import time

import pytest
from leaderboard_fixtures import make_results, write_entry, write_json

from leaderboard import charts
from leaderboard.data import load_board
from leaderboard.intake import MAX_REASON
from leaderboard.source import Source
from leaderboard.tables import MODEL, TASK_COLUMNS, main_table, robustness_table

STD = TASK_COLUMNS["standard_accuracy"]
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "results"
    write_entry(root, make_results("acme/vit-small", standard=90))
    return root


def _build_page(root):
    from leaderboard.ui import build_demo

    source = Source(results_dir=root, verify=False)
    return source, build_demo(source)


def test_tex_in_a_model_id_is_plain_text(root):
    write_entry(root, make_results("org/v2$_$", standard=70))
    source, demo = _build_page(root)  # matplotlib's mathtext parser used to end start-up here
    assert "org/v2$_$" in {e.model_id for e in source.board().entries}
    fig = charts.robustness_figure(robustness_table(source.board()))
    assert "org/v2$_$" in {t.name for t in fig.data}
    dollars = make_results("$x^2$", standard=60)
    assert charts.plain(dollars["model"]["id"]).startswith("\u200b$")


def test_deeply_nested_json_is_rejected_not_a_recursion_error(root):
    write_json(root, "deep/nest/results_2026-11-27T23-59-00Z.json", DEEP)
    write_json(root, "deep/obj/results_2026-11-27T23-59-00Z.json",
               '{"a": ' * 40 + "1" + "}" * 40)  # parses, but deeper than any results file
    board = load_board(root)
    reasons = {r.path.split("/")[1]: r.reason for r in board.rejected}
    assert "nested deeper than the parser allows" in reasons["nest"]
    assert "nested 40 levels deep, more than 32" in reasons["obj"]
    assert [e.model_id for e in board.entries] == ["acme/vit-small"]
    _build_page(root)


def test_a_huge_model_id_is_rejected_at_bounded_cost(root):
    write_json(root, "org/huge/results_2026-11-27T23-59-00Z.json",
               make_results("org/" + "x" * 1_000_000, standard=99))
    started = time.perf_counter()
    board = load_board(root)
    source, _ = _build_page(root)
    elapsed = time.perf_counter() - started
    assert elapsed < 30, f"{elapsed:.1f} s"  # was 117 s, rendering the name into a chart
    (rejected,) = board.rejected
    assert "a string longer than 4096 characters" in rejected.reason
    assert len(rejected.reason) <= MAX_REASON + 40 and len(rejected.path) < 1100
    assert list(main_table(board)[MODEL]) == ["acme/vit-small"]


def test_an_oversized_file_is_not_even_read(root):
    write_json(root, "big/file/results_2026-11-27T23-59-00Z.json", " " * (5 * 1024 * 1024))
    (rejected,) = load_board(root).rejected
    assert "more than the 4194304 a results file may have" in rejected.reason


def _impostor(root, created_at):
    fake = make_results("acme/vit-small", standard=40, created_at=created_at)
    write_json(root, f"evil/impostor/results_{created_at.replace(':', '-')}.json", fake)


def test_an_impostor_from_the_future_does_not_replace_the_victim(root):
    _impostor(root, "9999-01-01T00:00:00Z")
    for layout in ("repo", "runs"):
        board = load_board(root, layout=layout)
        (rejected,) = board.rejected
        assert rejected.path.startswith("evil/impostor/") and "in the future" in rejected.reason
        assert main_table(board).set_index(MODEL).loc["acme/vit-small", STD] == 90.0


def test_an_impostor_in_another_folder_is_refused_or_shown_as_a_conflict(root):
    _impostor(root, "2026-12-01T00:00:00Z")  # newer than the victim's run
    board = load_board(root, layout="repo")  # the results repo: a file lives in its folder
    (rejected,) = board.rejected
    assert "lives in evil/impostor/ but claims model.id 'acme/vit-small'" in rejected.reason
    assert main_table(board).set_index(MODEL).loc["acme/vit-small", STD] == 90.0
    board = load_board(root, layout="runs")  # a local folder: both shown, neither wins
    assert board.rejected == [] and board.ranked() == []
    victim, impostor = board.entry("acme/vit-small"), board.entry("evil/impostor")
    assert victim.values["standard_accuracy"] == 90.0
    assert impostor.values["standard_accuracy"] == 40.0
    assert "evil/impostor/ also claim model id 'acme/vit-small'" in victim.conflict
    assert "acme/vit-small/ also claim" in impostor.conflict


def test_reload_lists_hostile_files_and_keeps_the_table(root):
    source, demo = _build_page(root)
    write_entry(root, make_results("org/v2$_$", standard=70))
    write_json(root, "deep/nest/results_2026-11-27T23-59-00Z.json", DEEP)
    (reload,) = [f for f in demo.fns.values() if f.name == "reload"]
    out = reload.fn(["finetune", "linear_probe", "score"], ["other"], "all",
                    "standard_accuracy", list(TASK_COLUMNS), None)
    table, rejected = out[2], out[8]
    assert list(table["value"].data[MODEL]) == ["acme/vit-small", "org/v2$_$"]
    assert list(rejected["File"]) == ["deep/nest/results_2026-11-27T23-59-00Z.json"]
