"""The Gradio page of the leaderboard: tabs over a :class:`Source` of results files.

Every value reaches the browser through a Dataframe cell of datatype "str", a dropdown choice or
pixels of a matplotlib figure, all shown as text, so a model name holding HTML stays text. The
only Markdown is the About tab, built from this package's own constants.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import gradio as gr
import matplotlib.pyplot as plt
import pandas as pd

import imageattributionbench as iab
from harness.results import METHODS
from leaderboard import charts
from leaderboard.data import (
    TASK_COLUMNS,
    Board,
    confusion_table,
    fetch_results_repo,
    load_board,
    main_table,
    model_info_table,
    per_generator_table,
    per_semantic_table,
    rejected_table,
    robustness_table,
    semantic_table,
    split_choices,
)

HUB_RESULTS_REPO = "ImageAttributionBench/ImageAttributionBench-results"
SUBMIT_COMMAND = (
    "accelerate launch harness/run.py --model <hub id> --method finetune --protocol all "
    f"--dataset {iab.HUB_REPO_ID} --push-to-hub --results-repo {HUB_RESULTS_REPO}"
)
ALL = "all"
SORT_CHOICES = [(iab_task.name, iab_task.id) for iab_task in iab.LEADERBOARD_TASKS] + [
    ("Model id", "model")]


class Source:
    """Where results files come from: a local folder, or a results dataset repo downloaded with
    ``fetch`` (``fetch_results_repo`` by default; tests pass their own)."""

    def __init__(self, results_dir: str | os.PathLike | None = None,
                 results_repo: str | None = None, dataset_revision: str | None = None,
                 fetch: Callable[[str], Path] = fetch_results_repo):
        if (results_dir is None) == (results_repo is None):
            raise iab.BenchmarkError("give exactly one of results_dir and results_repo")
        self.results_dir, self.results_repo = results_dir, results_repo
        self.dataset_revision = dataset_revision
        self._fetch = fetch
        self._lock = threading.Lock()  # two browsers pressing Reload at once
        self._board: Board | None = None

    def reload(self) -> Board:
        with self._lock:
            folder = self._fetch(self.results_repo) if self.results_repo else self.results_dir
            self._board = load_board(folder, self.dataset_revision)
            return self._board

    def board(self) -> Board:
        return self._board if self._board is not None else self.reload()

    def describe(self) -> str:
        where = f"dataset repo {self.results_repo}" if self.results_repo else "a local folder"
        rev = (f"; dataset revision {self.dataset_revision} only" if self.dataset_revision
               else "")
        return f"Results from {where}{rev}."


def about_markdown() -> str:
    """The About tab: protocols, the leaderboard's numbers and how to submit."""
    protos = "\n".join(f"- **{p.name}**: {p.description}" for p in iab.PROTOCOLS.values())
    tasks = "\n".join(f"- **{t.name}**: {t.description}" for t in iab.LEADERBOARD_TASKS)
    return f"""\
## {iab.BENCHMARK_NAME} {iab.BENCHMARK_VERSION}

Which generative model made this image? Models are ranked on the test splits of the dataset
[{iab.HUB_REPO_ID}](https://huggingface.co/datasets/{iab.HUB_REPO_ID}); checkpoints are chosen
on validation splits only.

### Leaderboard numbers
{tasks}

### Protocols (dataset configs)
{protos}

### How to submit
Run the harness on your model (a Hub id) and push the results file:

```
{SUBMIT_COMMAND}
```

The results file lands in `{HUB_RESULTS_REPO}` as `<model org>/<model name>/results_<time>.json`.
Each file is checked against the results schema; a file that fails is listed under *Rejected*
with the reason. The latest valid file of each model is ranked.
"""


def _table_view(board: Board, methods, protocol, sort_by) -> pd.DataFrame:
    return main_table(board, methods=list(methods or []), protocol=protocol, sort_by=sort_by)


