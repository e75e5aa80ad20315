"""The Gradio page of the leaderboard: tabs over a :class:`leaderboard.source.Source`.

Every value from a results file reaches the browser as a Dataframe cell of datatype "str" or
"number", a dropdown choice, a read-only Textbox or text inside a plotly figure (escaped by
``charts.plain``), so a model name holding HTML, Markdown or TeX stays text. The only Markdown
is built from this package's own constants and counts.
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

import imageattributionbench as iab
from harness.results import METHODS
from leaderboard import charts, ui_submit
from leaderboard.data import Board
from leaderboard.source import HUB_RESULTS_REPO, Source
from leaderboard.tables import (DATE, FAMILY, INFO_COLUMNS, METHOD, MODEL, PARAMS, RANK, REVISION,
                                TASK_COLUMNS, VERIFIED, confusion_table, display_name,
                                families, generator_table, main_table, model_info_table,
                                per_generator_table, per_semantic_table, rejected_table,
                                robustness_table, semantic_table, split_choices, unranked_table,
                                verification_table)
from leaderboard.verify import TOLERANCE

ALL = "all"
WIDTHS = {RANK: "64px", MODEL: "300px", FAMILY: "130px", METHOD: "120px", VERIFIED: "130px",
          DATE: "110px", REVISION: "110px", PARAMS: "100px"}
POLL_S = 5.0  # how often a page asks whether the board changed (cheap: a version number)
SORT_CHOICES = [(t.name, t.id) for t in iab.LEADERBOARD_TASKS] + [("Model id", "model")]
TASK_NAMES = {t.id: t.name for t in iab.LEADERBOARD_TASKS}
NEEDS = {"standard_accuracy": "the standard protocol",
         "degraded_mean_accuracy": "all six degraded splits (harness --protocol standard, "
                                   "paper or all)",
         "degraded_worst_accuracy": "all six degraded splits",
         "semantic_disjoint_mean_accuracy": "the three paper semantic tasks (--protocol paper "
                                            "or all)",
         "open_set_auroc": "the open_set protocol (--protocol all or open_set), which most "
                           "runs of the paper's table leave out"}


def styled(df: pd.DataFrame):
    """One decimal for every percentage (every float column), blank for a value the run does
    not have; the cell keeps the number, so sorting a column sorts numbers."""
    floats = [c for c in df.columns if c != RANK and (c in TASK_COLUMNS.values() or
                                                      pd.api.types.is_float_dtype(df[c]))]
    style = df.style.format("{:.1f}", subset=floats, na_rep="")
    if RANK in df.columns:
        style = style.format("{:.0f}", subset=[RANK], na_rep="")
    return style


def _datatypes(df: pd.DataFrame) -> list[str]:
    return ["number" if c == RANK or c in TASK_COLUMNS.values() else "str" for c in df.columns]


def table_view(board: Board, methods, fams, protocol, sort_by, columns):
    df = main_table(board, methods=list(methods or []), protocol=protocol, sort_by=sort_by,
                    families=list(fams) if fams else None)
    keep = INFO_COLUMNS + [c for t, c in TASK_COLUMNS.items() if t in (columns or [])]
    df = df[[c for c in df.columns if c in keep]]
    return gr.update(value=styled(df), datatype=_datatypes(df),
                     column_widths=[WIDTHS.get(c, "120px") for c in df.columns])


def blanks_note(board: Board) -> str:
    """Why cells are blank, with the counts on this board."""
    ranked = board.ranked()
    if not ranked:
        return "No ranked entry yet."
    lines = []
    for task, name in TASK_NAMES.items():
        missing = sum(task not in e.values for e in ranked)
        if missing:
            lines.append(f"- **{name}**: blank for {missing} of {len(ranked)} entries, whose "
                         f"runs did not evaluate {NEEDS[task]}.")
    head = ("A blank cell is a number the run did not produce, never a zero. Percentages "
            "carry one decimal. *Verified*: recomputed by this board from the run's per-image "
            f"samples against the benchmark's own labels (within {TOLERANCE:g}); "
            "*self-reported*: the file's own numbers, with the reason below.")
    return head + ("\n\n" + "\n".join(lines) if lines else "")


def about_markdown(board: Board, source: Source) -> str:
    """The About tab: what is ranked (truthfully), the numbers, protocols, how to submit."""
    protos = "\n".join(f"- **{p.name}**: {p.description}" for p in iab.PROTOCOLS.values())
    tasks = "\n".join(f"- **{t.name}**: {t.description}" for t in iab.LEADERBOARD_TASKS)
    ref = board.ranked_dataset
    if ref is None:
        ranked = "No results are ranked yet."
    elif ref.local:
        ranked = (f"Entries are ranked on the test splits of a **local build** of the benchmark "
                  f"(`{ref.repo}`), not the official dataset on the Hub.")
    else:
        official = ref.repo.lower() == iab.HUB_REPO_ID.lower()
        ranked = (f"Entries are ranked on the test splits of "
                  f"[{ref.repo}](https://huggingface.co/datasets/{ref.repo})"
                  f"{'' if official else ' (not the official dataset)'} at revision "
                  f"`{ref.revision or 'unrecorded'}`.")
    return f"""\
