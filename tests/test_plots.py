"""The plots a paper could print (issue 15, section 2), read back from the figure objects:
titles, tick labels, legend entries, lines and cell texts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib.container import ErrorbarContainer

import imageattributionbench as iab
from harness import paper_table
from harness.metrics import load_metric, wilson_interval
from harness.plots import (REJECTED, UNKNOWN_COLOR, confusion_figure, degradation_label,
                           robustness_figure)

from test_report import make_results

LABELS = list(iab.LABELS)
KNOWN = ["real", "SD1_5"]


def _metrics(refs, preds, conf, known=None, threshold=None):
    """Split metrics from the project's metric module (3 classes' probabilities in 31)."""
    scores = []
    for p, c in zip(preds, conf):
        row = [0.0] * len(LABELS)
        row[p] = c
        rest = [i for i in (iab.LABEL_IDS[k] for k in (known or KNOWN)) if i != p]
        for i in rest:
            row[i] = (1 - c) / len(rest)
        scores.append(row)
    return load_metric().compute(predictions=preds, references=refs, scores=scores,
                                 semantics=["cat"] * len(refs), labels=LABELS,
                                 known_labels=known, rejection_threshold=threshold)


def _ticks(labels) -> list[str]:
    return [t.get_text() for t in labels]


def _straight(ax, axis: str, at: float, style: str | None = None) -> bool:
    """Whether the axes hold a horizontal (axis "y") or vertical ("x") line at ``at``."""
    for line in ax.lines:
        data = line.get_ydata() if axis == "y" else line.get_xdata()
        if len(data) == 2 and np.allclose(data, [at, at]) and (
                style is None or line.get_linestyle() == style):
            return True
    return False


@pytest.fixture(scope="module")
def closed():
    r, s, f, x = (iab.LABEL_IDS[n] for n in ("real", "SD1_5", "FLUX", "SDXL"))
    return _metrics([r, r, s, s, f, f], [r, x, s, s, f, r], [0.9] * 6)


def test_confusion_title_has_accuracy_and_n_and_columns_are_what_was_predicted(closed):
    fig = confusion_figure(closed, "m: standard / test")
    ax = fig.axes[0]
    assert ax.get_title() == "m: standard / test\naccuracy 66.7%, n = 6"
    assert _ticks(ax.get_yticklabels()) == ["real", "FLUX", "SD1_5"]  # label id order
    assert _ticks(ax.get_xticklabels()) == ["real", "FLUX", "SD1_5", "SDXL"]  # SDXL predicted
    cells = {t.get_text() for t in ax.texts}
    assert cells == {"1", "2"}


@pytest.fixture(scope="module")
def open_set():
    r, s, f, z = (iab.LABEL_IDS[n] for n in ("real", "SD1_5", "FLUX", "Z-Image-Turbo"))
    # FLUX and Z-Image-Turbo are unknown (KNOWN is real and SD1_5); the model names known only
    return _metrics([r, r, s, s, f, f, z, z], [r, r, s, r, s, r, r, s],
                    [0.9, 0.8, 0.95, 0.7, 0.55, 0.8, 0.6, 0.85], known=KNOWN, threshold=0.75)


def test_open_set_matrix_marks_unknown_rows_and_has_a_rejected_column(open_set):
    fig = confusion_figure(open_set, "m: open_set / test", known_labels=KNOWN)
    ax = fig.axes[0]
    assert _ticks(ax.get_xticklabels()) == ["real", "SD1_5", REJECTED]  # no unknown columns
    rows = _ticks(ax.get_yticklabels())
    assert rows == ["real", "SD1_5", "FLUX (unknown)", "Z-Image-Turbo (unknown)"]
    colours = [t.get_color() for t in ax.get_yticklabels()]
    assert colours[2] == colours[3] == UNKNOWN_COLOR and colours[0] != UNKNOWN_COLOR
    title = ax.get_title()
    assert "known-class accuracy 75.0%" in title
    assert f"AUROC of rejection {100 * open_set['auroc_unknown']:.1f}%" in title
    assert f"OSCR {100 * open_set['oscr']:.1f}%" in title
    assert "n = 8 (4 of known generators)" in title
    # cells (row, column): below 0.75 confidence is rejected; FLUX once, and once taken for
    # real; Z-Image-Turbo once, and once for SD1_5; one SD1_5 image (0.7) is rejected too
    grid = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text()
            for t in ax.texts}
    assert grid == {(0, 0): "2", (1, 1): "1", (1, 2): "1", (2, 0): "1", (2, 2): "1",
                    (3, 1): "1", (3, 2): "1"}
    assert open_set["unknown_rejection_rate"] == 0.5 and open_set["known_rejection_rate"] == 0.25
    # a line between known and unknown rows, one before the rejected column
    assert _straight(ax, "y", 1.5) and _straight(ax, "x", 1.5)


def test_open_set_matrix_of_a_schema_1_file_has_no_rejected_column(open_set):
    old = {k: v for k, v in open_set.items() if k not in ("open_set_confusion_matrix",
                                                           "rejection_threshold")}
    ax = confusion_figure(old, "m", known_labels=KNOWN).axes[0]
    assert _ticks(ax.get_xticklabels()) == ["real", "SD1_5"]


@pytest.fixture(scope="module")
def robustness():
    results = make_results()
    return results, robustness_figure(results).axes[0]


def test_robustness_has_clean_in_the_legend_n_intervals_and_chance(robustness):
    results, ax = robustness
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0] == "clean test images"
    assert "95% confidence interval (Wilson)" in legend
    test = results["protocols"]["standard"]["splits"]["test"]
    chance = max(map(sum, test["confusion_matrix"])) / test["n_samples"]
    assert f"chance {100 * chance:.1f}% (most frequent label)" in legend
    assert _straight(ax, "y", 100 * chance, ":") and _straight(ax, "y", 90.0, "--")
    ticks = _ticks(ax.get_xticklabels())
    assert ticks[0] == "clean\nn=100" and ticks[4] == "JPEG q30\nn=100"
    assert [t.split("\n")[0] for t in ticks[1:]] == [degradation_label(d) for d in
                                                       iab.DEGRADATIONS]
    assert "level 1-6" not in ax.get_xlabel()
    # the clean bar's error bar is the 95% Wilson interval of 90 / 100
    (bars,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    segment = bars.lines[2][0].get_segments()[0]
    lo, hi = wilson_interval(90, 100)
    assert segment[:, 1] == pytest.approx([100 * lo, 100 * hi])


def test_degradation_names_are_readable():
    assert [degradation_label(d) for d in iab.DEGRADATIONS] == [
        "down-up 1/2", "down-up 1/4", "JPEG q65", "JPEG q30", "blur r=3", "blur r=5"]


def test_wilson_interval_known_values():
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775328), abs=1e-6)
    assert wilson_interval(10, 10) == pytest.approx((0.7224672, 1.0), abs=1e-6)
    lo, hi = wilson_interval(36, 72)
    assert (lo + hi) / 2 == pytest.approx(0.5) and hi - lo == pytest.approx(0.2250581, abs=1e-6)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def _table_results(tiny: bool):
    rows = []
    for name, acc in (("dct-cnn", 0.5), ("ssp", 0.25)):
        r = make_results(f"iab-{name}" + ("-tiny" if tiny else ""))
        r["run_config"]["preset"] = name
        r["protocols"]["standard"]["splits"]["test"]["accuracy"] = acc
        rows.append(r)
    return rows


def test_paper_table_figure_has_colour_bar_axes_titles_separator_and_caption():
    results = _table_results(tiny=True)
    text = paper_table.caption(results)
    chance = paper_table.chance_of(results)
    fig = paper_table.table_figure(paper_table.table_rows(results), text, chance)
    ax, bar = fig.axes
    assert bar.get_ylabel() == "accuracy (%)"
    assert ax.get_title().endswith(f"; chance {100 * chance:.1f}% (red line on the colour bar)")
    assert _straight(bar, "y", 100 * chance)
    assert ax.get_xlabel().startswith("test split") and ax.get_ylabel() == "method (preset)"
    assert _straight(ax, "x", paper_table.SEMANTIC_FROM - 0.5)
    cells = [t.get_text() for t in ax.texts]
    assert cells[0] == "50.0" and all(c == "-" or c.count(".") == 1 and len(c.split(".")[1])
                                      == 1 for c in cells)
    assert "Tiny random-weight demo models" in " ".join(t.get_text() for t in fig.texts)
    assert _ticks(ax.get_xticklabels())[4] == "JPEG q30"


def test_paper_table_caption_and_markdown():
    tiny, real = _table_results(tiny=True), _table_results(tiny=False)
    assert "Tiny random-weight" in paper_table.caption(tiny)
    assert "Tiny" not in paper_table.caption(real)
    chance = paper_table.chance_of(real)
    assert f"Chance: {100 * chance:.1f}%" in paper_table.caption(real)
    md = paper_table.markdown(paper_table.table_rows(real), caption_text="CAPTION")
    header = [c.strip() for c in md.splitlines()[0].strip("|").split("|")]
    assert header[paper_table.SEMANTIC_FROM + 1] == ""  # the separator column
    assert header[paper_table.SEMANTIC_FROM] == "blur r=5"
    assert header[paper_table.SEMANTIC_FROM + 2] == "cat seen"
    assert md.splitlines()[2].split("|")[2] == " 50.0 "
    assert md.rstrip().endswith("CAPTION")


def test_write_table_from_results_files(tmp_path):
    files = []
    for i, r in enumerate(_table_results(tiny=True)):
        files.append(tmp_path / f"r{i}.json")
        files[-1].write_text(json.dumps(r))
    md, png = paper_table.write_table(files, tmp_path / "table")
    assert "Tiny random-weight demo models" in md.read_text() and png.stat().st_size > 0
