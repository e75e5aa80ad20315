"""Progress off a terminal: plain lines a log file can hold, never redrawn bars."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from iab.progress import PlainProgress, interactive, quiet_library_bars

ROOT = Path(__file__).resolve().parents[1]


def test_plain_lines_at_each_quarter_and_at_the_end():
    out = io.StringIO()
    bar = PlainProgress(range(18), desc="epoch 1/4", unit="batch", stream=out)
    for i in bar:
        bar.set_postfix(loss=f"{1 / (i + 1):.2f}")
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert [line.split(",")[0] for line in lines] == [
        "epoch 1/4: 5/18 batch (28%)", "epoch 1/4: 10/18 batch (56%)",
        "epoch 1/4: 15/18 batch (83%)", "epoch 1/4: 18/18 batch (100%)"]
    assert lines[-1].endswith("loss=0.06")


def test_update_and_close_without_a_total_print_once_at_the_end():
    out = io.StringIO()
    with PlainProgress(desc="scan", unit="shard", stream=out) as bar:
        bar.update(3)
    assert out.getvalue().splitlines() == [out.getvalue().splitlines()[0]]
    assert out.getvalue().startswith("scan: 3 shard, ")


def test_an_iterable_without_a_length():
    class Stream:
        def __len__(self):
            raise TypeError("a stream has no length")

        def __iter__(self):
            return iter(range(3))

    out = io.StringIO()
    assert list(PlainProgress(Stream(), desc="stream", stream=out)) == [0, 1, 2]
    assert out.getvalue().startswith("stream: 3 it, ")


def test_disabled_prints_nothing():
    out = io.StringIO()
    bar = PlainProgress(total=4, desc="x", disable=True, stream=out)
    bar.update(4)
    bar.close()
    assert out.getvalue() == ""


def test_a_job_whose_output_goes_to_a_file_writes_plain_lines(tmp_path):
    """The generation job as a user runs it with its output redirected to a log file."""
    log = tmp_path / "log.txt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("HF_DATASETS_DISABLE_PROGRESS_BARS", "HF_HUB_DISABLE_PROGRESS_BARS",
                "TQDM_DISABLE"):
        env.pop(key, None)
    with open(log, "w") as f:
        done = subprocess.run([sys.executable, str(ROOT / "generation" / "run.py"),
                               "--generator", "SD1_5", "--tiny", "--semantics", "cat",
                               "--limit", "4", "--images-per-prompt", "1", "--out",
                               str(tmp_path / "raw")], stdout=f, stderr=subprocess.STDOUT,
                              env=env, cwd=ROOT, timeout=600)
    text = log.read_text()
    assert done.returncode == 0, text[-2000:]
    assert "\r" not in text
    assert "SD1_5: 4/4 img (100%)" in text


def test_quiet_library_bars_off_a_terminal(monkeypatch):
    for key in ("HF_DATASETS_DISABLE_PROGRESS_BARS", "HF_HUB_DISABLE_PROGRESS_BARS",
                "TQDM_DISABLE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not interactive()
    quiet_library_bars()
    assert os.environ["TQDM_DISABLE"] == "1" and os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    from datasets.utils import logging as datasets_logging
    from huggingface_hub.utils import enable_progress_bars

    try:
        assert not datasets_logging.is_progress_bar_enabled()
    finally:  # the rest of the session keeps its bars
        datasets_logging.enable_progress_bar()
        enable_progress_bars()