def _detail(board: Board, model_id: str | None, protocol_split: str | None):
    """Outputs of the model tab: split dropdown, info, confusion figure, two tables."""
    if not board.entries:
        empty = pd.DataFrame()
        return (gr.update(choices=[], value=None), empty, charts._empty("No results yet."),
                empty, empty)
    ids = [e.model_id for e in board.entries]
    entry = board.entry(model_id if model_id in ids else ids[0])
    splits = split_choices(entry)
    if protocol_split not in splits:
        protocol_split = "standard/test" if "standard/test" in splits else splits[0]
    cm = confusion_table(entry, protocol_split)
    plt.close("all")  # figures are handed to Gradio already rendered; free the old ones
    return (gr.update(choices=splits, value=protocol_split), model_info_table(entry),
            charts.confusion_figure(cm, f"{entry.model_id}: {protocol_split}"),
            per_semantic_table(entry), per_generator_table(entry))


def build_demo(source: Source) -> gr.Blocks:
    """The whole page. Data is read once at start and again on each Reload."""
    board0 = source.board()
    with gr.Blocks(title=f"{iab.BENCHMARK_NAME} leaderboard") as demo:
        gr.Markdown(f"# {iab.BENCHMARK_NAME} leaderboard\n{source.describe()}")
        with gr.Row():
            methods = gr.CheckboxGroup(list(METHODS), value=list(METHODS), label="Method family",
                                       elem_id="filter-method")
            protocol = gr.Dropdown([ALL, *iab.PROTOCOLS], value=ALL, label="Has protocol",
                                   elem_id="filter-protocol")
            sort_by = gr.Dropdown(SORT_CHOICES, value="standard_accuracy", label="Sort by",
                                  elem_id="sort-by")
            reload_btn = gr.Button("Reload results", elem_id="reload")
        with gr.Tabs():
            with gr.Tab("Leaderboard", id="leaderboard"):
                table = gr.Dataframe(_table_view(board0, METHODS, ALL, "standard_accuracy"),
                                     datatype=["str", "str"] + ["number"] * len(TASK_COLUMNS),
                                     interactive=False, elem_id="main-table", wrap=True,
                                     label="One row per model (its latest valid results file)")
            with gr.Tab("Robustness", id="robustness"):
                robust_plot = gr.Plot(charts.robustness_figure(robustness_table(board0)),
                                      elem_id="robustness-plot", label="Robustness")
            with gr.Tab("Semantic generalization", id="semantic"):
                semantic_plot = gr.Plot(charts.semantic_figure(semantic_table(board0)),
                                        elem_id="semantic-plot", label="Semantic generalization")
            with gr.Tab("Model details", id="details"):
                ids = [e.model_id for e in board0.entries]
                with gr.Row():
                    model = gr.Dropdown(ids, value=ids[0] if ids else None, label="Model",
                                        elem_id="detail-model")
                    split = gr.Dropdown([], label="Split", elem_id="detail-split")
                info = gr.Dataframe(datatype="str", interactive=False, label="Run",
                                    elem_id="detail-info")
                confusion = gr.Plot(label="Confusion matrix", elem_id="detail-confusion")
                per_sem = gr.Dataframe(interactive=False, label="Accuracy (%) per semantic",
                                       elem_id="detail-semantic")
                per_gen = gr.Dataframe(interactive=False, label="Accuracy (%) per label",
                                       elem_id="detail-generator")
            with gr.Tab("Rejected", id="rejected"):
                rejected = gr.Dataframe(rejected_table(board0), datatype="str",
                                        interactive=False, wrap=True, elem_id="rejected-table",
                                        label="Files left off the leaderboard, and why")
            with gr.Tab("About", id="about"):
                gr.Markdown(about_markdown(), elem_id="about")

        filters = [methods, protocol, sort_by]
        for f in filters:
            f.change(lambda m, p, s: _table_view(source.board(), m, p, s), filters, table)
        detail_out = [split, info, confusion, per_sem, per_gen]
        model.change(lambda m, s: _detail(source.board(), m, s), [model, split], detail_out)
        split.input(lambda m, s: _detail(source.board(), m, s), [model, split], detail_out)
        demo.load(lambda m, s: _detail(source.board(), m, s), [model, split], detail_out)

        def reload(m, p, s, chosen):
            board = source.reload()
            plt.close("all")
            ids = [e.model_id for e in board.entries]
            return (_table_view(board, m, p, s),
                    charts.robustness_figure(robustness_table(board)),
                    charts.semantic_figure(semantic_table(board)),
                    rejected_table(board),
                    gr.update(choices=ids, value=chosen if chosen in ids else
                              (ids[0] if ids else None)))

        reload_btn.click(reload, [*filters, model],
                         [table, robust_plot, semantic_plot, rejected, model])
    return demo
