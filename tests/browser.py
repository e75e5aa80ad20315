"""Driving the leaderboard in a real headless Chromium: the app runs on a free localhost port
in a subprocess (``python -m leaderboard.app``), selenium reads the page.

Needs Debian's chromium and chromium-driver and the pip packages gradio and selenium; a test
module calls :func:`require_browser` first, which skips it with the reason when one is missing.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 120  # importing gradio alone takes ~15 s on a 2-core machine
WAIT_S = 30
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def require_browser():
    """The selenium webdriver module, or skip the calling module."""
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("Chromium and ChromeDriver are not installed (apt-get install chromium "
                    "chromium-driver)", allow_module_level=True)
    pytest.importorskip("gradio", reason="gradio is not installed (pip install gradio)")
    return pytest.importorskip("selenium.webdriver", reason="pip install selenium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def app(args: list[str], env: dict, log_path: Path):
    """``python -m leaderboard.app ARGS`` until it answers; yields its URL, stops it after."""
    port = free_port()
    log = open(log_path, "w+")
    proc = subprocess.Popen([sys.executable, "-m", "leaderboard.app", *args, "--port",
                             str(port)], cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={**env, "GRADIO_ANALYTICS_ENABLED": "False"})
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


@contextmanager
def chromium(profile: Path):
    webdriver = require_browser()
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                f"--user-data-dir={profile}"):
        opts.add_argument(arg)
    d = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=opts)
    # Any alert() the page runs (an injected onerror, say) is recorded instead of shown.
    d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {
        "source": "window.__alerts = []; window.alert = (m) => window.__alerts.push(String(m));"})
    try:
        yield d
    finally:
        d.quit()


def wait(d, condition, what: str, timeout: float = WAIT_S):
    """Wait until ``condition(d)`` is truthy; on timeout fail with ``what()`` (or ``what``)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(d, timeout, poll_frequency=0.5).until(condition)
    except TimeoutException:
        pytest.fail(what() if callable(what) else what)


def column(d, table_id: str, col: int) -> list[str]:
    # One script call reads all cells at once: the table re-renders while we poll it.
    return d.execute_script(
        f"return [...document.querySelectorAll(\"#{table_id} .virtual-row [data-col='{col}']\")]"
        ".map(c => c.innerText.trim())")


def text(d, elem_id: str) -> str:
    return d.execute_script(f"const e = document.getElementById('{elem_id}');"
                            "return e ? e.innerText : ''")


def choose(d, dropdown_id: str, option: str) -> None:
    from selenium.webdriver.common.by import By

    d.find_element(By.CSS_SELECTOR, f"#{dropdown_id} input").click()
    wait(d, lambda d: d.find_elements(By.CSS_SELECTOR,
                                      f"#{dropdown_id} li[aria-label='{option}']"),
         f"no option {option!r} in #{dropdown_id}")
    d.find_element(By.CSS_SELECTOR, f"#{dropdown_id} li[aria-label='{option}']").click()


def tab(d, name: str) -> None:
    from selenium.webdriver.common.by import By

    def find(d):
        return [b for b in d.find_elements(By.CSS_SELECTOR, "button[role='tab']")
                if b.text.strip() == name]

    wait(d, find, lambda: f"no tab {name!r}: " + ", ".join(
        b.text for b in d.find_elements(By.CSS_SELECTOR, "button[role='tab']")))
    find(d)[0].click()


def click(d, elem_id: str) -> None:
    from selenium.webdriver.common.by import By

    d.find_element(By.ID, elem_id).click()


def type_into(d, elem_id: str, value: str) -> None:
    from selenium.webdriver.common.by import By

    box = d.find_element(By.CSS_SELECTOR, f"#{elem_id} textarea, #{elem_id} input")
    box.clear()
    box.send_keys(value)