## {iab.BENCHMARK_NAME} {iab.BENCHMARK_VERSION}

Which generative model made this image? {ranked} Entries scored on another revision or on a
local build are listed below the ranked table, unranked. Checkpoints are chosen on validation
splits only. Results come from {source.where()}.

### Verified numbers
Each entry's numbers are recomputed from its samples file (one row per image: prediction and
class probabilities) against the benchmark's own labels at the dataset revision it names, with
the benchmark's metric module; every image of each scored split must appear exactly once.
An entry whose numbers all agree within {TOLERANCE:g} is *verified*; any other is
*self-reported*, with the reason.

### Leaderboard numbers
{tasks}

### Protocols (dataset configs)
{protos}

### How to submit
Queue a trained attributor in the *Submit* tab: the backend scores it on every protocol and
publishes the results. Or run the harness yourself and push the results file and samples:

```
{ui_submit.SELF_COMMAND}
```

They land in `{source.results_repo or HUB_RESULTS_REPO}` as
`<model org>/<model name>/results_<time>.json`. A file that fails the checks is listed under
*Rejected* with the reason; the latest valid file of each model's folder is ranked.
"""


def _entry_choices(board: Board) -> list[tuple[str, str]]:
    return [(display_name(e.results), e.folder) for e in board.entries]


def detail(board: Board, key: str | None, protocol_split: str | None):
    """Outputs of the model tab: split dropdown, info, confusion figure, per-generator figure
    and table, two accuracy tables."""
    if not board.entries:
        empty = pd.DataFrame()
        return (gr.update(choices=[], value=None), empty, charts.empty("No results yet."),
                charts.empty("No results yet."), empty, empty, empty)
    keys = [e.folder for e in board.entries]
    entry = board.entry(key if key in keys else keys[0])
    splits = split_choices(entry)
    if protocol_split not in splits:
        protocol_split = "standard/test" if "standard/test" in splits else splits[0]
    name = display_name(entry.results)
    return (gr.update(choices=splits, value=protocol_split), model_info_table(board, entry),
            charts.confusion_figure(confusion_table(entry, protocol_split),
                                    f"{name}: {protocol_split}"),
            charts.generator_figure(generator_table(entry, protocol_split),
                                    f"{name}: accuracy per true label, {protocol_split}"),
            styled(generator_table(entry, protocol_split).drop(columns=["chance"])),
            styled(per_semantic_table(entry)), styled(per_generator_table(entry)))


def _frame(df: pd.DataFrame, **kw) -> gr.Dataframe:
    return gr.Dataframe(df, datatype="str", interactive=False, wrap=True, latex_delimiters=[],
                        **kw)


def build_demo(source: Source) -> gr.Blocks:
    """The whole page. The board is read at start, on each Reload and by the refresher."""
    board0 = source.board()
    all_tasks = list(TASK_COLUMNS)
    with gr.Blocks(title=f"{iab.BENCHMARK_NAME} leaderboard") as demo:
        gr.Markdown(f"# {iab.BENCHMARK_NAME} leaderboard")
        banner = gr.Markdown(source.banner(), elem_id="banner")
        version = gr.State(source.version)
        with gr.Tabs():
            with gr.Tab("Leaderboard", id="leaderboard"):
                with gr.Row():
                    methods = gr.CheckboxGroup(list(METHODS), value=list(METHODS),
                                               label="Method", elem_id="filter-method")
                    fams = gr.Dropdown(families(board0), value=[], multiselect=True,
                                       label="Method family (none chosen: all)",
                                       elem_id="filter-family")
                    protocol = gr.Dropdown([ALL, *iab.PROTOCOLS], value=ALL,
                                           label="Has protocol", elem_id="filter-protocol")
                    sort_by = gr.Dropdown(SORT_CHOICES, value="standard_accuracy",
                                          label="Sort and rank by", elem_id="sort-by")
                with gr.Row():
                    columns = gr.CheckboxGroup([(TASK_NAMES[t], t) for t in all_tasks],
                                               value=all_tasks, label="Columns",
                                               elem_id="columns")
                    reload_btn = gr.Button("Reload results", elem_id="reload", scale=0)
                first = table_view(board0, METHODS, [], ALL, "standard_accuracy", all_tasks)
                table = gr.Dataframe(first["value"], datatype=first["datatype"],
                                     interactive=False, elem_id="main-table", wrap=True,
                                     show_search="search", pinned_columns=2,
                                     latex_delimiters=[], column_widths=first["column_widths"],
                                     label="Ranked: one row per model folder (its latest "
                                           "valid results file)")
                notes = gr.Markdown(blanks_note(board0), elem_id="table-notes")
                unverified = _frame(verification_table(board0), elem_id="unverified-table",
                                    label="Not verified, and why")
                unranked = _frame(styled(unranked_table(board0)), elem_id="unranked-table",
                                  label="Not ranked: other dataset revisions, local builds, "
                                        "conflicts")
            with gr.Tab("Robustness", id="robustness"):
                robust_plot = gr.Plot(charts.robustness_figure(robustness_table(board0)),
                                      elem_id="robustness-plot", label="Robustness")
            with gr.Tab("Semantic generalization", id="semantic"):
                semantic_plot = gr.Plot(charts.semantic_figure(semantic_table(board0)),
                                        elem_id="semantic-plot", label="Semantic generalization")
            with gr.Tab("Model details", id="details"):
                choices = _entry_choices(board0)
                with gr.Row():
                    model = gr.Dropdown(choices, value=choices[0][1] if choices else None,
                                        label="Model", elem_id="detail-model")
                    split = gr.Dropdown([], label="Split", elem_id="detail-split")
                info = _frame(pd.DataFrame(), label="Run", elem_id="detail-info")
                confusion = gr.Plot(label="Confusion matrix", elem_id="detail-confusion")
                per_gen_plot = gr.Plot(label="Which labels it confuses",
                                       elem_id="detail-generator-plot")
                per_gen_confused = _frame(pd.DataFrame(), label="Per true label: accuracy (%) "
                                          "and what it is most often taken for",
                                          elem_id="detail-confused")
                per_sem = _frame(pd.DataFrame(), label="Accuracy (%) per semantic",
                                 elem_id="detail-semantic")
                per_gen = _frame(pd.DataFrame(), label="Accuracy (%) per label and split",
                                 elem_id="detail-generator")
            with gr.Tab("Submit", id="submit"):
                queue = ui_submit.submit_tab(source)
            with gr.Tab("Rejected", id="rejected"):
                rejected = _frame(rejected_table(board0), elem_id="rejected-table",
                                  label="Files left off the leaderboard, and why")
            with gr.Tab("About", id="about"):
                about = gr.Markdown(about_markdown(board0, source), elem_id="about")

        filters = [methods, fams, protocol, sort_by, columns]
        for f in filters:
            f.change(lambda *a: table_view(source.board(), *a), filters, table)
        detail_out = [split, info, confusion, per_gen_plot, per_gen_confused, per_sem, per_gen]
        model.change(lambda m, s: detail(source.board(), m, s), [model, split], detail_out)
        split.input(lambda m, s: detail(source.board(), m, s), [model, split], detail_out)
        demo.load(lambda m, s: detail(source.board(), m, s), [model, split], detail_out)

        board_out = [version, banner, table, notes, unverified, unranked, robust_plot,
                     semantic_plot, rejected, about, model, fams, queue]

        def redraw(m, fam, p, s, cols, chosen):
            board = source.board()
            keys = _entry_choices(board)
            fam_choices = families(board)
            fam = [f for f in (fam or []) if f in fam_choices]
            return (source.version, source.banner(), table_view(board, m, fam, p, s, cols),
                    blanks_note(board), verification_table(board),
                    styled(unranked_table(board)),
                    charts.robustness_figure(robustness_table(board)),
                    charts.semantic_figure(semantic_table(board)), rejected_table(board),
                    about_markdown(board, source),
                    gr.update(choices=keys, value=chosen if chosen in [k for _, k in keys]
                              else (keys[0][1] if keys else None)),
                    gr.update(choices=fam_choices, value=fam), ui_submit.queue_table(source))

        def reload(*a):
            source.reload()
            return redraw(*a)

        def poll(seen, *a):
            if seen == source.version:
                return [gr.skip()] * len(board_out)
            return redraw(*a)

        reload_btn.click(reload, [*filters, model], board_out)
        gr.Timer(POLL_S).tick(poll, [version, *filters, model], board_out)
    return demo
