"""The leaderboard page in a real headless Chromium over the fixture results folder: ranks,
one decimal, sorting and filters, interactive charts, model details, Rejected and About; a
hostile file added and reloaded lands under Rejected while the table stays; markup in a model
name stays text. (The queue end to end, tampering and the offline start are in
test_leaderboard_queue_browser.py.)"""

from __future__ import annotations

import os

import pytest
from browser import app, choose, chromium, column, require_browser, tab, text, wait
from leaderboard_fixtures import EVIL, ORDER, REVISION, make_results, write_json, \
    write_results_folder

require_browser()


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = write_results_folder(tmp_path_factory.mktemp("lb") / "results")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with app(["--results-dir", str(root), "--dataset-revision", REVISION, "--refresh", "3600"],
             env, root.parent / "app.log") as url, \
            chromium(tmp_path_factory.mktemp("chromium-profile")) as d:
        d.get(url)
        yield d, root


def _models(d):
    return column(d, "main-table", 1)


def _wait_models(d, expected):
    wait(d, lambda d: _models(d) == expected, lambda: f"rows {_models(d)}, expected {expected}")


def test_leaderboard_page(page, tmp_path):
    d, _ = page
    _wait_models(d, ORDER)  # ordered by standard accuracy, the evil name as literal text
    assert column(d, "main-table", 0) == ["1", "2", "3"]
    assert column(d, "main-table", 8) == ["90.0", "80.0", "75.0"]  # one decimal, always
    d.save_screenshot(str(tmp_path / "leaderboard.png"))
    assert "Open-set AUROC: blank for 2 of 3 entries" in text(d, "table-notes")
    assert "delta/old-rev" in text(d, "unranked-table")  # another revision: shown, unranked

    choose(d, "sort-by", "Model id")
    _wait_models(d, sorted(ORDER))
    choose(d, "sort-by", "Standard accuracy")
    _wait_models(d, ORDER)
    choose(d, "filter-protocol", "degraded")
    _wait_models(d, ["acme/vit-small", "beta/clip-probe"])
    choose(d, "filter-protocol", "all")
    _wait_models(d, ORDER)

    from selenium.webdriver.common.by import By

    d.find_element(By.XPATH, "//*[@id='filter-method']//label[contains(., 'finetune')]").click()
    _wait_models(d, ORDER[1:])

    for name, plot in (("Robustness", "robustness-plot"),
                       ("Semantic generalization", "semantic-plot")):
        tab(d, name)
        wait(d, lambda d, plot=plot: d.find_elements(By.CSS_SELECTOR, f"#{plot} .js-plotly-plot"),
             f"no interactive plot in #{plot}")
        d.save_screenshot(str(tmp_path / f"{plot}.png"))
    # hovering a point shows the model, the value and n
    tab(d, "Robustness")
    point = d.find_element(By.CSS_SELECTOR, "#robustness-plot .scatterlayer .point")
    from selenium.webdriver import ActionChains

    ActionChains(d).move_to_element(point).perform()
    hover = "return document.querySelector('#robustness-plot .hoverlayer').textContent"
    wait(d, lambda d: "n = 100" in d.execute_script(hover),
         lambda: f"no hover label: {d.execute_script(hover)!r}")
    assert "%" in d.execute_script(hover)  # the value, beside the model's name

    tab(d, "Model details")
    wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#detail-confusion .js-plotly-plot"),
         "no confusion matrix")
    choose(d, "detail-model", f"gamma/{EVIL}")
    wait(d, lambda d: f"gamma/{EVIL}" in text(d, "detail-info"), "details did not change")
    # the per-generator view: which labels the model confuses, as a chart and a table
    wait(d, lambda d: d.find_elements(By.CSS_SELECTOR,
                                      "#detail-generator-plot .js-plotly-plot"),
         "no per-generator chart")
    assert "most confused with" in text(d, "detail-confused")
    d.save_screenshot(str(tmp_path / "details.png"))

    tab(d, "Rejected")
    wait(d, lambda d: "is outside [0, 1]" in text(d, "rejected-table"), "no rejected file")
    tab(d, "About")
    assert "ImageAttributionBench/ImageAttributionBench at revision abc123" in text(d, "about")

    # The malicious name stayed text: no element came from it and no script ran.
    assert d.find_elements(By.CSS_SELECTOR, "img[src='x'], img[onerror]") == []
    assert d.execute_script("return window.__alerts") == []


def test_hostile_files_on_reload_are_rejected_and_the_table_stays(page):
    d, root = page
    write_json(root, "deep/nest/results_2026-11-27T23-59-00Z.json",
               "[" * 100_000 + "]" * 100_000)
    write_json(root, "tex/name/results_2026-11-27T23-59-00Z.json",
               make_results("org/v2$_$", method="score", standard=70))
    write_json(root, "org/huge/results_2026-11-27T23-59-00Z.json",
               make_results("org/" + "x" * 1_000_000, standard=99))
    tab(d, "Leaderboard")
    from selenium.webdriver.common.by import By

    d.find_element(By.ID, "reload").click()
    wait(d, lambda d: "org/v2$_$" in _models(d), lambda: f"rows {_models(d)}")
    assert not d.find_elements(By.CSS_SELECTOR, ".toast-body.error, .error-message")
    tab(d, "Rejected")
    wait(d, lambda d: "nested deeper than the parser allows" in text(d, "rejected-table"),
         lambda: text(d, "rejected-table")[:500])
    assert "a string longer than 4096 characters" in text(d, "rejected-table")
