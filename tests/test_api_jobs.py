"""generation/run.py with an API generator, against the local API stub: failed requests, bad
answers, kills and a second job on the same folder lose no image that was paid for."""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

import imageattributionbench as iab
from api_stub import ApiStub, Reply
from generation import run as generation_run
from generation.lock import FolderLock

ROOT = Path(__file__).resolve().parents[1]
RUN = str(ROOT / "generation" / "run.py")
KEY = {"OPENAI_API_KEY": "sk-test-openai"}


def _png(size: int, seed: int = 0) -> bytes:
    yy, xx = np.mgrid[0:size, 0:size]
    arr = np.stack([xx * 255 // size, yy * 255 // size, np.full_like(xx, 40 + seed)], -1)
    buf = io.BytesIO()
    Image.fromarray(arr.astype(np.uint8), "RGB").save(buf, "PNG")
    return buf.getvalue()


IMAGE = _png(1024)  # what dall-e-3 answers for a 1024x1024 request


def _job(stub, out, *extra, limit=3):
    return ["--generator", "dalle3", "--semantics", "cat", "--limit", str(limit),
            "--images-per-prompt", "2", "--out", str(out), "--api-base-url", stub.url,
            "--max-retries", "0", *extra]


def _main(argv):
    return generation_run.main(generation_run.parse_args(argv))


def _rows(out: Path, regular_only=False) -> list[dict]:
    files = sorted((out / "dalle3").rglob("*.parquet"))
    if regular_only:
        files = [f for f in files if ".spool" not in f.parts]
    return [r for f in files for r in pq.read_table(f).to_pylist()]


def _keys(rows) -> list[tuple[str, int]]:
    return sorted((r["prompt_id"], r["image_index"]) for r in rows)


def _rejects(out: Path) -> list[dict]:
    path = out / "dalle3" / "rejects.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _b64(data: bytes) -> dict:
    return {"data": [{"b64_json": base64.b64encode(data).decode()}]}


@pytest.fixture(autouse=True)
def key(monkeypatch):
    for k, v in KEY.items():
        monkeypatch.setenv(k, v)


@pytest.fixture
def stub():
    with ApiStub(image=IMAGE) as s:
        yield s


ALL_KEYS = [(f"cat/{p}", k) for p in range(3) for k in range(2)]


def test_bad_answers_are_logged_and_the_job_goes_on(stub, tmp_path):
    stub.script(Reply(),                                           # cat/0 #0: kept
                Reply(500, error="the server had an error"),      # retries (0) spent
                Reply(body={"data": [{"b64_json": "%%% not base64"}]}),
                Reply(body=[1, 2, 3]),                             # JSON of the wrong shape
                Reply(body={"data": "nothing"}),
                Reply(body=_b64(_png(512))))                       # the wrong size
    assert _main(_job(stub, tmp_path)) == 0
    reasons = [r["reason"] for r in _rejects(tmp_path)]
    assert len(reasons) == 5 and all("Traceback" not in r for r in reasons)
    assert "request failed" in reasons[0] and "HTTP 500" in reasons[0]
    assert "not base64" in reasons[1]
    assert "JSON that is not an object" in reasons[2]
    assert "no image data" in reasons[3]
    assert reasons[4] == "wrong size 512x512, expected 1024x1024"
    assert _keys(_rows(tmp_path)) == [("cat/0", 0)]
    # a rerun asks again for exactly the five that failed, and completes
    assert _main(_job(stub, tmp_path)) == 0
    assert _keys(_rows(tmp_path)) == ALL_KEYS and len(stub.requests) == 6 + 5
    assert not list((tmp_path / "dalle3").rglob(".spool*"))


def test_black_and_blank_api_images_are_refused(stub, tmp_path):
    black = np.zeros((1024, 1024, 3), np.uint8)
    buf = io.BytesIO()
    Image.fromarray(black).save(buf, "PNG")
    stub.script(Reply(body=_b64(buf.getvalue())))
    _main(_job(stub, tmp_path, limit=1))
    assert [r["reason"] for r in _rejects(tmp_path)] == ["black image"]
    assert _keys(_rows(tmp_path)) == [("cat/0", 1)]


def test_failures_in_a_row_stop_the_job_with_a_summary(stub, tmp_path):
    stub.script(Reply(), Reply(), *[Reply(401, error="Incorrect API key provided")] * 3)
    with pytest.raises(iab.BenchmarkError, match=(
            r"stopped after 3 failed requests in a row; last: .*HTTP 401.*Incorrect API key.*"
            r"kept 2 image\(s\), 3 request\(s\) failed.*rerun the same command")):
        _main(_job(stub, tmp_path, "--max-failures", "3"))
    assert len(_rows(tmp_path)) == 2  # the images answered before are kept
    assert len(_rejects(tmp_path)) == 3


def test_a_day_long_retry_after_is_not_slept(stub, tmp_path):
    stub.script(Reply(429, error="quota exceeded", retry_after=86400))
    started = time.monotonic()
    assert _main(_job(stub, tmp_path, "--max-retries", "6", limit=1)) == 0
    assert time.monotonic() - started < 60
    (reject,) = _rejects(tmp_path)
    assert "retry after 86400 s, longer than the 120 s" in reject["reason"]
    assert len(stub.requests) == 2  # no retry of the 429: the next image was asked for


def _run_killed(stub, out, fault: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **KEY, "IAB_FAULT": fault, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, RUN, *_job(stub, out)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("fault, durable", [
    ("generation.spooled:4", 4),       # killed just after the 4th image reached the disk
    ("api.answer:5", 4),               # the 5th image answered, not yet on disk: the window
])
def test_a_kill_loses_at_most_the_image_in_flight(stub, tmp_path, fault, durable):
    killed = _run_killed(stub, tmp_path, fault)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert len(stub.requests) == durable + (fault.startswith("api.answer"))
    assert len(_keys(_rows(tmp_path))) == durable  # on disk, though no shard was full
    requests = len(stub.requests)
    assert _main(_job(stub, tmp_path)) == 0
    assert len(stub.requests) - requests == 6 - durable  # nothing paid for is asked again
    assert _keys(_rows(tmp_path, regular_only=True)) == ALL_KEYS  # no duplicates
    assert not list((tmp_path / "dalle3").rglob(".spool*"))


def test_a_kill_between_shard_and_spool_cleanup(stub, tmp_path):
    killed = _run_killed(stub, tmp_path, "generation.shard_written")  # at the final close
    assert killed.returncode == -signal.SIGKILL
    assert _main(_job(stub, tmp_path)) == 0
    assert _keys(_rows(tmp_path)) == ALL_KEYS and len(stub.requests) == 6


def test_a_second_job_on_the_same_folder_is_refused(stub, tmp_path):
    # job A stops (SIGSTOP) at its first answer, holding the folder
    env = {**os.environ, **KEY, "IAB_FAULT": "api.answer:stop", "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen([sys.executable, RUN, *_job(stub, tmp_path)], env=env, cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not stub.requests:
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        with pytest.raises(iab.BenchmarkError, match=(
                rf"dalle3 is in use by another generation job \(pid {first.pid} on host "
                rf"{os.uname().nodename}, started 20\d\d-.*run\.py.*\)")):
            _main(_job(stub, tmp_path))
    finally:
        first.kill()
        first.wait()
    # its process is gone: the lock is taken over, and the job completes
    assert _main(_job(stub, tmp_path)) == 0
    assert _keys(_rows(tmp_path, regular_only=True)) == ALL_KEYS
    holder = json.loads((tmp_path / "dalle3" / "job.lock").read_text())
    assert holder["pid"] == os.getpid()


def test_a_stale_lock_file_is_taken_over(tmp_path):
    folder = tmp_path / "dalle3"
    folder.mkdir()
    (folder / "job.lock").write_text('{"pid": 999999999, "host": "elsewhere", '
                                     '"started": "2020-01-01T00:00:00+00:00", "command": "x"}')
    with FolderLock(folder):
        assert json.loads((folder / "job.lock").read_text())["pid"] == os.getpid()
        with pytest.raises(iab.BenchmarkError, match=rf"pid {os.getpid()} on host"):
            FolderLock(folder).acquire()


def test_a_prompt_id_that_reads_as_a_path_is_refused(stub, tmp_path):
    prompts = tmp_path / "prompts.csv"
    prompts.write_text("prompt_id,semantic,prompt\ncat/../../x,cat,a cat\n")
    with pytest.raises(iab.BenchmarkError, match=r"prompts\.csv, row 0: prompt_id "
                                                 r"'cat/\.\./\.\./x' has an empty"):
        _main(_job(stub, tmp_path / "out", "--prompts", str(prompts)))
    assert stub.requests == []
