"""The submission queue and the backend against an offline Hub (olah reads, the recording
stand-in takes writes): checks before queueing, duplicates, two backends claiming at once,
a run that crashes, a backend that is killed or stopped. The successful run, submitted in the
browser and shown verified, is tests/test_leaderboard_browser.py's end-to-end test."""

from __future__ import annotations

import json

import pytest
from huggingface_hub import HfApi
from leaderboard_hub import (MODEL, NO_LICENSE, REQUESTS, SPACE_TOKEN, WRONG_LABELS, backend,
                             start_hub)

import imageattributionbench as iab
from leaderboard.backend import claim
from leaderboard.submissions import FAILED, PENDING, RUNNING, read_requests, submit


@pytest.fixture(scope="module")
def hub(built, tmp_path_factory):
    repo, _ = built
    server = start_hub(tmp_path_factory.mktemp("hub"), repo)
    yield server
    server.stop()


@pytest.fixture
def api(hub):
    return HfApi(endpoint=hub.endpoint, token=SPACE_TOKEN)


@pytest.fixture
def empty_queue(hub):
    """Every test starts from a queue without open requests."""
    api = HfApi(endpoint=hub.endpoint, token=SPACE_TOKEN)
    _, requests = read_requests(api, REQUESTS)
    stale = {p: json.dumps({**r, "status": FAILED, "reason": "test reset"}).encode()
             for p, r in requests.items() if r["status"] in (PENDING, RUNNING)}
    if stale:
        hub.put_files("dataset", REQUESTS, stale, "reset")
    return api


def _status(api, path):
    return read_requests(api, REQUESTS)[1][path]


def test_a_model_is_checked_before_it_is_queued(hub, empty_queue):
    api = empty_queue
    with pytest.raises(iab.BenchmarkError, match="no model alice/nothing on the Hub"):
        submit(api, REQUESTS, "alice/nothing", "main", "score", "float32")
    with pytest.raises(iab.BenchmarkError, match="sets no license"):
        submit(api, REQUESTS, NO_LICENSE, "main", "score", "float32")
    with pytest.raises(iab.BenchmarkError, match="'cat', 'dog' are not benchmark labels"):
        submit(api, REQUESTS, WRONG_LABELS, "main", "score", "float32")
    with pytest.raises(iab.BenchmarkError, match="has no revision 'v9'"):
        submit(api, REQUESTS, MODEL, "v9", "score", "float32")
    with pytest.raises(iab.BenchmarkError, match="unknown method 'finetune'; valid: score"):
        submit(api, REQUESTS, MODEL, "main", "finetune", "float32")
    with pytest.raises(iab.BenchmarkError, match="unknown precision 'int3'"):
        submit(api, REQUESTS, MODEL, "main", "score", "int3")
    assert not [w for w in hub.writes if w.repo_id == REQUESTS]  # nothing was written
    path, request = submit(api, REQUESTS, MODEL, "main", "score", "float32")
    assert path.startswith(f"{MODEL}/") and request["status"] == PENDING
    assert request["model_sha"] == api.model_info(MODEL).sha and request["license"] == "mit"
    assert _status(api, path)["status"] == PENDING  # read back through olah
    (write,) = [w for w in hub.writes if w.repo_id == REQUESTS]
    assert write.user == "space-bot" and list(write.files) == [path]
    with pytest.raises(iab.BenchmarkError, match=f"already queued: {path} is PENDING"):
        submit(api, REQUESTS, MODEL, "main", "score", "float32")
    other, _ = submit(api, REQUESTS, MODEL, "main", "score", "bfloat16")  # another precision
    assert other != path


def test_two_backends_never_claim_the_same_request(hub, empty_queue):
    api = empty_queue
    first, _ = submit(api, REQUESTS, MODEL, "main", "score", "float32")
    second, _ = submit(api, REQUESTS, MODEL, "main", "score", "float16")
    stale = read_requests(api, REQUESTS)  # backend A reads the queue ...
    b = claim(api, REQUESTS, "backend-B", 24)  # ... backend B claims first ...
    a = claim(api, REQUESTS, "backend-A", 24, read=lambda *_: stale)  # ... then A commits
    # A's read said B's request was still PENDING: only a refused commit (412) and a fresh
    # read make A take the other one
    assert a[0] != b[0] and {a[0], b[0]} == {first, second}
    assert (_status(api, b[0])["backend"], _status(api, a[0])["backend"]) == \
        ("backend-B", "backend-A")
    assert claim(api, REQUESTS, "backend-C", 24) is None  # nothing left to claim
    claims = [w for w in hub.writes if w.repo_id == REQUESTS and w.message.startswith("Claim")]
    assert sorted(w.message.split()[1] for w in claims[-2:]) == sorted([first, second])


def test_a_crashing_run_is_marked_failed_with_its_log(hub, empty_queue, tmp_path):
    # a looping backend, started before there is anything to do, picks the request up
    waiting = backend(hub, tmp_path, "--loop", "--interval", "1", "--max-requests", "1",
                      fault="harness.run.main:segv", wait=False)
    path, _ = submit(empty_queue, REQUESTS, MODEL, "main", "score", "float32")
    out, err = waiting.communicate(timeout=600)
    assert waiting.returncode == 0, err[-2000:]
    assert f"claimed {path}" in out
    request = _status(empty_queue, path)
    assert request["status"] == FAILED
    assert "killed by SIGSEGV" in request["reason"] or "exited with status" in request["reason"]
    assert "harness/run.py --model alice/tiny-attributor" in request["log_tail"]
    assert [h["status"] for h in request["history"]] == [PENDING, RUNNING, FAILED]


def test_a_killed_backend_loses_no_request(hub, empty_queue, tmp_path):
    path, _ = submit(empty_queue, REQUESTS, MODEL, "main", "score", "float32")
    killed = backend(hub, tmp_path, fault="leaderboard.backend.claimed")  # SIGKILL
    assert killed.returncode == -9
    assert _status(empty_queue, path)["status"] == RUNNING  # held by a dead backend
    assert "no pending request" in backend(hub, tmp_path).stdout  # not stale yet: left alone
    again = backend(hub, tmp_path, "--stale-after", "0", fault="harness.run.main:segv")
    assert f"claimed {path}" in again.stdout
    assert _status(empty_queue, path)["status"] == FAILED  # it ran again, and failed visibly


def test_a_stopped_backend_puts_its_request_back(hub, empty_queue, tmp_path):
    path, _ = submit(empty_queue, REQUESTS, MODEL, "main", "score", "float32")
    stopped = backend(hub, tmp_path, fault="leaderboard.backend.claimed:term")  # SIGTERM
    assert stopped.returncode == 128 + 15, stopped.stderr[-2000:]
    request = _status(empty_queue, path)
    assert request["status"] == PENDING and "requeued" in request["reason"]
