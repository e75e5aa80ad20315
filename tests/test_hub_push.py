"""Every push path of harness/run.py, end to end against the recording Hub (tests/hub_writes.py:
olah for reads, recorded writes with the Hub's permissions): the exact files and pull requests
each makes, and what it refuses before any training."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from huggingface_hub import ModelCard, parse_eval_result_entries

import imageattributionbench as iab
from hub_writes import RecordingHub

ROOT = Path(__file__).resolve().parents[1]
DATASET = iab.HUB_REPO_ID
RESULTS = "ImageAttributionBench/results"
USERS = {"tok-alice": ("alice", ["ImageAttributionBench"]), "tok-bob": ("bob", [])}
# hub-docs modelcard.md and eval-results.md: the fields a model card and an entry may carry
MODEL_CARD_KEYS = {"language", "license", "license_name", "license_link", "library_name", "tags",
                   "datasets", "metrics", "base_model", "pipeline_tag", "model-index",
                   "thumbnail"}
ENTRY_KEYS = {"dataset", "value", "verifyToken", "date", "source", "notes"}


@pytest.fixture(scope="module")
def hub(tmp_path_factory, tiny_bench):
    server = RecordingHub(tmp_path_factory.mktemp("hub"), users=USERS).start()
    files = {p.relative_to(tiny_bench).as_posix(): p.read_bytes()
             for p in sorted(tiny_bench.rglob("*")) if p.is_file()}
    server.put_files("dataset", DATASET, files, "the benchmark")
    server.create_repo("dataset", RESULTS)
    yield server
    server.stop()


def _harness(hub, token, out: Path, *args, timeout=900) -> subprocess.CompletedProcess:
    env = hub.env(token, HF_HOME=str(out.parent / f"hf-{out.name}"), OMP_NUM_THREADS="1",
                  IAB_CACHE=str(out.parent / "iab-cache"))
    return subprocess.run([sys.executable, str(ROOT / "harness" / "run.py"), *args,
                           "--output-dir", str(out)], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=timeout)


def _writes(hub, since: int):
    return [(w.kind, w.repo_type, w.repo_id, w.user, w.pr is not None) for w in
            hub.writes[since:]]


@pytest.fixture(scope="module")
def pushed(hub, classifier, tmp_path_factory):
    """alice fine-tunes a local model on the Hub dataset and pushes it (she belongs to the
    ImageAttributionBench org, so the results repo takes her commit directly)."""
    out = tmp_path_factory.mktemp("push") / "out"
    (out / "init").mkdir(parents=True)
    (out / ".env").write_text("HF_TOKEN=hf_secret\n")  # must never leave the machine
    (out / "init" / "stale.bin").write_bytes(b"x")
    (out / "notes.txt").write_text("mine")
    start = len(hub.writes)
    done = _harness(hub, "tok-alice", out, "--model", str(classifier), "--method", "finetune",
                    "--protocol", "standard", "--dataset", DATASET, "--epochs", "1",
                    "--batch_size", "16", "--lr", "0.01", "--push_to_hub",
                    "--hub_model_id", "tiny-iab", "--hub_private_repo",
                    "--results_repo", RESULTS, "--license", "mit")
    assert done.returncode == 0, done.stderr[-3000:]
    return out, start, done


def test_a_trained_model_pushes_only_the_allow_list(hub, pushed):
    out, start, _ = pushed
    results = json.loads(next(out.glob("results_*.json")).read_text())
    iso = results["created_at"].replace(":", "-")
    assert _writes(hub, start) == [
        ("commit", "dataset", RESULTS, "alice", False),  # a member: straight to main
        ("create_repo", "model", "alice/tiny-iab", "alice", False),
        ("commit", "model", "alice/tiny-iab", "alice", False)]
    create = hub.writes[start + 1]
    assert create.visibility == "private"
    commit = hub.writes[start + 2]
    confusions = {f"confusion_{c}_{s}.png" for c, s in
                  [("standard", "test")] + [("degraded", d) for d in iab.DEGRADATIONS]}
    assert set(commit.files) == {
        "README.md", "config.json", "model.safetensors", "preprocessor_config.json",
        f"results_{iso}.json", f"samples_standard_{iso}.parquet",
        f"samples_degraded_{iso}.parquet", "robustness.png",
        ".eval_results/imageattributionbench.yaml", *confusions}
    # and on disk there was more: none of it went
    assert (out / "checkpoints").is_dir() and (out / ".env").exists()
    results_commit = hub.writes[start]
    folder = f"community/{Path(results['model']['id']).name}"
    assert set(results_commit.files) == {  # the samples beside it: the board verifies from them
        f"{folder}/results_{iso}.json", f"{folder}/samples_standard_{iso}.parquet",
        f"{folder}/samples_degraded_{iso}.parquet"}


def test_the_pushed_card_and_entries_name_the_resolved_revision(hub, pushed):
    out, _, _ = pushed
    sha = hub.head("dataset", DATASET)
    files = hub.files("model", "alice/tiny-iab")
    results = json.loads(next(v for k, v in files.items() if k.startswith("results_")))
    assert results["dataset"] == {"repo": DATASET, "revision": sha, "local": False,
                                  "fingerprint": json.loads(hub.files("dataset", DATASET)[
                                      "manifest.json"])["fingerprint"], "hub_copy_of": None}
    card = ModelCard(files["README.md"].decode())
    meta = card.data.to_dict()
    assert set(meta) <= MODEL_CARD_KEYS, set(meta) - MODEL_CARD_KEYS
    assert meta["license"] == "mit" and meta["library_name"] == "transformers"
    assert "base_model" not in meta  # a local start: no Hub id to name
    assert meta["datasets"] == [DATASET]
    (index,) = meta["model-index"]
    assert index["name"] == "alice/tiny-iab"
    got = {(r["dataset"]["config"], r["dataset"]["split"]): r for r in index["results"]}
    assert set(got) == {("standard", "test")} | {("degraded", d) for d in iab.DEGRADATIONS}
    for r in index["results"]:
        assert r["dataset"]["type"] == DATASET and r["dataset"]["revision"] == sha
        assert r["metrics"][0]["type"] == "accuracy"
    entries = yaml.safe_load(files[".eval_results/imageattributionbench.yaml"])
    parsed = parse_eval_result_entries(entries)
    assert [e.task_id for e in parsed] == ["standard_accuracy"] + [
        f"degraded_{d}_accuracy" for d in iab.DEGRADATIONS]
    for e, raw in zip(parsed, entries):
        assert set(raw) <= ENTRY_KEYS and e.dataset_id == DATASET and e.dataset_revision == sha
        assert e.source_url.endswith(f"/alice/tiny-iab/blob/main/results_"
                                     f"{results['created_at'].replace(':', '-')}.json")
        assert e.source_user == "alice"
    assert parsed[0].value == round(
        100 * results["protocols"]["standard"]["splits"]["test"]["accuracy"], 2)
    assert files[".eval_results/imageattributionbench.yaml"] == \
        (out / ".eval_results" / "imageattributionbench.yaml").read_bytes()


def test_scoring_someone_elses_model_opens_pull_requests(hub, pushed, tmp_path):
    """bob scores alice's pushed model: a PR with .eval_results on her repo (no weightless
    repo of his own) and a PR on the results repo he cannot write to."""
    start = len(hub.writes)
    main_before = hub.head("model", "alice/tiny-iab")
    done = _harness(hub, "tok-bob", tmp_path / "score", "--model", "alice/tiny-iab",
                    "--method", "score", "--protocol", "standard", "--dataset", DATASET,
                    "--push-to-hub", "--results-repo", RESULTS)
    assert done.returncode == 0, done.stderr[-3000:]
    kinds = _writes(hub, start)
    assert kinds == [("pull_request", "dataset", RESULTS, "bob", True),
                     ("commit", "dataset", RESULTS, "bob", True),
                     ("pull_request", "model", "alice/tiny-iab", "bob", True),
                     ("commit", "model", "alice/tiny-iab", "bob", True)]
    results_pr, model_pr = hub.writes[start + 1], hub.writes[start + 3]
    (path,) = [p for p in results_pr.files if "/results_" in p]
    assert path.startswith("alice/tiny-iab/results_") and len(results_pr.files) == 3
    assert list(model_pr.files) == [".eval_results/imageattributionbench.yaml"]
    assert hub.head("model", "alice/tiny-iab") == main_before  # main untouched
    entries = parse_eval_result_entries(yaml.safe_load(
        model_pr.contents[".eval_results/imageattributionbench.yaml"]))
    assert entries and all(e.source_user == "bob" for e in entries)
    assert entries[0].source_url.endswith(
        f"/datasets/{RESULTS}/blob/refs%2Fpr%2F{results_pr.pr}/{path}")
    assert entries[0].dataset_revision == hub.head("dataset", DATASET)


def test_a_local_build_is_refused_before_training(hub, tiny_bench, classifier, tmp_path):
    start, began = len(hub.writes), time.monotonic()
    done = _harness(hub, "tok-alice", tmp_path / "local", "--model", str(classifier),
                    "--dataset", str(tiny_bench), "--push-to-hub", timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "is a local build" in done.stderr and "--hub-dataset" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "local" / "checkpoints").exists()  # refused before any training
    assert len(hub.writes) == start and time.monotonic() - began < 120


def test_a_local_copy_of_the_hub_repo_counts_for_its_leaderboard(hub, tiny_bench, tmp_path):
    """--hub-dataset: a local folder whose manifest equals the Hub repo's at a revision is
    recorded as that revision's copy; one that differs is refused."""
    from huggingface_hub import HfApi

    from harness.dataset_source import resolve_dataset

    api = HfApi(endpoint=hub.endpoint, token=False)
    source = resolve_dataset(str(tiny_bench), hub_dataset=DATASET, api=api)
    assert source.hub_target == (DATASET, hub.head("dataset", DATASET))
    assert source.record()["local"] is True
    other = tmp_path / "other"
    other.mkdir()
    manifest = json.loads((tiny_bench / "manifest.json").read_text())
    manifest["fingerprint"] = "0" * 64
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(iab.BenchmarkError, match="is not a copy of .*fingerprint"):
        resolve_dataset(str(other), hub_dataset=DATASET, api=api)


def test_a_branch_resolves_to_its_commit_sha(hub):
    from huggingface_hub import HfApi

    from harness.dataset_source import resolve_dataset

    api = HfApi(endpoint=hub.endpoint, token=False)
    source = resolve_dataset(DATASET, "main", api=api)
    assert source.revision == hub.head("dataset", DATASET) and len(source.revision) == 40
    with pytest.raises(iab.BenchmarkError, match="no dataset 'nobody/nothing'"):
        resolve_dataset("nobody/nothing", api=api)
