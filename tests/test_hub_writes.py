"""The recording stand-in for the Hub's write API answers huggingface_hub as the Hub does, and
what it records can be read back through the read side (olah)."""

from __future__ import annotations

import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from hub_writes import RecordingHub

USERS = {"tok-alice": ("alice", ["ImageAttributionBench"]), "tok-bob": ("bob", [])}


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    server = RecordingHub(tmp_path_factory.mktemp("hub"), users=USERS).start()
    yield server
    server.stop()


def _api(hub, token):
    return HfApi(endpoint=hub.endpoint, token=token)


def test_push_then_read_back_and_the_record(hub, tmp_path):
    alice = _api(hub, "tok-alice")
    assert alice.whoami()["name"] == "alice"
    alice.create_repo("alice/attributor", exist_ok=True)
    alice.create_repo("alice/attributor", exist_ok=True)  # 409 -> exist_ok, as on the Hub
    folder = tmp_path / "out"
    (folder / "sub").mkdir(parents=True)
    (folder / "README.md").write_text("---\nlicense: mit\n---\n# card\n")
    (folder / "sub" / "results.json").write_text('{"accuracy": 0.5}')
    info = alice.upload_folder(repo_id="alice/attributor", folder_path=str(folder),
                               commit_message="results")
    assert alice.model_info("alice/attributor").sha == info.oid
    assert hub.files("model", "alice/attributor")["sub/results.json"] == b'{"accuracy": 0.5}'
    commit = [w for w in hub.writes if w.kind == "commit" and w.repo_id == "alice/attributor"]
    assert sorted(commit[-1].files) == ["README.md", "sub/results.json"]
    assert commit[-1].user == "alice" and commit[-1].pr is None


def test_no_write_access_means_a_pull_request(hub, tmp_path):
    hub.put_files("dataset", "ImageAttributionBench/results", {"a.json": b"{}"})
    bob = _api(hub, "tok-bob")
    with pytest.raises(HfHubHTTPError, match="403"):
        bob.upload_file(path_or_fileobj=b"{}", path_in_repo="bob/r.json",
                        repo_id="ImageAttributionBench/results", repo_type="dataset")
    with pytest.raises(HfHubHTTPError, match="403"):
        bob.create_repo("ImageAttributionBench/other")
    info = bob.upload_file(path_or_fileobj=b'{"b": 1}', path_in_repo="bob/r.json",
                           repo_id="ImageAttributionBench/results", repo_type="dataset",
                           create_pr=True)
    assert info.pr_revision.startswith("refs/pr/")
    assert "bob/r.json" not in hub.files("dataset", "ImageAttributionBench/results")
    assert hub.files("dataset", "ImageAttributionBench/results",
                     info.pr_revision)["bob/r.json"] == b'{"b": 1}'


def test_a_stale_parent_commit_is_refused(hub):
    alice = _api(hub, "tok-alice")
    first = hub.put_files("dataset", "ImageAttributionBench/requests", {"q.json": b"1"})
    alice.upload_file(path_or_fileobj=b"2", path_in_repo="q.json", parent_commit=first,
                      repo_id="ImageAttributionBench/requests", repo_type="dataset")
    with pytest.raises(HfHubHTTPError, match="412"):  # a second claim from the same read
        alice.upload_file(path_or_fileobj=b"3", path_in_repo="q.json", parent_commit=first,
                          repo_id="ImageAttributionBench/requests", repo_type="dataset")
    assert hub.files("dataset", "ImageAttributionBench/requests")["q.json"] == b"2"


def test_no_token_is_refused(hub):
    with pytest.raises(HfHubHTTPError, match="401"):
        HfApi(endpoint=hub.endpoint, token=False).create_repo("alice/nope")
