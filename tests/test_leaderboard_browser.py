"""The leaderboard page in a real headless Chromium: the app runs on a free localhost port in a
subprocess (``python -m leaderboard.app``) over the fixture results folder, driven by selenium.

Needs Debian's chromium and chromium-driver and the pip packages gradio and selenium; skipped
with the reason when one is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from leaderboard_fixtures import EVIL, ORDER, REVISION, write_results_folder

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip("Chromium and ChromeDriver are not installed (apt-get install chromium "
                "chromium-driver)", allow_module_level=True)
pytest.importorskip("gradio", reason="gradio is not installed (pip install gradio)")
webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium")
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 120  # importing gradio alone takes ~15 s on a 2-core machine
WAIT_S = 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = write_results_folder(tmp_path_factory.mktemp("lb") / "results")
    port = _free_port()
    log = open(root.parent / "app.log", "w+")
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "leaderboard.app", "--results-dir", str(root),
         "--dataset-revision", REVISION, "--port", str(port)],
        cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"the leaderboard did not start:\n{log.read()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(arg)
    d = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=opts)
    # Any alert() the page runs (an injected onerror, say) is recorded instead of shown.
    d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {
        "source": "window.__alerts = []; window.alert = (m) => window.__alerts.push(String(m));"})
    yield d
    d.quit()


def _models(d) -> list[str]:
    # One script call reads all cells at once: the table re-renders while we poll it.
    return d.execute_script(
        "return [...document.querySelectorAll(\"#main-table .virtual-row [data-col='0']\")]"
        ".map(c => c.innerText.trim())")


def _wait_models(d, expected: list[str]) -> None:
    try:
        WebDriverWait(d, WAIT_S).until(lambda d: _models(d) == expected)
    except TimeoutException:
        pytest.fail(f"table rows {_models(d)}, expected {expected}")


def _choose(d, dropdown_id: str, option: str) -> None:
    d.find_element(By.CSS_SELECTOR, f"#{dropdown_id} input").click()
    WebDriverWait(d, WAIT_S).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, f"#{dropdown_id} li[aria-label='{option}']"))
    d.find_element(By.CSS_SELECTOR, f"#{dropdown_id} li[aria-label='{option}']").click()


def _tab(d, name: str) -> None:
    buttons = [b for b in d.find_elements(By.CSS_SELECTOR, "button[role='tab']")
               if b.text.strip() == name]
    assert buttons, f"no tab {name!r}"
    buttons[0].click()


def test_leaderboard_page(server, driver, tmp_path):
    d = driver
    d.get(server)
    _wait_models(d, ORDER)  # ordered by standard accuracy, the evil name as literal text
    d.save_screenshot(str(tmp_path / "leaderboard.png"))

    _choose(d, "sort-by", "Model id")
    _wait_models(d, sorted(ORDER))
    _choose(d, "sort-by", "Standard accuracy")
    _wait_models(d, ORDER)

    _choose(d, "filter-protocol", "degraded")
    _wait_models(d, ["acme/vit-small", "beta/clip-probe"])
    _choose(d, "filter-protocol", "all")
    _wait_models(d, ORDER)
    d.find_element(By.XPATH, "//*[@id='filter-method']//label[contains(., 'finetune')]").click()
    _wait_models(d, ORDER[1:])

    for tab, plot in (("Robustness", "robustness-plot"), ("Semantic generalization",
                                                          "semantic-plot")):
        _tab(d, tab)
        WebDriverWait(d, WAIT_S).until(lambda d, plot=plot: d.find_elements(
            By.CSS_SELECTOR, f"#{plot} img, #{plot} canvas, #{plot} svg"))
        d.save_screenshot(str(tmp_path / f"{plot}.png"))

    _tab(d, "Model details")
    WebDriverWait(d, WAIT_S).until(lambda d: d.find_elements(
        By.CSS_SELECTOR, "#detail-confusion img, #detail-confusion canvas"))
    _choose(d, "detail-model", f"gamma/{EVIL}")
    WebDriverWait(d, WAIT_S).until(
        lambda d: f"gamma/{EVIL}" in d.find_element(By.ID, "detail-info").text)
    d.save_screenshot(str(tmp_path / "details.png"))

    _tab(d, "Rejected")
    WebDriverWait(d, WAIT_S).until(
        lambda d: "is outside [0, 1]" in d.find_element(By.ID, "rejected-table").text)
    assert "'0ld' is not 'abc123'" in d.find_element(By.ID, "rejected-table").text

    _tab(d, "About")
    assert "--results-repo ImageAttributionBench/ImageAttributionBench-results" in \
        d.find_element(By.ID, "about").text

    # The malicious name stayed text: no element came from it and no script ran.
    assert d.find_elements(By.CSS_SELECTOR, "img[src='x'], img[onerror]") == []
    assert d.execute_script("return window.__alerts") == []
