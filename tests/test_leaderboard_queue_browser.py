"""The leaderboard as a Space in headless Chromium against an offline Hub (olah reads, the
recording stand-in takes writes): a tiny attributor submitted in the Submit tab is queued,
scored by the backend (accelerate launch harness/run.py --method score) and shown verified; a
results file edited by hand is shown self-reported with the reason; and the page starts while
the results repo cannot be reached, says so, and shows the results once the Hub answers."""

from __future__ import annotations

import json

import pytest
from browser import app, chromium, click, column, free_port, require_browser, tab, text, \
    type_into, wait
from hub_writes import RecordingHub
from leaderboard_fixtures import make_results
from leaderboard_hub import MODEL, REQUESTS, RESULTS, SPACE_TOKEN, backend, start_hub

from harness.report import results_repo_path

require_browser()
SCORED_S = 300  # the board checks the new entry: every split's labels read through olah


@pytest.fixture(scope="module")
def hub(built, tmp_path_factory):
    repo, _ = built
    server = start_hub(tmp_path_factory.mktemp("hub"), repo)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def page(hub, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("space")
    env = hub.env(SPACE_TOKEN, IAB_CACHE=str(tmp / "cache"))
    with app(["--results-repo", RESULTS, "--requests-repo", REQUESTS, "--refresh", "3600",
              "--retry", "2"], env, tmp / "app.log") as url, \
            chromium(tmp / "chromium-profile") as d:
        d.get(url)
        yield d


def _value(d, elem_id: str) -> str:
    return d.execute_script(f"const e = document.querySelector('#{elem_id} textarea');"
                            "return e ? e.value : ''")


def _row(d, model: str) -> dict[str, str]:
    models = column(d, "main-table", 1)
    if model not in models:
        return {}
    i = models.index(model)
    return {"verified": column(d, "main-table", 4)[i], "revision": column(d, "main-table", 6)[i]}


def _reload(d) -> None:
    tab(d, "Leaderboard")
    click(d, "reload")


def test_submit_queue_backend_verified(page, hub, tmp_path):
    d = page
    tab(d, "Submit")
    type_into(d, "submit-model", MODEL)
    click(d, "submit-button")
    wait(d, lambda d: _value(d, "submit-status").startswith(f"Queued {MODEL}"),
         lambda: f"status: {_value(d, 'submit-status')!r}")
    wait(d, lambda d: "PENDING" in text(d, "queue-table"), lambda: text(d, "queue-table"))

    done = backend(hub, tmp_path / "work")  # one-shot: claims the request, scores, publishes
    assert done.returncode == 0 and ": FINISHED" in done.stdout, done.stdout + done.stderr[-3000:]
    files = hub.files("dataset", RESULTS)
    ours = sorted(p for p in files if p.startswith(f"{MODEL}/"))
    assert {p.rsplit("/", 1)[1].split("_")[0] for p in ours} == {"results", "samples"}
    assert any("samples_degraded_" in p for p in ours) and any("samples_standard_" in p
                                                               for p in ours)
    (commit,) = [w for w in hub.writes if w.repo_id == RESULTS]
    assert commit.user == "space-bot" and sorted(commit.files) == ours

    _reload(d)
    wait(d, lambda d: _row(d, MODEL).get("verified") == "verified",
         lambda: f"row {_row(d, MODEL)}; not verified: {text(d, 'unverified-table')[:600]}",
         timeout=SCORED_S)
    assert _row(d, MODEL)["revision"] == hub.head("dataset", "ImageAttributionBench/"
                                                  "ImageAttributionBench")[:7]
    tab(d, "Submit")
    wait(d, lambda d: "FINISHED" in text(d, "queue-table"), lambda: text(d, "queue-table"))
    assert f"{MODEL}/results_" in text(d, "queue-table")


def test_a_hand_edited_results_file_is_shown_not_verified(page, hub):
    d = page
    files = hub.files("dataset", RESULTS)
    (name,) = [p for p in files if p.startswith(f"{MODEL}/results_")]
    samples = {p.rsplit("/", 1)[1]: b for p, b in files.items()
               if p.startswith(f"{MODEL}/samples_")}

    def copy(model_id: str, change) -> dict[str, bytes]:
        results = json.loads(files[name])
        results["model"]["id"] = model_id
        change(results)
        folder = results_repo_path(results).rsplit("/", 1)[0]
        return {results_repo_path(results): json.dumps(results).encode(),
                **{f"{folder}/{n}": b for n, b in samples.items()}}

    def edit(r):
        r["protocols"]["standard"]["splits"]["test"]["accuracy"] = 0.96  # was lower

    def bogus_revision(r):
        r["dataset"]["revision"] = "0" * 40

    hub.put_files("dataset", RESULTS, {**copy("mallory/edited", edit),
                                       **copy("mallory/nowhere", bogus_revision)}, "copies")
    _reload(d)
    wait(d, lambda d: _row(d, "mallory/edited").get("verified") == "self-reported",
         lambda: f"row {_row(d, 'mallory/edited')}", timeout=SCORED_S)
    why = text(d, "unverified-table")
    assert "mallory/edited" in why and "standard/test accuracy: the file says 0.96" in why
    assert _row(d, MODEL)["verified"] == "verified"
    # a revision the Hub does not have: not verifiable, and not retried for ever
    assert "mallory/nowhere" in why and "cannot be read" in why, why
    assert "mallory/nowhere" in text(d, "unranked-table")


def test_the_board_starts_while_the_results_repo_is_unreachable(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("offline")
    port = free_port()  # nothing listens there yet
    hub = RecordingHub(tmp / "hub")
    env = hub.env(None, IAB_CACHE=str(tmp / "cache"), HF_ENDPOINT=f"http://127.0.0.1:{port}",
                  HF_HOME=str(tmp / "hf"))
    with app(["--results-repo", RESULTS, "--refresh", "3600", "--retry", "2"], env,
             tmp / "app.log") as url, chromium(tmp / "chromium-profile") as d:
        d.get(url)
        wait(d, lambda d: "could not be read from the results repo" in text(d, "banner"),
             lambda: f"banner: {text(d, 'banner')!r}")
        assert "retrying every 2 s" in text(d, "banner")
        assert column(d, "main-table", 1) == []
        try:
            hub.start(port)  # the Hub comes back
            results = make_results("acme/vit-small", standard=90)
            hub.put_files("dataset", RESULTS, {results_repo_path(results):
                                               json.dumps(results).encode()})
            wait(d, lambda d: column(d, "main-table", 1) == ["acme/vit-small"],
                 lambda: f"rows {column(d, 'main-table', 1)}; banner {text(d, 'banner')!r}",
                 timeout=60)
            assert text(d, "banner").startswith("Results from the results repo")
        finally:
            hub.stop()
